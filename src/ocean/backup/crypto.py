"""Backup keys: a GPG key pair (encryption to a recipient public key) and an HMAC key
(the manifest's signature), both in one key dir that is never committed.

The key dir (``OCEAN_BACKUP_KEY_DIR``, default ``<state>/backup-keys``) holds:

- ``gnupg/``: a GnuPG home (0700) with the backup key pair, made on first backup
  (ed25519 + cv25519, no passphrase: a machine key, protected by file permissions).
  ``OCEAN_BACKUP_GPG_RECIPIENT`` names another recipient whose public key was imported
  there (then only the holder of its secret key can restore).
- ``hmac.key`` (0600): 32 random bytes; HMAC-SHA256 of each set's manifest.

No key or passphrase ever appears on a command line: gpg reads its parameters from
stdin and finds keys in its home; the HMAC key is read by this process only.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ocean.errors import OceanError
from ocean.fsys import open_private
from ocean.procfs import signal_on_parent_death, stop_child

CHUNK = 1 << 20
# gpg makes its keyring (pubring.kbx) 0644 under the usual umask: the key dir is the
# state dir's, private to its user (issue 25).
GPG_UMASK = 0o077
# What gpg says when the home's agent closed on it (see BackupKeys.decrypt).
AGENT_LOST = "can't connect to the agent"
KEY_PARAMS = """%no-protection
Key-Type: eddsa
Key-Curve: ed25519
Key-Usage: sign
Subkey-Type: ecdh
Subkey-Curve: cv25519
Subkey-Usage: encrypt
Name-Real: Ocean Ops backup
Name-Email: backup@ocean.local
Expire-Date: 0
%commit
"""


class BackupKeys:
    """The key dir of a stack's backups."""

    def __init__(self, key_dir: Path) -> None:
        self.dir = key_dir
        self.gnupg = key_dir / "gnupg"
        self.hmac_path = key_dir / "hmac.key"

    # -- creation ---------------------------------------------------------------------

    def ensure(self, encrypt: bool) -> str | None:
        """Make the HMAC key (and, for ``encrypt``, the GPG key pair) if missing.

        Returns the recipient fingerprint (None without encryption)."""
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        if not self.hmac_path.exists():
            fd = os.open(self.hmac_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
        if not encrypt:
            return None
        wanted = os.environ.get("OCEAN_BACKUP_GPG_RECIPIENT", "").strip()
        if wanted:
            fpr = self.public_fingerprint(wanted)
            if not fpr:
                raise OceanError(
                    f"OCEAN_BACKUP_GPG_RECIPIENT={wanted} has no public key in {self.gnupg}: "
                    f"import it with `gpg --homedir {self.gnupg} --import KEY.asc`"
                )
            return fpr
        found = self.public_fingerprint("backup@ocean.local")
        if found:
            return found
        self.gnupg.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._agent():
            self._gpg(["--gen-key"], stdin=KEY_PARAMS, what="generate the backup key pair")
        found = self.public_fingerprint("backup@ocean.local")
        if not found:
            raise OceanError(f"gpg made no backup key in {self.gnupg}")
        return found

    # -- HMAC -------------------------------------------------------------------------

    def hmac_key(self) -> bytes:
        try:
            return bytes.fromhex(self.hmac_path.read_text().strip())
        except FileNotFoundError:
            raise OceanError(
                f"no backup key: {self.hmac_path} is missing (the key dir of the stack that "
                "made the backup; set OCEAN_BACKUP_KEY_DIR)"
            ) from None
        except ValueError:
            raise OceanError(f"{self.hmac_path} is not a hex key") from None

    def sign(self, data: bytes) -> str:
        return hmac.new(self.hmac_key(), data, hashlib.sha256).hexdigest()

    def signature_ok(self, data: bytes, signature: str) -> bool:
        return hmac.compare_digest(self.sign(data), signature.strip())

    # -- GPG --------------------------------------------------------------------------

    def public_fingerprint(self, who: str) -> str | None:
        return self._fingerprint(who, secret=False)

    def has_secret_key(self, fingerprint: str) -> bool:
        with self._agent():  # gpg asks the agent which secret keys it holds
            return self._fingerprint(fingerprint, secret=True) == fingerprint

    def _fingerprint(self, who: str, secret: bool) -> str | None:
        if not self.gnupg.is_dir():
            return None
        listing = "--list-secret-keys" if secret else "--list-keys"
        result = subprocess.run(
            [_gpg_bin(), "--homedir", str(self.gnupg), "--batch", "--with-colons", listing, who],
            capture_output=True,
            text=True,
            umask=GPG_UMASK,
        )
        if result.returncode != 0:
            return None
        for line in result.stdout.splitlines():
            fields = line.split(":")
            if fields[0] == "fpr":
                return fields[9]  # the primary key's: the first fpr line
        return None

    def encrypt(self, src: Path, dst: Path, recipient: str) -> tuple[str, int]:
        """Encrypt ``src`` to ``dst`` for ``recipient``; returns (sha256, size) of ``dst``."""
        args = ["--trust-model", "always", "--compress-algo", "none", "-r", recipient]
        with src.open("rb") as source:
            return self._stream([*args, "--encrypt"], source, dst, what=f"encrypt {src.name}")

    def decrypt(self, src: Path, dst: Path) -> tuple[str, int]:
        """Decrypt ``src`` into ``dst``; returns (sha256, size) of the plain ``dst``.

        gpg reaches the secret key through the home's gpg-agent (``_agent``). An agent
        that is going away as gpg connects answers "can't connect to the agent": once,
        gpg is tried again with a fresh one.
        """
        try:
            with self._agent():
                return self._decrypt_once(src, dst)
        except OceanError as exc:
            if AGENT_LOST not in str(exc):
                raise
        with self._agent():  # a fresh one
            return self._decrypt_once(src, dst)

    def _decrypt_once(self, src: Path, dst: Path) -> tuple[str, int]:
        with src.open("rb") as source:
            return self._stream(["--decrypt"], source, dst, what=f"decrypt {src.name}")

    def _stream(self, args: list[str], source, dst: Path, what: str) -> tuple[str, int]:
        """gpg from ``source`` to ``dst``, hashing what it writes as it writes it."""
        proc = subprocess.Popen(
            [_gpg_bin(), "--homedir", str(self.gnupg), "--batch", "--yes", "--quiet", *args],
            stdin=source,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=signal_on_parent_death(signal.SIGTERM),  # not left running by a kill
            umask=GPG_UMASK,
        )
        errors: list[bytes] = []
        reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)
        reader.start()
        digest, size = hashlib.sha256(), 0
        try:
            with open_private(dst) as out:  # plain text when decrypting
                assert proc.stdout is not None  # nosec B101  # narrows a type for the checker only
                while chunk := proc.stdout.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        code = proc.wait()
        reader.join()
        if code != 0:
            message = b"".join(errors).decode(errors="replace").strip().splitlines()
            raise OceanError(f"gpg could not {what}: {' '.join(message[-2:]) or f'exit {code}'}")
        return digest.hexdigest(), size

    def _gpg(self, args: list[str], stdin: str, what: str) -> str:
        result = subprocess.run(
            [_gpg_bin(), "--homedir", str(self.gnupg), "--batch", *args],
            input=stdin,
            capture_output=True,
            text=True,
            umask=GPG_UMASK,
        )
        if result.returncode != 0:
            raise OceanError(f"gpg could not {what}: {result.stderr.strip()}")
        return result.stdout

    @contextmanager
    def _agent(self) -> Iterator[None]:
        """The home's gpg-agent while the block runs, gone when it ends, and gone with
        this process however it dies (issue 25, Medium 4).

        gpg would start one itself, detached (``--daemon`` forks even with
        ``--no-detach``): a kill -9 of the toolkit left it running until the next run.
        So the agent is ours: ``--supervised`` runs it in the foreground on a socket we
        bind where gpg looks for it, with a parent-death signal. Connections queue on
        the listening socket, so gpg never finds it missing. Where the socket cannot be
        bound (a home too deep for a socket path), gpg starts its own as before,
        stopped when the block ends."""
        started = self._start_agent()
        try:
            yield
        finally:
            if started is None:
                self._stop_agent()  # the one gpg started itself
            else:
                agent, where, inode = started
                stop_child(agent)
                with contextlib.suppress(OSError):
                    if os.lstat(where).st_ino == inode:  # not another run's agent's since
                        os.unlink(where)

    def _start_agent(self) -> tuple[subprocess.Popen, str, int] | None:
        gpg_agent, gpgconf = shutil.which("gpg-agent"), shutil.which("gpgconf")
        if not (gpg_agent and gpgconf and self.gnupg.is_dir()):
            return None
        # One a killed run of an older toolkit left listening. (It also stops another
        # run's agent, as stopping the shared agent at the end always did: that run's
        # gpg has its session key already, or meets AGENT_LOST and tries once more.)
        self._stop_agent()
        where = subprocess.run(
            [gpgconf, "--homedir", str(self.gnupg), "--list-dirs", "agent-socket"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            try:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(where)  # a dead agent's socket file
                listener.bind(where)
                os.chmod(where, 0o600)
                inode = os.lstat(where).st_ino
                listener.listen(16)
            except OSError:  # no usable path: gpg starts its own agent
                return None
            # A supervised agent takes its socket as fd 3 (systemd's convention): the
            # shell moves it there from stdin (Popen closes fds ≥ 3 it was not told of).
            agent = subprocess.Popen(
                ["/bin/sh", "-c", 'exec "$0" "$@" 3<&0 0</dev/null', gpg_agent,
                 "--homedir", str(self.gnupg), "--supervised"],
                stdin=listener.fileno(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "LISTEN_FDS": "1", "LISTEN_FDNAMES": "std"},
                preexec_fn=signal_on_parent_death(signal.SIGTERM),
                umask=GPG_UMASK,
            )  # fmt: skip
        return agent, where, inode  # our copy of the socket is closed: the agent has it

    def stop_agent(self) -> None:
        """Stop the home's gpg-agent (one a killed decrypt left running)."""
        self._stop_agent()

    def _stop_agent(self) -> None:
        gpgconf = shutil.which("gpgconf")
        if gpgconf and self.gnupg.is_dir():
            subprocess.run(
                [gpgconf, "--homedir", str(self.gnupg), "--kill", "gpg-agent"],
                capture_output=True,
            )


def _gpg_bin() -> str:
    found = shutil.which("gpg")
    if not found:
        raise OceanError("gpg is not installed: apt-get install gnupg (or back up --no-encrypt)")
    return found


def sha256_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
