"""Environments from one definition: merging, the strict schema, precedence, and the
knobs the effective configuration really drives (runtime, ports, retention, receivers,
analysis windows, backup retention, SLO overrides)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ocean import environments, environments_apply, slo
from ocean.config import REPO_ROOT, Settings
from ocean.errors import OceanError
from ocean.runtime import make_runtime
from ocean.runtime.local import LocalRuntime

SHIPPED = REPO_ROOT / "stack" / "environments"


@pytest.fixture
def defs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped definitions that OCEAN_ENV_DIR points at (to break)."""
    folder = tmp_path / "environments"
    shutil.copytree(SHIPPED, folder)
    monkeypatch.setenv("OCEAN_ENV_DIR", str(folder))
    return folder


def test_every_shipped_environment_loads_and_none_has_a_problem():
    assert {"dev", "staging", "prod"} <= set(environments.names(REPO_ROOT))
    assert environments.problems(REPO_ROOT, SHIPPED) == []


def test_an_overlay_merges_key_by_key_over_the_base():
    prod = environments.load("prod", REPO_ROOT)
    assert prod["deploy.analysis_window"] == "5m"  # from prod.yaml
    assert prod["alerting.email_from"] == "alertmanager@ocean.local"  # from base.yaml
    assert prod.sources["deploy.analysis_window"] == "prod.yaml"
    assert prod.sources["alerting.email_from"] == "base.yaml"
    assert prod.confirm_destructive and not environments.load("dev", REPO_ROOT).confirm_destructive


def test_from_env_defaults_to_dev_and_ocean_env_picks_another():
    assert Settings.from_env({}).env_name == "dev"
    staging = Settings.from_env({"OCEAN_ENV": "staging"})
    assert staging.env_name == "staging"
    assert staging.ports.base == 28000
    assert staging.state_dir == REPO_ROOT / ".ocean-staging"
    # An explicit name (--env) beats OCEAN_ENV.
    assert Settings.from_env({"OCEAN_ENV": "staging"}, "prod").env_name == "prod"


def test_ocean_variables_beat_the_definition(tmp_path: Path):
    env = {
        "OCEAN_STATE_DIR": str(tmp_path / "s"),
        "OCEAN_PORT_BASE": "27000",  # below the ephemeral ports (config.check_not_ephemeral)
        "OCEAN_RUNTIME": "local",
    }
    settings = Settings.from_env(env, "prod")
    assert settings.state_dir == tmp_path / "s"
    assert settings.ports.base == 27000
    assert settings.runtime == "local"
    assert Settings.from_env({}, "prod").runtime == "compose"


def test_make_runtime_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("OCEAN_RUNTIME", raising=False)
    state = {"OCEAN_STATE_DIR": str(tmp_path / "s")}
    assert make_runtime(settings=Settings.from_env(state, "dev")).name == "local"
    assert make_runtime(settings=Settings.from_env(state, "prod")).name == "compose"
    monkeypatch.setenv("OCEAN_RUNTIME", "local")
    assert make_runtime(settings=Settings.from_env(state, "prod")).name == "local"


def test_an_unknown_environment_names_the_known_ones():
    with pytest.raises(OceanError, match=r"'qa' .*is not defined.*dev, prod, staging"):
        Settings.from_env({}, "qa")


# -- the strict schema ----------------------------------------------------------------------


def _one_problem(defs: Path, name: str, text: str) -> environments.Problem:
    (defs / f"{name}.yaml").write_text(text)
    found = environments.problems(REPO_ROOT, defs)
    assert len(found) == 1, found
    return found[0]


def test_an_unknown_key_names_environment_file_line_and_key(defs: Path):
    problem = _one_problem(defs, "staging", "deploy:\n  analysis_window: 2m\n  anaylsis: 5m\n")
    assert (problem.env, problem.file.name, problem.key, problem.line) == (
        "staging",
        "staging.yaml",
        "deploy.anaylsis",
        3,
    )
    assert "unknown key" in problem.message and "analysis_window" in problem.message
    with pytest.raises(
        OceanError, match=r"environment 'staging' .*staging.yaml:3.*deploy.anaylsis"
    ):
        Settings.from_env({}, "staging")


