"""The `local` runtime: every service a native process under supervisord, on 127.0.0.1.

All state (data, logs, pid files, rendered configs) lives below one state dir. When run
as root, PostgreSQL runs as the ``postgres`` user (it refuses root); everything else
runs as the invoking user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg

from ocean import access, health, pg_passwords, receivers, scrape_tls, statedir, tls
from ocean.config import PORT_OFFSETS, REPO_ROOT, Settings
from ocean.errors import OceanError
from ocean.model import Build, ServiceStatus, Step, StepStatus
from ocean.render import render, write_atomic
from ocean.runtime import builds, local_initdb, logtail, packages, private_state, scrape_sockets
from ocean.runtime.bluegreen import BlueGreen
from ocean.runtime.local_backup import LocalBackup
from ocean.runtime.local_supervisord import STOP_TIMEOUT, SupervisedPrograms
from ocean.runtime.supervisor import ACTIVE_STATES, RUNNING
from ocean.services import BY_NAME, SERVICES, Service
from ocean.stackspec import accounts, configs
from ocean.stackspec.accounts import NGINX_WORKER_USER
from ocean.stackspec.programs import FRONTED_BY_NGINX
from ocean.stackspec.search_path import default_search_path
from ocean.stackspec.sockets import ScrapeSockets
from ocean.stackspec.spec import StackSpec

START_TIMEOUT = 30.0


class LocalRuntime(LocalBackup):  # backup and restore: ocean/runtime/local_backup.py
    name = "local"

    def __init__(self, settings: Settings, search_path: str | None = None) -> None:
        self.settings = settings
        self.as_root = os.geteuid() == 0
        self.search_path = search_path if search_path is not None else default_search_path()
        # What the stack is (programs, configs, addresses): runtime/-neutral, ocean/stackspec.
        self.spec = StackSpec(settings, binary=self._bin, as_root=self.as_root)
        # supervisord and its programs (runtime/local_supervisord.py).
        self.programs = SupervisedPrograms(settings)
        self.supervisor = self.programs.supervisor
        # Blue-green switching over this runtime's programs (runtime/bluegreen.py).
        self.colors = BlueGreen(self)
        self.start_timeout = START_TIMEOUT

    # -- where things are -------------------------------------------------------------

    def url(self, service: str) -> str:
        return self.spec.url(service)

    def probe(self, service: Service) -> tuple[bool, str]:
        """Whether ``service`` answers as healthy, and what it said."""
        port = self.settings.ports[service.probe_port_name]
        password = self._secret(
            "POSTGRES_PASSWORD" if service.probe == "postgres" else "REDIS_PASSWORD"
        )
        client_tls = self._scrape_client_tls() if service.client_cert else None
        return health.probe(
            service, self.settings.host, port, password, self.access().ops_auth, client_tls
        )

    def _scrape_client_tls(self) -> ssl.SSLContext:
        """The redis exporter's CA and our client certificate (ocean/scrape_tls.py)."""
        scrape = self.scrape_tls()
        context = ssl.create_default_context(cafile=str(scrape.ca_cert))
        context.load_cert_chain(scrape.client_cert, scrape.client_key)
        return context

    def scrape_tls(self) -> scrape_tls.ScrapeTls:
        return self.spec.scrape_tls()

    def scrape_sockets(self) -> ScrapeSockets:
        return self.spec.scrape_sockets()

    # -- how our own clients talk to the stack (ocean/access.py) ------------------------

    def access(self) -> access.Access:
        """The CA to trust, the operator's credentials and the traffic token."""
        return access.Access(
            ca_file=tls.TlsFiles(self.settings.tls_dir).ca_cert,
            ops_password=self._secret("OPS_PASSWORD"),
            traffic_token=self._secret("TRAFFIC_TOKEN"),
            scrape_tls=self.scrape_tls(),
        )

    def http(self, service: str, path: str = "", **kwargs) -> httpx.Client:
        """An httpx client for ``service`` (base URL: its url() + ``path``): the CA for
        HTTPS, the operator's credentials where it requires them, the traffic token
        for nginx."""
        known = BY_NAME.get(service)
        headers = dict(kwargs.pop("headers", {}) or {})
        if service == "nginx":
            headers.setdefault(access.TRAFFIC_HEADER, self._secret("TRAFFIC_TOKEN"))
        return self.access().http_client(
            self.url(service) + path,
            operator=bool(known and known.auth),
            headers=headers,
            **kwargs,
        )

    def redis_url(self, service: str = "redis-master", db: int = 0, user: str = "default") -> str:
        """A redis:// URL with credentials (for the environment, never a command line)."""
        return self.spec.redis_url(service, db, user)

    def log_path(self, service: Service) -> Path:
        return self.settings.logs / f"{service.name}.log"

    def log_lines(
        self, service: Service, lines: int, follow: bool, poll: float, stop: Callable[[], bool]
    ) -> Iterator[str]:
        path = self.log_path(service)
        if not path.exists():
            raise OceanError(f"{service.name} has no log yet ({path}): has it ever run?")
        yield from logtail.tail_file(path, lines, follow, poll, stop)

    def _which(self, binary: str) -> str | None:
        return shutil.which(binary, path=self.search_path)

    def _bin(self, binary: str) -> str:
        found = self._which(binary)
        if not found:  # check() runs first, so this is a bug or a removed package
            raise OceanError(f"{binary} is not installed: run ./ocean up to install it")
        return found

    # -- pre-flight -------------------------------------------------------------------

    def check(self, services: list[Service], install: bool) -> Iterator[Step]:
        started = time.monotonic()
        self._check_state_dir()
        yield Step("state dir", detail=str(self.settings.state_dir))

        needed = packages.binaries_for(services, as_root=self.as_root)
        missing = [binary for binary in needed if not self._which(binary)]
        if missing:
            pkgs = packages.packages_for(missing)
            if not install or not self.as_root:
                raise OceanError(
                    f"missing programs: {', '.join(missing)}; install them with: "
                    f"{packages.apt_command(pkgs)}"
                )
            yield Step("install packages", StepStatus.INFO, packages.apt_command(pkgs))
            packages.apt_install(pkgs)
            still = [binary for binary in needed if not self._which(binary)]
            if still:
                raise OceanError(f"installed {' '.join(pkgs)} but still missing: {still}")
            yield Step("install packages", detail=" ".join(pkgs))
        yield Step("programs present", detail=f"{len(needed)} found")
        yield self._check_ports(services, started)

    def _check_ports(self, services: list[Service], started: float) -> Step:
        """Every port of ``services`` not yet running is free; OceanError names the holder."""
        running = self.active_names()
        busy = [
            (service.name, port)
            for service in services
            if service.name not in running
            for port in self._ports_of(service)
            if not _port_free(self.settings.host, port)
        ]
        if busy:
            name, port = busy[0]
            raise OceanError(
                f"port {port} for {name} is already in use by another program"
                f"{_who_listens(port)}; stop it or choose another OCEAN_PORT_BASE"
            )
        return Step(
            "ports free",
            detail=f"base {self.settings.ports.base}",
            seconds=time.monotonic() - started,
        )

    def _check_state_dir(self) -> None:
        state = self.settings.state_dir
        try:
            # Created and marked here, so that `down --purge` can tell it is a stack's.
            statedir.claim(state, self.settings.repo_root)
            probe = state / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise OceanError(
                f"state dir {state} is not writable ({exc.strerror}); "
                "set OCEAN_STATE_DIR to a writable directory"
            ) from None

    def _ports_of(self, service: Service) -> list[int]:
        ports = [self.settings.ports[service.port_name]]
        if service.name == "alert-inbox":
            ports.append(self.settings.ports["alert-smtp"])
        if service.name in FRONTED_BY_NGINX:  # nginx holds its port; it has a socket
            return []
        if service.name == "nginx":
            ports.append(self.settings.ports["nginx-status"])
            ports.append(self.settings.ports["nginx-http"])
            ports += [self.settings.ports[name] for name in FRONTED_BY_NGINX]
        if f"{service.name}-admin" in PORT_OFFSETS:  # a shop's admin listener
            ports.append(self.settings.ports[f"{service.name}-admin"])
        return ports

    # -- preparation ------------------------------------------------------------------

    def prepare(self, services: list[Service]) -> Iterator[Step]:
        s = self.settings
        # Private, with ACL grants for the services' users (runtime/private_state.py).
        private_state.prepare(s, self.as_root, {service.name for service in services})
        self.spec.secrets.load()
        if any(service.name in ("nginx", *FRONTED_BY_NGINX) for service in services):
            sockets = self.scrape_sockets()
            # nginx's workers connect to the exporter's socket, the exporter (as the
            # same user) to nginx's: nobody else may enter (runtime/scrape_sockets.py).
            scrape_sockets.prepare(sockets, accounts.scrape_socket_owner(self.as_root))
            if self.as_root:
                private_state.grant_traverse(sockets.directory, NGINX_WORKER_USER)
        yield self._ensure_tls()
        changed = self._render_configs()
        yield Step("render configs", detail=f"{changed} changed" if changed else "up to date")
        if any(service.name == "postgres" for service in services):
            yield from self._initdb()

    def _ensure_tls(self) -> Step:
        """The local CA and nginx's certificate (ocean/tls.py), or the one dropped in."""
        started = time.monotonic()
        files, env = tls.TlsFiles(self.settings.tls_dir), self.settings.env
        try:
            if env["tls.source"] == "file":  # the environment names a real certificate
                root = self.settings.repo_root
                cert, key = env.path("tls.cert_file", root), env.path("tls.key_file", root)
                done = tls.install_provided(files, cert, key)
            else:
                done = tls.ensure(files, [self.settings.host])
            # The redis exporter's mutual TLS, whatever nginx presents (scrape_tls.py).
            scrape = scrape_tls.ensure(self.scrape_tls(), [self.settings.host])
        except ValueError as exc:
            raise OceanError(str(exc)) from None
        return Step("tls", detail=f"{done}; scrape: {scrape}", seconds=time.monotonic() - started)

    def _secret(self, name: str) -> str:
        return self.spec.secret(name)

    # B107: empty default: no password
    def receivers(self, inbox_password: str = "") -> receivers.Receivers:  # nosec B107
        """Where each of Alertmanager's receivers delivers (ocean/receivers.py)."""
        return self.spec.receivers(inbox_password)

    def skipped_services(self) -> frozenset[str]:
        """Services this stack does not run: the alert inbox when every receiver is real."""
        return self.spec.skipped_services()

    def _render_configs(self) -> int:
        """The services' configs (the spec's) and supervisord.conf; how many changed."""
        s = self.settings
        ctx = self.spec.context()
        changed = configs.write_service_configs(self.spec, ctx)
        supervisord_conf = render(
            "stack/supervisor/supervisord.conf",
            {
                "socket": self.supervisor.socket,
                "paths": ctx["paths"],
                "run_as_root": self.as_root,
                "go_gc_percent": 25,
                "programs": self.spec.programs(),
            },
        )
        # 0600: program environments carry database passwords.
        changed += write_atomic(s.etc / "supervisord.conf", supervisord_conf, mode=0o600)
        return changed

    def _initdb(self) -> Iterator[Step]:
        return local_initdb.initdb(self.spec, self._run_initdb)

    def _run_initdb(
        self, argv: list[str], owner: pwd.struct_passwd | None
    ) -> subprocess.CompletedProcess:
        """Run initdb as the postgres user (the compose runtime runs it in a container)."""
        return local_initdb.run_as_pg_user(argv, owner)

    def _pg_owner(self) -> pwd.struct_passwd | None:
        return local_initdb.pg_owner(self.as_root)

    _as_pg_user = staticmethod(local_initdb.as_pg_user)

    # -- start and stop ---------------------------------------------------------------

    def _ensure_supervisor(self) -> Iterator[Step]:
        return self.programs.ensure_running()

    def start(self, services: list[Service]) -> Iterator[Step]:
        yield from self._ensure_supervisor()
        running = self.running()
        # Dependencies first: only what others need waits; the rest starts at once.
        needed = {dep for service in services for dep in service.needs}
        first = [s for s in services if not s.needs]
        then = [s for s in services if s.needs]
        for service in first:
            if service.name not in running:
                self.supervisor.start(service.name)
        yield from self._wait_healthy([s for s in first if s.name in needed])
        if "postgres" in needed:
            yield from self._ensure_shop_database()
        for service in then:
            if service.name not in running:
                self.supervisor.start(service.name)
        yield from self._wait_healthy([s for s in services if s.name not in needed])

    def _wait_healthy(self, services: list[Service]) -> Iterator[Step]:
        if not services:
            return
        with ThreadPoolExecutor(max_workers=len(services)) as pool:
            results = list(pool.map(self._wait_one, services))
        failed = [(s, detail) for s, (ok, detail) in zip(services, results, strict=True) if not ok]
        for service, (ok, detail) in zip(services, results, strict=True):
            if ok:
                yield Step(f"{service.name} healthy", detail=f"{self.url(service.name)} {detail}")
        if failed:
            service, detail = failed[0]
            raise OceanError(
                f"{service.name} did not become healthy in {self.start_timeout:.0f}s ({detail}); "
                f"see {self.log_path(service)}"
            )

    def _wait_one(self, service: Service) -> tuple[bool, str]:
        deadline = time.monotonic() + self.start_timeout
        while True:
            ok, detail = self.probe(service)
            if ok:
                return ok, detail
            state = self.supervisor.processes().get(service.name, {}).get("statename")
            if state == "FATAL" or time.monotonic() > deadline:
                return False, f"{state}: {detail}"
            time.sleep(0.05)

    def _ensure_shop_database(self) -> Iterator[Step]:
        """The shop's role and database (idempotent; passwords never leave this process)."""
        conninfo = {
            "host": self.settings.host,
            "port": self.settings.ports["postgres"],
            "user": "postgres",
            "password": self._secret("POSTGRES_PASSWORD"),
            "dbname": "postgres",
            "autocommit": True,
        }
        created = []
        with psycopg.connect(**conninfo) as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'shop'").fetchone():
                # A SCRAM verifier, untracked and unlogged: pg_stat_statements once
                # kept this statement with the password in it (ocean/pg_passwords.py).
                pg_passwords.set_password(
                    conn, "shop", self._secret("SHOP_DB_PASSWORD"), create=True
                )
                created.append("role shop")
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'shop'").fetchone():
                conn.execute("CREATE DATABASE shop OWNER shop")
                created.append("database shop")
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            if pg_passwords.forget_password_statements(conn):
                created.append("plaintext password statements dropped from pg_stat_statements")
        yield Step(
            "shop database",
            StepStatus.OK if created else StepStatus.SKIPPED,
            ", ".join(created) or "exists",
        )

    def _shop_database_url(self) -> str:
        return self.spec.shop_database_url()

    def shop_command(self, args: list[str]) -> Iterator[Step]:
        """Run ``python -m ARGS`` next to the shop, as the shop's database user.

        The database URL travels in the environment (SHOP_DATABASE_URL), never on the
        command line, which every user of the machine can read. Each output line (stdout
        and stderr, in order) becomes an INFO step as it comes.
        """
        # Supervisord says RUNNING only after startsecs: ask PostgreSQL itself.
        if "postgres" not in self.active_names():
            raise OceanError("postgres is not running: start the stack with ./ocean up")
        healthy, detail = self.probe(BY_NAME["postgres"])
        if not healthy:
            raise OceanError(
                f"postgres is not healthy ({detail}); see {self.log_path(BY_NAME['postgres'])}"
            )
        yield from self._ensure_shop_database()
        started = time.monotonic()
        env = {
            **os.environ,
            "SHOP_DATABASE_URL": self._shop_database_url(),
            "SHOP_REDIS_URL": self.redis_url(user="shop"),
            "PYTHONUNBUFFERED": "1",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
            errors="replace",
        )
        last = ""
        try:
            assert proc.stdout is not None  # nosec B101  # narrows a type for the checker only
            for raw in proc.stdout:
                line = raw.rstrip("\n")
                last = line or last
                yield Step(args[0], StepStatus.INFO, line)
            code = proc.wait()
        finally:
            # A caller that stops early (an error, Ctrl-C) must not leave it running.
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if code != 0:
            raise OceanError(f"{args[0]} failed (exit {code}): {last or 'no output'}")
        yield Step(args[0], detail="exit 0", seconds=time.monotonic() - started)

    def stop_all(self) -> Iterator[Step]:
        return self.programs.stop_all()

    def stop(self, service: Service) -> Iterator[Step]:
        self.programs.stop_program(service.name)
        yield Step(f"stop {service.name}")

    def _wait_stopped(self, names: list[str]) -> None:
        self.programs.wait_stopped(names)

    def restart(self, service: Service) -> Iterator[Step]:
        if not self.supervisor.alive():
            raise OceanError("the stack is not running: start it with ./ocean up")
        started = time.monotonic()
        self.supervisor.stop(service.name)
        self._wait_stopped([service.name])
        # A restart is how a running service picks up a changed definition.
        list(self.programs.apply_program_changes())
        self.supervisor.start(service.name)
        yield from self._wait_healthy([service])
        yield Step(f"restart {service.name}", seconds=time.monotonic() - started)

    def purge(self) -> Iterator[Step]:
        if self.supervisor.alive():
            raise OceanError("the stack is running: run ./ocean down first")
        state = self.settings.state_dir
        self.sweep_scratch(everything=True)  # a killed verify's scratch server, too
        if state.exists():
            shutil.rmtree(state)
        self.supervisor.socket.unlink(missing_ok=True)
        # A deep state dir's socket directories (scrape_sockets.short_dir), once empty.
        for name in ("supervisor", "scrape"):
            with contextlib.suppress(OSError):  # not empty, or not there
                scrape_sockets.short_dir(state, name).rmdir()
        yield Step("purge", detail=f"deleted {state}")

    # -- blue-green -------------------------------------------------------------------

    # Prometheus scrapes every second here: an analysis can look that often.
    analysis_interval = 1.0

    def color_build(self, color: str) -> Build:
        return self.spec.color_build(color)

    def live_color(self) -> str:
        return self.spec.live_color()

    def check_version(self, version: str) -> str:
        return builds.resolve(REPO_ROOT, version)[1]

    def build(self, version: str) -> Iterator[Step]:
        started = time.monotonic()
        made, fresh = builds.build(self.settings.state_dir / "builds", REPO_ROOT, version)
        yield Step(
            "build",
            StepStatus.OK if fresh else StepStatus.SKIPPED,
            f"{made.label} ({'built' if fresh else 'cached'}: {made.id})",
            seconds=time.monotonic() - started,
            data=made.as_dict(),
        )
        return made

    def start_color(self, color: str, build: Build, timeout: float) -> Iterator[Step]:
        return self.colors.start_color(color, build, timeout)

    def stop_color(self, color: str) -> Iterator[Step]:
        return self.colors.stop_color(color)

    def color_ready(self, color: str) -> bool:
        return self.colors.color_ready(color)

    def switch(self, color: str) -> Iterator[Step]:
        return self.colors.switch(color)

    # The ColorHost of blue-green switching (runtime/bluegreen.py): what differs between
    # runtimes (supervisord programs here, compose services in ocean/runtime/compose.py).

    def stop_program(self, name: str) -> None:
        self.programs.stop_program(name)

    def apply_build_choice(self) -> None:
        """Make the next start of a color run the build shop-builds.json names."""
        self._render_configs()
        list(self.programs.apply_program_changes())

    def start_program(self, name: str) -> None:
        self.supervisor.start(name)

    def program_state(self, name: str) -> str | None:
        return self.supervisor.processes().get(name, {}).get("statename")

    def _nginx_test_argv(self) -> list[str]:
        s = self.settings
        return [self._bin("nginx"), "-t", "-q", "-p", str(s.state_dir / "nginx"),
                "-c", str(s.etc / "nginx.conf")]  # fmt: skip

    def test_nginx(self) -> tuple[int, str]:
        """``nginx -t`` of the rendered configuration: (exit code, its output)."""
        test = subprocess.run(self._nginx_test_argv(), capture_output=True, text=True)
        return test.returncode, test.stderr.strip()

    def reload_nginx(self) -> None:
        self.supervisor.signal("nginx", "HUP")

    def wait_ports_free(self, service: Service) -> None:
        """Until the service's ports are free: a color started again right after it
        stopped must not find its previous process still closing its listeners."""
        ports = self._ports_of(service)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:
            busy = [p for p in ports if not _port_free(self.settings.host, p)]
            if not busy:
                return
            time.sleep(0.05)
        raise OceanError(
            f"{service.name}'s port {busy[0]} is still taken{_who_listens(busy[0])}: "
            "stop that process, then retry"
        )

    def log_tail(self, service: Service, lines: int = 3) -> str:
        """The last ``lines`` of ``service``'s log, on one line."""
        try:
            text = self.log_path(service).read_text(errors="replace").strip().splitlines()
        except FileNotFoundError:
            return "no log"
        return " | ".join(line.strip() for line in text[-lines:])

    # -- status -----------------------------------------------------------------------

    def names_in(self, states: set[str]) -> set[str]:
        return self.programs.names_in(states)

    def active_names(self) -> set[str]:
        """Running, or on the way up or down: the supervisor owns their ports."""
        return self.names_in(ACTIVE_STATES)

    def running(self) -> set[str]:
        """Services running now, by name (no health probes: cheap)."""
        return self.names_in({RUNNING})

    def engine_pids(self) -> set[int]:
        """None: supervisord is the services' parent, which the load test's watch adds."""
        return set()

    def run_browser(self, base_url: str, **options):
        """Chromium on this machine, driven by k6's browser module (runtime/browser.py)."""
        from ocean.runtime import browser

        # Chromium trusts the stack's certificate by its key (a pin; it ignores
        # SSL_CERT_FILE).
        pin = tls.spki_sha256(tls.TlsFiles(self.settings.tls_dir).cert)
        return browser.run_browser(base_url, spki_pins=(pin,), **options)

    def run_k6(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        """k6 on this machine, from the k6 scripts' directory (ocean/runtime/k6.py)."""
        from ocean.runtime import k6

        # The stack's CA (SSL_CERT_FILE) and traffic token, through the environment.
        env = {**self.access().k6_env(), **env}
        return k6.spawn(args, env, log, cwd=self.settings.repo_root / "testing" / "k6")

    def status(self) -> list[ServiceStatus]:
        infos = self.supervisor.processes() if self.supervisor.alive() else {}
        restarts = self.programs.restart_counts()
        now = time.time()

        def one(service: Service) -> ServiceStatus:
            info = infos.get(service.name, {})
            state = info.get("statename", "ABSENT").lower()
            port = self.settings.ports[service.port_name]
            if state == "running":
                healthy, detail = self.probe(service)
            else:
                healthy, detail = False, "not running"
            return ServiceStatus(
                name=service.name,
                state=state,
                pid=info.get("pid") or None,
                port=port,
                healthy=healthy,
                health_detail=detail,
                restarts=restarts.get(service.name, 0),
                uptime_seconds=round(now - info["start"], 1) if state == "running" else None,
                url=self.url(service.name),
            )

        return self._stack_statuses(one)

    def _stack_statuses(self, one: Callable[[Service], ServiceStatus]) -> list[ServiceStatus]:
        """``one`` of every service (in parallel: probes wait on the network), less the
        idle color while it does not run."""
        with ThreadPoolExecutor(max_workers=len(SERVICES)) as pool:
            statuses = list(pool.map(one, SERVICES))
        # An on-demand service (the idle color) is part of the stack only while it
        # runs; the live color always is (stopped, it makes the stack unhealthy). So is
        # a service this stack skips (the inbox, with every receiver real).
        live = f"shop-{self.live_color()}"
        skipped = self.skipped_services()
        return [
            s
            for s in statuses
            if s.name == live
            or not (
                (BY_NAME[s.name].on_demand or s.name in skipped)
                and s.state in ("stopped", "absent", "exited")
            )
        ]


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _who_listens(port: int) -> str:
    """' (pid N, name)' for the listener on ``port`` where ss can tell, else ''."""
    ss = shutil.which("ss")
    if not ss:
        return ""
    out = subprocess.run([ss, "-Hltnp", f"sport = :{port}"], capture_output=True, text=True).stdout
    match = re.search(r'\(\("([^"]+)",pid=(\d+)', out)
    return f" (pid {match.group(2)}, {match.group(1)})" if match else ""
