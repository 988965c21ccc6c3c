"""/api/overview: what the live page shows, from the exporter's state (`series()`, `history()`) and the
alert engine's firing alerts.

Per model version: a status headline, the newest live window's metrics with their intervals, trends over
the windows the state holds (live: rates, AUC, label latency; cohort: label coverage; unlabelled: drift),
the newest window's calibration bins and per-segment rows. Across versions: firing alerts and the newest
champion-vs-challenger rows. Raw values stay numbers or null (never 0 for unknown); each shown value also
carries its text (see `text`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from modelmon.alerting.rules import AlertEvent
from modelmon.exporter.state import MetricsState, Row, SeriesKey, Stats
from modelmon.exporter.web import text
from modelmon.exporter.web.text import Cell, cell

AlertSource = Callable[[], Sequence[AlertEvent]]

ALL: Final = "*"
LIVE, COHORT, UNLABELLED, COMPARISON = "live", "cohort", "unlabelled", "comparison"
# Rates shown with their Wilson 95% interval (columns <rate>_ci_low, <rate>_ci_high).
INTERVAL_RATES: Final = ("accuracy", "precision", "recall")
HEADLINE: Final = ("n_labelled", "f1", "label_latency_p50_s", "label_latency_p95_s", "ece")
LIVE_TREND: Final = (
    "n_labelled",
    *(f"{rate}{suffix}" for rate in INTERVAL_RATES for suffix in ("", "_ci_low", "_ci_high")),
    "f1",
    "roc_auc",
    "roc_auc_low",
    "roc_auc_high",
    "label_latency_p50_s",
    "label_latency_p95_s",
)
SEGMENT_COLUMNS: Final = ("n_labelled", "accuracy", "precision", "recall", "f1", "roc_auc")
DRIFT: Final = ("psi", "ks_pvalue", "throughput_per_s")
DIFFS: Final = ("accuracy_diff", "precision_diff", "recall_diff", "f1_diff", "brier_diff")
# Fewer labels than this in a window (the default alert rules' min_samples) make its rates rough: said so.
FEW_LABELS: Final = 100
# Worst first: the headline of a version with several firing alerts is its most severe one.
LEVELS: Final = {"critical": "degraded", "warning": "needs attention"}


def overview(
    state: MetricsState, *, topic: str, alerts: AlertSource | None, refresh_s: float, now: float
) -> dict[str, Any]:
    """The whole page's data; `alerts` None when no alert engine runs (the page then says so)."""
    series = state.series()
    firing = list(alerts()) if alerts is not None else []
    return {
        "generated_at": _iso(now),
        "refresh_s": refresh_s,
        "source": source(state.stats(), topic, now),
        "alerts": alert_panel(firing, evaluated=alerts is not None),
        "models": [model(state, series, version, firing, alerts is not None) for version in versions(series)],
        "comparison": comparison(series),
    }


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def versions(series: Iterable[SeriesKey]) -> list[str]:
    """Each concrete model version that has a series over all segments ('*', all versions, is left out)."""
    return sorted({key.model_version for key in series if key.segment_key == ALL and key.view != COMPARISON} - {ALL})


def source(stats: Stats, topic: str, now: float) -> dict[str, Any]:
    rows = sum(stats.rows.values())
    age = None if stats.last_row_time is None else max(0.0, now - stats.last_row_time)
    read = f"{rows:,} rows read from topic {topic}, {stats.series:,} series"
    return {
        "topic": topic,
        "rows_read": rows,
        "series": stats.series,
        "last_row_age_s": age,
        "text": f"{read}; last row {text.age(age)}" if age is not None else f"{read}; no row yet",
    }


# ---------------------------------------------------------------------------------------------------------
# Alerts and status


def alert(event: AlertEvent) -> dict[str, Any]:
    segment = "all segments" if event.segment_key == ALL else f"{event.segment_key}={event.segment_value}"
    model = "all versions" if event.model_version == ALL else event.model_version
    value, threshold = text.metric(event.metric, event.value), text.metric(event.metric, event.threshold)
    return {
        "alert_id": event.alert_id,
        "rule": event.rule,
        "severity": event.severity,
        "view": event.view,
        "model_version": event.model_version,
        "segment": segment,
        "metric": event.metric,
        "value": event.value,
        "threshold": event.threshold,
        "since": event.window_start,
        "text": f"{event.metric} {value} {event.op} {threshold}",
        "where": f"{model}, {event.view} view, {segment}, since {text.clock(event.window_start)} UTC",
    }


