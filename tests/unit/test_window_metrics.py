"""The `window_metrics` UDF end to end: raw rows -> the bins text the SQL builds -> metrics, against oracles.

`bins_text` builds the text exactly as sql/aggregates.sql.j2 does (per score bin and calibration bin one
entry ``s:c:n:pos:neg:labelled_score_sum``, joined by ';', in no particular order), and the metrics are
compared with scikit-learn, numpy and scipy on the raw rows.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from modelmon.udfs.metrics_math import score_bin_index
from modelmon.udfs.window_metrics import format_counts, window_metrics
from numpy.typing import NDArray
from scipy import stats
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, roc_auc_score

from modelmon.config import MetricsConfig

SCORE_BINS = 100
CALIBRATION_BINS = 10
LATENCY_EDGES = [int(edge.total_seconds()) for edge in MetricsConfig().latency_buckets]
LATENCY_EDGES_TEXT = ",".join(str(edge) for edge in LATENCY_EDGES)
THRESHOLD = 0.5

# (score, label); label None = a prediction whose label has not arrived.
Row = tuple[float, int | None]


# ---------------------------------------------------------------------------------------------------------
# What the SQL computes from the rows


def bins_text(rows: Sequence[Row], shuffle: random.Random | None = None) -> str:
    """The `bins` column: one entry per (score_bin, calibration_bin), joined with ';'."""
    groups: dict[tuple[int, int], list[Any]] = {}
    for score, label in rows:
        key = (score_bin_index(score, SCORE_BINS), score_bin_index(score, CALIBRATION_BINS))
        group = groups.setdefault(key, [0, 0, 0, 0.0])
        group[0] += 1  # n_predictions
        if label is not None:
            group[1 if label == 1 else 2] += 1  # pos / neg
            group[3] += score  # labelled_score_sum
    entries = [f"{s}:{c}:{n}:{pos}:{neg}:{total!r}" for (s, c), (n, pos, neg, total) in groups.items()]
    if shuffle is not None:
        shuffle.shuffle(entries)  # the parser must not rely on the order
    return ";".join(entries)


def confusion(rows: Sequence[Row]) -> dict[str, int]:
    """tp/fp/tn/fn of the labelled rows, the model predicting fraud for score >= 0.5."""
    out = dict.fromkeys(("tp", "fp", "tn", "fn"), 0)
    for score, label in rows:
        if label is None:
            continue
        predicted = int(score >= THRESHOLD)
        out[{(1, 1): "tp", (1, 0): "fp", (0, 0): "tn", (0, 1): "fn"}[predicted, label]] += 1
    return out


def latency_counts(latencies: Sequence[int]) -> str:
    """Counts per latency bucket, closed above, as the SQL's FILTER (WHERE latency <= e_i AND > e_(i-1))."""
    counts = [0] * (len(LATENCY_EDGES) + 1)
    for latency in latencies:
        i = 0
        while i < len(LATENCY_EDGES) and latency > LATENCY_EDGES[i]:
            i += 1
        counts[i] += 1
    return format_counts(counts)


def metrics(
    rows: Sequence[Row], text: str | None = None, reference: str | None = None, latency: str | None = None
) -> dict[str, Any]:
    c = confusion(rows)
    return window_metrics(
        bins_text(rows) if text is None else text,
        latency,
        c["tp"],
        c["fp"],
        c["tn"],
        c["fn"],
        SCORE_BINS,
        CALIBRATION_BINS,
        LATENCY_EDGES_TEXT,
        reference,
    )


def sklearn_bins(scores: NDArray[np.float64], n_bins: int) -> NDArray[np.intp]:
    """calibration_curve's binning (np.searchsorted on the inner np.linspace edges), independent of the module."""
    return np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], scores)


def score_histogram(scores: Sequence[float]) -> list[int]:
    counts = [0] * SCORE_BINS
    for score in scores:
        counts[score_bin_index(score, SCORE_BINS)] += 1
    return counts


