"""The exporter without Kafka: its state (revisions, newest window, staleness, cardinality, history), the
text exposition its collector produces, its HTTP routes and listener dispatch. Hand-made metrics rows."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import permutations
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from modelmon.exporter.collector import MetricsCollector
from modelmon.exporter.columns import COLUMNS
from modelmon.exporter.server import Exporter, HttpServer, Router
from modelmon.exporter.state import MetricsState, Outcome, SeriesKey
from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app
from prometheus_client.parser import text_string_to_metric_families

from modelmon.cli import cli
from modelmon.config import Config
from modelmon.render import render_job
from modelmon.topics import latest_metrics

START = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
KINDS = {"BIGINT": "count", "INT": "count", "DOUBLE": "real", "BOOLEAN": "flag"}


def sink_columns() -> dict[str, str]:
    """Column -> SQL type, as the rendered metrics sink declares them (the independent source of truth)."""
    (sink,) = [s for s in render_job(Config()).setup if "CREATE TABLE metrics_sink (" in s]
    pattern = re.compile(r"^\s+`?(\w+)`?\s+([A-Z]+)")
    return {m[1]: m[2] for line in sink.splitlines() if (m := pattern.match(line)) and m[1] != "PRIMARY"}


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def row(
    minute: int = 0,
    *,
    view: str = "live",
    model: str = "v1",
    segment: tuple[str, str] = ("*", "*"),
    revision: int = 0,
    **values: Any,
) -> dict[str, Any]:
    """A metrics row as the topic holds it: every column of the sink null unless given."""
    start = START + timedelta(minutes=minute)
    base: dict[str, Any] = dict.fromkeys(sink_columns())
    base.update(
        view=view,
        window_start=iso(start),
        window_end=iso(start + timedelta(minutes=1)),
        model_version=model,
        segment_key=segment[0],
        segment_value=segment[1],
        revision=revision,
        is_final=view != "cohort",
    )
    base.update(values)
    return base


def state(**kwargs: Any) -> MetricsState:
    options: dict[str, Any] = {"staleness": timedelta(minutes=10), "max_series": 100, **kwargs}
    return MetricsState(**options)


def key(view: str = "live", model: str = "v1", segment: tuple[str, str] = ("*", "*")) -> SeriesKey:
    return SeriesKey(view, model, *segment)


# ---------------------------------------------------------------------------------------------------------
# State


def test_the_column_table_covers_every_numeric_column_of_the_sink() -> None:
    numeric = {name: KINDS[kind] for name, kind in sink_columns().items() if kind in KINDS}
    assert {name: column.kind for name, column in COLUMNS.items()} == numeric


def test_highest_revision_wins_whatever_the_order_of_arrival() -> None:
    rows = [
        row(view="cohort", revision=3, accuracy=0.7),
        row(view="cohort", revision=7, is_final=True, accuracy=0.9),
        row(view="cohort", revision=5, accuracy=0.8),
        row(1, view="cohort", revision=1, accuracy=0.5),
        row(1, view="cohort", revision=2, accuracy=0.6),
    ]
    for order in permutations(rows):
        held = state()
        for item in order:
            held.update(item)
        # The oracle: the rule every reader of the topic follows.
        expected = latest_metrics(iter(order))
        history = held.history(key("cohort"))
        assert [(r["window_start"], r["revision"], r["accuracy"]) for r in history] == [
            (r["window_start"], r["revision"], r["accuracy"]) for r in sorted(expected.values(), key=str)
        ]
        assert held.series()[key("cohort")]["revision"] == 2  # the newest window, 12:01


def test_a_late_provisional_row_never_overrides_the_final_one() -> None:
    held = state()
    assert held.update(row(view="cohort", revision=7, is_final=True, accuracy=0.9)) is Outcome.EXPORTED
    assert held.update(row(view="cohort", revision=5, accuracy=0.8)) is Outcome.SUPERSEDED
    current = held.series()[key("cohort")]
    assert (current["revision"], current["is_final"], current["accuracy"]) == (7, True, 0.9)
    assert held.stats().rows == {Outcome.EXPORTED: 1, Outcome.SUPERSEDED: 1}


def test_each_series_exports_its_newest_window_and_keeps_the_others_as_history() -> None:
    held = state()
    assert held.update(row(3, n_labelled=30)) is Outcome.EXPORTED
    assert held.update(row(5, n_labelled=50)) is Outcome.EXPORTED
    assert held.update(row(4, n_labelled=40)) is Outcome.HISTORY
    held.update(row(4, model="v2", n_labelled=42))
    series = held.series()
    assert series[key()]["n_labelled"] == 50 and series[key()]["window_start"] == iso(START + timedelta(minutes=5))
    assert series[key(model="v2")]["n_labelled"] == 42
    assert [r["n_labelled"] for r in held.history(key())] == [30, 40, 50]
    assert held.history(key(model="v9")) == []


def test_rows_come_back_as_they_went_in() -> None:
    original = row(
        view="comparison",
        model="v2",
        n_labelled=120,
        accuracy=0.875,
        roc_auc=None,
        significant=False,
        compared_to="v1",
        reliability=[{"bin": 0, "n": 100, "mean_score": 0.04, "observed_rate": 0.02}],
    )
    held = state()
    held.update(original)
    assert held.series()[key("comparison", "v2")] == original


def test_history_is_bounded() -> None:
    held = state(history=3)
    for minute in range(5):
        held.update(row(minute, n_labelled=minute))
    assert [r["n_labelled"] for r in held.history(key())] == [2, 3, 4]
    assert held.update(row(0, revision=1)) is Outcome.OLD
    assert held.update(row(3, revision=1, n_labelled=33)) is Outcome.HISTORY
    assert [r["n_labelled"] for r in held.history(key())] == [2, 33, 4]


def test_a_series_far_behind_the_newest_window_of_its_view_is_dropped() -> None:
    held = state(staleness=timedelta(minutes=10))
    held.update(row(0, model="v1"))
    held.update(row(0, model="v2"))
    held.update(row(0, view="unlabelled", model="v1"))
    held.update(row(10, model="v2"))  # v1 ended 10 min before: not more than the staleness yet
    assert key(model="v1") in held.series()
    held.update(row(11, model="v2"))  # now 11 min before
    assert set(held.series()) == {key(model="v2"), key("unlabelled")}  # other views are measured on their own
    assert held.stats().series_dropped == {"stale": 1}
    # A row that would start a series already stale is not taken; a fresh one starts it again.
    assert held.update(row(0, model="v1")) is Outcome.STALE
    assert held.update(row(11, model="v1")) is Outcome.EXPORTED


def test_series_beyond_max_series_are_refused_and_counted_once() -> None:
    held = state(max_series=2, staleness=timedelta(minutes=10))
    held.update(row(0, model="v1"))
    held.update(row(0, model="v2"))
    assert held.update(row(0, model="v3")) is Outcome.CARDINALITY
    assert held.update(row(1, model="v3")) is Outcome.CARDINALITY
    assert held.update(row(1, model="v1")) is Outcome.EXPORTED  # series already held keep updating
    assert set(held.series()) == {key(model="v1"), key(model="v2")}
    stats = held.stats()
    assert (stats.series, stats.series_dropped, stats.rows[Outcome.CARDINALITY]) == (2, {"cardinality": 1}, 2)
    # Once v2 goes stale, there is room again.
    held.update(row(20, model="v1"))
    assert held.update(row(20, model="v3")) is Outcome.EXPORTED
    assert set(held.series()) == {key(model="v1"), key(model="v3")}


@pytest.mark.parametrize(
    "broken",
    [
        {"view": None},
        {"window_start": "yesterday"},
        {"revision": "3"},
        {"accuracy": "high"},
        {"reliability": "none"},
    ],
)
def test_rows_that_are_not_metrics_rows_are_counted_as_invalid(broken: dict[str, Any]) -> None:
    held = state()
    assert held.update({**row(), **broken}) is Outcome.INVALID
    assert held.update({"something": "else"}) is Outcome.INVALID
    assert len(held) == 0 and held.stats().rows == {Outcome.INVALID: 2}


# ---------------------------------------------------------------------------------------------------------
# Collector: the text exposition, parsed back


def scrape(held: MetricsState) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Metric family name -> [(labels, value)] of the text a Prometheus server would read."""
    registry = CollectorRegistry()
    registry.register(MetricsCollector(held))
    text = generate_latest(registry).decode()
    assert "NaN" not in text
    return {
        family.name: [(sample.labels, sample.value) for sample in family.samples]
        for family in text_string_to_metric_families(text)
    }


