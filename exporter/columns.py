"""The one table of the metrics topic's numeric columns (sql/sinks/metrics.sql.j2): how each is stored and
what its Prometheus HELP text says. Every column here is exported as the gauge `modelmon_<column>`."""

from __future__ import annotations

from typing import Final, Literal, NamedTuple

Kind = Literal["count", "real", "flag"]


class Column(NamedTuple):
    name: str
    kind: Kind  # count: BIGINT/INT, real: DOUBLE, flag: BOOLEAN (exported as 0/1)
    help: str


def _table(*columns: tuple[str, Kind, str]) -> dict[str, Column]:
    return {name: Column(name, kind, text) for name, kind, text in columns}


COLUMNS: Final[dict[str, Column]] = _table(
    ("revision", "count", "Revision of the window's row; grows with each update, the highest one is exported"),
    ("is_final", "flag", "1 when no further revision of the window will follow, else 0"),
    ("n_predictions", "count", "Predictions in the window (live view: those its labels matched)"),
    ("n_labelled", "count", "Predictions of the window with a label"),
    ("label_coverage", "real", "n_labelled / n_predictions"),
    ("throughput_per_s", "real", "Predictions per second of the window"),
    ("mean_score", "real", "Mean predicted fraud score"),
    ("predicted_positive_rate", "real", "Share of predictions with predicted_fraud = 1"),
    ("tp", "count", "True positives"),
    ("fp", "count", "False positives"),
    ("tn", "count", "True negatives"),
    ("fn", "count", "False negatives"),
    ("accuracy", "real", "(tp + tn) / n_labelled"),
    ("precision", "real", "tp / (tp + fp)"),
    ("recall", "real", "tp / (tp + fn)"),
    ("specificity", "real", "tn / (tn + fp)"),
    ("f1", "real", "Harmonic mean of precision and recall"),
    ("accuracy_ci_low", "real", "Lower bound of the Wilson 95% interval of accuracy"),
    ("accuracy_ci_high", "real", "Upper bound of the Wilson 95% interval of accuracy"),
    ("precision_ci_low", "real", "Lower bound of the Wilson 95% interval of precision"),
    ("precision_ci_high", "real", "Upper bound of the Wilson 95% interval of precision"),
    ("recall_ci_low", "real", "Lower bound of the Wilson 95% interval of recall"),
    ("recall_ci_high", "real", "Upper bound of the Wilson 95% interval of recall"),
    ("roc_auc", "real", "ROC AUC from score histograms; the exact AUC is within roc_auc_error_bound"),
    ("roc_auc_error_bound", "real", "Largest possible distance of roc_auc from the exact AUC"),
    ("pr_auc", "real", "Average precision (PR AUC) from score histograms"),
    ("brier", "real", "Brier score: mean squared error of the scores"),
    ("log_loss", "real", "Log loss of the scores (clipped to [1e-15, 1 - 1e-15])"),
    ("ece", "real", "Expected calibration error over the reliability bins"),
    ("mce", "real", "Maximum calibration error over the reliability bins"),
    ("label_latency_p50_s", "real", "Median seconds from prediction to label"),
    ("label_latency_p95_s", "real", "95th percentile of seconds from prediction to label"),
    ("psi", "real", "Population stability index of the scores against drift.reference_file"),
    ("ks_statistic", "real", "Kolmogorov-Smirnov statistic of the scores against drift.reference_file"),
    ("ks_pvalue", "real", "p-value of the Kolmogorov-Smirnov test against drift.reference_file"),
    ("estimated_accuracy", "real", "Accuracy expected from the scores alone, before labels (CBPE)"),
    ("estimated_precision", "real", "Precision expected from the scores alone, before labels (CBPE)"),
    ("estimated_recall", "real", "Recall expected from the scores alone, before labels (CBPE)"),
    ("mcnemar_b", "count", "Comparison: pairs only the champion got right"),
    ("mcnemar_c", "count", "Comparison: pairs only the challenger got right"),
    ("mcnemar_pvalue", "real", "Comparison: exact two-sided McNemar p-value"),
    ("significant", "flag", "Comparison: 1 when mcnemar_pvalue < 0.05, else 0"),
    ("accuracy_diff", "real", "Comparison: challenger accuracy minus champion accuracy"),
    ("precision_diff", "real", "Comparison: challenger precision minus champion precision"),
    ("recall_diff", "real", "Comparison: challenger recall minus champion recall"),
    ("specificity_diff", "real", "Comparison: challenger specificity minus champion specificity"),
    ("f1_diff", "real", "Comparison: challenger F1 minus champion F1"),
    ("brier_diff", "real", "Comparison: challenger Brier score minus champion Brier score"),
    ("log_loss_diff", "real", "Comparison: challenger log loss minus champion log loss"),
)

# The fields of one entry of the `reliability` column; `n` is exported as modelmon_reliability_count.
RELIABILITY: Final[dict[str, Column]] = _table(
    ("bin", "count", "Calibration bin index"),
    ("n", "count", "Predictions in the calibration bin"),
    ("mean_score", "real", "Mean predicted score in the calibration bin"),
    ("observed_rate", "real", "Observed fraud rate in the calibration bin"),
)

WINDOW_END_HELP: Final = "End of the exported (newest) window of the series, exclusive, as Unix time"
