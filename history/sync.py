"""Add the Parquet files Flink committed to the history table's Delta log, each exactly once.

Flink's filesystem sink makes a file visible (renames it from a hidden `.part-*` name) when the checkpoint
covering it completes, so the visible files are exactly the committed rows. No Delta connector supports
Flink 2.x, so this step registers those files in a Delta Lake log in the same folder through delta-rs'
transaction API, without copying them.

Which files were registered is kept in a ledger (`_modelmon/ledger.json`), because the Delta log alone
cannot say: compaction and retention remove files from the log while they stay on disk until vacuumed. The
ledger and the Delta commit are tied by a transaction version (Delta's `txn` action for APP_ID): the ledger
names the files of a commit before it is made, as pending, and the next sync keeps them only if the log shows
that commit. A crash at any point therefore neither registers a file twice nor forgets one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelmon.config import Config
from modelmon.errors import ModelmonError
from modelmon.paths import history_dir

log = logging.getLogger(__name__)

APP_ID = "modelmon-history-sync"
PARTITION_COLUMNS = ("date", "view")
# Flink's committed part files: part-<uuid>-<subtask>-<counter>. Hidden in-progress files start with a dot;
# files written by compaction (part-00000-<uuid>-c000.zstd.parquet) do not match, so they are never re-added.
FLINK_PART_FILE = re.compile(r"^part-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-\d+-\d+$")


class HistoryError(ModelmonError):
    pass


@dataclass(frozen=True)
class SyncResult:
    added_files: int
    added_rows: int
    table_version: int | None  # None: no table yet (Flink has committed nothing)


@contextlib.contextmanager
def table_lock(root: Path) -> Iterator[None]:
    """One writer of the Delta log and the ledger at a time (the job's sync thread, `modelmon history`)."""
    folder = root / "_modelmon"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class Ledger:
    """The Flink files already in the Delta log, as of transaction `version`; `pending` is a commit that
    may or may not have happened."""

    path: Path
    version: int = 0
    files: set[str] | None = None
    pending_version: int | None = None
    pending_files: list[str] | None = None

    @classmethod
    def load(cls, root: Path) -> Ledger:
        path = root / "_modelmon" / "ledger.json"
        if not path.exists():
            return cls(path=path, files=set())
        data = json.loads(path.read_text())
        pending = data.get("pending") or {}
        return cls(
            path=path,
            version=int(data["version"]),
            files=set(data["files"]),
            pending_version=pending.get("version"),
            pending_files=pending.get("files"),
        )

    def save(self) -> None:
        data: dict[str, Any] = {"version": self.version, "files": sorted(self.files or ())}
        if self.pending_version is not None:
            data["pending"] = {"version": self.pending_version, "files": self.pending_files}
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w") as out:
            json.dump(data, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)  # atomic: a crash leaves the old or the new ledger, never half of one

    def settle(self, committed_version: int) -> None:
        """Resolve a pending commit against the version the Delta log shows."""
        if self.pending_version is None:
            return
        if committed_version >= self.pending_version:
            assert self.files is not None
            self.files.update(self.pending_files or ())
            self.version = self.pending_version
        self.pending_version = None
        self.pending_files = None
        self.save()


def committed_files(root: Path) -> list[str]:
    """Flink's committed part files under the partition folders, relative to the table root."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        # _delta_log, _modelmon and any hidden folder are not partitions.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(("_", ".")))
        rel = Path(dirpath).relative_to(root)
        if len(rel.parts) != len(PARTITION_COLUMNS):
            continue
        found += [str(rel / name) for name in sorted(filenames) if FLINK_PART_FILE.match(name)]
    return found


def partition_values(relative: str) -> dict[str, str | None]:
    """'date=2026-11-30/view=live/part-...' -> {'date': '2026-11-30', 'view': 'live'}."""
    values: dict[str, str | None] = {}
    for part in Path(relative).parts[:-1]:
        key, _, value = part.partition("=")
        values[key] = value
    return values


def delta_schema(sample: Path) -> Any:
    """The table's schema: a Flink file's columns (Flink writes TIMESTAMP(3) as INT96, read as nanoseconds;
    Delta's timestamp is microseconds in UTC) and the partition columns, which Flink keeps in the path."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from deltalake import Schema

    fields = []
    for field in pq.read_schema(sample):
        if pa.types.is_timestamp(field.type):
            field = field.with_type(pa.timestamp("us", tz="UTC"))
        fields.append(field)
    fields += [pa.field(name, pa.string()) for name in PARTITION_COLUMNS]
    return Schema.from_arrow(pa.schema(fields))


def _add_action(root: Path, relative: str) -> tuple[Any, int]:
    import pyarrow.parquet as pq
    from deltalake.transaction import AddAction

    stat = (root / relative).stat()
    rows = pq.read_metadata(root / relative).num_rows
    action = AddAction(
        path=relative,
        size=stat.st_size,
        partition_values=partition_values(relative),
        modification_time=int(stat.st_mtime * 1000),
        data_change=True,
        stats=json.dumps({"numRecords": rows}),
    )
    return action, rows


def sync(cfg: Config) -> SyncResult:
    """Register every committed Flink file not yet in the Delta log, in one Delta commit."""
    return sync_folder(history_dir(cfg))


def sync_folder(root: Path) -> SyncResult:
    from deltalake import DeltaTable
    from deltalake.transaction import CommitProperties, Transaction, create_table_with_add_actions

    if not root.exists():
        return SyncResult(0, 0, None)
    with table_lock(root):
        exists = DeltaTable.is_deltatable(str(root))
        table = DeltaTable(str(root)) if exists else None
        ledger = Ledger.load(root)
        committed = (table.transaction_version(APP_ID) or 0) if table is not None else 0
        ledger.settle(committed)
        if committed > ledger.version:
            raise HistoryError(
                f"{ledger.path} is behind the Delta log of {root} (sync {ledger.version} < {committed}): the ledger "
                "was lost or replaced, and without it every file would be added again"
            )
        assert ledger.files is not None
        new = [f for f in committed_files(root) if f not in ledger.files]
        if not new:
            return SyncResult(0, 0, table.version() if table is not None else None)
        actions, rows = zip(*(_add_action(root, relative) for relative in new), strict=True)
        version = ledger.version + 1
        ledger.pending_version, ledger.pending_files = version, new
        ledger.save()
        commit = CommitProperties(app_transactions=[Transaction(APP_ID, version)])
        if table is None:
            schema = delta_schema(root / new[0])
            create_table_with_add_actions(
                str(root),
                schema,
                list(actions),
                mode="append",
                partition_by=list(PARTITION_COLUMNS),
                commit_properties=commit,
            )
        else:
            table.create_write_transaction(
                list(actions),
                mode="append",
                schema=table.schema(),
                partition_by=list(PARTITION_COLUMNS),
                commit_properties=commit,
            )
        ledger.settle(version)
        table_version = DeltaTable(str(root)).version()
    log.info("history: added %d files (%d rows) to %s, table version %d", len(new), sum(rows), root, table_version)
    return SyncResult(len(new), sum(rows), table_version)


def forget_deleted(root: Path) -> int:
    """Drop ledger entries whose files vacuum deleted: they can never be added again. Returns how many.
    The caller holds table_lock."""
    ledger = Ledger.load(root)
    assert ledger.files is not None
    gone = {f for f in ledger.files if not (root / f).exists()}
    if gone:
        ledger.files -= gone
        ledger.save()
    return len(gone)
