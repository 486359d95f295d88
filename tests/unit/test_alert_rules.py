"""Alert rules: promtool accepts them, every alert has a promtool test that makes it fire,
the labels Alertmanager routes on, and a runbook.

Covers every monitoring/rules/*.yml, the generated slo.rules.yml included. promtool
ships with the prometheus Debian package, which the stack needs anyway: its absence is
a failure, not a skip.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ocean.config import REPO_ROOT
from ocean.validate.core import program as _tool
from ocean.validate.rule_checks import promtool_rule_errors

RULES_DIR = REPO_ROOT / "monitoring" / "rules"
TESTS_DIR = RULES_DIR / "tests"
RUNBOOKS_DIR = REPO_ROOT / "docs" / "runbooks"

SEVERITIES = {"critical", "warning", "info"}
TEAMS = {"shop", "platform", "database", "business"}
# Alertmanager's inhibitions and the e2e acceptance refer to these by name.
CONTRACT = {
    "RedisReplicaDown": "cache.rules.yml",
    "RedisDown": "cache.rules.yml",
    "ShopInstanceDown": "application.rules.yml",
    "TargetDown": "infrastructure.rules.yml",
    "Watchdog": "infrastructure.rules.yml",
}
# The tasks a runbook can tell the reader to run.
TASK = re.compile(r"\./ocean (status|logs|restart)|invoke [a-z-]+")


def promtool() -> str:
    path = _tool("promtool")
    if path is None:
        pytest.fail("promtool is missing: apt-get install -y prometheus (it ships promtool)")
    return path


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def rule_test_files() -> list[Path]:
    return sorted(TESTS_DIR.glob("*.yml"))


def alerts() -> dict[str, tuple[Path, dict]]:
    found: dict[str, tuple[Path, dict]] = {}
    for path in rule_files():
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups") or []:
            for rule in group.get("rules") or []:
                if "alert" in rule:
                    name = rule["alert"]
                    assert name not in found, f"{name}: in {found[name][0].name} and {path.name}"
                    found[name] = (path, rule)
    return found


def alerts_under_test() -> dict[str, bool]:
    """alertname → whether some test expects it to fire (not only to stay quiet)."""
    seen: dict[str, bool] = {}
    for path in rule_test_files():
        for case in (yaml.safe_load(path.read_text()) or {}).get("tests") or []:
            for check in case.get("alert_rule_test") or []:
                name = check["alertname"]
                seen[name] = seen.get(name, False) or bool(check.get("exp_alerts"))
    return seen


ALERTS = alerts()


def test_rule_files_exist() -> None:
    names = {path.name for path in rule_files()}
    for name in ("application", "infrastructure", "database", "cache", "business", "backups"):
        assert f"{name}.rules.yml" in names
        assert (TESTS_DIR / f"{name}.rules.test.yml").is_file()


@pytest.mark.parametrize("path", rule_files(), ids=lambda p: p.name)
def test_promtool_check_rules(path: Path) -> None:
    assert promtool_rule_errors(promtool(), path) == []


# `promtool test rules` on every tests/*.yml (≈ 10 s): the `promtool-test-rules` check of
# `invoke validate`, run by tests/unit/test_validate.py::test_the_repo_as_shipped_is_clean.


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_alert_has_a_firing_test(name: str) -> None:
    tested = alerts_under_test()
    assert name in tested, f"{name}: no alert_rule_test in monitoring/rules/tests/*.yml"
    assert tested[name], f"{name}: tested only for staying quiet, never for firing"


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_alert_labels_and_annotations(name: str) -> None:
    path, rule = ALERTS[name]
    labels = rule.get("labels") or {}
    annotations = rule.get("annotations") or {}
    assert labels.get("severity") in SEVERITIES, f"{name} ({path.name}): severity"
    assert labels.get("team") in TEAMS, f"{name} ({path.name}): team"
    for key in ("summary", "description", "runbook_url"):
        assert str(annotations.get(key) or "").strip(), f"{name} ({path.name}): no {key}"
    url = annotations["runbook_url"]
    assert url == f"docs/runbooks/{name}.md", f"{name}: runbook_url {url}"
    assert (REPO_ROOT / url).is_file(), f"{name}: {url} does not exist"


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_runbook_names_tasks(name: str) -> None:
    runbook = RUNBOOKS_DIR / f"{name}.md"
    assert runbook.is_file(), f"{name}: no {runbook.relative_to(REPO_ROOT)}"
    text = runbook.read_text()
    # A generated runbook may open with a comment: the first heading names the alert.
    title = re.search(r"^# (.+)$", text, re.M)
    assert title and title.group(1).strip() == name, f"{runbook.name}: title is not {name}"
    assert TASK.search(text), f"{runbook.name}: names no task (./ocean …, invoke …)"


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_contract_alerts(name: str) -> None:
    assert name in ALERTS, f"{name} is referenced by inhibitions / the e2e acceptance"
    assert ALERTS[name][0].name == CONTRACT[name]


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * units[u] for n, u in parts)


def test_redis_replica_down_is_fast_enough_for_the_e2e() -> None:
    """Stop the replica → Alertmanager and the webhook within 60 s (1 s scrape/eval)."""
    _, rule = ALERTS["RedisReplicaDown"]
    assert rule["labels"]["severity"] == "critical"
    assert rule["labels"]["team"] == "platform"
    assert seconds(str(rule.get("for", "0s"))) <= 20
