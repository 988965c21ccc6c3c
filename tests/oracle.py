"""The independent oracle: the live view recomputed from the raw rows with pandas and scikit-learn."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _window_start(t: datetime, size: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=t.tzinfo)
    return epoch + ((t - epoch) // size) * size


def join_labels(
    predictions: Iterable[dict[str, Any]],
    labels: Iterable[dict[str, Any]],
    *,
    horizon: timedelta,
    skew: timedelta,
) -> list[dict[str, Any]]:
    """Each prediction paired with each label of its transaction inside [event - skew, event + horizon]."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for label in labels:
        by_id.setdefault(label["transaction_id"], []).append(label)
    pairs = []
    for p in predictions:
        event = _time(p["event_time"])
        for label in by_id.get(p["transaction_id"], []):
            if event - skew <= _time(label["label_time"]) <= event + horizon:
                pairs.append({**p, "actual_fraud": label["actual_fraud"], "label_time": label["label_time"]})
    return pairs


def unmatched_labels(labels: Iterable[dict[str, Any]], pairs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The labels join_labels left without a pair (the job's dead letters), in their order."""
    paired = {(pair["transaction_id"], pair["label_time"]) for pair in pairs}
    return [label for label in labels if (label["transaction_id"], label["label_time"]) not in paired]


def _nan_to_none(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def live_view(pairs: list[dict[str, Any]], window: timedelta) -> dict[tuple[str, str], dict[str, Any]]:
    """Expected live rows keyed by (window_start ISO, model_version incl. '*')."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for pair in pairs:
        start = _window_start(_time(pair["label_time"]), window).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        groups.setdefault((start, pair["model_version"]), []).append(pair)
        groups.setdefault((start, "*"), []).append(pair)
    expected = {}
    for key, rows in groups.items():
        y_true = [row["actual_fraud"] for row in rows]
        y_pred = [row["predicted_fraud"] for row in rows]
        tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
        expected[key] = {
            "n_labelled": len(rows),
            "tp": int(tp),
            "fp": int(fp),
            "tn": int(tn),
            "fn": int(fn),
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "precision": _nan_to_none(precision_score(y_true, y_pred, zero_division=np.nan)),
            "recall": _nan_to_none(recall_score(y_true, y_pred, zero_division=np.nan)),
            "f1": _nan_to_none(f1_score(y_true, y_pred, zero_division=np.nan)),
        }
    return expected


COUNTS = ("n_labelled", "tp", "fp", "tn", "fn")


def counts(rows: dict[tuple[str, str], dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Only the exact counts of each row, for comparisons that must hold to the unit."""
    return {key: {name: row[name] for name in COUNTS} for key, row in rows.items()}


# -- the complete metric set ----------------------------------------------------------------------------

SCORE_BINS = 100
CALIBRATION_BINS = 10
LOG_LOSS_EPS = 1e-15


def bin_of(scores: np.ndarray, n_bins: int) -> np.ndarray:
    """calibration_curve's own binning, written out with numpy."""
    return np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], scores)


def segment_groups(row: dict[str, Any], segments: dict[str, tuple[str, ...]]) -> list[tuple[str, str, str]]:
    """(model_version, segment_key, segment_value) of every group a row belongs to, '*' included."""
    keys = [("*", "*")] + [
        (name, row.get(name) if row.get(name) in values else "other") for name, values in segments.items()
    ]
    return [(version, key, value) for version in (row["model_version"], "*") for key, value in keys]


def group_rows(
    rows: Iterable[dict[str, Any]], time_field: str, window: timedelta, segments: dict[str, tuple[str, ...]]
) -> dict[tuple[str, str, str, str], list[dict[str, Any]]]:
    """Rows by (window_start ISO, model_version, segment_key, segment_value)."""
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        start = _window_start(_time(row[time_field]), window).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        for group in segment_groups(row, segments):
            groups.setdefault((start, *group), []).append(row)
    return groups


def labelled_metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Every label-based metric of the rows, by scikit-learn (and numpy where sklearn has no function)."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import (
        average_precision_score,
        brier_score_loss,
        log_loss,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    y = np.array([row["actual_fraud"] for row in rows])
    y_pred = np.array([row["predicted_fraud"] for row in rows])
    p = np.array([row["predicted_fraud_score"] for row in rows], dtype=float)
    tn, fp, fn, tp = confusion_matrix(y, y_pred, labels=[0, 1]).ravel()
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, y_pred, labels=[1], average=None, zero_division=np.nan
    )
    both_classes = 0 < y.sum() < len(y)
    bins = bin_of(p, CALIBRATION_BINS)
    counts = np.bincount(bins, minlength=CALIBRATION_BINS)
    nonempty = counts > 0
    mean_score = np.bincount(bins, weights=p, minlength=CALIBRATION_BINS)[nonempty] / counts[nonempty]
    observed = np.bincount(bins, weights=y, minlength=CALIBRATION_BINS)[nonempty] / counts[nonempty]
    prob_true, prob_pred = calibration_curve(y, p, n_bins=CALIBRATION_BINS)
    q = np.clip(np.where(y == 1, p, 1.0 - p), LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    snapped = bin_of(p, SCORE_BINS)
    return {
        "n_labelled": len(rows),
        "tp": int(tp),
        "fp": int(fp),
        "tn": int(tn),
        "fn": int(fn),
        "accuracy": float(accuracy_score(y, y_pred)),
        "precision": _nan_to_none(float(precision[0])),
        "recall": _nan_to_none(float(recall[0])),
        "f1": _nan_to_none(float(f1[0])),
        "specificity": float(tn / (tn + fp)) if tn + fp else None,
        "roc_auc": float(roc_auc_score(y, p)) if both_classes else None,
        # Average precision of the scores snapped to their bin: what a histogram can know exactly.
        "pr_auc_binned": float(average_precision_score(y, snapped)) if y.sum() else None,
        "pr_auc": float(average_precision_score(y, p)) if y.sum() else None,
        "brier": float(brier_score_loss(y, p)),
        # sklearn >= 1.5 clips to machine epsilon; DESIGN.md clips to 1e-15: the clipped mean is the oracle,
        # and sklearn's log_loss agrees with it wherever no score is within 1e-15 of the wrong label.
        "log_loss": float(np.mean(-np.log(q))),
        "log_loss_sklearn": float(log_loss(y, p, labels=[0, 1])),
        "ece": float(np.sum(counts[nonempty] / len(rows) * np.abs(observed - mean_score))),
        "mce": float(np.max(np.abs(observed - mean_score))),
        "reliability": (prob_true, prob_pred, counts[nonempty]),
        "latency": np.array([row["label_latency_s"] for row in rows], dtype=float),
    }


def prediction_metrics(rows: list[dict[str, Any]], window: timedelta) -> dict[str, Any]:
    """Label-free figures of the rows: volume, score distribution, CBPE expectation."""
    p = np.array([row["predicted_fraud_score"] for row in rows], dtype=float)
    decided = np.array([row["predicted_fraud"] for row in rows]) == 1
    e_tp, e_fp = p[decided].sum(), (1 - p[decided]).sum()
    e_fn, e_tn = p[~decided].sum(), (1 - p[~decided]).sum()
    return {
        "n_predictions": len(rows),
        "throughput_per_s": len(rows) / window.total_seconds(),
        "mean_score": float(p.mean()),
        "predicted_positive_rate": float(decided.mean()),
        "estimated_accuracy": float((e_tp + e_tn) / len(rows)),
        "estimated_precision": float(e_tp / (e_tp + e_fp)) if decided.any() else None,
        "estimated_recall": float(e_tp / (e_tp + e_fn)),
        "scores": p,
    }
