"""promtool-test-rules runs a few test files per promtool process (rule_test_batches):
a failing file among passing ones is still named alone, with its own message."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ocean.config import REPO_ROOT
from ocean.validate import core, rule_checks, rule_test_batches
from ocean.validate.core import program

TESTS = "monitoring/rules/tests"
KEPT = ("application.rules.test.yml", "security.rules.test.yml", "infrastructure.rules.test.yml")


def test_plan_spreads_files_over_batches_by_size(tmp_path: Path):
    sizes = {"a": 900, "b": 500, "c": 400, "d": 300, "e": 100}
    for name, size in sizes.items():
        (tmp_path / name).write_text("x" * size)
    files = [tmp_path / n for n in sizes]
    batches = rule_test_batches.plan(files, 2)
    assert [[p.name for p in b] for b in batches] == [["a", "d"], ["b", "c", "e"]]
    assert sorted(p.name for b in rule_test_batches.plan(files, 8) for p in b) == sorted(sizes)
    assert len(rule_test_batches.plan(files, 8)) == 5  # never an empty batch
    assert rule_test_batches.plan([], 4) == []


def test_passed_reads_each_files_section():
    stdout = (
        "Unit Testing:  a.yml\n  SUCCESS\n\n"
        "Unit Testing:  b.yml\n\n\n"  # failed: its details went to stderr
        "Unit Testing:  c.yml\n  SUCCESS\n\n"
    )
    assert rule_test_batches.passed(stdout) == {"a.yml", "c.yml"}
    assert rule_test_batches.passed("") == set()


@pytest.mark.skipif(program("promtool") is None, reason="promtool not installed")
def test_a_failing_file_in_a_batch_is_named_alone(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("OCEAN_VALIDATE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("os.cpu_count", lambda: 1)  # 2 batches for the 3 files, 1 worker
    shutil.copytree(REPO_ROOT / "monitoring", tmp_path / "monitoring")
    for path in (tmp_path / TESTS).glob("*.yml"):
        if path.name not in KEPT:
            path.unlink()
    check = core.registry()["promtool-test-rules"]
    assert check.fn(tmp_path) == []
    assert len(list((tmp_path / "cache").iterdir())) == 3  # each file remembered
    shutil.rmtree(tmp_path / "cache")
    # application's file (the largest) is a batch of its own; the other two share one
    broken = tmp_path / TESTS / "infrastructure.rules.test.yml"
    text = broken.read_text()
    old = "summary: Target node/127.0.0.1:26050 is down"
    assert old in text
    broken.write_text(text.replace(old, old + " now", 1))
    (found,) = check.fn(tmp_path)
    assert found.file == f"{TESTS}/infrastructure.rules.test.yml"
    assert "TargetDown" in found.message
    assert found.line == 18  # the first `alertname: TargetDown`
    assert len(list((tmp_path / "cache").iterdir())) == 2  # the two passing ones only


@pytest.mark.skipif(program("promtool") is None, reason="promtool not installed")
def test_check_rules_runs_one_promtool_when_clean_and_each_file_otherwise(
    tmp_path: Path, monkeypatch
):
    shutil.copytree(REPO_ROOT / "monitoring", tmp_path / "monitoring")
    ran: list[list[str]] = []
    real_run = rule_checks.run_tool

    def recording(args, cwd=None, env=None):
        ran.append(args)
        return real_run(args, cwd=cwd, env=env)

    monkeypatch.setattr(rule_checks, "run_tool", recording)
    check = core.registry()["promtool-check-rules"]
    assert check.fn(tmp_path) == []
    assert len(ran) == 1  # every rule file in one process
    rules = tmp_path / "monitoring/rules/shop.rules.yml"
    text = rules.read_text()
    assert "expr: " in text
    rules.write_text(text.replace("expr: ", "expr: sum(( ", 1))
    ran.clear()
    found = check.fn(tmp_path)
    assert found and {f.file for f in found} == {"monitoring/rules/shop.rules.yml"}
    assert len(ran) == 1 + len(list((tmp_path / "monitoring/rules").glob("*.yml")))