@pytest.mark.parametrize(
    ("text", "key", "wanted"),
    [
        ("port_base: high\n", "port_base", "whole number"),
        ("port_base: 70000\n", "port_base", "whole number"),
        ("runtime: kubernetes\n", "runtime", "one of local, compose"),
        ("prometheus:\n  retention: 30 days\n", "prometheus.retention", "Prometheus duration"),
        ("deploy:\n  analysis_window: soon\n", "deploy.analysis_window", "duration"),
        (
            "deploy:\n  require_staging_pass: 'yes'\n",
            "deploy.require_staging_pass",
            "true or false",
        ),
        ("backup:\n  retention: 7\n", "backup.retention", "mapping"),
        ("slo:\n  availability_objective: 100\n", "slo.availability_objective", "percentage"),
        ("alerting:\n  webhook_url: ftp://x\n", "alerting.webhook_url", "URL"),
        ("host: localhost\n", "host", "IP address"),
        # A plan reaching into the ephemeral ports: clients could take a stopped port.
        ("port_base: 32750\n", "port_base", "overlaps the ephemeral ports 32768..60999"),
        ("port_base: 40000\n", "port_base", "choose a base below 32714"),
    ],
)
def test_a_wrong_type_is_a_problem_naming_the_key(defs: Path, text: str, key: str, wanted: str):
    problem = _one_problem(defs, "prod", text)
    assert (problem.env, problem.key) == ("prod", key)
    assert wanted in problem.message


def test_tls_from_files_needs_both_paths(defs: Path):
    problem = _one_problem(defs, "staging", "tls:\n  source: file\n  cert_file: /x.crt\n")
    assert (problem.key, problem.line) == ("tls.key_file", 1)  # its section: the key is absent


def test_an_overlay_that_is_not_yaml_or_not_a_mapping(defs: Path):
    problem = _one_problem(defs, "dev", "deploy: [unclosed\n")
    assert "not YAML" in problem.message and problem.env == "dev"
    problem = _one_problem(defs, "dev", "- a list\n")
    assert "mapping" in problem.message


def test_a_broken_base_breaks_every_environment_and_says_so_from_the_base(defs: Path):
    (defs / "base.yaml").write_text((SHIPPED / "base.yaml").read_text() + "colour: blue\n")
    found = environments.problems(REPO_ROOT, defs)
    assert {p.env for p in found} == {"dev", "staging", "prod"}
    assert {(p.file.name, p.key) for p in found} == {("base.yaml", "colour")}


def test_the_default_environment_must_exist(defs: Path):
    (defs / "dev.yaml").unlink()
    found = environments.problems(REPO_ROOT, defs)
    assert [(p.env, p.message) for p in found] == [
        ("dev", "is not defined: every task defaults to it")
    ]


# -- what the effective configuration drives ------------------------------------------------


def _runtime(tmp_path: Path, name: str) -> LocalRuntime:
    settings = Settings.from_env({"OCEAN_STATE_DIR": str(tmp_path / name)}, name)
    return LocalRuntime(settings)


def test_resources_and_receivers_come_from_the_environment(tmp_path: Path, monkeypatch):
    for variable in ("OCEAN_SLACK_CHANNEL", "OCEAN_SMTP_TO", "OCEAN_ALERT_WEBHOOK_URL"):
        monkeypatch.delenv(variable, raising=False)
    dev, prod = _runtime(tmp_path, "dev").spec.context(), _runtime(tmp_path, "prod").spec.context()
    assert (dev["nginx_workers"], dev["redis_maxmemory"]) == (1, "128mb")
    assert (prod["nginx_workers"], prod["redis_maxmemory"]) == (4, "1gb")
    assert dev["alerting"]["group_wait"] == "1s" and prod["alerting"]["group_wait"] == "30s"
    assert prod["alerting"]["slack_channel"] == "#ocean-prod-alerts"
    # An OCEAN_* variable still wins over the definition.
    monkeypatch.setenv("OCEAN_SLACK_CHANNEL", "#override")
    assert _runtime(tmp_path, "prod").spec.context()["alerting"]["slack_channel"] == "#override"


def test_prometheus_retention_and_postgres_buffers_reach_the_commands(tmp_path: Path):
    runtime = _runtime(tmp_path, "prod")
    runtime.search_path = "/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/15/bin"
    try:
        programs = {p.name: p.command for p in runtime.spec.programs()}
    except OceanError as exc:  # a program is not installed on this machine
        pytest.skip(str(exc))
    assert "--storage.tsdb.retention.time=30d" in programs["prometheus"]
    assert "shared_buffers=512MB" in programs["postgres"]


