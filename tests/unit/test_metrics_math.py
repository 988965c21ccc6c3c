"""The window-metric math against independent oracles: scikit-learn and scipy on the raw rows.

Each property draws scores and labels, bins them with sklearn's own rule (np.searchsorted on
np.linspace edges, as calibration_curve does - not with the module's bin function), aggregates the
histograms the SQL job will aggregate, and compares the module's result with the oracle on the rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from modelmon.udfs.metrics_math import (
    LOG_LOSS_EPS,
    Z_95,
    AucEstimate,
    brier_from_sums,
    cbpe_estimates,
    cbpe_from_expected,
    clipped_log_loss_term,
    ece,
    kolmogorov_sf,
    ks_from_histograms,
    log_loss_from_sums,
    mce,
    mcnemar_pvalue,
    pr_auc_from_histograms,
    psi,
    quantile_from_buckets,
    reliability_bins,
    roc_auc_from_histograms,
    score_bin_edges,
    score_bin_index,
    squared_error_term,
    wilson_interval,
)
from numpy.typing import NDArray
from scipy import stats
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

PROPERTY = settings(max_examples=150, deadline=None)
BIN_COUNTS = [1, 2, 3, 5, 7, 10, 20, 50, 100]


# ---------------------------------------------------------------------------------------------------------
# Generated data and the reference binning


@dataclass(frozen=True)
class Sample:
    scores: NDArray[np.float64]
    labels: NDArray[np.int64]
    n_bins: int


def draw_scores(rng: np.random.Generator, kind: str, n: int, n_bins: int) -> NDArray[np.float64]:
    """Scores of several shapes; 'edges' and the rounded kinds put many scores exactly on bin edges."""
    if kind == "continuous":
        return rng.beta(rng.uniform(0.3, 3), rng.uniform(0.3, 3), n)
    if kind == "rounded2":
        return np.round(rng.uniform(0, 1, n), 2)
    if kind == "rounded6":
        return np.round(rng.beta(0.5, 2.0, n), 6)
    # On the float edges (linspace) and on k / B, which is one ulp away for some k.
    on_linspace = np.linspace(0.0, 1.0, n_bins + 1)[rng.integers(0, n_bins + 1, n)]
    on_ratio = rng.integers(0, n_bins + 1, n) / n_bins
    return np.where(rng.random(n) < 0.5, on_linspace, on_ratio)


@st.composite
def samples(draw: st.DrawFn, min_n: int = 0, max_n: int = 300) -> Sample:
    seed = draw(st.integers(0, 2**32 - 1))
    n_bins = draw(st.sampled_from(BIN_COUNTS))
    n = draw(st.integers(min_n, max_n))
    kind = draw(st.sampled_from(["continuous", "rounded2", "rounded6", "edges"]))
    labelling = draw(st.sampled_from(["calibrated", "rare", "balanced", "all0", "all1"]))
    rng = np.random.default_rng(seed)
    scores = draw_scores(rng, kind, n, n_bins)
    fixed_rates = {"rare": 0.05, "balanced": 0.5, "all0": 0.0, "all1": 1.0}
    rate = scores if labelling == "calibrated" else fixed_rates[labelling]
    labels = (rng.random(n) < rate).astype(np.int64)
    return Sample(scores, labels, n_bins)


def sklearn_bins(scores: NDArray[np.float64], n_bins: int) -> NDArray[np.intp]:
    """calibration_curve's own binning, copied from sklearn/calibration.py (strategy='uniform')."""
    return np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], scores)


def histograms(s: Sample) -> tuple[list[int], list[int], list[float]]:
    """What the SQL aggregates per window: positives, negatives and score sums per bin."""
    b = sklearn_bins(s.scores, s.n_bins)
    pos = np.bincount(b[s.labels == 1], minlength=s.n_bins)
    neg = np.bincount(b[s.labels == 0], minlength=s.n_bins)
    sums = np.bincount(b, weights=s.scores, minlength=s.n_bins)
    return [int(x) for x in pos], [int(x) for x in neg], [float(x) for x in sums]


def snapped(s: Sample) -> NDArray[np.float64]:
    """Each score replaced by its bin centre: the data whose exact metrics the histograms carry."""
    return (sklearn_bins(s.scores, s.n_bins) + 0.5) / s.n_bins


def both_classes(labels: NDArray[np.int64]) -> bool:
    return 0 < int(labels.sum()) < len(labels)


# ---------------------------------------------------------------------------------------------------------
# The bin rule the job must reproduce


