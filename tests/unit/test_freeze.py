"""The deploy freeze policy (ocean.freeze, stack/environments deploy.freeze): on
the label sets of the real alerting rules, its schema and rule checks, and preflight's
use of it."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from ocean import environments
from ocean.config import REPO_ROOT, Settings
from ocean.errors import OceanError
from ocean.freeze import FreezePolicy, problems, rule_labels
from ocean.model import StepStatus
from ocean.procedures import deploy as deploys
from ocean.rollout.journal import Journal
from ocean.validate import run
from tests.unit.test_environments import _one_problem, defs  # noqa: F401 (fixture)

RULES = rule_labels(REPO_ROOT)
BASE = FreezePolicy.from_env(environments.load("dev", REPO_ROOT))

# What the shipped policy freezes: the shop's paging alerts (SLO burn rates from
# slo.yaml, errors, instances, the endpoint) and failing payments.
FREEZING = {
    "ShopAvailabilityBudgetBurnFast",
    "ShopAvailabilityBudgetBurnSlow",
    "ShopLatencyBudgetBurnFast",
    "ShopLatencyBudgetBurnSlow",
    "ShopHighErrorRate",
    "ShopInstanceDown",
    "ShopEndpointDown",
    "ShopPaymentFailureRatioHigh",
}


def firing(*names: str, state: str = "firing") -> list[dict]:
    """Prometheus' /api/v1/alerts entries for these alerts, with their rules' labels."""
    return [
        {"state": state, "labels": {"alertname": n, **RULES[n], "instance": "127.0.0.1:1"}}
        for n in names
    ]


def test_the_rules_are_read_with_their_labels():
    assert RULES["AlertmanagerNotificationsFailing"] == {"severity": "critical", "team": "platform"}
    assert RULES["ShopAvailabilityBudgetBurnFast"]["slo"] == "availability"
    assert len(RULES) > 40


def test_every_rule_that_freezes_under_the_shipped_policy():
    decision = BASE.decide(firing(*RULES))
    assert set(decision.frozen) == FREEZING
    assert set(decision.warned) == set(RULES) - FREEZING - {"Watchdog"}


def test_every_critical_slo_alert_from_slo_yaml_freezes():
    """Derived, not listed: every generated paging SLO alert carries slo.yaml's team."""
    slo_alerts = {n for n, labels in RULES.items() if "slo" in labels}
    paging = {n for n in slo_alerts if RULES[n]["severity"] == "critical"}
    assert len(paging) == 4
    assert set(BASE.decide(firing(*paging)).frozen) == paging
    tickets = slo_alerts - paging  # a slow burn is a ticket, not a freeze
    assert set(BASE.decide(firing(*tickets)).warned) == tickets


@pytest.mark.parametrize(
    "plumbing",
    [
        "AlertmanagerNotificationsFailing",  # a fresh dev stack's receivers: nobody listens
        "PrometheusAlertmanagerUnreachable",
        "TargetDown",
        "PostgresExporterQueriesFailing",
        "TlsCertificateExpiringSoon",
        "RestoreTestFailed",
        "BackupTooOld",
        "HostDiskAlmostFull",
    ],
)
def test_plumbing_alerts_warn_and_never_freeze(plumbing: str):
    decision = BASE.decide(firing(plumbing, "Watchdog"))
    assert decision.frozen == [] and decision.warned == [plumbing]


def test_a_shop_alert_freezes_beside_plumbing_and_pending_ones_count_for_nothing():
    alerts = firing("ShopAvailabilityBudgetBurnFast", "AlertmanagerNotificationsFailing")
    alerts += firing("ShopHighErrorRate", "TargetDown", state="pending")
    alerts += firing("ShopAvailabilityBudgetBurnFast")  # a second series: named once
    decision = BASE.decide(alerts)
    assert decision.as_dict() == {
        "frozen": ["ShopAvailabilityBudgetBurnFast"],
        "warned": ["AlertmanagerNotificationsFailing"],
    }


def test_named_alerts_freeze_and_ignored_ones_are_neither():
    policy = FreezePolicy.from_dict(
        {"teams": ["shop"], "severities": ["critical"], "alerts": ["TargetDown"], "ignore": []}
    )
    assert policy.decide(firing("TargetDown")).frozen == ["TargetDown"]
    policy = FreezePolicy.from_dict({**policy.__dict__, "ignore": ["ShopHighErrorRate"]})
    assert policy.decide(firing("ShopHighErrorRate")).as_dict() == {"frozen": [], "warned": []}


def test_the_shipped_policies_match_the_rules():
    for name in environments.names(REPO_ROOT):
        data = environments.load(name, REPO_ROOT)["deploy.freeze"]
        assert list(problems(data, RULES)) == [], name


# -- the environment's definition ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "wanted"),
    [
        (
            "deploy:\n  freeze:\n    alerts: [ShopAvailabilityBudgetBurnFats]\n",
            "deploy.freeze.alerts",
            "'ShopAvailabilityBudgetBurnFats' is not an alert of monitoring/rules "
            "(did you mean 'ShopAvailabilityBudgetBurnFast'?)",
        ),
        ("deploy:\n  freeze:\n    ignore: [NoSuchAlert]\n", "deploy.freeze.ignore", "NoSuch"),
        ("deploy:\n  freeze:\n    teams: [shpo]\n", "deploy.freeze.teams", "team='shpo'"),
        ("deploy:\n  freeze:\n    severities: [page]\n", "deploy.freeze.severities", "page"),
        ("deploy:\n  freeze:\n    alert: [TargetDown]\n", "deploy.freeze.alert", "unknown key"),
        ("deploy:\n  freeze:\n    alerts: TargetDown\n", "deploy.freeze.alerts", "a list"),
        ("deploy:\n  freeze:\n    ignore: [TargetDown, 3]\n", "deploy.freeze.ignore", "a list"),
        (
            "deploy:\n  freeze:\n    alerts: [TargetDown]\n    ignore: [TargetDown]\n",
            "deploy.freeze.ignore",
            "choose one",
        ),
    ],
)
def test_a_bad_freeze_entry_names_environment_file_line_and_entry(
    defs: Path,  # noqa: F811 (the fixture)
    text: str,
    key: str,
    wanted: str,
):
    problem = _one_problem(defs, "staging", text)
    assert (problem.env, problem.file.name, problem.key) == ("staging", "staging.yaml", key)
    assert wanted in problem.message and problem.line in (2, 3, 4)
    with pytest.raises(OceanError, match=rf"environment 'staging' .*staging.yaml:\d+.*{key}"):
        Settings.from_env({}, "staging")


