"""Reading the history table back: final metrics rows by view, model version, segment and time range."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelmon.errors import ModelmonError

if TYPE_CHECKING:
    import pandas as pd

KEY = ("view", "window_start", "model_version", "segment_key", "segment_value")
ALL = "*"


class NoHistoryError(ModelmonError):
    pass


@dataclass(frozen=True)
class HistoryQuery:
    views: tuple[str, ...] = ()  # empty: every view
    model_versions: tuple[str, ...] = ()  # empty: every version, '*' included
    # (key, value): ('*', '*') the rows over all segments; (key, None) every value of one segment; None: all
    segment: tuple[str, str | None] | None = (ALL, ALL)
    since: datetime | None = None  # window_start >= since (UTC)
    until: datetime | None = None  # window_start < until (UTC)


def read_history(root: Path, query: HistoryQuery) -> pd.DataFrame:
    """The matching rows, one per key, ordered by window, view, model version and segment.

    A key appears twice only if two independent runs (say, a bounded rerun over the same topics) wrote the
    same window; the newer row of the table wins, as it would on the metrics topic.
    """
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(str(root)):
        raise NoHistoryError(
            f"no history table at {root} yet: run the job (`modelmon run`) until a window is final, or set history.path"
        )
    # On the partition column: only the chosen views' files are read.
    filters = [("view", "in", list(query.views))] if query.views else None
    frame = DeltaTable(str(root)).to_pandas(filters=filters)
    keep = frame["is_final"].astype(bool)
    if query.model_versions:
        keep &= frame["model_version"].isin(query.model_versions)
    if query.segment is not None:
        key, value = query.segment
        keep &= frame["segment_key"] == key
        if value is not None:
            keep &= frame["segment_value"] == value
    if query.since is not None:
        keep &= frame["window_start"] >= query.since
    if query.until is not None:
        keep &= frame["window_start"] < query.until
    frame = frame[keep].drop_duplicates(subset=list(KEY), keep="last")
    return frame.sort_values(["window_start", "view", "model_version", "segment_key", "segment_value"]).reset_index(
        drop=True
    )


def _plain(value: Any) -> Any:
    """A pandas/numpy/arrow cell as a JSON-friendly Python value; NaN and missing values become None."""
    import numpy as np
    import pandas as pd

    if isinstance(value, pd.Timestamp | datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, np.ndarray | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def rows(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """The rows as the metrics topic has them: window bounds as ISO-8601 UTC text, undefined values None."""
    columns = [column for column in frame.columns if column != "date"]
    for record in frame[columns].to_dict(orient="records"):
        yield {key: _plain(value) for key, value in record.items()}
