"""supervisord as the local runtime's process manager: its socket, starting it (or
loading changed program definitions into it), stopping programs and itself, and what
its log says about restarts. The programs themselves are the stack spec's
(ocean/stackspec/programs.py), rendered into supervisord.conf by runtime/local.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from ocean.config import Settings
from ocean.errors import OceanError
from ocean.model import Step, StepStatus
from ocean.procfs import read_stat
from ocean.runtime import scrape_sockets
from ocean.runtime.supervisor import ACTIVE_STATES, Supervisor
from ocean.services import BY_NAME

STOP_TIMEOUT = 10.0
EXIT_RE = re.compile(r"exited: (\S+) \(.*not expected\)")


def socket_path(settings: Settings) -> Path:
    path = settings.run / "supervisor.sock"
    if len(os.fsencode(path)) <= scrape_sockets.MAX_SOCKET_PATH:
        return path
    # A state dir too deep for sun_path: a private directory in /tmp, checked before
    # supervisord binds there (SupervisedPrograms.ensure_running), never a bare
    # predictable file.
    return scrape_sockets.short_dir(settings.state_dir, "supervisor") / "supervisor.sock"


class SupervisedPrograms:
    """The stack's supervisord (one per state dir) and its programs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.supervisor = Supervisor(socket_path(settings))

    def names_in(self, states: set[str]) -> set[str]:
        if not self.supervisor.alive():
            return set()
        return {n for n, info in self.supervisor.processes().items() if info["statename"] in states}

    def ensure_running(self) -> Iterator[Step]:
        """Start supervisord on <etc>/supervisord.conf, or load changed definitions."""
        if self.supervisor.alive():
            yield from self.apply_program_changes()
            return
        started = time.monotonic()
        if self.supervisor.socket.parent != self.settings.run:
            scrape_sockets.make_private(self.supervisor.socket.parent, None)
        self.supervisor.socket.unlink(missing_ok=True)
        supervisord = str(Path(sys.executable).with_name("supervisord"))
        result = subprocess.run(
            [supervisord, "-c", str(self.settings.etc / "supervisord.conf")],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise OceanError(f"supervisord did not start: {result.stderr.strip()}")
        deadline = time.monotonic() + 5
        while not self.supervisor.alive():
            if time.monotonic() > deadline:
                raise OceanError(
                    f"supervisord did not answer; see {self.settings.logs / 'supervisord.log'}"
                )
            time.sleep(0.02)
        yield Step(
            "supervisor", detail=f"pid {self.supervisor.pid()}", seconds=time.monotonic() - started
        )

    def apply_program_changes(self) -> Iterator[Step]:
        """Load changed program definitions into a running supervisord.

        A stopped program is replaced at once; a running one keeps its old definition
        until it is restarted, and the step says so.
        """
        added, changed, removed = self.supervisor.reload_config()
        running = self.names_in(ACTIVE_STATES)
        pending = []
        for name in changed + removed:
            if name in running:
                pending.append(name)
                continue
            self.supervisor.remove(name)
            if name in changed:
                self.supervisor.add(name)
        for name in added:
            self.supervisor.add(name)
        detail = "already running"
        if pending:
            detail += f"; restart {', '.join(pending)} to apply changed settings"
        yield Step("supervisor", StepStatus.SKIPPED, detail)

    def stop_program(self, name: str) -> None:
        """Stop ``name`` and wait until it is down (nothing to do without supervisord)."""
        if self.supervisor.alive():
            self.supervisor.stop(name)
            self.wait_stopped([name])

    def wait_stopped(self, names: list[str]) -> None:
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:
            infos = self.supervisor.processes()
            if not any(infos[n]["statename"] in ACTIVE_STATES for n in names):
                return
            time.sleep(0.02)

    def stop_all(self) -> Iterator[Step]:
        """Every program, then supervisord itself."""
        if not self.supervisor.alive():
            yield Step("stop", StepStatus.SKIPPED, "nothing running")
            return
        started = time.monotonic()
        active = [
            n
            for n, info in self.supervisor.processes().items()
            if info["statename"] in ACTIVE_STATES
        ]
        # Stop all at once: supervisord's own shutdown stops one group at a time.
        for name in active:
            self.supervisor.stop(name)
        self.wait_stopped(active)
        pid = self.supervisor.pid()
        self.supervisor.shutdown()
        wait_pid_gone(pid, STOP_TIMEOUT)
        yield Step(
            "stop",
            detail=f"{len(active)} services and supervisor",
            seconds=time.monotonic() - started,
        )

    def restart_counts(self) -> dict[str, int]:
        """Unexpected exits since supervisord last started, read from its log."""
        log = self.settings.logs / "supervisord.log"
        counts: dict[str, int] = {}
        try:
            lines = log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return counts
        for line in lines:
            if "supervisord started with pid" in line:
                counts.clear()
            match = EXIT_RE.search(line)
            if match and match.group(1) in BY_NAME:
                counts[match.group(1)] = counts.get(match.group(1), 0) + 1
        return counts


def wait_pid_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.02)


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie (PID 1 here reaps slowly, so kill -0 is not enough)."""
    stat = read_stat(pid)
    return stat is not None and stat.state != "Z"
