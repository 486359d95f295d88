"""The program table: how each service of the stack runs (argv, environment, user,
stop signal), under supervisord on this machine or, reshaped, as a Compose service.

Secrets travel in program environments (supervisord.conf and the compose override are
0600), never in argv, which every user of the machine can read.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ocean import receivers, tls
from ocean.config import REPO_ROOT
from ocean.services import COLORS
from ocean.stackspec import accounts
from ocean.stackspec.accounts import PG_USER
from ocean.stackspec.sockets import unlink_then_exec

if TYPE_CHECKING:
    from ocean.stackspec.spec import StackSpec

# Services whose port nginx serves (basic auth) in front of their private unix socket.
FRONTED_BY_NGINX = ("nginx-exporter",)
NODE_COLLECTORS = (
    "cpu",
    "diskstats",
    "filefd",
    "filesystem",
    "loadavg",
    "meminfo",
    "netdev",
    "pressure",
    "stat",
    "textfile",
    "time",
    "uname",
    "vmstat",
)


@dataclass(frozen=True)
class Program:
    """One supervisord program: how a service runs on this machine."""

    name: str
    argv: list[str]
    user: str | None = None
    env: dict[str, str] | None = None
    stopsignal: str = "TERM"
    stopwaitsecs: int = 3
    # A unix socket it listens on: a stale one (left by a SIGKILL) is removed first.
    socket: Path | None = None

    @property
    def command(self) -> str:
        return shlex.join(self.started_argv(self.argv))

    def started_argv(self, argv: list[str]) -> list[str]:
        """``argv`` (this program's, or the compose runtime's form of it) as started."""
        return unlink_then_exec(self.socket, argv) if self.socket else argv

    @property
    def environment(self) -> str:
        # supervisord's syntax: KEY="value",KEY2="value2" (values must not hold quotes)
        return ",".join(f'{key}="{value}"' for key, value in (self.env or {}).items())


def programs(spec: StackSpec) -> list[Program]:
    """Every program of the stack, as supervisord runs it (the compose runtime derives
    its services from them: runtime/compose.py)."""
    s, host, ports = spec.settings, spec.settings.host, spec.settings.ports
    pg_password = spec.secret("POSTGRES_PASSWORD")
    pg_dir = s.data / "postgres"
    # Basic auth on the loopback ports of Prometheus, Alertmanager and the
    # exporter-toolkit exporters (ocean/access.py says why).
    web_config = s.etc / "web-config.yml"
    scrape, sockets = spec.scrape_tls(), spec.scrape_sockets()
    programs = [
        Program(
            "postgres",
            [
                spec.binary("postgres"),
                "-D",
                str(pg_dir),
                "-c",
                f"config_file={s.etc / 'postgresql.conf'}",
                "-c",
                f"hba_file={pg_dir / 'pg_hba.conf'}",
                "-c",
                f"ident_file={pg_dir / 'pg_ident.conf'}",
                "-c",
                f"listen_addresses={host}",
                "-c",
                f"port={ports['postgres']}",
                # TCP only: socket paths are length-limited and need a shared dir.
                "-c",
                "unix_socket_directories=",
                # The environment's buffer pool (dev: laptop-sized 32MB, since
                # every backend that touches a shared page counts it in its RSS).
                "-c",
                f"shared_buffers={s.env['resources.postgres_shared_buffers']}",
            ],
            user=PG_USER if spec.as_root else None,
            stopsignal="INT",  # fast shutdown: abort sessions, checkpoint, exit
            stopwaitsecs=10,
        ),
        Program("redis-master", [spec.binary("redis-server"), str(s.etc / "redis-master.conf")]),
        Program("redis-replica", [spec.binary("redis-server"), str(s.etc / "redis-replica.conf")]),
    ]
    for color in COLORS:
        name = f"shop-{color}"
        build = spec.color_build(color)
        programs.append(
            Program(
                name,
                [build.python or sys.executable, "-m", "ocean_shop"],
                env={
                    "SHOP_VERSION": build.label,
                    "SHOP_HOST": host,
                    "SHOP_PORT": str(ports[name]),
                    "SHOP_COLOR": color,
                    "SHOP_DATABASE_URL": spec.shop_database_url(),
                    # Its own ACL user: no admin commands (ocean/access.py).
                    "SHOP_REDIS_URL": spec.redis_url(user="shop"),
                    # The admin API (fault injection, back office) on 127.0.0.1.
                    "SHOP_ADMIN_PORT": str(ports[f"{name}-admin"]),
                    "SHOP_ADMIN_TOKEN": spec.secret("SHOP_ADMIN_TOKEN"),
                    # Storefront assets published here for nginx (/static/).
                    "SHOP_STATIC_DIR": str(s.state_dir / "nginx" / "www"),
                },
            )
        )
    programs.append(inbox_program(spec))
    programs += [
        Program(
            "nginx",
            [
                # Through the launcher: it reaps workers orphaned by a killed master.
                sys.executable,
                "-m",
                "ocean.runtime.launch",
                "--port",
                str(ports["nginx"]),
                "--port",
                str(ports["nginx-status"]),
                "--port",
                str(ports["nginx-http"]),
                *(arg for name in FRONTED_BY_NGINX for arg in ("--port", str(ports[name]))),
                f"--private-socket={sockets.nginx_status}",  # nginx makes it 0666
                "--",
                spec.binary("nginx"),
                "-p",
                str(s.state_dir / "nginx"),
                "-c",
                str(s.etc / "nginx.conf"),
                "-g",
                "daemon off;",
            ],
            socket=sockets.nginx_status,
        ),
        Program(
            "prometheus",
            [
                spec.binary("prometheus"),
                f"--config.file={s.etc / 'prometheus.yml'}",
                f"--storage.tsdb.path={s.data / 'prometheus'}",
                f"--storage.tsdb.retention.time={s.env['prometheus.retention']}",
                f"--web.listen-address={host}:{ports['prometheus']}",
                # Operators reach it through nginx at /prometheus/ (links in alerts
                # point there); it still serves at / on its own port.
                f"--web.external-url={spec.url('nginx')}/prometheus/",
                "--web.route-prefix=/",
                f"--web.config.file={web_config}",
                "--web.enable-lifecycle",
                "--web.enable-remote-write-receiver",
            ],
        ),
        Program(
            "alertmanager",
            [
                spec.binary("prometheus-alertmanager"),
                f"--config.file={s.etc / 'alertmanager.yml'}",
                f"--storage.path={s.data / 'alertmanager'}",
                f"--web.listen-address={host}:{ports['alertmanager']}",
                f"--web.external-url={spec.url('nginx')}/alertmanager/",
                "--web.route-prefix=/",
                f"--web.config.file={web_config}",
                "--cluster.listen-address=",  # else it opens a cluster port on 0.0.0.0
            ],
        ),
        Program(
            "node-exporter",
            [
                spec.binary("prometheus-node-exporter"),
                f"--web.listen-address={host}:{ports['node-exporter']}",
                f"--web.config.file={web_config}",
                # Only the collectors the dashboards and alerts use: each one
                # costs memory and scrape time (systemd fails here anyway).
                "--collector.disable-defaults",
                *(f"--collector.{name}" for name in NODE_COLLECTORS),
                f"--collector.textfile.directory={s.data / 'textfile'}",
            ],
        ),
        Program(
            "postgres-exporter",
            [
                spec.binary("prometheus-postgres-exporter"),
                f"--web.listen-address={host}:{ports['postgres-exporter']}",
                f"--web.config.file={web_config}",
                f"--extend.query-path={REPO_ROOT / 'monitoring/postgres/queries.yaml'}",
                # 0.11's collectors would open a second backend (~15 MB) for what
                # queries.yaml already reads on the exporter's one connection.
                "--no-collector.database",
                "--no-collector.bgwriter",
            ],
            env={
                "DATA_SOURCE_NAME": (
                    f"postgresql://postgres:{pg_password}@{host}:{ports['postgres']}"
                    "/postgres?sslmode=disable"
                )
            },
        ),
        Program(
            "redis-exporter",
            [
                spec.binary("prometheus-redis-exporter"),
                f"-web.listen-address={host}:{ports['redis-exporter']}",
                # Its port requires our client certificate (ocean/scrape_tls.py).
                f"-tls-server-cert-file={scrape.server_cert}",
                f"-tls-server-key-file={scrape.server_key}",
                f"-tls-server-ca-cert-file={scrape.ca_cert}",
                # Targets come from Prometheus (/scrape?target=); /metrics only
                # describes the exporter itself.
                "-redis.addr=",
                # Its ACL user (INFO and a few more, ocean/access.py); its password
                # only for the stack's two Redis servers (a file, 0600): never
                # -redis.password or REDIS_PASSWORD, which it sends to any target.
                "-redis.user=exporter",
                "-redis.password=",
                f"-redis.password-file={s.etc / 'redis-exporter-passwords.json'}",
            ],
        ),
        Program(
            "nginx-exporter",
            [
                spec.binary("prometheus-nginx-exporter"),
                # Private sockets; nginx serves it on its port, behind basic auth
                # (runtime/scrape_sockets.py).
                f"-web.listen-address=unix:{sockets.nginx_exporter}",
                f"-nginx.scrape-uri=unix:{sockets.nginx_status}:/stub_status",
            ],
            user=accounts.scrape_socket_owner(spec.as_root),
            socket=sockets.nginx_exporter,
        ),
        Program(
            "blackbox-exporter",
            [
                spec.binary("prometheus-blackbox-exporter"),
                f"--config.file={s.etc / 'blackbox.yml'}",
                f"--web.listen-address={host}:{ports['blackbox-exporter']}",
                f"--web.config.file={web_config}",
            ],
        ),
    ]
    return programs


def inbox_program(spec: StackSpec) -> Program:
    """The alert inbox (stack/inbox): settings and its SMTP password by environment
    (supervisord.conf is 0600), never argv; nginx's certificate from the local CA
    for STARTTLS (its SANs are the stack's host and localhost)."""
    s, files = spec.settings, tls.TlsFiles(spec.settings.tls_dir)
    return Program(
        "alert-inbox",
        [sys.executable, "-m", "ocean_inbox"],
        env={
            "INBOX_HOST": s.host,
            "INBOX_HTTP_PORT": str(s.ports["alert-webhook"]),
            "INBOX_SMTP_PORT": str(s.ports["alert-smtp"]),
            "INBOX_DIR": str(s.data / "inbox"),
            "INBOX_TLS_CERT": str(files.cert),
            "INBOX_TLS_KEY_FILE": str(files.key),
            "INBOX_SMTP_USER": receivers.INBOX_USER,
            "INBOX_SMTP_PASSWORD": spec.secret("INBOX_SMTP_PASSWORD"),
        },
    )