def test_deploy_settings_flags_win_over_the_environment():
    prod = environments.load("prod", REPO_ROOT)
    assert environments_apply.deploy_settings(prod) == {
        "on_inconclusive": "rollback",
        "analysis_window": 300.0,
        "scale_down_delay": 300.0,
        "ready_timeout": 120.0,
    }
    assert environments_apply.deploy_settings(prod, analysis_window="45s")["analysis_window"] == 45
    with pytest.raises(OceanError, match="--analysis-window"):
        environments_apply.deploy_settings(prod, analysis_window="later")


def test_prune_policy_is_the_flags_as_a_whole_else_the_environment():
    dev = environments.load("dev", REPO_ROOT)
    assert environments_apply.prune_policy(dev, 0, 0, 0, 0).last == 2
    flags = environments_apply.prune_policy(dev, 1, 0, 0, 0)
    assert (flags.last, flags.daily, flags.weekly, flags.monthly) == (1, 0, 0, 0)


def test_slo_overrides_change_what_deploys_and_load_tests_judge():
    base = slo.load()
    staging = environments_apply.slos(base, environments.load("staging", REPO_ROOT))
    assert staging.availability.objective == 99.5 != base.availability.objective
    assert staging.availability.error_budget == pytest.approx(0.005)
    assert staging.latency == base.latency  # null: slo.yaml's
    prod = environments_apply.slos(base, environments.load("prod", REPO_ROOT))
    assert prod == base


def test_backup_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("OCEAN_BACKUP_DIR", raising=False)
    state = {"OCEAN_STATE_DIR": str(tmp_path / "s")}
    assert Settings.from_env(state, "dev").backup_dir == tmp_path / "s" / "backups"
    assert Settings.from_env(state, "prod").backup_dir == Path("/var/backups/ocean")
    monkeypatch.setenv("OCEAN_BACKUP_DIR", str(tmp_path / "b"))
    assert Settings.from_env(state, "prod").backup_dir == tmp_path / "b"


def test_an_all_zero_retention_still_makes_prune_refuse():
    from ocean.procedures import backup as backups

    dev = environments.load("dev", REPO_ROOT)
    zero = {"keep_last": 0, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}
    keeps_nothing = environments.Environment(
        "dev", environments.merge(dev.data, {"backup": {"retention": zero}})
    )
    policy = environments_apply.prune_policy(keeps_nothing, 0, 0, 0, 0)
    with pytest.raises(OceanError, match="say what to keep"):
        list(backups.prune(None, policy))  # refused before the runtime is used


def test_slo_alerts_fire_on_the_environments_own_objective(tmp_path: Path):
    """Prometheus loads <etc>/rules: the committed rules in dev, the SLO rules generated
    again with staging's 99.5 % objective in staging, and no file left from before."""
    committed = REPO_ROOT / "monitoring" / "rules"
    dev = _runtime(tmp_path, "dev")
    assert dev.spec.context()["paths"]["rules"] == dev.settings.etc / "rules"
    dev_files = dev.spec.rule_files()
    assert {path.name: text for path, text in dev_files.items()} == {
        path.name: path.read_text() for path in committed.glob("*.rules.yml")
    }

    staging = _runtime(tmp_path, "staging")
    (staging.settings.etc / "rules").mkdir(parents=True)
    (staging.settings.etc / "rules" / "gone.rules.yml").write_text("groups: []\n")
    files = {path.name: text for path, text in staging.spec.rule_files().items()}
    assert not (staging.settings.etc / "rules" / "gone.rules.yml").exists()
    assert set(files) == {path.name for path in committed.glob("*.rules.yml")}
    burn = 'slo:sli_error:ratio_rate5m{slo="availability"} > (14.4 * '
    assert burn + "0.001)" in (committed / "slo.rules.yml").read_text()
    assert burn + "0.005)" in files["slo.rules.yml"]
    assert "the 0.5% the 99.5% availability SLO allows" in files["slo.rules.yml"]
    unchanged = set(files) - {"slo.rules.yml", "shop.rules.yml"}
    assert all(files[name] == (committed / name).read_text() for name in unchanged)

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed")
    rendered = tmp_path / "slo.rules.yml"
    rendered.write_text(files["slo.rules.yml"])
    check = subprocess.run([promtool, "check", "rules", str(rendered)], capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr
