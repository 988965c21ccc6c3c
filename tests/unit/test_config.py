from datetime import timedelta
from pathlib import Path

import pytest

from modelmon.config import Config, ConfigError, env_overrides, load_config, parse_duration


def test_defaults_need_no_file() -> None:
    cfg = load_config(environ={})
    assert cfg.join.label_horizon == timedelta(hours=6)
    assert cfg.windows.size == timedelta(minutes=1)
    assert cfg.kafka.bootstrap_servers == "127.0.0.1:9092"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("6h", timedelta(hours=6)),
        ("30s", timedelta(seconds=30)),
        ("10min", timedelta(minutes=10)),
        ("500ms", timedelta(milliseconds=500)),
        (90, timedelta(seconds=90)),
        ("2d", timedelta(days=2)),
    ],
)
def test_durations(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_file_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "modelmon.yaml"
    path.write_text("join:\n  label_horizon: 2h\ntopics:\n  metrics: m1\n")
    cfg = load_config(
        path, environ={"MODELMON__TOPICS__METRICS": "m2", "MODELMON__SIMULATOR__MODEL_VERSIONS": "[a, b, c]"}
    )
    assert cfg.join.label_horizon == timedelta(hours=2)
    assert cfg.topics.metrics == "m2"
    assert cfg.simulator.model_versions == ("a", "b", "c")


def test_env_overrides_nest_and_parse_yaml() -> None:
    assert env_overrides({"MODELMON__JOB__PARALLELISM": "2", "OTHER": "x"}) == {"job": {"parallelism": 2}}


@pytest.mark.parametrize(
    ("environ", "field"),
    [
        ({"MODELMON__JOIN__LABEL_HORIZON": "soon"}, "join.label_horizon"),
        ({"MODELMON__WINDOWS__SIZE": "0s"}, "windows.size"),
        ({"MODELMON__TOPICS__METRICS": "m'; DROP TABLE x; --"}, "topics.metrics"),
        ({"MODELMON__KAFKA__BOOTSTRAP_SERVERS": "h:1' , 'x' = 'y"}, "kafka.bootstrap_servers"),
        ({"MODELMON__JOB__NAME": "a b"}, "job.name"),
        ({"MODELMON__JOB__PARALLELISM": "0"}, "job.parallelism"),
        ({"MODELMON__JOIN__COLOUR": "red"}, "join.colour"),
        ({"MODELMON__WINDOWS__SIZE": "1500ms"}, "windows.size"),
        ({"MODELMON__COHORT__REVISION_INTERVAL": "250ms"}, "cohort.revision_interval"),
        ({"MODELMON__METRICS__SCORE_BINS": "5"}, "metrics.score_bins"),
        ({"MODELMON__METRICS__LATENCY_BUCKETS": "[10s, 5s]"}, "metrics.latency_buckets"),
        ({"MODELMON__SEGMENTS": "[{name: event_time, values: [a]}]"}, "segments.0.name"),
        ({"MODELMON__SEGMENTS": "[{name: 'c`; DROP', values: [a]}]"}, "segments.0.name"),
        ({"MODELMON__SEGMENTS": '[{name: country, values: ["US\') OR (1=1"]}]'}, "segments.0.values.0"),
        ({"MODELMON__SEGMENTS": "[{name: c, values: [a]}, {name: c, values: [b]}]"}, "segments"),
        ({"MODELMON__COMPARISONS": "[{champion: v1, challenger: v1}]"}, "comparisons.0"),
        ({"MODELMON__COMPARISONS": "[{champion: v1, challenger: v2}, {champion: v3, challenger: v2}]"}, "comparisons"),
        ({"MODELMON__JOB__PYTHON": "/usr/bin/python3'; x"}, "job.python"),
    ],
)
def test_bad_values_fail_naming_the_field(environ: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigError, match=f"config field {field}"):
        load_config(environ=environ)


def test_revision_interval_follows_the_window_unless_set_and_must_divide_it() -> None:
    assert load_config(environ={"MODELMON__WINDOWS__SIZE": "20s"}).cohort.revision_interval == timedelta(seconds=20)
    cfg = load_config(environ={"MODELMON__WINDOWS__SIZE": "2min", "MODELMON__COHORT__REVISION_INTERVAL": "30s"})
    assert cfg.cohort.revision_interval == timedelta(seconds=30)
    for interval in ("25s", "3min"):
        environ = {"MODELMON__WINDOWS__SIZE": "2min", "MODELMON__COHORT__REVISION_INTERVAL": interval}
        with pytest.raises(ConfigError, match=rf"config: .*cohort.revision_interval \({interval}\) must divide "):
            load_config(environ=environ)


def test_config_is_frozen() -> None:
    cfg = Config()
    with pytest.raises(ValueError):
        cfg.job.parallelism = 3  # type: ignore[misc]


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(path, environ={})


def test_dumped_config_loads_back_equal(tmp_path: Path) -> None:
    import yaml

    cfg = load_config(environ={"MODELMON__JOIN__MAX_LABEL_SKEW": "1500ms", "MODELMON__JOIN__LABEL_HORIZON": "PT2H"})
    dumped = cfg.model_dump(mode="json")
    assert dumped["join"] == {"label_horizon": "2h", "max_label_skew": "1500ms"}
    path = tmp_path / "dumped.yaml"
    path.write_text(yaml.safe_dump(dumped))
    assert load_config(path, environ={}) == cfg
