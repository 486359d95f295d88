"""The environment tasks as a user runs them (subprocess, no stack): `invoke config` with
secrets masked and its --diff, and the guard rails: each destructive task refuses in prod
without --confirm-env prod (or with the wrong name) and proceeds in dev, and the audit log
records the refusal and the action.

"Proceeds" is shown on paths that touch no running stack: the guard rail passes, the
procedure starts (audited `started`) and ends on its own (`succeeded`, or `failed` where
it needs a backup set or a stack this test does not make). prod runs with
OCEAN_RUNTIME=local (an OCEAN_* variable beats the definition's compose) so that no
engine is needed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocean import statedir
from ocean.config import REPO_ROOT
from tests.helpers import free_port_base, run_cli

SECRETS = {
    "POSTGRES_PASSWORD": "pg-Secret-Value-4711",
    "OCEAN_PAGER_TOKEN": "pager-Token-0815",
    "OCEAN_SLACK_WEBHOOK_URL": "https://hooks.slack.example/services/T0/B0/slackSecret42",
}
ENV_SECRET = "smtp-Password-from-env-99"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    folder = tmp_path / "state"
    folder.mkdir()
    return folder


def cli(state: Path, *args: str, **env: str):
    return run_cli(
        *args,
        state_dir=state,
        port_base=free_port_base(),
        env={"OCEAN_RUNTIME": "local", "OCEAN_ENV": "", **env},
    )


def audit(state: Path) -> list[dict]:
    path = state / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# -- invoke config ----------------------------------------------------------------------------


def test_config_diff_prod_staging_shows_real_differences_and_no_secret(state: Path):
    (state / "secrets.env").write_text("".join(f"{k}={v}\n" for k, v in SECRETS.items()))
    shown = []
    for args in (
        ("config", "--env", "prod", "--diff", "staging", "--json"),
        ("config", "--env", "prod", "--diff", "staging"),
        ("config", "--env", "prod", "--json"),
        ("config", "--env", "prod"),
    ):
        result = cli(state, *args, OCEAN_SMTP_PASSWORD=ENV_SECRET, OCEAN_RUNTIME="")
        assert result.returncode == 0, result.stderr
        shown.append(result.stdout + result.stderr)
    everything = "\n".join(shown)
    for secret in [*SECRETS.values(), ENV_SECRET, "slackSecret42"]:
        assert secret not in everything
    diff = json.loads(shown[0])
    rows = {row["key"]: (row["prod"], row["staging"]) for row in diff["differences"]}
    assert rows["runtime"] == ("compose", "local")
    assert rows["prometheus.retention"] == ("30d", "15d")
    assert rows["deploy.analysis_window"] == ("5m", "2m")
    assert rows["guard_rails.confirm_destructive"] == (True, False)
    assert rows["tls.source"] == ("file", "generated")
    assert "port_base" not in rows  # OCEAN_PORT_BASE overrides both here: no difference
    full = json.loads(shown[2])
    assert full["config"]["secrets.POSTGRES_PASSWORD"] == "<secret>"
    assert full["config"]["alerting.receivers.pager_token"] == "<secret>"
    assert full["config"]["alerting.receivers.smtp_password"] == "<secret>"
    assert full["sources"]["alerting.receivers.smtp_password"] == "OCEAN_SMTP_PASSWORD"
    assert full["sources"]["port_base"] == "OCEAN_PORT_BASE"
    assert "prod.yaml" in full["sources"]["prometheus.retention"]


def test_config_diff_without_overrides_shows_the_port_plans(state: Path):
    # Empty OCEAN_* variables count as unset: each environment's own definition shows.
    clean = run_cli(
        "config",
        "--env",
        "prod",
        "--diff",
        "staging",
        "--json",
        state_dir=state,
        port_base=free_port_base(),
        env={"OCEAN_PORT_BASE": "", "OCEAN_STATE_DIR": ""},
    )
    assert clean.returncode == 0, clean.stderr
    rows = {r["key"]: (r["prod"], r["staging"]) for r in json.loads(clean.stdout)["differences"]}
    assert rows["port_base"] == (30000, 28000)
    assert rows["state_dir"] == (str(REPO_ROOT / ".ocean-prod"), str(REPO_ROOT / ".ocean-staging"))


def test_an_unknown_env_is_one_line_naming_the_known_ones(state: Path):
    result = cli(state, "status", "--env", "qa")
    assert result.returncode == 1
    assert "'qa'" in result.stderr and "dev, prod, staging" in result.stderr
    assert "Traceback" not in result.stderr


# -- guard rails ------------------------------------------------------------------------------


def assert_refused(state: Path, action: str, *args: str) -> None:
    before = len(audit(state))
    result = cli(state, *args, "--env", "prod")
    assert result.returncode == 1
    assert "needs --confirm-env prod" in result.stderr, result.stderr
    wrong = cli(state, *args, "--env", "prod", "--confirm-env", "staging")
    assert wrong.returncode == 1 and "does not match this environment, prod" in wrong.stderr
    entries = audit(state)[before:]
    assert [(e["action"], e["outcome"], e["env"]) for e in entries] == [
        (action, "refused", "prod"),
        (action, "refused", "prod"),
    ]
    assert entries[0]["who"] and entries[0]["at"].endswith("Z")


def proceeds(
    state: Path, action: str, *args: str, env: str = "dev", **variables: str
) -> tuple[dict, dict]:
    """Runs the task (in prod: confirmed); returns its (started, end) audit entries."""
    before = len(audit(state))
    extra = ("--env", "prod", "--confirm-env", "prod") if env == "prod" else ()
    result = cli(state, *args, *extra, **variables)
    assert "needs --confirm-env" not in result.stderr, result.stderr
    assert ("guard rail" in result.stderr) is (env == "prod")  # said only when confirmed
    entries = audit(state)[before:]
    assert [e["outcome"] for e in entries][:1] == ["started"], entries
    assert entries[0]["action"] == action and entries[-1]["id"] == entries[0]["id"]
    return entries[0], entries[-1]


def test_restore_refuses_in_prod_and_proceeds_in_dev(state: Path):
    assert_refused(state, "restore", "restore", "20260101T000000Z", "--yes")
    started, ended = proceeds(state, "restore", "restore", "20260101T000000Z", "--yes")
    assert ended["outcome"] == "failed" and "unknown backup" in ended["detail"]
    started, ended = proceeds(
        state,
        "restore",
        "restore",
        "20260101T000000Z",
        "--yes",
        env="prod",
    )
    assert started["env"] == "prod" and started["args"]["confirm_env"] == "prod"


def test_backup_prune_refuses_in_prod_but_not_its_dry_run(state: Path):
    assert_refused(state, "backup-prune", "backup-prune")
    _, ended = proceeds(
        state, "backup-prune", "backup-prune", env="prod", OCEAN_BACKUP_DIR=str(state / "b")
    )
    assert ended["outcome"] == "succeeded"
    dry = cli(
        state, "backup-prune", "--dry-run", "--env", "prod", OCEAN_BACKUP_DIR=str(state / "b")
    )
    assert dry.returncode == 0, dry.stderr
    assert audit(state)[-1]["outcome"] == "succeeded" and audit(state)[-1]["args"]["dry_run"]
    started, ended = proceeds(state, "backup-prune", "backup-prune")
    assert ended["outcome"] == "succeeded"
    assert started["args"]["keep_last"] == 2  # dev's backup.retention


def test_down_purge_refuses_in_prod_and_in_dev_deletes_all_but_the_audit_log(state: Path):
    statedir.mark(state)  # a stack's state dir (a foreign one: tests/unit/test_statedir.py)
    (state / "data").mkdir()
    assert_refused(state, "down --purge", "down", "--purge", "--yes")
    assert (state / "data").is_dir()
    _, ended = proceeds(state, "down --purge", "down", "--purge", "--yes")
    assert ended["outcome"] == "succeeded"
    assert sorted(p.name for p in state.iterdir()) == [".ocean-state", "audit.jsonl"]
    assert [e["outcome"] for e in audit(state)] == ["refused", "refused", "started", "succeeded"]
    plain = cli(state, "down", "--env", "prod")  # stopping is no purge: no confirmation
    assert plain.returncode == 0, plain.stderr
    _, ended = proceeds(state, "down --purge", "down", "--purge", "--yes", env="prod")
    assert ended["outcome"] == "succeeded"


def test_deploy_force_refuses_in_prod_and_proceeds_in_dev(state: Path):
    args = ("deploy", "--color", "green", "--force", "--version", "no-such-ref")
    assert_refused(state, "deploy --force", *args)
    started, ended = proceeds(state, "deploy --force", *args)
    assert ended["outcome"] == "failed" and "unknown version" in ended["detail"]
    assert started["args"]["force"] is True
    # Confirmed in prod, the guard rail passes and prod's promotion gate is next.
    confirmed = cli(state, *args, "--env", "prod", "--confirm-env", "prod")
    assert confirmed.returncode == 1 and "guard rail" in confirmed.stderr
    assert "promotion gate" in confirmed.stderr
    assert audit(state)[-1]["outcome"] == "refused" and audit(state)[-1]["args"]["force"]


def _history(state: Path, from_build: str) -> None:
    (state / "deploy").mkdir()
    entry = {
        "kind": "deploy",
        "color": "blue",
        "from": "green",
        "from_build": from_build,
        "version": "HEAD",
        "label": "HEAD@abc",
        "outcome": "success",
        "started": 1.0,
        "ended": 2.0,
    }
    (state / "deploy" / "history.jsonl").write_text(json.dumps(entry) + "\n")


def test_rollback_past_the_previous_release_refuses_in_prod_and_proceeds_in_dev(
    state: Path, tmp_path: Path
):
    # blue is live after a deploy from green's git-old; green now holds the checkout build.
    _history(state, from_build="git-old")
    assert_refused(state, "rollback", "rollback")
    _, ended = proceeds(state, "rollback", "rollback")
    assert ended["outcome"] == "failed"  # no stack to start green on: it got that far
    confirmed = tmp_path / "confirmed"  # the failed rollback above left its journal open
    confirmed.mkdir()
    _history(confirmed, from_build="git-old")
    started, _ = proceeds(confirmed, "rollback", "rollback", env="prod")
    assert "not the previous release" in started["detail"]


def test_rollback_to_the_previous_release_needs_no_confirmation_in_prod(state: Path):
    _history(state, from_build="checkout")  # green still holds what ran before
    result = cli(state, "rollback", "--env", "prod")
    assert "needs --confirm-env" not in result.stderr
    outcomes = [e["outcome"] for e in audit(state)]
    assert outcomes[0] == "started" and "refused" not in outcomes


def test_promote_refuses_in_prod_and_proceeds_in_dev(state: Path):
    """Promote moves all traffic, as a rollback does: through the guard rail (issue 23),
    not straight to the procedure, which audited nothing and asked for nothing."""
    assert_refused(state, "promote", "promote")
    started, ended = proceeds(state, "promote", "promote", "--analysis-window=30s")
    assert ended["outcome"] == "failed" and "no deploy awaits promotion" in ended["detail"]
    assert started["args"]["analysis_window_s"] == 30.0
    started, _ = proceeds(state, "promote", "promote", env="prod")
    assert started["env"] == "prod" and started["args"]["confirm_env"] == "prod"


def test_promote_with_bad_input_is_refused_before_the_audit(state: Path):
    result = cli(state, "promote", "--analysis-window=2h", "--env", "prod")
    assert result.returncode == 1 and "longer than the maximum" in result.stderr
    assert audit(state) == []


def test_require_staging_pass_refuses_without_a_staging_load_test(state: Path, tmp_path: Path):
    staging_state = tmp_path / "staging-state"
    defs = tmp_path / "environments"
    defs.mkdir()
    for name in ("base", "dev", "prod"):
        (defs / f"{name}.yaml").write_text(
            (REPO_ROOT / f"stack/environments/{name}.yaml").read_text()
        )
    (defs / "staging.yaml").write_text(f"state_dir: {staging_state}\n")
    args = ("deploy", "--color", "green", "--version", "HEAD", "--require-staging-pass")
    result = cli(state, *args, OCEAN_ENV_DIR=str(defs))
    assert result.returncode == 1
    assert "promotion gate" in result.stderr and str(staging_state) in result.stderr
    assert [(e["action"], e["outcome"]) for e in audit(state)] == [("deploy", "refused")]


def test_status_names_the_environment_it_looked_at(state: Path):
    result = cli(state, "status", "--json", "--env", "staging")
    report = json.loads(result.stdout)  # nothing runs here: exit 1, the report still prints
    assert (report["env"], report["runtime"], report["state_dir"]) == (
        "staging",
        "local",
        str(state),
    )
