"""The bounded job against the real broker and a Flink minicluster, checked against scikit-learn."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from modelmon.producers.simulator import generate, iso_utc

from modelmon.config import Config, SimulatorConfig
from modelmon.kafka_local import LocalKafka
from modelmon.topics import read_topic
from tests.kafka_helpers import fresh_config, json_records, live_rows, produce, run_cli, write_config
from tests.oracle import COUNTS, join_labels, live_view

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)

# Records the job must reject, each with the reason it must give.
BAD_PREDICTIONS: list[tuple[bytes, str]] = [
    (b"{truncated", "not a JSON object"),
    (b"[1, 2]", "not a JSON object"),
    (
        json.dumps(
            {
                "model_version": "v1",
                "predicted_fraud_score": 0.2,
                "predicted_fraud": 0,
                "event_time": "2026-01-05T10:00:10Z",
            }
        ).encode(),
        "missing transaction_id",
    ),
    (
        json.dumps(
            {
                "transaction_id": "bad-1",
                "model_version": "v1",
                "predicted_fraud_score": 1.5,
                "predicted_fraud": 1,
                "event_time": "2026-01-05T10:00:10Z",
            }
        ).encode(),
        "predicted_fraud_score outside [0, 1]",
    ),
    (
        json.dumps(
            {
                "transaction_id": "bad-2",
                "model_version": "v1",
                "predicted_fraud_score": "high",
                "predicted_fraud": 1,
                "event_time": "2026-01-05T10:00:10Z",
            }
        ).encode(),
        "predicted_fraud_score missing or not a number",
    ),
    (
        json.dumps(
            {
                "transaction_id": "bad-3",
                "model_version": "v1",
                "predicted_fraud_score": 0.4,
                "predicted_fraud": 0,
                "event_time": "yesterday",
            }
        ).encode(),
        "event_time missing or not ISO-8601 UTC",
    ),
]
BAD_LABELS: list[tuple[bytes, str]] = [
    (
        json.dumps({"transaction_id": "bad-4", "actual_fraud": 2, "label_time": "2026-01-05T10:01:00Z"}).encode(),
        "actual_fraud missing or not 0|1",
    ),
]


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


def test_bounded_live_view_equals_sklearn(kafka_broker: LocalKafka, data_dir: Path, tmp_path: Path) -> None:
    cfg: Config = fresh_config(data_dir, {"join": {"label_horizon": "3min", "max_label_skew": "10s"}})
    predictions, labels = small_dataset()
    produce(cfg, cfg.topics.predictions, json_records(predictions, "event_time"))
    produce(cfg, cfg.topics.labels, json_records(labels, "label_time"))
    produce(cfg, cfg.topics.predictions, ((None, value, None) for value, _ in BAD_PREDICTIONS))
    produce(cfg, cfg.topics.labels, ((None, value, None) for value, _ in BAD_LABELS))

    result = run_cli(write_config(cfg, tmp_path / "modelmon.yaml"), "run", "--bounded")
    assert result.returncode == 0, result.stderr[-3000:]

    actual = live_rows(cfg)
    pairs = join_labels(predictions, labels, horizon=cfg.join.label_horizon, skew=cfg.join.max_label_skew)
    expected = live_view(pairs, cfg.windows.size)

    assert len(pairs) < len(labels) * 2, "the horizon must cut some labels for this test to mean anything"
    assert set(actual) == set(expected)
    for key, want in expected.items():
        got = actual[key]
        assert got["view"] == "live" and got["is_final"] is True and got["segment_key"] == "*"
        for name in COUNTS:
            assert got[name] == want[name], (key, name)
        for name in ("accuracy", "precision", "recall", "f1"):
            assert got[name] == pytest.approx(want[name], abs=1e-12), (key, name)

    dead = list(read_topic(cfg, cfg.topics.dead_letter))
    want_reasons = sorted(reason for _, reason in BAD_PREDICTIONS + BAD_LABELS)
    assert sorted(row["reason"] for row in dead) == want_reasons
    assert {row["payload"] for row in dead} == {value.decode() for value, _ in BAD_PREDICTIONS + BAD_LABELS}

    joined = list(read_topic(cfg, cfg.topics.labelled_predictions))
    assert len(joined) == len(pairs)
