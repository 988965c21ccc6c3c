"""What Flink makes of the job's SQL (EXPLAIN, no run): each record's JSON is parsed once for its fields, however many
checks and queries use them, and the label-prediction join runs once for every query that reads it. Both held only
thanks to the job's own measures (one JSON_FIELDS call per record, the `once` macro, one plan for shared views);
without them the bounded plan held 452 JSON_VALUE calls and three copies of the join."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import pytest
from modelmon.pipelines.job import create_table_env

from modelmon.config import Config
from modelmon.render import render_job

pytestmark = pytest.mark.integration

JSON_FIELDS = re.compile(r"JSON_FIELDS\(payload((?:, (?:_UTF-16LE)?'\w+')+)\)")
# Each topic's record is parsed once for every field the checks read, and twice more for its time alone: for the
# source's watermark and for the row time (a source's computed columns cannot share an expression).
PREDICTION_FIELDS = ("transaction_id", "model_version", "predicted_fraud_score", "predicted_fraud", "event_time")
EXPECTED_PARSES = {
    (*PREDICTION_FIELDS, "country", "merchant_category"): 1,
    ("transaction_id", "actual_fraud", "label_time"): 1,
    ("event_time",): 2,
    ("label_time",): 2,
}


def _execution_plan(cfg: Config, *, bounded: bool) -> str:
    job = render_job(cfg, bounded=bounded)
    t_env = create_table_env(cfg, job)
    for statement in job.setup:
        t_env.execute_sql(statement)
    statements = t_env.create_statement_set()
    for statement in job.inserts:
        statements.add_insert_sql(statement)
    return str(statements.explain()).split("== Optimized Execution Plan ==")[1]


@pytest.mark.parametrize("bounded", [True, False], ids=["bounded", "streaming"])
def test_each_record_is_parsed_once_and_the_join_runs_once(bounded: bool) -> None:
    cfg = Config()
    assert [s.name for s in cfg.segments] == ["country", "merchant_category"], "EXPECTED_READS names the segments"
    plan = _execution_plan(cfg, bounded=bounded)

    parses = Counter(tuple(re.findall(r"'(\w+)'", names)) for names in JSON_FIELDS.findall(plan))
    assert parses == EXPECTED_PARSES
    # Times are read by UTC_TIMESTAMP, without a regular expression.
    assert "JSON_VALUE" not in plan and "REGEXP_EXTRACT" not in plan

    horizon_ms = int(cfg.join.label_horizon / timedelta(milliseconds=1))
    joins = re.findall(r"IntervalJoin\(joinType=\[\w+\], windowBounds=\[[^\]]*\]", plan)
    # Labels (left, outer: an unmatched label is a dead letter) with the predictions up to a horizon before them.
    label_joins = [j for j in joins if f"leftUpperBound={horizon_ms}," in j]
    assert len(label_joins) == 1, joins
    assert "joinType=[LeftOuterJoin]" in label_joins[0]
