"""`invoke validate` checks every environment's definition, not only the default one: a
broken overlay fails it, and the finding names the environment, the file, the line and
the key. The task runs on a broken copy of the checkout (as in test_validate_task.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ocean.config import REPO_ROOT
from ocean.validate import run
from tests.helpers import validate_copy

COPIED = ("src", "monitoring", "docs/runbooks", "stack", "testing")
IGNORE = shutil.ignore_patterns(".venv", "__pycache__", "*.egg-info", "node_modules")


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkout whose staging overlay has a typo and a wrong type (dev and prod fine)."""
    root = tmp_path_factory.mktemp("repo")
    for rel in COPIED:
        shutil.copytree(REPO_ROOT / rel, root / rel, ignore=IGNORE)
    for rel in ("tasks.py", ".yamllint"):
        shutil.copy(REPO_ROOT / rel, root / rel)
    staging = root / "stack" / "environments" / "staging.yaml"
    staging.write_text(
        staging.read_text() + "prometheus_retention: 30d\nguard_rails:\n  confirm_destructive: 1\n"
    )
    return root


def invoke(root: Path, *args: str) -> subprocess.CompletedProcess:
    return validate_copy(root, *args)


def test_the_check_names_environment_file_line_and_key(broken: Path):
    findings = run(broken, {"environments"})
    shipped = len((REPO_ROOT / "stack/environments/staging.yaml").read_text().splitlines())
    got = {(f.file, f.line, f.severity) for f in findings}
    assert got == {  # the two lines appended to the shipped overlay
        ("stack/environments/staging.yaml", shipped + 1, "error"),
        ("stack/environments/staging.yaml", shipped + 3, "error"),
    }, findings
    messages = " ".join(f.message for f in findings)
    assert "environment 'staging'" in messages
    assert "'prometheus_retention'" in messages and "'guard_rails.confirm_destructive'" in messages
    assert all("invoke config --env staging" in f.hint for f in findings)


def test_the_shipped_definitions_are_clean():
    assert run(REPO_ROOT, {"environments"}) == []


def test_invoke_validate_fails_and_names_the_environment(broken: Path):
    result = invoke(broken, "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    ours = [f for f in report["findings"] if f["check"] == "environment-definitions"]
    assert len(ours) == 2 and all("environment 'staging'" in f["message"] for f in ours)
    # Everything else in the copy is as shipped: the overlay is the only reason.
    assert report["errors"] == 2, report["findings"]


def test_validate_with_the_broken_env_selected_still_reports_rather_than_stops(broken: Path):
    result = invoke(broken, "--only", "environments", "--env", "staging")
    assert result.returncode == 1
    assert "staging" in result.stdout and "2 error(s)" in result.stderr
    misspelt = invoke(broken, "--only", "environments", "--env", "stagign")
    assert misspelt.returncode == 1 and "'stagign' is not defined" in misspelt.stderr
