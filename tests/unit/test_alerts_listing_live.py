"""`invoke alerts` end to end: a real Prometheus evaluates rules and sends what fires to a
real Alertmanager (both Debian's binaries, the stack's rendered configs and command
lines, two light processes); the listing shows pending and firing alerts, where each
went, and which one inhibits which.

The rules are this test's own (expr ``vector(1)``), with the names and labels of real
alerting rules, so that they fire at once instead of waiting for a real fault.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator

import pytest
import yaml

from ocean.config import REPO_ROOT
from ocean.freeze import rule_labels
from ocean.runtime.local import LocalRuntime
from tests.alerting_support import rendered_runtime, with_inbox
from tests.helpers import cli

pytestmark = pytest.mark.skipif(
    not (shutil.which("prometheus") and shutil.which("prometheus-alertmanager")),
    reason="prometheus or prometheus-alertmanager missing",
)
RULES = rule_labels(REPO_ROOT)


def _rule(name: str, wait: str, **labels: str) -> dict:
    return {
        "alert": name,
        "expr": "vector(1)",
        "for": wait,
        "labels": {**RULES[name], **labels},
        "annotations": {"summary": f"{name} (test)"},
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    runtime = rendered_runtime(tmp_path_factory.mktemp("listing"))
    rules = runtime.settings.etc / "rules"
    for committed in rules.glob("*.rules.yml"):
        committed.unlink()
    group = {
        "name": "listing-test",
        "rules": [
            _rule("RedisDown", "0s", instance="cache:6379"),
            _rule("RedisReplicationLag", "0s", instance="cache:6379"),
            _rule("ShopOrderVolumeLow", "1h"),  # pending for the whole test
        ],
    }
    (rules / "test.rules.yml").write_text(yaml.safe_dump({"groups": [group]}))
    # Prometheus evaluates before it has discovered Alertmanager, so its first send goes
    # nowhere and the next comes after the resend delay (1m by default): 2s here.
    with with_inbox(runtime, "--rules.alert.resend-delay=2s"):
        yield runtime


def test_pending_and_firing_alerts_with_routes_receivers_and_inhibition(stack: LocalRuntime):
    deadline = time.monotonic() + 60
    while True:  # until Prometheus evaluated and Alertmanager inhibited
        result = cli(stack, "alerts", "--json")
        report = json.loads(result.stdout) if result.stdout else {}
        rows = {r["name"]: r for r in report.get("alerts", [])}
        lag = rows.get("RedisReplicationLag")
        if lag and lag["inhibited_by"] and len(rows) == 3:
            break
        assert time.monotonic() < deadline, (result.stderr, rows)
        time.sleep(1)
    assert result.returncode == 0 and report["ok"] and report["problems"] == []
    down = rows["RedisDown"]
    assert (down["state"], down["source"], down["receivers"]) == ("firing", "prometheus", ["pager"])
    assert down["held_by_alertmanager"] and down["for_s"] >= 0
    assert down["labels"]["instance"] == "cache:6379" and down["summary"] == "RedisDown (test)"
    assert lag["state"] == "firing" and lag["receivers"] == ["chat"]
    assert [(i["alert"], i["rule"]) for i in lag["inhibited_by"]] == [("RedisDown", 1)]
    low = rows["ShopOrderVolumeLow"]
    assert (low["state"], low["held_by_alertmanager"], low["receivers"]) == (
        "pending",
        False,
        ["email"],
    )
    assert report["counts"] == {"firing": 2, "pending": 1, "silenced": 0, "inhibited": 1}

    text = cli(stack, "alerts", COLUMNS="200")
    assert text.returncode == 0, text.stderr
    assert "inhibited by RedisDown (rule #1)" in text.stderr
    assert "2 firing, 1 pending, 0 silenced, 1 inhibited" in text.stderr
