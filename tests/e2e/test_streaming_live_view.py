"""The streaming job as `make demo` runs it: default 6 h label horizon, labels 30 s to 10 min late.

The live view must not wait for the horizon: rows appear within three minutes of start, and every
complete window equals scikit-learn's numbers on the same (seeded, hence reproducible) records.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from modelmon.producers.simulator import generate

from modelmon.kafka_local import LocalKafka
from tests.kafka_helpers import fresh_config, live_rows, write_config
from tests.oracle import counts, join_labels, live_view

pytestmark = pytest.mark.integration

DEADLINE_S = 180


def _start(config_file: Path, *args: str, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "modelmon.cli", "--config", str(config_file), *args],
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def test_live_rows_within_three_minutes_and_exact(kafka_broker: LocalKafka, data_dir: Path, tmp_path: Path) -> None:
    cfg = fresh_config(data_dir, {"simulator": {"rate": 20}})
    assert cfg.join.label_horizon == timedelta(hours=6)
    config_file = write_config(cfg, tmp_path / "modelmon.yaml")
    started = time.monotonic()
    job = _start(config_file, "run", log=tmp_path / "job.log")
    # The simulator's first event time, rounded to the millisecond as the simulator does.
    origin = datetime.fromtimestamp(round(time.time(), 3), UTC)
    start = origin.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    simulator = _start(config_file, "simulate", "--start", start, log=tmp_path / "simulator.log")
    try:
        first_full_window = (origin + timedelta(minutes=1)).replace(second=0, microsecond=0)
        live: dict[tuple[str, str], dict[str, Any]] = {}
        first_row_s = None
        lag_after_window_end: dict[tuple[str, str], float] = {}  # seen within 5 s of polling
        while time.monotonic() - started < DEADLINE_S + 120:
            assert job.poll() is None, (tmp_path / "job.log").read_text()[-3000:]
            live = live_rows(cfg, idle_timeout_s=2)
            if live and first_row_s is None:
                first_row_s = time.monotonic() - started
            for key, row in live.items():
                lag_after_window_end.setdefault(
                    key, time.time() - datetime.fromisoformat(row["window_end"]).timestamp()
                )
            if any(datetime.fromisoformat(window_start) >= first_full_window for window_start, _ in live):
                break
            time.sleep(5)
        assert first_row_s is not None and first_row_s <= DEADLINE_S, f"first live row after {first_row_s} s"
        print(
            f"first live-view row {first_row_s:.0f} s after the job was started; rows seen at most "
            f"{max(lag_after_window_end.values()):.0f} s after their window's end"
        )
    finally:
        for child in (simulator, job):
            child.terminate()
        for child in (simulator, job):
            child.wait(timeout=120)

    complete = {key: row for key, row in live.items() if datetime.fromisoformat(key[0]) >= first_full_window}
    assert complete, f"no complete window yet; rows: {sorted(live)}"
    # Enough transactions to cover every label the simulator can have sent by now.
    elapsed_s = (datetime.now(UTC) - origin).total_seconds()
    data = generate(cfg.simulator, origin, n_transactions=int(elapsed_s * cfg.simulator.rate) + 100)
    sent_labels = [label for label in data.labels if datetime.fromisoformat(label["label_time"]) < datetime.now(UTC)]
    pairs = join_labels(data.predictions, sent_labels, horizon=cfg.join.label_horizon, skew=cfg.join.max_label_skew)
    expected = counts(live_view(pairs, cfg.windows.size))
    assert counts(complete) == {key: expected[key] for key in complete}
