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

from modelmon.config import Config, SimulatorConfig
from modelmon.kafka_local import LocalKafka
from modelmon.topics import read_topic
from tests.kafka_helpers import LiveRows, fresh_config, live_rows, produce, write_config
from tests.oracle import join_labels, live_view

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
    _produce(cfg, data.records[cut:])
    _run_until(config_file, tmp_path / "job.log", cfg, lambda rows: _joined_count(cfg) >= len(pairs), timeout_s=240)

    assert "resuming from checkpoint" in (tmp_path / "job.log").read_text()
    rows = list(read_topic(cfg, cfg.topics.labelled_predictions))
    assert sorted((r["transaction_id"], r["model_version"], r["label_time"]) for r in rows) == sorted(
        (p["transaction_id"], p["model_version"], p["label_time"]) for p in pairs
    )
    # No window counts a label twice, whatever the restart replayed.
    expected = live_view(pairs, cfg.windows.size)
    for key, row in live_rows(cfg, idle_timeout_s=2).items():
        assert row["n_labelled"] <= expected[key]["n_labelled"], key


def _joined_count(cfg: Config) -> int:
    return sum(1 for _ in read_topic(cfg, cfg.topics.labelled_predictions, idle_timeout_s=2))
