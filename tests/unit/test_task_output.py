"""What `deploy-status`, `backups` and `validate` print, pinned byte for byte (text and
--json): the renderings they share with the console moved into ocean.views and
ocean.durations (issue 23, one door per front end), and a user's scripts read these.

Each task runs as a user runs it (a subprocess, no stack), from a state dir written
here; TZ and COLUMNS are fixed so that times and table widths are the same anywhere.
The expected texts (data/task_output/) were recorded from the tasks before the move.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocean.config import REPO_ROOT
from ocean.loadtest import results
from tests.helpers import free_port_base, run_cli

EXPECTED = Path(__file__).parent / "data" / "task_output"
SHOWN = {"TZ": "UTC", "COLUMNS": "120", "NO_COLOR": "1", "TERM": "dumb"}

HISTORY = [
    {
        "kind": "deploy",
        "color": "green",
        "version": "abc123",
        "label": "v1 (abc123)",
        "outcome": "success",
        "ended": 1765000000,
        "duration_s": 42.25,
        "reason": "promoted",
    },
    {
        "kind": "rollback",
        "color": "blue",
        "version": "def456",
        "outcome": "rolled_back",
        "ended": 1765003600,
        "duration_s": 3.0,
        "reason": "p99 breach sustained for 3 intervals on green against the old color blue",
    },
]


def _journal(paused: bool) -> dict:
    return {
        "kind": "deploy",
        "color": "green",
        "from": "blue",
        "version": "HEAD",
        "label": "HEAD",
        "step": "preview",
        "paused": paused,
        "pid": 1,
        "started": 1765007000,
        "steps": [{"step": "preview", "at": 1765007001}],
    }


def _deploy_state(tmp_path: Path, paused: bool) -> Path:
    state = tmp_path / "state"
    deploy = state / "deploy"
    deploy.mkdir(parents=True)
    (deploy / "history.jsonl").write_text("".join(json.dumps(e) + "\n" for e in HISTORY))
    (deploy / "journal.json").write_text(json.dumps(_journal(paused)))
    return state


def _expected(name: str) -> str:
    return (EXPECTED / name).read_text()


def _task(state: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli(*args, state_dir=state, port_base=free_port_base(), env=SHOWN)


UNSETTLED = (
    "an interrupted deploy of green (pid 1) stopped at preview and the stack is down: "
    "`invoke up` brings blue back live and settles it"
)


def test_deploy_status_prints_the_colors_the_open_deploy_and_the_history(tmp_path):
    result = _task(_deploy_state(tmp_path, paused=True), "deploy-status")
    assert result.returncode == 0, result.stderr
    assert result.stderr == _expected("deploy-status-paused.txt")


def test_deploy_status_names_an_unsettled_deploy_and_where_it_stopped(tmp_path):
    result = _task(_deploy_state(tmp_path, paused=False), "deploy-status")
    assert result.returncode == 0, result.stderr
    assert result.stderr == _expected("deploy-status-unsettled.txt")


def test_deploy_status_json_is_the_report_and_the_recovered_steps(tmp_path):
    result = _task(_deploy_state(tmp_path, paused=False), "deploy-status", "--json")
    assert result.returncode == 0, result.stderr
    checkout = {"live": False, "ready": False, "version": "checkout", "label": "checkout"}
    assert json.loads(result.stdout) == {
        "live": "blue",
        "colors": {
            "blue": {**checkout, "live": True, "build": "checkout"},
            "green": {**checkout, "build": "checkout"},
        },
        "open": _journal(paused=False),
        "running": None,
        "unsettled": UNSETTLED,
        "history": HISTORY,
        "recovered": [],
    }


# -- backups: the ages ----------------------------------------------------------------


def _manifest(set_id: str, created: float, orders: int | None) -> dict:
    return {
        "id": set_id,
        "label": "",
        "created": created,
        "ended": created + 2,
        "encrypted": orders is not None,
        "recipient": None,
        "source": {},
        "postgres": {
            "version": "16",
            "major": 16,
            "tables": {} if orders is None else {"public.orders": {"rows": orders}},
        },
        "redis": {"version": "7", "databases": {"0": {"keys": 3}}},
        "files": {
            "postgres.dump": {
                "name": "postgres.dump",
                "size": 3 * 2**20,
                "sha256": "0" * 64,
                "plain_size": 1,
                "plain_sha256": "0" * 64,
            }
        },
        "format": 1,
    }


# How old each set is, and the age the list shows for it (seconds would drift with
# the task's start-up: tests/unit/test_views.py has those).
AGES = [(2 * 86400 + 100, "2d"), (3 * 3600 + 100, "3h"), (25 * 60, "25m"), (5 * 60 + 10, "5m")]


def _backup_state(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    now = time.time()
    for n, (old, _) in enumerate(AGES):
        created = now - old
        set_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(created)) + f"-n{n}"
        set_dir = state / "backups" / set_id
        set_dir.mkdir(parents=True)
        orders = 1234 if n % 2 else None
        (set_dir / "manifest.json").write_text(json.dumps(_manifest(set_id, created, orders)))
        if n == 1:
            (set_dir / "verified.json").write_text(json.dumps({"status": "ok"}))
    damaged = state / "backups" / "20200101T000000Z-damaged"
    damaged.mkdir()
    (damaged / "postgres.dump").write_text("")
    return state


def test_backups_shows_each_sets_age(tmp_path):
    result = _task(_backup_state(tmp_path), "backups")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].split() == ["id", "age", "size", "encrypted", "orders", "verified"]
    assert lines[1].split() == [
        "20200101T000000Z-damaged",
        "damaged",
        "(manifest.json",
        "is",
        "missing):",
        "cannot",
        "be",
        "verified",
        "or",
    ]
    assert lines[2].split() == ["restored"]
    rows = [line.split() for line in lines[3:]]
    assert [row[1] for row in rows] == [age for _, age in AGES]
    assert [row[2:] for row in rows] == [
        ["3.0", "MiB", "no", "0", "never"],
        ["3.0", "MiB", "gpg", "1,234", "ok"],
        ["3.0", "MiB", "no", "0", "never"],
        ["3.0", "MiB", "gpg", "1,234", "never"],
    ]


# -- validate: the summary --------------------------------------------------------------

# A check of its own kind, registered before the task runs: the findings are known.
VALIDATE = """
import sys
from invoke import Collection, Program
from ocean.model import Finding
from ocean.validate import core
import tasks

