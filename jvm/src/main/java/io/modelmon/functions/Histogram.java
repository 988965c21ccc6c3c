package io.modelmon.functions;

import java.util.Map;
import java.util.TreeMap;

/**
 * A window's score histogram as the aggregates exchange it: per bin pair (score_bin, calibration_bin) the number of
 * predictions, of labelled positives and negatives, and the sum of the labelled scores. As text (what the
 * {@code window_metrics} UDF reads) one {@code score_bin:calibration_bin:n:pos:neg:labelled_score_sum} entry per
 * bin, ordered by bin and joined by {@code ;}.
 *
 * <p>The accumulator of {@link BinStats} and {@link MergeBins} (a RAW type, serialized with Kryo when state is
 * written or partial aggregates are sent on).
 */
public final class Histogram {

    /** Per bin (score_bin in the high 32 bits, calibration_bin in the low): n, pos, neg, labelled_score_sum. */
    public TreeMap<Long, double[]> bins = new TreeMap<>();

    void add(int scoreBin, int calibrationBin, double n, double pos, double neg, double scoreSum) {
        double[] sums = bins.computeIfAbsent(key(scoreBin, calibrationBin), k -> new double[4]);
        sums[0] += n;
        sums[1] += pos;
        sums[2] += neg;
        sums[3] += scoreSum;
    }

    void addAll(Histogram other) {
        for (Map.Entry<Long, double[]> entry : other.bins.entrySet()) {
            double[] sums = bins.computeIfAbsent(entry.getKey(), k -> new double[4]);
            for (int i = 0; i < 4; i++) {
                sums[i] += entry.getValue()[i];
            }
        }
    }

    /** Adds the entries of a histogram's text, or subtracts them ({@code sign} -1). */
    void addText(String text, int sign) {
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
                add(Integer.parseInt(fields[0]), Integer.parseInt(fields[1]),
                        sign * Double.parseDouble(fields[2]), sign * Double.parseDouble(fields[3]),
                        sign * Double.parseDouble(fields[4]), sign * Double.parseDouble(fields[5]));
            }
            start = end + 1;
        }
    }

    void clear() {
        bins.clear();
    }

    String toText() {
        StringBuilder out = new StringBuilder(bins.size() * 24);
        for (Map.Entry<Long, double[]> entry : bins.entrySet()) {
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

    private static long key(int scoreBin, int calibrationBin) {
        return ((long) scoreBin << 32) | (calibrationBin & 0xffffffffL);
    }
}
