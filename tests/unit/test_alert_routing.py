"""Routing and inhibition in Python (ocean.alerting) held against Alertmanager's own
`amtool config routes test`: every label set the alerting rules can produce, on the
stack's rendered config, and a synthetic tree with every matcher kind, nesting and
`continue`. No service runs; amtool is Debian's (prometheus-alertmanager)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ocean.alerting import inhibition, routes
from ocean.alerting import matchers as m
from ocean.config import REPO_ROOT
from ocean.errors import OceanError
from ocean.freeze import rule_labels
from tests.alerting_support import rendered_runtime

AMTOOL = shutil.which("amtool")
needs_amtool = pytest.mark.skipif(AMTOOL is None, reason="amtool not installed")
RULES = rule_labels(REPO_ROOT)
CONFIGURED = {  # real receivers configured: the tree must route the same
    "OCEAN_SLACK_WEBHOOK_URL": "https://hooks.slack.invalid/services/T/B/x",
    "OCEAN_PAGER_WEBHOOK_URL": "https://pager.invalid/hook",
    "OCEAN_SMTP_SMARTHOST": "smtp.invalid:587",
}


def amtool_routes(config: Path, labels: dict[str, str]) -> list[str]:
    args = [AMTOOL, "config", "routes", "test", f"--config.file={config}"]
    out = subprocess.run(
        args + [str(m.Matcher.of(k, "=", v)) for k, v in labels.items()],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().split(",")


@pytest.fixture(scope="module", params=[{}, CONFIGURED], ids=["defaults", "configured"])
def rendered(request, tmp_path_factory) -> Path:
    runtime = rendered_runtime(tmp_path_factory.mktemp("am"), request.param)
    return runtime.settings.etc / routes.CONFIG_FILE


@needs_amtool
def test_every_rule_label_set_routes_as_amtool_says(rendered: Path):
    routing = routes.load(rendered)
    assert len(RULES) > 40
    differing = {}
    for name, labels in RULES.items():
        alert = {**labels, "alertname": name, "instance": "127.0.0.1:9100"}
        ours = [r.receiver for r in routing.routes_for(alert)]
        theirs = amtool_routes(rendered, alert)
        if ours != theirs:
            differing[name] = (ours, theirs)
    assert differing == {}
    # The tree really sorts them: each receiver of the tree gets some rule's alerts.
    reached = {
        r for n, labels in RULES.items() for r in routing.receivers_for({**labels, "alertname": n})
    }
    assert reached == set(routing.routed_receivers()) == {"deadman", "pager", "email", "chat"}


def test_route_names_and_paths_say_how_an_alert_got_there(rendered: Path):
    routing = routes.load(rendered)
    taken = routing.routes_for(
        {"alertname": "ShopPaymentFailureRatioHigh", **RULES["ShopPaymentFailureRatioHigh"]}
    )
    assert [r.name for r in taken] == ["pager", "email"]  # critical continues to email
    assert taken[0].path == 'default > pager{severity="critical"}'
    assert routing.routes_for({"alertname": "Whatever"})[0].name == "default"
    watchdog = routing.routes_for({"alertname": "Watchdog", **RULES["Watchdog"]})[0]
    assert (watchdog.name, watchdog.group_wait) == ("deadman", 0.0)
    assert watchdog.group_interval == 60.0  # inherits nothing: set on the route itself
    assert routing.routes_for({"alertname": "X", "severity": "warning"})[0].group_wait == 1.0


SYNTHETIC = {
    "route": {
        "receiver": "root",
        "group_by": ["alertname"],
        "routes": [
            {"receiver": "a", "matchers": ['{team="x", severity=~"crit.*"}'], "continue": True},
            {
                "receiver": "b",
                "match": {"team": "x"},
                "routes": [
                    {"receiver": "c", "matchers": ['env!="prod"', 'svc!~"db|cache"']},
                    {"receiver": "d", "match_re": {"svc": "db|cache"}, "continue": True},
                    {"receiver": "a", "matchers": ["svc=cache"]},
                ],
            },
            {"receiver": "e", "matchers": ['note="comma, \\"quoted\\""']},
            {"receiver": "f", "matchers": ['empty=""']},
        ],
    },
    "receivers": [{"name": n} for n in ("root", "a", "b", "c", "d", "e", "f")],
}
CASES = [
    {"team": "x", "severity": "critical"},
    {"team": "x", "severity": "critical", "env": "prod", "svc": "cache"},
    {"team": "x", "env": "prod", "svc": "db"},
    {"team": "x", "env": "prod", "svc": "web"},
    {"team": "x", "env": "dev"},
    {"team": "y", "note": 'comma, "quoted"'},
    {"team": "y", "empty": "set"},
    {"team": "y"},
    {"severity": "criticalish", "team": "x", "env": "prod"},
]


@needs_amtool
@pytest.mark.parametrize("labels", CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_a_synthetic_tree_routes_as_amtool_says(tmp_path: Path, labels: dict):
    path = tmp_path / "am.yml"
    path.write_text(yaml.safe_dump(SYNTHETIC))
    check = subprocess.run([AMTOOL, "check-config", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    ours = [r.receiver for r in routes.load(path).routes_for(labels)]
    assert ours == amtool_routes(path, labels)


def test_names_repeat_with_a_number_when_a_receiver_has_several_routes(tmp_path: Path):
    routing = routes.parse(SYNTHETIC)
    names = [r.name for r in routing.root.walk()]
    assert names == ["default", "a#1", "b", "c", "d", "a#2", "e", "f"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('alertname="Watchdog"', [("alertname", "=", "Watchdog")]),
        ('{a=1, b!~"x|y"}', [("a", "=", "1"), ("b", "!~", "x|y")]),
        ('msg="a, b", c=~".+"', [("msg", "=", "a, b"), ("c", "=~", ".+")]),
        ('q="say \\"hi\\"\\n"', [("q", "=", 'say "hi"\n')]),
    ],
)
def test_matchers_parse_like_alertmanager(text: str, expected: list):
    assert [(x.name, x.op, x.value) for x in m.parse(text)] == expected


@pytest.mark.parametrize("text", ['a="open', "=x", 'a=="x"x"', 'a=~"("'])
def test_a_bad_matcher_is_one_clear_error(text: str):
    with pytest.raises(OceanError):
        m.parse(text)


def test_regex_matchers_are_anchored_and_absent_labels_are_empty():
    assert not m.parse_one('a=~"b"').matches({"a": "abc"})
    assert m.parse_one('a!="x"').matches({})
    assert m.parse_one('a=""').matches({})
    assert not m.parse_one('a=~".+"').matches({})


# -- inhibition ------------------------------------------------------------------------


def _rules(rendered: Path) -> list[inhibition.InhibitRule]:
    return inhibition.rules_of(routes.load(rendered).inhibit_rules)


def test_a_down_target_mutes_its_symptoms_on_the_same_instance_only(rendered: Path):
    rules = _rules(rendered)
    down = {"alertname": "RedisDown", **RULES["RedisDown"], "instance": "r:6379"}
    symptom = {
        "alertname": "RedisMemoryNearMax",
        **RULES["RedisMemoryNearMax"],
        "instance": "r:6379",
    }
    elsewhere = {**symptom, "instance": "other:6379"}
    found = inhibition.muted_by(symptom, [down, symptom, elsewhere], rules)
    assert found is not None and found[0].number == 1 and found[1] is down
    assert inhibition.muted_by(elsewhere, [down, elsewhere], rules) is None
    # Down alerts are causes: one never mutes another, and Watchdog is never muted.
    other_down = {"alertname": "TargetDown", **RULES["TargetDown"], "instance": "r:6379"}
    assert inhibition.muted_by(other_down, [down], rules) is None
    watchdog = {"alertname": "Watchdog", **RULES["Watchdog"], "instance": "r:6379"}
    assert inhibition.muted_by(watchdog, [down], rules) is None


def test_a_critical_mutes_its_own_warning_but_never_itself():
    rule = inhibition.rules_of(
        [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity=~".*"'],
                "equal": ["alertname"],
            }
        ]
    )
    critical = {"alertname": "A", "severity": "critical"}
    warning = {"alertname": "A", "severity": "warning"}
    assert inhibition.muted_by(warning, [critical, warning], rule)[1] is critical
    # Both match both sides: Alertmanager never lets two such alerts mute each other.
    assert inhibition.muted_by(critical, [critical, {**critical, "x": "1"}], rule) is None


def test_what_could_mute_each_alert_on_paper(rendered: Path):
    rules = _rules(rendered)
    replica = inhibition.could_mute("RedisReplicationLag", RULES, rules)
    assert replica == [
        {
            "rule": 1,
            "sources": ["RedisDown", "ShopInstanceDown", "TargetDown"],
            "equal": ["instance"],
        }
    ]
    assert inhibition.could_mute("RedisDown", RULES, rules) == []
    assert inhibition.could_mute("Watchdog", RULES, rules) == []
    # Each critical rule's name differs from every warning's: rules 2 and 3 (same
    # alertname) can pair no two rules, only series of one alert.
    assert all(x["rule"] == 1 for n in RULES for x in inhibition.could_mute(n, RULES, rules))