def alert_panel(firing: Sequence[AlertEvent], *, evaluated: bool) -> dict[str, Any]:
    if not evaluated:
        summary = "no alerts firing (alert rules are not evaluated: exporter started with --no-alerts)"
    else:
        summary = f"{len(firing)} alert{'s' * (len(firing) != 1)} firing" if firing else "no alerts firing"
    return {"evaluated": evaluated, "text": summary, "firing": [alert(event) for event in firing]}


def status(newest: Row | None, firing: Sequence[AlertEvent], *, evaluated: bool) -> dict[str, str]:
    """The headline of one version: its most severe firing alert, else whether its labels came."""
    for level, headline in LEVELS.items():
        hits = [event for event in firing if event.severity == level]
        if hits:
            detail = "; ".join(f"{alert(e)['text']} at {text.clock(e.window_start)} UTC" for e in hits)
            return {"level": level, "headline": headline, "detail": detail}
    if newest is None:
        detail = "predictions are scored, no label has come yet"
        return {"level": "waiting", "headline": text.WAITING, "detail": detail}
    if not evaluated:
        return {"level": "unknown", "headline": "labelled", "detail": "alert rules are not evaluated"}
    return {"level": "healthy", "headline": "healthy", "detail": "no alert rule firing"}


# ---------------------------------------------------------------------------------------------------------
# One model version


def model(
    state: MetricsState,
    series: dict[SeriesKey, Row],
    version: str,
    firing: Sequence[AlertEvent],
    evaluated: bool,
) -> dict[str, Any]:
    live = state.history(SeriesKey(LIVE, version, ALL, ALL))
    cohort = state.history(SeriesKey(COHORT, version, ALL, ALL))
    unlabelled = state.history(SeriesKey(UNLABELLED, version, ALL, ALL))
    newest = live[-1] if live else None
    mine = [event for event in firing if event.model_version == version]
    return {
        "model_version": version,
        "status": status(newest, mine, evaluated=evaluated),
        "window": None if newest is None else _window(newest),
        "few_labels": newest is not None and (newest["n_labelled"] or 0) < FEW_LABELS,
        "metrics": headline(newest),
        "label_coverage": coverage(cohort[-1] if cohort else None),
        "drift": {name: cell(name, unlabelled[-1][name] if unlabelled else None, waiting=False) for name in DRIFT},
        "alerts": [alert(event) for event in mine],
        "trend": columns([_with_auc_band(row) for row in live], LIVE_TREND),
        "coverage_trend": columns(cohort, ("label_coverage", "n_predictions", "n_labelled")),
        "drift_trend": columns(unlabelled, ("psi", "ks_pvalue", "n_predictions")),
        "calibration": calibration(newest),
        "segments": segments(state, series, version, newest),
    }


def _window(row: Row) -> dict[str, str]:
    return {
        "start": row["window_start"],
        "end": row["window_end"],
        "text": text.window(row["window_start"], row["window_end"]),
    }


def interval_cell(row: Row | None, name: str) -> Cell:
    """A Wilson-interval rate: value, bounds and their text ('[0.831, 0.872]')."""
    shown = cell(name, None if row is None else row[name], waiting=row is None)
    low, high = (None, None) if row is None else (row[f"{name}_ci_low"], row[f"{name}_ci_high"])
    shown.update(low=low, high=high)
    if low is not None and high is not None:
        shown["interval"] = f"[{text.rate(low)}, {text.rate(high)}]"
    return shown


def auc_cell(row: Row | None) -> Cell:
    shown = cell("roc_auc", None if row is None else row["roc_auc"], waiting=row is None)
    bound = None if row is None else row["roc_auc_error_bound"]
    shown["error_bound"] = bound
    if shown["value"] is not None and bound is not None:
        shown["interval"] = f"± {text.rate(bound)}"
    return shown


def headline(newest: Row | None) -> dict[str, Cell]:
    """The newest live window's numbers; all 'waiting for labels' before the first."""
    shown = {name: interval_cell(newest, name) for name in INTERVAL_RATES}
    shown["roc_auc"] = auc_cell(newest)
    for name in HEADLINE:
        shown[name] = cell(name, None if newest is None else newest[name], waiting=newest is None)
    return shown


