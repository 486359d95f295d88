"""`down --purge --yes` against a live stack (issue 25, High 1, acceptance): pointed at a
foreign directory, or at the directory holding the live stack's state dir, it refuses in
one line, deletes nothing and leaves the stack running; pointed at the stack's own state
dir it stops the stack and deletes it.

Its own stack of PostgreSQL alone.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ocean import statedir
from ocean.config import REPO_ROOT
from ocean.procedures import stack as stack_procedures
from tests.conftest import make_runtime

pytestmark = pytest.mark.integration


def _purge(state, port_base: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OCEAN_STATE_DIR": str(state), "OCEAN_PORT_BASE": str(port_base)}
    env.pop("OCEAN_ENV", None)
    argv = [sys.executable, "-m", "invoke", "--search-root", str(REPO_ROOT)]
    return subprocess.run(
        [*argv, "down", "--purge", "--yes"], env=env, capture_output=True, text=True, timeout=120
    )


def test_purge_refuses_foreign_dirs_beside_a_live_stack(tmp_path_factory, tmp_path) -> None:
    runtime = make_runtime(tmp_path_factory, "purge-guard")
    state, base = runtime.settings.state_dir, runtime.settings.ports.base
    try:
        list(stack_procedures.up(runtime, "postgres", True, False))
        foreign = tmp_path / "somebodys"
        (foreign / "important").mkdir(parents=True)
        (foreign / "important" / "data.txt").write_text("keep\n")
        # The foreign dir, and the directory that holds the live stack's state dir. That
        # one is the test session's temp root, where other tests' stacks write as they
        # run: what must survive there is a file of ours and the live stack's state dir.
        sentinel = state.parent / f"{state.name}-sentinel.txt"
        sentinel.write_text("keep\n")
        for target in (foreign, state.parent):
            before = sorted(str(p) for p in foreign.rglob("*"))
            done = _purge(target, base)
            assert done.returncode == 1, done.stderr
            (line,) = done.stderr.strip().splitlines()
            assert line.startswith("error: refusing to purge"), line
            assert sorted(str(p) for p in foreign.rglob("*")) == before
            assert sentinel.read_text() == "keep\n"
            assert (state / statedir.MARKER).is_file()
        assert "postgres" in runtime.running()  # nothing was stopped either
        assert (state / statedir.MARKER).is_file()
        done = _purge(state, base)  # its own state dir: stopped, then deleted
        assert done.returncode == 0, done.stderr
        assert not runtime.running()
        assert sorted(p.name for p in state.iterdir()) == [statedir.MARKER, "audit.jsonl"]
    finally:
        list(stack_procedures.down(runtime))
