package io.modelmon.functions;

import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code LABELLED_BINS(bins)}: a {@link Histogram} text with its labels only, every bin's prediction count
 * {@code n} set to 0.
 *
 * <p>The live view and the cohort revisions share the joined rows' fine aggregation: in the live view each joined row
 * is a prediction too, in a cohort its prediction was counted when it arrived.
 */
public final class LabelledBins extends ScalarFunction {

    public String eval(String bins) {
        if (bins == null) {
            return null;
        }
        Histogram histogram = new Histogram();
        histogram.addText(bins, 1);
        for (double[] sums : histogram.bins.values()) {
            sums[0] = 0;
        }
        return histogram.toText();
    }
}
