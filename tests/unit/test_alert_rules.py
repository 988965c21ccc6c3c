"""The alert rules' state machine, on hand-made metrics rows: transitions, skips, cooldown, ordering."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from modelmon.alerting.rules import AlertEvent, RuleEngine, alert_id, parse_time

from modelmon.config import AlertRuleConfig

START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
GOOD, BAD = 0.95, 0.80


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def row(index: int, value: float | None, **fields: Any) -> dict[str, Any]:
    """The live row over all segments of window `index` (1-minute windows from START)."""
    start = START + timedelta(minutes=index)
    base: dict[str, Any] = {
        "view": "live",
        "window_start": iso(start),
        "window_end": iso(start + timedelta(minutes=1)),
        "model_version": "v1",
        "segment_key": "*",
        "segment_value": "*",
        "revision": 0,
        "is_final": True,
        "n_predictions": 500,
        "n_labelled": 500,
        "label_coverage": 1.0,
        "accuracy": value,
    }
    return {**base, **fields}


def rule(**fields: Any) -> AlertRuleConfig:
    base: dict[str, Any] = {
        "name": "accuracy-low",
        "metric": "accuracy",
        "op": "<",
        "threshold": 0.9,
        "severity": "critical",
        "cooldown": "0s",
    }
    return AlertRuleConfig.model_validate({**base, **fields})


def run(rules: list[AlertRuleConfig], rows: list[dict[str, Any]], **kwargs: Any) -> list[AlertEvent]:
    engine = RuleEngine(rules, **kwargs)
    events = [event for r in rows for event in engine.feed(r)]
    return events + engine.flush()


def states(events: list[AlertEvent]) -> list[tuple[str, str]]:
    return [(event.state, event.window_start[11:16]) for event in events]


def test_fires_on_the_second_of_three_bad_windows_and_resolves_once_fewer_than_two_are_bad() -> None:
    values = [GOOD, GOOD, BAD, BAD, BAD, GOOD, GOOD, GOOD]
    events = run([rule()], [row(i, v) for i, v in enumerate(values)])
    assert states(events) == [("firing", "09:03"), ("resolved", "09:06")]
    firing, resolved = events
    assert firing.alert_id == resolved.alert_id == alert_id("accuracy-low", "live", "v1", "*", "*")
    assert firing.event_id != resolved.event_id
    assert (firing.value, firing.threshold, firing.baseline, firing.samples) == (BAD, 0.9, None, 500)
    assert firing.severity == "critical" and firing.metric == "accuracy" and firing.op == "<"
    assert firing.window_end == iso(START + timedelta(minutes=4))
    assert "accuracy-low firing" in firing.message and "0.8 < 0.9" in firing.message and "model v1" in firing.message
    assert resolved.value == GOOD


def test_one_bad_window_alone_does_not_fire() -> None:
    assert run([rule()], [row(i, v) for i, v in enumerate([GOOD, BAD, GOOD, GOOD, BAD, GOOD])]) == []


def test_n_of_m_is_configurable() -> None:
    values = [BAD, GOOD, BAD, GOOD, BAD]
    assert states(run([rule(breaches=3, of_last=5)], [row(i, v) for i, v in enumerate(values)])) == [
        ("firing", "09:04")
    ]
    assert states(run([rule(breaches=1, of_last=1)], [row(i, v) for i, v in enumerate(values)])) == [
        ("firing", "09:00"),
        ("resolved", "09:01"),
        ("firing", "09:02"),
        ("resolved", "09:03"),
        ("firing", "09:04"),
    ]


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"n_labelled": 99}, "below min_samples"),
        ({"n_labelled": None}, "no sample count"),
        ({"label_coverage": 0.4}, "below min_label_coverage"),
        ({"accuracy": None}, "metric undefined"),
        ({"is_final": False, "revision": 3}, "provisional cohort revision"),
    ],
)
def test_windows_that_do_not_count_are_skipped(fields: dict[str, Any], why: str) -> None:
    bad_but_skipped = [row(i, BAD, **fields) for i in range(5)]
    assert run([rule(min_samples=100, min_label_coverage=0.5)], bad_but_skipped) == [], why


def test_skipped_windows_do_not_break_a_run_of_bad_windows() -> None:
    rows = [row(0, BAD), row(1, BAD, n_labelled=3), row(2, BAD)]
    assert states(run([rule(min_samples=100)], rows)) == [("firing", "09:02")]


def test_the_unlabelled_view_counts_predictions() -> None:
    throughput = rule(name="tp", metric="throughput_per_s", view="unlabelled", threshold=500, min_samples=100)
    rows = [row(i, None, view="unlabelled", n_labelled=None, n_predictions=150, throughput_per_s=2.5) for i in range(2)]
    assert states(run([throughput], rows)) == [("firing", "09:01")]
    few = [row(i, None, view="unlabelled", n_labelled=None, n_predictions=50, throughput_per_s=0.8) for i in range(3)]
    assert run([throughput], few) == []


def test_greater_than_rules() -> None:
    latency = rule(name="latency", metric="label_latency_p95_s", op=">", threshold=1800, severity="warning")
    rows = [row(i, GOOD, label_latency_p95_s=v) for i, v in enumerate([100, 2000, 1800, 2500, 100, 100])]
    # 1800 is not above 1800: the bad windows are 09:01 and 09:03, two of the three up to 09:03.
    assert states(run([latency], rows)) == [("firing", "09:03"), ("resolved", "09:04")]


def test_cooldown_suppresses_a_refire_soon_after_a_resolve() -> None:
    values = [BAD, BAD, GOOD, GOOD, BAD, BAD, BAD, BAD, BAD, BAD, BAD]
    rows = [row(i, v) for i, v in enumerate(values)]
    assert states(run([rule(cooldown="0s")], rows)) == [("firing", "09:01"), ("resolved", "09:03"), ("firing", "09:05")]
    # Resolved at 09:04 (window end); a fire is allowed once a breaching window ends 5 min after that.
    assert states(run([rule(cooldown="5min")], rows)) == [
        ("firing", "09:01"),
        ("resolved", "09:03"),
        ("firing", "09:08"),
    ]


def test_relative_drop_compares_with_the_mean_of_the_last_normal_windows() -> None:
    relative = rule(threshold=None, relative_drop=0.1, baseline_windows=3)
    values = [0.80, 0.90, 1.00, 0.85, 0.70, 0.70, 0.70, 0.90, 0.90]
    events = run([relative], [row(i, v) for i, v in enumerate(values)])
    # Baseline 0.9 (0.8, 0.9, 1.0): bound 0.81. 0.85 is normal (baseline becomes 0.9167, bound 0.825);
    # 0.70 twice fires; the breaching windows stay out of the baseline, so two windows of 0.9 resolve.
    assert states(events) == [("firing", "09:05"), ("resolved", "09:08")]
    assert events[0].baseline == pytest.approx((0.9 + 1.0 + 0.85) / 3)
    assert events[0].threshold == pytest.approx(events[0].baseline * 0.9)
    assert "off its baseline" in events[0].message


def test_relative_rise() -> None:
    latency = rule(name="latency", metric="label_latency_p95_s", op=">", threshold=None, relative_drop=0.5)
    latency = latency.model_copy(update={"baseline_windows": 2})
    # Baseline 100 after two windows: above 150 breaks the rule.
    rows = [row(i, GOOD, label_latency_p95_s=v) for i, v in enumerate([100, 100, 160, 200, 100])]
    events = run([latency], rows)
    assert states(events) == [("firing", "09:03")]
    assert (events[0].baseline, events[0].threshold) == (100, 150)


def test_series_are_separate_per_model_and_segment() -> None:
    rows = []
    for i in range(3):
        rows.append(row(i, BAD, model_version="v2"))
        rows.append(row(i, GOOD, model_version="v1"))
        rows.append(row(i, BAD, model_version="*"))
        rows.append(row(i, BAD, segment_key="country", segment_value="US"))
    fired = {(e.model_version, e.segment_key) for e in run([rule()], rows)}
    assert fired == {("v2", "*"), ("*", "*")}
    with_segments = {(e.model_version, e.segment_value) for e in run([rule(segments=True)], rows)}
    assert with_segments == {("v2", "*"), ("*", "*"), ("v1", "US")}
    only_v2 = {e.model_version for e in run([rule(models=["v2"])], rows)}
    assert only_v2 == {"v2"}


def test_a_rule_sees_only_its_view() -> None:
    rows = [row(i, BAD, view="cohort") for i in range(3)]
    assert run([rule()], rows) == []
    assert len(run([rule(view="cohort")], rows)) == 1


def test_duplicates_and_late_rows_are_ignored_without_lateness() -> None:
    engine = RuleEngine([rule()])
    assert engine.feed(row(0, BAD)) == []
    assert engine.feed(row(0, BAD)) == []  # the same window again (an upsert replayed)
    assert engine.feed(row(2, GOOD)) == []
    assert engine.feed(row(1, BAD)) == []  # older than the newest evaluated window
    assert (engine.stats.duplicates, engine.stats.late, engine.stats.evaluated) == (1, 1, 2)


def test_rows_without_a_series_or_window_are_counted_and_skipped() -> None:
    engine = RuleEngine([rule()])
    broken = [{"is_final": True}, row(0, BAD, window_start="yesterday"), row(1, BAD, model_version=None)]
    assert [engine.feed(r) for r in broken] == [[], [], []]
    assert engine.stats.invalid == 3
    assert engine.feed(row(2, BAD)) == [] and len(engine.feed(row(3, BAD))) == 1


def test_lateness_reorders_rows_of_a_view() -> None:
    values = [GOOD, BAD, BAD, GOOD, GOOD, GOOD]
    rows = [row(i, v) for i, v in enumerate(values)]
    shuffled = [rows[i] for i in (1, 0, 3, 2, 5, 4)]
    assert states(run([rule()], shuffled)) == []  # without lateness the late rows are lost
    engine = RuleEngine([rule()], lateness=timedelta(minutes=1))
    events = [event for r in shuffled for event in engine.feed(r)]
    # Each row is evaluated once a row of the view ending a minute later has come: in window order.
    assert states(events) == [("firing", "09:02"), ("resolved", "09:04")]
    assert engine.held == 1
    assert engine.flush() == []
    assert engine.stats.late == 0


def test_action_is_carried_on_every_event() -> None:
    with_action = rule(models=["v2"], action={"rollback_to": "v1"})
    events = run([with_action], [row(i, v, model_version="v2") for i, v in enumerate([BAD, BAD, GOOD, GOOD])])
    assert [e.action for e in events] == [{"rollback_to": "v1"}] * 2


# -- properties -------------------------------------------------------------------------------------------

samples_strategy = st.integers(0, 300)


@st.composite
def series_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Rows of a few series, with gaps, nulls, small samples and duplicates, in window order per view."""
    rows = []
    for index in range(draw(st.integers(1, 30))):
        for model in draw(st.lists(st.sampled_from(["v1", "v2", "*"]), unique=True, max_size=3)):
            value = draw(st.one_of(st.none(), st.floats(0, 1)))
            rows.append(row(index, value, model_version=model, n_labelled=draw(samples_strategy)))
            if draw(st.booleans()) and draw(st.booleans()):
                rows.append(rows[-1])
    return rows


