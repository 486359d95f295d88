"""Issue 25, High 2, without services: the redis exporter's mutual TLS material and the
private sockets between nginx and the nginx exporter."""

from __future__ import annotations

import datetime as dt
import os
import pwd
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from ocean import scrape_tls
from ocean.errors import OceanError
from ocean.runtime import scrape_sockets


def _eku(path: Path) -> set:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_scrape_pki_has_a_server_and_a_client_certificate_from_its_own_ca(tmp_path):
    scrape = scrape_tls.ScrapeTls(tmp_path / "scrape")
    done = scrape_tls.ensure(scrape, ["127.0.0.1"])
    assert "client certificate issued" in done
    ca = x509.load_pem_x509_certificate(scrape.ca_cert.read_bytes())
    for cert in (scrape.server_cert, scrape.client_cert):
        assert x509.load_pem_x509_certificate(cert.read_bytes()).issuer == ca.subject
    # The client certificate opens the exporter and nothing else; the server one cannot
    # be used as a client.
    assert _eku(scrape.client_cert) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    assert _eku(scrape.server_cert) == {ExtendedKeyUsageOID.SERVER_AUTH}
    for key in (scrape.client_key, scrape.server_key, scrape.files.ca_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert scrape_tls.ensure(scrape, ["127.0.0.1"]) == "certificates valid"


def test_a_client_certificate_near_its_end_or_of_another_ca_is_issued_again(tmp_path):
    scrape = scrape_tls.ScrapeTls(tmp_path / "scrape")
    scrape_tls.ensure(scrape, ["127.0.0.1"])
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=scrape_tls.CLIENT_DAYS - 10)
    assert "client certificate issued" in scrape_tls.ensure(scrape, ["127.0.0.1"], later)
    for name in ("ca.crt", "ca.key", "server.crt", "server.key"):
        (scrape.directory / name).unlink()
    assert "client certificate issued" in scrape_tls.ensure(scrape, ["127.0.0.1"])


def test_sockets_live_below_the_state_dir_unless_the_path_cannot_hold_them(tmp_path):
    state = tmp_path / "state"
    assert scrape_sockets.locate(state / "run", state).directory == state / "run" / "scrape"
    # Too long (in bytes: sun_path's unit), or a ':' (0.11 splits its addresses on it).
    for odd in (tmp_path / ("x" * 90), tmp_path / ("ü" * 40), tmp_path / "with:colon"):
        found = scrape_sockets.locate(odd / "run", odd).directory
        assert found.parent == Path("/tmp") and found.name.endswith("-scrape")
        assert len(os.fsencode(scrape_sockets.ScrapeSockets(found).nginx_exporter)) <= 100


def test_the_socket_directory_is_made_private(tmp_path):
    sockets = scrape_sockets.ScrapeSockets(tmp_path / "run" / "scrape")
    scrape_sockets.prepare(sockets, None)
    info = sockets.directory.stat()
    assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.getuid()
    sockets.directory.chmod(0o777)  # loosened since: tightened again
    scrape_sockets.prepare(sockets, None)
    assert stat.S_IMODE(sockets.directory.stat().st_mode) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a directory of another user")
def test_a_socket_directory_somebody_else_made_is_refused(tmp_path):
    sockets = scrape_sockets.ScrapeSockets(tmp_path / "scrape")
    sockets.directory.mkdir(mode=0o777)
    nobody = pwd.getpwnam("nobody")
    os.chown(sockets.directory, nobody.pw_uid, nobody.pw_gid)
    with pytest.raises(OceanError, match="not a private directory"):
        scrape_sockets.prepare(sockets, None)
    # The same directory is fine when it is meant to be nobody's (nginx's workers').
    scrape_sockets.prepare(sockets, "nobody")
    assert stat.S_IMODE(sockets.directory.stat().st_mode) == 0o700


def test_a_stale_socket_file_is_removed_before_the_program_starts(tmp_path):
    stale = tmp_path / "exporter.sock"
    stale.write_text("left by a SIGKILL")
    argv = scrape_sockets.unlink_then_exec(stale, ["echo", "started", "with spaces"])
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert out == "started with spaces\n"
    assert not stale.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a directory of another user")
def test_a_deep_state_dirs_supervisor_socket_sits_in_a_private_directory(tmp_path):
    """bandit B108: the fallback was the bare file /tmp/ocean-<hash>.sock, a name
    another local user could take first; now a directory only we may own."""
    from ocean.config import PortPlan, Settings
    from ocean.runtime.local import LocalRuntime

    deep = tmp_path / ("d" * 100)
    runtime = LocalRuntime(Settings(state_dir=deep, ports=PortPlan(21000)))
    socket = runtime.supervisor.socket
    assert socket.parent == scrape_sockets.short_dir(deep, "supervisor")
    assert len(os.fsencode(socket)) <= scrape_sockets.MAX_SOCKET_PATH
    socket.parent.mkdir(mode=0o777)  # somebody was first
    try:
        nobody = pwd.getpwnam("nobody")
        os.chown(socket.parent, nobody.pw_uid, nobody.pw_gid)
        with pytest.raises(OceanError, match="not a private directory"):
            list(runtime._ensure_supervisor())
    finally:
        socket.parent.rmdir()
