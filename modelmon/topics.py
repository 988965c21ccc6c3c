"""Creating modelmon's topics and reading them back (kafka-python clients)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from modelmon.config import Config
from modelmon.kafka_security import client_options

log = logging.getLogger(__name__)

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


def partitions_of(cfg: Config, topic: str) -> int:
    """How many partitions modelmon gives a topic. The labelled-predictions topic needs one per task of the job
    at least: the live view's replay takes its watermark from the rows, which holds only if no partition has
    two writers (sinks/labelled_predictions)."""
    if topic == cfg.topics.labelled_predictions:
        return max(cfg.kafka.partitions, cfg.job.parallelism)
    return cfg.kafka.partitions


def ensure_topics(cfg: Config) -> list[str]:
    """Create every missing topic (partitions_of), and give the labelled-predictions topic more partitions if
    the job now runs more tasks than it has; returns the names it created."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(**client_options(cfg.kafka))
    try:
        existing = set(admin.list_topics())
        created = []
        for name in topic_names(cfg):
            if name in existing:
                continue
            try:
                admin.create_topics([NewTopic(name, partitions_of(cfg, name), 1)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass  # created concurrently by another client: fine
        replay = cfg.topics.labelled_predictions
        (description,) = admin.describe_topics([replay])
        if len(description["partitions"]) < partitions_of(cfg, replay):
            log.info("%s: %d partitions, one per task of the job", replay, partitions_of(cfg, replay))
            admin.create_partitions({replay: partitions_of(cfg, replay)})
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
