"""modelmon's topics on a real broker: the labelled-predictions topic keeps a partition per task of the job."""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka import KafkaConsumer

from modelmon.config import Config
from modelmon.kafka_local import LocalKafka
from modelmon.kafka_security import client_options
from modelmon.topics import ensure_topics
from tests.kafka_helpers import fresh_config

pytestmark = pytest.mark.integration


def _partitions(cfg: Config, topic: str) -> int:
    consumer = KafkaConsumer(**client_options(cfg.kafka))
    try:
        return len(consumer.partitions_for_topic(topic) or ())
    finally:
        consumer.close()


def test_a_job_at_higher_parallelism_gets_a_partition_per_task(kafka_broker: LocalKafka, data_dir: Path) -> None:
    cfg = fresh_config(data_dir, {"kafka": {"partitions": 2}})
    assert _partitions(cfg, cfg.topics.labelled_predictions) == 2
    wider = cfg.model_copy(update={"job": cfg.job.model_copy(update={"parallelism": 3})})
    assert ensure_topics(wider) == []  # nothing created: the topic grew
    assert _partitions(cfg, cfg.topics.labelled_predictions) == 3
    assert _partitions(cfg, cfg.topics.predictions) == 2
    ensure_topics(cfg)  # a lower parallelism never takes partitions away
    assert _partitions(cfg, cfg.topics.labelled_predictions) == 3
