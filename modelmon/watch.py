"""Following the metrics topic: what `modelmon watch` and the demo print.

The topic holds one row per view x window x model version x segment, and the cohort view rewrites its rows
every cohort.revision_interval. Printed as is, that is a wall of numbers. So the terminal gets:

* per view the columns that tell that view's story, under a header line that is repeated whenever the view
  (or the date of the windows) changes and every HEADER_EVERY lines;
* by default only the rows over all segments (segment '*'); the other rows on request;
* of the cohort view's provisional rows only about one per window of label time, and always the final one.

The parts are pure functions and small state machines over row dicts (`RowFilter`, `CohortThrottle`,
`MetricsDisplay`), so they are tested without Kafka; `watch_metrics` only feeds them from the topic.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from modelmon.config import Config
from modelmon.kafka_security import client_options

VIEWS: Final = ("live", "unlabelled", "cohort", "comparison")
# What each view is about, for the header line.
VIEW_SUBJECT: Final = {
    "live": "by label arrival",
    "unlabelled": "by prediction time, no labels needed",
    "cohort": "by prediction time, as labels arrive",
    "comparison": "challenger vs champion, by label arrival",
}
HEADER_EVERY: Final = 20
ALL: Final = "*"

Row = dict[str, Any]
Cell = Callable[[Row], str]

# ---------------------------------------------------------------------------------------------------------
# Cells: one value of a row as text; a missing or null value is '-'.


def _get(row: Row, name: str) -> Any:
    value = row.get(name)
    # JSON has no NaN, but a hand-made or foreign row might: it means "undefined" just like null.
    if isinstance(value, float) and value != value:
        return None
    return value


def _count(name: str) -> Cell:
    def cell(row: Row) -> str:
        value = _get(row, name)
        return "-" if value is None else f"{int(value)}"

    return cell


def _number(name: str, digits: int = 3) -> Cell:
    def cell(row: Row) -> str:
        value = _get(row, name)
        return "-" if value is None else f"{float(value):.{digits}f}"

    return cell


def _diff(name: str) -> Cell:
    def cell(row: Row) -> str:
        value = _get(row, name)
        return "-" if value is None else f"{float(value):+.3f}"

    return cell


def _percent(name: str) -> Cell:
    def cell(row: Row) -> str:
        value = _get(row, name)
        return "-" if value is None else f"{100 * float(value):.1f}%"

    return cell


def format_pvalue(value: float | None) -> str:
    """Three decimals; below 0.001 as '<0.001', so a tiny p-value never reads as zero."""
    if value is None:
        return "-"
    return "<0.001" if value < 0.0005 else f"{value:.3f}"


def _pvalue(name: str) -> Cell:
    return lambda row: format_pvalue(_get(row, name))


def format_seconds(value: float | None) -> str:
    """A duration in seconds the way people read it: '42s', '4m05s', '1h02m'."""
    if value is None:
        return "-"
    seconds = round(float(value))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _seconds(name: str) -> Cell:
    return lambda row: format_seconds(_get(row, name))


def _text(name: str) -> Cell:
    def cell(row: Row) -> str:
        value = _get(row, name)
        return "-" if value is None else str(value)

    return cell


def _revision(row: Row) -> str:
    if _get(row, "is_final"):
        return "final"
    return _count("revision")(row)


def _versus(row: Row) -> str:
    return f"{_text('model_version')(row)} vs {_text('compared_to')(row)}"


def _mcnemar(row: Row) -> str:
    # The star in its own character after the p-value, so the p-values stay aligned.
    return f"{format_pvalue(_get(row, 'mcnemar_pvalue')):>6}{'*' if _get(row, 'significant') else ' '}"


def _segment(row: Row) -> str:
    key, value = _get(row, "segment_key"), _get(row, "segment_value")
    return ALL if key in (None, ALL) else f"{key}={value}"


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 timestamp of the topic ('2026-05-04T12:03:00.000Z'); None if it is not one."""
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def format_window(value: Any, *, seconds: bool = False) -> str:
    """A window's start as 'HH:MM' (UTC; 'HH:MM:SS' for windows that are not whole minutes); the date is in
    the header. Unparsable values are shown as they are."""
    start = parse_time(value)
    if start is None:
        return "-" if value is None else str(value)
    return start.strftime("%H:%M:%S" if seconds else "%H:%M")


# ---------------------------------------------------------------------------------------------------------
# Columns per view.


@dataclass(frozen=True)
class Column:
    title: str
    width: int
    cell: Cell
    left: bool = False  # text columns are left-aligned, numbers right-aligned

    def pad(self, text: str) -> str:
        return f"{text:<{self.width}}" if self.left else f"{text:>{self.width}}"


