"""A streaming run stopped and started again resumes from its checkpoint: every label that arrives around
the restart is joined exactly once (the restored join state still holds the predictions made before it),
and no live window counts a label twice."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from modelmon.producers.simulator import TimedRecord, epoch_millis, generate, is_prediction

from modelmon.config import Config, SimulatorConfig, format_duration
from modelmon.kafka_local import LocalKafka
from modelmon.topics import read_topic
from tests.kafka_helpers import LiveRows, fresh_config, live_rows, produce, write_config
from tests.oracle import join_labels, live_view, unmatched_labels

# Slow, and covered in CI by test_history_recovery (a local run killed and resumed, every label joined once);
# `make test-slow` runs it with the cluster's recovery test.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

START = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def _produce(cfg: Config, records: list[TimedRecord]) -> None:
    for kind_is_prediction, topic in ((True, cfg.topics.predictions), (False, cfg.topics.labels)):
        chosen = [r for r in records if is_prediction(r) == kind_is_prediction]
        produce(cfg, topic, ((r.key.encode(), json.dumps(r.value).encode(), epoch_millis(r.due_time)) for r in chosen))


def _run_until(config_file: Path, log: Path, cfg: Config, done: Callable[[LiveRows], bool], timeout_s: float) -> None:
    """Run the streaming job until `done(rows)` holds, then stop it as a user would (SIGTERM)."""
    with log.open("ab") as out:
        job = subprocess.Popen(
            [sys.executable, "-m", "modelmon.cli", "--config", str(config_file), "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while not done(live_rows(cfg, idle_timeout_s=2)):
            assert job.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(3)
        time.sleep(2 * cfg.job.checkpoint_interval.total_seconds())  # a checkpoint after the rows seen
    finally:
        job.terminate()
        job.wait(timeout=120)


def test_stop_and_start_again_joins_every_label_once(kafka_broker: LocalKafka, data_dir: Path, tmp_path: Path) -> None:
    cfg = fresh_config(data_dir, {"job": {"checkpoint_interval": "3s"}})
    sim = SimulatorConfig(rate=20, label_delay_min=timedelta(seconds=5), label_delay_max=timedelta(seconds=60), seed=11)
    data = generate(sim, START, n_transactions=3600)  # three minutes of event time
    config_file = write_config(cfg, tmp_path / "modelmon.yaml")
    cut = len(data.records) // 2
    pairs = join_labels(data.predictions, data.labels, horizon=cfg.join.label_horizon, skew=cfg.join.max_label_skew)
    # Labels after the restart whose prediction came before it: only the restored join state can match them.
    restart = data.records[cut].due_time
    spanning = [
        p for p in pairs if datetime.fromisoformat(p["event_time"]) < restart <= datetime.fromisoformat(p["label_time"])
    ]
    assert spanning

    _produce(cfg, data.records[:cut])
    _run_until(config_file, tmp_path / "job.log", cfg, lambda rows: len(rows) > 0, timeout_s=240)
    # After the restart, a producer's retries of records the first run took: only the restored state of the
    # repeat check knows them.
    retried = [r for r in data.records[:cut] if is_prediction(r)][-3:] + [
        r for r in data.records[:cut] if not is_prediction(r)
    ][-2:]
    _produce(cfg, data.records[cut:] + retried)
    _run_until(config_file, tmp_path / "job.log", cfg, lambda rows: _joined_count(cfg) >= len(pairs), timeout_s=240)

    assert "resuming from checkpoint" in (tmp_path / "job.log").read_text()
    rows = list(read_topic(cfg, cfg.topics.labelled_predictions))
    assert sorted((r["transaction_id"], r["model_version"], r["label_time"]) for r in rows) == sorted(
        (p["transaction_id"], p["model_version"], p["label_time"]) for p in pairs
    )
    # Dead letters: the retries, and the labels no prediction matches, each once.
    unmatched = unmatched_labels(data.labels, pairs)
    no_pair = (
        f"no prediction of this transaction_id made between {format_duration(cfg.join.label_horizon)} before and "
        f"{format_duration(cfg.join.max_label_skew)} after label_time"
    )
    expected = [(json.dumps(label), no_pair) for label in unmatched] + [
        (
            json.dumps(r.value),
            "repeats an earlier prediction (same transaction_id, model_version, event_time)"
            if is_prediction(r)
            else "repeats an earlier label (same transaction_id, label_time)",
        )
        for r in retried
    ]
    dead = [(row["payload"], row["reason"]) for row in read_topic(cfg, cfg.topics.dead_letter, idle_timeout_s=2)]
    assert sorted(dead) == sorted(expected)
    # No window counts a label twice, whatever the restart replayed.
    expected = live_view(pairs, cfg.windows.size)
    for key, row in live_rows(cfg, idle_timeout_s=2).items():
        assert row["n_labelled"] <= expected[key]["n_labelled"], key


def _joined_count(cfg: Config) -> int:
    return sum(1 for _ in read_topic(cfg, cfg.topics.labelled_predictions, idle_timeout_s=2))
