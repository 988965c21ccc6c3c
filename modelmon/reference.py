"""Reference scores for prediction drift: read the file the job bins, or write one from the simulator."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from modelmon.config import ConfigError, SimulatorConfig

FIELD: Final = "predicted_fraud_score"


def read_reference_scores(path: Path) -> Iterator[float]:
    """One score per line, as a number or a JSON object with predicted_fraud_score; blank lines skipped.

    A bad line fails the start-up naming the file and line: drift against a corrupt reference is worse than
    no drift at all.
    """
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"config field drift.reference_file: cannot read {path}: {exc}") from exc
    found = False
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            value = json.loads(text)
            raw = value[FIELD] if isinstance(value, dict) else value
            if isinstance(raw, bool):  # float(True) is 1.0, but a boolean is no score
                raise TypeError(raw)
            score = float(raw)
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                f"config field drift.reference_file: {path}:{number} is neither a score nor a JSON object with {FIELD}"
            ) from None
        if not (math.isfinite(score) and 0.0 <= score <= 1.0):
            raise ConfigError(f"config field drift.reference_file: {path}:{number}: score {score!r} outside [0, 1]")
        found = True
        yield score
    if not found:
        raise ConfigError(f"config field drift.reference_file: {path} holds no scores")


def write_simulated_reference(cfg: SimulatorConfig, out: Path, n_transactions: int) -> int:
    """The scores the simulated model versions give to n transactions: its 'validation set'."""
    from modelmon.producers.simulator import generate

    data = generate(cfg, datetime(2026, 1, 1, tzinfo=UTC), n_transactions=n_transactions)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as handle:
        for prediction in data.predictions:
            handle.write(f"{prediction[FIELD]}\n")
    return len(data.predictions)
