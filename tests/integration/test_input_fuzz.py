"""Hypothesis fuzzes the job's input checks. It generates prediction and label records (valid ones, valid ones
with fields dropped or replaced by any JSON value, numbers and times in odd spellings, truncated JSON, text that
is no JSON at all) with their Kafka timestamps; the job's own checking views (sql/views/predictions_checked and
labels_checked, rendered as for a run) classify them on a Flink minicluster, and every verdict must equal the
reference's (tests/input_rules.py, the README's rules in plain Python).

The views read a VALUES table here instead of Kafka: the Kafka path of bad records (dead-letter topic, reasons,
the job running on) is tested end to end by test_metric_set's corpus.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from modelmon.config import Config
from modelmon.paths import connector_jars
from modelmon.render import render_templates
from tests.input_rules import label_reason, prediction_reason, repeats

pytestmark = pytest.mark.integration

KAFKA_TIME = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RECORDS_PER_EXAMPLE = 25
EXAMPLES = 40  # raise it locally to search further

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
)
ids = st.text(max_size=300) | st.text(alphabet="x\U0001d518 \t", min_size=120, max_size=140) | json_values
scores = (
    st.floats(min_value=-0.5, max_value=1.5)
    | st.sampled_from([0, 1, 0.0, 1.0, -0.0, 2, 1e-7])
    | st.from_regex(r"\A-?[0-9]{1,3}(\.[0-9]{1,4})?([eE][+-]?[0-9])?\Z")
    | st.sampled_from(["NaN", "Infinity", "-Infinity", "0.5d", "0x1p-1", " 0.5", ".5", "5.", "+0.5", "1_0", "\u0660.5"])
    | json_values
)
flags = st.sampled_from([0, 1, 2, -1, "0", "1", " 1", "1.0", 1.0, 0.7, "0.7", True, False, "true", "01"]) | json_values


@st.composite
def times(draw: st.DrawFn) -> Any:
    """ISO-8601 in many spellings, around the record's Kafka timestamp (within and beyond the clock drift), or not
    a time at all."""
    if draw(st.integers(0, 9)) == 0:
        # Dates that do not exist (or do: 2028-02-29; they are far from the Kafka timestamp, another reason).
        impossible = ["2026-02-30T12:00:00Z", "2026-03-01T24:00:00Z", "2026-03-01T12:60:00Z", "2026-03-01T12:00:60Z"]
        far = ["2028-02-29T12:00:00Z", "2100-02-29T12:00:00Z", "2000-02-29T12:00:00Z", "0000-01-01T00:00:00Z"]
        return draw(json_values | st.sampled_from([*impossible, *far, "2026-3-1T12:00Z", "2026-03-01T12:00:00+00"]))
    # Whole seconds, never within a second of the drift's edge (10 min), where a cut fraction could decide.
    offset = draw(st.integers(-1500, 1500).filter(lambda s: abs(abs(s) - 600) > 1))
    moment = KAFKA_TIME + timedelta(seconds=offset)
    fraction = draw(st.sampled_from(["", ".1", ".12", ".123", ".1234", ".123456", ".123456789", ".", ".1234567890"]))
    separator = draw(st.sampled_from(["T", "T", " ", "t"]))
    zone = draw(st.sampled_from(["Z", "Z", "+00:00", "+0000", "", "+01:00", "-00:00", "z", " UTC"]))
    # Arabic-Indic digits are no ISO digits.
    digits = draw(st.sampled_from(["0123456789", "".join(chr(0x0660 + d) for d in range(10))]))
    text = moment.strftime(f"%Y-%m-%d{separator}%H:%M:%S") + fraction + zone
    return text.translate(str.maketrans("0123456789", digits))


def _mutated(draw: st.DrawFn, record: dict[str, Any], fields: dict[str, st.SearchStrategy[Any]]) -> str:
    for field, strategy in fields.items():
        action = draw(st.sampled_from(["keep", "keep", "keep", "drop", "replace", "replace"]))
        if action == "drop":
            record.pop(field)
        elif action == "replace":
            record[field] = draw(strategy)
    text = json.dumps(record, ensure_ascii=draw(st.booleans()))
    kind = draw(st.sampled_from(["json"] * 8 + ["truncated", "text"]))
    if kind == "truncated":
        return text[: draw(st.integers(0, len(text) - 1))]
    return draw(st.text(max_size=40)) if kind == "text" else text


@st.composite
def predictions(draw: st.DrawFn) -> str:
    record = {
        "transaction_id": "tx-1",
        "model_version": "v1",
        "predicted_fraud_score": 0.25,
        "predicted_fraud": 0,
        "event_time": KAFKA_TIME.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "country": "US",
    }
    fields = {
        "transaction_id": ids,
        "model_version": ids,
        "predicted_fraud_score": scores,
        "predicted_fraud": flags,
        "event_time": times(),
    }
    return _mutated(draw, record, fields)


@st.composite
def labels(draw: st.DrawFn) -> str:
    record = {"transaction_id": "tx-1", "actual_fraud": 1, "label_time": KAFKA_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return _mutated(draw, record, {"transaction_id": ids, "actual_fraud": flags, "label_time": times()})


@pytest.fixture(scope="module")
def table_env() -> Iterator[Any]:
    from pyflink.table import EnvironmentSettings, TableEnvironment

    t_env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    t_env.get_config().set("table.local-time-zone", "UTC")
    t_env.get_config().set("parallelism.default", "1")
    # The checking views parse with modelmon's JSON_FIELDS (jvm/src), from the jar every job loads.
    t_env.get_config().set("pipeline.jars", ";".join(jar.as_uri() for jar in connector_jars(Config())))
    for statement in render_templates(Config(), ["functions/parsing"]):
        t_env.execute_sql(statement)
    yield t_env


def _verdicts(t_env: Any, kind: str, payloads: list[str]) -> dict[int, str | None]:
    """Each payload's reason from the job's checking view, by its position."""
    from pyflink.table import DataTypes

    raw, view = (
        ("predictions_raw", "predictions_checked") if kind == "predictions" else ("labels_raw", "labels_checked")
    )
    rows = [(i, payload, KAFKA_TIME.replace(tzinfo=None)) for i, payload in enumerate(payloads)]
    schema = DataTypes.ROW(
        [
            DataTypes.FIELD("id", DataTypes.BIGINT()),
            DataTypes.FIELD("payload", DataTypes.STRING()),
            DataTypes.FIELD("kafka_ts", DataTypes.TIMESTAMP(3)),
        ]
    )
    t_env.create_temporary_view(f"{kind}_input", t_env.from_elements(rows, schema))
    row_time = "event_time" if kind == "predictions" else "label_time"
    t_env.execute_sql(
        f"CREATE TEMPORARY VIEW {raw} AS SELECT payload, 0 AS kafka_partition, id AS kafka_offset, "
        f"CAST(kafka_ts AS TIMESTAMP_LTZ(3)) AS kafka_time, kafka_ts AS {row_time}, "
        # Arrival in list order, which tells a repeat from the record it repeats.
        f"TO_TIMESTAMP_LTZ(id, 3) AS proc_time FROM {kind}_input"
    )
    # A batch table has no watermark, so no record is late (that rule is tested on Kafka, test_reading_order).
    for statement in render_templates(Config(), [f"views/{view}"], watermarks=False):
        t_env.execute_sql(statement)
    with t_env.execute_sql(f"SELECT kafka_offset, reason FROM {view}").collect() as results:
        return {int(row[0]): row[1] for row in results}


def _check(
    t_env: Any, kind: str, payloads: list[str], reference: Callable[[str, datetime, timedelta], str | None]
) -> None:
    drift = Config().windows.max_clock_drift
    assert drift is not None
    got = _verdicts(t_env, kind, payloads)
    assert sorted(got) == list(range(len(payloads)))  # every record came out, once
    reasons = repeats(payloads, [reference(payload, KAFKA_TIME, drift) for payload in payloads], kind.removesuffix("s"))
    wanted = dict(enumerate(reasons))
    differ = [(payloads[i], got[i], wanted[i]) for i in range(len(payloads)) if got[i] != wanted[i]]
    print(f"{kind}: {sorted(Counter(str(reason) for reason in wanted.values()).items())}")
    assert not differ, f"{len(differ)} of {len(payloads)} differ (payload, job, reference), e.g.:\n" + "\n".join(
        repr(case) for case in differ[:8]
    )


def _drawn(records: st.SearchStrategy[str]) -> list[str]:
    """Records from Hypothesis: EXAMPLES lists of RECORDS_PER_EXAMPLE, the same ones on every run (CI). They are
    classified together afterwards, since every query costs a Flink job; so no shrinking either (a failure names
    the records)."""
    drawn: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(records, min_size=RECORDS_PER_EXAMPLE, max_size=RECORDS_PER_EXAMPLE))
    def collect(payloads: list[str]) -> None:
        drawn.extend(payloads)

    collect()
    return drawn


def test_predictions_are_checked_as_the_rules_say(table_env: Any) -> None:
    _check(table_env, "predictions", _drawn(predictions()), prediction_reason)


def test_labels_are_checked_as_the_rules_say(table_env: Any) -> None:
    _check(table_env, "labels", _drawn(labels()), label_reason)
