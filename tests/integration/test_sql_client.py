"""The rendered SQL runs unchanged in the Flink SQL client (sql-client.sh -f) and gives the oracle's numbers,
against a real broker that accepts only SASL_SSL (a throwaway CA, SASL PLAIN, a password full of quotes): so
`kafka.security` reaches modelmon's Python clients and, through the SQL, Flink's connector; a wrong password
is refused; the password shows in no printed SQL, output or log."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from modelmon.config import Config
from modelmon.kafka_security import client_options
from modelmon.topics import ensure_topics, read_topic
from tests.datasets import small_dataset
from tests.kafka_helpers import json_records, live_rows, produce, run_cli, write_config
from tests.oracle import counts, join_labels, live_view, unmatched_labels
from tests.secure_kafka import PASSWORD, PASSWORD_ENV, start_secure_broker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Config]:
    os.environ[PASSWORD_ENV] = PASSWORD
    try:
        for _broker, cfg in start_secure_broker(tmp_path_factory.mktemp("secure-kafka")):
            yield cfg
    finally:
        os.environ.pop(PASSWORD_ENV, None)


def test_a_wrong_password_is_refused(secure: Config) -> None:
    ensure_topics(secure)
    options = client_options(secure.kafka) | {"sasl_plain_password": "wrong", "bootstrap_timeout_ms": 5000}
    with pytest.raises(KafkaError):
        KafkaAdminClient(**options).list_topics()
    admin = KafkaAdminClient(**client_options(secure.kafka))
    try:
        assert secure.topics.predictions in admin.list_topics()
    finally:
        admin.close()


def test_rendered_job_runs_in_sql_client(secure: Config, tmp_path: Path) -> None:
    cfg = Config.model_validate(
        {**secure.model_dump(mode="json"), "join": {"label_horizon": "3min", "max_label_skew": "10s"}}
    )
    ensure_topics(cfg)
    predictions, labels = small_dataset(600)
    produce(cfg, cfg.topics.predictions, json_records(predictions, "event_time"))
    produce(cfg, cfg.topics.labels, json_records(labels, "label_time"))
    # Records too broken to have an event time take their Kafka timestamp as row time: the data's start, so
    # they do not move the watermark past the valid records.
    start_ms = int(min(datetime.fromisoformat(p["event_time"]) for p in predictions).timestamp() * 1000)
    bad = [b"{not json", b'{"transaction_id": "t-1", "model_version": "v1", "predicted_fraud_score": 2}']
    produce(cfg, cfg.topics.predictions, ((None, value, start_ms) for value in bad))
    config_file = write_config(cfg, tmp_path / "modelmon.yaml")

    printed = run_cli(config_file, "render", "--bounded", "--stdout")
    assert printed.returncode == 0, printed.stderr
    assert "SASL_SSL" in printed.stdout and f"<redacted: environment variable {PASSWORD_ENV}>" in printed.stdout
    assert "s3cret" not in printed.stdout

    rendered = run_cli(config_file, "render", "--bounded", "--reveal-secrets", "--out", str(tmp_path / "rendered"))
    assert rendered.returncode == 0, rendered.stderr
    sql_file = tmp_path / "rendered" / "modelmon-job.sql"
    assert stat.S_IMODE(sql_file.stat().st_mode) == 0o600
    ran = run_cli(config_file, "sql-client", "--file", str(sql_file))
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "Complete execution of the SQL update statement" in ran.stdout

    pairs = join_labels(predictions, labels, horizon=cfg.join.label_horizon, skew=cfg.join.max_label_skew)
    expected = counts(live_view(pairs, cfg.windows.size))
    assert expected and counts(live_rows(cfg)) == expected
    dead = list(read_topic(cfg, cfg.topics.dead_letter))
    # The bad records, and the labels that came after the horizon (up to 4 min late, the horizon is 3 min).
    unmatched = [json.dumps(label) for label in unmatched_labels(labels, pairs)]
    assert unmatched
    assert sorted(row["payload"] for row in dead) == sorted([value.decode() for value in bad] + unmatched)
    assert {row["reason"] for row in dead} == {
        "not a JSON object",
        "predicted_fraud_score outside [0, 1]",
        "no prediction of this transaction_id made between 3min before and 10s after label_time",
    }

    # The client echoes the statements it ran; modelmon prints them with the password redacted. No log of
    # the run holds it (Beam would log each Python worker's environment); the client's history is private.
    assert "s3cret" not in ran.stdout + ran.stderr
    assert f"<redacted: environment variable {PASSWORD_ENV}>" in ran.stdout
    logs = cfg.paths.data_dir / "flink-home" / "log"
    assert [p.name for p in logs.iterdir() if p.is_file() and "s3cret" in p.read_text(errors="replace")] == [
        "sql-client.history"
    ]
    assert stat.S_IMODE((logs / "sql-client.history").stat().st_mode) == 0o600
