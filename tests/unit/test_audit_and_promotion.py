"""The audit log (JSON lines, secrets masked, survives a purge), the guard rail's decision
in isolation, and the staging promotion gate against saved load-test results."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

from ocean import audit, environments, guardrails, promotion
from ocean.config import REPO_ROOT, PortPlan, Settings
from ocean.errors import OceanError, Refused
from ocean.loadtest import results
from ocean.model import Step, StepStatus
from ocean.runtime.local import LocalRuntime


def settings_for(tmp_path: Path, name: str = "prod") -> Settings:
    env = environments.load(name, REPO_ROOT)
    return Settings(state_dir=tmp_path / name, ports=PortPlan(47000), environment=env)


def test_entries_are_json_lines_with_who_when_what_and_no_secret(tmp_path: Path):
    settings = settings_for(tmp_path)
    first = audit.record(settings, "restore", "started", {"id": "x", "admin_token": "t0p"})
    audit.record(settings, "restore", "succeeded", {"id": "x"}, "done", first["id"])
    lines = audit.path(settings).read_text().splitlines()
    assert len(lines) == 2 and "t0p" not in "".join(lines)
    entries = audit.read(settings)
    assert [e["outcome"] for e in entries] == ["started", "succeeded"]
    assert entries[0]["args"] == {"id": "x", "admin_token": audit.MASK}
    assert entries[0]["env"] == "prod" and entries[0]["who"] and entries[1]["id"] == first["id"]
    assert stat.S_IMODE(audit.path(settings).stat().st_mode) == 0o600
    with pytest.raises(ValueError):
        audit.record(settings, "restore", "maybe")


def test_a_torn_line_is_skipped(tmp_path: Path):
    settings = settings_for(tmp_path)
    audit.record(settings, "down", "started")
    with audit.path(settings).open("a") as out:
        out.write('{"id": "torn"\n')
    assert len(audit.read(settings)) == 1


def test_kept_puts_the_log_back_after_the_state_dir_is_deleted(tmp_path: Path):
    settings = settings_for(tmp_path)
    audit.record(settings, "down --purge", "started")
    with audit.kept(settings):
        shutil.rmtree(settings.state_dir)
    assert [e["outcome"] for e in audit.read(settings)] == ["started"]


@pytest.mark.parametrize(
    ("env", "required", "confirm", "refused"),
    [
        ("prod", True, "", True),
        ("prod", True, "staging", True),
        ("prod", True, "prod", False),
        ("dev", False, "", False),
        ("dev", False, "prod", True),  # the operator thinks they are in prod
    ],
)
def test_confirmation_rules(env: str, required: bool, confirm: str, refused: bool):
    problem = guardrails.confirmation_problem(env, "restore", "it replaces data", required, confirm)
    assert bool(problem) is refused


def test_guarded_records_failed_when_the_last_step_failed(tmp_path: Path):
    runtime = LocalRuntime(settings_for(tmp_path, "dev"))

    def steps():
        yield Step("rolled back", StepStatus.FAILED, "breach")

    list(guardrails.guarded(runtime, "deploy", {}, steps))
    assert [e["outcome"] for e in audit.read(runtime.settings)] == ["started", "failed"]


def test_guarded_records_failed_on_an_error_and_reraises(tmp_path: Path):
    runtime = LocalRuntime(settings_for(tmp_path, "prod"))

    def steps():
        raise OceanError("boom")
        yield  # a generator

    with pytest.raises(OceanError, match="boom"):
        list(guardrails.guarded(runtime, "restore", {}, steps, "prod", destructive="replaces"))
    entries = audit.read(runtime.settings)
    assert [(e["outcome"], e["detail"]) for e in entries] == [
        ("started", "replaces"),
        ("failed", "boom"),
    ]


# -- the promotion gate ----------------------------------------------------------------------


@pytest.fixture
def staging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Definitions whose staging keeps its state in tmp_path (OCEAN_ENV_DIR)."""
    defs = tmp_path / "environments"
    shutil.copytree(REPO_ROOT / "stack" / "environments", defs)
    (defs / "staging.yaml").write_text(f"state_dir: {tmp_path / 'staging-state'}\n")
    monkeypatch.setenv("OCEAN_ENV_DIR", str(defs))
    return promotion.staging_settings(settings_for(tmp_path))


def save_run(staging: Settings, run_id: str, build_id: str, passed: bool) -> None:
    run_dir = results.runs_dir(staging) / run_id
    run_dir.mkdir(parents=True)
    result = results.LoadResult(
        id=run_id,
        scenario="shopping",
        params={"shop_build": {"id": build_id}},
        started=0.0,
        duration_s=60.0,
        k6_exit=0 if passed else 99,
        stopped_by="completed" if passed else "guard",
        client={},
        server={},
        verdicts=[],
        breach=None if passed else {"detail": "error ratio"},
    )
    results.save(run_dir, result, [])


def test_staging_state_dir_comes_from_its_definition(staging: Settings, tmp_path: Path):
    assert staging.state_dir == tmp_path / "staging-state"
    assert staging.env_name == "staging"


def test_gate_passes_only_when_the_newest_staging_run_of_this_build_passed(
    staging: Settings, tmp_path: Path
):
    prod = settings_for(tmp_path)
    build = promotion.build_id(REPO_ROOT, "HEAD")
    with pytest.raises(Refused, match="no load test on staging"):
        list(promotion.gate(prod, "HEAD"))
    save_run(staging, "20261101T000000Z-shopping", "git-someotherbuild", passed=True)
    with pytest.raises(Refused, match="no load test on staging"):
        list(promotion.gate(prod, "HEAD"))
    save_run(staging, "20261102T000000Z-shopping", build, passed=True)
    steps = list(promotion.gate(prod, "HEAD"))
    assert steps[0].name == "staging gate" and "20261102" in steps[0].detail
    save_run(staging, "20261103T000000Z-shopping", build, passed=False)
    with pytest.raises(Refused, match=r"20261103.*failed"):
        list(promotion.gate(prod, "HEAD"))
    # Inconclusive (k6 was the bottleneck): no pass either, and the gate says why.
    save_run(staging, "20261104T000000Z-shopping", build, passed=True)
    result_file = results.runs_dir(staging) / "20261104T000000Z-shopping" / "result.json"
    data = json.loads(result_file.read_text())
    data.update(limited_by="load generator", undelivered=True)
    result_file.write_text(json.dumps(data))
    with pytest.raises(Refused, match=r"20261104.*inconclusive: load generator fell short"):
        list(promotion.gate(prod, "HEAD"))


def test_load_tests_record_the_live_colors_build(tmp_path: Path):
    from ocean.procedures.loadtest import _live_build

    runtime = LocalRuntime(settings_for(tmp_path, "staging"))
    assert _live_build(runtime)["id"] == "checkout"  # before any deploy: what `up` runs
    runtime.settings.etc.mkdir(parents=True)
    build = {"id": "git-abc", "version": "v2", "label": "v2@abc", "python": "/x/python"}
    (runtime.settings.etc / "shop-builds.json").write_text(json.dumps({"blue": build}))
    assert _live_build(runtime) == build
