"""The modelmon Grafana dashboard as code (grafana-foundation-sdk, the Grafana 10.1 schema).

Every panel queries the provisioned Prometheus data source (`dashboards/provisioning/datasources`), which
scrapes `modelmon exporter` (gauges `modelmon_<column>` of `exporter/columns.py`, labels view,
model_version, segment_key, segment_value, and compared_to on comparison rows), Flink's Prometheus reporter
and its own alert rules (`ALERTS`). Template variables pick the model versions (several, default all) and
one segment (default `*`, all traffic); every modelmon panel has one series per model version.

`python -m modelmon.dashboards` writes dashboards/modelmon.json; `--check` only tells whether it is current
(tests/unit/test_dashboard.py does the same).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    Dashboard,
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
    DataTransformerConfig,
    DynamicConfigValue,
    Panel,
    Threshold,
    ThresholdsMode,
    VariableOption,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat
from modelmon.exporter.columns import COLUMNS

from modelmon.paths import SOURCE_ROOT

UID: Final = "modelmon"
TITLE: Final = "modelmon: model performance"
# The data source as dashboards/provisioning/datasources/prometheus.yml provisions it (fixed uid).
DATASOURCE_UID: Final = "prometheus"
DATASOURCE: Final = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
OUTPUT: Final = SOURCE_ROOT / "dashboards" / "modelmon.json"

# The selector of every modelmon series a panel shows: the chosen model versions (a multi-value variable,
# regex-escaped by Grafana) and the one chosen segment.
_SERIES: Final = 'model_version=~"$model_version", segment_key="$segment_key", segment_value="$segment_value"'
_FLINK_JOB: Final = 'job_name=~"$flink_job"'
# Flink's SQL sources are named `Source: KafkaSource-...`; the reporter turns spaces into underscores.
_SOURCES: Final = f'{_FLINK_JOB}, operator_name=~"Source:.*"'
_DASHED: Final = DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]})
_THIN: Final = DynamicConfigValue(id_val="custom.lineWidth", value=1)

Query = tuple[str, str]  # (PromQL, legend)


def series(column: str, view: str) -> str:
    """The selector of an exported column in one view, for the chosen model versions and segment."""
    if column not in COLUMNS:
        raise ValueError(f"{column!r} is not a column the exporter exports (exporter/columns.py)")
    return f'modelmon_{column}{{view="{view}", {_SERIES}}}'


def _target(expr: str, legend: str, ref_id: str, *, instant: bool = False) -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref_id).datasource(DATASOURCE)
    return query.instant() if instant else query.range()


def _ref(index: int) -> str:
    return chr(ord("A") + index)


def _steps(*steps: tuple[float | None, str]) -> dashboard_builders.ThresholdsConfig:
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=value, color=color) for value, color in steps])
    )


def graph(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    unit: str = "none",
    width: int = 8,
    height: int = 8,
    bounds: tuple[float | None, float | None] = (None, None),
    thresholds: dashboard_builders.ThresholdsConfig | None = None,
    log_scale: bool = False,
    dashed: str | None = None,
) -> timeseries.Panel:
    """A time series panel; `dashed` is a regex of series names drawn as thin dashed lines (intervals)."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .span(width)
        .height(height)
        .unit(unit)
        .line_width(2)
        .fill_opacity(0)
        .show_points(common.VisibilityMode.NEVER)
        .span_nulls(False)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.NONE))
    )
    for index, (expr, legend) in enumerate(queries):
        panel = panel.with_target(_target(expr, legend, _ref(index)))
    low, high = bounds
    if low is not None:
        panel = panel.min(low)
    if high is not None:
        panel = panel.max(high)
    if thresholds is not None:
        panel = panel.thresholds(thresholds).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphTresholdsStyleMode.DASHED)
        )
    if log_scale:
        panel = panel.scale_distribution(
            common_builders.ScaleDistributionConfig().type(common.ScaleDistribution.LOG).log(10)
        )
    if dashed is not None:
        panel = panel.override_by_regexp(dashed, [_DASHED, _THIN])
    return panel