@core.check("golden", "golden-findings")
def golden(root):
    return [
        Finding("golden-findings", "golden", "warning", "x.yml", 3, "style", "indent"),
        Finding("golden-findings", "golden", "error", "y.yml", 0, "broken", ""),
    ]

Program(namespace=Collection.from_module(tasks)).run(["invoke", *sys.argv[1:]])
"""


def _validate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", VALIDATE, "validate", "--only", "golden", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **SHOWN, "PYTHONPATH": str(REPO_ROOT)},
        cwd=REPO_ROOT,
        timeout=120,
    )


@pytest.mark.parametrize("strict", [False, True])
def test_validate_prints_the_findings_and_one_summary_line(strict):
    result = _validate(*(["--strict"] if strict else []))
    assert result.returncode == 1, result.stderr
    assert result.stdout == _expected("validate-findings.txt")
    assert re.fullmatch(r"1 error\(s\), 1 warning\(s\) in \d+\.\ds\n", result.stderr)


def test_validate_json_counts_and_lists_the_findings():
    result = _validate("--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert isinstance(report.pop("seconds"), float)
    assert report == {
        "ok": False,
        "errors": 1,
        "warnings": 1,
        "findings": [
            {
                "check": "golden-findings",
                "kind": "golden",
                "severity": "error",
                "file": "y.yml",
                "line": 0,
                "message": "broken",
                "hint": "",
            },
            {
                "check": "golden-findings",
                "kind": "golden",
                "severity": "warning",
                "file": "x.yml",
                "line": 3,
                "message": "style",
                "hint": "indent",
            },
        ],
    }


# -- loadtest-report: a run, and a run against a baseline ------------------------------

BASE_ID, RUN_ID = "20261201-100000-stress-aaaa", "20261201-110000-stress-bbbb"


def _run(run_id: str, vus: int, p99: float, failed: float, limited_by: str) -> dict:
    client = {"requests": 12000, "rps": 200.0, "failed_rate": failed, "p50_ms": 12.0}
    client |= {"p95_ms": p99 / 2, "p99_ms": p99}
    server = {"requests": 11800, "error_ratio": failed, "p99_ms": p99 - 5, "db_p95_ms": 8.5}
    verdicts = [
        results.Verdict("availability", "client", "failed < 0.10%", f"{failed:.3%}", True),
        results.Verdict("latency", "client", "p(99) < 200 ms", f"{p99} ms", False, "k6 starved"),
        results.Verdict("latency", "server", "p99 < 200 ms", f"{p99 - 5} ms", False),
        results.Verdict("cache_hit_ratio", "server", "> 80%", "-", None),
    ]
    levels = [
        {"level": 0, "target_rate": 100, "rps": 99.5, "p99_ms": 40.0, "failed_rate": 0.0},
        {"level": 1, "target_rate": 200, "rps": 150.2, "p99_ms": 420.0, "failed_rate": 0.012},
    ]
    levels[0]["held"], levels[1]["held"] = True, False
    breach = {"guard": "error_ratio", "detail": "error_ratio 2.1% over 1.0% for 5s", "at_s": 40}
    return results.LoadResult(
        run_id, "stress", {"vus": vus, "rate": 200}, 1764583200.0, 60.0, 0, "guard",
        client, server, verdicts, breach, levels, levels[0], limited_by,
        {}, f"{limited_by} detail", False,
    ).as_dict()  # fmt: skip


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temp dir with a short path: the report prints the chart's path, which wraps at
    the fixed width when pytest's own temp path (named after the test) is long."""
    folder = Path(tempfile.mkdtemp(prefix="ocean-out-", dir="/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _loadtest_state(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    runs = {
        BASE_ID: _run(BASE_ID, 400, 120.0, 0.0004, results.LOAD_GENERATOR),
        RUN_ID: _run(RUN_ID, 500, 180.0, 0.004, results.MACHINE),
    }
    for run_id, run in runs.items():
        run_dir = state / "loadtests" / run_id
        run_dir.mkdir(parents=True)
        (run_dir / "result.json").write_text(json.dumps(run))
    return state


@pytest.mark.parametrize(
    ("args", "expected", "code"),
    [
        ((), "loadtest-report.txt", 0),
        (("--compare", BASE_ID), "loadtest-report-compare.txt", 1),
        (("--compare", BASE_ID, "--tolerance", "9"), "loadtest-report-tolerant.txt", 0),
    ],
)
def test_loadtest_report_prints_the_run_and_the_comparison(short_tmp, args, expected, code):
    state = _loadtest_state(short_tmp)
    result = _task(state, "loadtest-report", *args)
    assert result.returncode == code, result.stderr
    assert result.stderr.replace(str(state), "<state>") == _expected(expected)


def test_loadtest_report_json_is_the_report(tmp_path):
    state = _loadtest_state(tmp_path)
    result = _task(state, "loadtest-report", "--compare", BASE_ID, "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout.replace(str(state), "<state>"))
    assert report == json.loads(_expected("loadtest-report-compare.json"))
