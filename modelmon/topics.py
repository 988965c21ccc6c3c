"""Creating modelmon's topics and reading them back (kafka-python clients)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from modelmon.config import Config
from modelmon.kafka_security import client_options

# The metrics topic's upsert key (sinks/metrics.sql.j2): the latest value per key is the current one.
METRICS_KEY = ("view", "window_start", "model_version", "segment_key", "segment_value")


def topic_names(cfg: Config) -> list[str]:
    topics = cfg.topics
    return [
        topics.predictions,
        topics.labels,
        topics.labelled_predictions,
        topics.metrics,
        topics.dead_letter,
        topics.alerts,
        topics.control,
    ]


def ensure_topics(cfg: Config) -> list[str]:
    """Create every missing topic with cfg.kafka.partitions partitions; returns the names it created."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(**client_options(cfg.kafka))
    try:
        existing = set(admin.list_topics())
        missing = [name for name in topic_names(cfg) if name not in existing]
        created = []
        for name in missing:
            try:
                admin.create_topics([NewTopic(name, cfg.kafka.partitions, 1)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass  # created concurrently by another client: fine
        return created
    finally:
        admin.close()


def read_topic(cfg: Config, topic: str, *, idle_timeout_s: float = 5.0) -> Iterator[dict[str, Any]]:
    """Every committed record of a topic from the beginning, as parsed JSON values (tombstones skipped)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        **client_options(cfg.kafka),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        consumer_timeout_ms=int(idle_timeout_s * 1000),
    )
    try:
        for message in consumer:
            if message.value is not None:
                yield json.loads(message.value)
    finally:
        consumer.close()


def latest_metrics(rows: Iterator[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The metrics topic as its readers must see it: per METRICS_KEY the row with the highest revision.

    Provisional and final cohort rows of one key come from different operators, so their order on the topic
    is not their order of revision; the revision number is.
    """
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[field] for field in METRICS_KEY)
        held = latest.get(key)
        if held is None or row["revision"] >= held["revision"]:
            latest[key] = row
    return latest
