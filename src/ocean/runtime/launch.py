"""Start a program after reaping orphans of its previous run that still hold its ports.

When an nginx master is killed with SIGKILL its workers live on (re-parented to PID 1),
keep the listening sockets and serve the old config, so the restarted master cannot
bind; its cache manager and cache loader live on too, holding no port but memory,
one more after every kill. supervisord runs nginx through this launcher: it kills such
orphans (processes of the same program name whose parent is PID 1 and that hold one of
the ports or share this launcher's working directory, i.e. the stack's state dir), then
execs the program, so supervisord still supervises the program's own pid.

It also keeps nginx's unix listeners private (``--private-socket PATH``): nginx chmods
each to 0666 right after binding it, whatever the umask. The socket's directory (0700,
runtime/scrape_sockets.py) keeps other users out already; a watcher, forked off before
the exec, gives each socket to that directory's owner with mode 0600 once nginx made it,
so the mode says what the directory does (issue 25, Medium 4).

Usage: python -m ocean.runtime.launch --port 18000 --port 18001 -- /usr/sbin/nginx ...
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import stat
import time
from pathlib import Path

from ocean.procfs import all_pids, read_stat

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


def make_private(socket: Path) -> bool:
    """Give ``socket`` to its directory's owner, mode 0600; whether it is so now (False
    while it does not exist yet)."""
    try:
        info, folder = os.lstat(socket), os.stat(socket.parent)
        if not stat.S_ISSOCK(info.st_mode):
            return False
        if (info.st_uid, info.st_gid) != (folder.st_uid, folder.st_gid):
            os.lchown(socket, folder.st_uid, folder.st_gid)
        if stat.S_IMODE(info.st_mode) != 0o600:
            os.chmod(socket, 0o600)  # a socket, not a link: lstat said so
    except OSError:
        return False
    return True


def watch_sockets(sockets: list[Path], timeout: float = 30.0, settle: float = 2.0) -> None:
    """Until each socket has stayed private for ``settle`` s (nginx's chmod follows its
    bind: one look could come between them), at most ``timeout`` s."""
    deadline, since = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if all([make_private(socket) for socket in sockets]):
            since = since or time.monotonic()
            if time.monotonic() - since >= settle:
                return
        else:
            since = None
        time.sleep(0.05)


def spawn_watcher(sockets: list[Path]) -> None:
    """Run ``watch_sockets`` in a grandchild (its parent exits at once), so that the
    program this process becomes never sees it as a child of its own."""
    if not sockets:
        return
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        try:
            if os.fork() == 0:
                watch_sockets(sockets)
        finally:
            os._exit(0)
    os.waitpid(child, 0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, action="append", default=[])
    parser.add_argument("--private-socket", type=Path, action="append", default=[])
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a command to run is required after --")
    reaped = reap(set(args.port), Path(command[0]).name)
    if reaped:
        print(f"launch: killed orphaned {command[0]} processes {reaped}", flush=True)
    spawn_watcher(args.private_socket)
    os.execv(command[0], command)  # nosec B606  # execs the supervised program's argv


if __name__ == "__main__":
    main()
