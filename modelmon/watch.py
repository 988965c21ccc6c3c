"""Following the metrics topic: what `modelmon watch` and the demo print."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from modelmon.config import Config

HEADER = (
    f"{'view':<6} {'window_start':<24} {'model':<8} {'labelled':>8} "
    f"{'accuracy':>8} {'precision':>9} {'recall':>7} {'f1':>6}"
)


def _fmt(value: Any, width: int) -> str:
    if value is None:
        return f"{'-':>{width}}"
    return f"{value:>{width}.3f}" if isinstance(value, float) else f"{value!s:>{width}}"


def format_row(row: dict[str, Any]) -> str:
    """One metrics row as a fixed-width line under HEADER; undefined values show as '-'."""
    return (
        f"{row['view']:<6} {row['window_start']:<24} {row['model_version']:<8} {_fmt(row['n_labelled'], 8)} "
        f"{_fmt(row['accuracy'], 8)} {_fmt(row['precision'], 9)} {_fmt(row['recall'], 7)} {_fmt(row['f1'], 6)}"
    )


def watch_metrics(
    cfg: Config,
    *,
    from_beginning: bool,
    echo: Callable[[str], None],
    stop: Callable[[dict[str, Any]], bool] = lambda row: False,
) -> None:
    """Print committed metrics rows as they arrive, until Ctrl-C or until `stop(row)` is true."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        cfg.topics.metrics,
        bootstrap_servers=cfg.kafka.bootstrap_servers,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    echo(f"watching topic {cfg.topics.metrics} on {cfg.kafka.bootstrap_servers} (Ctrl-C stops)")
    echo(HEADER)
    try:
        for message in consumer:
            if message.value is None:
                continue
            row = json.loads(message.value)
            echo(format_row(row))
            if stop(row):
                return
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
