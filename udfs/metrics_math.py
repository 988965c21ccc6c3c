"""Window metrics from the histograms and sums that the Flink SQL job aggregates per window.

The SQL aggregates, per window, for each of B equal-width score bins the number of predictions, of labelled
positives and negatives and the sum of their scores (the Java aggregate BIN_STATS), plus counts per
label-latency bucket. The functions
here turn one such aggregated row into metrics. They run once per window row (not per record), so plain
Python is fast enough; they take and return plain Python numbers so the PyFlink wrappers stay thin, and an
undefined value (no positives, no negatives, empty window) is None - SQL NULL - never NaN and never 0.
Bad input (negative counts, mismatched lengths, non-finite sums) raises ValueError or TypeError: it can only
come from a bug in the SQL, not from bad records, which were dead-lettered before aggregation.

Score bins: the job must compute exactly this index
---------------------------------------------------
The bins are those of scikit-learn's ``calibration_curve(y, p, n_bins=B, strategy="uniform")`` (the oracle),
so one histogram serves ROC/PR AUC, calibration, PSI, KS and CBPE. sklearn takes the edges
``np.linspace(0, 1, B + 1)`` and assigns ``np.searchsorted(edges[1:-1], p)`` (side="left"). Hence:

* bin 0 is [0, e_1] and bin i is (e_i, e_{i+1}] for i >= 1: a score exactly on an inner edge goes to the
  LOWER bin. This is NOT ``min(floor(score * B), B - 1)``, which puts it in the upper bin;
* the inner edges are the doubles ``e_k = k * (1.0 / B)`` (numpy multiplies the step), not ``k / B``: for
  B = 10, e_3 = 0.30000000000000004, so the score 0.3 lies in bin 2.

So ``bin = #{k in 1..B-1 : score > k * (1.0 / B)}`` in IEEE doubles (`score_bin_index` is the reference).
``min(floor(score * B), B - 1)`` differs from it for every score on an inner edge (simulated scores are
rounded to 6 decimals, so these occur), and even ``max(ceil(score * B) - 1, 0)`` is wrong on a few edges
(B = 50: 0.14, 0.28, 0.56; B = 100: 0.07, 0.55, ...) because ``score * B`` rounds. The exact form the job
uses (``BinStats.bin`` in jvm/src, Java doubles being IEEE as Python's)::

    j   = min(max(ceil(score * B) - 1, 0), B - 1)   # at most one bin off, then corrected against the edges
    bin = j - 1 if j > 0 and score <= j * (1.0 / B)
          j + 1 if j < B - 1 and score > (j + 1) * (1.0 / B)
          j     otherwise
Scores must be in [0, 1] (others are dead-lettered before aggregation).

Latency buckets use the same closed-above convention: bucket 0 is [lower_edge, u_0], bucket i is
(u_{i-1}, u_i] - ``CASE WHEN latency <= u_0 THEN 0 WHEN latency <= u_1 THEN 1 ... END`` in SQL.
"""

from __future__ import annotations

import math
import operator
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

# Probabilities are clipped to [LOG_LOSS_EPS, 1 - LOG_LOSS_EPS] in log loss, as DESIGN.md specifies (and as
# older scikit-learn did by default; sklearn >= 1.5 clips to the dtype's machine epsilon, 2.2e-16, which
# gives a different loss only for a score within 1e-15 of the wrong label).
LOG_LOSS_EPS = 1e-15

# The two-sided 95% normal quantile, scipy.stats.norm.ppf(0.975).
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class AucEstimate:
    """ROC AUC of the binned scores and how far the unbinned AUC can be from it."""

    auc: float
    # The true AUC of the raw scores lies in [auc - error_bound, auc + error_bound].
    error_bound: float


@dataclass(frozen=True)
class ReliabilityBin:
    """One non-empty bin of the reliability diagram (a point of sklearn's calibration_curve)."""

    index: int
    count: int
    mean_score: float  # prob_pred of calibration_curve
    observed_rate: float  # prob_true of calibration_curve


@dataclass(frozen=True)
class KsResult:
    """Two-sample Kolmogorov-Smirnov statistic of binned scores and its asymptotic p-value."""

    statistic: float
    pvalue: float


