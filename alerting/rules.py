"""Alert rules over metrics rows: a pure, deterministic state machine per rule and series.

A series is one rule's view of one (model_version, segment): the rows of the metrics topic that share
them, one per window. Each final row is evaluated in window order; a window with too few samples, too
little label coverage or a null metric is skipped. A series fires when `breaches` of its last `of_last`
evaluated windows break the rule and resolves when fewer do; it emits one event per transition, and after
a resolve it stays quiet for `cooldown` of window time. Nothing here reads a clock or does I/O, so the same
rows always give the same events.
"""

from __future__ import annotations

import heapq
import operator
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from modelmon.config import AlertRuleConfig

AlertState = Literal["firing", "resolved"]

COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
ALL = "*"
# The fields that place a row in its series and window; a row without them is counted and skipped.
IDENTITY = ("view", "window_start", "window_end", "model_version", "segment_key", "segment_value")


@dataclass(frozen=True)
class AlertEvent:
    """One transition of one series; `alert_id` is the same for every event of the series (PagerDuty's
    dedup_key, the alerts topic's key), `event_id` differs per transition."""

    alert_id: str
    event_id: str
    rule: str
    state: AlertState
    severity: str
    view: str
    model_version: str
    segment_key: str
    segment_value: str
    metric: str
    value: float
    op: str
    threshold: float
    # The mean of the trailing windows for a relative rule (threshold is then derived from it), else None.
    baseline: float | None
    samples: int
    window_start: str
    window_end: str
    message: str
    # {"rollback_to": VERSION} when the rule asks for a rollback, else None.
    action: dict[str, str] | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def alert_id(rule: str, view: str, model_version: str, segment_key: str, segment_value: str) -> str:
    """Readable and stable: the same rule and series always give the same id (max ~330 characters)."""
    return f"modelmon/{rule}/{view}/{model_version}/{segment_key}={segment_value}"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class SeriesState:
    """What one series remembers: its newest evaluated window, the last `of_last` verdicts and the values
    of its recent unbroken windows (the baseline of a relative rule)."""

    of_last: int
    baseline_windows: int
    last_start: datetime | None = None
    verdicts: deque[bool] = field(init=False)
    normal: deque[float] = field(init=False)
    firing: bool = False
    fired: AlertEvent | None = None  # the event that started the current firing, while firing
    resolved_at: datetime | None = None

    def __post_init__(self) -> None:
        self.verdicts = deque(maxlen=self.of_last)
        self.normal = deque(maxlen=self.baseline_windows)


@dataclass
class RuleStats:
    """Counts for the exporter's own metrics and for tests."""

    rows: int = 0
    invalid: int = 0
    provisional: int = 0
    evaluated: int = 0
    skipped: int = 0
    duplicates: int = 0
    late: int = 0
    suppressed: int = 0
    events: int = 0


@dataclass(frozen=True)
class Window:
    row: Mapping[str, Any]
    start: datetime
    end: datetime


