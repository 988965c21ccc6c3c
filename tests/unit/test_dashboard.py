"""dashboards/: the committed Grafana dashboard is exactly what the generator (grafana-foundation-sdk) writes,
every query names only series that exist (the exporter's gauges as its collector really exposes them,
Flink's reporter series, Prometheus's own), with labels the exporter sets, and every panel reads the
Prometheus data source that dashboards/provisioning provisions. No Grafana, no Prometheus."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from modelmon.dashboards import build
from modelmon.exporter.collector import MetricsCollector
from modelmon.exporter.columns import COLUMNS
from modelmon.exporter.state import MetricsState
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelmon.config import AlertView

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "dashboards" / "modelmon.json"
DATASOURCES = ROOT / "dashboards" / "provisioning" / "datasources" / "prometheus.yml"

# Labels the exporter puts on its column gauges (collector.py); `bin` only on the reliability gauges.
EXPORTER_LABELS = {"view", "model_version", "segment_key", "segment_value", "compared_to", "bin"}
VIEWS = set(get_args(AlertView))

# Flink's Prometheus reporter names a series flink_<logical scope>_<metric>: the scopes below, and metric
# names as Flink defines them (runtime MetricNames, the FLIP-33 source metrics of SourceReaderMetricGroup,
# the JobManager's checkpoint statistics). README "Prometheus" lists the ones worth watching; the
# integration tests (tests/integration/test_prometheus_flink.py) scrape several of them from real jobs.
_IO = ["numRecordsIn", "numRecordsOut", "numRecordsInPerSecond", "numRecordsOutPerSecond"]
_SOURCE = ["pendingRecords", "watermarkLag", "currentEmitEventTimeLag", "sourceIdleTime"]
_WATERMARKS = ["currentInputWatermark", "currentOutputWatermark"]
_CHECKPOINTS = [
    "lastCheckpointDuration",
    "lastCheckpointSize",
    "numberOfCompletedCheckpoints",
    "numberOfFailedCheckpoints",
    "numberOfInProgressCheckpoints",
    "totalNumberOfCheckpoints",
]
FLINK_SERIES = {
    *(f"flink_jobmanager_job_{name}" for name in [*_CHECKPOINTS, "numRestarts", "uptime"]),
    *(f"flink_taskmanager_job_task_{name}" for name in _IO),
    *(f"flink_taskmanager_job_task_operator_{name}" for name in [*_IO, *_SOURCE, *_WATERMARKS]),
}
# Prometheus's own series: its alert rules' state, and the health of each scrape.
PROMETHEUS_SERIES = {"ALERTS", "ALERTS_FOR_STATE", "up"}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.$:])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:])(?!\s*\()")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right"}
_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^{}]*)\}")
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_LABEL_VALUES = re.compile(r"^label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\)$")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, labels and strings left out)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    return {name for name in _IDENTIFIER.findall(text) if name not in _KEYWORDS}


def selectors(expr: str) -> Iterator[tuple[str, dict[str, tuple[str, str]]]]:
    """(metric, {label: (operator, value)}) for every selector with braces."""
    for metric, body in _SELECTOR.findall(expr):
        matchers: dict[str, tuple[str, str]] = {}
        rest = body
        while rest.strip():
            match = _MATCHER.match(rest)
            assert match, f"cannot read the label matchers {body!r} of {expr!r}"
            matchers[match[1]] = (match[2], match[3])
            rest = rest[match.end() :]
        yield metric, matchers


def test_metric_names_parser() -> None:
    assert metric_names('sum by (a, b) (rate(x_total{job="y", z=~"$v"}[5m])) / on(a) up') == {"x_total", "up"}
    assert metric_names("time() - max by (view) (m)") == {"m"}
    assert metric_names('count(ALERTS{alertstate="firing"}) or vector(0)') == {"ALERTS"}
    assert dict(selectors('m{a="1", b=~"x|y"}')) == {"m": {"a": ("=", "1"), "b": ("=~", "x|y")}}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


@pytest.fixture(scope="module")
def exported() -> set[str]:
    """Every series name the exporter's collector exposes, from a state holding rows of each kind."""
    state = MetricsState(staleness=timedelta(minutes=10), max_series=100)
    end = datetime(2026, 5, 4, 12, 1, tzinfo=UTC)
    common = {
        "window_start": (end - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "window_end": end.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "model_version": "v2",
        "segment_key": "*",
        "segment_value": "*",
        "revision": 0,
        "is_final": True,
    }
    values = {name: 1 if column.kind != "real" else 0.5 for name, column in COLUMNS.items()}
    reliability = [{"bin": 0, "n": 10, "mean_score": 0.05, "observed_rate": 0.1}]
    state.update({**values, **common, "view": "live", "reliability": reliability})
    state.update({**values, **common, "view": "comparison", "compared_to": "v1"})
    registry = CollectorRegistry()
    registry.register(MetricsCollector(state))
    text = generate_latest(registry).decode()
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable (label_values' selector)."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = _LABEL_VALUES.match(variable["query"])
            assert match, f"variable {variable['name']}: expected label_values(selector, label)"
            yield f"variable {variable['name']}", match[1]


def test_committed_json_is_the_generators_output() -> None:
    assert DASHBOARD.read_text() == build.render(), "dashboards/modelmon.json is stale: run `make dashboards`"


def test_generator_writes_and_checks(tmp_path: Path) -> None:
    out = tmp_path / "dashboard.json"
    assert build.main(["--check", "--out", str(out)]) == 1  # missing
    assert build.main(["--out", str(out)]) == 0
    assert out.read_text() == DASHBOARD.read_text()
    assert build.main(["--check", "--out", str(out)]) == 0
    out.write_text("{}\n")
    assert build.main(["--check", "--out", str(out)]) == 1


def test_the_collector_exposes_every_column(exported: set[str]) -> None:
    # The fixture's rows really reach the exposition (else the next test would check against too little).
    assert {f"modelmon_{name}" for name in COLUMNS} <= exported
    assert {"modelmon_reliability_count", "modelmon_window_end_timestamp_seconds"} <= exported


def test_every_query_names_only_known_series(dashboard: dict[str, Any], exported: set[str]) -> None:
    known = exported | FLINK_SERIES | PROMETHEUS_SERIES
    for where, expr in queries(dashboard):
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        assert names <= known, f"{where}: unknown series {sorted(names - known)} in {expr!r}"


def test_every_query_parses_as_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    """Prometheus's own parser (promtool, from Debian's prometheus package that `make setup` installs) reads
    every query, with the template variables filled in as Grafana would."""
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool not found: `make setup` installs Debian's prometheus package, which has it")
    filled = {"$model_version": "v1|v2", "$segment_key": "*", "$segment_value": "*", "$flink_job": ".*"}
    rules = []
    for number, (_, expr) in enumerate(queries(dashboard)):
        for variable, value in filled.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{number}", "expr": expr})
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [tool, "check", "rules", "rules.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_modelmon_selectors_use_the_exporters_labels(dashboard: dict[str, Any]) -> None:
    for where, expr in queries(dashboard):
        for metric, matchers in selectors(expr):
            if not metric.startswith("modelmon_"):
                continue
            assert set(matchers) <= EXPORTER_LABELS, f"{where}: {metric} has no label {set(matchers) - EXPORTER_LABELS}"
            if "view" in matchers:
                assert matchers["view"][0] == "=" and matchers["view"][1] in VIEWS, f"{where}: view {matchers['view']}"
            if metric.removeprefix("modelmon_") in COLUMNS and where.startswith("panel"):
                # Every per-model panel follows the template variables.
                assert matchers.get("model_version") == ("=~", "$model_version"), where
                assert matchers.get("segment_key") == ("=", "$segment_key"), where
                assert matchers.get("segment_value") == ("=", "$segment_value"), where


def test_comparison_only_columns_are_read_from_the_comparison_view(dashboard: dict[str, Any]) -> None:
    comparison_only = {"mcnemar_b", "mcnemar_c", "mcnemar_pvalue", "significant"} | {
        name for name in COLUMNS if name.endswith("_diff")
    }
    for where, expr in queries(dashboard):
        for metric, matchers in selectors(expr):
            if metric.removeprefix("modelmon_") in comparison_only:
                assert matchers["view"] == ("=", "comparison"), where


def test_every_panel_reads_the_provisioned_prometheus(dashboard: dict[str, Any]) -> None:
    provisioned = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert len(provisioned) == 1
    expected = {"type": provisioned[0]["type"], "uid": provisioned[0]["uid"]}
    assert expected == {"type": "prometheus", "uid": build.DATASOURCE_UID}
    checked = 0
    for panel in panels(dashboard):
        if panel["type"] == "row":
            assert not panel.get("targets"), f"row {panel['title']!r} has queries"
            continue
        assert panel.get("datasource") == expected, f"panel {panel['title']!r}: {panel.get('datasource')}"
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target.get("datasource") == expected, f"panel {panel['title']!r} {target['refId']}"
        checked += 1
    for variable in dashboard["templating"]["list"]:
        assert variable.get("datasource") == expected, f"variable {variable['name']}"
    assert checked >= 20


def test_template_variables(dashboard: dict[str, Any], exported: set[str]) -> None:
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert {"model_version", "segment_key", "segment_value"} <= set(variables)
    assert variables["model_version"]["multi"] and variables["model_version"]["includeAll"]
    assert variables["segment_key"]["current"]["value"] == "*"  # all traffic by default
    assert variables["segment_value"]["current"]["value"] == "*"
    for name in ("model_version", "segment_key", "segment_value"):
        match = _LABEL_VALUES.match(variables[name]["query"])
        assert match and match[2] == name, variables[name]["query"]
        assert metric_names(match[1]) <= exported
    # A panel per chosen model version.
    assert any(panel.get("repeat") == "model_version" for panel in panels(dashboard))


def test_layout(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)) and 0 not in ids
    cells: dict[tuple[int, int], str] = {}
    for panel in panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]
        refs = [target["refId"] for target in panel.get("targets", [])]
        assert len(refs) == len(set(refs)) and "" not in refs, panel["title"]


def test_the_dashboard_covers_the_issue(dashboard: dict[str, Any]) -> None:
    """The panels issue 6 asks for: model quality, labels, drift, CBPE, throughput, champion vs challenger,
    firing alerts, and the Flink job's throughput, checkpoints and watermarks."""
    used = {name for _, expr in queries(dashboard) for name in metric_names(expr)}
    wanted = {
        *(f"modelmon_{name}" for name in ("accuracy", "precision", "recall", "f1", "roc_auc", "roc_auc_error_bound")),
        *(f"modelmon_{name}" for name in ("label_coverage", "label_latency_p50_s", "label_latency_p95_s")),
        *(f"modelmon_{name}" for name in ("psi", "ks_pvalue", "estimated_accuracy", "throughput_per_s")),
        *(f"modelmon_{name}" for name in ("accuracy_diff", "recall_diff", "mcnemar_pvalue")),
        "ALERTS",
        "flink_taskmanager_job_task_operator_numRecordsInPerSecond",
        "flink_taskmanager_job_task_numRecordsOutPerSecond",
        "flink_jobmanager_job_lastCheckpointDuration",
        "flink_taskmanager_job_task_operator_watermarkLag",
    }
    assert wanted <= used, sorted(wanted - used)
    # Drift and CBPE come from the unlabelled view, where they are defined for every prediction.
    views = {
        metric: matchers["view"][1]
        for _, expr in queries(dashboard)
        for metric, matchers in selectors(expr)
        if "view" in matchers
    }
    assert views["modelmon_psi"] == views["modelmon_ks_pvalue"] == views["modelmon_estimated_accuracy"] == "unlabelled"


def test_series_selector_refuses_unknown_columns() -> None:
    assert build.series("accuracy", "live").startswith('modelmon_accuracy{view="live", ')
    with pytest.raises(ValueError, match="not a column"):
        build.series("accurracy", "live")
