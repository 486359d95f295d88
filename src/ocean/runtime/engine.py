"""A local Docker engine for the compose runtime's test path (no registry, no bridge).

See ../shared/notes/docker-engine.md: Debian's ``docker.io`` runs here, but only with
networking off (``"bridge": "none"``, no iptables, no forwarding, no masquerade, no
userland proxy): every container uses host networking and talks to 127.0.0.1. The
engine has its own data-root, exec-root and socket under ``OCEAN_DOCKER_ROOT``
(default ``/var/lib/ocean-docker``, outside the clone), so it never meets another engine
on the machine. Images are built locally from a debootstrap base with Debian packages.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ocean.config import REPO_ROOT
from ocean.errors import OceanError
from ocean.model import Step, StepStatus
from ocean.runtime import packages

DEFAULT_ROOT = Path("/var/lib/ocean-docker")
ENGINE_PACKAGES = ("docker.io", "debootstrap")
BASE_IMAGE = "ocean-local/debian:bookworm"
STACK_IMAGE = "ocean-local/stack:bookworm"
PYTHON_IMAGE = "ocean-local/python:3.11"
LOCAL_DIR = REPO_ROOT / "stack" / "local"
SHOP_DIR = REPO_ROOT / "stack" / "shop"
INBOX_DIR = REPO_ROOT / "stack" / "inbox"
SUITE = "bookworm"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0
# The network rule (docs/architecture.md, "Compose runtime"): these five are never changed.
NETWORK_OFF = {
    "bridge": "none",
    "iptables": False,
    "ip-forward": False,
    "ip-masq": False,
    "userland-proxy": False,
}


def engine_root(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("OCEAN_DOCKER_ROOT") or DEFAULT_ROOT).absolute()


def daemon_config(root: Path) -> dict:
    """dockerd's config: networking off, everything it writes below ``root``."""
    if root == REPO_ROOT or REPO_ROOT in root.parents:
        raise OceanError(
            f"OCEAN_DOCKER_ROOT={root} is inside the checkout: choose a folder outside it"
        )
    return {
        **NETWORK_OFF,
        "storage-driver": "overlay2",
        "data-root": str(root / "data"),
        "exec-root": str(root / "exec"),
        "pidfile": str(root / "dockerd.pid"),
        "hosts": [f"unix://{root / 'docker.sock'}"],
        "log-driver": "json-file",
        "log-opts": {"max-size": "10m"},
    }


def apt_mirror(sources: list[Path] | None = None) -> str:
    """The Debian mirror apt uses here (debootstrap fetches from it)."""
    if sources is None:
        sources = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            if path.suffix == ".sources" and words[:1] == ["URIs:"]:
                uri = words[1]
            elif words[:1] == ["deb"]:
                uri = next((w for w in words[1:] if not w.startswith("[")), "")
            else:
                continue
            if uri.rstrip("/").endswith("/debian"):
                return uri.rstrip("/")
    return DEFAULT_MIRROR


