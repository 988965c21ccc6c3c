"""What Flink makes of the job's SQL (EXPLAIN, no run): each record's JSON is read once per field, however many
checks and queries use the field, and the label-prediction join runs once for every query that reads it. Both
held only thanks to the job's own measures (the `once` macro, one plan for shared views); without them the
bounded plan held 452 JSON_VALUE calls and three copies of the join."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import pytest
from modelmon.pipelines.job import create_table_env

from modelmon.config import Config
from modelmon.render import render_job

pytestmark = pytest.mark.integration

JSON_FIELD = re.compile(r"JSON_VALUE\(payload, (?:_UTF-16LE)?'\$\.(\w+)'\)")
# A time field is read three times: for the source's watermark, for the row time and by the checks.
EXPECTED_READS = {
    "transaction_id": 2,  # one per topic
    "model_version": 1,
    "predicted_fraud_score": 1,
    "predicted_fraud": 1,
    "event_time": 3,
    "country": 1,
    "merchant_category": 1,
    "actual_fraud": 1,
    "label_time": 3,
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
def test_each_json_field_is_read_once_and_the_join_runs_once(bounded: bool) -> None:
    cfg = Config()
    assert [s.name for s in cfg.segments] == ["country", "merchant_category"], "EXPECTED_READS names the segments"
    plan = _execution_plan(cfg, bounded=bounded)

    assert Counter(JSON_FIELD.findall(plan)) == EXPECTED_READS

    horizon_ms = int(cfg.join.label_horizon / timedelta(milliseconds=1))
    joins = re.findall(r"IntervalJoin\(joinType=\[\w+\], windowBounds=\[[^\]]*\]", plan)
    # Labels (left, outer: an unmatched label is a dead letter) with the predictions up to a horizon before them.
    label_joins = [j for j in joins if f"leftUpperBound={horizon_ms}," in j]
    assert len(label_joins) == 1, joins
    assert "joinType=[LeftOuterJoin]" in label_joins[0]
