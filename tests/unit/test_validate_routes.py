"""Validation that understands Alertmanager's meaning (issue 21, classes 2, 7 and 8):
route reachability from the rules' label sets, inhibit rules that match nothing,
amtool's reason verbatim at the template's line, and findings (never a crash) for a
config of the wrong shape. Each breakage is made in a copy of the repo; the shipped
config must give no finding at all (its Watchdog/deadman and inbox routes included).
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocean.config import REPO_ROOT
from ocean.errors import OceanError
from ocean.model import Finding
from ocean.validate import alertmanager_checks, core
from ocean.validate import route_reachability as rr
from ocean.validate.alertmanager_shape import shape_problems
from ocean.validate.amtool_output import amtool_reason
from ocean.validate.template_lines import TemplateLines

AM = "monitoring/alertmanager/alertmanager.yml"
RULES = "monitoring/rules/application.rules.yml"
COPIED = ("monitoring", "docs/runbooks", "stack")
AMTOOL = shutil.which("amtool") or core.program("amtool")
needs_amtool = pytest.mark.skipif(AMTOOL is None, reason="amtool not installed")
MINE = ("alertmanager-reachability", "alertmanager-inhibit")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for rel in COPIED:
        shutil.copytree(REPO_ROOT / rel, tmp_path / rel)
    return tmp_path


def run(root: Path, name: str) -> list[Finding]:
    return core.registry()[name].fn(root)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not once in {path}"
    path.write_text(text.replace(old, new))


def line_of(path: Path, needle: str) -> int:
    (number,) = [n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    return number


def test_the_shipped_routing_gives_no_finding():
    for name in (*MINE, "alertmanager-config"):
        assert run(REPO_ROOT, name) == [], name


def test_every_receiver_and_route_is_reached_by_some_rule():
    rendered = rr.rendered_alertmanager(REPO_ROOT)
    tree = rr.route_tree(rendered.config)
    alerts = rr.alerts_of(REPO_ROOT)
    reached = {n.route.receiver for a in alerts for n in rr.may_take(tree, a)}
    assert reached >= {"deadman", "pager", "email", "chat"}
    watchdog = next(a for a in alerts if a.name == "Watchdog")
    assert [n.route.receiver for n in rr.may_take(tree, watchdog)] == ["deadman"]
    # Prometheus's external label is part of every alert's known labels.
    assert watchdog.known["stack"] == "ocean"


# -- class 2: route reachability -------------------------------------------------------


def test_a_misspelt_matcher_value_is_an_error_with_file_line_and_the_real_values(repo: Path):
    edit(repo / AM, "matchers: ['severity=\"critical\"']", "matchers: ['severity=\"critcal\"']")
    found = run(repo, "alertmanager-reachability")
    route = next(f for f in found if "critcal" in f.message)
    assert (route.severity, route.file) == ("error", AM)
    assert route.line == line_of(repo / AM, 'severity="critcal"')
    assert 'did you mean severity="critical"?' in route.hint
    assert '"critical", "info", "warning"' in route.hint
    # The pager now gets nothing: said at its definition, not once per stranded alert.
    receiver = next(f for f in found if "receiver 'pager'" in f.message)
    assert receiver.line == line_of(repo / AM, "- name: pager")
    assert [f for f in found if f.severity == "warning"] == []
    assert len(found) == 2


def test_a_route_shadowed_by_an_earlier_one_is_an_error_naming_it(repo: Path):
    edit(
        repo / AM,
        "      matchers: ['team=\"business\"']\n",
        "      matchers: ['team=\"business\"']\n"
        "    - receiver: pager\n"
        "      matchers: ['team=\"business\"', 'severity=\"warning\"']\n",
    )
    (found,) = run(repo, "alertmanager-reachability")
    assert found.severity == "error" and "takes all of them first" in found.message
    assert found.line == line_of(repo / AM, "'team=\"business\"', 'severity=\"warning\"'") - 1
    assert f"line {line_of(repo / AM, 'receiver: email')}" in found.hint


def test_a_route_on_an_external_label_value_prometheus_never_sends(repo: Path):
    edit(
        repo / AM,
        "    - receiver: email\n",
        "    - receiver: pager\n      matchers: ['stack=\"oceans\"']\n    - receiver: email\n",
    )
    (found,) = run(repo, "alertmanager-reachability")
    assert 'did you mean stack="ocean"?' in found.hint
    assert found.line == line_of(repo / AM, 'stack="oceans"')


def test_a_route_on_a_series_label_is_not_judged(repo: Path):
    # instance comes from the series: unknown offline, so the route may well be reached.
    edit(
        repo / AM,
        "    - receiver: email\n",
        "    - receiver: pager\n      matchers: ['instance=\"db-1:9187\"']\n"
        "    - receiver: email\n",
    )
    assert run(repo, "alertmanager-reachability") == []


def test_an_alert_only_the_default_route_takes_is_a_warning_at_its_rule(repo: Path):
    path = repo / RULES
    text = path.read_text()
    path.write_text(text.replace("severity: critical", "severity: page", 1))
    (found,) = run(repo, "alertmanager-reachability")
    assert (found.severity, found.file) == ("warning", RULES)
    assert found.line == line_of(path, "- alert: ShopHighErrorRate")
    assert "ShopHighErrorRate (severity=page, team=shop)" in found.message
    assert "default" in found.message and 'severity="critical"' in found.hint


def test_a_templated_label_value_is_a_wildcard(repo: Path):
    # A rule whose severity comes from its series may be critical: no default-only
    # finding, and the pager route stays reachable.
    path = repo / RULES
    text = path.read_text()
    path.write_text(text.replace("severity: critical", "severity: '{{ $labels.level }}'", 1))
    assert run(repo, "alertmanager-reachability") == []


def test_an_inhibit_rule_matching_nothing_is_a_warning(repo: Path):
    edit(
        repo / AM,
        "    target_matchers: ['severity=\"warning\"']\n    equal: [alertname, service]",
        "    target_matchers: ['severity=\"warnign\"']\n    equal: [alertname, service]",
    )
    (found,) = run(repo, "alertmanager-inhibit")
    assert (found.severity, found.file) == ("warning", AM)
    assert found.line == line_of(repo / AM, 'severity="warnign"')
    assert "inhibit rule #2" in found.message and "target" in found.message
    assert 'did you mean severity="warning"?' in found.hint


# -- the semantics, held against amtool ------------------------------------------------

SYNTHETIC = {
    "route": {
        "receiver": "root",
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
            {"receiver": "e", "matchers": ['empty=""']},
        ],
    },
    "receivers": [{"name": n} for n in ("root", "a", "b", "c", "d", "e")],
}
CLOSED_CASES = [
    {"team": "x", "severity": "critical"},
    {"team": "x", "severity": "critical", "env": "prod", "svc": "cache"},
    {"team": "x", "env": "prod", "svc": "db"},
    {"team": "x", "env": "prod", "svc": "web"},
    {"team": "x", "env": "dev"},
    {"team": "y", "empty": "set"},
    {"team": "y"},
]


def amtool_receivers(config: Path, labels: dict[str, str]) -> list[str]:
    args = [AMTOOL, "config", "routes", "test", f"--config.file={config}"]
    args += [f'{k}="{v}"' for k, v in labels.items()]
    out = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().split(",")


@needs_amtool
@pytest.mark.parametrize(
    "labels", CLOSED_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items())
)
def test_with_every_label_known_the_walk_is_amtools(tmp_path: Path, labels: dict):
    path = tmp_path / "am.yml"
    path.write_text(yaml.safe_dump(SYNTHETIC))
    tree = rr.route_tree(SYNTHETIC)
    alert = rr.Alert("X", "", None, {**labels, "alertname": "X"}, closed=True)
    ours = [n.route.receiver for n in rr.may_take(tree, alert)]
    assert ours == amtool_receivers(path, {**labels, "alertname": "X"})


@needs_amtool
def test_each_rule_may_reach_what_amtool_routes_it_to(tmp_path: Path):
    rendered = rr.rendered_alertmanager(REPO_ROOT)
    config = tmp_path / "alertmanager.yml"
    config.write_text(rendered.text)
    tree = rr.route_tree(rendered.config)
    for alert in rr.alerts_of(REPO_ROOT):
        possible = {n.route.receiver for n in rr.may_take(tree, alert)}
        concrete = {**alert.known, "instance": "127.0.0.1:9100"}
        assert set(amtool_receivers(config, concrete)) <= possible, alert.name


def test_an_unknown_label_makes_a_matcher_maybe():
    tree = rr.route_tree(SYNTHETIC)
    open_alert = rr.Alert("X", "", None, {"alertname": "X", "team": "x"})
    taken = [n.route.receiver for n in rr.may_take(tree, open_alert)]
    # severity may be critical (a, continue), svc may be anything: c, d, a, or b itself.
    assert taken == ["a", "c", "d", "a", "b"]


# -- class 7: amtool's reason, verbatim, at the template's line ------------------------


@needs_amtool
def test_amtools_reason_is_reported_at_the_template_line(repo: Path):
    edit(repo / AM, "  resolve_timeout: 5m", "  resolve_timeout: five minutes")
    (found,) = run(repo, "alertmanager-config")
    assert found.message == 'amtool check-config: not a valid duration string: "five minutes"'
    assert found.line == line_of(repo / AM, "resolve_timeout")
    assert "failed to validate" not in found.message


@needs_amtool
def test_amtools_yaml_error_line_is_mapped_through_the_template(repo: Path):
    # The template's {% if %} lines render to nothing: the rendered line differs.
    edit(
        repo / AM,
        "      send_resolved: true\n        max_alerts: 20",
        "      send_resolved: true\n        max_alerts: many",
    )
    (found,) = run(repo, "alertmanager-config")
    assert "cannot unmarshal" in found.message and "many" in found.message
    assert found.line == line_of(repo / AM, "max_alerts: many")


def test_amtool_output_parsing():
    output = (
        "Checking 'alertmanager.yml'  FAILED: yaml: unmarshal errors:\n"
        "  line 3: cannot unmarshal !!int `5` into []*config.Route\n\n"
        "amtool: error: failed to validate 1 file(s)\n"
    )
    assert amtool_reason(output) == (
        "yaml: unmarshal errors: line 3: cannot unmarshal !!int `5` into []*config.Route"
    )
    assert amtool_reason("amtool: error: failed to validate 1 file(s)") == ""


def test_template_lines_skip_block_tags_and_false_branches():
    template = "a: 1\n{% if x %}\nb: {{ b }}\n{% endif %}\nc: '{% raw %}{{ .X }}{% endraw %}'\n"
    rendered = "a: 1\nc: '{{ .X }}'\n"
    lines = TemplateLines(template, rendered)
    assert (lines.line(1), lines.line(2)) == (1, 5)


# -- class 8: a config of the wrong shape gives findings, never a crash ----------------

BAD_SHAPES = {
    "a list": "- route\n- receivers\n",
    "a scalar": "just text\n",
    "null": "~\n",
    "empty": "",
    "routes a number": "route:\n  receiver: a\n  routes: 5\nreceivers:\n  - name: a\n",
    "a route a string": "route:\n  receiver: a\n  routes:\n    - a\nreceivers:\n  - name: a\n",
    "receivers a mapping": "route:\n  receiver: a\nreceivers:\n  a: {}\n",
    "inhibit rules a string": "route:\n  receiver: a\nreceivers:\n  - name: a\ninhibit_rules: x\n",
    "matchers a mapping": (
        "route:\n  receiver: a\n  routes:\n    - receiver: a\n      matchers: {a: b}\n"
        "receivers:\n  - name: a\n"
    ),
    "group_by null": "route:\n  receiver: a\n  group_by:\nreceivers:\n  - name: a\n",
}


@pytest.mark.parametrize("text", list(BAD_SHAPES.values()), ids=list(BAD_SHAPES))
@pytest.mark.parametrize("with_amtool", [True, False], ids=["amtool", "no-amtool"])
def test_a_config_of_the_wrong_shape_gives_findings(repo: Path, monkeypatch, text, with_amtool):
    if with_amtool and AMTOOL is None:
        pytest.skip("amtool not installed")
    if not with_amtool:
        monkeypatch.setattr(alertmanager_checks, "program", lambda name: None)
    (repo / AM).write_text(text)
    found = core.run(repo, {"alertmanager"})
    assert found, "a broken config passed"
    assert not [f for f in found if "crashed" in f.message], found
    about_the_file = [f for f in found if "not installed" not in f.message]
    assert about_the_file and {f.file for f in about_the_file} == {AM}, found
    assert {f.check for f in about_the_file} == {"alertmanager-config"}
    if text.strip() not in ("", "~"):
        assert all(f.line for f in about_the_file), found


def test_shape_problems_name_their_path():
    (problem,) = shape_problems({"route": {"receiver": "a", "routes": [{"receiver": "a"}, 7]}})
    assert problem.path == ("route", "routes", 1)
    assert shape_problems(rr.rendered_alertmanager(REPO_ROOT).config) == []


# -- never a crash: arbitrary documents and mutated real configs -----------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from(["", "chat", "5m", 'severity="critical"', 'a=~"("', "{a=1}", 'x="']),
    st.text(max_size=8),
)
KEYS = st.sampled_from(
    ["route", "routes", "receiver", "receivers", "name", "matchers", "match", "match_re",
     "continue", "group_by", "group_wait", "inhibit_rules", "source_matchers",
     "target_matchers", "equal", "global"]
)  # fmt: skip
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=25,
)


def _mutations(config: object) -> st.SearchStrategy:
    """The shipped config with one node replaced by an arbitrary document."""
    paths: list[tuple] = []

    def walk(node: object, path: tuple) -> None:
        paths.append(path)
        items = (
            node.items()
            if isinstance(node, dict)
            else enumerate(node)
            if isinstance(node, list)
            else ()
        )
        for key, child in items:
            walk(child, (*path, key))

    walk(config, ())

    def replace(path: tuple, value: object) -> object:
        doc = copy.deepcopy(config)
        if not path:
            return value
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return doc

    return st.builds(replace, st.sampled_from(paths), DOCUMENTS)


def _judge(config: object) -> None:
    """What the checks do with a parsed config: shape first, the walks when sound."""
    text = yaml.dump(config, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper))
    rendered = rr.RenderedConfig(config, text, TemplateLines(text, text))
    if shape_problems(config):
        return
    try:
        tree = rr.route_tree(config)
    except (OceanError, ValueError):
        return  # a bad duration: alertmanager-config reports it (amtool's reason)
    rr.reachability_findings(tree, rendered, ALERTS)
    rr.inhibit_findings(rendered, ALERTS)
    alertmanager_checks.alertmanager_problems(config)


ALERTS = rr.alerts_of(REPO_ROOT)
SHIPPED = rr.rendered_alertmanager(REPO_ROOT).config


@settings(max_examples=1000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(DOCUMENTS)
def test_no_document_crashes_the_alertmanager_checks(config):
    _judge(config)


@settings(max_examples=1000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(_mutations(SHIPPED))
def test_no_mutation_of_the_shipped_config_crashes_them(config):
    _judge(config)
