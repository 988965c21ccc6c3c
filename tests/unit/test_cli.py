from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from modelmon.cli import cli


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("kafka", "run", "simulate", "render", "sql-client", "watch", "demo", "config"):
        assert command in result.output


def test_config_prints_effective_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELMON__JOIN__LABEL_HORIZON", "90min")
    result = CliRunner().invoke(cli, ["config"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output)["join"]["label_horizon"] == "90min"


def test_bad_config_fails_at_start_naming_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELMON__WINDOWS__SIZE", "a while")
    result = CliRunner().invoke(cli, ["render", "--stdout"])
    assert result.exit_code == 2
    assert "config field windows.size" in result.output


def test_render_writes_the_job(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["render", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    sql = (tmp_path / "modelmon-job.sql").read_text()
    assert "EXECUTE STATEMENT SET" in sql and "CREATE TABLE predictions_raw" in sql