def job_bin_index(score: float, n_bins: int) -> int:
    """BinStats.bin (jvm/src), transliterated (Java doubles are IEEE, as here)."""
    j = min(max(math.ceil(score * n_bins) - 1, 0), n_bins - 1)
    step = 1.0 / n_bins
    return j - int(j > 0 and score <= j * step) + int(j < n_bins - 1 and score > (j + 1) * step)


def edge_scores(n_bins: int) -> list[float]:
    """Every 4-decimal score and the doubles next to every edge, where rounding decides the bin."""
    near = []
    for k in range(n_bins + 1):
        for e in (k / n_bins, k * (1.0 / n_bins)):
            near += [e, math.nextafter(e, 0.0), math.nextafter(e, 1.0)]
    return [x for x in [*(i / 10_000 for i in range(10_001)), *near] if 0.0 <= x <= 1.0]


def test_bin_edges_are_bit_for_bit_numpy_linspace() -> None:
    for n_bins in range(1, 301):
        edges = score_bin_edges(n_bins)
        assert edges == np.linspace(0.0, 1.0, n_bins + 1).tolist()
        assert [float(f"{e:.16e}") for e in edges] == edges  # the SQL literals round-trip


@pytest.mark.parametrize("n_bins", [1, 2, 3, 7, 10, 20, 50, 100, 128])
def test_bin_index_and_the_jobs_form_match_calibration_curve(n_bins: int) -> None:
    scores = edge_scores(n_bins)
    expected = sklearn_bins(np.array(scores), n_bins).tolist()
    assert [score_bin_index(x, n_bins) for x in scores] == expected
    assert [job_bin_index(x, n_bins) for x in scores] == expected


def test_a_score_on_an_edge_goes_to_the_lower_bin_unlike_floor() -> None:
    assert score_bin_index(0.5, 10) == 4 and min(math.floor(0.5 * 10), 9) == 5
    # The float edge 3 * 0.1 = 0.30000000000000004 is above 0.3, so 0.3 is in bin 2 as well.
    assert score_bin_edges(10)[3] == 0.30000000000000004 and score_bin_index(0.3, 10) == 2
    # ceil(score * B) - 1 alone is not enough: 0.14 * 50 rounds up to 7.000000000000001.
    assert score_bin_index(0.14, 50) == 6 and math.ceil(0.14 * 50) - 1 == 7
    assert score_bin_index(0.0, 10) == 0 and score_bin_index(1.0, 10) == 9


@pytest.mark.parametrize("score", [-0.1, 1.0000001, math.nan, math.inf])
def test_bin_index_rejects_scores_outside_the_unit_interval(score: float) -> None:
    with pytest.raises(ValueError):
        score_bin_index(score, 10)


# ---------------------------------------------------------------------------------------------------------
# ROC AUC and PR AUC


@PROPERTY
@given(samples())
def test_roc_auc_matches_sklearn(s: Sample) -> None:
    pos, neg, _ = histograms(s)
    estimate = roc_auc_from_histograms(pos, neg)
    if not both_classes(s.labels):
        assert estimate is None
        return
    assert estimate is not None
    assert estimate.auc == pytest.approx(roc_auc_score(s.labels, snapped(s)), abs=1e-12)
    true_auc = roc_auc_score(s.labels, s.scores)
    assert abs(true_auc - estimate.auc) <= estimate.error_bound + 1e-12
    p, n = np.array(pos), np.array(neg)
    assert estimate.error_bound == pytest.approx((p * n).sum() / (p.sum() * n.sum()) / 2, abs=1e-15)


def test_roc_auc_small_cases() -> None:
    assert roc_auc_from_histograms([0, 3], [2, 0]) == AucEstimate(1.0, 0.0)
    assert roc_auc_from_histograms([2, 0], [0, 3]) == AucEstimate(0.0, 0.0)
    assert roc_auc_from_histograms([0, 1, 0], [0, 1, 0]) == AucEstimate(0.5, 0.5)


@PROPERTY
@given(samples())
def test_pr_auc_is_average_precision_on_snapped_scores(s: Sample) -> None:
    pos, neg, _ = histograms(s)
    ap = pr_auc_from_histograms(pos, neg)
    if s.labels.sum() == 0:
        assert ap is None
        return
    assert ap == pytest.approx(average_precision_score(s.labels, snapped(s)), abs=1e-12)