COLUMNS: Final[dict[str, tuple[Column, ...]]] = {
    "live": (
        Column("model", 8, _text("model_version"), left=True),
        Column("labelled", 8, _count("n_labelled")),
        Column("accuracy", 8, _number("accuracy")),
        Column("precision", 9, _number("precision")),
        Column("recall", 6, _number("recall")),
        Column("f1", 6, _number("f1")),
        Column("roc_auc", 7, _number("roc_auc")),
        Column("ece", 6, _number("ece")),
        Column("latency_p50", 11, _seconds("label_latency_p50_s")),
    ),
    "unlabelled": (
        Column("model", 8, _text("model_version"), left=True),
        Column("predictions", 11, _count("n_predictions")),
        Column("per_s", 7, _number("throughput_per_s", 1)),
        Column("mean_score", 10, _number("mean_score")),
        Column("psi", 6, _number("psi")),
        Column("ks_pvalue", 9, _pvalue("ks_pvalue")),
        Column("est_accuracy", 12, _number("estimated_accuracy")),
        Column("est_precision", 13, _number("estimated_precision")),
        Column("est_recall", 10, _number("estimated_recall")),
    ),
    "cohort": (
        Column("model", 8, _text("model_version"), left=True),
        Column("revision", 8, _revision),
        Column("predictions", 11, _count("n_predictions")),
        Column("coverage", 8, _percent("label_coverage")),
        Column("accuracy", 8, _number("accuracy")),
        Column("precision", 9, _number("precision")),
        Column("recall", 6, _number("recall")),
        Column("roc_auc", 7, _number("roc_auc")),
    ),
    "comparison": (
        Column("challenger", 16, _versus, left=True),
        Column("paired", 8, _count("n_labelled")),
        Column("accuracy_diff", 13, _diff("accuracy_diff")),
        Column("recall_diff", 11, _diff("recall_diff")),
        Column("f1_diff", 7, _diff("f1_diff")),
        Column("mcnemar_p", 9, _mcnemar),
    ),
}
VIEW_WIDTH: Final = max(len(view) for view in VIEWS)
SEGMENT: Final = Column("segment", 30, _segment, left=True)


def _columns(view: str, *, segments: bool) -> tuple[Column, ...]:
    columns = COLUMNS[view]
    return (columns[0], SEGMENT, *columns[1:]) if segments else columns


def _window_width(seconds: bool) -> int:
    return 8 if seconds else 6


def format_header(view: str, *, segments: bool = False, seconds: bool = False, date: str | None = None) -> str:
    """The column titles of `view`, ending with what the view is about and the date of its windows (UTC)."""
    titles = " ".join(column.pad(column.title) for column in _columns(view, segments=segments))
    about = VIEW_SUBJECT.get(view, "")
    when = f"UTC {date}" if date else "UTC"
    return f"{view:<{VIEW_WIDTH}} {'window':<{_window_width(seconds)}} {titles}  ({about}; {when})"


def format_row(row: Row, *, segments: bool = False, seconds: bool = False) -> str:
    """One metrics row as a fixed-width line under format_header(row['view']); undefined values show as '-'.

    A row of a view this module does not know shows its identifying fields only.
    """
    view = str(row.get("view"))
    window = format_window(row.get("window_start"), seconds=seconds)
    if view not in COLUMNS:
        return f"{view:<{VIEW_WIDTH}} {window:<{_window_width(seconds)}} {_text('model_version')(row)}"
    cells = " ".join(column.pad(column.cell(row)) for column in _columns(view, segments=segments))
    return f"{view:<{VIEW_WIDTH}} {window:<{_window_width(seconds)}} {cells}".rstrip()


# ---------------------------------------------------------------------------------------------------------
# Which rows to print.


@dataclass(frozen=True)
class RowFilter:
    """The rows a user asked for: views, model versions (None = every one, '*' included) and whether rows
    of single segments count (by default only the rows over all segments)."""

    views: frozenset[str] = frozenset(VIEWS)
    models: frozenset[str] | None = None
    segments: bool = False

    @classmethod
    def of(cls, views: Iterable[str] = (), models: Iterable[str] = (), *, segments: bool = False) -> RowFilter:
        """Empty `views` or `models` mean all of them."""
        chosen = frozenset(views)
        wanted = frozenset(models)
        return cls(views=chosen or frozenset(VIEWS), models=wanted or None, segments=segments)

    def accepts(self, row: Row) -> bool:
        if row.get("view") not in self.views:
            return False
        if not self.segments and row.get("segment_key", ALL) != ALL:
            return False
        if self.models is not None:
            # A comparison involves two versions; it is shown when either is asked for.
            involved = {row.get("model_version"), row.get("compared_to")} - {None}
            if not involved & self.models:
                return False
        return True


def revisions_per_window(cfg: Config) -> int:
    """How many cohort revisions make one window of label time (the interval divides the window: config)."""
    return cfg.windows.size // cfg.cohort.revision_interval


def _cohort_key(row: Row) -> tuple[Any, ...]:
    return (row.get("window_start"), row.get("model_version"), row.get("segment_key"), row.get("segment_value"))


@dataclass
class _CohortState:
    highest: int = -1
    printed_step: int = 0
    final: bool = False
    window_start: datetime | None = None


