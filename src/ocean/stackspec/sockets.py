"""Where the private unix sockets between nginx and the nginx exporter are (issue 25,
High 2): the paths only, which the program table and nginx.conf name. Making the
directory private is the runtime's (runtime/scrape_sockets.py, which says why).

The directory is ``<state>/run/scrape``, unless that path is too long for a socket or
holds a ``:`` (nginx-prometheus-exporter 0.11 splits its socket addresses on ``:``):
then ``/tmp/ocean-<hash>-scrape``. supervisord's socket falls back the same way.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

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
    trusted: runtime/scrape_sockets.make_private refuses it unless it is ours and
    private."""
    digest = hashlib.sha256(str(state_dir).encode()).hexdigest()[:12]
    return Path(f"/tmp/ocean-{digest}-{name}")  # nosec B108  # checked by make_private


def unlink_then_exec(socket: Path, argv: list[str]) -> list[str]:
    """``argv`` started through /bin/sh after removing a stale ``socket`` file."""
    return ["/bin/sh", "-c", _UNLINK_THEN_EXEC, str(socket), *argv]
