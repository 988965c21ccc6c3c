"""Flink's own metrics reach a real Prometheus: a streaming `modelmon run` serves them through the Prometheus
reporter of its job settings (the minicluster loads the reporter jar from the PyFlink bundle), and a
standalone cluster started with flink-conf/config.yaml through the reporter plugin. The values read back
through Prometheus's HTTP API are checked against what the test wrote and against Flink's REST API."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from modelmon.producers.simulator import generate

from modelmon.config import Config, SimulatorConfig
from modelmon.flink_dist import prepare_flink_home, start_cluster, stop_cluster
from modelmon.kafka_local import LocalKafka
from modelmon.paths import gateway_jar
from tests.kafka_helpers import fresh_config, json_records, produce, write_config
from tests.prometheus_server import Sample, free_port, running_prometheus, scrape_config

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
# metrics.reporter.prom.port of the job settings and of flink-conf/config.yaml: each reporter takes the
# first free port, so other jobs on the machine may hold some; a test finds its own by job or TaskManager.
REPORTER_PORTS = range(9249, 9260)
FLINK_TARGETS = [scrape_config("flink", [f"127.0.0.1:{port}" for port in REPORTER_PORTS])]


def label_value(text: str) -> str:
    """As the reporter writes label values (filterLabelValueCharacters): other characters become '_'."""
    return re.sub(r"[^a-zA-Z0-9:_]", "_", text)


def total(result: list[Sample]) -> float:
    return sum(float(sample["value"][1]) for sample in result)


@contextmanager
def streaming_run(config_file: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`modelmon run` (streaming) as a user starts it; stopped as a user stops it (SIGTERM)."""
    with log.open("ab") as out:
        job = subprocess.Popen(
            [sys.executable, "-m", "modelmon.cli", "--config", str(config_file), "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield job
    finally:
        job.terminate()
        job.wait(timeout=120)


def test_streaming_job_metrics_through_prometheus(kafka_broker: LocalKafka, data_dir: Path, tmp_path: Path) -> None:
    # Letters, digits and '_' only, so the job_name label is the job's name unchanged.
    job_name = f"modelmon_prom_{uuid.uuid4().hex[:8]}"
    cfg: Config = fresh_config(data_dir, {"job": {"name": job_name, "checkpoint_interval": "2s"}})
    sim = SimulatorConfig(rate=20, label_delay_min=timedelta(seconds=5), label_delay_max=timedelta(seconds=60), seed=5)
    data = generate(sim, START, n_transactions=400)
    predictions = [dict(p) for p in data.predictions]
    produce(cfg, cfg.topics.predictions, json_records(predictions, "event_time"))
    produce(cfg, cfg.topics.labels, json_records([dict(label) for label in data.labels], "label_time"))
    config_file = write_config(cfg, tmp_path / "modelmon.yaml")
    log = tmp_path / "job.log"
    mine = f'job_name="{job_name}"'
    source = f'{mine}, operator_name=~"Source:_KafkaSource_.*_predictions_raw"'

    with running_prometheus(tmp_path / "prometheus", FLINK_TARGETS) as prom, streaming_run(config_file, log) as job:

        def detail() -> str:
            state = "running" if job.poll() is None else f"exited {job.returncode}"
            return f"job {state}; log:\n{log.read_text()[-3000:]}"

        # Throughput: the predictions source has read every prediction written, as Flink counts them.
        read = prom.wait_for(
            f"flink_taskmanager_job_task_operator_numRecordsIn{{{source}}}",
            lambda result: total(result) >= len(predictions),
            timeout_s=420,
            detail=detail,
        )
        assert total(read) == len(predictions)

        # Kafka consumer lag: nothing left to read once every record is in.
        pending = prom.wait_for(
            f"flink_taskmanager_job_task_operator_pendingRecords{{{source}}}",
            lambda result: bool(result) and total(result) == 0,
            detail=detail,
        )
        assert pending

        # Event time: the source's watermark trails the newest prediction by windows.out_of_orderness at most
        # (each partition's newest), and is past the first one.
        newest = max(datetime.fromisoformat(p["event_time"]) for p in predictions)
        watermark = prom.wait_for(
            f"flink_taskmanager_job_task_operator_currentOutputWatermark{{{source}}}",
            lambda result: bool(result) and min(float(s["value"][1]) for s in result) > START.timestamp() * 1000,
            detail=detail,
        )
        out_of_orderness = cfg.windows.out_of_orderness.total_seconds()
        assert max(float(s["value"][1]) for s in watermark) <= (newest.timestamp() - out_of_orderness) * 1000

        # Checkpoints: the JobManager's count grows while the job runs.
        checkpoints = prom.wait_for(
            f"flink_jobmanager_job_numberOfCompletedCheckpoints{{{mine}}}",
            lambda result: total(result) >= 2,
            detail=detail,
        )
        assert len(checkpoints) == 1
        assert job.poll() is None, detail()


@pytest.fixture
def standalone_cluster(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A standalone JobManager + TaskManager from flink-conf/config.yaml, on REST and RPC ports of its own."""
    ports = {"rest.port": free_port(), "jobmanager.rpc.port": free_port()}
    home = prepare_flink_home(tmp_path / "flink", gateway_jar(Config()), conf=ports)
    try:
        yield home, start_cluster(home)
    finally:
        stop_cluster(home)


def test_standalone_cluster_metrics_through_prometheus(standalone_cluster: tuple[Path, str], tmp_path: Path) -> None:
    """The cluster loads the reporter from plugins/: its TaskManager's memory, as Prometheus has it, is what
    the cluster's REST API says."""
    _, url = standalone_cluster
    (taskmanager,) = requests.get(f"{url}/taskmanagers", timeout=10).json()["taskmanagers"]
    with running_prometheus(tmp_path / "prometheus", FLINK_TARGETS) as prom:
        tm = f'tm_id="{label_value(taskmanager["id"])}"'
        managed = prom.wait_for(f"flink_taskmanager_Status_Flink_Memory_Managed_Total{{{tm}}}", bool, timeout_s=90)
        assert total(managed) == taskmanager["memoryConfiguration"]["managedMemory"]
        up = prom.values(f'up{{instance="{managed[0]["metric"]["instance"]}"}}')
        assert list(up.values()) == [1.0]
