"""File-system problems in words: whether a directory can be written (without writing
to it), and an OSError as the one line a front end prints (issue 25, Medium 12). And
files only their owner reads, whatever the process' umask (issue 25, Medium 4): the
toolkit never changes its umask, which is process-wide (the test suite runs the compose
runtime, whose containers run as other users, in the same process)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import BinaryIO

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def writable_problem(folder: Path) -> str:
    """Why files cannot be made in ``folder`` (or in the directory that would hold it,
    when it does not exist yet); "" when they can. Nothing is created. Root passes a
    0555 directory (it may write there), not a read-only file system."""
    probe = Path(folder)
    while not probe.exists():
        if probe.is_symlink():  # a dangling link: mkdir would fail on it
            return f"is a dangling symbolic link ({probe})"
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        return f"cannot be made: {probe} is not a directory"
    try:
        if os.statvfs(probe).f_flag & os.ST_RDONLY:
            return f"is on a read-only file system ({probe})"
    except OSError as exc:
        return f"cannot be inspected ({exc.strerror})"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"is not writable ({probe}: permission denied)"
    return ""


def os_error_line(exc: OSError) -> str:
    """'<path>: <what went wrong>' for an OSError nobody turned into a message."""
    what = exc.strerror or str(exc)
    where = exc.filename
    return f"{where}: {what}" if where else what


def open_private(path: Path) -> BinaryIO:
    """``path`` opened for writing (created or truncated) with mode 0600, even when it
    existed with another mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "wb")


def write_private(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` (0600)."""
    with open_private(path) as out:
        out.write(data.encode() if isinstance(data, str) else data)


def copy_private(source: Path, dest: Path) -> None:
    """Copy ``source``'s bytes to ``dest`` (0600; not its mode, as shutil.copy would)."""
    with open(source, "rb") as src, open_private(dest) as out:
        shutil.copyfileobj(src, out, 1 << 20)


def private_dir(path: Path) -> Path:
    """``path`` made (with its missing parents) and set to 0700; returns it."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    os.chmod(path, PRIVATE_DIR)
    return path


def remove_other_access(root: Path) -> int:
    """Take every permission of "others" off ``root`` and everything below it (never
    following a symbolic link); returns how many entries changed. For what programs
    wrote with their own modes (a build's venv) and state dirs made before issue 25.
    Sockets are left alone: a live listener's clients may need them as they are (the
    directory they are in keeps others out; runtime/launch.py)."""
    changed = 0
    for folder, dirs, files in os.walk(root):
        for name in [None, *dirs, *files]:
            path = folder if name is None else os.path.join(folder, name)
            try:
                mode = os.lstat(path).st_mode
                if stat.S_ISLNK(mode) or stat.S_ISSOCK(mode) or not mode & 0o007:
                    continue
                os.chmod(path, mode & 0o7770 & ~0o007, follow_symlinks=False)
                changed += 1
            except OSError:  # gone meanwhile
                continue
    return changed
