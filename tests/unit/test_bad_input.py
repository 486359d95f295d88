"""The bad-input sweep (issue 25, acceptance): every task × a matrix of bad values ends
within a bounded time with one line on stderr and a non-zero exit, no traceback, and
nothing changed.

The matrix: unknown flags, wrong types, negative, huge and empty values of every
numeric, duration and required flag; an unknown --env; bad OCEAN_* variables (port
bases that are no number, out of range or in the ephemeral range; an unknown
environment or runtime); state dirs with a space (also among unicode), that are a file
or below one, that are read-only, or that do not exist; backup dirs that are a file,
below one, or read-only. "Unreadable" is a path through a file (ENOTDIR): these tests
run as root, which reads any directory whatever its mode. Read-only is a read-only bind
mount of a marked state dir (skipped where mounting is not allowed).

Only combinations that are errors are swept: `status` on a state dir that does not
exist reports an empty stack (exit 1, by design a table, not an error line), `down`
there has nothing to stop (exit 0); `validate` checks the checkout's files and takes no
state dir, port base or runtime. Each row runs in this process through Invoke's Program
(tests/task_runner.py: the same parser, tasks and error paths, without a second of
interpreter start-up per row); a sample runs as real `invoke` subprocesses as well.
Nothing may start: the autouse fixture makes starting a service, installing a package,
running nox or touching the Docker engine an error the row would report as a traceback.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ocean import statedir
from ocean.config import REPO_ROOT
from tests.task_runner import Outcome, run_task

PORT_BASE = "32700"  # hand-picked; nothing listens there and nothing connects
ROW_SECONDS = 15  # each row must end well within this (most take milliseconds)
SUBPROCESS_SECONDS = 60  # an interpreter's start included, on a busy machine
HUGE = "99999999999999999999"
BACKUP_ID = "20260101T000000Z"

# Each task with the least it needs to get past parsing (positionals, a safe mode).
TASKS: dict[str, list[str]] = {
    "up": ["--no-install"],
    "down": [],
    "config": [],
    "status": [],
    "logs": ["nginx"],
    "restart": ["nginx"],
    "seed": [],
    "validate": [],
    "deploy": ["--color=green"],
    "promote": [],
    "rollback": [],
    "deploy-status": [],
    "backup": [],
    "backups": [],
    "backup-verify": [BACKUP_ID],
    "restore": [BACKUP_ID, "--yes"],
    "backup-prune": ["--dry-run"],
    "loadtest": ["--scenario=smoke"],
    "loadtest-report": [],
    "engine": [],
    "test": ["--sessions=never-run"],
    "alerts.list": [],
    "alerts.silence": ["ShopInstanceDown", "--for=1h", "--reason=maintenance"],
    "alerts.unsilence": ["0b6c5b1e-0000-4000-8000-000000000000"],
    "alerts.drill": [],
    "dashboards": ["snapshot", "system-overview", "--out=/tmp/ocean-sweep-dashboard.png"],
}
INT_FLAGS = {
    "logs": ["lines"],
    "seed": ["products", "customers", "orders", "seed"],
    "deploy": ["warmup"],
    "deploy-status": ["history"],
    "backup-prune": ["keep-last", "keep-daily", "keep-weekly", "keep-monthly"],
    "loadtest": ["vus", "rate"],
    "test": ["cpu-hogs"],
}
FLOAT_FLAGS = {"loadtest-report": ["tolerance"]}
DURATION_FLAGS = {
    "deploy": ["analysis-window", "scale-down-delay", "ready-timeout"],
    "promote": ["analysis-window", "scale-down-delay"],
    "loadtest": ["duration"],
    "alerts.drill": ["timeout"],
    "alerts.silence": ["for"],
}
# Durations for which 0 is no answer either.
POSITIVE_DURATIONS = {"analysis-window", "ready-timeout", "duration", "for"}
# Values that name nothing, for flags and positionals that must name something.
NAMING = [
    ("deploy", ["--color=", "--color=purple", "--version=", "--version= "]),
    ("loadtest", ["--scenario=", "--scenario=nope", "--target=ftp://x", "--guard=x"]),
    ("loadtest", ["--target=http://192.0.2.1:1/", "--guard=error_ratio=lots"]),
    ("logs", ["", "nope"]),
    ("restart", ["", "nope"]),
    ("backup-verify", ["", "../../etc", "nope"]),
    ("restore", ["", "../../etc"]),
    ("config", ["--diff=nope"]),
    ("validate", ["--only=nope"]),
    ("up", ["--services=,", "--services=nope"]),
    ("loadtest-report", ["--id=nope", "--compare=nope"]),
    ("alerts.drill", ["--route=nope"]),
    ("alerts.silence", ["", "NoSuchAlert", "ShopInstanceDwn"]),
    ("alerts.silence", ["--reason=", "--reason= "]),
    ("alerts.unsilence", ["", "not-an-id"]),
    ("dashboards", ["--from=abc", "--from=0s", "--from=-5m", "--from=99999d"]),
    ("dashboards", ["--var=nope", "--var=colour=blue", "--out=x.jpg", "--out=/dev/null/x.png"]),
    ("dashboards", ["--name=nope", "--action=nope"]),
]
# Tasks that must fail where the state dir does not exist (no stack there).
NEEDS_A_STACK = [
    "logs",
    "restart",
    "seed",
    "deploy",
    "promote",
    "rollback",
    "backup",
    "backup-verify",
    "restore",
    "loadtest",
    "loadtest-report",
]
# Tasks that must fail where the state dir is read-only (they write to it).
WRITE_STATE = ["up", "down", "deploy", "promote", "rollback", "backup", "restore"]
USES_BACKUP_DIR = ["backup", "backup-verify", "restore"]
NO_SETTINGS = {"validate"}  # checks the checkout's files: no state dir, port base, runtime


@dataclass
class Row:
    task: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)  # {STATE}/{RO}: filled in per test
    why: str = ""

    @property
    def id(self) -> str:
        env = " ".join(f"{k}={v}" for k, v in self.env.items())
        return f"{env + ' ' if env else ''}{self.task} {' '.join(self.args)}".strip()


def _rows() -> list[Row]:
    rows = [Row(t, [*a, "--no-such-flag"], why="unknown flag") for t, a in TASKS.items()]
    rows += [Row(t, [*a, "--env=nope"], why="unknown env") for t, a in TASKS.items()]
    for task, flags in INT_FLAGS.items():
        for flag in flags:
            for value in ("abc", "1.5", "-1", HUGE, ""):
                rows.append(Row(task, [*TASKS[task], f"--{flag}={value}"], why="count"))
    for task, flags in FLOAT_FLAGS.items():
        for flag in flags:
            for value in ("abc", "-1", "nan", "inf", "1e9", ""):
                rows.append(Row(task, [*TASKS[task], f"--{flag}={value}"], why="number"))
    for task, flags in DURATION_FLAGS.items():
        for flag in flags:
            values = ["abc", "-5s", "99999999h", "1e3", "9" * 5000 + "h1m"]
            values += ["0", "0s"] if flag in POSITIVE_DURATIONS else []
            for value in values:
                rows.append(Row(task, [*TASKS[task], f"--{flag}={value}"], why="duration"))
    for task, variants in NAMING:
        for variant in variants:
            positional = ("logs", "restart", "backup-verify", "restore", "alerts.unsilence")
            if task in positional or (task == "alerts.silence" and not variant.startswith("-")):
                args = [variant, *TASKS[task][1:]]
            else:
                args = [*TASKS[task], variant]
            rows.append(Row(task, args, why="names nothing"))
    settings_tasks = [t for t in TASKS if t not in NO_SETTINGS]
    bad_env = [
        {"OCEAN_PORT_BASE": "abc"},
        {"OCEAN_PORT_BASE": "-1"},
        {"OCEAN_PORT_BASE": "1.5"},
        {"OCEAN_PORT_BASE": "99999"},
        {"OCEAN_PORT_BASE": "40000"},
        {"OCEAN_ENV": "nope"},
        {"OCEAN_STATE_DIR": "{TMP}/a b"},
        {"OCEAN_STATE_DIR": "{TMP}/ünïcødé dir"},
        {"OCEAN_STATE_DIR": "/dev/null"},
    ]
    for env in bad_env:
        rows += [Row(t, TASKS[t], env, why="environment") for t in settings_tasks]
    runtime_tasks = [t for t in settings_tasks if t not in ("config", "test")]
    rows += [Row(t, TASKS[t], {"OCEAN_RUNTIME": "nope"}, why="runtime") for t in runtime_tasks]
    for state in ("{TMP}/nowhere", "/dev/null/below"):
        env = {"OCEAN_STATE_DIR": state}
        rows += [Row(t, TASKS[t], env, why="no state") for t in NEEDS_A_STACK]
    rows += [Row(t, TASKS[t], {"OCEAN_STATE_DIR": "{RO}"}, why="read-only") for t in WRITE_STATE]
    for backups in ("/dev/null", "/dev/null/below", "{RO}/sets"):
        rows += [
            Row(t, TASKS[t], {"OCEAN_BACKUP_DIR": backups}, why="backup dir")
            for t in USES_BACKUP_DIR
        ]
    return rows


ROWS = _rows()


@pytest.fixture(scope="module")
def readonly(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path | None]:
    """A marked state dir with a file in it, mounted read-only on itself (None where
    this machine does not allow the mount)."""
    folder = tmp_path_factory.mktemp("ro")
    statedir.claim(folder, REPO_ROOT)
    (folder / "secrets.env").write_text("X=1\n")
    mount = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(folder), str(folder)], capture_output=True
    )
    if mount.returncode != 0:
        yield None
        return
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture(autouse=True)
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A row that got past its error would start something: make that a loud failure
    (a traceback in the row's outcome) before any service, package or engine moves."""

    def refuse(*args, **kwargs):
        raise RuntimeError("the sweep reached an action that changes the machine")

    for target in (
        "invoke.Context.run",
        "ocean.runtime.local.LocalRuntime.prepare",
        "ocean.runtime.local.LocalRuntime.start",
        "ocean.runtime.packages.apt_install",
        "ocean.runtime.engine.Engine.install",
        "ocean.runtime.engine.Engine.start",
        "ocean.runtime.engine.Engine.stop",
        "ocean.runtime.k6.spawn",
    ):
        monkeypatch.setattr(target, refuse, raising=False)


