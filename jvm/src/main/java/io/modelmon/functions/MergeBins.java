package io.modelmon.functions;

import java.util.Map;
import java.util.TreeMap;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.functions.AggregateFunction;

/**
 * {@code MERGE_BINS(bins)}: the sum of window histograms, each as {@code window_stats} writes them
 * ({@code score_bin:calibration_bin:n:pos:neg:labelled_score_sum} entries joined by {@code ;}), as one histogram in
 * the same format with one entry per bin (ordered by bin).
 *
 * <p>A cohort's revision adds up every interval the cohort received so far (an OVER window). Joining their texts
 * (LISTAGG) made each revision's text, and the work of every step after it, grow with the number of intervals;
 * merged, it is bounded by the number of bins. Retractable, as a bounded OVER window needs.
 */
@FunctionHint(
        accumulator = @DataTypeHint(value = "RAW", bridgedTo = MergeBins.Histogram.class),
        output = @DataTypeHint("STRING"))
public final class MergeBins extends AggregateFunction<String, MergeBins.Histogram> {

    /** Per bin (score_bin, calibration_bin): n, pos, neg, labelled_score_sum. */
    public static final class Histogram {
        public TreeMap<Long, double[]> bins = new TreeMap<>();
    }

    @Override
    public Histogram createAccumulator() {
        return new Histogram();
    }

    public void accumulate(Histogram acc, String text) {
        add(acc, text, 1);
    }

    public void retract(Histogram acc, String text) {
        add(acc, text, -1);
    }

    public void merge(Histogram acc, Iterable<Histogram> others) {
        for (Histogram other : others) {
            for (Map.Entry<Long, double[]> entry : other.bins.entrySet()) {
                double[] sums = acc.bins.computeIfAbsent(entry.getKey(), k -> new double[4]);
                for (int i = 0; i < 4; i++) {
                    sums[i] += entry.getValue()[i];
                }
            }
        }
    }

    public void resetAccumulator(Histogram acc) {
        acc.bins.clear();
    }

    @Override
    public String getValue(Histogram acc) {
        StringBuilder out = new StringBuilder(acc.bins.size() * 24);
        for (Map.Entry<Long, double[]> entry : acc.bins.entrySet()) {
            double[] sums = entry.getValue();
            if (sums[0] == 0 && sums[1] == 0 && sums[2] == 0) {
                continue;  // every record of the bin retracted
            }
            if (out.length() > 0) {
                out.append(';');
            }
            out.append(entry.getKey() >>> 32).append(':').append(entry.getKey() & 0xffffffffL).append(':')
                    .append((long) sums[0]).append(':').append((long) sums[1]).append(':').append((long) sums[2])
                    .append(':').append(sums[3]);
        }
        return out.toString();
    }

    private static void add(Histogram acc, String text, int sign) {
        if (text == null || text.isEmpty()) {
            return;
        }
        int start = 0;
        while (start < text.length()) {
            int end = text.indexOf(';', start);
            if (end < 0) {
                end = text.length();
            }
            if (end > start) {
                String[] fields = text.substring(start, end).split(":", -1);
                long key = (Long.parseLong(fields[0]) << 32) | Long.parseLong(fields[1]);
                double[] sums = acc.bins.computeIfAbsent(key, k -> new double[4]);
                for (int i = 0; i < 4; i++) {
                    sums[i] += sign * Double.parseDouble(fields[i + 2]);
                }
            }
            start = end + 1;
        }
    }
}
