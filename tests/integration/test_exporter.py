"""`modelmon exporter` against a real broker: metrics rows written to a fresh metrics topic, keyed as the
job's upsert sink keys them, come out of /metrics (scraped over HTTP) with the same values, the highest
revision per window and the newest window per series; a restart rebuilds the same state from the topic."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from modelmon.exporter.columns import COLUMNS
from modelmon.exporter.server import Exporter
from prometheus_client.parser import text_string_to_metric_families

from modelmon.kafka_local import LocalKafka
from modelmon.topics import METRICS_KEY
from tests.kafka_helpers import fresh_config, produce, write_config

pytestmark = pytest.mark.integration

START = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
Samples = dict[str, dict[frozenset[tuple[str, str]], float]]
ROWS_READ = "modelmon_exporter_rows_consumed_total"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def row(minute: int, view: str = "live", model: str = "v1", *, revision: int = 0, **values: Any) -> dict[str, Any]:
    start = START + timedelta(minutes=minute)
    base: dict[str, Any] = {
        "view": view,
        "window_start": iso(start),
        "window_end": iso(start + timedelta(minutes=1)),
        "model_version": model,
        "segment_key": "*",
        "segment_value": "*",
        "revision": revision,
        "is_final": view != "cohort",
        **dict.fromkeys(COLUMNS),
        "reliability": None,
        "compared_to": None,
    }
    base.update(revision=revision, **values)
    return base


def records(rows: Iterable[dict[str, Any]]) -> Iterator[tuple[bytes, bytes, int]]:
    """As the upsert sink writes them: the key columns as a JSON key, the row as a JSON value."""
    for item in rows:
        key = json.dumps({field: item[field] for field in METRICS_KEY}).encode()
        end_ms = int(datetime.fromisoformat(item["window_end"]).timestamp() * 1000)
        yield key, json.dumps(item).encode(), end_ms


def scrape(url: str) -> Samples:
    """Metric name -> {labels: value} of one scrape."""
    text = requests.get(url, timeout=10).text
    assert "NaN" not in text
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return samples


def rows_read(samples: Samples) -> float:
    return sum(samples.get(ROWS_READ, {}).values())


def wait_for(url: str, done: Callable[[Samples], bool], timeout_s: float = 60) -> Samples:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            samples = scrape(url)
            if done(samples):
                return samples
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, f"gave up waiting for {url}"
        time.sleep(0.3)


def labels_of(item: dict[str, Any]) -> frozenset[tuple[str, str]]:
    labels = {field: item[field] for field in ("view", "model_version", "segment_key", "segment_value")}
    if item.get("compared_to") is not None:
        labels["compared_to"] = item["compared_to"]
    return frozenset(labels.items())


def assert_exported(samples: Samples, item: dict[str, Any]) -> None:
    """Every numeric value of the row is its gauge's value; a null one has no sample."""
    labels = labels_of(item)
    for column in COLUMNS:
        value = item[column]
        exported = samples.get(f"modelmon_{column}", {}).get(labels)
        assert exported == (None if value is None else float(value)), (column, dict(labels))
    end = datetime.fromisoformat(item["window_end"]).timestamp()
    assert samples["modelmon_window_end_timestamp_seconds"][labels] == end
    for entry in item["reliability"] or ():
        bin_labels = labels | {("bin", str(entry["bin"]))}
        assert samples["modelmon_reliability_count"][bin_labels] == entry["n"]
        assert samples["modelmon_reliability_mean_score"][bin_labels] == entry["mean_score"]
        assert samples["modelmon_reliability_observed_rate"][bin_labels] == entry["observed_rate"]


# Two windows of v1 (the second one is exported), one of v2 with undefined precision, a cohort window
# revised twice before its final row, a comparison and an unlabelled row.
LIVE_OLD = row(0, n_labelled=100, accuracy=0.8)
LIVE_V1 = row(
    1,
    n_labelled=120,
    tp=10,
    fp=5,
    tn=100,
    fn=5,
    accuracy=0.9166,
    precision=0.6667,
    roc_auc=0.93,
    reliability=[
        {"bin": 0, "n": 100, "mean_score": 0.04, "observed_rate": 0.02},
        {"bin": 9, "n": 20, "mean_score": 0.93, "observed_rate": 0.5},
    ],
)
LIVE_V2 = row(1, model="v2", n_labelled=120, accuracy=0.95, precision=None)
COHORT_FINAL = row(0, "cohort", revision=9, is_final=True, n_predictions=3000, n_labelled=2900, accuracy=0.91)
COHORT_EARLY = [row(0, "cohort", revision=r, n_predictions=3000, n_labelled=100 * r, accuracy=0.5) for r in (2, 4)]
COMPARISON = row(
    1, "comparison", "v2", compared_to="v1", n_labelled=110, mcnemar_b=3, mcnemar_c=9, significant=False, f1_diff=0.04
)
UNLABELLED = row(1, "unlabelled", n_predictions=3000, throughput_per_s=50.0, psi=0.012, estimated_accuracy=0.93)
ROWS = [LIVE_OLD, *COHORT_EARLY, LIVE_V1, LIVE_V2, COHORT_FINAL, COMPARISON, UNLABELLED]
EXPORTED = [LIVE_V1, LIVE_V2, COHORT_FINAL, COMPARISON, UNLABELLED]


