"""The input rules of the README ("Input and output"), written again in plain Python as the reference the job's
checking views (sql/views/predictions_checked, labels_checked) are fuzzed against: for a record value and its
Kafka timestamp, the reason the job must give, or None for a valid record.

Where Java and Python differ, this follows the job's platform on purpose: string lengths count UTF-16 code
units (Java's), TRIM removes spaces only (SQL's), digits are ASCII digits (Java's regex).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_ID_LENGTH = 256
_MISSING = object()
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?", re.ASCII)
_ISO_UTC = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[T ]([0-9]{2}:[0-9]{2}:[0-9]{2})(\.[0-9]{1,9})?(Z|[+]00:?00)?", re.ASCII
)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _object(payload: str) -> dict[str, Any] | None:
    try:
        value = json.loads(payload, parse_constant=_reject_constant)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _text(record: dict[str, Any], field: str) -> str | None:
    """A field as SQL's JSON_VALUE gives it: a scalar's text; NULL for null, an object, an array or no field."""
    value = record.get(field, _MISSING)
    if value is _MISSING or value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _id_reason(record: dict[str, Any], field: str) -> str | None:
    text = _text(record, field)
    if text is None or not text.strip(" "):
        return f"missing {field}"
    if _length(text) > MAX_ID_LENGTH:
        return f"{field} longer than {MAX_ID_LENGTH} characters"
    return None


def _flag_reason(record: dict[str, Any], field: str) -> str | None:
    """0 or 1, as a JSON number or a string (not 1.0, true or " 1")."""
    return None if _text(record, field) in ("0", "1") else f"{field} missing or not 0|1"


def _time(record: dict[str, Any], field: str) -> datetime | None:
    text = _text(record, field)
    match = _ISO_UTC.fullmatch(text) if text is not None else None
    if match is None:
        return None
    date, clock, fraction, _zone = match.groups()
    try:
        parsed = datetime.fromisoformat(f"{date}T{clock}").replace(tzinfo=UTC)
    except ValueError:
        return None
    millis = int(((fraction or ".")[1:] + "000")[:3])  # TIMESTAMP(3): the rest of the fraction is cut
    return parsed + timedelta(milliseconds=millis)


def _time_reason(record: dict[str, Any], field: str, kafka_time: datetime, drift: timedelta) -> str | None:
    parsed = _time(record, field)
    if parsed is None:
        return f"{field} missing or not ISO-8601 UTC"
    if abs(parsed - kafka_time) > drift:
        return f"{field} more than {int(drift.total_seconds() // 60)}min from the record's Kafka timestamp"
    return None


def repeats(payloads: list[str], reasons: list[str | None], kind: str) -> list[str | None]:
    """The reasons once repeats are found: a valid record (reason None) whose identity (a prediction's
    transaction_id, model_version and event_time; a label's transaction_id and label_time) an earlier valid record
    of the list had, in list order (arrival)."""
    fields = (
        ("transaction_id", "model_version", "event_time") if kind == "prediction" else ("transaction_id", "label_time")
    )
    seen: set[tuple[object, ...]] = set()
    result: list[str | None] = []
    for payload, reason in zip(payloads, reasons, strict=True):
        if reason is None:
            record = _object(payload)
            assert record is not None
            key = tuple(_time(record, f) if f.endswith("_time") else _text(record, f) for f in fields)
            if key in seen:
                reason = f"repeats an earlier {kind} (same {', '.join(fields)})"
            seen.add(key)
        result.append(reason)
    return result


def prediction_reason(payload: str, kafka_time: datetime, drift: timedelta) -> str | None:
    record = _object(payload)
    if record is None:
        return "not a JSON object"
    for reason in (_id_reason(record, "transaction_id"), _id_reason(record, "model_version")):
        if reason is not None:
            return reason
    score = _text(record, "predicted_fraud_score")
    if score is None or not _NUMBER.fullmatch(score):
        return "predicted_fraud_score missing or not a number"
    if not 0 <= float(score) <= 1:
        return "predicted_fraud_score outside [0, 1]"
    return _flag_reason(record, "predicted_fraud") or _time_reason(record, "event_time", kafka_time, drift)


def label_reason(payload: str, kafka_time: datetime, drift: timedelta) -> str | None:
    record = _object(payload)
    if record is None:
        return "not a JSON object"
    return (
        _id_reason(record, "transaction_id")
        or _flag_reason(record, "actual_fraud")
        or _time_reason(record, "label_time", kafka_time, drift)
    )
