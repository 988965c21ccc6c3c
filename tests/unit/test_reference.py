"""Reference scores for drift: `modelmon reference` writes them, `read_reference_scores` reads them back, and
`reference_histogram` bins them for the SQL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from modelmon.cli import cli
from modelmon.config import Config, ConfigError
from modelmon.reference import read_reference_scores
from modelmon.render import reference_histogram, render_job

# ---------------------------------------------------------------------------------------------------------
# modelmon reference


def test_help_lists_the_command_and_its_defaults() -> None:
    assert "reference" in CliRunner().invoke(cli, ["--help"]).output
    result = CliRunner().invoke(cli, ["reference", "--help"])
    assert result.exit_code == 0
    assert "--out" in result.output and "--transactions" in result.output
    assert "default: 20000" in result.output and "drift.reference_file" in result.output


def test_reference_writes_the_simulated_scores_and_says_how_to_use_them(tmp_path: Path) -> None:
    out = tmp_path / "new" / "reference.txt"
    result = CliRunner().invoke(cli, ["reference", "--out", str(out), "--transactions", "150"])
    assert result.exit_code == 0, result.output

    scores = list(read_reference_scores(out))
    assert len(scores) == 300  # 150 transactions x the two default model versions
    assert all(0.0 <= s <= 1.0 for s in scores) and len(set(scores)) > 100
    assert f"wrote 300 scores (150 transactions x model versions v1, v2) to {out}" in result.output
    # The YAML it prints is a config the job accepts, pointing at the file.
    snippet = result.output.split("in the config file:\n", 1)[1].split("or in the environment", 1)[0]
    assert Config.model_validate(yaml.safe_load(snippet)).drift.reference_file == out
    assert f"MODELMON__DRIFT__REFERENCE_FILE={out}" in result.output


def test_reference_is_seeded_by_the_configs_simulator_section(tmp_path: Path) -> None:
    config = tmp_path / "modelmon.yaml"
    config.write_text(yaml.safe_dump({"simulator": {"model_versions": ["a", "b", "c"], "seed": 7}}))

    def run(name: str) -> list[str]:
        out = tmp_path / name
        result = CliRunner().invoke(
            cli, ["--config", str(config), "reference", "--out", str(out), "--transactions", "40"]
        )
        assert result.exit_code == 0, result.output
        assert "model versions a, b, c" in result.output
        return out.read_text().splitlines()

    first = run("one.txt")
    assert len(first) == 120
    assert run("two.txt") == first


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Missing option '--out'"),
        (["--out", "x.txt", "--transactions", "0"], "--transactions"),
        (["--out", "x.txt", "--transactions", "many"], "--transactions"),
    ],
)
def test_reference_rejects_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["reference", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_reference_refuses_a_folder_as_out(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["reference", "--out", str(tmp_path), "--transactions", "5"])
    assert result.exit_code == 2
    assert "directory" in result.output


# ---------------------------------------------------------------------------------------------------------
# read_reference_scores


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "reference.txt"
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_reads_plain_numbers_and_json_lines_skipping_blank_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "0.25",
        "",
        "  1  ",
        "0",
        "1e-3",
        json.dumps({"predicted_fraud_score": 0.75, "model_version": "v1"}),
        "   ",
        '{"predicted_fraud_score": 1}',
        '{"predicted_fraud_score": "0.5"}',  # as the job reads it: TRY_CAST(JSON_VALUE(...) AS DOUBLE)
    )
    assert list(read_reference_scores(path)) == [0.25, 1.0, 0.0, 0.001, 0.75, 1.0, 0.5]


def assert_config_error(path: Path, *parts: str) -> None:
    with pytest.raises(ConfigError) as info:
        list(read_reference_scores(path))
    message = str(info.value)
    assert "drift.reference_file" in message
    for part in parts:
        assert part in message, message


@pytest.mark.parametrize(
    "bad",
    [
        "abc",
        "0.5 0.6",
        '{"score": 0.5}',
        '{"predicted_fraud_score": null}',
        '{"predicted_fraud_score": "high"}',
        "[0.5]",
        "null",
        "true",
        '{"predicted_fraud_score": false}',
    ],
)
def test_a_line_that_is_not_a_score_is_named_by_number(tmp_path: Path, bad: str) -> None:
    path = write(tmp_path, "0.1", "", bad, "0.2")
    assert_config_error(path, f"{path}:3", "predicted_fraud_score")


@pytest.mark.parametrize("bad", ["1.5", "-0.1", "1.0000001", "NaN", "Infinity", '{"predicted_fraud_score": 2}'])
def test_a_score_outside_the_unit_interval_is_named_by_number(tmp_path: Path, bad: str) -> None:
    path = write(tmp_path, "0.1", bad)
    assert_config_error(path, f"{path}:2", "outside [0, 1]")


@pytest.mark.parametrize("lines", [(), ("", "  ")])
def test_a_file_without_scores_is_rejected(tmp_path: Path, lines: tuple[str, ...]) -> None:
    path = write(tmp_path, *lines)
    assert_config_error(path, str(path), "no scores")


def test_a_missing_file_is_rejected(tmp_path: Path) -> None:
    assert_config_error(tmp_path / "absent.txt", "cannot read", "absent.txt")


# ---------------------------------------------------------------------------------------------------------
# reference_histogram


def config_with(reference: Path | None, **metrics: int) -> Config:
    return Config.model_validate(
        {
            "drift": {"reference_file": None if reference is None else str(reference)},
            "metrics": metrics,
            "paths": {"data_dir": "/var/lib/modelmon"},
            "job": {"python": "/usr/bin/python3"},
        }
    )


def test_without_a_reference_file_there_is_no_histogram() -> None:
    assert reference_histogram(config_with(None)) is None


@pytest.mark.parametrize("score_bins", [10, 100, 128])
def test_reference_histogram_counts_every_score_in_calibration_curve_bins(tmp_path: Path, score_bins: int) -> None:
    rng = np.random.default_rng(score_bins)
    scores = [*np.round(rng.beta(0.5, 2.0, 500), 6).tolist(), 0.0, 0.3, 0.5, 0.07, 1.0]
    path = write(tmp_path, *(repr(s) for s in scores))

    histogram = reference_histogram(config_with(path, score_bins=score_bins))
    assert histogram is not None
    counts = [int(c) for c in histogram.split(",")]
    assert len(counts) == score_bins
    assert sum(counts) == len(scores)
    edges = np.linspace(0.0, 1.0, score_bins + 1)[1:-1]
    expected = np.bincount(np.searchsorted(edges, scores), minlength=score_bins)
    assert counts == expected.tolist()


def test_the_written_reference_reaches_the_rendered_job(tmp_path: Path) -> None:
    out = tmp_path / "reference.txt"
    result = CliRunner().invoke(cli, ["reference", "--out", str(out), "--transactions", "100"])
    assert result.exit_code == 0, result.output
    cfg = config_with(out)
    histogram = reference_histogram(cfg)
    assert histogram is not None
    assert sum(int(c) for c in histogram.split(",")) == 200
    assert re.search(rf"'{re.escape(histogram)}'", render_job(cfg).to_sql_script())
