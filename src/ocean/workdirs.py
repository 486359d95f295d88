"""Private work dirs of one run, and what a killed run left of them (issue 25, Medium 4
and 5).

A backup writes its plain dump into ``.partial-<id>``, a verify and a restore decrypt a
set into ``.verify-*`` / ``.restore-*``, and scratch servers keep their data in
``<state>/scratch/<what>-*``. Each is made 0700 by :func:`claim` and removed on every
exit path the process lives through. A ``kill -9`` is not one of them, so the next
backup, verify or restore calls :func:`sweep`: an entry whose owner is gone is removed,
after the processes still working in it (a scratch server, an orphaned pg_dump) are
killed.

Who owns an entry: the run holds an exclusive ``flock`` on the directory itself while
it works there. The kernel drops it when the process dies however it dies, and a pid
read back later could be a stranger's (pids wrap within minutes here). A directory's
lock follows it through a rename (``.partial-<id>`` becoming the set).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from ocean.procfs import all_pids, read_stat

DIR_MODE = 0o700
KILL_TIMEOUT = 5.0


@contextlib.contextmanager
def claim(path: Path, keep: bool = False) -> Iterator[Path]:
    """Make ``path`` (a new directory, 0700), hold it while the block runs, then remove
    it, whatever ends the block (``keep``: unless the block ended normally, for a
    directory the block renames into place)."""
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        raise FileExistsError(errno.EEXIST, "work dir exists already", str(path))
    # Made and locked under a name no sweep looks at, then renamed (the lock follows):
    # a sweep must never find it unlocked.
    new = Path(tempfile.mkdtemp(prefix=".new-", dir=path.parent))  # 0700
    fd = lock(new)
    try:
        os.rename(new, path)
    except BaseException:
        os.close(fd)
        shutil.rmtree(new, ignore_errors=True)
        raise
    try:
        yield path
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    else:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)
    finally:
        os.close(fd)


def lock(path: Path) -> int:
    """An fd holding ``path``'s exclusive lock (close it to let go)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def abandoned(path: Path) -> bool:
    """Whether nobody holds ``path``'s lock (its run died, or it predates locks)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False  # gone meanwhile, or not a directory: nothing to sweep
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # drops the lock we may have taken
    return True


def sweep(parent: Path, prefixes: Iterable[str]) -> list[Path]:
    """Remove the entries of ``parent`` named ``<prefix>…`` that no live run holds,
    killing first every process still working below them; returns what was removed."""
    prefixes = tuple(prefixes)
    try:
        entries = [e for e in parent.iterdir() if e.name.startswith(prefixes)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    gone = [entry for entry in entries if entry.is_symlink() or abandoned(entry)]
    if gone:
        kill_holders(gone)
    for entry in gone:
        if entry.is_symlink() or not entry.is_dir():
            entry.unlink(missing_ok=True)
        else:
            shutil.rmtree(entry, ignore_errors=True)
    return gone


def holders(paths: Iterable[Path], open_files: bool = True) -> set[int]:
    """Processes (not this one) whose working directory (or, with ``open_files``, an
    open file) lies below one of ``paths``: a scratch PostgreSQL or Redis (each runs in
    its data directory), a pg_dump still writing a dump, a gpg still writing plain
    text."""
    roots = [os.path.realpath(p) for p in paths]

    def below(target: str) -> bool:
        return any(target == root or target.startswith(root + os.sep) for root in roots)

    found = set()
    for pid in all_pids():
        if pid == os.getpid():
            continue
        proc = Path(f"/proc/{pid}")
        try:
            if below(os.readlink(proc / "cwd")):
                found.add(pid)
                continue
            for fd in (proc / "fd").iterdir() if open_files else ():
                with contextlib.suppress(OSError):
                    if below(os.readlink(fd)):
                        found.add(pid)
                        break
        except OSError:  # gone meanwhile, or not ours to inspect
            continue
    return found


def kill_holders(
    paths: Iterable[Path], open_files: bool = True, timeout: float = KILL_TIMEOUT
) -> set[int]:
    """SIGKILL every process :func:`holders` finds and wait until each is gone (a zombie
    counts as gone: PID 1 here reaps slowly). Their data is about to be deleted, so
    nothing is lost that a clean stop would have kept."""
    pids = holders(paths, open_files)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = {pid for pid in pids if (stat := read_stat(pid)) and stat.state != "Z"}
        if not alive:
            break
        time.sleep(0.02)
    return pids
