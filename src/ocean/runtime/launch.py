"""Start a program after reaping orphans of its previous run that still hold its ports.

When an nginx master is killed with SIGKILL its workers live on (re-parented to PID 1),
keep the listening sockets and serve the old config, so the restarted master cannot
bind; its cache manager and cache loader live on too, holding no port but memory,
one more after every kill. supervisord runs nginx through this launcher: it kills such
orphans (processes of the same program name whose parent is PID 1 and that hold one of
the ports or share this launcher's working directory, i.e. the stack's state dir), then
execs the program, so supervisord still supervises the program's own pid.

Usage: python -m ocean.runtime.launch --port 18000 --port 18001 -- /usr/sbin/nginx ...
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import time
from pathlib import Path

from ocean.runtime.procfs import all_pids, read_stat

LISTEN = "0A"  # TCP state code in /proc/net/tcp


def listening_inodes(ports: set[int]) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == LISTEN and port in ports:
                inodes.add(fields[9])
    return inodes


def orphans_of_this_stack(inodes: set[str], name: str, cwd: str) -> list[int]:
    """PIDs named ``name`` whose parent is PID 1 and that hold one of ``inodes`` or run
    in ``cwd`` (the state dir: no other stack's processes run there)."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    found = []
    for pid in all_pids():
        stat = read_stat(pid)
        if stat is None or stat.comm != name or stat.ppid != 1:
            continue
        try:
            if os.readlink(f"/proc/{pid}/cwd") == cwd:
                found.append(pid)
                continue
            links = {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if links & wanted:
            found.append(pid)
    return found


def reap(ports: set[int], name: str, timeout: float = 2.0) -> list[int]:
    pids = orphans_of_this_stack(listening_inodes(ports), name, os.getcwd())
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline and listening_inodes(ports):
        time.sleep(0.02)
    return pids


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, action="append", default=[])
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a command to run is required after --")
    reaped = reap(set(args.port), Path(command[0]).name)
    if reaped:
        print(f"launch: killed orphaned {command[0]} processes {reaped}", flush=True)
    os.execv(command[0], command)  # nosec B606  # execs the supervised program's argv


if __name__ == "__main__":
    main()
