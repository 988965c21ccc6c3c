"""History rows printed as a terminal table (the columns `modelmon watch` uses per view), CSV or JSON."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from modelmon.history.query import rows as plain_rows

from modelmon.watch import format_header, format_row

FORMATS = ("table", "csv", "json")


def table_lines(rows: Iterable[dict[str, Any]], *, segments: bool) -> Iterable[str]:
    """Per view and date a header, then one line per row (the window's start time, UTC)."""
    heading: tuple[str, str] | None = None
    for row in rows:
        date = str(row["window_start"])[:10]
        if (row["view"], date) != heading:
            if heading is not None:
                yield ""
            heading = (row["view"], date)
            yield format_header(row["view"], segments=segments, date=date)
        yield format_row(row, segments=segments)


def write_rows(frame: Any, fmt: str, out: TextIO, *, segments: bool, echo: Callable[[str], None]) -> int:
    """Write the rows of a history frame; returns how many."""
    rows = list(plain_rows(frame))
    if fmt == "json":
        json.dump(rows, out, indent=1)
        out.write("\n")
    elif fmt == "csv":
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            for row in rows:
                # The reliability bins stay one cell, as JSON.
                writer.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()})
    else:
        for line in table_lines(rows, segments=segments):
            echo(line)
    return len(rows)