class RuleEngine:
    """Feeds metrics rows through every rule; returns the events each row causes.

    Rows of one view are held back until a row of that view whose window ends `lateness` later has
    arrived, then released in window order, so a backlog read from several partitions is evaluated in
    order. With lateness 0 every row is evaluated on arrival; a row older than the newest window its
    series has evaluated is then dropped (counted in `stats.late`). `flush` releases every held row.
    """

    def __init__(self, rules: Iterable[AlertRuleConfig], *, lateness: timedelta = timedelta(0)) -> None:
        self.rules = tuple(rules)
        self.lateness = lateness
        self.stats = RuleStats()
        self._series: dict[tuple[str, str, str, str, str], SeriesState] = {}
        self._held: dict[str, list[tuple[datetime, tuple[str, str, str], int, Window]]] = {}
        self._frontier: dict[str, datetime] = {}
        self._sequence = 0

    def feed(self, row: Mapping[str, Any]) -> list[AlertEvent]:
        """Take one row of the metrics topic; provisional cohort rows (is_final false) are ignored."""
        self.stats.rows += 1
        if not row.get("is_final"):
            self.stats.provisional += 1
            return []
        window = self._window(row)
        if window is None:
            self.stats.invalid += 1
            return []
        view = str(row["view"])
        self._sequence += 1
        # Released by window, then series: the same rows give the same events in whatever order they came.
        series = (str(row["model_version"]), str(row["segment_key"]), str(row["segment_value"]))
        heapq.heappush(self._held.setdefault(view, []), (window.start, series, self._sequence, window))
        frontier = max(self._frontier.get(view, window.end), window.end)
        self._frontier[view] = frontier
        return self._release(view, frontier - self.lateness)

    @staticmethod
    def _window(row: Mapping[str, Any]) -> Window | None:
        if not all(isinstance(row.get(name), str) for name in IDENTITY):
            return None
        try:
            return Window(row, parse_time(row["window_start"]), parse_time(row["window_end"]))
        except ValueError:
            return None

    def flush(self) -> list[AlertEvent]:
        """Evaluate every held row (at the end of a bounded read)."""
        return [event for view in sorted(self._held) for event in self._release(view, None)]

    @property
    def held(self) -> int:
        return sum(len(rows) for rows in self._held.values())

    def firing(self) -> list[AlertEvent]:
        """Read-only: the event that started each series' current firing, by alert_id (the live page)."""
        fired = (state.fired for state in self._series.values() if state.firing)
        return sorted((event for event in fired if event is not None), key=lambda event: event.alert_id)

    def _release(self, view: str, until: datetime | None) -> list[AlertEvent]:
        held = self._held[view]
        events: list[AlertEvent] = []
        while held and (until is None or held[0][3].end <= until):
            events.extend(self._evaluate(heapq.heappop(held)[3]))
        return events

    def _evaluate(self, window: Window) -> list[AlertEvent]:
        events = []
        for rule in self.rules:
            if self._watches(rule, window.row):
                event = self._step(rule, window)
                if event is not None:
                    events.append(event)
        self.stats.events += len(events)
        return events

    @staticmethod
    def _watches(rule: AlertRuleConfig, row: Mapping[str, Any]) -> bool:
        if row["view"] != rule.view:
            return False
        if not rule.segments and row["segment_key"] != ALL:
            return False
        return rule.models is None or row["model_version"] in rule.models

    def _state(self, rule: AlertRuleConfig, row: Mapping[str, Any]) -> SeriesState:
        key = (rule.name, row["view"], row["model_version"], row["segment_key"], row["segment_value"])
        state = self._series.get(key)
        if state is None:
            state = self._series[key] = SeriesState(rule.of_last, rule.baseline_windows)
        return state

    def _step(self, rule: AlertRuleConfig, window: Window) -> AlertEvent | None:
        state = self._state(rule, window.row)
        if state.last_start is not None and window.start <= state.last_start:
            if window.start == state.last_start:
                self.stats.duplicates += 1
            else:
                self.stats.late += 1
            return None
        state.last_start = window.start
        value = self._countable_value(rule, window.row)
        if value is None:
            self.stats.skipped += 1
            return None
        bound = self._bound(rule, state)
        if bound is None:  # a relative rule still gathering its baseline
            state.normal.append(value)
            self.stats.skipped += 1
            return None
        self.stats.evaluated += 1
        threshold, baseline = bound
        breached = COMPARE[rule.op](value, threshold)
        if not breached:
            state.normal.append(value)
        state.verdicts.append(breached)
        return self._transition(rule, state, window, value, threshold, baseline, breached)

    @staticmethod
    def _countable_value(rule: AlertRuleConfig, row: Mapping[str, Any]) -> float | None:
        """The metric's value, or None when this window does not count for the rule."""
        value = row.get(rule.metric)
        if value is None or (row.get(rule.sample_column) or 0) < rule.min_samples:
            return None
        if rule.min_label_coverage > 0 and (row.get("label_coverage") or 0.0) < rule.min_label_coverage:
            return None
        return float(value)

    @staticmethod
    def _bound(rule: AlertRuleConfig, state: SeriesState) -> tuple[float, float | None] | None:
        """(threshold, baseline) for this window; None while a relative rule has too few normal windows."""
        if rule.threshold is not None:
            return rule.threshold, None
        assert rule.relative_drop is not None
        if len(state.normal) < rule.baseline_windows:
            return None
        baseline = sum(state.normal) / len(state.normal)
        factor = 1 - rule.relative_drop if rule.op in ("<", "<=") else 1 + rule.relative_drop
        return baseline * factor, baseline

    def _transition(
        self,
        rule: AlertRuleConfig,
        state: SeriesState,
        window: Window,
        value: float,
        threshold: float,
        baseline: float | None,
        breached: bool,
    ) -> AlertEvent | None:
        breaching = sum(state.verdicts)
        if not state.firing and breached and breaching >= rule.breaches:
            if state.resolved_at is not None and window.end - state.resolved_at < rule.cooldown:
                self.stats.suppressed += 1
                return None
            state.firing = True
            state.fired = build_event(rule, "firing", window.row, value, threshold, baseline)
            return state.fired
        if state.firing and breaching < rule.breaches:
            state.firing, state.fired = False, None
            state.resolved_at = window.end
            return build_event(rule, "resolved", window.row, value, threshold, baseline)
        return None


def build_event(
    rule: AlertRuleConfig,
    state: AlertState,
    row: Mapping[str, Any],
    value: float,
    threshold: float,
    baseline: float | None,
) -> AlertEvent:
    series = (row["view"], row["model_version"], row["segment_key"], row["segment_value"])
    identity = alert_id(rule.name, *series)
    return AlertEvent(
        alert_id=identity,
        event_id=f"{identity}@{row['window_start']}/{state}",
        rule=rule.name,
        state=state,
        severity=rule.severity,
        view=row["view"],
        model_version=row["model_version"],
        segment_key=row["segment_key"],
        segment_value=row["segment_value"],
        metric=rule.metric,
        value=value,
        op=rule.op,
        threshold=threshold,
        baseline=baseline,
        samples=int(row.get(rule.sample_column) or 0),
        window_start=row["window_start"],
        window_end=row["window_end"],
        message=describe(rule, state, row, value, threshold, baseline),
        action=None if rule.action is None else {"rollback_to": rule.action.rollback_to},
    )


def describe(
    rule: AlertRuleConfig,
    state: AlertState,
    row: Mapping[str, Any],
    value: float,
    threshold: float,
    baseline: float | None,
) -> str:
    """One line a person on call understands without the config at hand."""
    model = "all versions" if row["model_version"] == ALL else f"model {row['model_version']}"
    segment = "" if row["segment_key"] == ALL else f", {row['segment_key']}={row['segment_value']}"
    bound = f"{rule.op} {threshold:.4g}"
    if baseline is not None:
        bound += f" ({rule.relative_drop:.0%} off its baseline {baseline:.4g})"
    verdict = f"{value:.4g} {bound}" if state == "firing" else f"{value:.4g}, no longer {bound} often enough"
    return (
        f"[{rule.severity.upper()}] {rule.name} {state}: {row['view']} {rule.metric} of {model}{segment} "
        f"is {verdict} in window {row['window_start']} to {row['window_end']} "
        f"({rule.sample_column}={int(row.get(rule.sample_column) or 0)})"
    )
