"""`modelmon submit` and the cluster commands check what they can before touching a cluster."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from modelmon import cluster
from modelmon.config import Config, load_config
from modelmon.paths import latest_checkpoint, savepoint_dir
from tests.kafka_helpers import run_cli, write_config


def _config(tmp_path: Path) -> tuple[Config, Path]:
    # A port where nothing answers: the commands must fail before or while reaching it, never hang.
    cfg = Config.model_validate({"paths": {"data_dir": str(tmp_path)}, "cluster": {"rest_port": 1}})
    return cfg, write_config(cfg, tmp_path / "modelmon.yaml")


def test_a_parallelism_above_the_slots_is_refused(tmp_path: Path) -> None:
    _cfg, config_file = _config(tmp_path)
    result = run_cli(config_file, "submit", "--parallelism", "3", timeout=60)
    assert result.returncode == 1
    assert "parallelism 3 exceeds the cluster's 2 slots (cluster.slots)" in result.stderr


def test_status_without_a_cluster_says_so(tmp_path: Path) -> None:
    _cfg, config_file = _config(tmp_path)
    result = run_cli(config_file, "cluster", "status", timeout=60)
    assert result.returncode == 1
    assert "no Flink cluster answers at http://127.0.0.1:1" in result.stdout


def test_the_submitted_config_carries_the_parallelism_and_everything_else(tmp_path: Path) -> None:
    cfg = Config.model_validate(
        {"paths": {"data_dir": str(tmp_path)}, "join": {"label_horizon": "2h"}, "job": {"parallelism": 1}}
    )
    written = cluster.write_job_config(cfg, parallelism=2)
    submitted = load_config(written, environ={})
    assert submitted.job.parallelism == 2
    assert submitted.model_copy(update={"job": cfg.job}) == cfg
    assert yaml.safe_load(written.read_text())["job"]["parallelism"] == 2


def test_the_newest_of_checkpoints_and_savepoints_is_resumed_from(tmp_path: Path) -> None:
    cfg = Config.model_validate({"paths": {"data_dir": str(tmp_path)}})
    fingerprint = "abc"
    assert latest_checkpoint(cfg, fingerprint) is None
    checkpoint = savepoint_dir(cfg, fingerprint).parent / "job-1" / "chk-7"
    savepoint = savepoint_dir(cfg, fingerprint) / "savepoint-1a2b-3c4d"
    for folder, mtime in ((checkpoint, 1_000), (savepoint, 2_000)):
        folder.mkdir(parents=True)
        (folder / "_metadata").write_bytes(b"")
        os.utime(folder, (mtime, mtime))
    assert latest_checkpoint(cfg, fingerprint) == savepoint
    os.utime(checkpoint, (3_000, 3_000))
    assert latest_checkpoint(cfg, fingerprint) == checkpoint
