"""Seeded input shared by the integration tests that need a small, realistic, out-of-order dataset."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from modelmon.producers.simulator import generate, iso_utc

from modelmon.config import SimulatorConfig

START = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def small_dataset(n_transactions: int = 3000) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Two model versions scoring the same transactions; labels 5 s to 4 min late, some never."""
    sim = SimulatorConfig(
        rate=25,
        fraud_rate=0.1,
        model_versions=("v1", "v2"),
        label_rate=0.85,
        label_delay_min=timedelta(seconds=5),
        label_delay_max=timedelta(minutes=4),
        seed=7,
    )
    data = generate(sim, START, n_transactions=n_transactions)
    predictions = [dict(p) for p in data.predictions]
    labels = [dict(label) for label in data.labels]
    # A label that came 5 s before its prediction (clock skew, within max_label_skew) still counts. Both
    # records sit in their topics at their own times.
    early = {**predictions[100], "transaction_id": predictions[100]["transaction_id"] + "-early"}
    predictions.insert(101, early)
    label_time = datetime.fromisoformat(early["event_time"]) - timedelta(seconds=5)
    labels.append({"transaction_id": early["transaction_id"], "actual_fraud": 1, "label_time": iso_utc(label_time)})
    labels.sort(key=lambda label: label["label_time"])
    # Out of order inside the topic too: swap neighbours (the watermark allows 5 s).
    rng = random.Random(3)
    for i in range(0, len(labels) - 1, 2):
        if rng.random() < 0.5:
            labels[i], labels[i + 1] = labels[i + 1], labels[i]
    return predictions, labels
