"""The local runtime's state dir, private to the user the stack runs as (issue 25,
Medium 4: 55 files, Redis' data, every log and decrypted dumps among them, were
readable by every local user).

- Directories are 0700 and files 0600, or 0640 for a config without secrets (the ones
  a backup takes, runtime/local_backup.py); nothing has permissions for others.
- When we are root, two services run as other users: PostgreSQL as ``postgres`` and
  nginx's workers as ``nobody``. Each gets an ACL entry for exactly what it needs:
  search (x) on the directories on the way to its files, read on the storefront's
  assets (with default entries, so the assets the shop publishes later inherit it),
  and postgresql.conf is group ``postgres``.
- Who writes what: the services through supervisord's umask (077, the supervisord
  config); the toolkit with explicit modes (render.write_atomic, fsys.open_private,
  workdirs). The toolkit never changes its own umask: it is the whole process', and
  in one test process the compose runtime's containers, which run as other users,
  read what it writes.
- A state dir made before all this is brought into line by the next ``up``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

from ocean.config import Settings
from ocean.errors import OceanError
from ocean.fsys import PRIVATE_DIR, PRIVATE_FILE, remove_other_access
from ocean.stackspec.accounts import NGINX_WORKER_USER, PG_USER


def prepare(settings: Settings, as_root: bool, services: set[str]) -> None:
    """The state dir's directories, private, with the grants ``services`` need."""
    s = settings
    www = s.state_dir / "nginx" / "www"
    for directory in (
        s.state_dir,
        s.etc,
        s.data,
        s.logs,
        s.run,
        s.etc / "targets",
        s.data / "textfile",
        s.data / "inbox",
        s.state_dir / "nginx",
        s.state_dir / "nginx" / "tmp",
        s.state_dir / "nginx" / "cache",
        www,
    ):
        # New ones 0700 (each parent is made first, in this order). Existing ones keep
        # their owner and group bits (with ACL entries those are the mask: resetting
        # it would shut nginx's workers out of www until grant_read below).
        directory.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    remove_other_access(s.state_dir)  # what older versions wrote
    # supervisord opens its own log before its umask applies (it rotates under it).
    os.close(os.open(s.logs / "supervisord.log", os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
    if not as_root:
        return  # every service runs as us
    if "postgres" in services:
        grant_traverse(s.etc, PG_USER)  # postgresql.conf (config_file=)
        grant_traverse(s.data, PG_USER)  # its cluster
    if "nginx" in services:
        # nginx hands its micro-cache and temp dirs to its workers; they read the
        # storefront's assets the shop publishes into www.
        grant_traverse(s.state_dir / "nginx", NGINX_WORKER_USER)
        grant_read(www, NGINX_WORKER_USER)


def grant_traverse(path: Path, user: str) -> None:
    """Let ``user`` pass through ``path`` and every parent of it (search only, no read).

    PostgreSQL must run as its own user, and a checkout may sit under a 0700 home.
    An ACL entry for that one user is the narrowest grant that makes it reachable.
    """
    uid = pwd.getpwnam(user).pw_uid
    for parent in [path, *path.parents]:
        st = parent.stat()
        if st.st_mode & 0o001 or st.st_uid == uid:
            continue
        _setfacl(parent, user, ["-m", f"u:{user}:x"])


def grant_read(folder: Path, user: str) -> None:
    """Let ``user`` read ``folder``'s tree, and what is made in it later (default ACL
    entries; the mode a file is made with still caps them: 0640 gives read)."""
    _setfacl(folder, user, ["-R", "-m", f"u:{user}:rX"])
    for directory, _, _ in os.walk(folder):
        _setfacl(Path(directory), user, ["-d", "-m", f"u:{user}:rX"])


def _setfacl(path: Path, user: str, args: list[str]) -> None:
    setfacl = shutil.which("setfacl")
    if not setfacl:
        raise OceanError(
            f"{user} cannot reach {path}: install the acl package (apt-get install acl)"
        )
    done = subprocess.run([setfacl, *args, str(path)], capture_output=True, text=True)
    if done.returncode != 0:  # a filesystem without ACLs (some tmpfs, NFS, overlays)
        said = (done.stderr or done.stdout).strip().splitlines()
        raise OceanError(f"{user} cannot reach {path}: setfacl failed: {said[-1] if said else ''}")
