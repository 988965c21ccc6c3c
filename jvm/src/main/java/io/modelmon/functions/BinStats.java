package io.modelmon.functions;

/**
 * {@code BIN_STATS(score, is_prediction, actual_fraud, score_bins, calibration_bins)}: the records of a group as one
 * {@link Histogram} text. A record falls in one score bin of {@code score_bins} and one calibration bin of
 * {@code calibration_bins} (see {@link #bin}); it counts toward {@code n} if it is a prediction, toward {@code pos}
 * or {@code neg} if it has a label (1 or 0), and then adds its score to {@code labelled_score_sum}.
 *
 * <p>The histogram is a value of the group, not part of its key: grouped per score and calibration bin, a window
 * had up to a hundred times more groups than model versions and segments, and each record gained little from the
 * aggregation before the shuffle.
 */
public final class BinStats extends HistogramAggregate {

    public void accumulate(
            Histogram acc, Double score, Boolean isPrediction, Integer actualFraud, Integer scoreBins,
            Integer calibrationBins) {
        if (score == null) {
            return;
        }
        boolean labelled = actualFraud != null;
        acc.add(bin(score, scoreBins), bin(score, calibrationBins),
                Boolean.TRUE.equals(isPrediction) ? 1 : 0,
                labelled && actualFraud == 1 ? 1 : 0,
                labelled && actualFraud == 0 ? 1 : 0,
                labelled ? score : 0);
    }

    /**
     * The bin of a score in [0, 1] among {@code n} bins of equal width, as scikit-learn's {@code calibration_curve}
     * bins it (udfs/metrics_math.py {@code score_bin_index}): bins are closed above, a score on an edge
     * {@code k * (1.0 / n)} goes to the lower bin. {@code ceil(score * n) - 1} is that bin up to the rounding of the
     * product, which the two comparisons with the edges themselves correct.
     */
    static int bin(double score, int n) {
        int j = Math.min(Math.max((int) Math.ceil(score * n) - 1, 0), n - 1);
        double step = 1.0 / n;
        if (j > 0 && score <= j * step) {
            return j - 1;
        }
        if (j < n - 1 && score > (j + 1) * step) {
            return j + 1;
        }
        return j;
    }
}
