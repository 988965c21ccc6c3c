"""`modelmon exporter` scraped by a real Prometheus with prometheus/alerts.yml loaded: metrics rows written
to a fresh metrics topic come back through Prometheus's HTTP API with the same values, and exactly the
rows that break a default alert rule (by modelmon's rule semantics, worked out by hand below) make its
Prometheus alert pending."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from modelmon.exporter.columns import COLUMNS

from modelmon.config import Config
from modelmon.kafka_local import LocalKafka
from modelmon.topics import METRICS_KEY
from tests.kafka_helpers import REPO, fresh_config, produce, write_config
from tests.listening import listening, process_tree
from tests.prometheus_server import free_port, running_prometheus, scrape_config

pytestmark = pytest.mark.integration

START = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
LABELS = ("view", "model_version", "segment_key", "segment_value")


def row(view: str, model: str, segment: tuple[str, str] = ("*", "*"), **values: float) -> dict[str, Any]:
    """A metrics row of the window START .. START + 1 min, every column not given null."""
    return {
        "view": view,
        "window_start": START.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "window_end": (START + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "model_version": model,
        "segment_key": segment[0],
        "segment_value": segment[1],
        **dict.fromkeys(COLUMNS),
        "revision": 0,
        "is_final": True,
        "reliability": None,
        "compared_to": None,
        **values,
    }


# Each row breaks (or keeps, or is too small for) one of the default rules; the comment says which.
ROWS = [
    row("live", "v1", n_labelled=200, accuracy=0.85, recall=0.80, label_latency_p95_s=2400.5),  # accuracy, latency
    row("live", "v2", n_labelled=200, accuracy=0.95, recall=0.50, label_latency_p95_s=600.0),  # recall
    row("live", "v3", n_labelled=99, accuracy=0.50, recall=0.10, label_latency_p95_s=9000.0),  # too few labels
    row("live", "*", n_labelled=499, accuracy=0.90, recall=0.70, label_latency_p95_s=1800.0),  # on the thresholds
    row("live", "v1", ("country", "DE"), n_labelled=500, accuracy=0.5),  # a segment: not watched
    row("unlabelled", "*", n_predictions=3000, throughput_per_s=50.0, ks_pvalue=0.001, psi=0.25),  # drift, throughput
    row("unlabelled", "v1", n_predictions=36000, throughput_per_s=600.0, ks_pvalue=0.5),  # neither
    row("unlabelled", "v2", n_predictions=99, throughput_per_s=1.65, ks_pvalue=0.0001),  # throughput only
]
EXPECTED_ALERTS = {
    ("ModelAccuracyLow", "live", "v1"),
    ("LabelLatencyHigh", "live", "v1"),
    ("ModelRecallLow", "live", "v2"),
    ("ScoreDrift", "unlabelled", "*"),
    ("ThroughputLow", "unlabelled", "*"),
    ("ThroughputLow", "unlabelled", "v2"),
}

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def expected_series(rows: list[dict[str, Any]]) -> Series:
    """Every non-null numeric column as modelmon_<column>, and the window's end as a timestamp."""
    series: Series = {}
    for item in rows:
        labels = frozenset((label, item[label]) for label in LABELS)
        for column in COLUMNS:
            if item[column] is not None:
                series[(f"modelmon_{column}", labels)] = float(item[column])
        end = datetime.fromisoformat(item["window_end"]).timestamp()
        series[("modelmon_window_end_timestamp_seconds", labels)] = end
    return series


def records(rows: list[dict[str, Any]]) -> Iterator[tuple[bytes, bytes, int]]:
    """As the job's upsert sink writes them: the key columns as a JSON key, the row as the value."""
    for item in rows:
        key = json.dumps({field: item[field] for field in METRICS_KEY}).encode()
        yield key, json.dumps(item).encode(), int(datetime.fromisoformat(item["window_end"]).timestamp() * 1000)


@contextmanager
def exporter(config_file: Path, port: int, log: Path) -> Iterator[tuple[str, int]]:
    """`modelmon exporter` as a user starts it, on 127.0.0.1:port; stopped with SIGTERM. Yields its URL
    and pid."""
    url = f"http://127.0.0.1:{port}/metrics"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelmon.cli", "--config", str(config_file), "exporter", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                requests.get(url, timeout=2).raise_for_status()
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.3)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_exporter_values_and_alerts_through_prometheus(
    kafka_broker: LocalKafka, data_dir: Path, tmp_path: Path
) -> None:
    cfg: Config = fresh_config(data_dir)
    produce(cfg, cfg.topics.metrics, records(ROWS))
    config_file = write_config(cfg, tmp_path / "modelmon.yaml")
    port = free_port()
    expected = expected_series(ROWS)

    with (
        exporter(config_file, port, tmp_path / "exporter.log") as (url, exporter_pid),
        running_prometheus(
            tmp_path / "prometheus",
            [scrape_config("modelmon", [f"127.0.0.1:{port}"])],
            rule_files=[REPO / "prometheus" / "alerts.yml"],
        ) as prom,
    ):
        per_series = '{job="modelmon", __name__=~"modelmon_.+", __name__!~"modelmon_exporter_.+"}'
        result = prom.wait_for(
            per_series, lambda result: len(result) >= len(expected), detail=lambda: f"exporter at {url}"
        )
        got: Series = {}
        for sample in result:
            metric = dict(sample["metric"])
            name = metric.pop("__name__")
            assert (metric.pop("job"), metric.pop("instance")) == ("modelmon", f"127.0.0.1:{port}")
            got[(name, frozenset(metric.items()))] = float(sample["value"][1])
        assert got == expected

        # The broker and the exporter listen on the loopback interface only (the exporter's HTTP server, the
        # broker's client and controller listeners; the JVM's own ports too).
        broker = kafka_broker.status().pid
        assert broker is not None
        sockets = listening(process_tree(broker) | process_tree(exporter_pid))
        local = kafka_broker.local
        assert {port for _, port in sockets} >= {local.port, local.controller_port, port}
        assert all(ipaddress.ip_address(address).is_loopback for address, _ in sockets), sorted(sockets)

        # The rule group runs every 15 s; an alert is pending from its first evaluation (firing 90 s later).
        alerts = prom.wait_for(
            'ALERTS{alertstate=~"pending|firing"}',
            lambda result: len(result) >= len(EXPECTED_ALERTS),
            timeout_s=60,
        )
        got_alerts = {(a["metric"]["alertname"], a["metric"]["view"], a["metric"]["model_version"]) for a in alerts}
        assert got_alerts == EXPECTED_ALERTS
        assert {a["metric"]["segment_key"] for a in alerts} == {"*"}
