"""A streaming run killed with SIGKILL (JVM, Python workers and all) and started again from its checkpoint:
every label is joined exactly once, and the history table holds every final row the metrics topic committed,
once, and nothing the topic lacks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable
from modelmon.history.query import rows as plain_rows
from modelmon.producers.simulator import epoch_millis, generate, is_prediction

from modelmon.config import Config, SimulatorConfig
from modelmon.kafka_local import LocalKafka
from modelmon.paths import history_dir
from modelmon.topics import METRICS_KEY, latest_metrics, read_topic
from tests.kafka_helpers import fresh_config, produce, run_cli, write_config
from tests.oracle import join_labels, unmatched_labels

pytestmark = pytest.mark.integration

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
Key = tuple[Any, ...]


def _produce(cfg: Config, records: list[Any]) -> None:
    for wanted, topic in ((True, cfg.topics.predictions), (False, cfg.topics.labels)):
        chosen = [r for r in records if is_prediction(r) == wanted]
        produce(
            cfg,
            topic,
            ((r.key.encode(), json.dumps(r.value).encode(), epoch_millis(r.due_time)) for r in chosen),
        )


def _start(config_file: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        # Its own process group, so one signal reaches the CLI, its JVM and the Python UDF workers.
        return subprocess.Popen(
            [sys.executable, "-m", "modelmon.cli", "--config", str(config_file), "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_for(job: subprocess.Popen[bytes], log: Path, done: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert job.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "timed out; job log:\n" + log.read_text()[-3000:]
        time.sleep(2)


def _history(cfg: Config) -> list[dict[str, Any]]:
    root = history_dir(cfg)
    if not DeltaTable.is_deltatable(str(root)):
        return []
    return list(plain_rows(DeltaTable(str(root)).to_pandas()))


def _topic_finals(cfg: Config) -> dict[Key, dict[str, Any]]:
    latest = latest_metrics(read_topic(cfg, cfg.topics.metrics, idle_timeout_s=2))
    return {key: row for key, row in latest.items() if row["is_final"]}


def _labelled(cfg: Config) -> list[tuple[str, str, str]]:
    rows = read_topic(cfg, cfg.topics.labelled_predictions, idle_timeout_s=2)
    return sorted((r["transaction_id"], r["model_version"], r["label_time"]) for r in rows)


def _key(row: dict[str, Any]) -> Key:
    return tuple(row[field] for field in METRICS_KEY)


def test_sigkill_and_restart_leave_no_duplicate_and_no_missing_history_row(
    kafka_broker: LocalKafka, data_dir: Path, tmp_path: Path
) -> None:
    cfg = fresh_config(
        data_dir,
        {
            "job": {"checkpoint_interval": "3s"},
            "join": {"label_horizon": "1min", "max_label_skew": "5s"},
            "history": {"sync_interval": "2s"},
        },
    )
    sim = SimulatorConfig(rate=20, label_delay_min=timedelta(seconds=2), label_delay_max=timedelta(seconds=40), seed=5)
    data = generate(sim, START, n_transactions=4800)  # four minutes of event time
    records = data.records
    pairs = join_labels(data.predictions, data.labels, horizon=cfg.join.label_horizon, skew=cfg.join.max_label_skew)
    config_file = write_config(cfg, tmp_path / "modelmon.yaml")
    log = tmp_path / "job.log"
    cut = len(records) // 2

    _produce(cfg, records[:cut])
    job = _start(config_file, log)
    try:
        _wait_for(job, log, lambda: len(_history(cfg)) >= 10, timeout_s=300)
        time.sleep(4)  # a little more: rows in files of a checkpoint not yet complete when the kill comes
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(timeout=60)
    before_kill = len(_history(cfg))

    _produce(cfg, records[cut:])
    job = _start(config_file, log)
    try:
        _wait_for(
            job,
            log,
            lambda: (
                max((k[1] for k in _topic_finals(cfg) if k[0] == "unlabelled"), default="")
                >= (START + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
                and len(_labelled(cfg)) >= len(pairs)
            ),
            timeout_s=300,
        )
        committed = _topic_finals(cfg)  # committed on the topic, so in checkpoints that also committed files
        time.sleep(2 * cfg.job.checkpoint_interval.total_seconds() + 2 * cfg.history.sync_interval.total_seconds())
    finally:
        job.terminate()  # stops as a user would; the last sync runs
        job.wait(timeout=120)

    assert "resuming from checkpoint" in log.read_text()
    # Every label joined exactly once, whatever the kill cut off and the restart replayed.
    assert _labelled(cfg) == sorted((p["transaction_id"], p["model_version"], p["label_time"]) for p in pairs)
    # And only the labels no prediction matches are dead letters, once each.
    unmatched = sorted(json.dumps(label) for label in unmatched_labels(data.labels, pairs))
    dead = sorted(row["payload"] for row in read_topic(cfg, cfg.topics.dead_letter, idle_timeout_s=2))
    wrong = sorted(set(dead) - set(unmatched))
    assert dead == unmatched, (
        f"{len(dead)} dead letters, {len(unmatched)} unmatched labels; restart at {records[cut].due_time}; "
        f"dead letters of matched labels, e.g. {wrong[:3]} ... {wrong[-3:]}"
    )
    result = run_cli(config_file, "history", "sync")
    assert result.returncode == 0, result.stderr[-2000:]
    table = _history(cfg)
    keys = [_key(row) for row in table]
    assert len(keys) == len(set(keys)), "a final row is in the history twice"
    assert len(table) > before_kill, "the restarted job added nothing"
    finals = _topic_finals(cfg)
    history = dict(zip(keys, table, strict=True))
    missing = set(committed) - set(history)
    assert not missing, f"{len(missing)} committed final rows missing from the history, e.g. {sorted(missing)[:3]}"
    assert set(history) <= set(finals), "the history holds a row the metrics topic never committed"
    for key, row in history.items():
        assert row == finals[key], key
    assert {key[0] for key in committed} >= {"live", "unlabelled", "cohort"}
