"""The private unix sockets between nginx and the nginx exporter (issue 25, High 2).

nginx-prometheus-exporter 0.11 (Debian 12) has no authentication of its own, so it
must not listen where any local user can reach it: it listens on a unix socket in a
directory only nginx's workers (and root) can enter, and nginx serves it on its port
behind the operator's basic auth. It reads stub_status from nginx over a second socket
in the same directory, so it needs no credentials itself (it would log them: 0.11
prints its scrape URI, userinfo and all, in every error).

The directory is ``<state>/run/scrape`` (0700, owned by nginx's worker user when we
run as root), unless that path is too long for a socket or holds a ``:`` (0.11 splits
its socket addresses on ``:``): then ``/tmp/ocean-<hash>-scrape``, which must be ours
and private if it exists already (another user could have made it first). supervisord's
socket falls back the same way (``short_dir``, ``make_private``).
"""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

from ocean.errors import OceanError
from ocean.stackspec.sockets import (
    MAX_SOCKET_PATH,
    ScrapeSockets,
    locate,
    short_dir,
    unlink_then_exec,
)

# The paths are the stack spec's (ocean/stackspec/sockets.py: the program table and
# nginx.conf name them); this module makes their directories private.
__all__ = [
    "MAX_SOCKET_PATH",
    "ScrapeSockets",
    "locate",
    "make_private",
    "prepare",
    "short_dir",
    "unlink_then_exec",
]


def prepare(sockets: ScrapeSockets, owner: str | None) -> None:
    """Make the directory private to ``owner`` (None: us), or refuse one that is not."""
    make_private(sockets.directory, owner)


def make_private(directory: Path, owner: str | None) -> None:
    """Make ``directory`` (0700) private to ``owner`` (None: us), or refuse one that is
    not ours to make so (another user's, a symlink, a file)."""
    uid, gid = (os.getuid(), os.getgid()) if owner is None else _ids(owner)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.lstat()
        if stat.S_ISDIR(info.st_mode) and info.st_uid in (os.getuid(), uid):
            os.chown(directory, uid, gid, follow_symlinks=False)
            os.chmod(directory, 0o700, follow_symlinks=False)
            info = directory.lstat()
    except OSError as exc:
        raise OceanError(f"{directory}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or info.st_mode & 0o077:
        raise OceanError(
            f"{directory} is not a private directory of {owner or 'this user'}: "
            "remove it (somebody else may have made it) and run up again"
        )


def _ids(user: str) -> tuple[int, int]:
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid
