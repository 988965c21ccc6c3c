"""The streaming job on a standalone cluster survives what production throws at it, with exactly-once results:
its TaskManager killed with SIGKILL and started again, the Kafka broker restarted, and a stop with a savepoint
followed by a resume at another parallelism. At the end every label is joined exactly once (the labelled
topic, read committed), every live window the watermark closed was written once and counts no label twice,
and the history table holds each committed final row once.

Slow (several minutes): `make test-slow` runs it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable
from modelmon.history.query import rows as plain_rows
from modelmon.history.sync import sync
from modelmon.producers.simulator import TimedRecord, epoch_millis, generate, is_prediction

from modelmon import cluster
from modelmon.config import Config, SimulatorConfig
from modelmon.flink_dist import IDENT, flink_env
from modelmon.kafka_local import LocalKafka
from modelmon.paths import history_dir
from modelmon.processes import alive
from modelmon.topics import METRICS_KEY, latest_metrics, read_topic
from tests.kafka_helpers import TEST_KAFKA_PORT, fresh_config, produce, run_cli, write_config
from tests.oracle import counts, join_labels, live_view

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START = datetime(2026, 4, 6, 8, 0, tzinfo=UTC)
# Own broker (it is restarted) and own REST port (never a user's cluster).
KAFKA_PORT = TEST_KAFKA_PORT + 30
REST_PORT = 18091


@pytest.fixture
def cfg(tmp_path: Path) -> Iterator[Config]:
    """A broker and a cluster of the test's own; both stopped even when the test fails."""
    servers = f"127.0.0.1:{KAFKA_PORT}"
    base = {
        "kafka": {"bootstrap_servers": servers},
        "local_kafka": {"port": KAFKA_PORT, "controller_port": KAFKA_PORT + 1},
        "paths": {"data_dir": str(tmp_path / "data")},
    }
    broker = LocalKafka(Config.model_validate(base))
    broker.start()
    try:
        config = fresh_config(
            tmp_path / "data",
            {
                # A transaction a failure leaves open would hold back every read_committed reader until the broker
                # aborts it, after the transaction timeout (10 min by default): 2 min keeps such a wait short and
                # still outlasts a recovery (a shorter one could abort a transaction a checkpoint has yet to commit).
                "kafka": {"bootstrap_servers": servers, "transaction_timeout": "2min"},
                "local_kafka": base["local_kafka"],
                "cluster": {"rest_port": REST_PORT},
                "job": {"checkpoint_interval": "3s"},
                "join": {"label_horizon": "1min", "max_label_skew": "5s"},
                # The test writes each phase's minute of data at once, after a pause: a predictions partition
                # taken for idle meanwhile would let the labels move the watermark past the next phase's
                # predictions (README: the one reading order that can still cost the live view records).
                "windows": {"idle_timeout": "10min"},
            },
        )
        cluster.start(config)
        try:
            yield config
        finally:
            cluster.stop(config)
    finally:
        broker.stop()


def _produce(cfg: Config, records: list[TimedRecord]) -> None:
    for wanted, topic in ((True, cfg.topics.predictions), (False, cfg.topics.labels)):
        chosen = [r for r in records if is_prediction(r) == wanted]
        produce(cfg, topic, ((r.key.encode(), json.dumps(r.value).encode(), epoch_millis(r.due_time)) for r in chosen))


def _wait_for(what: str, done: Callable[[], bool], timeout_s: float) -> float:
    """Poll until done(); returns the seconds it took."""
    began = time.monotonic()
    while not done():
        assert time.monotonic() - began < timeout_s, f"timed out after {timeout_s:.0f}s waiting for {what}"
        time.sleep(2)
    return time.monotonic() - began


def _labelled(cfg: Config) -> list[tuple[str, str, str]]:
    rows = read_topic(cfg, cfg.topics.labelled_predictions, idle_timeout_s=2)
    return sorted((r["transaction_id"], r["model_version"], r["label_time"]) for r in rows)


def _joins_labels_after(cfg: Config, earlier: list[TimedRecord]) -> bool:
    """Whether a committed pair has a label later than every label of `earlier`: progress on what came after.
    (A count taken after producing the next phase is no baseline: the job may already have joined all of it.)"""
    last = max(datetime.fromisoformat(r.value["label_time"]) for r in earlier if not is_prediction(r))
    return any(datetime.fromisoformat(label_time) > last for _, _, label_time in _labelled(cfg))


def _metrics(cfg: Config) -> list[dict[str, Any]]:
    return list(read_topic(cfg, cfg.topics.metrics, idle_timeout_s=2))


def _taskmanager_pid(cfg: Config) -> int:
    pid_file = cluster.cluster_home(cfg) / "run" / f"flink-{IDENT}-taskexecutor.pid"
    pids = [int(word) for word in pid_file.read_text().split() if word.isdigit() and alive(int(word))]
    assert len(pids) == 1, pids
    return pids[0]


def _start_taskmanager(cfg: Config) -> None:
    home = cluster.cluster_home(cfg)
    subprocess.run([str(home / "bin" / "taskmanager.sh"), "start"], env=flink_env(home), check=True, timeout=60)