@dataclass
class Engine:
    """The dockerd this toolkit starts (and only that one): install, start, build, stop."""

    root: Path

    @classmethod
    def from_env(cls) -> Engine:
        return cls(engine_root())

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    def env(self) -> dict[str, str]:
        """The environment the docker CLI and compose need to reach this engine."""
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_CONFIG": str(self.root / "config")}

    # -- install ------------------------------------------------------------------------

    def missing_programs(self) -> list[str]:
        return [p for p in ("dockerd", "debootstrap") if not shutil.which(p, path=_PATH)]

    def install(self) -> Iterator[Step]:
        missing = self.missing_programs()
        if not missing:
            yield Step("engine packages", StepStatus.SKIPPED, "docker.io, debootstrap present")
            return
        command = packages.apt_command(list(ENGINE_PACKAGES))
        if os.geteuid() != 0:
            raise OceanError(f"missing {', '.join(missing)}; install them with: {command}")
        started = time.monotonic()
        packages.apt_install(list(ENGINE_PACKAGES))
        yield Step("engine packages", detail=command, seconds=time.monotonic() - started)

    # -- start and stop -------------------------------------------------------------------

    def pid(self) -> int | None:
        try:
            pid = int((self.root / "dockerd.pid").read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def answers(self) -> bool:
        result = subprocess.run(
            [docker_client_path(), "version", "--format", "{{.Server.Version}}"],
            env=self.env(),
            capture_output=True,
            text=True,
        )
        return result.returncode == 0

    def start(self) -> Iterator[Step]:
        if self.pid() and self.answers():
            yield Step("engine", StepStatus.SKIPPED, f"running, pid {self.pid()}")
            return
        if self.missing_programs():
            raise OceanError("dockerd is not installed: run `invoke engine --install` as root")
        started = time.monotonic()
        for sub in ("data", "exec", "config"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        config = self.root / "daemon.json"
        config.write_text(json.dumps(daemon_config(self.root), indent=2) + "\n")
        with open(self.log, "ab") as log:
            subprocess.Popen(
                [shutil.which("dockerd", path=_PATH) or "dockerd", "--config-file", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not (self.pid() and self.answers()):
            if time.monotonic() > deadline:
                raise OceanError(f"dockerd did not answer in {START_TIMEOUT:.0f}s; see {self.log}")
            time.sleep(0.1)
        yield Step(
            "engine",
            detail=f"dockerd pid {self.pid()}, {self.host}",
            seconds=time.monotonic() - started,
        )
        self.assert_no_bridge()

    def networks(self) -> list[str]:
        result = self.docker(["network", "ls", "--format", "{{.Name}}"])
        return sorted(result.stdout.split())

    def assert_no_bridge(self) -> None:
        """Only ``host`` and ``none`` may exist: the engine runs with networking off."""
        extra = [n for n in self.networks() if n not in ("host", "none")]
        if extra:
            raise OceanError(
                f"the engine has networks {', '.join(extra)}: only host networking is allowed; "
                f"remove them with `docker network rm {' '.join(extra)}`"
            )

    def stop(self) -> Iterator[Step]:
        pid = self.pid()
        if pid is None:
            yield Step("engine", StepStatus.SKIPPED, "not running")
            self._unmount()
            return
        started = time.monotonic()
        ids = self.docker(["ps", "-aq"]).stdout.split()
        if ids:
            self.docker(["rm", "-f", *ids])
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _alive(pid):
            if time.monotonic() > deadline:
                raise OceanError(f"dockerd (pid {pid}) did not stop in {STOP_TIMEOUT:.0f}s")
            time.sleep(0.1)
        self._unmount()
        yield Step(
            "engine stopped",
            detail=f"pid {pid}, {len(ids)} containers removed",
            seconds=time.monotonic() - started,
        )

    def _unmount(self) -> None:
        """Unmount what dockerd left mounted below its root (deepest first)."""
        root = str(self.root) + "/"
        mounts = [
            line.split()[1]
            for line in Path("/proc/self/mounts").read_text().splitlines()
            if line.split()[1].startswith(root)
        ]
        for mount in sorted(mounts, key=len, reverse=True):
            # B607: a system tool from PATH
            subprocess.run(["umount", "-l", mount], capture_output=True)  # nosec B607

    def purge(self) -> Iterator[Step]:
        """Stop the engine and delete its root (images, containers, volumes)."""
        yield from self.stop()
        if self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)
        yield Step("engine purged", detail=str(self.root))

    # -- images ---------------------------------------------------------------------------

    def docker(
        self, args: list[str], check: bool = True, env: dict | None = None, **kw
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [docker_client_path(), *args],
            env=env or self.env(),
            capture_output=True,
            text=True,
            **kw,
        )
        if check and result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise OceanError(f"docker {args[0]} failed: {' '.join(tail)}")
        return result

    def has_image(self, image: str) -> bool:
        return self.docker(["image", "inspect", image], check=False).returncode == 0

    def base_image(self) -> Iterator[Step]:
        """The Debian base: debootstrap minbase, imported as BASE_IMAGE."""
        if self.has_image(BASE_IMAGE):
            yield Step("base image", StepStatus.SKIPPED, f"{BASE_IMAGE} exists")
            return
        started = time.monotonic()
        mirror = apt_mirror()
        target = self.root / "debootstrap"
        shutil.rmtree(target, ignore_errors=True)
        result = subprocess.run(  # nosec B607  # a system tool from PATH
            ["debootstrap", "--variant=minbase", SUITE, str(target), mirror],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            raise OceanError(f"debootstrap failed: {result.stderr.strip()[-300:]}")
        security = mirror.rsplit("/", 1)[0] + "/debian-security"
        (target / "etc/apt/sources.list").write_text(
            f"deb {mirror} {SUITE} main\n"
            f"deb {mirror} {SUITE}-updates main\n"
            f"deb {security} {SUITE}-security main\n"
        )
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (target / junk).glob("*"):
                if path.is_file():
                    path.unlink()
        # B607: a system tool from PATH
        tar = subprocess.Popen(["tar", "-C", str(target), "-c", "."], stdout=subprocess.PIPE)  # nosec B607
        self.docker(["import", "-", BASE_IMAGE], stdin=tar.stdout)
        tar.wait()
        shutil.rmtree(target, ignore_errors=True)
        yield Step(
            "base image", detail=f"{BASE_IMAGE} from {mirror}", seconds=time.monotonic() - started
        )

    def build_image(
        self, tag: str, dockerfile: Path, context: Path, args: dict[str, str] | None = None
    ) -> Iterator[Step]:
        """``docker build --network host`` (apt and pip reach their mirrors from the host)."""
        started = time.monotonic()
        build_args = [a for k, v in (args or {}).items() for a in ("--build-arg", f"{k}={v}")]
        self.docker(
            [
                "build",
                "--network",
                "host",
                "--force-rm",  # a failed step leaves no container behind
                *build_args,
                "-t",
                tag,
                "-f",
                str(dockerfile),
                str(context),
            ],
            env={**self.env(), "DOCKER_BUILDKIT": "0"},  # Debian's client lacks buildx
        )
        yield Step(f"image {tag}", detail=dockerfile.name, seconds=time.monotonic() - started)

    def build_local_images(
        self, pg_uid: int, pg_gid: int, shop_tag: str, inbox_tag: str
    ) -> Iterator[Step]:
        """The images the local compose override runs (each skipped when present: the
        shop's and the inbox's tags name their content, :func:`source_tag`)."""
        base = {"BASE": BASE_IMAGE}
        wanted = [
            (
                STACK_IMAGE,
                LOCAL_DIR / "Dockerfile.stack",
                LOCAL_DIR,
                {**base, "PG_UID": str(pg_uid), "PG_GID": str(pg_gid)},
            ),
            (PYTHON_IMAGE, LOCAL_DIR / "Dockerfile.python", self._python_context(), base),
            # The production Dockerfile itself, on the local python image.
            (
                shop_image(shop_tag),
                SHOP_DIR / "Dockerfile",
                SHOP_DIR,
                {"PYTHON_IMAGE": PYTHON_IMAGE},
            ),
            # The alert inbox, from its production Dockerfile likewise.
            (
                inbox_image(inbox_tag),
                INBOX_DIR / "Dockerfile",
                INBOX_DIR,
                {"PYTHON_IMAGE": PYTHON_IMAGE},
            ),
        ]
        for tag, dockerfile, context, args in wanted:
            if self.has_image(tag):
                yield Step(f"image {tag}", StepStatus.SKIPPED, "exists")
            else:
                yield from self.build_image(tag, dockerfile, context, args)

    def _python_context(self) -> Path:
        """Dockerfile.python's context: the host's CA bundle (pip behind a TLS proxy)."""
        context = self.root / "build-python"
        context.mkdir(parents=True, exist_ok=True)
        bundle = Path(os.environ.get("PIP_CERT") or HOST_CA_BUNDLE)
        shutil.copyfile(bundle if bundle.is_file() else HOST_CA_BUNDLE, context / "host-ca.crt")
        return context


# What a build context holds that is not source (stack/shop/.dockerignore leaves it out).
NOT_SOURCE = ("__pycache__", ".egg-info", ".pyc")


def source_tag(version: str, source: Path) -> str:
    """``version`` and a digest of every source file under ``source``: a local image is
    skipped when present, so its tag must change with its content, not only when
    someone bumps the version (compose once ran a stale shop image for that reason)."""
    digest = hashlib.sha256()
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).as_posix()
        if not path.is_file() or any(part in relative for part in NOT_SOURCE):
            continue
        digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{version}-{digest.hexdigest()[:12]}"


def shop_image(tag: str) -> str:
    return f"ocean-local/shop:{tag}"


def inbox_image(tag: str) -> str:
    return f"ocean-local/inbox:{tag}"


_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin", "/sbin", "/bin"])


def docker_client_path() -> str:
    found = shutil.which("docker", path=_PATH)
    if not found:
        raise OceanError("the docker client is missing: apt-get install docker.io")
    return found


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it when it is our child
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
