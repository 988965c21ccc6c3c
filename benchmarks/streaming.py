"""The streaming measurements: label-to-metric latency at a steady rate, and state per waiting prediction."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import requests
from modelmon.benchmarks.processes import PeakMemory

from modelmon.config import Config
from modelmon.kafka_security import client_options

WINDOW_END = re.compile(
    r'^modelmon_window_end_timestamp_seconds\{(?=[^}]*view="live")(?=[^}]*model_version="\*")'
    r'(?=[^}]*segment_key="\*")[^}]*\} (\S+)$',
    re.MULTILINE,
)


def _cli(config_file: Path, *args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "modelmon.cli", "--config", str(config_file), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass(frozen=True)
class Latency:
    windows: int
    topic_p50_s: float
    topic_p99_s: float
    exporter_p50_s: float
    exporter_p99_s: float
    peak_rss_jvm_mb: float
    peak_rss_python_mb: float


class _FirstSeen:
    """When each live window's row (all versions, all segments) was first visible, by window end."""

    def __init__(self) -> None:
        self.topic: dict[float, float] = {}
        self.exporter: dict[float, float] = {}
        self.stop = threading.Event()

    def follow_topic(self, cfg: Config) -> None:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(
            cfg.topics.metrics,
            **client_options(cfg.kafka),
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            value_deserializer=lambda value: None if value is None else json.loads(value),
        )
        try:
            while not self.stop.is_set():
                for batch in consumer.poll(timeout_ms=100).values():
                    now = time.time()
                    for record in batch:
                        row = record.value
                        if row and (row["view"], row["model_version"], row["segment_key"]) == ("live", "*", "*"):
                            end = datetime.fromisoformat(row["window_end"]).timestamp()
                            self.topic.setdefault(end, now)
        finally:
            consumer.close()

    def follow_exporter(self, url: str) -> None:
        while not self.stop.wait(0.1):
            try:
                text = requests.get(url, timeout=2).text
            except requests.RequestException:
                continue
            now = time.time()
            for match in WINDOW_END.finditer(text):
                self.exporter.setdefault(float(match.group(1)), now)


def measure_latency(
    cfg: Config, config_file: Path, *, rate: float, duration_s: float, log: Path, echo: Callable[[str], None]
) -> Latency:
    """A streaming job, the exporter and the simulator at `rate` transactions/s in real time; per live window
    the time from its end (when its last label was produced) to its row on the topic and in /metrics."""
    seen = _FirstSeen()
    job = _cli(config_file, "run", "--fresh", log=log)
    exporter = _cli(config_file, "exporter", "--no-alerts", log=log)
    followers = [
        threading.Thread(target=seen.follow_topic, args=(cfg,), daemon=True),
        threading.Thread(
            target=seen.follow_exporter, args=(f"http://{cfg.exporter.host}:{cfg.exporter.port}/metrics",), daemon=True
        ),
    ]
    for thread in followers:
        thread.start()
    simulator = None
    try:
        with PeakMemory(job.pid) as memory:
            echo("  waiting for the job to start")
            _wait_for_running_job(job, log)
            started = time.time()
            simulator = _cli(config_file, "simulate", "--rate", str(rate), "--duration", str(duration_s), log=log)
            while simulator.poll() is None:
                time.sleep(5)
                echo(f"  {time.time() - started:.0f}s: {len(seen.topic)} live windows on the topic")
            time.sleep(30)  # the last windows close 15 s after their end, then a checkpoint commits them
    finally:
        seen.stop.set()
        for process in (simulator, exporter, job):
            if process is not None:
                _stop(process)
    # Windows that began after the simulator started and ended before it stopped are complete.
    complete = [end for end in seen.topic if started + 1.5 * cfg.windows.size.total_seconds() < end < time.time() - 60]
    topic = np.array([seen.topic[end] - end for end in complete])
    exporter_delays = np.array([seen.exporter[end] - end for end in complete if end in seen.exporter])
    if not len(topic) or not len(exporter_delays):
        raise RuntimeError(f"no complete live window was seen; see {log}")
    return Latency(
        windows=len(topic),
        topic_p50_s=float(np.percentile(topic, 50)),
        topic_p99_s=float(np.percentile(topic, 99)),
        exporter_p50_s=float(np.percentile(exporter_delays, 50)),
        exporter_p99_s=float(np.percentile(exporter_delays, 99)),
        peak_rss_jvm_mb=memory.peak["jvm"] / 2**20,
        peak_rss_python_mb=memory.peak["python"] / 2**20,
    )


