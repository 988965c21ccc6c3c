"""The PyFlink scalar functions the SQL registers (`CREATE TEMPORARY SYSTEM FUNCTION ... LANGUAGE PYTHON`).

Thin wrappers: the math is in `window_metrics` and `metrics_math`, tested without Flink. Each function runs
once per aggregated window row, so per-call Python overhead does not matter.
"""

from __future__ import annotations

from typing import Any

from modelmon.udfs import metrics_math as mm
from modelmon.udfs import window_metrics as wm
from pyflink.common import Row
from pyflink.table import DataTypes
from pyflink.table.udf import udf

_DOUBLE_FIELDS = (
    "roc_auc",
    "roc_auc_error_bound",
    "pr_auc",
    "ece",
    "mce",
    "psi",
    "ks_statistic",
    "ks_pvalue",
    "label_latency_p50_s",
    "label_latency_p95_s",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "precision_ci_low",
    "precision_ci_high",
    "recall_ci_low",
    "recall_ci_high",
)
RELIABILITY_BIN = DataTypes.ROW(
    [
        DataTypes.FIELD("bin", DataTypes.INT()),
        DataTypes.FIELD("n", DataTypes.BIGINT()),
        DataTypes.FIELD("mean_score", DataTypes.DOUBLE()),
        DataTypes.FIELD("observed_rate", DataTypes.DOUBLE()),
    ]
)
RESULT_TYPE = DataTypes.ROW(
    [DataTypes.FIELD(name, DataTypes.DOUBLE()) for name in _DOUBLE_FIELDS]
    + [DataTypes.FIELD("reliability", DataTypes.ARRAY(RELIABILITY_BIN))]
)


def _window_metrics(
    bins: str | None,
    latency_counts: str | None,
    tp: int,
    fp: int,
    tn: int,
    fn: int,
    score_bins: int,
    calibration_bins: int,
    latency_edges_s: str,
    reference: str | None,
) -> Row:
    values: dict[str, Any] = wm.window_metrics(
        bins, latency_counts, tp, fp, tn, fn, score_bins, calibration_bins, latency_edges_s, reference
    )
    reliability = [Row(b["bin"], b["n"], b["mean_score"], b["observed_rate"]) for b in values["reliability"]]
    return Row(*(values[name] for name in _DOUBLE_FIELDS), reliability)


window_metrics = udf(
    _window_metrics,
    input_types=[
        DataTypes.STRING(),
        DataTypes.STRING(),
        DataTypes.BIGINT(),
        DataTypes.BIGINT(),
        DataTypes.BIGINT(),
        DataTypes.BIGINT(),
        DataTypes.INT(),
        DataTypes.INT(),
        DataTypes.STRING(),
        DataTypes.STRING(),
    ],
    result_type=RESULT_TYPE,
)


# Exact McNemar p-value of a champion/challenger comparison (b, c: the discordant pairs).
mcnemar_pvalue = udf(
    mm.mcnemar_pvalue, input_types=[DataTypes.BIGINT(), DataTypes.BIGINT()], result_type=DataTypes.DOUBLE()
)