def coverage(row: Row | None) -> Cell:
    """Label coverage of the youngest cohort (predictions of one minute): how many labels came so far."""
    if row is None:
        return cell("label_coverage", None, waiting=True)
    shown = cell("label_coverage", row["label_coverage"], waiting=not row["n_labelled"])
    state = "final" if row["is_final"] else "so far"
    shown["note"] = f"of predictions made {text.clock(row['window_start'])} UTC, {state}"
    return shown


def _with_auc_band(row: Row) -> Row:
    auc, bound = row["roc_auc"], row["roc_auc_error_bound"]
    known = auc is not None and bound is not None
    return {
        **row,
        "roc_auc_low": max(0.0, auc - bound) if known else None,
        "roc_auc_high": min(1.0, auc + bound) if known else None,
    }


def columns(rows: Sequence[Row], names: Sequence[str]) -> dict[str, list[Any]]:
    """Rows (oldest first) as columns for the charts: `t` the window starts, then one list per name."""
    return {"t": [row["window_start"] for row in rows], **{name: [row.get(name) for row in rows] for name in names}}


def calibration(newest: Row | None) -> dict[str, Any] | None:
    if newest is None or not newest["reliability"]:
        return None
    return {
        "window": _window(newest),
        "n_labelled": cell("n_labelled", newest["n_labelled"], waiting=False),
        "ece": cell("ece", newest["ece"], waiting=False),
        "bins": newest["reliability"],
    }


def _segment_order(key: SeriesKey) -> tuple[str, bool, str]:
    return key.segment_key, key.segment_value == "other", key.segment_value


def segments(state: MetricsState, series: dict[SeriesKey, Row], version: str, newest: Row | None) -> dict[str, Any]:
    """The segments' rows of the newest live window (a segment without labels in it has none). A segment
    is flagged when its accuracy's whole interval lies below the accuracy over all segments."""
    if newest is None:
        return {"window": None, "rows": []}
    start, overall = newest["window_start"], newest["accuracy"]
    keys = sorted(
        (key for key in series if key.view == LIVE and key.model_version == version and key.segment_key != ALL),
        key=_segment_order,
    )
    rows = []
    for key in keys:
        row = series[key] if series[key]["window_start"] == start else _at(state.history(key), start)
        if row is None:
            continue
        high = row["accuracy_ci_high"]
        rows.append(
            {
                "segment_key": key.segment_key,
                "segment_value": key.segment_value,
                "below": overall is not None and high is not None and high < overall,
                **{name: cell(name, row[name], waiting=not row["n_labelled"]) for name in SEGMENT_COLUMNS},
            }
        )
    return {"window": _window(newest), "rows": rows}


def _at(history: Sequence[Row], start: str) -> Row | None:
    return next((row for row in history if row["window_start"] == start), None)


# ---------------------------------------------------------------------------------------------------------
# Champion vs challenger


def comparison(series: dict[SeriesKey, Row]) -> list[dict[str, Any]]:
    """The newest comparison row of each challenger, over all segments."""
    rows = [row for key, row in sorted(series.items()) if key.view == COMPARISON and key.segment_key == ALL]
    return [_compared(row) for row in rows]


def _compared(row: Row) -> dict[str, Any]:
    waiting = not row["n_labelled"]
    shown = {
        name: cell(name, row[name], waiting=waiting)
        for name in ("n_labelled", *DIFFS, "mcnemar_b", "mcnemar_c", "mcnemar_pvalue")
    }
    return {
        "challenger": row["model_version"],
        "champion": row["compared_to"],
        "window": _window(row),
        "significant": row["significant"],
        "verdict": verdict(row),
        **shown,
    }


def verdict(row: Row) -> str:
    challenger, champion, p = row["model_version"], row["compared_to"] or "the champion", row["mcnemar_pvalue"]
    if not row["n_labelled"]:
        return text.WAITING
    if p is None:
        return "no transaction yet that only one of them got right"
    test = f"McNemar p {text.pvalue(p) if p < 0.001 else '= ' + text.pvalue(p)}"
    if not row["significant"]:
        return f"no significant difference ({test})"
    better = (row["accuracy_diff"] or 0) > 0
    return f"{challenger} is {'more' if better else 'less'} accurate than {champion} ({test})"