def _wait_for_running_job(job: subprocess.Popen[bytes], log: Path, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while "submitted job" not in log.read_text(errors="replace"):
        if job.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the job did not start; see {log}")
        time.sleep(1)
    time.sleep(10)  # sources assigned, first checkpoint taken


@dataclass(frozen=True)
class StateRun:
    """A streaming job reading predictions whose labels have not come, so that each stays in the join's state.

    `first_tenth_per_s` and `last_tenth_per_s` are the job's reading rates over the first and last tenth of the
    predictions: with little state and with nearly all of it. Checkpoint durations are of every checkpoint that
    completed while the job read and after; `checkpoint_bytes` is the full size of the last one (for an incremental
    checkpoint, what a restore reads, not only what that checkpoint added)."""

    state_backend: str
    waiting_predictions: int
    events_per_s: float
    first_tenth_per_s: float
    last_tenth_per_s: float
    checkpoints: int
    failed_checkpoints: int
    checkpoint_p50_s: float
    checkpoint_p99_s: float
    checkpoint_bytes: int
    peak_rss_jvm_mb: float

    @property
    def bytes_per_million(self) -> float:
        return self.checkpoint_bytes / self.waiting_predictions * 1e6


class _JobGauges:
    """From the job's Prometheus reporter (job settings: the first free port of 9249-9259), sampled every second:
    each completed checkpoint's duration and full size, and how far the sources have read a topic (the sum of
    its partitions' current offsets)."""

    COUNT = "flink_jobmanager_job_numberOfCompletedCheckpoints"
    OFFSET = "flink_taskmanager_job_task_operator_KafkaSourceReader_topic_partition_currentOffset"

    def __init__(self, topic: str) -> None:
        # As the reporter writes label values: every character other than a letter, digit, ':' or '_' as '_'.
        self.topic_label = f'topic="{re.sub(r"[^A-Za-z0-9:_]", "_", topic)}"'
        self.durations_s: list[float] = []
        self.full_size = 0
        self.failed = 0
        self.progress: list[tuple[float, int]] = []  # (time, records read) at each change
        self.stop = threading.Event()
        self._count = 0.0

    def follow(self) -> None:
        while not self.stop.wait(1.0):
            text = self._scrape()
            now = time.monotonic()
            gauges, read = {}, 0
            for line in text.splitlines():
                if line.startswith("flink_jobmanager_job_"):
                    gauges[line.split("{")[0]] = float(line.rsplit(" ", 1)[1])
                elif line.startswith(self.OFFSET) and self.topic_label in line:
                    read += max(0, int(float(line.rsplit(" ", 1)[1])) + 1)  # the offset of the last record read
            if read > (self.progress[-1][1] if self.progress else 0):
                self.progress.append((now, read))
            count = gauges.get(self.COUNT, 0.0)
            if count > self._count:
                self._count = count
                self.durations_s.append(gauges.get("flink_jobmanager_job_lastCheckpointDuration", 0.0) / 1000)
                self.full_size = int(gauges.get("flink_jobmanager_job_lastCheckpointFullSize", 0.0))
            self.failed = int(gauges.get("flink_jobmanager_job_numberOfFailedCheckpoints", self.failed))

    def _scrape(self) -> str:
        for port in range(9249, 9260):
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except requests.RequestException:
                continue
            if self.COUNT in text:
                return text
        return ""


def measure_state(
    cfg: Config, config_file: Path, *, predictions: int, log: Path, echo: Callable[[str], None]
) -> StateRun:
    """A streaming job over `predictions` predictions whose labels have not come (the join holds each until its
    label or the horizon): how fast it reads them as its state grows, how long its checkpoints take, and their
    size once all of them are read."""
    gauges = _JobGauges(cfg.topics.predictions)
    follower = threading.Thread(target=gauges.follow, daemon=True)
    job = _cli(config_file, "run", "--fresh", log=log)
    try:
        with PeakMemory(job.pid) as memory:
            follower.start()
            _wait_for_running_job(job, log)
            deadline = time.monotonic() + 3600
            while (lag := _lag(cfg)) > 0:
                if job.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the job did not read every prediction; see {log}")
                echo(f"  {predictions - lag:,} of {predictions:,} predictions read and committed")
                time.sleep(15)
            echo("  every prediction read; waiting for two more checkpoints")
            time.sleep(2.5 * cfg.job.checkpoint_interval.total_seconds())
    finally:
        gauges.stop.set()
        _stop(job)
    if not gauges.durations_s or not gauges.progress:
        raise RuntimeError(f"the job's Prometheus reporter reported no checkpoint or no progress; see {log}")
    durations = np.array(gauges.durations_s)
    return StateRun(
        state_backend=cfg.job.backend(bounded=False),
        waiting_predictions=predictions,
        events_per_s=_rate(gauges.progress, 0.0, 1.0),
        first_tenth_per_s=_rate(gauges.progress, 0.0, 0.1),
        last_tenth_per_s=_rate(gauges.progress, 0.9, 1.0),
        checkpoints=len(durations),
        failed_checkpoints=gauges.failed,
        checkpoint_p50_s=float(np.percentile(durations, 50)),
        checkpoint_p99_s=float(np.percentile(durations, 99)),
        checkpoint_bytes=gauges.full_size,
        peak_rss_jvm_mb=memory.peak["jvm"] / 2**20,
    )


def _rate(progress: list[tuple[float, int]], start: float, end: float) -> float:
    """Records read per second between the samples nearest to the fractions `start` and `end` of all records read
    (from the first sample: the job's start-up is not reading)."""
    total = progress[-1][1]

    def nearest(fraction: float) -> tuple[float, int]:
        return min(progress, key=lambda point: abs(point[1] - fraction * total))

    (t0, n0), (t1, n1) = nearest(start), nearest(end)
    return (n1 - n0) / (t1 - t0) if t1 > t0 else float("nan")


def _lag(cfg: Config) -> int:
    """Predictions not yet read by the job, by the offsets it commits on each checkpoint."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**client_options(cfg.kafka), group_id=cfg.kafka.group_id)
    try:
        partitions = [
            TopicPartition(cfg.topics.predictions, p) for p in consumer.partitions_for_topic(cfg.topics.predictions)
        ]
        ends = consumer.end_offsets(partitions)
        return sum(ends[tp] - (consumer.committed(tp) or 0) for tp in partitions)
    finally:
        consumer.close()