def _fingerprint(folder: Path) -> dict[str, str]:
    """Every path below ``folder`` with its contents' digest ("dir" for directories).
    The audit log is left out where it already existed: a guarded task records every
    attempt, refused or failed ones too (docs/environments.md), and appending is what
    it may do; a new audit log (a state dir made for it) still counts as a change."""
    if not folder.is_dir():
        return {"": "absent" if not folder.exists() else "file"}
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.name == "audit.jsonl" and path.parent == folder:
            out[path.name] = "present"
            continue
        out[str(path.relative_to(folder))] = (
            "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        )
    return out


def _check(outcome: Outcome, took: float, row_id: str) -> None:
    assert not outcome.timed_out, f"{row_id}: still running after {ROW_SECONDS}s"
    assert took < ROW_SECONDS, f"{row_id}: took {took:.1f}s"
    assert not outcome.traceback, f"{row_id}:\n{outcome.traceback}"
    assert "Traceback" not in outcome.stderr, f"{row_id}:\n{outcome.stderr}"
    assert outcome.code != 0, f"{row_id}: exit 0\n{outcome.stderr}"
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"{row_id}: {len(lines)} lines on stderr:\n{outcome.stderr}"


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_bad_input(row: Row, tmp_path: Path, readonly: Path | None) -> None:
    if "{RO}" in str(row.env) and readonly is None:
        pytest.skip("no read-only bind mount on this machine")
    ro = str(readonly)
    env = {k: v.replace("{TMP}", str(tmp_path)).replace("{RO}", ro) for k, v in row.env.items()}
    state = tmp_path / "state"  # a marked state dir with a file: must stay as it is
    statedir.claim(state, REPO_ROOT)
    (state / "secrets.env").write_text("X=1\n")
    (state / "audit.jsonl").write_text("")  # a stack's, which attempts may append to
    env = {
        "OCEAN_STATE_DIR": str(state),
        "OCEAN_PORT_BASE": PORT_BASE,
        "OCEAN_ENV": None,
        "OCEAN_RUNTIME": "local",
        "OCEAN_BACKUP_DIR": None,
        **env,
    }
    watched = [state, tmp_path / "nowhere", tmp_path / "a b", tmp_path / "ünïcødé dir"]
    before = {str(p): _fingerprint(p) for p in watched}
    ro_before = _fingerprint(readonly) if readonly else None
    started = time.monotonic()
    outcome = run_task(row.task, *row.args, env=env, timeout=ROW_SECONDS)
    _check(outcome, time.monotonic() - started, row.id)
    assert {str(p): _fingerprint(p) for p in watched} == before, f"{row.id}: changed files"
    assert (_fingerprint(readonly) if readonly else None) == ro_before


def test_the_sweep_covers_every_task() -> None:
    """A task added to tasks.py must join the matrix (TASKS and the lists above)."""
    from invoke import Collection

    import tasks

    assert sorted(Collection.from_module(tasks).task_names) == sorted(TASKS)


# -- the same through the real entry point, for a sample ----------------------------------

SAMPLE = [
    ["seed", f"--orders={HUGE}"],
    ["deploy", "--color=green", "--analysis-window=99999999999999h"],
    ["down", "--purge", "--yes", "--no-such-flag"],
    ["status", "--env=nope"],
    ["loadtest", "--scenario=smoke", "--duration=abc"],
    ["backup-prune", "--keep-last=-1"],
]


def test_a_sample_through_invoke_subprocesses(tmp_path: Path) -> None:
    state = tmp_path / "state"
    statedir.claim(state, REPO_ROOT)
    before = _fingerprint(state)
    env = {**os.environ, "OCEAN_STATE_DIR": str(state), "OCEAN_PORT_BASE": PORT_BASE}
    env.pop("OCEAN_ENV", None)

    def one(args: list[str]) -> tuple[list[str], subprocess.CompletedProcess, float]:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "invoke", "--search-root", str(REPO_ROOT), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        return args, done, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=2) as pool:  # two cores: two interpreters at once
        results = list(pool.map(one, SAMPLE))
    for args, done, took in results:
        row_id = " ".join(args)
        assert took < SUBPROCESS_SECONDS, f"{row_id}: took {took:.1f}s"
        assert done.returncode == 1, f"{row_id}: {done.returncode}\n{done.stderr}"
        assert "Traceback" not in done.stderr, f"{row_id}:\n{done.stderr}"
        assert len(done.stderr.strip().splitlines()) == 1, f"{row_id}:\n{done.stderr}"
    assert _fingerprint(state) == before
