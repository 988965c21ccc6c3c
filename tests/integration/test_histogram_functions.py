"""The job's histogram aggregates (jvm/src, registered by sql/functions/metrics) on a Flink minicluster:
BIN_STATS must put every score in the bin scikit-learn's calibration_curve gives it, also the doubles next to
every edge where `score * B` rounds the wrong way, and MERGE_BINS must add histograms up, and take them away,
bin by bin. The whole job's metrics are compared with scikit-learn in test_metric_set; this pins the bin rule on
the scores where a plain floor or ceil goes wrong, which simulated data seldom hits.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from modelmon.config import Config
from modelmon.paths import connector_jars
from modelmon.render import render_templates
from tests.oracle import bin_of

pytestmark = pytest.mark.integration


def edge_scores(n_bins: int) -> list[float]:
    """Scores on and next to every edge, both as k / B and as numpy's k * (1 / B), and some between."""
    near = []
    for k in range(n_bins + 1):
        for e in (k / n_bins, k * (1.0 / n_bins)):
            near += [e, math.nextafter(e, 0.0), math.nextafter(e, 1.0)]
    return sorted({x for x in [*(i / 1_000 for i in range(1_001)), *near] if 0.0 <= x <= 1.0})


@pytest.fixture(scope="module")
def table_env() -> Iterator[Any]:
    from pyflink.table import EnvironmentSettings, TableEnvironment

    t_env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    t_env.get_config().set("parallelism.default", "1")
    t_env.get_config().set("pipeline.jars", ";".join(jar.as_uri() for jar in connector_jars(Config())))
    for statement in render_templates(Config(), ["functions/metrics"]):
        t_env.execute_sql(statement)
    yield t_env


def _rows(t_env: Any, sql: str, rows: list[tuple[Any, ...]], names: list[str]) -> list[tuple[Any, ...]]:
    table = t_env.from_elements(rows, names)
    t_env.create_temporary_view("input_rows", table)
    try:
        with t_env.execute_sql(sql).collect() as results:
            return [tuple(row) for row in results]
    finally:
        t_env.drop_temporary_view("input_rows")


def _entries(text: str) -> list[tuple[int, int, int, int, int, float]]:
    out = []
    for entry in text.split(";"):
        s, c, n, pos, neg, score_sum = entry.split(":")
        out.append((int(s), int(c), int(n), int(pos), int(neg), float(score_sum)))
    return out


BIN_COUNTS = [(100, 10), (50, 7), (128, 3)]  # (score_bins, calibration_bins): the default, and uneven ones


def test_bin_stats_bins_every_score_as_calibration_curve(table_env: Any) -> None:
    scores = sorted({x for pair in BIN_COUNTS for n_bins in pair for x in edge_scores(n_bins)})
    columns = ", ".join(f"BIN_STATS(score, TRUE, CAST(NULL AS INT), {s}, {c})" for s, c in BIN_COUNTS)
    got = _rows(
        table_env,
        f"SELECT id, {columns} FROM input_rows GROUP BY id",
        [(i, score) for i, score in enumerate(scores)],
        ["id", "score"],
    )
    assert len(got) == len(scores)
    wrong = []
    for i, (score_bins, calibration_bins) in enumerate(BIN_COUNTS):
        expected_score = bin_of(np.array(scores), score_bins)
        expected_calibration = bin_of(np.array(scores), calibration_bins)
        for row_id, *texts in got:
            [(s, c, n, pos, neg, _)] = _entries(texts[i])
            assert (n, pos, neg) == (1, 0, 0)
            expected = (expected_score[row_id], expected_calibration[row_id])
            if (s, c) != expected:
                wrong.append((scores[row_id], score_bins, calibration_bins, (s, c), expected))
    assert not wrong, f"{len(wrong)} scores binned unlike calibration_curve, e.g. {wrong[:5]}"


def test_bin_stats_counts_predictions_labels_and_labelled_scores(table_env: Any) -> None:
    rng = random.Random(7)
    rows = [
        (rng.randrange(3), round(rng.random(), 6), rng.random() < 0.6, rng.choice([None, 0, 1])) for _ in range(3_000)
    ]
    got = dict(
        _rows(
            table_env,
            "SELECT grp, BIN_STATS(score, is_prediction, CAST(label AS INT), 20, 5) FROM input_rows GROUP BY grp",
            rows,
            ["grp", "score", "is_prediction", "label"],
        )
    )
    for grp in range(3):
        mine = [r for r in rows if r[0] == grp]
        scores = np.array([r[1] for r in mine])
        s_bins, c_bins = bin_of(scores, 20), bin_of(scores, 5)
        expected: dict[tuple[int, int], list[float]] = {}
        for (_, score, is_prediction, label), s, c in zip(mine, s_bins, c_bins, strict=True):
            sums = expected.setdefault((int(s), int(c)), [0, 0, 0, 0.0])
            sums[0] += int(is_prediction)
            sums[1] += int(label == 1)
            sums[2] += int(label == 0)
            sums[3] += score if label is not None else 0.0
        entries = _entries(got[grp])
        assert [(s, c) for s, c, *_ in entries] == sorted(expected), "one entry per bin pair, in bin order"
        for s, c, n, pos, neg, score_sum in entries:
            e_n, e_pos, e_neg, e_sum = expected[(s, c)]
            assert (n, pos, neg) == (e_n, e_pos, e_neg)
            assert score_sum == pytest.approx(e_sum, rel=1e-12, abs=1e-12)


def test_merge_bins_adds_histograms_and_takes_them_away(table_env: Any) -> None:
    texts = ["1:0:2:1:0:0.5;3:1:1:0:1:0.25", "3:1:4:2:2:1.0;7:2:1:1:0:0.75", "1:0:1:0:0:0.0"]
    [(merged,)] = _rows(table_env, "SELECT MERGE_BINS(bins) FROM input_rows", [(t,) for t in texts], ["bins"])
    total: Counter[tuple[int, int]] = Counter()
    for text in texts:
        for s, c, n, *_ in _entries(text):
            total[(s, c)] += n
    assert {(s, c): n for s, c, n, *_ in _entries(merged)} == dict(total)
    assert _entries(merged)[1] == (3, 1, 5, 2, 3, 1.25)
    # An OVER window retracts the rows that leave its range: only the last two texts remain in the last row.
    over = _rows(
        table_env,
        "SELECT pos, MERGE_BINS(bins) OVER (ORDER BY pos ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM input_rows",
        [(i, t) for i, t in enumerate(texts)],
        ["pos", "bins"],
    )
    assert dict(over)[2] == "1:0:1:0:0:0.0;3:1:4:2:2:1.0;7:2:1:1:0:0.75"