def test_a_bad_entry_in_the_base_is_reported_from_the_base_for_every_environment(
    defs: Path,  # noqa: F811 (the fixture)
):
    base = (defs / "base.yaml").read_text()
    (defs / "base.yaml").write_text(base.replace("ignore: [Watchdog]", "ignore: [Watchdgo]"))
    found = environments.problems(REPO_ROOT, defs)
    assert {p.env for p in found} == {"dev", "staging", "prod"}
    assert {(p.file.name, p.key) for p in found} == {("base.yaml", "deploy.freeze.ignore")}
    assert "did you mean 'Watchdog'" in found[0].message


def test_an_overlay_replaces_a_list_and_keeps_the_rest(defs: Path):  # noqa: F811
    prod = (defs / "prod.yaml").read_text()
    extra = "  require_staging_pass: true\n  freeze:\n    alerts: [TargetDown]\n"
    (defs / "prod.yaml").write_text(prod.replace("  require_staging_pass: true\n", extra))
    policy = FreezePolicy.from_env(environments.load("prod", REPO_ROOT))
    assert policy.alerts == {"TargetDown"} and policy.teams == {"shop"}
    assert policy.ignore == {"Watchdog"}


def test_invoke_validate_reports_a_bad_entry(tmp_path: Path):
    """`invoke validate --only environments` on a checkout whose prod policy names an
    alert no rule defines: one error naming the file, line and entry."""
    for rel in ("stack/environments", "monitoring/rules"):
        shutil.copytree(REPO_ROOT / rel, tmp_path / rel)
    prod = tmp_path / "stack/environments/prod.yaml"
    text = prod.read_text().replace(
        "  require_staging_pass: true\n",
        "  require_staging_pass: true\n  freeze:\n    alerts: [CheckoutDown]\n",
    )
    prod.write_text(text)
    findings = run(tmp_path, {"environments"})
    assert [(f.file, f.severity) for f in findings] == [("stack/environments/prod.yaml", "error")]
    assert findings[0].line == text.splitlines().index("    alerts: [CheckoutDown]") + 1
    assert "'deploy.freeze.alerts'" in findings[0].message
    assert "'CheckoutDown' is not an alert" in findings[0].message


# -- preflight ----------------------------------------------------------------------------


class FakeProm:
    def __init__(self, alerts: list[dict]) -> None:
        self._alerts = alerts

    def __enter__(self) -> FakeProm:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def alerts(self) -> list[dict]:
        return self._alerts


def _preflight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, alerts: list[dict], force: bool):
    monkeypatch.setattr(deploys.Prometheus, "of", classmethod(lambda cls, rt: FakeProm(alerts)))
    runtime = SimpleNamespace(
        settings=SimpleNamespace(env=environments.load("dev", REPO_ROOT)), status=lambda: []
    )
    journal = Journal(tmp_path)
    record = journal.open({"kind": "deploy", "color": "green", "from": "blue", "version": "x"})
    opts = deploys.DeployOptions(color="green", force=force, validate=False)
    steps = []
    try:
        for step in deploys._preflight(runtime, opts, journal, record):
            steps.append(step)
    finally:
        record = journal.read()
    return steps, record


def test_preflight_warns_about_plumbing_and_goes_on(tmp_path: Path, monkeypatch):
    alerts = firing("AlertmanagerNotificationsFailing", "Watchdog")
    steps, record = _preflight(tmp_path, monkeypatch, alerts, force=False)
    warning = next(s for s in steps if s.name == "alerts firing (no freeze)")
    assert (
        warning.status == StepStatus.INFO and "AlertmanagerNotificationsFailing" in warning.detail
    )
    assert warning.data == {"frozen": [], "warned": ["AlertmanagerNotificationsFailing"]}
    assert steps[-1].name == "preflight"
    assert record["freeze"]["warned"] == ["AlertmanagerNotificationsFailing"]
    assert "forced" not in record


def test_preflight_freezes_on_a_shop_alert_unless_forced(tmp_path: Path, monkeypatch):
    alerts = firing("ShopLatencyBudgetBurnFast", "TargetDown")
    with pytest.raises(OceanError, match=r"deploy freeze: .*ShopLatencyBudgetBurnFast\. "):
        _preflight(tmp_path / "a", monkeypatch, alerts, force=False)
    record = Journal(tmp_path / "a").read()
    assert record["freeze"] == {"frozen": ["ShopLatencyBudgetBurnFast"], "warned": ["TargetDown"]}

    steps, record = _preflight(tmp_path / "b", monkeypatch, alerts, force=True)
    forced = next(s for s in steps if s.name == "deploy freeze overridden")
    assert forced.data["frozen"] == ["ShopLatencyBudgetBurnFast"]
    assert record["forced"] is True and record["forced_over"] == ["ShopLatencyBudgetBurnFast"]
