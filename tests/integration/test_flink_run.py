"""The job submitted with `bin/flink run` (how users run it on a Flink 2.x cluster) to a standalone
cluster gives the oracle's numbers."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelmon.config import Config
from modelmon.flink_dist import flink_run, flink_run_job_ids, prepare_flink_home, start_cluster, stop_cluster
from modelmon.kafka_local import LocalKafka
from modelmon.paths import gateway_jar
from tests.datasets import small_dataset
from tests.kafka_helpers import fresh_config, json_records, live_rows, produce, write_config
from tests.oracle import counts, join_labels, live_view

pytestmark = pytest.mark.integration

# Not the default 8081, so the test never meets (or stops) a cluster a user or the demo runs.
REST_PORT = 18081


@pytest.fixture(scope="module")
def flink_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A standalone JobManager + TaskManager from the PyFlink bundle; stopped even when a test fails."""
    home = prepare_flink_home(
        tmp_path_factory.mktemp("flink-run"), gateway_jar(Config()), conf={"rest.port": REST_PORT}
    )
    try:
        url = start_cluster(home)
        yield home, url
    finally:
        stop_cluster(home)


def _job_state(url: str, job_id: str) -> str:
    with urllib.request.urlopen(f"{url}/jobs/{job_id}", timeout=10) as response:
        state: str = json.load(response)["state"]
        return state


def test_bounded_job_via_flink_run_on_standalone_cluster(
    kafka_broker: LocalKafka, data_dir: Path, tmp_path: Path, flink_cluster: tuple[Path, str]
) -> None:
    home, url = flink_cluster
    cfg = fresh_config(data_dir, {"join": {"label_horizon": "3min", "max_label_skew": "10s"}})
    predictions, labels = small_dataset(600)
    produce(cfg, cfg.topics.predictions, json_records(predictions, "event_time"))
    produce(cfg, cfg.topics.labels, json_records(labels, "label_time"))
    config_file = write_config(cfg, tmp_path / "modelmon.yaml")

    result = flink_run(home, ["--config", str(config_file), "--bounded"], target="remote", timeout=600)

    job_ids = flink_run_job_ids(result.stdout)
    assert len(job_ids) == 1, result.stdout[-3000:]
    # Attached, the CLI returns only once the bounded job has ended, not once it is submitted.
    assert _job_state(url, job_ids[0]) == "FINISHED"

    rows = live_rows(cfg)
    assert all(row["is_final"] is True for row in rows.values())
    pairs = join_labels(predictions, labels, horizon=cfg.join.label_horizon, skew=cfg.join.max_label_skew)
    expected = counts(live_view(pairs, cfg.windows.size))
    assert expected and counts(rows) == expected
