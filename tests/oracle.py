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