rules_strategy = st.builds(
    lambda breaches, extra, cooldown, relative: rule(
        breaches=breaches,
        of_last=breaches + extra,
        cooldown=f"{cooldown}min",
        min_samples=100,
        **({"threshold": None, "relative_drop": 0.1, "baseline_windows": 2} if relative else {}),
    ),
    st.integers(1, 4),
    st.integers(0, 3),
    st.integers(0, 5),
    st.booleans(),
)


def by_window(event: AlertEvent) -> tuple[str, str]:
    return event.window_start, event.alert_id


def by_alert(events: list[AlertEvent]) -> dict[str, list[AlertEvent]]:
    grouped: dict[str, list[AlertEvent]] = defaultdict(list)
    for event in events:
        grouped[event.alert_id].append(event)
    return grouped


@settings(max_examples=100, deadline=None)
@given(rules_strategy, series_rows())
def test_property_firing_and_resolved_alternate_starting_with_firing(
    alert_rule: AlertRuleConfig, rows: list[dict[str, Any]]
) -> None:
    for events in by_alert(run([alert_rule], rows)).values():
        assert [e.state for e in events] == ["firing", "resolved"] * (len(events) // 2) + ["firing"] * (len(events) % 2)
        starts = [e.window_start for e in events]
        assert starts == sorted(starts) and len(set(starts)) == len(starts)


@settings(max_examples=100, deadline=None)
@given(rules_strategy, series_rows())
def test_property_every_event_is_about_a_window_that_counts(
    alert_rule: AlertRuleConfig, rows: list[dict[str, Any]]
) -> None:
    for event in run([alert_rule], rows):
        assert event.samples >= alert_rule.min_samples
        breaches = event.value < event.threshold
        assert breaches == (event.state == "firing")


@settings(max_examples=100, deadline=None)
@given(rules_strategy, series_rows())
def test_property_no_events_below_min_samples(alert_rule: AlertRuleConfig, rows: list[dict[str, Any]]) -> None:
    small = [{**r, "n_labelled": min(r["n_labelled"], 99)} for r in rows]
    assert run([alert_rule], small) == []


@settings(max_examples=100, deadline=None)
@given(rules_strategy, series_rows())
def test_property_refires_respect_the_cooldown(alert_rule: AlertRuleConfig, rows: list[dict[str, Any]]) -> None:
    for events in by_alert(run([alert_rule], rows)).values():
        for resolved, refired in zip(events[1::2], events[2::2], strict=False):
            gap = parse_time(refired.window_end) - parse_time(resolved.window_end)
            assert gap >= alert_rule.cooldown


@settings(max_examples=100, deadline=None)
@given(rules_strategy, series_rows(), st.randoms(use_true_random=False))
def test_property_with_enough_lateness_arrival_order_does_not_matter(
    alert_rule: AlertRuleConfig, rows: list[dict[str, Any]], shuffler: random.Random
) -> None:
    in_order = run([alert_rule], rows, lateness=timedelta(hours=1))
    shuffled = list(rows)
    shuffler.shuffle(shuffled)
    assert run([alert_rule], shuffled, lateness=timedelta(hours=1)) == in_order
    # Rows in window order need no lateness (only events of one window may come in another series order).
    assert sorted(run([alert_rule], rows), key=by_window) == sorted(in_order, key=by_window)


@settings(max_examples=50, deadline=None)
@given(rules_strategy, series_rows())
def test_property_deterministic(alert_rule: AlertRuleConfig, rows: list[dict[str, Any]]) -> None:
    assert run([alert_rule], rows) == run([alert_rule], rows)
