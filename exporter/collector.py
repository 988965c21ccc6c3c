"""The state as Prometheus metric families, built afresh at every scrape (a custom collector, as
prometheus_client's docs recommend for data that lives elsewhere).

Every numeric column becomes the gauge `modelmon_<column>` with the labels view, model_version,
segment_key, segment_value (comparison rows also compared_to); a null value is left out for that series,
never exported as NaN. Reliability bins get a `bin` label. Self-metrics are named `modelmon_exporter_*`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any, Final

from modelmon.exporter.columns import COLUMNS, RELIABILITY, WINDOW_END_HELP
from modelmon.exporter.state import MetricsState, Outcome, Row, SeriesKey, Stats, timestamp
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PREFIX: Final = "modelmon"
# Reliability bin fields and the gauge each becomes (`n` reads better as a count).
_BIN_GAUGES: Final = {"observed_rate": "observed_rate", "mean_score": "mean_score", "n": "count"}
# How the job's reason for a late record starts (sql/macros.sql.j2, late_reason).
LATE_REASON: Final = "late:"


def _labels(key: SeriesKey, row: Row) -> dict[str, str]:
    labels = key._asdict()
    if row.get("compared_to") is not None:
        labels["compared_to"] = str(row["compared_to"])
    return labels


def _sample(value: Any) -> float | None:
    """A row value as a sample value; None (not exported) for null or NaN."""
    if value is None:
        return None
    number = float(value)
    return None if number != number else number


class MetricsCollector(Collector):
    """Reads the state at each scrape; holds nothing itself."""

    def __init__(self, state: MetricsState) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        series = sorted(self._state.series().items())
        yield from self._columns(series)
        yield from self._reliability(series)
        yield self._window_end(series)
        yield from self._self_metrics(self._state.stats())

    def _columns(self, series: list[tuple[SeriesKey, Row]]) -> Iterator[Metric]:
        for column in COLUMNS.values():
            family = GaugeMetricFamily(f"{PREFIX}_{column.name}", column.help)
            for key, row in series:
                value = _sample(row.get(column.name))
                if value is not None:
                    family.add_sample(family.name, _labels(key, row), value)
            yield family

    def _reliability(self, series: list[tuple[SeriesKey, Row]]) -> Iterator[Metric]:
        for field, gauge in _BIN_GAUGES.items():
            name = f"{PREFIX}_reliability_{gauge}"
            family = GaugeMetricFamily(name, RELIABILITY[field].help)
            for key, row in series:
                for entry in row.get("reliability") or ():
                    value = _sample(entry.get(field))
                    if value is not None and entry.get("bin") is not None:
                        family.add_sample(name, {**_labels(key, row), "bin": str(entry["bin"])}, value)
            yield family

    def _window_end(self, series: Iterable[tuple[SeriesKey, Row]]) -> Metric:
        name = f"{PREFIX}_window_end_timestamp_seconds"
        family = GaugeMetricFamily(name, WINDOW_END_HELP)
        for key, row in series:
            family.add_sample(name, _labels(key, row), timestamp(row["window_end"]))
        return family

    def _self_metrics(self, stats: Stats) -> Iterator[Metric]:
        rows = CounterMetricFamily(
            f"{PREFIX}_exporter_rows_consumed",
            "Rows read from the metrics topic, by what became of them",
            labels=["outcome"],
        )
        for outcome in Outcome:
            rows.add_metric([outcome.value], stats.rows.get(outcome, 0))
        yield rows
        dropped = CounterMetricFamily(
            f"{PREFIX}_exporter_series_dropped",
            "Series dropped: stale ones removed, and new ones refused beyond max_series",
            labels=["reason"],
        )
        for reason in ("stale", "cardinality"):
            dropped.add_metric([reason], stats.series_dropped.get(reason, 0))
        yield dropped
        yield GaugeMetricFamily(f"{PREFIX}_exporter_series", "Series exported now", value=stats.series)
        yield GaugeMetricFamily(
            f"{PREFIX}_exporter_max_series", "Most series exported (exporter.max_series)", value=stats.max_series
        )
        if stats.last_row_time is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_exporter_last_row_timestamp_seconds",
                "Unix time the last row was read from the metrics topic",
                value=stats.last_row_time,
            )
        yield CounterMetricFamily(
            f"{PREFIX}_exporter_consumer_errors",
            "Errors reading the metrics topic (broker unreachable, records that are not JSON objects)",
            value=stats.consumer_errors,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_exporter_listener_errors", "Exceptions raised by row listeners", value=stats.listener_errors
        )
        dead = CounterMetricFamily(
            f"{PREFIX}_dead_letters",
            "Input records the job rejected (the dead-letter topic since its start), by source topic and reason",
            labels=["source_topic", "reason"],
        )
        late = CounterMetricFamily(
            f"{PREFIX}_late_records",
            "Records that came too late for a window (dead letters whose reason starts with"
            " 'late:'): predictions after their unlabelled window, joined rows (topic labelled-predictions) behind"
            " the live view's watermark",
            labels=["source_topic"],
        )
        late_by_topic: Counter[str] = Counter()
        for (source_topic, reason), count in sorted(stats.dead_letters.items()):
            dead.add_metric([source_topic, reason], count)
            if reason.startswith(LATE_REASON):
                late_by_topic[source_topic] += count
        yield dead
        for source_topic, count in sorted(late_by_topic.items()):
            late.add_metric([source_topic], count)
        yield late