def test_exporter_serves_the_topics_rows(kafka_broker: LocalKafka, data_dir: Path) -> None:
    cfg = fresh_config(data_dir)
    produce(cfg, cfg.topics.metrics, records(ROWS))
    seen: list[dict[str, Any]] = []

    def broken(item: dict[str, Any]) -> None:
        raise RuntimeError("this listener always fails")

    exporter = Exporter(cfg, port=0)
    exporter.add_listener(broken)
    exporter.add_listener(seen.append)
    with exporter:
        samples = wait_for(exporter.url, lambda s: rows_read(s) == len(ROWS))
        assert samples["modelmon_exporter_series"] == {frozenset(): len(EXPORTED)}
        for item in EXPORTED:
            assert_exported(samples, item)

        # A provisional revision that arrives after the final row changes nothing; a newer window does.
        late = row(0, "cohort", revision=6, n_predictions=3000, n_labelled=600, accuracy=0.5)
        newer = row(2, model="v2", n_labelled=130, accuracy=0.97, precision=0.7)
        produce(cfg, cfg.topics.metrics, records([late, newer]))
        samples = wait_for(exporter.url, lambda s: rows_read(s) == len(ROWS) + 2)
        assert_exported(samples, COHORT_FINAL)
        assert_exported(samples, newer)
        # One key's rows share a partition, so the late revision came after the final one.
        outcomes = {dict(labels)["outcome"]: value for labels, value in samples[ROWS_READ].items()}
        assert (outcomes["superseded"], outcomes["invalid"], outcomes["stale"], outcomes["cardinality"]) == (1, 0, 0, 0)
        assert samples["modelmon_exporter_listener_errors_total"] == {frozenset(): len(ROWS) + 2}
    assert len(seen) == len(ROWS) + 2


def start_cli(config_file: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`modelmon exporter --port 0` in a child process, and the metrics URL its log announces."""
    child = subprocess.Popen(
        [sys.executable, "-m", "modelmon.cli", "--config", str(config_file), "exporter", "--port", "0"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while not (found := re.search(r"serving (http://127\.0\.0\.1:\d+/metrics)", log.read_text())):
        assert child.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    return child, found[1]


def stop_cli(child: subprocess.Popen[bytes], log: Path) -> str:
    child.send_signal(signal.SIGTERM)
    try:
        assert child.wait(timeout=30) == 0, log.read_text()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return log.read_text()


def test_cli_exporter_stops_on_sigterm_and_rebuilds_its_state_on_restart(
    kafka_broker: LocalKafka, data_dir: Path, tmp_path: Path
) -> None:
    cfg = fresh_config(data_dir)
    config_file = write_config(cfg, tmp_path / "modelmon.yaml")
    produce(cfg, cfg.topics.metrics, records(ROWS))
    child, url = start_cli(config_file, tmp_path / "first.log")
    try:
        wait_for(url, lambda s: rows_read(s) == len(ROWS))
        produce(cfg, cfg.topics.metrics, records([row(2, accuracy=0.99)]))
        first = wait_for(url, lambda s: rows_read(s) == len(ROWS) + 1)
    finally:
        output = stop_cli(child, tmp_path / "first.log")
    assert f"exporting {len(EXPORTED)} series from topic {cfg.topics.metrics} on {url}" in output
    assert "exporter stopped" in output
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=5)

    child, url = start_cli(config_file, tmp_path / "second.log")
    try:
        second = wait_for(url, lambda s: rows_read(s) == len(ROWS) + 1)
    finally:
        stop_cli(child, tmp_path / "second.log")
    per_series = {name: values for name, values in first.items() if not name.startswith("modelmon_exporter_")}
    assert per_series == {name: values for name, values in second.items() if not name.startswith("modelmon_exporter_")}
    assert first["modelmon_accuracy"][labels_of(LIVE_V1)] == 0.99


def test_cli_exporter_evaluates_the_alert_rules(kafka_broker: LocalKafka, data_dir: Path, tmp_path: Path) -> None:
    """`modelmon exporter` hosts the alert engine: a model that degrades for two windows fires once and
    resolves once, on the alerts topic, even though the topic's rows arrive out of window order."""
    from modelmon.topics import read_topic

    rule = {"name": "accuracy-low", "metric": "accuracy", "op": "<", "threshold": 0.9, "severity": "critical"}
    cfg = fresh_config(data_dir, {"alerts": {"rules": [rule], "max_event_age": None, "lateness": "10min"}})
    accuracies = [0.95, 0.96, 0.52, 0.48, 0.97, 0.95, 0.96]
    degrading = [
        row(minute, model="v2", is_final=True, accuracy=value, n_labelled=200)
        for minute, value in enumerate(accuracies)
    ]
    produce(cfg, cfg.topics.metrics, records(degrading))
    child, url = start_cli(write_config(cfg, tmp_path / "modelmon.yaml"), tmp_path / "alerts.log")
    try:
        wait_for(url, lambda s: rows_read(s) == len(degrading))
        deadline = time.monotonic() + 60
        while len(events := list(read_topic(cfg, cfg.topics.alerts, idle_timeout_s=2))) < 2:
            assert time.monotonic() < deadline, (tmp_path / "alerts.log").read_text()
    finally:
        output = stop_cli(child, tmp_path / "alerts.log")
    assert "alerting: 1 rules; channels: none configured" in output
    assert [(e["state"], e["model_version"], e["window_start"]) for e in events] == [
        ("firing", "v2", iso(START + timedelta(minutes=3))),  # the second bad window of the last three
        ("resolved", "v2", iso(START + timedelta(minutes=5))),
    ]