@dataclass(frozen=True)
class CbpeEstimate:
    """Confidence-based performance estimate: the expected confusion matrix if the scores are calibrated."""

    expected_tp: float
    expected_fp: float
    expected_fn: float
    expected_tn: float
    accuracy: float | None
    precision: float | None
    recall: float | None


# ---------------------------------------------------------------------------------------------------------
# Bins


@lru_cache(maxsize=64)
def _edges(n_bins: int) -> tuple[float, ...]:
    if isinstance(n_bins, bool) or operator.index(n_bins) < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    # Bit for bit np.linspace(0, 1, n_bins + 1): numpy computes k * step, then sets the last edge to stop.
    step = 1.0 / n_bins
    return (*(k * step for k in range(n_bins)), 1.0)


def score_bin_edges(n_bins: int) -> list[float]:
    """The B + 1 bin edges, identical to sklearn's ``np.linspace(0, 1, B + 1)``, so that SQL rendered from
    them bins a score exactly as ``calibration_curve`` does."""
    return list(_edges(n_bins))


def score_bin_index(score: float, n_bins: int) -> int:
    """The bin of one score, exactly as sklearn's ``calibration_curve`` bins it: the number of inner edges
    strictly below the score (a score on an edge goes to the lower bin). The SQL must reproduce this; see the
    module docstring for the SQL form."""
    if not (math.isfinite(score) and 0.0 <= score <= 1.0):
        raise ValueError(f"score must be in [0, 1], got {score!r}")
    edges = _edges(n_bins)
    return bisect_left(edges, score, 1, n_bins) - 1


# ---------------------------------------------------------------------------------------------------------
# Input checks


def _counts(name: str, values: Sequence[int]) -> list[int]:
    """Counts as Python ints: operator.index rejects floats and None, so a column mix-up fails loudly."""
    out = [operator.index(v) for v in values]
    if any(c < 0 for c in out):
        raise ValueError(f"{name} has a negative count")
    return out


def _same_length(**arrays: Sequence[object]) -> None:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"histograms must have the same number of bins, got {lengths}")


def _finite(name: str, value: float) -> float:
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return x


# ---------------------------------------------------------------------------------------------------------
# Ranking quality


def roc_auc_from_histograms(pos: Sequence[int], neg: Sequence[int]) -> AucEstimate | None:
    """ROC AUC from per-bin positive and negative counts, with the error that binning can cause.

    The AUC is the probability that a random positive outscores a random negative. Counting pairs, a pair
    whose positive sits in a higher bin counts 1, a pair in the same bin 0.5 (a tie, as roc_auc_score scores
    tied scores), else 0; divided by P * N. Pairs in different bins are ordered exactly as their raw scores,
    so only same-bin pairs can be wrong, by at most 0.5 each: error_bound = sum_i pos_i * neg_i / (P * N) / 2.
    Computed in exact integer arithmetic and rounded once. None without positives or without negatives.
    """
    p, n = _counts("pos", pos), _counts("neg", neg)
    _same_length(pos=p, neg=n)
    n_pos, n_neg = sum(p), sum(n)
    if n_pos == 0 or n_neg == 0:
        return None
    wins = ties = below = 0
    for p_i, n_i in zip(p, n, strict=True):
        wins += p_i * below
        ties += p_i * n_i
        below += n_i
    pairs2 = 2 * n_pos * n_neg
    return AucEstimate(auc=(2 * wins + ties) / pairs2, error_bound=ties / pairs2)


def pr_auc_from_histograms(pos: Sequence[int], neg: Sequence[int]) -> float | None:
    """Average precision with one threshold per non-empty bin, from the highest bin down.

    This is sklearn's ``average_precision_score`` on scores snapped to one value per bin: the step-wise sum
    of precision at each threshold weighted by the recall it adds (no interpolation, which would be
    optimistic). None without positives (recall undefined; sklearn warns and returns 0). Without negatives it
    is 1.0, as in sklearn: precision is 1 at every threshold, so it is defined.
    """
    p, n = _counts("pos", pos), _counts("neg", neg)
    _same_length(pos=p, neg=n)
    n_pos = sum(p)
    if n_pos == 0:
        return None
    tp = fp = 0
    terms: list[float] = []
    for p_i, n_i in zip(reversed(p), reversed(n), strict=True):
        tp += p_i
        fp += n_i
        if p_i:
            terms.append(p_i * tp / (tp + fp))
    return math.fsum(terms) / n_pos


