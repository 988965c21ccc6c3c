package io.modelmon.functions;

/**
 * {@code MERGE_BINS(bins)}: the sum of histograms in {@link Histogram}'s text (as {@link BinStats} writes them), as
 * one histogram in the same format with one entry per bin.
 *
 * <p>Rolls the fine rows of a window up to its model versions and segments (grouping sets), and adds up every
 * interval a cohort received so far for its revisions (an OVER window; joined texts would make each revision's
 * text, and the work of every step after it, grow with the number of intervals). Retractable, as a bounded OVER
 * window needs.
 */
public final class MergeBins extends HistogramAggregate {

    public void accumulate(Histogram acc, String text) {
        acc.addText(text, 1);
    }

    public void retract(Histogram acc, String text) {
        acc.addText(text, -1);
    }
}
