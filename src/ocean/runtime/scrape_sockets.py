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

import hashlib
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

from ocean.errors import OceanError

# sun_path holds 108 bytes with the NUL; the supervisor socket keeps the same margin.
MAX_SOCKET_PATH = 100
# Removes a socket file a SIGKILLed listener left behind (bind() fails on it: nginx's
# and Go's listeners remove theirs only on a clean exit), then becomes the program, so
# the supervisor still watches the program's own pid.
_UNLINK_THEN_EXEC = 'rm -f -- "$0" && exec "$@"'


@dataclass(frozen=True)
class ScrapeSockets:
    directory: Path

    @property
    def nginx_status(self) -> Path:
        """nginx's stub_status, for the exporter only."""
        return self.directory / "nginx-status.sock"

    @property
    def nginx_exporter(self) -> Path:
        """The nginx exporter's listener, for nginx only."""
        return self.directory / "nginx-exporter.sock"


def locate(run_dir: Path, state_dir: Path) -> ScrapeSockets:
    preferred = ScrapeSockets(run_dir / "scrape")
    # sun_path counts bytes: a path of non-ASCII letters is longer than it looks.
    longest = max(
        os.fsencode(preferred.nginx_status), os.fsencode(preferred.nginx_exporter), key=len
    )
    if len(longest) <= MAX_SOCKET_PATH and b":" not in longest:
        return preferred
    return ScrapeSockets(short_dir(state_dir, "scrape"))


def short_dir(state_dir: Path, name: str) -> Path:
    """``/tmp/ocean-<hash of the state dir>-<name>``: a socket directory whose path fits
    sun_path whatever the state dir's. A predictable name in /tmp, so it is never
    trusted: ``make_private`` refuses it unless it is ours and private."""
    digest = hashlib.sha256(str(state_dir).encode()).hexdigest()[:12]
    return Path(f"/tmp/ocean-{digest}-{name}")  # nosec B108  # checked by make_private


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


def unlink_then_exec(socket: Path, argv: list[str]) -> list[str]:
    """``argv`` started through /bin/sh after removing a stale ``socket`` file."""
    return ["/bin/sh", "-c", _UNLINK_THEN_EXEC, str(socket), *argv]


def _ids(user: str) -> tuple[int, int]:
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid
