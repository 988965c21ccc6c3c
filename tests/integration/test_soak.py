"""A soak run: the streaming job on a standalone cluster, fed by the simulator at a steady rate for minutes,
while its checkpointed state and the memory of its TaskManager (JVM and Python workers) are sampled. Once the
label horizon has passed, the join keeps only the predictions still waiting for labels, so neither may keep
growing. Prints the samples as a table and writes them to <tmp>/soak.json.

Slow (about 8 minutes: 6 of them sampling): `make test-slow` runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
from modelmon.benchmarks.processes import rss_by_kind

from modelmon import cluster
from modelmon.config import Config
from modelmon.flink_dist import IDENT
from modelmon.kafka_local import LocalKafka
from modelmon.processes import alive
from tests.kafka_helpers import fresh_config, write_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REST_PORT = 18101
DURATION_S = 360
SAMPLE_EVERY_S = 15
RATE = 50  # transactions per second, each scored by two model versions
# The horizon (1 min) plus a window (1 min) and the watermark's delay: from then on every join and window state
# that a minute adds is matched by one that a minute expires.
STEADY_AFTER_S = 180
GROWTH_ALLOWED = 1.25  # the late half of the steady phase against the early half


@dataclass(frozen=True)
class Sample:
    seconds: int
    state_mb: float  # of the newest completed checkpoint
    jvm_mb: float  # TaskManager JVM, resident
    python_mb: float  # its Python UDF workers, resident


def _taskmanager_pid(cfg: Config) -> int:
    pid_file = cluster.cluster_home(cfg) / "run" / f"flink-{IDENT}-taskexecutor.pid"
    pids = [int(word) for word in pid_file.read_text().split() if word.isdigit() and alive(int(word))]
    assert len(pids) == 1, pids
    return pids[0]


def _state_bytes(cfg: Config, job_id: str) -> int:
    latest = cluster.checkpoint_stats(cfg, job_id).get("latest") or {}
    completed = latest.get("completed") or {}
    return int(completed.get("state_size", 0))


def _table(samples: list[Sample]) -> str:
    lines = ["   s   state MB   TM JVM MB   Python MB"]
    lines += [f"{s.seconds:4d} {s.state_mb:10.2f} {s.jvm_mb:11.0f} {s.python_mb:11.0f}" for s in samples]
    return "\n".join(lines)


def test_state_and_memory_stay_bounded_at_a_steady_rate(
    kafka_broker: LocalKafka, data_dir: Path, tmp_path: Path
) -> None:
    cfg = fresh_config(
        data_dir,
        {
            "cluster": {"rest_port": REST_PORT},
            "job": {"checkpoint_interval": "5s"},
            "join": {"label_horizon": "1min", "max_label_skew": "5s"},
            "simulator": {"rate": RATE, "label_delay_min": "1s", "label_delay_max": "50s"},
        },
    )
    config_file = write_config(cfg, tmp_path / "modelmon.yaml")
    samples: list[Sample] = []
    cluster.start(cfg)
    try:
        job_id = cluster.submit(cfg, bounded=False, parallelism=2)
        taskmanager = _taskmanager_pid(cfg)
        with (tmp_path / "simulator.log").open("wb") as log:
            simulator = subprocess.Popen(
                [sys.executable, "-m", "modelmon.cli", "--config", str(config_file), "simulate"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            began = time.monotonic()
            while (elapsed := time.monotonic() - began) < DURATION_S:
                time.sleep(SAMPLE_EVERY_S)
                assert simulator.poll() is None, (tmp_path / "simulator.log").read_text()[-2000:]
                memory = rss_by_kind(taskmanager)
                samples.append(
                    Sample(
                        seconds=round(elapsed + SAMPLE_EVERY_S),
                        state_mb=_state_bytes(cfg, job_id) / 2**20,
                        jvm_mb=memory["jvm"] / 2**20,
                        python_mb=memory["python"] / 2**20,
                    )
                )
            assert any(job.job_id == job_id and job.state == "RUNNING" for job in cluster.jobs(cfg))
        finally:
            simulator.terminate()
            simulator.wait(timeout=60)
    finally:
        cluster.stop(cfg)

    print(f"\nsoak at {RATE} transactions/s (two model versions), label horizon 1 min:\n{_table(samples)}")
    (tmp_path / "soak.json").write_text(json.dumps([asdict(s) for s in samples], indent=2))

    steady = [s for s in samples if s.seconds >= STEADY_AFTER_S]
    early, late = steady[: len(steady) // 2], steady[len(steady) // 2 :]
    assert len(early) >= 5 and all(s.state_mb > 0 for s in steady)
    for measure in ("state_mb", "jvm_mb", "python_mb"):
        early_peak = max(getattr(s, measure) for s in early)
        late_peak = max(getattr(s, measure) for s in late)
        assert late_peak <= GROWTH_ALLOWED * early_peak, f"{measure} grew from {early_peak:.1f} to {late_peak:.1f}"
