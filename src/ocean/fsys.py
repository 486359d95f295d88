"""File-system problems in words: whether a directory can be written (without writing
to it), and an OSError as the one line a front end prints (issue 25, Medium 12)."""

from __future__ import annotations

import os
from pathlib import Path


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
