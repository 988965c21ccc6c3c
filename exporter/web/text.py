"""Numbers as the live page shows them: rounded to what a reader can use, never 0 for unknown.

Every shown value travels as a cell, `{"value": raw number or null, "text": "..."}`, so the rounding lives
here (tested in Python) and the page's script only places text.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

WAITING: Final = "waiting for labels"
# A value that stays null although labels came (precision without predicted fraud, drift without a
# reference file, a p-value without discordant pairs).
UNDEFINED: Final = "n/a"

Cell = dict[str, Any]
Format = Callable[[float], str]


def rate(value: float) -> str:
    return f"{value:.3f}"


def signed(value: float) -> str:
    return f"{value:+.3f}"


def percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def count(value: float) -> str:
    return f"{int(value):,}"


def seconds(value: float) -> str:
    if value < 90:
        return f"{value:.0f} s"
    if value < 90 * 60:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def pvalue(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def number(value: float) -> str:
    """Any metric without a format of its own (alert values and thresholds)."""
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


# The format of each metric column the page shows.
FORMATS: Final[dict[str, Format]] = {
    "n_predictions": count,
    "n_labelled": count,
    "mcnemar_b": count,
    "mcnemar_c": count,
    "label_coverage": percent,
    "label_latency_p50_s": seconds,
    "label_latency_p95_s": seconds,
    "mcnemar_pvalue": pvalue,
    "ks_pvalue": pvalue,
    "throughput_per_s": lambda value: f"{value:,.1f}/s",
}


def metric(name: str, value: float) -> str:
    """`value` of column `name` as text: its own format, signed for a difference, else 3 decimals."""
    if name in FORMATS:
        return FORMATS[name](value)
    return signed(value) if name.endswith("_diff") else rate(value)


def cell(name: str, value: Any, *, waiting: bool) -> Cell:
    """A shown value; null is 'waiting for labels' while none came (`waiting`), 'n/a' once they did."""
    if value is None:
        return {"value": None, "text": WAITING if waiting else UNDEFINED}
    return {"value": value, "text": metric(name, float(value))}


def moment(iso: str) -> datetime:
    parsed = datetime.fromisoformat(iso)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def clock(iso: str) -> str:
    return moment(iso).strftime("%H:%M")


def window(start: str, end: str) -> str:
    """'2026-02-02 08:03 to 08:04 UTC'."""
    return f"{moment(start):%Y-%m-%d %H:%M} to {clock(end)} UTC"


def age(seconds_ago: float) -> str:
    return "just now" if seconds_ago < 1 else f"{seconds(seconds_ago)} ago"
