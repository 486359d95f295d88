"""Where the stack's programs are looked for on this machine: the newest PostgreSQL's
bin directory first (Debian keeps initdb and postgres off PATH), then PATH, then the
system directories (a root shell's PATH may lack /usr/sbin, where nginx is)."""

from __future__ import annotations

import glob
import os
from pathlib import Path


def default_search_path() -> str:
    pg_bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join([*pg_bins[:1], *parts, "/usr/sbin", "/usr/bin", "/sbin", "/bin"])


def _version_key(path: str) -> int:
    try:
        return int(Path(path).parent.name)
    except ValueError:
        return 0