LABELS = {"view": "live", "model_version": "v1", "segment_key": "country", "segment_value": "DE"}


def test_every_numeric_value_is_a_gauge_with_the_series_labels() -> None:
    held = state()
    values = {"n_labelled": 120, "tp": 7, "accuracy": 0.875, "label_latency_p95_s": 312.5, "psi": 0.02}
    held.update(row(2, segment=("country", "DE"), revision=3, **values))
    families = scrape(held)
    for column, value in values.items():
        assert families[f"modelmon_{column}"] == [(LABELS, value)]
    assert families["modelmon_revision"] == [(LABELS, 3)]
    assert families["modelmon_is_final"] == [(LABELS, 1)]
    end = (START + timedelta(minutes=3)).timestamp()
    assert families["modelmon_window_end_timestamp_seconds"] == [(LABELS, end)]


def test_null_values_are_left_out_never_nan() -> None:
    held = state()
    held.update(row(model="v1", precision=0.5, roc_auc=float("nan")))
    held.update(row(model="v2", precision=None))
    families = scrape(held)
    assert [labels["model_version"] for labels, _ in families["modelmon_precision"]] == ["v1"]
    assert families["modelmon_roc_auc"] == []
    assert len(families["modelmon_revision"]) == 2


def test_comparison_rows_carry_the_champion_and_their_flags() -> None:
    held = state()
    held.update(row(view="comparison", model="v2", compared_to="v1", significant=True, mcnemar_b=4, f1_diff=-0.05))
    held.update(row(model="v2", accuracy=0.9))
    families = scrape(held)
    labels = {"view": "comparison", "model_version": "v2", "segment_key": "*", "segment_value": "*"}
    assert families["modelmon_significant"] == [({**labels, "compared_to": "v1"}, 1)]
    assert families["modelmon_f1_diff"] == [({**labels, "compared_to": "v1"}, -0.05)]
    assert families["modelmon_accuracy"] == [({**labels, "view": "live"}, 0.9)]  # no compared_to


