"""The history table's Delta log on real delta-rs and real Parquet files laid out as Flink's filesystem sink
lays them out: every committed file exactly once, whatever crashes, compaction and retention do."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from modelmon.history import sync as sync_module
from modelmon.history.maintenance import maintain_folder
from modelmon.history.sync import HistoryError, Ledger, committed_files, sync_folder

START = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
SCHEMA = pa.schema(
    [
        ("window_start", pa.timestamp("ns")),  # Flink writes TIMESTAMP(3) as INT96, read back as nanoseconds
        ("model_version", pa.string()),
        ("is_final", pa.bool_()),
        ("accuracy", pa.float64()),
        ("reliability", pa.list_(pa.struct([("bin", pa.int32()), ("n", pa.int64())]))),
    ]
)


class FlinkSink:
    """Writes files as Flink's sink does: part-<uuid>-<subtask>-<counter> under date=/view= folders."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.prefix = f"part-{uuid.uuid4()}"
        self.counter = 0
        self.rows: list[tuple[str, str, int]] = []  # (date, view, minute) of every committed row

    def commit(self, view: str, minutes: range, *, day: int = 0) -> Path:
        start = START + timedelta(days=day)
        folder = self.root / f"date={start.date().isoformat()}" / f"view={view}"
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.table(
            {
                "window_start": [(start + timedelta(minutes=m)).replace(tzinfo=None) for m in minutes],
                "model_version": ["v1"] * len(minutes),
                "is_final": [True] * len(minutes),
                "accuracy": [m / 100 for m in minutes],
                "reliability": [[{"bin": 3, "n": m}] for m in minutes],
            },
            schema=SCHEMA,
        )
        path = folder / f"{self.prefix}-0-{self.counter}"
        self.counter += 1
        pq.write_table(table, path)
        self.rows += [(start.date().isoformat(), view, m) for m in minutes]
        return path


def table_rows(root: Path) -> list[tuple[str, str, int]]:
    frame = DeltaTable(str(root)).to_pandas()
    minutes = ((frame["window_start"] - frame["window_start"].dt.normalize()).dt.total_seconds() // 60 - 600).astype(
        int
    )
    return sorted(zip(frame["date"], frame["view"], minutes, strict=True))


@pytest.fixture
def sink(tmp_path: Path) -> FlinkSink:
    return FlinkSink(tmp_path / "history")


def test_committed_files_are_added_once_and_read_back_with_types(sink: FlinkSink) -> None:
    sink.commit("live", range(0, 3))
    sink.commit("cohort", range(0, 2))
    first = sync_folder(sink.root)
    assert (first.added_files, first.added_rows) == (2, 5)
    assert sync_folder(sink.root).added_files == 0  # nothing new: nothing added twice
    sink.commit("live", range(3, 5))
    assert sync_folder(sink.root).added_rows == 2
    assert table_rows(sink.root) == sorted(sink.rows)
    frame = DeltaTable(str(sink.root)).to_pandas()
    assert str(frame["window_start"].dtype) == "datetime64[us, UTC]"
    assert frame["window_start"].min() == pd.Timestamp(START)
    assert list(frame.loc[frame["accuracy"] == 0.04, "reliability"].iloc[0]) == [{"bin": 3, "n": 4}]


def test_hidden_in_progress_and_foreign_files_are_not_added(sink: FlinkSink) -> None:
    committed = sink.commit("live", range(0, 2))
    (committed.parent / f".{committed.name}.inprogress.{uuid.uuid4()}").write_bytes(committed.read_bytes())
    (committed.parent / "part-00000-abc-c000.zstd.parquet").write_bytes(committed.read_bytes())
    (sink.root / "_SUCCESS").touch()
    assert committed_files(sink.root) == [str(committed.relative_to(sink.root))]
    sync_folder(sink.root)
    assert table_rows(sink.root) == sorted(sink.rows)