def _rate_with_interval(column: str, title: str, description: str) -> timeseries.Panel:
    """A rate of the live view with its Wilson 95% interval (columns <column>_ci_low/_high), dashed."""
    return graph(
        title,
        f"{description} Dashed: the Wilson 95% interval.",
        [
            (series(column, "live"), "{{model_version}}"),
            (series(f"{column}_ci_low", "live"), "{{model_version}} 95% low"),
            (series(f"{column}_ci_high", "live"), "{{model_version}} 95% high"),
        ],
        unit="percentunit",
        bounds=(0.0, 1.0),
        dashed=".* 95% .*",
    )


def _overview() -> list[stat.Panel]:
    firing = (
        stat.Panel()
        .title("Alerts firing")
        .description("Prometheus alert rules (prometheus/alerts.yml) firing now, of every severity.")
        .datasource(DATASOURCE)
        .span(4)
        .height(5)
        .with_target(_target('count(ALERTS{alertstate="firing"}) or vector(0)', "firing", "A", instant=True))
        .thresholds(_steps((None, "green"), (1, "red")))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    targets = (
        stat.Panel()
        .title("Scrape targets up")
        .description("Each Prometheus target: the exporter (job modelmon) and Flink's reporters (job flink).")
        .datasource(DATASOURCE)
        .span(8)
        .height(5)
        .with_target(_target("up", "{{job}} {{instance}}", "A", instant=True))
        .thresholds(_steps((None, "red"), (1, "green")))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.NAME)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    freshness = (
        stat.Panel()
        .title("Age of the newest window")
        .description(
            "Seconds since the newest window of each view ended (modelmon_window_end_timestamp_seconds). The "
            "live view closes a window about 15 s after its end; a growing age means the job or the exporter "
            "stalled."
        )
        .datasource(DATASOURCE)
        .span(12)
        .height(5)
        .unit("s")
        .with_target(
            _target("time() - max by (view) (modelmon_window_end_timestamp_seconds)", "{{view}}", "A", instant=True)
        )
        .thresholds(_steps((None, "green"), (180, "orange"), (300, "red")))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    headline = [
        ("accuracy", "accuracy"),
        ("precision", "precision"),
        ("recall", "recall"),
        ("f1", "F1"),
        ("roc_auc", "ROC AUC"),
    ]
    per_version = (
        stat.Panel()
        .title("Model version $model_version, newest live window")
        .description(
            "One panel per chosen model version ('*' is all versions together): the newest live window's "
            "metrics for the chosen segment."
        )
        .datasource(DATASOURCE)
        .span(24)
        .height(5)
        .repeat("model_version")
        .repeat_direction("h")
        .unit("percentunit")
        .decimals(1)
        .thresholds(_steps((None, "blue")))
        .color_mode(common.BigValueColorMode.VALUE)
        .graph_mode(common.BigValueGraphMode.AREA)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .override_by_name(
            "ROC AUC", [DynamicConfigValue(id_val="unit", value="none"), DynamicConfigValue(id_val="decimals", value=3)]
        )
    )
    for index, (column, legend) in enumerate(headline):
        per_version = per_version.with_target(_target(series(column, "live"), legend, _ref(index)))
    return [firing, targets, freshness, per_version]


def _performance() -> list[timeseries.Panel]:
    live = "Live view: the labels that arrived in each window (by label time)."
    return [
        _rate_with_interval("accuracy", "Accuracy", live),
        _rate_with_interval("precision", "Precision", live),
        _rate_with_interval("recall", "Recall", live),
        graph(
            "F1",
            f"{live} Harmonic mean of precision and recall.",
            [(series("f1", "live"), "{{model_version}}")],
            width=12,
            unit="percentunit",
            bounds=(0.0, 1.0),
        ),
        graph(
            "ROC AUC ± error bound",
            f"{live} ROC AUC from the score histograms; the exact AUC lies within roc_auc_error_bound of it "
            "(dashed: AUC minus and plus the bound).",
            [
                (series("roc_auc", "live"), "{{model_version}}"),
                (
                    f"{series('roc_auc', 'live')} - {series('roc_auc_error_bound', 'live')}",
                    "{{model_version}} - bound",
                ),
                (
                    f"{series('roc_auc', 'live')} + {series('roc_auc_error_bound', 'live')}",
                    "{{model_version}} + bound",
                ),
            ],
            width=12,
            bounds=(0.0, 1.0),
            dashed=".* [-+] bound",
        ),
    ]


def _labels() -> list[timeseries.Panel]:
    return [
        graph(
            "Label coverage",
            "Cohort view: the share of the youngest cohort's predictions (by prediction time) whose label has "
            "arrived so far; it grows as labels come in, up to the label horizon.",
            [(series("label_coverage", "cohort"), "{{model_version}}")],
            unit="percentunit",
            bounds=(0.0, 1.0),
        ),
        graph(
            "Label latency p50 / p95",
            "Live view: seconds from prediction to label (label-latency buckets, interpolated). The "
            "label-latency-high rule fires above 1800 s at p95.",
            [
                (series("label_latency_p50_s", "live"), "{{model_version}} p50"),
                (series("label_latency_p95_s", "live"), "{{model_version}} p95"),
            ],
            unit="s",
            thresholds=_steps((None, "green"), (1800, "red")),
        ),
        graph(
            "Labels per window",
            "Live view: how many labelled predictions each window's metrics rest on (alert rules skip a window "
            "with fewer than their min_samples, 100 by default).",
            [(series("n_labelled", "live"), "{{model_version}}")],
        ),
    ]


def _drift() -> list[timeseries.Panel]:
    unlabelled = "Unlabelled view: every prediction of the window (by prediction time), no label needed."
    return [
        graph(
            "PSI (score drift)",
            f"{unlabelled} Population stability index of the scores against drift.reference_file "
            "(empty without one); 0.1 and 0.25 are the usual warning and alarm levels.",
            [(series("psi", "unlabelled"), "{{model_version}}")],
            width=6,
            thresholds=_steps((None, "green"), (0.1, "orange"), (0.25, "red")),
        ),
        graph(
            "KS p-value (score drift)",
            f"{unlabelled} Kolmogorov-Smirnov test of the scores against drift.reference_file; the score-drift "
            "rule fires below 0.01.",
            [(series("ks_pvalue", "unlabelled"), "{{model_version}}")],
            width=6,
            log_scale=True,
            thresholds=_steps((None, "red"), (0.01, "green")),
        ),
        graph(
            "Estimated vs realized accuracy",
            "Estimated: CBPE, the accuracy the scores promise if calibrated, known before any label "
            "(unlabelled view). Realized: the accuracy the labels show (live view). A gap that opens means the "
            "model's calibration changed.",
            [
                (series("estimated_accuracy", "unlabelled"), "{{model_version}} estimated"),
                (series("accuracy", "live"), "{{model_version}} realized"),
            ],
            width=6,
            unit="percentunit",
            bounds=(0.0, 1.0),
            dashed=".* estimated",
        ),
        graph(
            "Throughput",
            f"{unlabelled} Predictions per second; the throughput-low rule fires below 500/s.",
            [(series("throughput_per_s", "unlabelled"), "{{model_version}}")],
            width=6,
            unit="suffix: /s",
        ),
    ]


def _comparison() -> list[timeseries.Panel]:
    comparison = (
        "Comparison view: challenger (model_version) against champion (compared_to) on the transactions both "
        "scored, by label time."
    )
    diffs = [("accuracy", "accuracy"), ("precision", "precision"), ("recall", "recall"), ("f1", "F1")]
    return [
        graph(
            "Challenger minus champion",
            f"{comparison} Above 0: the challenger is better (in percentage points).",
            [
                (series(f"{column}_diff", "comparison"), f"{{{{model_version}}}} vs {{{{compared_to}}}}: {name}")
                for column, name in diffs
            ],
            width=12,
            unit="percentunit",
            thresholds=_steps((None, "transparent"), (0, "text")),
        ),
        graph(
            "McNemar p-value",
            f"{comparison} Exact McNemar test of the discordant pairs; below 0.05 the accuracies differ significantly.",
            [(series("mcnemar_pvalue", "comparison"), "{{model_version}} vs {{compared_to}}")],
            width=12,
            log_scale=True,
            thresholds=_steps((None, "green"), (0.05, "text")),
        ),
    ]


def _alerts() -> list[table.Panel | timeseries.Panel]:
    hidden = {"Time": True, "Value": True, "__name__": True, "alertstate": True}
    firing = (
        table.Panel()
        .title("Firing alerts")
        .description('ALERTS{alertstate="firing"}: Prometheus\'s own series of its firing alert rules, now.')
        .datasource(DATASOURCE)
        .span(12)
        .height(8)
        .with_target(
            prometheus.Dataquery()
            .expr('ALERTS{alertstate="firing"}')
            .legend_format("{{alertname}}")
            .ref_id("A")
            .datasource(DATASOURCE)
            .instant()
            .format(PromQueryFormat.TABLE)
        )
        .with_transformation(DataTransformerConfig(id_val="organize", options={"excludeByName": hidden}))
        .cell_height(common.TableCellHeight.SM)
    )
    history = graph(
        "Alerts firing over time",
        "Firing alert rules by name and severity.",
        [('sum by (alertname, severity) (ALERTS{alertstate="firing"})', "{{alertname}} ({{severity}})")],
        width=12,
    )
    return [firing, history]


def _flink() -> list[timeseries.Panel]:
    return [
        graph(
            "Records in / s (Kafka sources)",
            "Records each Kafka source of the job reads per second (numRecordsInPerSecond).",
            [
                (
                    f"sum by (job_name, operator_name) (flink_taskmanager_job_task_operator_numRecordsInPerSecond"
                    f"{{{_SOURCES}}})",
                    "{{operator_name}}",
                )
            ],
            unit="suffix: /s",
        ),
        graph(
            "Records out / s (tasks)",
            "Records each task of the job emits per second (numRecordsOutPerSecond).",
            [
                (
                    f"sum by (job_name, task_name) (flink_taskmanager_job_task_numRecordsOutPerSecond{{{_FLINK_JOB}}})",
                    "{{task_name}}",
                )
            ],
            unit="suffix: /s",
        ),
        graph(
            "Kafka records not yet read",
            "Consumer lag of each Kafka source (pendingRecords).",
            [
                (
                    f"sum by (job_name, operator_name) (flink_taskmanager_job_task_operator_pendingRecords"
                    f"{{{_SOURCES}}})",
                    "{{operator_name}}",
                )
            ],
        ),
        graph(
            "Watermark lag",
            "How far each source's watermark trails the wall clock (watermarkLag). It includes "
            "windows.out_of_orderness and how old the records are when read.",
            [
                (
                    f"max by (job_name, operator_name) (flink_taskmanager_job_task_operator_watermarkLag"
                    f"{{{_SOURCES}}})",
                    "{{operator_name}}",
                )
            ],
            unit="ms",
        ),
        graph(
            "Checkpoint duration",
            "Duration of the last completed checkpoint (lastCheckpointDuration). A checkpoint commits the "
            "Kafka transactions: results become visible to read_committed readers when it completes.",
            [(f"flink_jobmanager_job_lastCheckpointDuration{{{_FLINK_JOB}}}", "{{job_name}}")],
            unit="ms",
        ),
        graph(
            "Checkpoints and restarts (5 min)",
            "Completed and failed checkpoints and job restarts in the last 5 minutes.",
            [
                (
                    f"increase(flink_jobmanager_job_numberOfCompletedCheckpoints{{{_FLINK_JOB}}}[5m])",
                    "{{job_name}} completed",
                ),
                (
                    f"increase(flink_jobmanager_job_numberOfFailedCheckpoints{{{_FLINK_JOB}}}[5m])",
                    "{{job_name}} failed",
                ),
                (f"increase(flink_jobmanager_job_numRestarts{{{_FLINK_JOB}}}[5m])", "{{job_name}} restarts"),
            ],
        ),
    ]


def _variable(name: str, label: str, query: str, *, multi: bool, default: str) -> dashboard_builders.QueryVariable:
    value = "$__all" if multi else default
    return (
        dashboard_builders.QueryVariable(name)
        .label(label)
        .query(query)
        .datasource(DATASOURCE)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(multi)
        .current(VariableOption(selected=True, text="All" if multi else default, value=value))
    )


def _variables() -> list[dashboard_builders.QueryVariable]:
    return [
        _variable(
            "model_version",
            "Model version",
            "label_values(modelmon_n_predictions, model_version)",
            multi=True,
            default="*",
        ),
        _variable(
            "segment_key", "Segment", "label_values(modelmon_n_predictions, segment_key)", multi=False, default="*"
        ),
        _variable(
            "segment_value",
            "Segment value",
            'label_values(modelmon_n_predictions{segment_key="$segment_key"}, segment_value)',
            multi=False,
            default="*",
        ),
        _variable(
            "flink_job",
            "Flink job",
            "label_values(flink_jobmanager_job_lastCheckpointDuration, job_name)",
            multi=True,
            default="*",
        ),
    ]


def build() -> Dashboard:
    """The dashboard model: rows of panels, laid out by the SDK on Grafana's 24-column grid."""
    builder = (
        dashboard_builders.Dashboard(TITLE)
        .uid(UID)
        .description(
            "Model performance from modelmon's metrics topic (modelmon exporter), the alert rules, and the Flink "
            "job that computes the metrics."
        )
        .tags(["modelmon"])
        .timezone("browser")
        .time("now-3h", "now")
        .refresh("30s")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .variables(list(_variables()))
        .link(
            dashboard_builders.DashboardLink("Live page")
            .type(DashboardLinkType.LINK)
            .url("http://127.0.0.1:9108/")
            .tooltip("modelmon exporter's live page (as docker-compose.yml publishes it)")
            .target_blank(True)
        )
    )
    sections: list[tuple[str, Sequence[Builder[Panel]]]] = [
        ("Overview", _overview()),
        ("Model performance (live view)", _performance()),
        ("Labels", _labels()),
        ("Drift and estimated performance (unlabelled view)", _drift()),
        ("Champion vs challenger (comparison view)", _comparison()),
        ("Alerts", _alerts()),
        ("Flink job", _flink()),
    ]
    for title, panels in sections:
        builder = builder.with_row(dashboard_builders.Row(title))
        for panel in panels:
            builder = builder.with_panel(panel)
    model = builder.build()
    # Stable panel ids in layout order (Grafana wants them unique; the SDK leaves them unset).
    for number, built in enumerate(model.panels or [], start=1):
        built.id_val = number
    return model


def render() -> str:
    """The dashboard as Grafana JSON, keys sorted, ending with a newline: what dashboards/modelmon.json holds."""
    return json.dumps(build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelmon.dashboards", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUTPUT, help=f"file to write (default: {OUTPUT})")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the file is not current")
    args = parser.parse_args(argv)
    text = render()
    out: Path = args.out
    if args.check:
        current = out.is_file() and out.read_text() == text
        print(f"{out}: {'current' if current else 'out of date: run `make dashboards`'}", file=sys.stderr)
        return 0 if current else 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}", file=sys.stderr)
    return 0
