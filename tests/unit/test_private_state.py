"""The local runtime's state dir private to its user (runtime/private_state.py), nginx's
unix listeners given back to their directory's owner (runtime/launch.py): issue 25,
Medium 4. The whole stack's side is tests/integration/test_state_private.py."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from ocean.config import PortPlan, Settings
from ocean.errors import OceanError
from ocean.runtime import launch, private_state

ROOT = os.geteuid() == 0


def others_may_read(root: Path) -> list[str]:
    return [
        str(path)
        for path in [root, *root.rglob("*")]
        if not path.is_symlink() and path.lstat().st_mode & 0o004
    ]


def test_an_older_state_dir_is_made_private_on_the_next_up(tmp_path: Path):
    state = tmp_path / "state"
    settings = Settings(state_dir=state, ports=PortPlan(30000))
    for folder in (state / "logs", state / "data" / "redis-master", state / "nginx" / "www"):
        folder.mkdir(parents=True)
        os.chmod(folder, 0o755)
    os.chmod(state, 0o755)
    for name in ("logs/shop-blue.log", "data/redis-master/dump.rdb", "nginx/www/shop.css"):
        (state / name).write_text("data")
        os.chmod(state / name, 0o644)
    private_state.prepare(settings, as_root=False, services={"postgres", "nginx"})
    assert others_may_read(state) == []
    assert stat.S_IMODE(state.stat().st_mode) == 0o750  # others' bits gone, no more
    assert stat.S_IMODE((state / "etc").stat().st_mode) == 0o700  # made now
    assert stat.S_IMODE((state / "logs" / "supervisord.log").stat().st_mode) == 0o600


@pytest.mark.skipif(not ROOT or not shutil.which("getfacl"), reason="ACLs are set as root")
def test_as_root_the_services_users_get_just_what_they_need(tmp_path: Path):
    state = tmp_path / "state"
    settings = Settings(state_dir=state, ports=PortPlan(30000))
    private_state.prepare(settings, as_root=True, services={"postgres", "nginx"})

    def acl(path: Path) -> str:
        return subprocess.run(
            ["getfacl", "-p", str(path)], capture_output=True, text=True, check=True
        ).stdout

    assert "user:postgres:--x" in acl(settings.etc) and "user:postgres:--x" in acl(state)
    www = state / "nginx" / "www"
    assert "user:nobody:r-x" in acl(www) and "default:user:nobody:r-x" in acl(www)
    (www / "static").mkdir()  # as the shop publishes: the default entries are inherited
    asset = www / "static" / "shop.css"
    asset.write_text("body {}")
    os.chmod(asset, 0o640)
    assert "user:nobody:r-x" in acl(asset) and "#effective:r--" in acl(asset)
    assert others_may_read(state) == []


def test_an_nginx_listener_is_given_to_its_directorys_owner(tmp_path: Path):
    folder = tmp_path / "scrape"
    folder.mkdir(mode=0o700)
    path = folder / "nginx-status.sock"
    listener = socket.socket(socket.AF_UNIX)
    try:
        assert not launch.make_private(path)  # not made yet
        listener.bind(str(path))
        os.chmod(path, 0o666)  # what nginx does right after bind()
        assert launch.make_private(path)
        info = path.lstat()
        assert stat.S_IMODE(info.st_mode) == 0o600
        assert (info.st_uid, info.st_gid) == (folder.stat().st_uid, folder.stat().st_gid)
    finally:
        listener.close()


@pytest.mark.skipif(shutil.which("setfacl") is None, reason="setfacl not installed")
def test_a_failing_setfacl_is_one_line_naming_the_path_not_a_traceback(tmp_path: Path):
    # What a filesystem without ACLs (or an unknown user) makes setfacl say: an
    # OceanError, which the tasks print as one line, not a CalledProcessError.
    with pytest.raises(OceanError, match=r"cannot reach .*: setfacl failed: \S"):
        private_state.grant_read(tmp_path, "no-such-user-of-ocean")