def test_a_crash_before_the_delta_commit_loses_nothing(sink: FlinkSink, monkeypatch: pytest.MonkeyPatch) -> None:
    sink.commit("live", range(0, 2))
    sync_folder(sink.root)
    sink.commit("live", range(2, 4))

    def crash(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt("killed before the commit")

    with monkeypatch.context() as patch:
        patch.setattr(DeltaTable, "create_write_transaction", crash)
        with pytest.raises(KeyboardInterrupt):
            sync_folder(sink.root)
    assert Ledger.load(sink.root).pending_version == 2  # the ledger named the files of a commit not made
    assert sync_folder(sink.root).added_rows == 2
    assert table_rows(sink.root) == sorted(sink.rows)


def test_a_crash_after_the_delta_commit_adds_nothing_twice(sink: FlinkSink, monkeypatch: pytest.MonkeyPatch) -> None:
    sink.commit("live", range(0, 2))
    settle = Ledger.settle
    calls = []

    def crash_after_commit(self: Ledger, committed_version: int) -> None:
        calls.append(committed_version)
        if len(calls) == 2:  # the first settles the (empty) past; the second records the new commit
            raise KeyboardInterrupt("killed after the commit")
        settle(self, committed_version)

    with monkeypatch.context() as patch:
        patch.setattr(Ledger, "settle", crash_after_commit)
        with pytest.raises(KeyboardInterrupt):
            sync_folder(sink.root)
    assert DeltaTable(str(sink.root)).transaction_version(sync_module.APP_ID) == 1
    assert sync_folder(sink.root).added_files == 0
    assert table_rows(sink.root) == sorted(sink.rows)


def test_a_lost_ledger_is_an_error_not_duplicates(sink: FlinkSink) -> None:
    sink.commit("live", range(0, 2))
    sync_folder(sink.root)
    (sink.root / "_modelmon" / "ledger.json").unlink()
    with pytest.raises(HistoryError, match="behind the Delta log"):
        sync_folder(sink.root)


def test_compaction_merges_small_files_and_sync_never_adds_replaced_ones(sink: FlinkSink) -> None:
    for minute in range(0, 12):
        sink.commit("live", range(minute, minute + 1))
    cohort = sink.commit("cohort", range(0, 3))
    kept = maintain_folder(sink.root, target_file_size=2**26, retention_days=None, vacuum_hours=24)
    # The live partition's twelve files become one; a partition of one file is left alone.
    assert (kept.synced.added_files, kept.files_compacted, kept.files_written) == (13, 12, 1)
    assert kept.files_vacuumed == 0  # the replaced files stay for readers of older versions
    assert len(DeltaTable(str(sink.root)).file_uris()) == 2
    # Flink's replaced files are still on disk and compaction's output is not Flink's: neither is added.
    sink.commit("live", range(12, 14))
    assert sync_folder(sink.root).added_files == 1
    assert table_rows(sink.root) == sorted(sink.rows)
    vacuumed = maintain_folder(sink.root, target_file_size=2**26, retention_days=None, vacuum_hours=0)
    assert vacuumed.files_vacuumed == 12 + 2  # Flink's 13 live files and the first compaction's output
    # Vacuumed files leave the ledger, so it stays small.
    assert Ledger.load(sink.root).files == {str(cohort.relative_to(sink.root))}
    assert table_rows(sink.root) == sorted(sink.rows)


def test_retention_deletes_whole_days_older_than_it(sink: FlinkSink) -> None:
    sink.commit("live", range(0, 3), day=0)
    sink.commit("live", range(0, 2), day=2)
    now = START + timedelta(days=3, hours=1)
    result = maintain_folder(sink.root, target_file_size=2**26, retention_days=2, vacuum_hours=0, now=now)
    assert result.rows_expired == 3  # day 0 is entirely older than two days; day 2 is not
    assert table_rows(sink.root) == sorted(row for row in sink.rows if row[0] != START.date().isoformat())
    assert not list((sink.root / f"date={START.date().isoformat()}").rglob("part-*"))  # vacuumed
