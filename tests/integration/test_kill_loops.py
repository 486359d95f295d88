"""`kill -9` of backup, backup-verify and restore at random points, again and again, on
a real stack of its own (issue 25, Medium 4 and 5: "after kill -9 … at random points
(repeat 10 times each): no plaintext left behind, no process left running, the stack
serves, and the next run of the same task succeeds").

Each task is first run whole, as a user would, to measure it, and the CLI's own start
(Python, invoke, tasks.py: no work yet) is measured too; then, per round, it is started
again and SIGKILLed after a delay drawn uniformly between the two, when it is at work.
The test also asserts that the kills did land midway and that some of them left work
for the next run to sweep or resume: a loop whose kills miss proves nothing. The
seed is printed (and named in every failure): OCEAN_KILL_SEED=S replays a run.
OCEAN_KILL_LOOPS sets the rounds per task (default 10, the acceptance's: on this
machine the three loops take about 2.5 minutes, so the suite runs them in full).

After each kill:

- **no process left running**: within a few seconds, nothing outside the stack's own
  services (supervisord's tree) and this test has its working directory, an open file
  or its command line in the state dir: pg_dump writes into a work dir, pg_restore and
  gpg read from one, initdb and the scratch servers work in one, the gpg-agent names
  the key dir's GnuPG home;
- **no plaintext left behind**: what the kill left (work dirs with a plain dump or a
  decrypted set, scratch data) is readable by nobody else (`find <state> -perm /o+r`
  is empty), and once the next run has ended none of it is there any more;
- **the stack serves**: the shop's API answers through nginx. A restore killed after it
  stopped writes keeps them stopped until a restore succeeds (by design: the data may
  be half restored), so there the shop must answer once the next restore ended;
- **the next run of the same task succeeds**.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocean.config import REPO_ROOT
from ocean.procedures import backup as backups
from ocean.procfs import all_pids, read_stat
from ocean.runtime.local import LocalRuntime
from tests.conftest import own_stack
from tests.helpers import cli, readable_by_others
from tests.integration.test_backup import add_orders, fill_redis, take
from tests.integration.test_state_private import task_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

LOOPS = int(os.environ.get("OCEAN_KILL_LOOPS", "10"))
SEED = int(os.environ.get("OCEAN_KILL_SEED", str(random.randrange(2**32))))
GRACE = 10.0  # seconds for the parent-death signals to end what the task started
WORK_GLOBS = (".partial-*", ".verify-*", ".restore-*")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    with own_stack(tmp_path_factory, "kill-loops", wait_targets=False) as runtime:
        add_orders(runtime, 2000, customers=200)
        fill_redis(runtime, ttl_keys=50)
        yield runtime


@pytest.mark.parametrize("task", ["backup", "backup-verify", "restore"])
def test_kill_9_at_random_points(stack: LocalRuntime, task: str) -> None:
    runtime, state = stack, stack.settings.state_dir
    rng = random.Random(f"{SEED}-{task}")
    print(f"kill loop {task}: OCEAN_KILL_SEED={SEED}, {LOOPS} rounds")
    argv = task_argv(runtime, task)
    started = time.monotonic()
    duration, _ = run_whole(runtime, argv, "the measured run")
    startup = cli_startup(runtime)
    print(f"  measured run {duration:.1f}s, of which the CLI's start {startup:.1f}s")
    landed = disturbed = 0
    for round_ in range(LOOPS):
        delay = rng.uniform(min(startup, 0.9 * duration), duration)
        where = f"{task}, OCEAN_KILL_SEED={SEED}, round {round_}, kill after {delay:.2f}s"
        midway = kill_after(runtime, argv, delay)
        landed += midway

        left = wait_for_no_leftovers(runtime)
        assert not left, f"{where}: still running: {left}"
        assert readable_by_others(state) == [], where
        work = work_left(runtime)
        restore_pending = (state / "restore-in-progress.json").exists()
        assert task == "restore" or not restore_pending, where
        if not restore_pending:  # writes were never stopped, or are back
            assert shop_answers(runtime), f"{where}: the shop does not answer"

        duration, steps = run_whole(runtime, argv, f"{where}: the next run")
        disturbed += bool(work) or restore_pending or bool({"sweep", "resume"} & set(steps))
        assert work_left(runtime) == [], f"{where}: left after the next run"
        assert backups.Store(runtime).damaged_ids() == [], f"{where}: a half set"
        assert leftovers(runtime) == [], f"{where}: still running after the next run"
        assert shop_answers(runtime), f"{where}: the shop does not answer after the next run"
        print(
            f"  round {round_}: killed after {delay:.2f}s "
            f"{'midway' if midway else '(it had ended)'}; left {len(work)} work dirs"
            f"{', a restore marker' if restore_pending else ''}; next run {duration:.1f}s"
            f"{''.join(f', {name}' for name in ('sweep', 'resume') if name in steps)}"
        )
    print(
        f"kill loop {task}: {LOOPS} rounds ({landed} killed midway, {disturbed} left work "
        f"for the next run) in {time.monotonic() - started:.0f}s"
    )
    assert landed >= LOOPS // 2, f"{task}: only {landed} of {LOOPS} kills landed midway"
    if LOOPS >= 5:  # fewer rounds (a replay) may all land where nothing is left to clean
        assert disturbed >= 1, f"{task}: no kill left anything for the next run to clean up"


def cli_startup(runtime: LocalRuntime) -> float:
    """How long the CLI takes to start, before any task works (``--list`` loads
    tasks.py and does nothing else): kills earlier than that hit no work."""
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(REPO_ROOT), "--list"],
        env=task_env(runtime),
        stdout=subprocess.DEVNULL,
        check=True,
        timeout=120,
    )
    return time.monotonic() - started


# -- the task, whole and killed -----------------------------------------------------------


def task_argv(runtime: LocalRuntime, task: str) -> list[str]:
    if task == "backup":
        return ["backup"]
    backup_id = take(runtime, f"kill-{task}").id
    return (
        ["backup-verify", backup_id] if task == "backup-verify" else ["restore", backup_id, "--yes"]
    )


def run_whole(runtime: LocalRuntime, argv: list[str], what: str) -> tuple[float, list[str]]:
    """Run the task to its end as a user would; its duration (s) and step names."""
    started = time.monotonic()
    result = cli(runtime, *argv, "--json", timeout=300)
    assert result.returncode == 0, f"{what} failed: {result.stderr.strip()}"
    return time.monotonic() - started, [s["name"] for s in json.loads(result.stdout)["steps"]]


def kill_after(runtime: LocalRuntime, argv: list[str], delay: float) -> bool:
    """Start the task, SIGKILL it after ``delay`` s; whether it still ran then."""
    with tempfile.TemporaryFile() as errors:  # a file: a pipe nobody reads could fill
        task = subprocess.Popen(
            [sys.executable, "-m", "invoke", "--search-root", str(REPO_ROOT), *argv],
            env=task_env(runtime),
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        try:
            task.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            task.send_signal(signal.SIGKILL)
            task.wait()
            return True
        finally:
            if task.poll() is None:  # the test itself failed meanwhile
                task.kill()
                task.wait()
        errors.seek(0)
        assert task.returncode == 0, errors.read().decode(errors="replace")
        return False


# -- what a kill may leave ----------------------------------------------------------------


def leftovers(runtime: LocalRuntime) -> list[str]:
    """Live processes, other than the stack's services and this test, whose working
    directory, open files or command line lie in the state dir."""
    state = os.path.realpath(runtime.settings.state_dir)

    def inside(target: str) -> bool:
        return target == state or target.startswith(state + os.sep)

    supervisord, me = runtime.supervisor.pid(), os.getpid()
    found = []
    for pid in all_pids():
        stat = read_stat(pid)
        if stat is None or stat.state == "Z" or pid == me or descends_from(pid, supervisord):
            continue
        proc = Path(f"/proc/{pid}")
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
            places = [os.readlink(proc / "cwd")]
            for fd in (proc / "fd").iterdir():
                try:
                    places.append(os.readlink(fd))
                except OSError:
                    continue
        except OSError:  # gone meanwhile
            continue
        if "ocean.runtime.launch" in cmdline:  # nginx's socket watcher, of up's nginx start
            continue
        if any(inside(p) for p in places) or any(state in arg for arg in cmdline):
            found.append(f"{pid} {stat.comm} {' '.join(cmdline)[:200]}")
    return found


def descends_from(pid: int, ancestor: int | None) -> bool:
    """Whether ``ancestor`` started ``pid`` (or one of its parents did), judged by the
    process' own parent chain when it is looked at: a service's child born a moment ago
    (PostgreSQL's autovacuum worker) is one of the stack's own, not a leftover."""
    seen = 0
    while ancestor and pid > 1 and seen < 64:
        if pid == ancestor:
            return True
        stat = read_stat(pid)
        if stat is None:
            return False
        pid, seen = stat.ppid, seen + 1
    return False


def wait_for_no_leftovers(runtime: LocalRuntime) -> list[str]:
    deadline = time.monotonic() + GRACE
    while (left := leftovers(runtime)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def work_left(runtime: LocalRuntime) -> list[str]:
    """Work dirs (plain dumps, decrypted sets, scratch data) that exist now."""
    root = runtime.backup_location()
    found = [p for pattern in WORK_GLOBS for p in root.glob(pattern)]
    scratch = runtime.settings.state_dir / "scratch"
    found += list(scratch.iterdir()) if scratch.is_dir() else []
    return [str(p) for p in found]


def shop_answers(runtime: LocalRuntime) -> bool:
    with runtime.http("nginx", timeout=10) as front:
        return front.get("/api/products?limit=1").status_code == 200
