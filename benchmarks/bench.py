"""`modelmon bench`: every measurement in one run, on a broker of its own (ports 29092/29093, data under
build/bench), with its own topics per input size."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from modelmon.benchmarks.data import preload
from modelmon.benchmarks.report import as_json, as_markdown
from modelmon.benchmarks.streaming import Latency, StateRun, measure_latency, measure_state
from modelmon.benchmarks.throughput import RunResult, run_bounded

from modelmon.config import Config
from modelmon.kafka_local import LocalKafka
from modelmon.topics import ensure_topics

BROKER_PORT = 29092


@dataclass(frozen=True)
class BenchOptions:
    """The default run, about 20 minutes on two cores; FULL is the long sweep (`modelmon bench --full`)."""

    out_dir: Path
    events: int = 1_000_000  # the main run, also as the passthrough baseline
    sizes: tuple[int, ...] = (1_000_000, 2_000_000)  # how cost grows with the input
    parallelisms: tuple[int, ...] = (1,)
    event_rate: float = 1000.0  # transactions per second of event time in the preloaded data
    latency: bool = True
    latency_rate: float = 100.0
    latency_duration_s: float = 240.0
    state: bool = True
    state_predictions: int = 2_000_000  # waiting for their labels, in a streaming run


# The long sweep: 4 million events at parallelism 1 and 2, three sizes, 10 million predictions waiting.
FULL = {
    "events": 4_000_000,
    "sizes": (1_000_000, 2_000_000, 4_000_000),
    "parallelisms": (1, 2),
    "state_predictions": 10_000_000,
}


def _config(opts: BenchOptions, name: str, overrides: dict[str, Any] | None = None) -> Config:
    data: dict[str, Any] = {
        "kafka": {"bootstrap_servers": f"127.0.0.1:{BROKER_PORT}", "group_id": f"bench-{name}", "partitions": 2},
        "local_kafka": {"port": BROKER_PORT, "controller_port": BROKER_PORT + 1, "heap": "1g"},
        "topics": {
            topic: f"bench-{name}-{topic.replace('_', '-')}"
            for topic in (
                "predictions",
                "labels",
                "labelled_predictions",
                "metrics",
                "dead_letter",
                "alerts",
                "control",
            )
        },
        "paths": {"data_dir": str(opts.out_dir / "data")},
        # Labels come 1 s to 5 min late: a 10 min horizon keeps the join's state to 10 min of event time.
        "join": {"label_horizon": "10min"},
    }
    for section, values in (overrides or {}).items():
        data.setdefault(section, {}).update(values)
    return Config.model_validate(data)


def _write(cfg: Config, path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    return path


def run_benchmarks(opts: BenchOptions, echo: Callable[[str], None]) -> dict[str, Any]:
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    log = opts.out_dir / "bench.log"
    broker = LocalKafka(_config(opts, "broker"))
    # Each run on empty topics: a previous run's records would be read again and not counted as events. (A
    # broker left running by a run cut short is stopped first; the input cache stays.)
    broker.stop()
    shutil.rmtree(opts.out_dir / "data", ignore_errors=True)
    echo(f"starting a Kafka broker on 127.0.0.1:{BROKER_PORT} (data in {opts.out_dir / 'data'}); log: {log}")
    broker.start()
    runs: list[RunResult] = []
    latency: Latency | None = None
    state: StateRun | None = None

    def save() -> dict[str, Any]:
        """Writes the figures so far: a run cut short keeps what it measured."""
        meta = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "latency_window": "10s",
            "latency_rate": opts.latency_rate,
        }
        result = as_json(runs, latency, state, meta)
        (opts.out_dir / "results.json").write_text(json.dumps(result, indent=1))
        (opts.out_dir / "results.md").write_text(as_markdown(result))
        return result

    try:
        for size in sorted(set(opts.sizes) | {opts.events}):
            cfg = _config(opts, f"{size}")
            ensure_topics(cfg)
            echo(f"preloading {size:,} events")
            events = preload(cfg, size, rate=opts.event_rate, progress=echo, cache_dir=opts.out_dir / "cache")
            plan = [("full", 1)] if size != opts.events else [("passthrough", 1), ("full", 1)]
            if size == opts.events:
                plan += [("full", p) for p in opts.parallelisms if p != 1]
            for kind, parallelism in plan:
                run_cfg = _config(opts, f"{size}", {"job": {"parallelism": parallelism}})
                echo(f"{kind} job, {events:,} events, parallelism {parallelism}")
                run = run_bounded(
                    _write(run_cfg, opts.out_dir / f"{size}-{kind}-p{parallelism}.yaml"),
                    kind,
                    events=events,
                    parallelism=parallelism,
                    log=log,
                )
                echo(f"  {run.net_runtime_s:.1f} s, {run.events_per_s:,.0f} events/s")
                runs.append(run)
                save()
        if opts.latency:
            cfg = _config(opts, "latency", {"windows": {"size": "10s"}, "exporter": {"port": BROKER_PORT + 10}})
            ensure_topics(cfg)
            echo(f"latency: {opts.latency_rate:g} transactions/s for {opts.latency_duration_s:.0f} s, 10 s windows")
            latency = measure_latency(
                cfg,
                _write(cfg, opts.out_dir / "latency.yaml"),
                rate=opts.latency_rate,
                duration_s=opts.latency_duration_s,
                log=log,
                echo=echo,
            )
            save()
        if opts.state:
            cfg = _config(opts, "state", {"join": {"label_horizon": "6h"}})
            ensure_topics(cfg)
            echo(f"state: {opts.state_predictions:,} predictions waiting for labels")
            waiting = preload(
                cfg,
                opts.state_predictions,
                rate=opts.event_rate,
                progress=echo,
                cache_dir=opts.out_dir / "cache",
                labels=False,
            )
            state = measure_state(
                cfg, _write(cfg, opts.out_dir / "state.yaml"), predictions=waiting, log=log, echo=echo
            )
    finally:
        broker.stop()
    return save()