# ---------------------------------------------------------------------------------------------------------
# Calibration


def reliability_bins(pos: Sequence[int], neg: Sequence[int], score_sums: Sequence[float]) -> list[ReliabilityBin]:
    """The reliability diagram: per non-empty bin, its count, mean score and observed positive rate.

    Equal to sklearn's ``calibration_curve(y, p, n_bins=B, strategy="uniform")`` (prob_pred = mean_score,
    prob_true = observed_rate) when the histograms were binned by `score_bin_index`. A calibrated model has
    observed_rate close to mean_score in every bin. Empty bins are left out, as sklearn does.
    """
    p, n = _counts("pos", pos), _counts("neg", neg)
    _same_length(pos=p, neg=n, score_sums=score_sums)
    out: list[ReliabilityBin] = []
    for i, (p_i, n_i, s) in enumerate(zip(p, n, score_sums, strict=True)):
        total = _finite("score_sums", s)
        count = p_i + n_i
        # Scores are in [0, 1], so a bin's sum is in [0, count] exactly (a float sum of values <= 1 cannot
        # round above the count); anything else means the arrays were mixed up.
        if not 0.0 <= total <= count:
            raise ValueError(f"score sum {total!r} of bin {i} is outside [0, {count}]")
        if count:
            out.append(ReliabilityBin(index=i, count=count, mean_score=total / count, observed_rate=p_i / count))
    return out


def ece(pos: Sequence[int], neg: Sequence[int], score_sums: Sequence[float]) -> float | None:
    """Expected calibration error: sum over non-empty bins of count / N * |observed_rate - mean_score|.

    The average gap between what the model claims and what happens, weighted by where the predictions are.
    None for an empty window.
    """
    bins = reliability_bins(pos, neg, score_sums)
    n = sum(b.count for b in bins)
    if n == 0:
        return None
    return math.fsum(b.count / n * abs(b.observed_rate - b.mean_score) for b in bins)


def mce(pos: Sequence[int], neg: Sequence[int], score_sums: Sequence[float]) -> float | None:
    """Maximum calibration error: the largest |observed_rate - mean_score| over non-empty bins.

    The worst-calibrated score range, however few predictions fall in it (so it is noisy on small windows).
    None for an empty window.
    """
    bins = reliability_bins(pos, neg, score_sums)
    if not bins:
        return None
    return max(abs(b.observed_rate - b.mean_score) for b in bins)


def squared_error_term(p: float, y: int) -> float:
    """(y - p)^2 for one record: what the SQL sums for the Brier score, ``POWER(label - score, 2)``."""
    if y not in (0, 1):
        raise ValueError(f"label must be 0 or 1, got {y!r}")
    return (y - _finite("p", p)) ** 2


def clipped_log_loss_term(p: float, y: int) -> float:
    """-ln(probability given to the observed label), clipped: what the SQL sums per record for log loss.

    As sklearn does it: q = p for a positive, 1 - p for a negative, then q clipped to [1e-15, 1 - 1e-15] so
    that a confident wrong prediction costs about 34.5 instead of infinity. In Flink SQL::

        -LN(GREATEST(LEAST(CASE WHEN label = 1 THEN score ELSE 1.0E0 - score END, 1.0E0 - 1.0E-15), 1.0E-15))
    """
    if y not in (0, 1):
        raise ValueError(f"label must be 0 or 1, got {y!r}")
    q = _finite("p", p) if y == 1 else 1.0 - _finite("p", p)
    return -math.log(min(max(q, LOG_LOSS_EPS), 1.0 - LOG_LOSS_EPS))


def _mean_of_sum(n: int, total: float, name: str) -> float | None:
    count = operator.index(n)
    if count < 0:
        raise ValueError(f"n must be >= 0, got {n!r}")
    value = _finite(name, total)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {total!r}")
    return None if count == 0 else value / count


