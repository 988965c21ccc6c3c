"""One aggregated window row in, its histogram metrics out: what the `window_metrics` UDF computes.

The SQL (sql/aggregates.sql.j2) aggregates each window's records per model version and segments, with their
score histogram as one text column (BIN_STATS, a Java aggregate of jvm/src), and merges those texts bin by bin
for the '*' rows (MERGE_BINS). This module parses that text and applies `metrics_math`; it runs once per window
row, never per record. No PyFlink import, so it is tested directly (udfs/functions.py is the thin PyFlink
wrapper).

The bins text is a ';'-separated list of entries ``score_bin:calibration_bin:n:pos:neg:labelled_score_sum``:
`n` counts the predictions (drift), `pos`/`neg` the labelled positives and negatives (AUC, calibration),
and `labelled_score_sum` sums the scores of the labelled ones (reliability). The job writes each bin pair once;
should an entry repeat a pair, the repeats add up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modelmon.udfs import metrics_math as mm

ENTRY_SEPARATOR = ";"
FIELD_SEPARATOR = ":"


@dataclass
class Histograms:
    """Per score bin: predictions, labelled positives and negatives; per calibration bin the same + score sums."""

    score_bins: int
    calibration_bins: int
    n: list[int] = field(init=False)
    pos: list[int] = field(init=False)
    neg: list[int] = field(init=False)
    cal_pos: list[int] = field(init=False)
    cal_neg: list[int] = field(init=False)
    cal_score_sum: list[float] = field(init=False)

    def __post_init__(self) -> None:
        self.n, self.pos, self.neg = ([0] * self.score_bins for _ in range(3))
        self.cal_pos, self.cal_neg = [0] * self.calibration_bins, [0] * self.calibration_bins
        self.cal_score_sum = [0.0] * self.calibration_bins

    @classmethod
    def parse(cls, text: str | None, score_bins: int, calibration_bins: int) -> Histograms:
        hist = cls(score_bins, calibration_bins)
        for entry in (text or "").split(ENTRY_SEPARATOR):
            if entry:
                hist.add(entry)
        return hist

    def add(self, entry: str) -> None:
        try:
            s_text, c_text, n_text, pos_text, neg_text, sum_text = entry.split(FIELD_SEPARATOR)
            s, c, n, pos, neg = int(s_text), int(c_text), int(n_text), int(pos_text), int(neg_text)
            score_sum = float(sum_text)
        except ValueError:
            raise ValueError(f"malformed histogram entry {entry!r}") from None
        if not (0 <= s < self.score_bins and 0 <= c < self.calibration_bins):
            raise ValueError(f"histogram entry {entry!r} names a bin outside {self.score_bins}/{self.calibration_bins}")
        self.n[s] += n
        self.pos[s] += pos
        self.neg[s] += neg
        self.cal_pos[c] += pos
        self.cal_neg[c] += neg
        self.cal_score_sum[c] += score_sum


def parse_counts(text: str | None, length: int) -> list[int]:
    """A ','-separated list of counts (latency buckets, a reference histogram); None/empty = all zero."""
    if not text:
        return [0] * length
    counts = [int(value) for value in text.split(",")]
    if len(counts) != length:
        raise ValueError(f"expected {length} counts, got {len(counts)}")
    return counts


def format_counts(counts: Sequence[int]) -> str:
    return ",".join(str(int(count)) for count in counts)


def _interval(successes: int, n: int) -> tuple[float | None, float | None]:
    interval = mm.wilson_interval(successes, n)
    return (None, None) if interval is None else interval


def window_metrics(
    bins: str | None,
    latency_counts: str | None,
    tp: int,
    fp: int,
    tn: int,
    fn: int,
    score_bins: int,
    calibration_bins: int,
    latency_edges_s: str,
    reference: str | None,
) -> dict[str, Any]:
    """The histogram metrics of one window row; every undefined value is None (SQL NULL)."""
    hist = Histograms.parse(bins, score_bins, calibration_bins)
    edges = [float(edge) for edge in latency_edges_s.split(",")]
    upper_edges = [*edges, float("inf")]
    latency = parse_counts(latency_counts, len(upper_edges))

    auc = mm.roc_auc_from_histograms(hist.pos, hist.neg)
    reliability = mm.reliability_bins(hist.cal_pos, hist.cal_neg, hist.cal_score_sum)
    drift = psi = None
    if reference:
        reference_counts = parse_counts(reference, score_bins)
        drift = mm.ks_from_histograms(reference_counts, hist.n)
        psi = mm.psi(reference_counts, hist.n)
    accuracy_ci = _interval(tp + tn, tp + fp + tn + fn)
    precision_ci = _interval(tp, tp + fp)
    recall_ci = _interval(tp, tp + fn)
    return {
        "roc_auc": None if auc is None else auc.auc,
        "roc_auc_error_bound": None if auc is None else auc.error_bound,
        "pr_auc": mm.pr_auc_from_histograms(hist.pos, hist.neg),
        "ece": mm.ece(hist.cal_pos, hist.cal_neg, hist.cal_score_sum),
        "mce": mm.mce(hist.cal_pos, hist.cal_neg, hist.cal_score_sum),
        "reliability": [
            {"bin": b.index, "n": b.count, "mean_score": b.mean_score, "observed_rate": b.observed_rate}
            for b in reliability
        ],
        "psi": psi,
        "ks_statistic": None if drift is None else drift.statistic,
        "ks_pvalue": None if drift is None else drift.pvalue,
        "label_latency_p50_s": mm.quantile_from_buckets(latency, upper_edges, 0.5),
        "label_latency_p95_s": mm.quantile_from_buckets(latency, upper_edges, 0.95),
        "accuracy_ci_low": accuracy_ci[0],
        "accuracy_ci_high": accuracy_ci[1],
        "precision_ci_low": precision_ci[0],
        "precision_ci_high": precision_ci[1],
        "recall_ci_low": recall_ci[0],
        "recall_ci_high": recall_ci[1],
    }
