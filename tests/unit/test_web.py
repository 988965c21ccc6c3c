"""The live page without Kafka or a browser: /api/overview built from hand-made metrics rows (nulls stay
null and read 'waiting for labels', rounding, trends, segments, comparison, status from firing alerts), the
alert engine's read-only firing accessor, and the page's routes over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.resources import files
from typing import Any

import pytest
import requests
from modelmon.alerting.engine import AlertEngine
from modelmon.alerting.rules import AlertEvent, RuleEngine, build_event
from modelmon.exporter.server import HttpServer, Router
from modelmon.exporter.state import MetricsState
from modelmon.exporter.web import text
from modelmon.exporter.web.app import LivePage
from modelmon.exporter.web.overview import overview

from modelmon.config import AlertRuleConfig, Config
from tests.unit.test_exporter import row, state

NOW = 1_800_000_000.0
ACCURACY_RULE = AlertRuleConfig(name="accuracy-low", metric="accuracy", op="<", threshold=0.9, severity="critical")
LATENCY_RULE = AlertRuleConfig(
    name="label-latency-high", metric="label_latency_p95_s", op=">", threshold=1800, severity="warning"
)


def labelled(minute: int, model: str = "v1", **values: Any) -> dict[str, Any]:
    """A live row with every headline value known."""
    base: dict[str, Any] = {
        "n_predictions": 1024,
        "n_labelled": 1024,
        "label_coverage": 1.0,
        "accuracy": 0.85342,
        "accuracy_ci_low": 0.83101,
        "accuracy_ci_high": 0.87249,
        "precision": 0.4,
        "precision_ci_low": 0.3,
        "precision_ci_high": 0.5,
        "recall": 0.7,
        "recall_ci_low": 0.6,
        "recall_ci_high": 0.8,
        "f1": 0.50909,
        "roc_auc": 0.9123,
        "roc_auc_error_bound": 0.0041,
        "ece": 0.0312,
        "label_latency_p50_s": 41.6,
        "label_latency_p95_s": 187.0,
        "reliability": [
            {"bin": 0, "n": 900, "mean_score": 0.05, "observed_rate": 0.04},
            {"bin": 9, "n": 124, "mean_score": 0.93, "observed_rate": 0.81},
        ],
    }
    return row(minute, model=model, **{**base, **values})


def build(rows: list[dict[str, Any]], alerts: list[AlertEvent] | None = None) -> dict[str, Any]:
    held = state()
    for item in rows:
        held.update(item)
    source = None if alerts is None else (lambda: alerts)
    data = overview(held, topic="metrics", alerts=source, refresh_s=5, now=NOW)
    json.dumps(data, allow_nan=False)  # what the API sends: plain JSON, never NaN
    return data


def by_version(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {card["model_version"]: card for card in data["models"]}


# ---------------------------------------------------------------------------------------------------------
# /api/overview


def test_an_empty_state_has_no_models_and_says_whether_alerts_are_evaluated() -> None:
    data = build([])
    assert (data["models"], data["comparison"]) == ([], [])
    assert data["source"] == {
        "topic": "metrics",
        "rows_read": 0,
        "series": 0,
        "last_row_age_s": None,
        "text": "0 rows read from topic metrics, 0 series; no row yet",
    }
    assert data["alerts"]["evaluated"] is False and "not evaluated" in data["alerts"]["text"]
    assert build([], alerts=[])["alerts"] == {"evaluated": True, "text": "no alerts firing", "firing": []}


def test_a_version_without_labels_is_waiting_and_every_value_is_null_not_zero() -> None:
    data = build([row(0, view="unlabelled", model="v3", n_predictions=3000, n_labelled=0, label_coverage=0.0)])
    card = by_version(data)["v3"]
    assert card["status"]["level"] == "waiting" and card["status"]["headline"] == "waiting for labels"
    assert card["window"] is None and card["calibration"] is None
    assert card["segments"] == {"window": None, "rows": []}
    for name, shown in card["metrics"].items():
        assert shown["value"] is None and shown["text"] == text.WAITING, name
    assert card["metrics"]["accuracy"]["low"] is None and "interval" not in card["metrics"]["accuracy"]
    assert card["label_coverage"] == {"value": None, "text": text.WAITING}
    assert set(card["trend"]) >= {"t", "accuracy", "accuracy_ci_low", "roc_auc_high", "label_latency_p95_s"}
    assert all(values == [] for values in card["trend"].values())
    # Drift without a reference file is unknown, not waiting: labels do not bring it.
    assert card["drift"]["psi"] == {"value": None, "text": text.UNDEFINED}
    assert card["drift_trend"] == {
        "t": [row(0)["window_start"]],
        "psi": [None],
        "ks_pvalue": [None],
        "n_predictions": [3000],
    }


def test_the_newest_live_window_rounded_as_shown() -> None:
    data = build([labelled(0, accuracy=0.5), labelled(1)])
    card = by_version(data)["v1"]
    shown = card["metrics"]
    assert shown["accuracy"] == {
        "value": 0.85342,
        "text": "0.853",
        "low": 0.83101,
        "high": 0.87249,
        "interval": "[0.831, 0.872]",
    }
    assert shown["roc_auc"] == {"value": 0.9123, "text": "0.912", "error_bound": 0.0041, "interval": "± 0.004"}
    assert (shown["f1"]["text"], shown["n_labelled"]["text"]) == ("0.509", "1,024")
    assert (shown["label_latency_p50_s"]["text"], shown["label_latency_p95_s"]["text"]) == ("42 s", "3.1 min")
    assert card["window"]["text"] == "2026-05-04 12:01 to 12:02 UTC"
    assert card["calibration"]["bins"][1] == {"bin": 9, "n": 124, "mean_score": 0.93, "observed_rate": 0.81}
    assert card["calibration"]["ece"]["text"] == "0.031" and card["calibration"]["n_labelled"]["text"] == "1,024"
    assert card["few_labels"] is False
    assert by_version(build([labelled(0, n_labelled=99)]))["v1"]["few_labels"] is True


def test_trends_are_columns_oldest_first_with_gaps_as_null() -> None:
    rows = [labelled(2, accuracy=0.9), labelled(0, accuracy=0.8), labelled(1, precision=None, roc_auc=None)]
    trend = by_version(build(rows))["v1"]["trend"]
    assert trend["t"] == [row(minute)["window_start"] for minute in range(3)]
    assert trend["accuracy"] == [0.8, 0.85342, 0.9]
    assert trend["precision"] == [0.4, None, 0.4]
    assert trend["roc_auc_low"] == [pytest.approx(0.9082), None, pytest.approx(0.9082)]
    assert trend["roc_auc_high"] == [pytest.approx(0.9164), None, pytest.approx(0.9164)]
    assert {len(values) for values in trend.values()} == {3}


def test_an_undefined_value_in_a_labelled_window_is_null_and_not_applicable() -> None:
    card = by_version(build([labelled(0, precision=None, precision_ci_low=None, precision_ci_high=None)]))["v1"]
    assert card["metrics"]["precision"] == {"value": None, "text": text.UNDEFINED, "low": None, "high": None}
    assert card["status"]["level"] == "unknown"  # labelled, but no alert engine to judge it


def test_segments_of_the_newest_window_in_order_with_a_flag_below_overall() -> None:
    rows = [
        labelled(0),
        labelled(1),
        labelled(1, segment=("country", "other"), n_labelled=200, accuracy=0.8, accuracy_ci_high=0.84),
        labelled(1, segment=("country", "US"), n_labelled=500, accuracy=0.9, accuracy_ci_high=0.93),
        labelled(1, segment=("country", "GB"), n_labelled=324, accuracy=0.86, accuracy_ci_high=0.89),
        # A segment with labels only in the older window is left out of the newest window's table.
        labelled(0, segment=("merchant_category", "travel"), n_labelled=3),
        labelled(1, model="v2"),
    ]
    segments = by_version(build(rows))["v1"]["segments"]
    assert segments["window"]["start"] == row(1)["window_start"]
    assert [(r["segment_key"], r["segment_value"], r["n_labelled"]["text"], r["below"]) for r in segments["rows"]] == [
        ("country", "GB", "324", False),
        ("country", "US", "500", False),
        ("country", "other", "200", True),
    ]
    assert segments["rows"][0]["accuracy"] == {"value": 0.86, "text": "0.860"}


def test_label_coverage_comes_from_the_youngest_cohort() -> None:
    rows = [
        row(0, view="cohort", revision=9, is_final=True, n_predictions=1000, n_labelled=850, label_coverage=0.85),
        row(1, view="cohort", revision=2, n_predictions=1000, n_labelled=123, label_coverage=0.123),
    ]
    card = by_version(build(rows))["v1"]
    assert card["label_coverage"] == {"value": 0.123, "text": "12.3%", "note": "of predictions made 12:01 UTC, so far"}
    assert card["coverage_trend"]["label_coverage"] == [0.85, 0.123]
    assert card["status"]["level"] == "waiting"  # cohort rows alone: no live window yet


MORE = "v2 is more accurate than v1 (McNemar p < 0.001)"
LESS = "v2 is less accurate than v1 (McNemar p = 0.010)"
SAME = "no significant difference (McNemar p = 0.410)"
NO_PAIRS = "no transaction yet that only one of them got right"


@pytest.mark.parametrize(
    ("values", "significant", "verdict"),
    [
        ({"mcnemar_pvalue": 0.0004, "significant": True, "accuracy_diff": 0.021}, True, MORE),
        ({"mcnemar_pvalue": 0.01, "significant": True, "accuracy_diff": -0.02}, True, LESS),
        ({"mcnemar_pvalue": 0.41, "significant": False, "accuracy_diff": 0.004}, False, SAME),
        ({"mcnemar_pvalue": None, "significant": False, "accuracy_diff": 0.0}, False, NO_PAIRS),
    ],
)
def test_champion_vs_challenger_newest_rows(values: dict[str, Any], significant: bool, verdict: str) -> None:
    rows = [
        row(0, view="comparison", model="v2", compared_to="v1", n_labelled=900, accuracy_diff=0.5),
        row(1, view="comparison", model="v2", compared_to="v1", n_labelled=1000, mcnemar_b=3, mcnemar_c=24, **values),
        row(1, view="comparison", model="v2", segment=("country", "US"), compared_to="v1", n_labelled=400),
    ]
    (compared,) = build(rows)["comparison"]
    assert (compared["challenger"], compared["champion"], compared["significant"]) == ("v2", "v1", significant)
    assert compared["verdict"] == verdict
    assert compared["n_labelled"]["text"] == "1,000" and compared["mcnemar_c"]["text"] == "24"
    assert compared["accuracy_diff"]["text"] == text.signed(values["accuracy_diff"])
    assert compared["f1_diff"] == {"value": None, "text": text.UNDEFINED}


def fired(rule: AlertRuleConfig, model: str, value: float) -> AlertEvent:
    return build_event(rule, "firing", labelled(1, model=model), value, rule.threshold or 0, None)


def test_status_is_the_most_severe_firing_alert_else_healthy() -> None:
    alerts = [fired(LATENCY_RULE, "v1", 2400.0), fired(ACCURACY_RULE, "v2", 0.85342)]
    data = build([labelled(1), labelled(1, model="v2"), labelled(1, model="v3")], alerts=alerts)
    cards = by_version(data)
    assert cards["v1"]["status"] == {
        "level": "warning",
        "headline": "needs attention",
        "detail": "label_latency_p95_s 40.0 min > 30.0 min at 12:01 UTC",
    }
    assert cards["v2"]["status"] == {
        "level": "critical",
        "headline": "degraded",
        "detail": "accuracy 0.853 < 0.900 at 12:01 UTC",
    }
    assert cards["v3"]["status"]["level"] == "healthy"
    assert cards["v3"]["status"]["detail"] == "no alert rule firing"
    assert data["alerts"]["text"] == "2 alerts firing"
    assert data["alerts"]["firing"][1]["where"] == "v2, live view, all segments, since 12:01 UTC"
    assert [a["rule"] for a in cards["v2"]["alerts"]] == ["accuracy-low"]


def test_text_formats() -> None:
    assert [text.seconds(v) for v in (4.4, 89, 90, 5399, 5400)] == ["4 s", "89 s", "1.5 min", "90.0 min", "1.5 h"]
    assert [text.pvalue(v) for v in (0.0, 0.00099, 0.001, 0.5)] == ["< 0.001", "< 0.001", "0.001", "0.500"]
    assert [text.number(v) for v in (1800.0, 0.9, 12.345, 1234.5)] == ["1,800", "0.9", "12.3", "1,234"]
    assert text.cell("accuracy", 0.0, waiting=False) == {"value": 0.0, "text": "0.000"}  # a real 0 stays 0
    assert text.cell("accuracy_diff", -0.0123, waiting=False)["text"] == "-0.012"


# ---------------------------------------------------------------------------------------------------------
# The alert engine's firing state


def rule_row(minute: int, accuracy: float) -> dict[str, Any]:
    return labelled(minute, accuracy=accuracy, is_final=True)


def test_rule_engine_lists_the_series_firing_now() -> None:
    rules = RuleEngine([ACCURACY_RULE])
    for minute, accuracy in enumerate([0.95, 0.5, 0.5]):
        rules.feed(rule_row(minute, accuracy))
    (event,) = rules.firing()
    assert (event.state, event.rule, event.window_start) == ("firing", "accuracy-low", row(2)["window_start"])
    for minute in (3, 4):
        rules.feed(rule_row(minute, 0.95))
    assert rules.firing() == []


class NoProducer:
    def send(self, topic: str, *, value: bytes, key: bytes) -> None:
        return None

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self, timeout: float | None = None) -> None:
        return None


def test_alert_engine_firing_is_read_only() -> None:
    engine = AlertEngine(Config(), channels=[], producer=NoProducer())
    for minute, accuracy in enumerate([0.5, 0.5]):
        engine(rule_row(minute, accuracy))
    first, second = engine.firing(), engine.firing()
    assert [event.rule for event in first] == ["accuracy-low"] and first == second
    engine.close()


# ---------------------------------------------------------------------------------------------------------
# Routes


@pytest.fixture
def page_server() -> Iterator[tuple[MetricsState, str]]:
    held = state()
    router = Router()
    LivePage(held, topic="metrics", alerts=list).mount(router)
    server = HttpServer(router, "127.0.0.1", 0)
    server.start()
    try:
        yield held, server.url("")
    finally:
        server.stop()


def test_the_page_its_files_and_its_api_are_served(page_server: tuple[MetricsState, str]) -> None:
    held, base = page_server
    page = requests.get(f"{base}/", timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for name, kind in (("live.js", "text/javascript"), ("live.css", "text/css")):
        served = requests.get(f"{base}/static/{name}", timeout=5)
        assert served.status_code == 200 and served.headers["Content-Type"].startswith(kind)
        assert f"/static/{name}" in page.text
    assert requests.get(f"{base}/static/../app.py", timeout=5).status_code == 404
    assert requests.get(f"{base}/static/nothing.js", timeout=5).status_code == 404
    assert requests.post(f"{base}/api/overview", timeout=5).status_code == 405

    held.update(labelled(0))
    api = requests.get(f"{base}/api/overview", timeout=5)
    assert api.headers["Content-Type"] == "application/json"
    assert api.json()["models"][0]["metrics"]["accuracy"]["text"] == "0.853"
    assert api.json()["alerts"] == {"evaluated": True, "text": "no alerts firing", "firing": []}


def test_the_page_loads_nothing_from_elsewhere() -> None:
    static = files("modelmon.exporter.web").joinpath("static")
    for entry in static.iterdir():
        content = entry.read_text()
        assert "http://" not in content and "https://" not in content and "//cdn" not in content, entry.name