def brier_from_sums(n: int, sum_sq_err: float) -> float | None:
    """Brier score = mean squared error of the probabilities, from the SQL's SUM of `squared_error_term`.

    Kept as a function so the NULL rule lives in one place: None for an empty window.
    """
    return _mean_of_sum(n, sum_sq_err, "sum_sq_err")


def log_loss_from_sums(n: int, sum_neg_log_likelihood: float) -> float | None:
    """Log loss = mean of `clipped_log_loss_term` (p clipped to [1e-15, 1 - 1e-15]); None for an empty window."""
    return _mean_of_sum(n, sum_neg_log_likelihood, "sum_neg_log_likelihood")


# ---------------------------------------------------------------------------------------------------------
# Drift


def psi(reference: Sequence[int], current: Sequence[int], eps: float = 1e-4) -> float | None:
    """Population stability index of the current score histogram against the reference one.

    PSI = sum_i (c_i - r_i) * ln(c_i / r_i) over the bin proportions r (reference) and c (current). An empty
    bin would make a term infinite, so a proportion of exactly 0 is replaced by eps (the usual convention;
    proportions then no longer sum to 1, which changes PSI by O(eps)). Every term is >= 0, so PSI is 0 for
    identical proportions and > 0 otherwise (unless differing bins are all below eps). Rules of thumb:
    < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major shift. None if either histogram is empty.
    """
    if not (math.isfinite(eps) and 0.0 < eps < 1.0):
        raise ValueError(f"eps must be in (0, 1), got {eps!r}")
    r, c = _counts("reference", reference), _counts("current", current)
    _same_length(reference=r, current=c)
    n_ref, n_cur = sum(r), sum(c)
    if n_ref == 0 or n_cur == 0:
        return None
    terms = []
    for r_i, c_i in zip(r, c, strict=True):
        a = r_i / n_ref if r_i else eps
        b = c_i / n_cur if c_i else eps
        terms.append((b - a) * math.log(b / a))
    return math.fsum(terms)


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the limiting Kolmogorov distribution (scipy.stats.kstwobign.sf), without scipy.

    scipy is only a development dependency, and the UDFs run in the job's Python workers. Two series are
    used, each where it converges in a few terms: 2 * sum_k (-1)^(k-1) exp(-2 k^2 x^2) for x >= 1.18, and
    1 - sqrt(2 pi) / x * sum_k exp(-(2k-1)^2 pi^2 / (8 x^2)) below.
    """
    if math.isnan(x):
        raise ValueError("x must not be NaN")
    if x <= 0.0:
        return 1.0
    if x >= 1.18:
        sf = 2.0 * math.fsum((-1.0) ** (k - 1) * math.exp(-2.0 * k * k * x * x) for k in range(1, 12))
    else:
        t = math.pi * math.pi / (8.0 * x * x)
        cdf = math.sqrt(2.0 * math.pi) / x * math.fsum(math.exp(-((2 * k - 1) ** 2) * t) for k in range(1, 12))
        sf = 1.0 - cdf
    return min(max(sf, 0.0), 1.0)


def ks_from_histograms(reference: Sequence[int], current: Sequence[int]) -> KsResult | None:
    """Two-sample KS test of the current scores against the reference, from their histograms.

    The statistic is max |F_ref - F_cur| over the bin edges, computed exactly: scipy's ``ks_2samp`` statistic
    on scores snapped to one value per bin (bit for bit with its exact method). Binned, the CDFs are only
    seen at the edges, so this is a LOWER bound of the statistic of the raw scores, and the p-value an upper
    bound: binning can hide drift, never invent it. The p-value is asymptotic (the exact two-sample
    distribution costs O(n * m) per window): Kolmogorov's limiting distribution with the effective sample
    size en = n * m / (n + m) and Stephens' small-sample correction, at
    lambda = (sqrt(en) + 0.12 + 0.11 / sqrt(en)) * D; it is within about 0.05 of scipy's for n, m >= 20 and
    closer for larger samples, and the binned (tied) scores make it conservative. None if either histogram
    is empty.
    """
    r, c = _counts("reference", reference), _counts("current", current)
    _same_length(reference=r, current=c)
    n_ref, n_cur = sum(r), sum(c)
    if n_ref == 0 or n_cur == 0:
        return None
    # max |cum_r / n_ref - cum_c / n_cur| in integers, divided once: the correctly rounded exact statistic.
    cum_r = cum_c = widest = 0
    for r_i, c_i in zip(r, c, strict=True):
        cum_r += r_i
        cum_c += c_i
        widest = max(widest, abs(cum_r * n_cur - cum_c * n_ref))
    statistic = widest / (n_ref * n_cur)
    root_en = math.sqrt(n_ref * n_cur / (n_ref + n_cur))
    return KsResult(statistic=statistic, pvalue=kolmogorov_sf((root_en + 0.12 + 0.11 / root_en) * statistic))


# ---------------------------------------------------------------------------------------------------------
# Uncertainty and latency


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """Wilson score interval for a binomial rate (default 95%).

    Unlike the normal (Wald) interval it stays inside [0, 1] and does not collapse to a point at 0 or n
    successes, so it is usable on the small counts of a one-minute window. None when n == 0.
    """
    k, total = operator.index(successes), operator.index(n)
    if total < 0 or not 0 <= k <= total:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes!r}, n={n!r}")
    if not (math.isfinite(z) and z > 0):
        raise ValueError(f"z must be positive, got {z!r}")
    if total == 0:
        return None
    p_hat = k / total
    z2 = z * z
    denom = 1.0 + z2 / total
    centre = (p_hat + z2 / (2 * total)) / denom
    half = z / denom * math.sqrt(p_hat * (1.0 - p_hat) / total + z2 / (4 * total * total))
    # Exact ends at 0 and n successes; min/max keep p_hat inside against rounding.
    low = 0.0 if k == 0 else min(max(centre - half, 0.0), p_hat)
    high = 1.0 if k == total else max(min(centre + half, 1.0), p_hat)
    return low, high


def quantile_from_buckets(
    counts: Sequence[int], upper_edges: Sequence[float], q: float, lower_edge: float = 0.0
) -> float | None:
    """The q-quantile (e.g. label latency p50, p95) from bucket counts, interpolating linearly in its bucket.

    Buckets are closed above: bucket 0 is [lower_edge, upper_edges[0]], bucket i is
    (upper_edges[i-1], upper_edges[i]]. With rank q * N, the answer lies in the first bucket whose cumulative
    count reaches the rank - the bucket of the inverted-CDF sample quantile (numpy method "inverted_cdf") -
    and assumes values spread evenly inside it, so the error is at most that bucket's width. If that bucket
    is open (upper edge +inf) its lower edge is returned, a lower bound (Prometheus' histogram_quantile does
    the same). None for no observations.
    """
    c = _counts("counts", counts)
    edges = [float(e) for e in upper_edges]
    _same_length(counts=c, upper_edges=edges)
    if not (math.isfinite(q) and 0.0 <= q <= 1.0):
        raise ValueError(f"q must be in [0, 1], got {q!r}")
    bounds = [_finite("lower_edge", lower_edge), *edges]
    if any(math.isnan(e) for e in edges) or any(a >= b for a, b in pairwise(bounds)):
        raise ValueError("bucket edges must be strictly increasing above lower_edge")
    total = sum(c)
    if total == 0:
        return None
    rank = q * total
    cumulative = 0
    for i, count in enumerate(c):
        if count and cumulative + count >= rank:
            low, high = bounds[i], bounds[i + 1]
            if math.isinf(high):
                return low
            return low + (high - low) * max(rank - cumulative, 0.0) / count
        cumulative += count
    raise AssertionError("unreachable: the last non-empty bucket reaches every rank")  # pragma: no cover


# ---------------------------------------------------------------------------------------------------------
# Estimated performance before labels


def cbpe_from_expected(
    expected_tp: float, expected_fp: float, expected_fn: float, expected_tn: float
) -> CbpeEstimate | None:
    """Accuracy, precision and recall of an expected confusion matrix (CBPE's last step).

    The SQL can also sum the expectation per record with the model's own decision, which is exact for any
    threshold: E[TP] = SUM(score) FILTER (WHERE predicted = 1), E[FP] = SUM(1 - score) FILTER (WHERE
    predicted = 1), E[FN] = SUM(score) FILTER (WHERE predicted = 0), E[TN] = SUM(1 - score) FILTER (WHERE
    predicted = 0). None for an empty window; precision None without expected predicted positives, recall
    None without expected positives.
    """
    tp, fp, fn, tn = (
        _finite(name, v)
        for name, v in (("tp", expected_tp), ("fp", expected_fp), ("fn", expected_fn), ("tn", expected_tn))
    )
    if min(tp, fp, fn, tn) < 0:
        raise ValueError("expected counts must be >= 0")
    total = tp + fp + fn + tn
    if total == 0:
        return None
    return CbpeEstimate(
        expected_tp=tp,
        expected_fp=fp,
        expected_fn=fn,
        expected_tn=tn,
        accuracy=(tp + tn) / total,
        precision=tp / (tp + fp) if tp + fp > 0 else None,
        recall=tp / (tp + fn) if tp + fn > 0 else None,
    )


def cbpe_estimates(counts: Sequence[int], score_sums: Sequence[float], threshold_bin: int) -> CbpeEstimate | None:
    """Confidence-based performance estimation (NannyML's CBPE) from the score histogram alone.

    Before labels arrive, a calibrated score p is the probability that the record is positive, so each
    predicted-positive record is expected to be a TP with probability p and an FP with 1 - p. Per bin, with
    count c_i and score sum s_i = c_i * m_i: E[TP] = sum of s_i over predicted-positive bins, E[FP] = sum of
    c_i - s_i over them, E[FN] = sum of s_i over the other bins, E[TN] = the rest. Bins threshold_bin and
    above count as predicted positive (0 = all, B = none); with the bin rule above, that is exactly
    "score > e_t" for the edge e_t = score_bin_edges(B)[threshold_bin]. A model deciding "score >= t" with t
    on that edge also calls the scores equal to t positive, which this misses: use `cbpe_from_expected` on
    per-record sums to follow the model's own decision exactly. Only as good as the calibration (see ece).
    """
    c = _counts("counts", counts)
    _same_length(counts=c, score_sums=score_sums)
    t = operator.index(threshold_bin)
    if not 0 <= t <= len(c):
        raise ValueError(f"threshold_bin must be in [0, {len(c)}], got {threshold_bin!r}")
    sums = [_finite("score_sums", s) for s in score_sums]
    if any(not 0.0 <= s <= c_i for s, c_i in zip(sums, c, strict=True)):
        raise ValueError("each bin's score sum must be in [0, its count]")
    if sum(c) == 0:
        return None
    return cbpe_from_expected(
        expected_tp=math.fsum(sums[t:]),
        expected_fp=math.fsum(c_i - s for c_i, s in zip(c[t:], sums[t:], strict=True)),
        expected_fn=math.fsum(sums[:t]),
        expected_tn=math.fsum(c_i - s for c_i, s in zip(c[:t], sums[:t], strict=True)),
    )


# ---------------------------------------------------------------------------------------------------------
# Champion vs challenger


def mcnemar_pvalue(b: int, c: int) -> float | None:
    """Exact two-sided McNemar test on paired correctness (scipy.stats.binomtest(b, b + c).pvalue).

    b = pairs the champion got right and the challenger wrong, c = the reverse; pairs both got right or
    both wrong say nothing about which is better. Under "equally good", b ~ Binomial(b + c, 1/2), so the
    p-value is 2 * P(X <= min(b, c)), capped at 1. Summed in log space, so it is exact for any window size
    without the chi-square approximation. None when no pair disagrees.
    """
    k, other = operator.index(b), operator.index(c)
    if k < 0 or other < 0:
        raise ValueError(f"need b, c >= 0, got b={b!r}, c={c!r}")
    n = k + other
    if n == 0:
        return None
    low = min(k, other)
    log_half_n = n * math.log(0.5)
    log_terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half_n for i in range(low + 1)]
    top = max(log_terms)
    tail = math.exp(top) * math.fsum(math.exp(t - top) for t in log_terms)
    return min(1.0, 2.0 * tail)
