"""Compaction and retention of the history table.

A streaming job commits a few small files per partition and checkpoint. Compaction (delta-rs' optimize)
rewrites each partition's small files into files of about history.target_file_size_mb; retention deletes
whole days older than history.retention; vacuum then deletes the replaced files once they are older than
history.vacuum_after. Vacuum only deletes files the log removed, never a file Flink committed that is not
registered yet, nor Flink's hidden in-progress files.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from modelmon.history.sync import SyncResult, forget_deleted, sync_folder, table_lock

from modelmon.config import Config
from modelmon.paths import history_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MaintenanceResult:
    synced: SyncResult
    files_compacted: int  # small files replaced by compaction
    files_written: int
    rows_expired: int
    files_vacuumed: int


def maintain(cfg: Config, *, now: datetime | None = None) -> MaintenanceResult:
    """Sync, compact, expire and vacuum the history table."""
    return maintain_folder(
        history_dir(cfg),
        target_file_size=cfg.history.target_file_size_mb * 2**20,
        retention_days=None if cfg.history.retention is None else cfg.history.retention.total_seconds() / 86400,
        vacuum_hours=math.ceil(cfg.history.vacuum_after.total_seconds() / 3600),
        now=now,
    )


def maintain_folder(
    root: Path,
    *,
    target_file_size: int,
    retention_days: float | None,
    vacuum_hours: int,
    now: datetime | None = None,
) -> MaintenanceResult:
    from datetime import timedelta

    from deltalake import DeltaTable

    synced = sync_folder(root)
    if synced.table_version is None:
        return MaintenanceResult(synced, 0, 0, 0, 0)
    with table_lock(root):
        table = DeltaTable(str(root))
        compacted = table.optimize.compact(target_size=target_file_size)
        expired = 0
        if retention_days is not None:
            # Partitions are days: a day goes once all of it is older than the retention, and deleting a
            # whole partition removes files without rewriting any.
            cutoff = ((now or datetime.now(UTC)) - timedelta(days=retention_days)).date().isoformat()
            expired = int(table.delete(f"date < '{cutoff}'")["num_deleted_rows"])
        vacuumed = table.vacuum(retention_hours=vacuum_hours, enforce_retention_duration=False, dry_run=False)
        forget_deleted(root)
    result = MaintenanceResult(
        synced,
        files_compacted=int(compacted["numFilesRemoved"]),
        files_written=int(compacted["numFilesAdded"]),
        rows_expired=expired,
        files_vacuumed=len(vacuumed),
    )
    log.info(
        "history: compacted %d files into %d, expired %d rows, vacuumed %d files",
        result.files_compacted,
        result.files_written,
        result.rows_expired,
        result.files_vacuumed,
    )
    return result
