"""The rendered SQL runs unchanged in the Flink SQL client (sql-client.sh -f) and gives the oracle's numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelmon.kafka_local import LocalKafka
from tests.datasets import small_dataset
from tests.kafka_helpers import fresh_config, json_records, live_rows, produce, run_cli, write_config
from tests.oracle import counts, join_labels, live_view

pytestmark = pytest.mark.integration


def test_rendered_job_runs_in_sql_client(kafka_broker: LocalKafka, data_dir: Path, tmp_path: Path) -> None:
    cfg = fresh_config(data_dir, {"join": {"label_horizon": "3min", "max_label_skew": "10s"}})
    predictions, labels = small_dataset(600)
    produce(cfg, cfg.topics.predictions, json_records(predictions, "event_time"))
    produce(cfg, cfg.topics.labels, json_records(labels, "label_time"))
    config_file = write_config(cfg, tmp_path / "modelmon.yaml")

    rendered = run_cli(config_file, "render", "--bounded", "--out", str(tmp_path / "rendered"))
    assert rendered.returncode == 0, rendered.stderr
    sql_file = tmp_path / "rendered" / "modelmon-job.sql"
    ran = run_cli(config_file, "sql-client", "--file", str(sql_file))
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "Complete execution of the SQL update statement" in ran.stdout

    pairs = join_labels(predictions, labels, horizon=cfg.join.label_horizon, skew=cfg.join.max_label_skew)
    expected = counts(live_view(pairs, cfg.windows.size))
    assert expected and counts(live_rows(cfg)) == expected
