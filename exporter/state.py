"""What the exporter knows: per series the row of its newest window, and a short history of windows.

A *series* is one line on a dashboard: (view, model_version, segment_key, segment_value). Its rows on the
metrics topic are keyed by window as well, and a cohort window is rewritten with growing `revision`. The
rules, in the order `MetricsState.update` applies them:

* per window the row with the highest revision wins, whatever the order of arrival (provisional and final
  cohort rows come from different operators; `modelmon.topics.latest_metrics` is the same rule);
* a series exports its newest window (highest window_start), and keeps the last HISTORY_WINDOWS windows for
  trends;
* a series whose newest window ended more than `staleness` before the newest window end seen in its view is
  dropped (a model version or segment that stopped getting traffic);
* at most `max_series` series are held; a new series beyond that is refused and counted.

Windows are stored compactly (an array of the numeric columns) because at the cap that is max_series x
HISTORY_WINDOWS windows; `series()` and `history()` give them back as rows of the topic.
"""

from __future__ import annotations

import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from math import inf, isnan, nan
from typing import Any, Final, NamedTuple

from modelmon.exporter.columns import COLUMNS, RELIABILITY, Column

from modelmon.config import Config

Row = dict[str, Any]

HISTORY_WINDOWS: Final = 60
_NUMERIC: Final = tuple(COLUMNS.values())
_BIN_FIELDS: Final = tuple(RELIABILITY.values())


class SeriesKey(NamedTuple):
    view: str
    model_version: str
    segment_key: str
    segment_value: str

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> SeriesKey:
        parts = (row["view"], row["model_version"], row["segment_key"], row["segment_value"])
        if not all(isinstance(part, str) for part in parts):
            raise TypeError(f"series fields must be strings, got {parts}")
        return cls(*parts)


class Outcome(StrEnum):
    """What became of one row; counted per outcome in the exporter's self-metrics."""

    EXPORTED = "exported"  # now the row of its series' newest window
    HISTORY = "history"  # a row of an older window, kept in the series' history
    SUPERSEDED = "superseded"  # its window already holds a higher revision
    OLD = "old"  # older than every window the series' history keeps
    STALE = "stale"  # would start a series that is already stale
    CARDINALITY = "cardinality"  # would start a series beyond max_series
    INVALID = "invalid"  # not a metrics row (missing key fields, times or numbers that do not parse)


