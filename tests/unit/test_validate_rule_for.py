"""Rule sanity (issue 21, class 3): an alerting rule's ``for:`` against its range windows
and the evaluation interval (ocean.validate.rule_sanity, check ``rule-for``). Each
breakage is made in a copy of the repo; rules generated from the shipped
monitoring/slo.yaml give no finding.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocean import slo
from ocean.config import REPO_ROOT
from ocean.validate import alert_rules, rule_sanity
from ocean.validate.alert_rules import Rule, duration_seconds

COPIED = ("monitoring", "docs/runbooks", "stack", "testing")
SLO_RULES = "monitoring/rules/slo.rules.yml"
APP_RULES = "monitoring/rules/application.rules.yml"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for rel in COPIED:
        shutil.copytree(REPO_ROOT / rel, tmp_path / rel)
    return tmp_path


def line_of(path: Path, needle: str, after: str = "") -> int:
    lines = path.read_text().splitlines()
    start = next(n for n, line in enumerate(lines) if after in line) if after else 0
    return next(n for n, line in enumerate(lines[start:], start + 1) if needle in line)


def regenerate(root: Path) -> None:
    slo.write(root=root, slos=slo.load(root / "monitoring/slo.yaml", root=root))


def test_the_shipped_rules_and_the_generated_ones_pass(repo: Path):
    assert rule_sanity.rule_for(REPO_ROOT) == []
    regenerate(repo)  # what the generator writes from the shipped slo.yaml
    assert rule_sanity.rule_for(repo) == []


def test_a_fast_burn_alert_with_for_2h_is_refused_by_the_generator(repo: Path):
    path = repo / "monitoring/slo.yaml"
    text = path.read_text()
    fast = "factor: 14.4           # 2% of a 30-day budget in 1 hour\n    for: 2m"
    assert fast in text
    path.write_text(text.replace(fast, fast.replace("for: 2m", "for: 2h")))
    with pytest.raises(slo.SLOError, match=r"burn_rate_alerts\[0\]\.for: must not exceed short"):
        slo.load(path, root=repo)


def test_generated_rules_with_a_bad_for_name_its_source_in_slo_yaml(repo: Path):
    # Files a generator without that guard wrote (the promtool tests follow it): the
    # check names the for: in slo.yaml, where the fix goes.
    path = repo / "monitoring/slo.yaml"
    slos = slo.load(path, root=repo)
    fast = dataclasses.replace(slos.burn_rate_alerts[0], for_="2h")
    slos = dataclasses.replace(slos, burn_rate_alerts=(fast, *slos.burn_rate_alerts[1:]))
    text = path.read_text()
    marker = "factor: 14.4           # 2% of a 30-day budget in 1 hour\n    for: 2m"
    path.write_text(text.replace(marker, marker.replace("for: 2m", "for: 2h")))
    slo.write(root=repo, slos=slos)
    (found,) = rule_sanity.rule_for(repo)
    assert (found.severity, found.file) == ("error", "monitoring/slo.yaml")
    assert found.line == line_of(path, "for: 2h")
    assert "ShopAvailabilityBudgetBurnFast, ShopLatencyBudgetBurnFast" in found.message
    assert "shortest window (5m of 1h/5m)" in found.message
    assert "for: 5m or less" in found.hint and "python -m ocean.slo generate" in found.hint


def test_a_hand_edited_generated_rule_is_caught_in_the_rule_file(repo: Path):
    path = repo / SLO_RULES
    text = path.read_text()
    anchor = "- alert: ShopAvailabilityBudgetBurnSlow"
    head, tail = text.split(anchor)
    path.write_text(head + anchor + tail.replace("for: 15m", "for: 3h", 1))
    (found,) = rule_sanity.rule_for(repo)
    assert (found.severity, found.file) == ("error", SLO_RULES)
    assert found.line == line_of(path, "for: 3h", after=anchor)
    assert found.message.startswith("ShopAvailabilityBudgetBurnSlow: for: 3h")
    assert "(30m of 6h/30m)" in found.message


def test_a_for_shorter_than_the_group_interval_is_a_warning(repo: Path):
    path = repo / APP_RULES
    text = path.read_text()
    path.write_text(
        text.replace("  - name: application\n", "  - name: application\n    interval: 1m\n", 1)
    )
    found = rule_sanity.rule_for(repo)
    assert {f.severity for f in found} == {"warning"}
    endpoint = next(f for f in found if f.message.startswith("ShopEndpointDown"))
    assert endpoint.file == APP_RULES
    assert endpoint.line == line_of(path, "for: 30s", after="- alert: ShopEndpointDown")
    assert "evaluation interval (1m, group 'application')" in endpoint.message
    assert "for: 1m" in endpoint.hint


def test_a_single_window_rule_may_ask_for_a_long_condition(repo: Path):
    # rate(…[5m]) for: 1h30m: a sustained condition, not a detection delay; no finding.
    path = repo / APP_RULES
    text = path.read_text()
    assert "    for: 2m\n" in text
    path.write_text(text.replace("    for: 2m\n", "    for: 1h30m\n", 1))
    assert rule_sanity.rule_for(repo) == []


def _rule(name: str, expr: str, for_: str | None = None, record: bool = False) -> Rule:
    return Rule("f.yml", 1, "g", None, name, not record, expr, for_)


def test_windows_come_through_recording_rules():
    rules = [
        _rule("r:ratio_rate5m", "sum(rate(x[5m])) / sum(rate(y[5m]))", record=True),
        _rule("r:ratio_rate1h", "sum(rate(x[1h])) / sum(rate(y[1h]))", record=True),
        _rule("Burn", "r:ratio_rate1h > 0.1 and r:ratio_rate5m > 0.1", "10m"),
        _rule("Sub", "max_over_time(z[30m:1m]) > 1 and rate(z[2h]) > 0", "1h"),
        _rule("Loop", "loop:x > 1", "1h"),
        _rule("loop:x", "loop:x + rate(q[1m])", record=True),
    ]
    recorded = {r.name: r for r in rules if not r.is_alert}
    assert rule_sanity.windows(rules[2], recorded) == {300.0, 3600.0}
    assert rule_sanity.windows(rules[4], recorded) == {60.0}  # a cycle ends
    found = rule_sanity.for_problems(rules, 1.0)
    assert [(r.name, severity) for r, severity, _, _ in found] == [
        ("Burn", "error"),
        ("Sub", "error"),
    ]
    assert (
        rule_sanity.for_problems([_rule("Zero", "rate(x[5m]) > 0 and rate(x[1h]) > 0", "0s")], 60)
        == []
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5m", 300),
        ("1h30m", 5400),
        ("0s", 0),
        ("500ms", 0.5),
        ("1w", 604800),
        ("1x", None),
        ("", None),
        (5, None),
    ],
)
def test_prometheus_durations(text, seconds):
    assert duration_seconds(text) == seconds


# -- never a crash: arbitrary rule files ------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from(["", "5m", "0s", "1x", "{{ $labels.x }}", "rate(x[5m:1m]) and y[1h]", "]["]),
    st.text(max_size=8),
)
KEYS = st.sampled_from(
    ["groups", "name", "interval", "rules", "alert", "record", "expr", "for", "labels"]
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=1000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(DOCUMENTS, st.sampled_from([None, 1.0, 60.0]))
def test_no_rule_file_crashes_the_for_check(doc, interval):
    text = yaml.dump(doc, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper))
    rules = alert_rules._rules_of("f.yml", yaml.compose(text), yaml.safe_load(text))
    rule_sanity.for_problems(rules, interval)
