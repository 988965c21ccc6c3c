"""What `modelmon watch` and the demo print: columns per view, filters, cohort throttling, header lines; and
the demo's effective config. Hand-made rows of the metrics topic, no Kafka."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from modelmon.cli import cli
from modelmon.config import CohortConfig, Config, DriftConfig, PathsConfig, WindowsConfig
from modelmon.demo import DEMO_HORIZON, demo_config, intro, parse_horizon
from modelmon.reference import read_reference_scores
from modelmon.watch import (
    CohortThrottle,
    MetricsDisplay,
    RowFilter,
    format_header,
    format_pvalue,
    format_row,
    format_seconds,
    format_window,
    revisions_per_window,
)

START = "2026-05-04T12:03:00.000Z"


def row(view: str, **values: Any) -> dict[str, Any]:
    """A metrics row as the topic holds it: every column null unless given."""
    base: dict[str, Any] = dict.fromkeys(
        [
            "n_predictions", "n_labelled", "label_coverage", "throughput_per_s", "mean_score", "accuracy",
            "precision", "recall", "f1", "roc_auc", "ece", "label_latency_p50_s", "psi", "ks_pvalue",
            "estimated_accuracy", "estimated_precision", "estimated_recall", "compared_to", "mcnemar_pvalue",
            "significant", "accuracy_diff", "recall_diff", "f1_diff",
        ]
    )  # fmt: skip
    base.update(
        view=view,
        window_start=START,
        window_end="2026-05-04T12:04:00.000Z",
        model_version="v1",
        segment_key="*",
        segment_value="*",
        revision=0,
        is_final=True,
    )
    base.update(values)
    return base


LIVE = row(
    "live",
    n_predictions=150,
    n_labelled=150,
    accuracy=0.95123,
    precision=0.61234,
    recall=0.734,
    f1=0.6667,
    roc_auc=0.9123,
    ece=0.0213,
    label_latency_p50_s=245.2,
)
UNLABELLED = row(
    "unlabelled",
    n_predictions=3000,
    throughput_per_s=50.0,
    mean_score=0.1234,
    psi=0.0123,
    ks_pvalue=0.00001,
    estimated_accuracy=0.951,
    estimated_precision=0.6,
    estimated_recall=0.7,
)
COHORT = row(
    "cohort",
    revision=12,
    is_final=False,
    n_predictions=3000,
    n_labelled=1237,
    label_coverage=0.41233,
    accuracy=0.95,
    precision=0.6,
    recall=0.7,
    roc_auc=0.91,
)
COMPARISON = row(
    "comparison",
    model_version="v2",
    compared_to="v1",
    n_predictions=2900,
    n_labelled=2900,
    accuracy_diff=0.012,
    recall_diff=-0.0344,
    f1_diff=0.005,
    mcnemar_pvalue=0.0123,
    significant=True,
)

# ---------------------------------------------------------------------------------------------------------
# One line per row, columns per view


def test_live_row_and_header() -> None:
    assert format_header("live", date="2026-05-04") == (
        "live       window model    labelled accuracy precision recall     f1 roc_auc    ece latency_p50"
        "  (by label arrival; UTC 2026-05-04)"
    )
    assert format_row(LIVE) == (
        "live       12:03  v1            150    0.951     0.612  0.734  0.667   0.912  0.021       4m05s"
    )


def test_unlabelled_row_and_header() -> None:
    assert format_header("unlabelled", date="2026-05-04") == (
        "unlabelled window model    predictions   per_s mean_score    psi ks_pvalue est_accuracy est_precision "
        "est_recall  (by prediction time, no labels needed; UTC 2026-05-04)"
    )
    assert format_row(UNLABELLED) == (
        "unlabelled 12:03  v1              3000    50.0      0.123  0.012    <0.001        0.951         0.600"
        "      0.700"
    )


def test_cohort_rows_provisional_and_final() -> None:
    assert format_header("cohort", date="2026-05-04") == (
        "cohort     window model    revision predictions coverage accuracy precision recall roc_auc"
        "  (by prediction time, as labels arrive; UTC 2026-05-04)"
    )
    assert format_row(COHORT) == (
        "cohort     12:03  v1             12        3000    41.2%    0.950     0.600  0.700   0.910"
    )
    final = dict(COHORT, revision=2161, is_final=True, label_coverage=1.0)
    assert format_row(final) == (
        "cohort     12:03  v1          final        3000   100.0%    0.950     0.600  0.700   0.910"
    )


def test_comparison_row_marks_significance() -> None:
    assert format_header("comparison", date="2026-05-04") == (
        "comparison window challenger         paired accuracy_diff recall_diff f1_diff mcnemar_p"
        "  (challenger vs champion, by label arrival; UTC 2026-05-04)"
    )
    assert format_row(COMPARISON) == (
        "comparison 12:03  v2 vs v1             2900        +0.012      -0.034  +0.005    0.012*"
    )
    not_significant = dict(COMPARISON, mcnemar_pvalue=0.3, significant=False)
    assert format_row(not_significant).endswith("+0.005    0.300")


def test_undefined_values_show_as_dashes_in_every_view() -> None:
    lines = {
        view: format_row(row(view, model_version="*", compared_to="v1" if view == "comparison" else None))
        for view in ("live", "unlabelled", "cohort", "comparison")
    }
    assert (
        lines["live"]
        == "live       12:03  *               -        -         -      -      -       -      -           -"
    )
    assert lines["unlabelled"].split()[3:] == ["-"] * 8
    assert lines["cohort"].split()[3:] == ["final"] + ["-"] * 6
    assert lines["comparison"].split()[2:] == ["*", "vs", "v1"] + ["-"] * 5
    # NaN, should a foreign row hold one, is undefined as well
    assert format_row(dict(LIVE, accuracy=float("nan"))).split()[4] == "-"


def test_columns_stay_aligned_under_the_header() -> None:
    for sample in (LIVE, UNLABELLED, COHORT, COMPARISON):
        header = format_header(sample["view"], date="2026-05-04")
        line = format_row(sample)
        assert len(line) <= len(header.split("  (")[0])
        # every number ends where its title ends
        for title in header.split("  (")[0].split()[3:]:
            end = header.index(f" {title}") + 1 + len(title)
            assert line[end - 1] != " " and (end == len(line) or line[end] == " "), (title, line)


def test_segment_column_when_segments_are_shown() -> None:
    header = format_header("live", segments=True)
    assert header.split()[:5] == ["live", "window", "model", "segment", "labelled"]
    by_country = dict(LIVE, segment_key="country", segment_value="US")
    assert format_row(by_country, segments=True).split()[:5] == ["live", "12:03", "v1", "country=US", "150"]
    assert format_row(LIVE, segments=True).split()[3] == "*"


def test_small_formats() -> None:
    assert format_pvalue(None) == "-"
    assert format_pvalue(0.0004) == "<0.001"
    assert format_pvalue(0.0456) == "0.046"
    assert format_pvalue(1.0) == "1.000"
    durations = [format_seconds(s) for s in (None, 4.4, 59.6, 245, 3600, 3725)]
    assert durations == ["-", "4s", "1m00s", "4m05s", "1h00m", "1h02m"]
    assert format_window(START) == "12:03"
    assert format_window("2026-05-04T12:03:30.000Z", seconds=True) == "12:03:30"
    assert format_window("not a time") == "not a time"
    assert format_window(None) == "-"


def test_a_view_it_does_not_know_still_prints_its_key() -> None:
    assert format_row(row("someday", model_version="v9")).split() == ["someday", "12:03", "v9"]


# ---------------------------------------------------------------------------------------------------------
# Filters


def test_default_filter_shows_every_view_and_model_but_only_all_segments() -> None:
    accepts = RowFilter.of().accepts
    assert all(accepts(sample) for sample in (LIVE, UNLABELLED, COHORT, COMPARISON))
    assert accepts(dict(LIVE, model_version="*"))
    assert not accepts(dict(LIVE, segment_key="country", segment_value="US"))
    assert RowFilter.of(segments=True).accepts(dict(LIVE, segment_key="country", segment_value="US"))


def test_filter_by_view_and_model() -> None:
    only_live = RowFilter.of(["live"])
    assert only_live.accepts(LIVE) and not only_live.accepts(COHORT)
    v1 = RowFilter.of(models=["v1"])
    assert v1.accepts(LIVE)
    assert not v1.accepts(dict(LIVE, model_version="v2"))
    assert not v1.accepts(dict(LIVE, model_version="*"))
    assert v1.accepts(COMPARISON)  # v2 against the champion v1
    assert not RowFilter.of(models=["v3"]).accepts(COMPARISON)
    assert RowFilter.of(models=["*"]).accepts(dict(LIVE, model_version="*"))


# ---------------------------------------------------------------------------------------------------------
# Cohort throttling


def cohort(revision: int, *, final: bool = False, **values: Any) -> dict[str, Any]:
    return dict(COHORT, revision=revision, is_final=final, **values)


def test_revisions_per_window_from_the_config() -> None:
    assert revisions_per_window(Config()) == 1  # 1 min windows, 1 min revisions
    assert revisions_per_window(Config(cohort=CohortConfig(revision_interval="10s"))) == 6
    assert revisions_per_window(Config(windows=WindowsConfig(size="30s"))) == 1  # the interval follows the window


def test_provisional_rows_pass_at_each_new_multiple_and_the_final_row_always() -> None:
    throttle = CohortThrottle(every=6)
    # revisions are only written for intervals that received something, so some numbers are skipped
    passed = [r for r in (1, 2, 3, 5, 6, 7, 9, 11, 14, 17, 18, 25, 26) if throttle.admit(cohort(r))]
    assert passed == [6, 14, 18, 25]
    assert throttle.admit(cohort(360, final=True))
    # after the final row, nothing more of this cohort; not even a repeat of the final row
    assert not throttle.admit(cohort(31))
    assert not throttle.admit(cohort(360, final=True))


def test_stale_provisional_rows_are_dropped() -> None:
    throttle = CohortThrottle(every=6)
    assert throttle.admit(cohort(12))
    assert not throttle.admit(cohort(12))  # repeated
    assert not throttle.admit(cohort(8))  # older than one already seen
    assert not throttle.admit(cohort(13))
    assert throttle.admit(cohort(19))


def test_final_row_before_late_provisional_rows() -> None:
    # final and provisional rows come from different operators, in no fixed order
    throttle = CohortThrottle(every=6)
    assert throttle.admit(cohort(360, final=True))
    assert not throttle.admit(cohort(48))


def test_throttle_is_per_cohort_key_and_leaves_other_views_alone() -> None:
    throttle = CohortThrottle(every=6)
    assert throttle.admit(cohort(6))
    assert throttle.admit(cohort(6, model_version="v2"))
    assert throttle.admit(cohort(6, segment_key="country", segment_value="US"))
    assert throttle.admit(cohort(6, window_start="2026-05-04T12:04:00.000Z"))
    assert not throttle.admit(cohort(7))
    for sample in (LIVE, LIVE, UNLABELLED, COMPARISON):
        assert throttle.admit(sample)


def test_every_revision_passes_when_a_revision_is_a_window() -> None:
    throttle = CohortThrottle(every=1)
    assert [throttle.admit(cohort(r)) for r in (1, 2, 4)] == [True, True, True]


def test_throttle_forgets_cohorts_past_their_horizon() -> None:
    cfg = Config()
    throttle = CohortThrottle.for_config(cfg)
    assert throttle.retention is not None and throttle.retention > 2 * cfg.join.label_horizon
    throttle = CohortThrottle(every=6, retention=timedelta(hours=1))
    assert throttle.admit(cohort(6))
    assert throttle.admit(cohort(6, window_start="2026-05-04T12:30:00.000Z"))
    assert len(throttle) == 2
    assert throttle.admit(cohort(6, window_start="2026-05-04T13:30:00.000Z"))
    assert len(throttle) == 2  # 12:03 is more than an hour before 13:30


# ---------------------------------------------------------------------------------------------------------
# The display: filter, throttle, header lines


def shown(display: MetricsDisplay, rows: list[dict[str, Any]]) -> list[str]:
    return [line for sample in rows for line in display.lines(sample)]


def test_header_whenever_the_view_changes() -> None:
    display = MetricsDisplay.for_config(Config())
    lines = shown(display, [LIVE, dict(LIVE, model_version="v2"), UNLABELLED, LIVE, COMPARISON])
    assert [line.split()[:2] for line in lines] == [
        ["live", "window"],
        ["live", "12:03"],
        ["live", "12:03"],
        ["unlabelled", "window"],
        ["unlabelled", "12:03"],
        ["live", "window"],
        ["live", "12:03"],
        ["comparison", "window"],
        ["comparison", "12:03"],
    ]


def test_header_every_twenty_lines_and_when_the_date_changes() -> None:
    display = MetricsDisplay.for_config(Config())
    lines = shown(display, [dict(LIVE, model_version=f"m{i}") for i in range(45)])
    headers = [i for i, line in enumerate(lines) if line.split()[1] == "window"]
    assert headers == [0, 21, 42]
    assert len(lines) == 48
    next_day = dict(LIVE, window_start="2026-05-05T00:00:00.000Z")
    assert shown(display, [next_day])[0].endswith("UTC 2026-05-05)")


def test_filtered_and_throttled_rows_print_nothing_and_keep_the_header() -> None:
    display = MetricsDisplay.for_config(Config(cohort=CohortConfig(revision_interval="10s")), views=["cohort", "live"])
    assert shown(display, [UNLABELLED, dict(LIVE, segment_key="country", segment_value="US")]) == []
    assert len(shown(display, [cohort(6)])) == 2
    assert shown(display, [cohort(7), cohort(8), UNLABELLED]) == []
    assert shown(display, [cohort(12)]) == [format_row(cohort(12))]
    assert shown(display, [cohort(300, final=True)]) == [format_row(cohort(300, final=True))]


def test_display_for_config_options() -> None:
    display = MetricsDisplay.for_config(Config(), views=["live"], models=["v2"], segments=True)
    by_country = dict(LIVE, model_version="v2", segment_key="country", segment_value="US")
    assert shown(display, [LIVE, by_country])[1].split()[:4] == ["live", "12:03", "v2", "country=US"]
    seconds = MetricsDisplay.for_config(Config(windows=WindowsConfig(size="30s")))
    assert shown(seconds, [dict(LIVE, window_start="2026-05-04T12:03:30.000Z")])[1].split()[1] == "12:03:30"


# ---------------------------------------------------------------------------------------------------------
# The commands


def test_watch_help_names_the_filters_and_the_throttling() -> None:
    result = CliRunner().invoke(cli, ["watch", "--help"])
    assert result.exit_code == 0, result.output
    for text in ("--view", "--model", "--segments", "--from-beginning", "comparison", "revision_interval"):
        assert text in result.output
    assert CliRunner().invoke(cli, ["watch", "--view", "nonsense"]).exit_code == 2


def test_watch_passes_its_options_on(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr("modelmon.watch.watch_metrics", lambda cfg, **kwargs: seen.update(kwargs))
    args = ["watch", "--view", "live", "--view", "cohort", "--model", "v2", "--segments"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert seen["views"] == ("live", "cohort") and seen["models"] == ("v2",) and seen["segments"] is True
    assert seen["from_beginning"] is False


def test_demo_help_and_horizon(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(cli, ["demo", "--help"])
    assert result.exit_code == 0 and "--horizon" in result.output and "12min" in result.output
    seen: dict[str, Any] = {}
    monkeypatch.setattr("modelmon.demo.run_demo", lambda cfg, **kwargs: seen.update(kwargs))
    assert CliRunner().invoke(cli, ["demo", "--horizon", "20min"]).exit_code == 0
    assert seen["horizon"] == timedelta(minutes=20)
    assert CliRunner().invoke(cli, ["demo"]).exit_code == 0
    assert seen["horizon"] == DEMO_HORIZON == timedelta(minutes=12)
    bad = CliRunner().invoke(cli, ["demo", "--horizon", "soon"])
    assert bad.exit_code == 2 and "--horizon" in bad.output


def test_parse_horizon() -> None:
    assert parse_horizon("12min") == timedelta(minutes=12)
    assert parse_horizon("1h") == timedelta(hours=1)
    for bad in ("soon", "0s"):
        with pytest.raises(ValueError):
            parse_horizon(bad)


def test_demo_config_writes_a_reference_and_shortens_the_horizon(tmp_path: Path) -> None:
    cfg = Config(paths=PathsConfig(data_dir=tmp_path))
    effective, notes = demo_config(cfg, horizon=timedelta(minutes=12))
    assert effective.join.label_horizon == timedelta(minutes=12)
    assert effective.join.max_label_skew == cfg.join.max_label_skew
    reference = effective.drift.reference_file
    assert reference is not None and reference.parent == tmp_path.resolve()
    assert len(list(read_reference_scores(reference))) == 20_000 * len(cfg.simulator.model_versions)
    assert effective.model_dump(exclude={"join", "drift"}) == cfg.model_dump(exclude={"join", "drift"})
    assert cfg.join.label_horizon == timedelta(hours=6) and cfg.drift.reference_file is None  # untouched
    assert any("12min" in note and "13min" in note for note in notes)
    assert not any("not joined" in note for note in notes)  # the simulator's labels come up to 10 min late
    _, short = demo_config(cfg, horizon=timedelta(minutes=5))
    assert any("labels later than 5min are not joined" in note for note in short)
    text = intro(effective)
    assert "unlabelled" in text and "comparison" in text and "13min" in text


def test_demo_config_keeps_the_users_reference(tmp_path: Path) -> None:
    own = tmp_path / "mine.txt"
    cfg = Config(paths=PathsConfig(data_dir=tmp_path / "data"), drift=DriftConfig(reference_file=own))
    effective, notes = demo_config(cfg, horizon=timedelta(minutes=30))
    assert effective.drift.reference_file == own
    assert not (tmp_path / "data").exists()
    assert len(notes) == 1 and "30min" in notes[0]