def timestamp(value: Any) -> float:
    """Unix time of an ISO-8601 time of the topic; a time without zone is UTC, as everywhere in modelmon."""
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO-8601 time, got {value!r}")
    moment = datetime.fromisoformat(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _number(value: Any) -> float:
    """A column value as stored: NaN for null (never exported), 0/1 for booleans."""
    if value is None:
        return nan
    if not isinstance(value, int | float):  # bool is an int
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _value(number: float, column: Column) -> Any:
    if isnan(number):
        return None
    if column.kind == "flag":
        return bool(number)
    return int(number) if column.kind == "count" else number


@dataclass(slots=True)
class _Window:
    """One window's row, compact: numeric columns in COLUMNS order, reliability bins flattened."""

    start: str
    end: str
    start_ts: float
    end_ts: float
    revision: int
    values: array[float]
    compared_to: str | None
    reliability: array[float] | None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> _Window:
        revision = row["revision"]
        if not isinstance(revision, int) or isinstance(revision, bool):
            raise TypeError(f"revision must be an integer, got {revision!r}")
        compared_to = row.get("compared_to")
        if compared_to is not None and not isinstance(compared_to, str):
            raise TypeError(f"compared_to must be a string, got {compared_to!r}")
        return cls(
            start=row["window_start"],
            end=row["window_end"],
            start_ts=timestamp(row["window_start"]),
            end_ts=timestamp(row["window_end"]),
            revision=revision,
            values=array("d", (_number(row.get(column.name)) for column in _NUMERIC)),
            compared_to=compared_to,
            reliability=_bins(row.get("reliability")),
        )

    def row(self, key: SeriesKey) -> Row:
        row: Row = {
            "view": key.view,
            "window_start": self.start,
            "window_end": self.end,
            "model_version": key.model_version,
            "segment_key": key.segment_key,
            "segment_value": key.segment_value,
        }
        row.update((column.name, _value(number, column)) for column, number in zip(_NUMERIC, self.values, strict=True))
        row["compared_to"] = self.compared_to
        row["reliability"] = None if self.reliability is None else list(_unbins(self.reliability))
        return row


def _bins(value: Any) -> array[float] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise TypeError(f"reliability must be a list of bins, got {value!r}")
    return array("d", (_number(entry.get(field.name)) for entry in value for field in _BIN_FIELDS))


def _unbins(flat: array[float]) -> Iterator[Row]:
    width = len(_BIN_FIELDS)
    for offset in range(0, len(flat), width):
        numbers = flat[offset : offset + width]
        yield {field.name: _value(number, field) for field, number in zip(_BIN_FIELDS, numbers, strict=True)}


@dataclass(slots=True)
class _Series:
    windows: dict[float, _Window] = field(default_factory=dict)  # by start time

    def newest(self) -> _Window:
        return self.windows[max(self.windows)]

    def put(self, window: _Window, limit: int) -> Outcome:
        held = self.windows.get(window.start_ts)
        if held is not None and window.revision < held.revision:
            return Outcome.SUPERSEDED
        if held is None and len(self.windows) >= limit and window.start_ts < min(self.windows):
            return Outcome.OLD
        self.windows[window.start_ts] = window
        if len(self.windows) > limit:
            del self.windows[min(self.windows)]
        return Outcome.EXPORTED if window.start_ts == max(self.windows) else Outcome.HISTORY


@dataclass(frozen=True)
class Stats:
    """The exporter's view of itself, for its self-metrics."""

    rows: Mapping[Outcome, int]  # rows consumed, per outcome
    series: int
    max_series: int
    series_dropped: Mapping[str, int]  # 'stale': removed; 'cardinality': distinct new series refused
    last_row_time: float | None  # Unix time the last row was consumed
    consumer_errors: int
    listener_errors: int
    dead_letters: Mapping[tuple[str, str], int]  # records of the dead-letter topic, by (source_topic, reason)


class MetricsState:
    """Thread-safe: the consumer thread updates it while HTTP threads read it."""

    def __init__(
        self,
        *,
        staleness: timedelta,
        max_series: int,
        history: int = HISTORY_WINDOWS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._staleness_s = staleness.total_seconds()
        self._max_series = max_series
        self._history = history
        self._clock = clock
        self._lock = threading.Lock()
        self._series: dict[str, dict[SeriesKey, _Series]] = {}  # by view
        self._newest_end: dict[str, float] = {}  # per view
        self._refused: set[SeriesKey] = set()  # series refused for cardinality, counted once each
        self._rows: Counter[Outcome] = Counter()
        self._series_dropped: Counter[str] = Counter()
        self._last_row_time: float | None = None
        self._consumer_errors = 0
        self._listener_errors = 0
        # Reasons are the job's own fixed texts (sql/views/*_checked, inserts/dead_letter), so this stays small.
        self._dead_letters: Counter[tuple[str, str]] = Counter()

    @classmethod
    def for_config(cls, cfg: Config) -> MetricsState:
        return cls(staleness=cfg.exporter.staleness, max_series=cfg.exporter.max_series)

    def update(self, row: Mapping[str, Any]) -> Outcome:
        """Take one row of the metrics topic (its JSON value), whatever its order of arrival."""
        with self._lock:
            self._last_row_time = self._clock()
            try:
                key, window = SeriesKey.of(row), _Window.of(row)
            except (KeyError, TypeError, ValueError):
                outcome = Outcome.INVALID
            else:
                outcome = self._put(key, window)
            self._rows[outcome] += 1
            return outcome

    def series(self) -> dict[SeriesKey, Row]:
        """Every series held, with the row of its newest window (highest revision of that window)."""
        with self._lock:
            return {key: held.newest().row(key) for view in self._series.values() for key, held in view.items()}

    def history(self, key: SeriesKey) -> list[Row]:
        """The series' windows held, oldest first, each its highest revision; empty for an unknown series."""
        with self._lock:
            held = self._series.get(key.view, {}).get(key)
            if held is None:
                return []
            return [held.windows[start].row(key) for start in sorted(held.windows)]

    def __len__(self) -> int:
        with self._lock:
            return self._count()

    def record_dead_letter(self, row: Mapping[str, Any]) -> None:
        """Count one record of the dead-letter topic (its JSON value) by source topic and reason."""
        with self._lock:
            self._dead_letters[(str(row.get("source_topic")), str(row.get("reason")))] += 1

    def record_consumer_error(self) -> None:
        with self._lock:
            self._consumer_errors += 1

    def record_listener_error(self) -> None:
        with self._lock:
            self._listener_errors += 1

    def stats(self) -> Stats:
        with self._lock:
            return Stats(
                rows=dict(self._rows),
                series=self._count(),
                max_series=self._max_series,
                series_dropped=dict(self._series_dropped),
                last_row_time=self._last_row_time,
                consumer_errors=self._consumer_errors,
                listener_errors=self._listener_errors,
                dead_letters=dict(self._dead_letters),
            )

    def _count(self) -> int:
        return sum(len(view) for view in self._series.values())

    def _put(self, key: SeriesKey, window: _Window) -> Outcome:
        in_view = self._series.setdefault(key.view, {})
        if window.end_ts > self._newest_end.get(key.view, -inf):
            self._newest_end[key.view] = window.end_ts
            self._drop_stale(key.view, keep=key)
        held = in_view.get(key)
        if held is None:
            if self._newest_end[key.view] - window.end_ts > self._staleness_s:
                return Outcome.STALE
            if self._count() >= self._max_series:
                if key not in self._refused:
                    self._series_dropped["cardinality"] += 1
                    if len(self._refused) < self._max_series:  # bounded memory; beyond it, counted again
                        self._refused.add(key)
                return Outcome.CARDINALITY
            held = in_view[key] = _Series()
            self._refused.discard(key)
        return held.put(window, self._history)

    def _drop_stale(self, view: str, *, keep: SeriesKey) -> None:
        cutoff = self._newest_end[view] - self._staleness_s
        in_view = self._series[view]
        stale = [key for key, held in in_view.items() if key != keep and held.newest().end_ts < cutoff]
        for key in stale:
            del in_view[key]
        if stale:
            self._series_dropped["stale"] += len(stale)