@dataclass
class CohortThrottle:
    """Lets through at most about one provisional cohort row per window of label time, and every final one.

    Per cohort key (window, model version, segment) a provisional row passes when its revision reaches a
    new multiple of `every` (revisions_per_window): with 1-minute windows and 10-second revisions, revision
    6, 12, 18, ... or the first revision past each of them, since a revision is only written when the cohort
    received something. Rows of other views pass unchanged. Like every reader of the topic it keeps the
    highest revision per key: a provisional row that is older than one already seen, or that comes after the
    key's final row (they come from different operators, so in no fixed order), is dropped, and so is a
    repeated final row.

    State is forgotten for cohorts whose window started more than `retention` before the newest cohort seen
    (the label horizon and then some: no row of theirs is due any more).
    """

    every: int
    retention: timedelta | None = None
    _state: dict[tuple[Any, ...], _CohortState] = field(default_factory=dict, init=False, repr=False)
    _newest: datetime | None = field(default=None, init=False, repr=False)

    @classmethod
    def for_config(cls, cfg: Config) -> CohortThrottle:
        margin = cfg.join.max_label_skew + cfg.windows.out_of_orderness + cfg.windows.idle_timeout
        retention = 2 * (cfg.join.label_horizon + cfg.windows.size + margin)
        return cls(every=revisions_per_window(cfg), retention=retention)

    def admit(self, row: Row) -> bool:
        if row.get("view") != "cohort":
            return True
        state = self._state.setdefault(_cohort_key(row), _CohortState())
        revision = int(_get(row, "revision") or 0)
        if state.window_start is None:
            state.window_start = parse_time(row.get("window_start"))
            self._forget_old(state.window_start)
        if _get(row, "is_final"):
            admitted = not state.final
            state.final = True
        elif state.final or revision <= state.highest:
            admitted = False
        else:
            step = revision // self.every
            admitted = step > state.printed_step
            if admitted:
                state.printed_step = step
        state.highest = max(state.highest, revision)
        return admitted

    def __len__(self) -> int:
        """The number of cohort keys held."""
        return len(self._state)

    def _forget_old(self, start: datetime | None) -> None:
        if start is None or self.retention is None or (self._newest is not None and start <= self._newest):
            return
        self._newest = start
        cutoff = start - self.retention
        old = [key for key, held in self._state.items() if held.window_start is not None and held.window_start < cutoff]
        for key in old:
            del self._state[key]


# ---------------------------------------------------------------------------------------------------------
# Putting it together: rows in, lines out.


@dataclass
class MetricsDisplay:
    """Turns the rows of the topic into the lines a terminal shows: filtered, cohort rows throttled, with a
    header line whenever the view or the date changes and every `header_every` lines."""

    row_filter: RowFilter = field(default_factory=RowFilter)
    throttle: CohortThrottle = field(default_factory=lambda: CohortThrottle(every=1))
    seconds: bool = False  # windows that are not whole minutes: show HH:MM:SS
    header_every: int = HEADER_EVERY
    _header: tuple[str, str | None] | None = field(default=None, init=False, repr=False)
    _since_header: int = field(default=0, init=False, repr=False)

    @classmethod
    def for_config(
        cls, cfg: Config, *, views: Collection[str] = (), models: Collection[str] = (), segments: bool = False
    ) -> MetricsDisplay:
        return cls(
            row_filter=RowFilter.of(views, models, segments=segments),
            throttle=CohortThrottle.for_config(cfg),
            seconds=cfg.windows.size % timedelta(minutes=1) != timedelta(0),
        )

    def lines(self, row: Row) -> list[str]:
        """The lines to print for `row`: none, the row, or a header and the row."""
        if not self.row_filter.accepts(row) or not self.throttle.admit(row):
            return []
        view = str(row.get("view"))
        start = parse_time(row.get("window_start"))
        header = (view, start.date().isoformat() if start else None)
        out = []
        if header != self._header or self._since_header >= self.header_every:
            segments = self.row_filter.segments
            out.append(format_header(view, segments=segments, seconds=self.seconds, date=header[1]))
            self._header = header
            self._since_header = 0
        out.append(format_row(row, segments=self.row_filter.segments, seconds=self.seconds))
        self._since_header += 1
        return out


def watch_metrics(
    cfg: Config,
    *,
    from_beginning: bool,
    echo: Callable[[str], None],
    stop: Callable[[dict[str, Any]], bool] = lambda row: False,
    views: Collection[str] = (),
    models: Collection[str] = (),
    segments: bool = False,
) -> None:
    """Print committed metrics rows as they arrive, until Ctrl-C or until `stop(row)` is true.

    `views` and `models` restrict the rows printed (empty: all); `segments` adds the rows of single segments
    to those over all segments. `stop` sees every row read, printed or not.
    """
    from kafka import KafkaConsumer

    display = MetricsDisplay.for_config(cfg, views=views, models=models, segments=segments)
    consumer = KafkaConsumer(
        cfg.topics.metrics,
        **client_options(cfg.kafka),
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    echo(f"watching topic {cfg.topics.metrics} on {cfg.kafka.bootstrap_servers} (Ctrl-C stops)")
    try:
        for message in consumer:
            if message.value is None:
                continue
            row = json.loads(message.value)
            for line in display.lines(row):
                echo(line)
            if stop(row):
                return
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