def test_reliability_bins_have_a_bin_label() -> None:
    held = state()
    bins = [
        {"bin": 0, "n": 900, "mean_score": 0.03, "observed_rate": 0.01},
        {"bin": 9, "n": 40, "mean_score": 0.95, "observed_rate": None},
    ]
    held.update(row(segment=("country", "DE"), reliability=bins))
    families = scrape(held)
    assert families["modelmon_reliability_count"] == [({**LABELS, "bin": "0"}, 900), ({**LABELS, "bin": "9"}, 40)]
    assert families["modelmon_reliability_mean_score"] == [
        ({**LABELS, "bin": "0"}, 0.03),
        ({**LABELS, "bin": "9"}, 0.95),
    ]
    assert families["modelmon_reliability_observed_rate"] == [({**LABELS, "bin": "0"}, 0.01)]


def test_help_texts_come_from_the_column_table() -> None:
    held = state()
    held.update(row(accuracy=0.5))
    registry = CollectorRegistry()
    registry.register(MetricsCollector(held))
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    assert families["modelmon_accuracy"].documentation == COLUMNS["accuracy"].help
    assert families["modelmon_accuracy"].type == "gauge"


def test_self_metrics_count_rows_drops_and_errors() -> None:
    clock = iter([1_700_000_000.0, 1_700_000_001.0, 1_700_000_002.0, 1_700_000_003.0])
    held = state(max_series=1, clock=lambda: next(clock))
    held.update(row(model="v1"))
    held.update(row(model="v2"))
    held.update(row(model="v1", revision=-1))
    held.update({"not": "a row"})
    held.record_consumer_error()
    held.record_listener_error()
    families = scrape(held)
    rows = {labels["outcome"]: value for labels, value in families["modelmon_exporter_rows_consumed"]}
    assert rows == {outcome.value: 0 for outcome in Outcome} | {
        "exported": 1,
        "cardinality": 1,
        "superseded": 1,
        "invalid": 1,
    }
    dropped = {labels["reason"]: value for labels, value in families["modelmon_exporter_series_dropped"]}
    assert dropped == {"stale": 0, "cardinality": 1}
    assert families["modelmon_exporter_series"] == [({}, 1)]
    assert families["modelmon_exporter_max_series"] == [({}, 1)]
    assert families["modelmon_exporter_last_row_timestamp_seconds"] == [({}, 1_700_000_003.0)]
    assert families["modelmon_exporter_consumer_errors"] == [({}, 1)]
    assert families["modelmon_exporter_listener_errors"] == [({}, 1)]


