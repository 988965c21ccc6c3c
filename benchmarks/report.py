"""The benchmark's figures as JSON and as a markdown table."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict
from typing import Any

from modelmon.benchmarks.streaming import Latency, StateRun
from modelmon.benchmarks.throughput import RunResult


def machine() -> dict[str, Any]:
    with open("/proc/meminfo") as meminfo:
        total_kb = int(meminfo.readline().split()[1])
    with open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "unknown")
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "memory_gb": round(total_kb / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def as_json(
    runs: list[RunResult], latency: Latency | None, state: StateRun | None, meta: dict[str, Any]
) -> dict[str, Any]:
    return {
        **meta,
        "machine": machine(),
        "throughput": [{**asdict(run), "events_per_s": run.events_per_s} for run in runs],
        "latency": None if latency is None else asdict(latency),
        "state": None if state is None else {**asdict(state), "bytes_per_million": state.bytes_per_million},
    }


def as_markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"modelmon bench, {result['date']}: {m['cpus']} cores ({m['cpu']}), {m['memory_gb']} GB, "
        f"Python {m['python']}, Flink minicluster, local Kafka broker.",
        "",
        "| job | events | parallelism | runtime | events/s | vs passthrough | peak RSS JVM | peak RSS Python |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    baseline = {
        (r["events"], r["parallelism"]): r["events_per_s"] for r in result["throughput"] if r["kind"] == "passthrough"
    }
    for r in result["throughput"]:
        base = baseline.get((r["events"], r["parallelism"]))
        ratio = f"{r['events_per_s'] / base:.2f}" if base and r["kind"] == "full" else ""
        lines.append(
            f"| {r['kind']} | {r['events']:,} | {r['parallelism']} | {r['net_runtime_s']:.1f} s | "
            f"{r['events_per_s']:,.0f} | {ratio} | {r['peak_rss_jvm_mb']:,.0f} MB | {r['peak_rss_python_mb']:,.0f} MB |"
        )
    latency = result["latency"]
    if latency:
        lines += [
            "",
            f"Label to metric, after the window's end ({latency['windows']} live windows of "
            f"{result['latency_window']} at {result['latency_rate']:g} transactions/s):",
            "",
            "| where | p50 | p99 |",
            "|---|---:|---:|",
            f"| metrics topic (read_committed) | {latency['topic_p50_s']:.1f} s | {latency['topic_p99_s']:.1f} s |",
            f"| exporter /metrics | {latency['exporter_p50_s']:.1f} s | {latency['exporter_p99_s']:.1f} s |",
        ]
    state = result["state"]
    if state:
        lines += [
            "",
            f"A streaming run reading {state['waiting_predictions']:,} predictions whose labels have not come "
            f"(state backend {state['state_backend']}; the join keeps every one):",
            "",
            "| predictions/s | first tenth | last tenth | checkpoints (failed) | checkpoint p50 | checkpoint p99 | "
            "state at the end | per million | peak RSS JVM |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {state['events_per_s']:,.0f} | {state['first_tenth_per_s']:,.0f} | {state['last_tenth_per_s']:,.0f} "
            f"| {state['checkpoints']} ({state['failed_checkpoints']}) "
            f"| {state['checkpoint_p50_s']:.1f} s | {state['checkpoint_p99_s']:.1f} s "
            f"| {state['checkpoint_bytes'] / 2**20:,.1f} MB | {state['bytes_per_million'] / 2**20:,.0f} MB "
            f"| {state['peak_rss_jvm_mb']:,.0f} MB |",
        ]
    return "\n".join(lines) + "\n"