def _submit(config_file: Path, says: str, *options: str) -> str:
    """`modelmon submit` (streaming), as a user runs it; it must say what it resumed from. Returns the job id."""
    result = run_cli(config_file, "submit", *options, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert says in result.stderr, result.stderr[-3000:]
    found = re.search(r"job ([0-9a-f]{32}) running", result.stdout)
    assert found, result.stdout
    return found[1]


def _job_running(cfg: Config, job_id: str) -> bool:
    return any(job.job_id == job_id and job.state == "RUNNING" for job in cluster.jobs(cfg))


def test_taskmanager_kill_broker_restart_and_savepoint_rescale_keep_results_exact(cfg: Config, tmp_path: Path) -> None:
    sim = SimulatorConfig(rate=20, label_delay_min=timedelta(seconds=2), label_delay_max=timedelta(seconds=40), seed=7)
    data = generate(sim, START, n_transactions=4800)  # four minutes of event time
    records = data.records
    pairs = join_labels(data.predictions, data.labels, horizon=cfg.join.label_horizon, skew=cfg.join.max_label_skew)
    quarter = len(records) // 4
    phases = [records[i * quarter : (i + 1) * quarter] for i in range(3)] + [records[3 * quarter :]]
    progress: dict[str, float] = {}
    config_file = write_config(cfg, tmp_path / "modelmon.yaml")

    _produce(cfg, phases[0])
    first = _submit(config_file, "started without state")
    progress["first rows"] = _wait_for("the first rows", lambda: len(_labelled(cfg)) > 0, 240)
    time.sleep(2 * cfg.job.checkpoint_interval.total_seconds())  # a checkpoint with state to restore

    # 1. The TaskManager dies mid-stream (SIGKILL: no clean-up) while more data arrives; a new one registers.
    os.kill(_taskmanager_pid(cfg), signal.SIGKILL)
    _produce(cfg, phases[1])
    _start_taskmanager(cfg)
    progress["recovery after SIGKILL"] = _wait_for(
        "the job to recover from the TaskManager's loss", lambda: _joins_labels_after(cfg, phases[0]), 300
    )
    assert _job_running(cfg, first)

    # 2. The broker restarts (a clean stop, some seconds down, the same data) while the job runs.
    broker = LocalKafka(cfg)
    broker.stop()
    time.sleep(10)
    broker.start()
    _produce(cfg, phases[2])
    progress["progress after the broker restart"] = _wait_for(
        "progress after the broker restart", lambda: _joins_labels_after(cfg, phases[0] + phases[1]), 300
    )

    # 3. Stop with a savepoint, more data meanwhile, and resume at parallelism 1.
    stopped = run_cli(config_file, "cluster", "stop-job", timeout=300)
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    savepoint = Path(stopped.stdout.split("savepoint at ")[-1].strip())
    assert (savepoint / "_metadata").is_file()
    assert not _job_running(cfg, first)
    _produce(cfg, phases[3])
    second = _submit(config_file, f"resumed from {savepoint}", "-p", "1")
    assert second != first
    progress["all labels joined after the resume"] = _wait_for(
        "every label to be joined", lambda: len(_labelled(cfg)) >= len(pairs), 300
    )
    time.sleep(2 * cfg.job.checkpoint_interval.total_seconds())  # the last rows' transactions commit
    print(" ".join(f"{what}: {seconds:.0f}s;" for what, seconds in progress.items()))

    # Every label joined exactly once, whatever was replayed around the kill, the restart and the savepoint.
    assert _labelled(cfg) == sorted((p["transaction_id"], p["model_version"], p["label_time"]) for p in pairs)

    # No live window was written twice, and every closed one holds exactly its labels, however the kill, the
    # restart and the savepoint made the job read its backlogs (two tasks, then one, writing the replayed topic).
    metrics = _metrics(cfg)
    live = [row for row in metrics if row["view"] == "live" and row["segment_key"] == "*"]
    written = Counter((row["window_start"], row["model_version"]) for row in live)
    assert written and max(written.values()) == 1, [key for key, n in written.items() if n > 1][:5]
    expected = counts(live_view(pairs, cfg.windows.size))
    closed = {key for key in expected if key[0] < "2026-04-06T08:03"}
    rows = {(row["window_start"], row["model_version"]): row for row in live}
    assert closed <= set(rows), sorted(closed - set(rows))
    for key, row in counts(rows).items():
        assert all(row[name] <= expected[key][name] for name in row), (key, row, expected[key])
    assert {key: counts(rows)[key] for key in closed} == {key: expected[key] for key in closed}
    labels = sum(expected[key]["n_labelled"] for key in closed)
    print(f"{len(closed)} closed live windows, {labels} labels: all counted")

    # The history table: each committed final row once, nothing the topic lacks.
    sync(cfg)
    table = list(plain_rows(DeltaTable(str(history_dir(cfg))).to_pandas()))
    keys = [tuple(row[field] for field in METRICS_KEY) for row in table]
    assert len(keys) == len(set(keys)), "a final row is in the history twice"
    finals = {key: row for key, row in latest_metrics(iter(metrics)).items() if row["is_final"]}
    assert set(keys) <= set(finals)
    assert {tuple(key) for key in finals if key[0] == "live"} <= set(keys)
