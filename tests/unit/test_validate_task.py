"""The `invoke validate` task itself, run as a subprocess: exit codes, --json, --only,
--strict, and the one-line error for an unknown kind.

The task validates the checkout its `ocean` package comes from (ocean.config.REPO_ROOT).
A broken copy is validated by running the copy's own tasks.py with the copy's src/ first
on PYTHONPATH (ahead of the editable install's path entry).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ocean.config import REPO_ROOT
from tests.helpers import validate_copy

COPIED = ("src", "monitoring", "docs/runbooks", "stack", "testing")
IGNORE = shutil.ignore_patterns(
    ".venv", "__pycache__", "*.egg-info", "node_modules", ".pytest_cache"
)


def invoke(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return validate_copy(root, *args, timeout=timeout)


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    for rel in COPIED:
        shutil.copytree(REPO_ROOT / rel, root / rel, ignore=IGNORE)
    for rel in ("tasks.py", ".yamllint"):
        shutil.copy(REPO_ROOT / rel, root / rel)
    return root


def test_the_repo_as_shipped_exits_0_with_json():
    result = invoke(REPO_ROOT, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert (report["ok"], report["errors"], report["warnings"]) == (True, 0, 0)
    assert report["findings"] == []
    assert report["seconds"] >= 0


def test_unknown_kind_is_one_line_and_non_zero():
    result = invoke(REPO_ROOT, "--only", "rules,nope")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: unknown check kind nope: choose from ")
    assert "rules" in lines[0] and "compose" in lines[0]
    assert result.stdout == ""


def test_the_copy_validates_itself(copy: Path):
    # The subprocess must read the copy, not this checkout: break the copy only.
    result = invoke(copy, "--only", "cross-file", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    runbook = copy / "docs/runbooks/RedisDown.md"
    saved = runbook.read_text()
    runbook.unlink()
    try:
        result = invoke(copy, "--only", "cross-file", "--json")
    finally:
        runbook.write_text(saved)
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["errors"] >= 1
    (finding,) = report["findings"]
    assert (finding["check"], finding["file"]) == (
        "alert-runbooks",
        "monitoring/rules/cache.rules.yml",
    )
    assert "RedisDown" in finding["message"]


def test_warnings_fail_only_with_strict(copy: Path):
    rel = copy / "stack/docker-compose.prod.yml"
    rel.write_text(
        "services:\n"
        "  shop:\n"
        "    image: ${SHOP_IMAGE}\n"
        "    healthcheck: {test: [CMD, 'true']}\n"
        "    mem_limit: 256m\n"
        "    cpus: 0.5\n"
    )
    # The template beside the compose file is the one the check reads (stack/ has one).
    template = copy / "stack/.env.template"
    shipped = template.read_text() if template.exists() else None
    template.write_text("SHOP_IMAGE=ocean/shop:0.1.0\n")
    try:
        relaxed = invoke(copy, "--only", "compose", "--json")
        strict = invoke(copy, "--only", "compose", "--strict")
    finally:
        rel.unlink()
        if shipped is None:
            template.unlink()
        else:
            template.write_text(shipped)
    assert relaxed.returncode == 0, relaxed.stdout + relaxed.stderr
    report = json.loads(relaxed.stdout)
    assert (report["ok"], report["errors"], report["warnings"]) == (True, 0, 1)
    assert report["findings"][0]["check"] == "compose-images"
    assert strict.returncode == 1
    assert "compose-images" in strict.stdout