def test_pr_auc_without_negatives_is_one() -> None:
    assert pr_auc_from_histograms([3, 0, 7], [0, 0, 0]) == 1.0
    assert pr_auc_from_histograms([0, 0, 1], [5, 5, 0]) == 1.0


# ---------------------------------------------------------------------------------------------------------
# Calibration


@PROPERTY
@given(samples())
def test_reliability_bins_match_calibration_curve(s: Sample) -> None:
    pos, neg, sums = histograms(s)
    bins = reliability_bins(pos, neg, sums)
    assert [b.count for b in bins] == [c for c in np.bincount(sklearn_bins(s.scores, s.n_bins)).tolist() if c]
    if len(s.scores) == 0:
        assert bins == [] and ece(pos, neg, sums) is None and mce(pos, neg, sums) is None
        return
    prob_true, prob_pred = calibration_curve(s.labels, s.scores, n_bins=s.n_bins, strategy="uniform")
    np.testing.assert_allclose([b.observed_rate for b in bins], prob_true, rtol=0, atol=1e-12)
    np.testing.assert_allclose([b.mean_score for b in bins], prob_pred, rtol=0, atol=1e-12)

    counts = np.array([b.count for b in bins])
    gaps = np.abs(prob_true - prob_pred)
    assert ece(pos, neg, sums) == pytest.approx(float(np.sum(counts / counts.sum() * gaps)), abs=1e-9)
    assert mce(pos, neg, sums) == pytest.approx(float(gaps.max()), abs=1e-12)


def test_calibration_rejects_mixed_up_arrays() -> None:
    with pytest.raises(ValueError):
        reliability_bins([1, 0], [0, 1], [2.5, 0.5])  # a bin's score sum above its count
    with pytest.raises(ValueError):
        reliability_bins([1, 0], [0, 1], [0.5])
    with pytest.raises(TypeError):
        not_counts: list[Any] = [1.0, 0.0]
        reliability_bins(not_counts, [0, 1], [0.5, 0.5])


@PROPERTY
@given(samples(min_n=1), st.booleans())
def test_brier_and_log_loss_from_per_record_sums_match_sklearn(s: Sample, inside: bool) -> None:
    # Away from 0 and 1 clipping is inactive in both; sklearn >= 1.5 clips at 2.2e-16, not 1e-15.
    p = np.clip(s.scores, 1e-9, 1 - 1e-9) if inside else s.scores
    y = s.labels.tolist()
    sq = sum(squared_error_term(float(pi), yi) for pi, yi in zip(p, y, strict=True))
    assert brier_from_sums(len(y), sq) == pytest.approx(brier_score_loss(s.labels, p, pos_label=1), abs=1e-9)
    if inside:
        nll = sum(clipped_log_loss_term(float(pi), yi) for pi, yi in zip(p, y, strict=True))
        assert log_loss_from_sums(len(y), nll) == pytest.approx(log_loss(s.labels, p, labels=[0, 1]), abs=1e-9)


def test_log_loss_clips_at_1e_15() -> None:
    worst = -math.log(LOG_LOSS_EPS)
    assert clipped_log_loss_term(0.0, 1) == worst and clipped_log_loss_term(1.0, 0) == worst
    assert clipped_log_loss_term(1.0, 1) == -math.log(1 - LOG_LOSS_EPS)
    assert clipped_log_loss_term(0.25, 0) == -math.log(0.75)
    assert log_loss_from_sums(2, 2 * worst) == pytest.approx(34.538776394910684)
    with pytest.raises(ValueError):
        clipped_log_loss_term(0.5, 2)


def test_means_of_empty_sums_are_none() -> None:
    assert brier_from_sums(0, 0.0) is None and log_loss_from_sums(0, 0.0) is None
    assert brier_from_sums(4, 1.0) == 0.25
    with pytest.raises(ValueError):
        brier_from_sums(3, math.nan)


# ---------------------------------------------------------------------------------------------------------
# Drift


def reference_psi(r: NDArray[np.int64], c: NDArray[np.int64], eps: float) -> float:
    a = np.where(r == 0, eps, r / r.sum())
    b = np.where(c == 0, eps, c / c.sum())
    return float(np.sum((b - a) * np.log(b / a)))


