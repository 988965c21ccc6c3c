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
from modelmon.paths import checkpoint_root

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
class StateSize:
    waiting_predictions: int
    checkpoint_bytes: int

    @property
    def bytes_per_million(self) -> float:
        return self.checkpoint_bytes / self.waiting_predictions * 1e6


def measure_state(
    cfg: Config, config_file: Path, *, predictions: int, log: Path, echo: Callable[[str], None]
) -> StateSize:
    """A streaming job over `predictions` predictions whose labels have not come: the size of a checkpoint
    taken once all of them are read (the join holds each until its label or the horizon)."""
    job = _cli(config_file, "run", "--fresh", log=log)
    try:
        _wait_for_running_job(job, log)
        deadline = time.monotonic() + 900
        while _lag(cfg) > 0:
            if job.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the job did not read every prediction; see {log}")
            time.sleep(5)
        echo("  every prediction read; waiting for two more checkpoints")
        time.sleep(2.5 * cfg.job.checkpoint_interval.total_seconds())
        newest = max(checkpoint_root(cfg, bounded=False).glob("*/*/chk-*"), key=lambda p: int(p.name.split("-")[1]))
        size = sum(path.stat().st_size for path in newest.rglob("*") if path.is_file())
    finally:
        _stop(job)
    return StateSize(waiting_predictions=predictions, checkpoint_bytes=size)


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
