"""The job on a standalone cluster, as users scale out: `modelmon cluster start`, `modelmon submit` (which runs
`bin/flink run`, as on any Flink 2.x cluster) at the cluster's parallelism of 2, and the oracle's numbers."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelmon.config import Config
from modelmon.kafka_local import LocalKafka
from tests.datasets import small_dataset
from tests.kafka_helpers import fresh_config, json_records, live_rows, produce, run_cli, write_config
from tests.oracle import counts, join_labels, live_view

pytestmark = pytest.mark.integration

# Not the default 8081, so the test never meets (or stops) a cluster a user or the demo runs.
REST_PORT = 18081


@pytest.fixture
def cluster_config(kafka_broker: LocalKafka, data_dir: Path, tmp_path: Path) -> Iterator[tuple[Config, Path]]:
    """A config naming the test cluster, and the cluster started by the CLI; stopped even when a test fails."""
    cfg = fresh_config(
        data_dir, {"join": {"label_horizon": "3min", "max_label_skew": "10s"}, "cluster": {"rest_port": REST_PORT}}
    )
    config_file = write_config(cfg, tmp_path / "modelmon.yaml")
    started = run_cli(config_file, "cluster", "start", timeout=180)
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        assert f"http://127.0.0.1:{REST_PORT}" in started.stdout
        yield cfg, config_file
    finally:
        stopped = run_cli(config_file, "cluster", "stop", timeout=120)
        assert stopped.returncode == 0, stopped.stderr[-3000:]


def test_bounded_job_submitted_at_parallelism_two(cluster_config: tuple[Config, Path]) -> None:
    cfg, config_file = cluster_config
    predictions, labels = small_dataset(600)
    produce(cfg, cfg.topics.predictions, json_records(predictions, "event_time"))
    produce(cfg, cfg.topics.labels, json_records(labels, "label_time"))

    result = run_cli(config_file, "submit", "--bounded", timeout=600)

    assert result.returncode == 0, result.stderr[-3000:]
    assert "at parallelism 2" in result.stderr
    job_id = re.search(r"job ([0-9a-f]{32}) finished", result.stdout)
    assert job_id, result.stdout
    status = run_cli(config_file, "cluster", "status")
    assert status.returncode == 0, status.stderr
    # Attached, submit returns only once the bounded job has ended, not once it is submitted.
    assert f"job {job_id[1]} 'modelmon': FINISHED" in status.stdout
    assert "1 TaskManager(s), 2 of 2 slots free" in status.stdout
    with urllib.request.urlopen(f"http://127.0.0.1:{REST_PORT}/jobs/{job_id[1]}", timeout=10) as response:
        vertices = json.load(response)["vertices"]
    assert max(vertex["parallelism"] for vertex in vertices) == 2
    rows = live_rows(cfg)
    assert all(row["is_final"] is True for row in rows.values())
    pairs = join_labels(predictions, labels, horizon=cfg.join.label_horizon, skew=cfg.join.max_label_skew)
    expected = counts(live_view(pairs, cfg.windows.size))
    assert expected and counts(rows) == expected