@PROPERTY
@given(
    st.integers(1, 30).flatmap(
        lambda k: st.tuples(
            st.lists(st.integers(0, 300), min_size=k, max_size=k), st.lists(st.integers(0, 300), min_size=k, max_size=k)
        )
    ),
    st.integers(1, 5),
)
def test_psi(hists: tuple[list[int], list[int]], scale: int) -> None:
    ref, cur = hists  # totals below 10 000: no non-empty bin's proportion can be eps = 1e-4
    if sum(ref) == 0 or sum(cur) == 0:
        assert psi(ref, cur) is None
        return
    assert psi(ref, [scale * x for x in ref]) == 0.0
    value = psi(ref, cur)
    assert value is not None
    assert value == pytest.approx(reference_psi(np.array(ref), np.array(cur), 1e-4), rel=1e-12, abs=1e-15)
    same = np.array(ref) * sum(cur) == np.array(cur) * sum(ref)
    assert value > 0.0 if not same.all() else value == 0.0


def test_kolmogorov_sf_is_scipys_kstwobign() -> None:
    xs = [*np.linspace(0.0, 4.0, 401).tolist(), 1.1799999, 1.18, 8.0]
    np.testing.assert_allclose([kolmogorov_sf(x) for x in xs], stats.kstwobign.sf(xs), rtol=1e-10, atol=1e-13)


@PROPERTY
@given(samples(min_n=1), samples(min_n=1))
def test_ks_matches_ks_2samp(ref: Sample, cur: Sample) -> None:
    cur = Sample(cur.scores, cur.labels, ref.n_bins)  # the same bins for both
    r_pos, r_neg, _ = histograms(ref)
    c_pos, c_neg, _ = histograms(cur)
    result = ks_from_histograms(
        [a + b for a, b in zip(r_pos, r_neg, strict=True)], [a + b for a, b in zip(c_pos, c_neg, strict=True)]
    )
    assert result is not None
    assert result.statistic == stats.ks_2samp(snapped(ref), snapped(cur), method="exact").statistic
    assert result.statistic <= stats.ks_2samp(ref.scores, cur.scores).statistic + 1e-15
    assert 0.0 <= result.pvalue <= 1.0
    if min(len(ref.scores), len(cur.scores)) >= 20:  # scipy's asymptotic p-value needs n * m / (n + m) >= 1
        on_bins = stats.ks_2samp(snapped(ref), snapped(cur), method="asymp")
        assert result.statistic == pytest.approx(on_bins.statistic, abs=1e-15)
        assert result.pvalue == pytest.approx(on_bins.pvalue, abs=0.05)


def test_ks_on_large_samples_agrees_with_scipy_and_detects_a_shift() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.beta(2, 5, 4000), rng.beta(2.3, 5, 3000)
    bins = sklearn_bins(a, 50), sklearn_bins(b, 50)
    result = ks_from_histograms(
        np.bincount(bins[0], minlength=50).tolist(), np.bincount(bins[1], minlength=50).tolist()
    )
    assert result is not None
    on_bins = stats.ks_2samp((bins[0] + 0.5) / 50, (bins[1] + 0.5) / 50)
    assert result.statistic == on_bins.statistic and result.pvalue == pytest.approx(on_bins.pvalue, abs=0.01)
    assert result.pvalue < 1e-3
    same = ks_from_histograms([5, 0, 5], [10, 0, 10])
    assert same is not None and same.statistic == 0.0 and same.pvalue == 1.0


# ---------------------------------------------------------------------------------------------------------
# Uncertainty and latency


def closed_form_wilson(k: int, n: int, z: float) -> tuple[float, float]:
    """The textbook form (2 k + z^2 +- z sqrt(z^2 + 4 k (n - k) / n)) / (2 (n + z^2)), arranged differently."""
    root = z * math.sqrt(z * z + 4 * k * (n - k) / n)
    return (2 * k + z * z - root) / (2 * (n + z * z)), (2 * k + z * z + root) / (2 * (n + z * z))


