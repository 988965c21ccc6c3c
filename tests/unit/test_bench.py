"""The benchmark's parts that need no broker: the baseline job's SQL, memory sampling, the report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from modelmon.benchmarks.processes import PeakMemory
from modelmon.benchmarks.report import as_json, as_markdown
from modelmon.benchmarks.streaming import WINDOW_END, Latency, StateRun, _rate
from modelmon.benchmarks.throughput import RunResult

from modelmon.cli import _count, cli
from modelmon.config import Config
from modelmon.render import render_job, render_passthrough_job


def test_the_passthrough_baseline_reads_and_parses_exactly_as_the_job_does() -> None:
    cfg = Config()
    baseline, job = render_passthrough_job(cfg), render_job(cfg, bounded=True)
    shared = [s for s in baseline.setup if "blackhole" not in s]
    assert shared and all(statement in job.setup for statement in shared)  # same sources, same JSON checks
    assert len(baseline.inserts) == 2 and all("passthrough_" in insert for insert in baseline.inserts)
    assert all("country" in insert or "labels_checked" in insert for insert in baseline.inserts)


def test_peak_memory_sees_a_child_process_grow() -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; block = bytearray(200 * 2**20); block[::4096] = b'x' * len(block[::4096]); time.sleep(2)",
        ]
    )
    with PeakMemory(child.pid, interval_s=0.1) as memory:
        child.wait()
    assert memory.peak["python"] > 200 * 2**20
    assert memory.peak["jvm"] == 0


@pytest.mark.parametrize(
    ("text", "count"), [("4M", 4_000_000), ("500k", 500_000), ("2_000", 2000), ("1.5m", 1_500_000)]
)
def test_counts_are_read_with_units(text: str, count: int) -> None:
    assert _count(text) == count


def test_the_input_cache_holds_the_simulators_records_in_order(tmp_path: Path) -> None:
    from modelmon.benchmarks.data import START, _read_cache, _write_cache, simulator_config
    from modelmon.producers.simulator import encode_value, epoch_millis, is_prediction, records

    path = tmp_path / "input.bin"
    _write_cache(path, 300, rate=1000.0, labels=False, progress=lambda _line: None)
    cached = list(_read_cache(path.open("rb")))
    want = [
        (True, epoch_millis(r.due_time), r.key.encode(), encode_value(r.value))
        for r in records(simulator_config(1000.0), START, 150)
        if is_prediction(r)
    ]
    assert cached == want and len(cached) == 300


def test_a_bad_count_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["bench", "--events", "lots"])
    assert result.exit_code == 2 and "expected a count such as 4M" in result.output


def test_the_report_relates_the_full_job_to_the_baseline() -> None:
    runs = [
        RunResult("passthrough", 4_000_000, 1, 40.0, 900, 80),
        RunResult("full", 4_000_000, 1, 160.0, 1500, 300),
        RunResult("full", 4_000_000, 2, 100.0, 1700, 500),
    ]
    result = as_json(
        runs,
        Latency(12, 18.0, 24.5, 18.2, 25.0, 1500, 300),
        StateRun("rocksdb", 500_000, 20_000.0, 22_000.0, 18_000.0, 30, 2, 0.4, 1.25, 100 * 2**20, 2_900.0),
        {"date": "2026-11-30", "latency_window": "10s", "latency_rate": 100.0},
    )
    table = as_markdown(result)
    assert "| full | 4,000,000 | 1 | 160.0 s | 25,000 | 0.25 |" in table
    assert "| passthrough | 4,000,000 | 1 | 40.0 s | 100,000 |  |" in table
    assert "| metrics topic (read_committed) | 18.0 s | 24.5 s |" in table
    assert "| 20,000 | 22,000 | 18,000 | 30 (2) | 0.4 s | 1.2 s | 100.0 MB | 200 MB | 2,900 MB |" in table
    assert result["machine"]["cpus"] >= 1


def test_the_exporter_line_of_the_live_window_is_found() -> None:
    name = "modelmon_window_end_timestamp_seconds"
    text = (
        f'{name}{{model_version="v1",segment_key="*",segment_value="*",view="live"}} 10.0\n'
        f'{name}{{model_version="*",segment_key="*",segment_value="*",view="cohort"}} 20.0\n'
        f'{name}{{segment_key="*",view="live",model_version="*",segment_value="*"}} 30.0\n'
    )
    assert [float(m.group(1)) for m in WINDOW_END.finditer(text)] == [30.0]


def test_reading_rates_come_from_the_samples_nearest_each_fraction() -> None:
    # 1,000 records/s for the first 100 s, then 250/s: the first tenth is fast, the last slow.
    progress = [(float(t), 1000 * t) for t in range(1, 101)]
    progress += [(100.0 + t, 100_000 + 250 * t) for t in range(1, 401)]
    assert _rate(progress, 0.0, 0.1) == 1000.0
    assert _rate(progress, 0.9, 1.0) == 250.0
    assert _rate(progress, 0.0, 1.0) == (200_000 - 1000) / 499