def assert_same_metrics(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Equal, up to the order in which float score sums were added (counts-only metrics are exact)."""
    assert a.keys() == b.keys()
    for key in a:
        if key == "reliability":
            assert len(a[key]) == len(b[key])
            for x, y in zip(a[key], b[key], strict=True):
                assert (x["bin"], x["n"], x["observed_rate"]) == (y["bin"], y["n"], y["observed_rate"])
                assert x["mean_score"] == pytest.approx(y["mean_score"], rel=1e-12, abs=1e-15)
        elif key in ("ece", "mce") and a[key] is not None:
            assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12), key
        else:
            assert a[key] == b[key], key


# ---------------------------------------------------------------------------------------------------------
# Generated rows


@dataclass(frozen=True)
class Window:
    rows: list[Row]
    latencies: list[int]

    @property
    def labelled(self) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        pairs = [(label, score) for score, label in self.rows if label is not None]
        return np.array([y for y, _ in pairs], dtype=np.int64), np.array([p for _, p in pairs])


def make_window(seed: int, n: int = 2500, unlabelled_share: float = 0.2) -> Window:
    """Scores in [0, 1] rounded to 6 decimals, somewhat predictive; a few exactly on bin edges."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(int)
    scores = np.round(np.clip(rng.normal(0.35 + 0.3 * labels, 0.2), 0.0, 1.0), 6)
    edges = [0.0, 1.0, 0.3, 0.5, 0.07, 0.55, 0.1, 0.9]  # inner edges go to the lower bin
    scores[: len(edges)] = edges
    labelled = rng.random(n) >= unlabelled_share
    rows: list[Row] = [
        (float(s), int(y) if is_labelled else None) for s, y, is_labelled in zip(scores, labels, labelled, strict=True)
    ]
    latencies = [int(x) for x in np.minimum(np.floor(rng.exponential(400.0, int(labelled.sum()))), LATENCY_EDGES[-1])]
    return Window(rows, latencies)


SEEDS = [1, 2, 3]


# ---------------------------------------------------------------------------------------------------------
# Against the oracles


@pytest.mark.parametrize("seed", SEEDS)
def test_roc_auc_matches_sklearn_within_its_error_bound(seed: int) -> None:
    w = make_window(seed)
    y, p = w.labelled
    result = metrics(w.rows)
    exact = roc_auc_score(y, p)
    assert 0.0 < result["roc_auc_error_bound"] < 0.5
    assert abs(result["roc_auc"] - exact) <= result["roc_auc_error_bound"]
    assert abs(result["roc_auc"] - exact) <= 0.002
    # Binned, it is exactly sklearn's AUC of the scores snapped to their bin.
    assert result["roc_auc"] == pytest.approx(roc_auc_score(y, sklearn_bins(p, SCORE_BINS)), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_pr_auc_is_average_precision_of_the_binned_scores(seed: int) -> None:
    w = make_window(seed)
    y, p = w.labelled
    expected = average_precision_score(y, sklearn_bins(p, SCORE_BINS))
    assert metrics(w.rows)["pr_auc"] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_calibration_matches_calibration_curve(seed: int) -> None:
    w = make_window(seed)
    y, p = w.labelled
    result = metrics(w.rows)

    prob_true, prob_pred = calibration_curve(y, p, n_bins=CALIBRATION_BINS)
    reliability = result["reliability"]
    assert [r["observed_rate"] for r in reliability] == pytest.approx(prob_true.tolist(), abs=1e-12)
    assert [r["mean_score"] for r in reliability] == pytest.approx(prob_pred.tolist(), abs=1e-12)

    # ECE and MCE over calibration_curve's bins, in numpy.
    b = sklearn_bins(p, CALIBRATION_BINS)
    count = np.bincount(b, minlength=CALIBRATION_BINS)
    rate = np.bincount(b, weights=y, minlength=CALIBRATION_BINS)
    mean = np.bincount(b, weights=p, minlength=CALIBRATION_BINS)
    used = count > 0
    gaps = np.abs(rate[used] / count[used] - mean[used] / count[used])
    assert [r["bin"] for r in reliability] == np.flatnonzero(used).tolist()
    assert [r["n"] for r in reliability] == count[used].tolist()
    assert result["ece"] == pytest.approx(float(np.sum(count[used] / len(y) * gaps)), abs=1e-9)
    assert result["mce"] == pytest.approx(float(gaps.max()), abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_wilson_intervals_contain_the_point_estimates(seed: int) -> None:
    w = make_window(seed)
    c = confusion(w.rows)
    result = metrics(w.rows)
    estimates = {
        "accuracy": (c["tp"] + c["tn"]) / sum(c.values()),
        "precision": c["tp"] / (c["tp"] + c["fp"]),
        "recall": c["tp"] / (c["tp"] + c["fn"]),
    }
    for name, estimate in estimates.items():
        low, high = result[f"{name}_ci_low"], result[f"{name}_ci_high"]
        assert 0.0 <= low < estimate < high <= 1.0, name
        assert high - low < 0.2, name  # ~2000 rows: a few percent wide


@pytest.mark.parametrize("seed", SEEDS)
def test_latency_quantiles_are_within_a_bucket_of_numpy(seed: int) -> None:
    w = make_window(seed)
    result = metrics(w.rows, latency=latency_counts(w.latencies))
    bounds = [0, *LATENCY_EDGES]
    for q, key in ((50, "label_latency_p50_s"), (95, "label_latency_p95_s")):
        value = float(np.percentile(w.latencies, q, method="inverted_cdf"))
        bucket = int(np.searchsorted(LATENCY_EDGES, value, side="left"))  # closed above, as in the SQL
        width = bounds[bucket + 1] - bounds[bucket]
        assert abs(result[key] - value) <= width, (key, value, result[key])


def test_drift_against_a_shifted_reference_matches_scipy() -> None:
    current = make_window(1)
    reference_scores = [min(score + 0.05, 1.0) for score, _ in make_window(2).rows]
    result = metrics(current.rows, reference=format_counts(score_histogram(reference_scores)))
    current_scores = np.array([s for s, _ in current.rows])
    expected = stats.ks_2samp(
        sklearn_bins(np.array(reference_scores), SCORE_BINS), sklearn_bins(current_scores, SCORE_BINS), method="exact"
    )
    assert result["ks_statistic"] == pytest.approx(expected.statistic, abs=1e-12)
    assert 0.0 <= result["ks_pvalue"] < 0.05
    assert result["psi"] > 0.0


# ---------------------------------------------------------------------------------------------------------
# Repeated entries (cumulative cohort revisions) add up


@pytest.mark.parametrize("seed", SEEDS)
def test_two_halves_concatenated_equal_one_text(seed: int) -> None:
    w = make_window(seed)
    half = len(w.rows) // 2
    reference = format_counts(score_histogram([s for s, _ in make_window(seed + 100).rows]))
    latency = latency_counts(w.latencies)
    whole = metrics(w.rows, reference=reference, latency=latency)
    concatenated = f"{bins_text(w.rows[:half])};{bins_text(w.rows[half:])}"
    assert_same_metrics(metrics(w.rows, text=concatenated, reference=reference, latency=latency), whole)
    shuffled = bins_text(w.rows, shuffle=random.Random(seed))
    assert_same_metrics(metrics(w.rows, text=shuffled, reference=reference, latency=latency), whole)


def test_a_repeated_bin_pair_adds_up() -> None:
    reference = "1" + ",1" * 99
    once = window_metrics("3:0:4:2:2:0.12;90:9:4:3:1:3.6", None, 0, 0, 0, 0, 100, 10, "1,2", reference)
    twice = window_metrics("3:0:1:1:0:0.03;90:9:4:3:1:3.6;3:0:3:1:2:0.09", None, 0, 0, 0, 0, 100, 10, "1,2", reference)
    assert_same_metrics(twice, once)
    # 5 positives, 3 negatives: 3 x 2 pairs ordered, 2 x 2 + 3 x 1 tied -> (2 * 6 + 7) / (2 * 15).
    assert twice["roc_auc"] == 19 / 30
    assert twice["reliability"][0]["n"] == 4
    assert twice["reliability"][0]["mean_score"] == pytest.approx(0.03)


def test_flink_double_formatting_parses() -> None:
    """CAST(DOUBLE AS STRING) in Flink writes Java's Double.toString: 1.0E-5, 0.0."""
    result = window_metrics("0:0:2:1:1:2.0E-5;99:9:1:0:0:0.0", None, 0, 0, 0, 0, 100, 10, "1", None)
    assert result["reliability"] == [{"bin": 0, "n": 2, "mean_score": 1.0e-5, "observed_rate": 0.5}]


# ---------------------------------------------------------------------------------------------------------
# Undefined is None


def assert_label_metrics_none(result: dict[str, Any], *, calibration: bool = True) -> None:
    assert result["roc_auc"] is None and result["roc_auc_error_bound"] is None
    if calibration:
        assert result["ece"] is None and result["mce"] is None and result["reliability"] == []


@pytest.mark.parametrize("text", [None, ""])
def test_an_empty_window_has_no_metrics(text: str | None) -> None:
    result = window_metrics(text, None, 0, 0, 0, 0, SCORE_BINS, CALIBRATION_BINS, LATENCY_EDGES_TEXT, "1" + ",0" * 99)
    assert_label_metrics_none(result)
    assert result["pr_auc"] is None
    for key in ("psi", "ks_statistic", "ks_pvalue", "label_latency_p50_s", "label_latency_p95_s"):
        assert result[key] is None, key
    for name in ("accuracy", "precision", "recall"):
        assert result[f"{name}_ci_low"] is None and result[f"{name}_ci_high"] is None


def test_without_positives_auc_and_pr_auc_are_none() -> None:
    rows: list[Row] = [(0.2, 0), (0.7, 0), (0.9, 0)]
    result = metrics(rows)
    assert_label_metrics_none(result, calibration=False)
    assert result["pr_auc"] is None
    assert result["ece"] is not None  # calibration is defined for negatives alone
    assert result["recall_ci_low"] is None and result["precision_ci_low"] == 0.0


def test_without_negatives_auc_is_none_and_pr_auc_one() -> None:
    result = metrics([(0.2, 1), (0.7, 1)])
    assert_label_metrics_none(result, calibration=False)
    assert result["pr_auc"] == 1.0


def test_unlabelled_predictions_count_only_for_drift() -> None:
    rows: list[Row] = [(0.2, None), (0.7, None)]
    result = metrics(rows, reference=format_counts(score_histogram([0.2, 0.7])))
    assert_label_metrics_none(result)
    assert result["pr_auc"] is None
    assert result["psi"] == 0.0 and result["ks_statistic"] == 0.0


# ---------------------------------------------------------------------------------------------------------
# Drift and bad input


def test_without_a_reference_there_is_no_drift() -> None:
    result = metrics(make_window(1).rows, reference=None)
    assert result["psi"] is None and result["ks_statistic"] is None and result["ks_pvalue"] is None


def test_a_reference_equal_to_the_current_histogram_has_no_drift() -> None:
    rows = make_window(1).rows
    result = metrics(rows, reference=format_counts(score_histogram([s for s, _ in rows])))
    assert result["psi"] == 0.0
    assert result["ks_statistic"] == 0.0
    assert result["ks_pvalue"] == 1.0


@pytest.mark.parametrize(
    "entry",
    ["1:2:3", "1:2:3:0:0:0.0:7", "a:0:1:0:0:0.0", "1:0:1.5:0:0:0.0", "1:0:1:0:0:x", "100:0:1:0:0:0.0", "0:10:1:0:0:0"],
)
def test_a_malformed_entry_is_named(entry: str) -> None:
    with pytest.raises(ValueError, match=f"entry '{entry}'"):
        metrics([], text=f"5:5:1:1:0:0.5;{entry}")


@pytest.mark.parametrize("length", [SCORE_BINS - 1, SCORE_BINS + 1])
def test_a_reference_with_the_wrong_number_of_counts_is_rejected(length: int) -> None:
    with pytest.raises(ValueError, match=f"expected {SCORE_BINS} counts, got {length}"):
        metrics(make_window(1).rows, reference=",".join(["1"] * length))


def test_latency_counts_of_the_wrong_length_are_rejected() -> None:
    with pytest.raises(ValueError, match=f"expected {len(LATENCY_EDGES) + 1} counts"):
        metrics([(0.5, 1)], latency=",".join(["1"] * len(LATENCY_EDGES)))


# ---------------------------------------------------------------------------------------------------------
# Properties


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0.0, 1.0), st.integers(0, 1), st.integers(0, 3)),
        max_size=80,
    ),
    st.randoms(use_true_random=False),
)
def test_any_split_of_the_entries_gives_the_same_result(
    drawn: list[tuple[float, int, int]], shuffle: random.Random
) -> None:
    rows: list[Row] = [(score, label) for score, label, _ in drawn]
    reference = "1" + ",1" * (SCORE_BINS - 1)
    whole = metrics(rows, reference=reference)
    auc, bound = whole["roc_auc"], whole["roc_auc_error_bound"]
    labels = {label for _, label in rows}
    assert (auc is None) == (labels != {0, 1})
    if auc is not None:
        assert 0.0 <= auc <= 1.0
        assert 0.0 <= bound <= 0.5
        # Tied pairs count half, so the AUC is at least the bound away from 0 and from 1.
        assert bound <= auc <= 1.0 - bound + 1e-12

    parts = [bins_text([(s, y) for s, y, g in drawn if g == group], shuffle) for group in range(4)]
    shuffle.shuffle(parts)
    split = metrics(rows, text=";".join(parts), reference=reference)
    assert_same_metrics(split, whole)
