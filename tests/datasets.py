"""Seeded input shared by the integration tests that need a small, realistic, out-of-order dataset."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from modelmon.producers.simulator import generate, iso_utc

from modelmon.config import SimulatorConfig

START = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)

Records = list[dict[str, Any]]


def out_of_order_dataset(
    sim: SimulatorConfig, start: datetime, n_transactions: int, *, shuffle_seed: int, shuffle_predictions: bool
) -> tuple[Records, Records]:
    """The simulator's records plus one label that came 5 s before its prediction (clock skew, within
    max_label_skew: it still counts), with neighbouring records swapped inside their topic (the watermark
    allows 5 s): labels always, predictions when asked."""
    data = generate(sim, start, n_transactions=n_transactions)
    predictions = [dict(p) for p in data.predictions]
    labels = [dict(label) for label in data.labels]
    early = {**predictions[100], "transaction_id": predictions[100]["transaction_id"] + "-early"}
    predictions.insert(101, early)
    label_time = datetime.fromisoformat(early["event_time"]) - timedelta(seconds=5)
    labels.append({"transaction_id": early["transaction_id"], "actual_fraud": 1, "label_time": iso_utc(label_time)})
    labels.sort(key=lambda label: label["label_time"])
    rng = random.Random(shuffle_seed)
    for records in (predictions, labels) if shuffle_predictions else (labels,):
        for i in range(0, len(records) - 1, 2):
            if rng.random() < 0.5:
                records[i], records[i + 1] = records[i + 1], records[i]
    return predictions, labels


def small_dataset(n_transactions: int = 3000) -> tuple[Records, Records]:
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
    return out_of_order_dataset(sim, START, n_transactions, shuffle_seed=3, shuffle_predictions=False)
