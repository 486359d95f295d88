"""The views both front ends render (ocean/views, ocean.durations.age): what they say for
the cases the tasks' pinned output (test_task_output.py) does not reach."""

from __future__ import annotations

import pytest

from ocean.durations import age
from ocean.model import Finding
from ocean.views import deploy, loadtest, validation


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "-"),
        (0, "0s"),
        (59.4, "59s"),
        (60, "1m"),
        (119, "2m"),
        (5399, "1h"),
        (3600, "1h"),
        (86400 * 3, "3d"),
    ],
)
def test_age_is_the_largest_whole_unit(seconds, shown):
    assert age(seconds) == shown


def _finding(severity: str) -> Finding:
    return Finding("c", "k", severity, "f.yml", 1, "m")


def test_validation_counts_and_fails_on_errors_or_strict_warnings():
    warned = validation.Validation([_finding("warning")], 1.234)
    assert (warned.errors, warned.warnings) == (0, 1)
    assert not warned.failed() and warned.failed(strict=True)
    assert warned.summary() == "0 error(s), 1 warning(s) in 1.2s"
    assert warned.as_dict()["ok"] and not warned.as_dict(strict=True)["ok"]
    broken = validation.Validation([_finding("error"), _finding("warning")], 0.0)
    assert broken.failed() and [validation.tone(f) for f in broken.findings] == ["bad", "warn"]


def _report(**changes) -> dict:
    colors = {
        "blue": {"live": True, "ready": True, "label": "v2", "build": "b2", "version": "2"},
        "green": {"live": False, "ready": False, "label": "v1", "build": "b1", "version": "1"},
    }
    report = {"live": "blue", "colors": colors, "open": None, "running": None}
    return {**report, "unsettled": None, "history": [], **changes}


def test_deploy_status_says_what_runs_what_is_open_and_what_is_unsettled():
    view = deploy.render(
        _report(
            open={"color": "green", "step": "warm-up"},
            running="a deploy of green runs (pid 7)",
            unsettled="the stack is down",
        )
    )
    assert view.open_deploy == "open deploy of green: at warm-up"
    assert view.notices == ["a deploy of green runs (pid 7)", "the stack is down"]
    assert [(r.color, r.live, r.ready, r.version) for r in view.colors] == [
        ("blue", True, True, "v2"),
        ("green", False, False, "v1"),
    ]
    paused = deploy.render(_report(open={"color": "green", "paused": True, "step": "preview"}))
    assert paused.open_deploy == "open deploy of green: awaits promotion"
    assert deploy.render(_report()).open_deploy is None


def test_deploy_history_is_newest_first_and_tolerates_missing_fields():
    view = deploy.render(
        _report(history=[{"color": "green", "outcome": "success"}, {"outcome": "failed"}])
    )
    assert [(h.outcome, h.succeeded) for h in view.history] == [
        ("failed", False),
        ("success", True),
    ]
    assert view.history[1].took == "0.0s" and view.history[0].version == ""


def test_a_comparison_weighs_nothing_itself_and_says_what_weakens_it():
    report = {
        "rows": [
            {"metric": "rps", "base": 1234.5, "run": 1000.0, "change": -0.19, "regression": False},
            {"metric": "db p95 ms", "base": None, "run": 3.0, "change": None, "regression": False},
            {"metric": "p99 ms", "base": 10.0, "run": 30.0, "change": 2.0, "regression": True},
        ],
        "regressions": ["p99 ms"],
        "tolerance": 0.2,
        "differs": ["vus"],
        "load_generator_limited": ["a"],
        "machine_limited": [],
    }
    shown = loadtest.comparison(report)
    assert [(r.base, r.run, r.change) for r in shown.rows] == [
        ("1,234", "1,000", "-19%"),
        ("-", "3", "-"),
        ("10", "30", "+200%"),
    ]
    assert shown.regressions == ["p99 ms"]  # the report's, not re-judged here
    assert shown.summary == "1 regression(s) beyond 20%: p99 ms"
    assert shown.notes[0] == "runs differ in: vus"
    assert shown.notes[1].startswith("a was limited by the load generator")
    assert len(shown.notes) == 2


def test_verdict_rows_word_each_outcome_and_keep_the_excuse():
    verdicts = [
        {"slo": "latency", "source": "client", "limit": "<", "measured": "1", "passed": False,
         "excused": "k6 starved"},
        {"slo": "latency", "source": "server", "limit": "<", "measured": "-", "passed": None},
    ]  # fmt: skip
    rows = loadtest.verdict_rows(verdicts)  # saved before outcomes were stored: derived
    assert [(r.word, r.excused, r.tone) for r in rows] == [
        ("inconclusive", "k6 starved", "warn"),
        ("n/a", "", "muted"),
    ]