@PROPERTY
@given(
    st.integers(1, 100_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.sampled_from([1.0, 1.6448536269514722, Z_95, 2.5758293035489004]),
)
def test_wilson_interval(kn: tuple[int, int], z: float) -> None:
    k, n = kn
    interval = wilson_interval(k, n, z)
    assert interval is not None
    low, high = interval
    assert (low, high) == pytest.approx(closed_form_wilson(k, n, z), abs=1e-12)
    assert 0.0 <= low <= k / n <= high <= 1.0
    assert (low == 0.0) == (k == 0) and (high == 1.0) == (k == n)


def test_wilson_covers_about_95_percent() -> None:
    rng = np.random.default_rng(11)
    for p in (0.05, 0.3, 0.5):
        ks = rng.binomial(60, p, 4000).tolist()
        hits = 0
        for k in ks:
            interval = wilson_interval(k, 60)
            assert interval is not None
            hits += interval[0] <= p <= interval[1]
        assert 0.92 <= hits / len(ks) <= 0.98


def test_wilson_undefined_and_bad_input() -> None:
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


LATENCY_EDGES = [1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, math.inf]


@PROPERTY
@given(
    st.integers(0, 2**32 - 1), st.integers(1, 400), st.sampled_from([0.0, 0.01, 0.5, 0.95, 0.99, 1.0]) | st.floats(0, 1)
)
def test_quantile_is_within_its_bucket_of_the_sample_quantile(seed: int, n: int, q: float) -> None:
    rng = np.random.default_rng(seed)
    latencies = rng.exponential(rng.uniform(1, 200), n)
    on_edge = rng.random(n) < 0.2  # exactly on an edge: in the bucket below
    latencies[on_edge] = rng.choice(LATENCY_EDGES[:-1], int(on_edge.sum()))
    buckets = np.searchsorted(LATENCY_EDGES, latencies, side="left")  # closed above: v <= edge
    counts = np.bincount(buckets, minlength=len(LATENCY_EDGES)).tolist()
    estimate = quantile_from_buckets(counts, LATENCY_EDGES, q)
    assert estimate is not None
    sample_q = float(np.quantile(latencies, q, method="inverted_cdf"))
    i = int(np.searchsorted(LATENCY_EDGES, sample_q, side="left"))
    low, high = ([0.0, *LATENCY_EDGES])[i], LATENCY_EDGES[i]
    if math.isinf(high):
        assert estimate == low <= sample_q
    else:
        assert low <= estimate <= high and abs(estimate - sample_q) <= high - low


def test_quantile_interpolates_inside_the_bucket() -> None:
    assert quantile_from_buckets([0, 10, 0], [1.0, 2.0, 3.0], 0.5) == 1.5
    assert quantile_from_buckets([5, 5], [10.0, 20.0], 0.75) == 15.0
    assert quantile_from_buckets([5, 5], [10.0, math.inf], 0.95) == 10.0
    assert quantile_from_buckets([0, 0], [1.0, 2.0], 0.5) is None
    with pytest.raises(ValueError):
        quantile_from_buckets([1, 1], [2.0, 1.0], 0.5)
    with pytest.raises(ValueError):
        quantile_from_buckets([1, 1], [1.0, 2.0], 1.5)


# ---------------------------------------------------------------------------------------------------------
# CBPE


@PROPERTY
@given(samples(), st.data())
def test_cbpe_is_the_expectation_formula(s: Sample, data: st.DataObject) -> None:
    pos, neg, sums = histograms(s)
    counts = np.array(pos) + np.array(neg)
    t = data.draw(st.integers(0, s.n_bins))
    estimate = cbpe_estimates(counts.tolist(), sums, t)
    if len(s.scores) == 0:
        assert estimate is None
        return
    assert estimate is not None
    m = np.array(sums)
    tp, fp = m[t:].sum(), (counts[t:] - m[t:]).sum()
    fn, tn = m[:t].sum(), (counts[:t] - m[:t]).sum()
    expected = (tp, fp, fn, tn)
    got = (estimate.expected_tp, estimate.expected_fp, estimate.expected_fn, estimate.expected_tn)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-9)
    assert estimate.accuracy == pytest.approx((tp + tn) / len(s.scores), rel=1e-12, abs=1e-12)
    assert (estimate.precision is None) == (tp + fp == 0)
    if estimate.precision is not None:
        assert estimate.precision == pytest.approx(tp / (tp + fp), rel=1e-12, abs=1e-12)
    assert (estimate.recall is None) == (tp + fn == 0)
    if estimate.recall is not None:
        assert estimate.recall == pytest.approx(tp / (tp + fn), rel=1e-12, abs=1e-12)