# ---------------------------------------------------------------------------------------------------------
# HTTP routes (a real server on a free port) and listeners


@pytest.fixture
def http_server() -> Iterator[tuple[Router, HttpServer]]:
    held = state()
    held.update(row(accuracy=0.75))
    registry = CollectorRegistry()
    registry.register(MetricsCollector(held))
    router = Router()
    router.mount("/metrics", make_wsgi_app(registry))
    server = HttpServer(router, "127.0.0.1", 0)
    server.start()
    try:
        yield router, server
    finally:
        server.stop()


def test_metrics_are_served_and_other_paths_are_not_found(http_server: tuple[Router, HttpServer]) -> None:
    _, server = http_server
    response = requests.get(server.url("/metrics"), timeout=10)
    assert response.status_code == 200
    assert 'modelmon_accuracy{model_version="v1",segment_key="*",segment_value="*",view="live"} 0.75' in response.text
    assert requests.get(server.url("/"), timeout=10).status_code == 404
    assert requests.get(server.url("/metrics/x"), timeout=10).status_code == 404


def test_more_routes_can_be_mounted(http_server: tuple[Router, HttpServer]) -> None:
    router, server = http_server

    def page(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"page {environ['PATH_INFO']}".encode()]

    router.mount("/", page)
    router.mount("/api", page, prefix=True)
    assert requests.get(server.url("/"), timeout=10).text == "page /"
    assert requests.get(server.url("/api/series"), timeout=10).text == "page /api/series"
    assert requests.get(server.url("/elsewhere"), timeout=10).status_code == 404
    assert requests.get(server.url("/metrics"), timeout=10).status_code == 200


def test_a_port_in_use_is_a_clear_error(http_server: tuple[Router, HttpServer]) -> None:
    _, server = http_server
    with pytest.raises(Exception, match=f"cannot listen on 127.0.0.1:{server.port}"):
        HttpServer(Router(), "127.0.0.1", server.port)


def test_a_failing_listener_never_stops_the_others(caplog: pytest.LogCaptureFixture) -> None:
    exporter = Exporter(Config())
    seen: list[dict[str, Any]] = []

    def broken(received: dict[str, Any]) -> None:
        raise RuntimeError("alerting is down")

    exporter.add_listener(broken)
    exporter.add_listener(seen.append)
    exporter.dispatch(json.dumps(row(accuracy=0.5)).encode())
    exporter.dispatch(json.dumps(row(1, accuracy=0.6)).encode())
    exporter.dispatch(b"not json")
    exporter.dispatch(b"[1, 2]")
    exporter.dispatch(None)  # a tombstone
    assert [received["accuracy"] for received in seen] == [0.5, 0.6]
    assert exporter.state.series()[key()]["accuracy"] == 0.6
    stats = exporter.state.stats()
    assert (stats.listener_errors, stats.consumer_errors) == (2, 2)
    assert "alerting is down" in caplog.text


def test_cli_exporter_help() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert "exporter" in result.output
    result = CliRunner().invoke(cli, ["exporter", "--help"])
    assert result.exit_code == 0, result.output
    assert "--host" in result.output and "--port" in result.output and "/metrics" in result.output


def test_dead_letters_are_counted_by_source_topic_and_reason() -> None:
    held = state()
    assert scrape(held)["modelmon_dead_letters"] == []
    for source, reason in [("predictions", "not a JSON object")] * 3 + [("labels", "missing transaction_id")]:
        held.record_dead_letter({"source_topic": source, "reason": reason, "payload": "{"})
    counted = {
        (labels["source_topic"], labels["reason"]): value for labels, value in scrape(held)["modelmon_dead_letters"]
    }
    assert counted == {("predictions", "not a JSON object"): 3, ("labels", "missing transaction_id"): 1}
    assert held.stats().rows == {}  # not rows of the metrics topic
    assert scrape(held)["modelmon_late_records"] == []


def test_late_records_are_counted_by_source_topic() -> None:
    held = state()
    late = "late: label_time not after the watermark (the newest label_time read less windows.out_of_orderness, 5s)"
    for source, reason in [("labels", late)] * 2 + [("labels", "missing transaction_id"), ("predictions", late)]:
        held.record_dead_letter({"source_topic": source, "reason": reason, "payload": "{}"})
    counted = {labels["source_topic"]: value for labels, value in scrape(held)["modelmon_late_records"]}
    assert counted == {"labels": 2, "predictions": 1}
