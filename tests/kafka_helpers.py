"""Test helpers shared by the integration and end-to-end tiers: a test broker, fresh configs, I/O."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from modelmon.config import Config
from modelmon.kafka_local import LocalKafka
from modelmon.kafka_security import client_options
from modelmon.topics import ensure_topics

# Own ports, so a running demo broker does not interfere; movable for parallel runs.
TEST_KAFKA_PORT = int(os.environ.get("MODELMON_TEST_KAFKA_PORT", "19092"))
TEST_CONTROLLER_PORT = TEST_KAFKA_PORT + 1
REPO = Path(__file__).resolve().parent.parent


def broker_config(data_dir: Path) -> Config:
    """The test broker listens on its own ports so a running demo broker does not interfere."""
    return Config.model_validate(
        {
            "kafka": {"bootstrap_servers": f"127.0.0.1:{TEST_KAFKA_PORT}"},
            "local_kafka": {"port": TEST_KAFKA_PORT, "controller_port": TEST_CONTROLLER_PORT},
            "paths": {"data_dir": str(data_dir)},
        }
    )


def start_broker(data_dir: Path) -> Iterator[LocalKafka]:
    broker = LocalKafka(broker_config(data_dir))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def fresh_config(data_dir: Path, overrides: dict[str, Any] | None = None) -> Config:
    """A config whose topics and consumer group no other test uses (dbt's unique schema per test)."""
    suffix = uuid.uuid4().hex[:8]
    data: dict[str, Any] = {
        "kafka": {"bootstrap_servers": f"127.0.0.1:{TEST_KAFKA_PORT}", "group_id": f"modelmon-test-{suffix}"},
        "topics": {
            name: f"{name.replace('_', '-')}-{suffix}"
            for name in ("predictions", "labels", "labelled_predictions", "metrics", "dead_letter", "alerts", "control")
        },
        "paths": {"data_dir": str(data_dir)},
    }
    for section, values in (overrides or {}).items():
        if isinstance(values, dict):
            data.setdefault(section, {}).update(values)
        else:  # a list-valued section (segments) replaces the default
            data[section] = values
    cfg = Config.model_validate(data)
    ensure_topics(cfg)
    return cfg


def write_config(cfg: Config, path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    return path


def produce(cfg: Config, topic: str, records: Iterable[tuple[bytes | None, bytes, int | None]]) -> int:
    """Write (key, value, timestamp_ms) records and wait until the broker has them all."""
    from kafka import KafkaProducer

    producer = KafkaProducer(**client_options(cfg.kafka), linger_ms=5)
    count = 0
    for key, value, timestamp_ms in records:
        producer.send(topic, value=value, key=key, timestamp_ms=timestamp_ms)
        count += 1
    producer.flush()
    producer.close()
    return count


def json_records(rows: Iterable[dict[str, Any]], time_field: str) -> Iterator[tuple[bytes, bytes, int]]:
    for row in rows:
        timestamp_ms = int(datetime.fromisoformat(row[time_field]).timestamp() * 1000)
        yield row["transaction_id"].encode(), json.dumps(row).encode(), timestamp_ms


def run_cli(config_file: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI as a user would, in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "modelmon.cli", "--config", str(config_file), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


LiveRows = dict[tuple[str, str], dict[str, Any]]


def live_rows(cfg: Config, *, idle_timeout_s: float = 5.0) -> LiveRows:
    """The metrics topic's current live rows (latest per key), keyed by (window_start, model_version)."""
    from modelmon.topics import latest_metrics, read_topic

    rows = latest_metrics(read_topic(cfg, cfg.topics.metrics, idle_timeout_s=idle_timeout_s))
    return {(key[1], key[2]): row for key, row in rows.items() if key[0] == "live" and key[3] == "*"}