def test_cbpe_estimates_the_realized_metrics_of_a_calibrated_model() -> None:
    rng = np.random.default_rng(3)
    n, n_bins = 200_000, 20
    scores = rng.beta(0.6, 3.0, n)
    labels = (rng.random(n) < scores).astype(np.int64)
    pos, neg, sums = histograms(Sample(scores, labels, n_bins))
    t = 10  # the edge 0.5: bins 10.. hold exactly the scores above 0.5
    estimate = cbpe_estimates([a + b for a, b in zip(pos, neg, strict=True)], sums, t)
    assert estimate is not None and estimate.precision is not None and estimate.recall is not None

    predicted = scores > score_bin_edges(n_bins)[t]
    tp = int(np.sum(predicted & (labels == 1)))
    fp = int(np.sum(predicted & (labels == 0)))
    fn = int(np.sum(~predicted & (labels == 1)))
    assert estimate.accuracy == pytest.approx(float(np.mean(predicted == labels)), abs=0.005)
    assert estimate.precision == pytest.approx(tp / (tp + fp), abs=0.02)
    assert estimate.recall == pytest.approx(tp / (tp + fn), abs=0.02)

    # The per-record form follows the model's own decision and gives the same estimate here.
    per_record = cbpe_from_expected(
        float(scores[predicted].sum()),
        float((1 - scores[predicted]).sum()),
        float(scores[~predicted].sum()),
        float((1 - scores[~predicted]).sum()),
    )
    assert per_record is not None and per_record.accuracy == pytest.approx(estimate.accuracy, abs=1e-9)


def test_cbpe_undefined_parts() -> None:
    assert cbpe_estimates([0, 0], [0.0, 0.0], 1) is None
    nothing_predicted = cbpe_estimates([4, 4], [1.0, 3.0], 2)
    assert nothing_predicted is not None and nothing_predicted.precision is None
    assert nothing_predicted.recall == 0.0 and nothing_predicted.accuracy == 0.5
    all_zero_scores = cbpe_estimates([3, 0], [0.0, 0.0], 1)
    assert all_zero_scores is not None and all_zero_scores.recall is None and all_zero_scores.accuracy == 1.0
    assert cbpe_from_expected(0.0, 0.0, 0.0, 0.0) is None
    with pytest.raises(ValueError):
        cbpe_estimates([1, 1], [0.5, 0.5], 3)


# ---------------------------------------------------------------------------------------------------------
# Undefined and bad input


@pytest.mark.parametrize(
    "result",
    [
        pytest.param(lambda: roc_auc_from_histograms([], []), id="roc-empty"),
        pytest.param(lambda: roc_auc_from_histograms([0, 0], [3, 4]), id="roc-no-positives"),
        pytest.param(lambda: roc_auc_from_histograms([3, 4], [0, 0]), id="roc-no-negatives"),
        pytest.param(lambda: pr_auc_from_histograms([0, 0], [3, 4]), id="pr-no-positives"),
        pytest.param(lambda: pr_auc_from_histograms([], []), id="pr-empty"),
        pytest.param(lambda: ece([0, 0], [0, 0], [0.0, 0.0]), id="ece-empty"),
        pytest.param(lambda: mce([], [], []), id="mce-empty"),
        pytest.param(lambda: psi([0, 0], [1, 2]), id="psi-empty-reference"),
        pytest.param(lambda: psi([1, 2], [0, 0]), id="psi-empty-current"),
        pytest.param(lambda: ks_from_histograms([1, 2], [0, 0]), id="ks-empty-current"),
        pytest.param(lambda: quantile_from_buckets([], [], 0.5), id="quantile-empty"),
    ],
)
def test_undefined_is_none(result: object) -> None:
    assert callable(result) and result() is None


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: roc_auc_from_histograms([1, 2], [1]), id="lengths"),
        pytest.param(lambda: roc_auc_from_histograms([1, -2], [1, 1]), id="negative"),
        pytest.param(lambda: psi([1, 2], [1, 2], eps=0.0), id="psi-eps"),
        pytest.param(lambda: ks_from_histograms([1], [1, 2]), id="ks-lengths"),
    ],
)
def test_bad_input_raises(call: object) -> None:
    assert callable(call)
    with pytest.raises(ValueError):
        call()


@given(st.integers(0, 400), st.integers(0, 400))
@settings(max_examples=200, deadline=None)
def test_mcnemar_is_scipys_exact_binomial_test(b: int, c: int) -> None:
    p = mcnemar_pvalue(b, c)
    if b + c == 0:
        assert p is None
    else:
        assert p == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-9, abs=1e-300)
        assert p == mcnemar_pvalue(c, b)  # symmetric: which version is the champion does not matter


def test_mcnemar_on_large_windows_and_bad_counts() -> None:
    # 10,000 discordant pairs: no overflow, and a 52/48 split of them is significant.
    p = mcnemar_pvalue(4800, 5200)
    assert p is not None and p == pytest.approx(stats.binomtest(4800, 10000, 0.5).pvalue, rel=1e-9)
    assert p < 0.001
    with pytest.raises(ValueError):
        mcnemar_pvalue(-1, 3)
