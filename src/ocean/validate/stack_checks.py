"""Validation of the stack's configs (issue 4): PostgreSQL, Redis, nginx, YAML.

Every check takes the repo root (so tests can point it at a broken copy) and returns a
list of findings. Templates are rendered the way the runtimes render them (the stack
spec's ``StackSpec.context()``, default port plan) into a throwaway temp dir, and the
installed programs judge the result wherever they can:

- postgres-params   ``postgres -C`` loads stack/postgres/postgresql.conf plus the local
                    runtime's ``-c`` overrides and reports every unknown name and bad
                    value (as the ``postgres`` user when run as root; ≈ 10 ms a run).
- postgres-memory   shared_buffers + max_connections × work_mem + maintenance_work_mem +
                    wal_buffers ≤ PG_MEMORY_BUDGET_MB, for the file as it is and with the
                    local runtime's overrides.
- redis-directives  each rendered redis config is loaded by the installed redis-server
                    with ``--port 0`` and a unix socket in the temp dir (no TCP, no
                    replication link, no persistence): a bad directive makes it exit with
                    the line; a good one is stopped as soon as it is ready (≈ 20 ms).
- redis-replica-of-master  the replica's ``replicaof`` is the master's bind/port.
- redis-persistence  see ``check_redis_persistence`` for the rule.
- nginx-syntax      ``nginx -t -p <tmp> -c <rendered nginx.conf>``.
- nginx-upstreams   upstream servers are services of the port plan; proxy_pass names a
                    defined upstream.
- yamllint          every YAML file (Jinja templates rendered first), config ``.yamllint``;
                    style findings are warnings, a syntax error or a duplicate key an error.

The compose files have their own module: ``ocean.validate.compose_checks``.
"""

from __future__ import annotations

import functools
import os
import pwd
import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import jinja2

from ocean.config import PORT_OFFSETS
from ocean.model import Finding
from ocean.render import render
from ocean.services import BY_NAME
from ocean.validate.core import check, missing_tool, program, scaled
from ocean.validate.rendering import Rendered, rendering

# The memory PostgreSQL may plan for, worst case, on the small node the stack targets
# (2 cores, ~2 GiB shared with Redis, the shop and monitoring): shared_buffers +
# max_connections × work_mem + maintenance_work_mem + wal_buffers. One place to change.
PG_MEMORY_BUDGET_MB = 1024

PG_CONF = "stack/postgres/postgresql.conf"
REDIS_CONFS = ("stack/redis/redis-master.conf", "stack/redis/redis-replica.conf")
NGINX_CONF = "stack/nginx/nginx.conf"
UPSTREAM_CONF = "stack/nginx/upstream.conf"
YAML_SKIP_DIRS = {".git", ".venv", ".nox", ".ocean", "node_modules", "__pycache__"}
REDIS_READY_TIMEOUT = 2.0
# The YAML files the local runtime renders with Jinja (others may hold Prometheus'
# own {{ $labels }} templates, which are YAML strings).
YAML_TEMPLATES = (
    "monitoring/prometheus/prometheus.yml",
    "monitoring/alertmanager/alertmanager.yml",
    "monitoring/blackbox/blackbox.yml",
)


# -- findings and registration ------------------------------------------------------


def _finding(name, kind, file, line, message, hint="", severity="error") -> Finding:
    return Finding(name, kind, severity, file, line, message, hint)


def _template_line(template_text: str, rendered_line: str) -> int | None:
    """The template line a rendered line came from, when it has no Jinja in it."""
    wanted = rendered_line.strip()
    for number, line in enumerate(template_text.splitlines(), 1):
        if line.strip() == wanted:
            return number
    return None


def _find_line(text: str, pattern: str) -> int | None:
    regex = re.compile(pattern)
    for number, line in enumerate(text.splitlines(), 1):
        if regex.search(line):
            return number
    return None


# -- PostgreSQL ---------------------------------------------------------------------

_PG_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*=?\s*(.*?)\s*$")


def _pg_settings(text: str) -> dict[str, tuple[str, int]]:
    """name → (raw value, line) of a postgresql.conf (the last setting wins)."""
    found: dict[str, tuple[str, int]] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0] if "'" not in raw else _strip_comment(raw)
        match = _PG_LINE.match(line)
        if match and line.strip():
            value = match.group(2).strip()
            if value.startswith("'") and value.endswith("'"):
                value = value[1:-1]
            found[match.group(1).lower()] = (value, number)
    return found


def _strip_comment(line: str) -> str:
    quoted = False
    for i, char in enumerate(line):
        if char == "'":
            quoted = not quoted
        elif char == "#" and not quoted:
            return line[:i]
    return line


def _as_pg_user() -> dict:
    if os.geteuid() != 0:
        return {}
    owner = pwd.getpwnam("postgres")
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}


_PG_ERRORS = (
    re.compile(
        r'unrecognized configuration parameter "(?P<name>[^"]+)" in file "[^"]*" line (?P<line>\d+)'
    ),
    re.compile(r'syntax error in file "[^"]*" line (?P<line>\d+)'),
    re.compile(r'invalid value for parameter "(?P<name>[^"]+)"'),
    re.compile(r'is outside the valid range for parameter "(?P<name>[^"]+)"'),
    re.compile(r'parameter "(?P<name>[^"]+)" requires'),
    re.compile(r'unrecognized configuration parameter "(?P<name>[^"]+)"'),
)


@check(kind="postgres", name="postgres-params", inputs=(PG_CONF,))
def check_postgres_params(repo_root: Path) -> list[Finding]:
    """Every parameter of postgresql.conf and of the local runtime's ``-c`` overrides is
    known to the installed server, with a valid value.

    ``postgres -C`` loads the config without starting. It stops at the first unknown
    name (values are not checked then), so each reported line is commented out and the
    file loaded again until it passes (a handful of ≈ 10 ms runs at worst).
    """
    name, kind, rel = "postgres-params", "postgres", PG_CONF
    postgres = program("postgres")
    if not postgres:
        return [missing_tool(name, kind, "postgres", "apt-get install -y postgresql", rel)]
    source = (repo_root / rel).read_text()
    settings = _pg_settings(source)
    findings: list[Finding] = []
    with rendering(repo_root) as r:
        data = r.root / "pgdata"
        data.mkdir(mode=0o700)
        lines = source.splitlines()
        overrides = list(r.pg_overrides)
        if os.geteuid() == 0:
            os.chmod(r.root, 0o755)  # nosec B103  # scratch dir, postgres must traverse
            owner = pwd.getpwnam("postgres")
            os.chown(data, owner.pw_uid, owner.pw_gid)
        for _ in range(len(lines) + len(overrides) + 1):
            (data / "postgresql.conf").write_text("\n".join(lines) + "\n")
            argv = [postgres, "-C", "port", "-D", str(data)]
            for key, value in overrides:
                argv += ["-c", f"{key}={value}"]
            result = subprocess.run(
                argv, capture_output=True, text=True, timeout=scaled(10), **_as_pg_user()
            )
            if result.returncode == 0:
                break
            progress = False
            for message in result.stderr.splitlines():
                if "FATAL:" in message and "contains errors" in message:
                    continue
                text = re.sub(r"^.*?(LOG|FATAL):\s*", "", message)
                text = re.sub(r' in file "[^"]*" line \d+', "", text)  # the temp copy
                for pattern in _PG_ERRORS:
                    match = pattern.search(message)
                    if not match:
                        continue
                    groups = match.groupdict()
                    param = (groups.get("name") or "").lower()
                    line = int(groups["line"]) if groups.get("line") else None
                    from_override = "FATAL:" in message and any(
                        k.lower() == param for k, _ in overrides
                    )
                    if from_override:
                        findings.append(
                            _finding(
                                name,
                                kind,
                                "src/ocean/stackspec/programs.py",
                                None,
                                f"-c override: {text}",
                                "the stack spec passes it on postgres' command line",
                            )
                        )
                        overrides = [(k, v) for k, v in overrides if k.lower() != param]
                        progress = True
                        break
                    if line is None and param in settings:
                        line = settings[param][1]
                    findings.append(
                        _finding(
                            name,
                            kind,
                            rel,
                            line,
                            text,
                            "see `postgres --describe-config` for names, types and ranges",
                        )
                    )
                    if line is not None and not lines[line - 1].lstrip().startswith("#"):
                        lines[line - 1] = "# " + lines[line - 1]
                        progress = True
                    break
            if not progress:
                if not findings:
                    findings.append(
                        _finding(
                            name,
                            kind,
                            rel,
                            None,
                            f"postgres rejected the config: {result.stderr.strip()[-300:]}",
                        )
                    )
                break
    return findings


_UNITS = {"b": 1 / 1024, "kb": 1, "mb": 1024, "gb": 1024**2, "tb": 1024**3}
# Base unit (kB) of the memory parameters when no unit is written.
_PG_BASE_KB = {"shared_buffers": 8, "wal_buffers": 8, "work_mem": 1, "maintenance_work_mem": 1}
_PG_DEFAULTS = {
    "shared_buffers": "128MB",
    "work_mem": "4MB",
    "maintenance_work_mem": "64MB",
    "wal_buffers": "-1",
    "max_connections": "100",
}


def _kb(param: str, value: str) -> float | None:
    match = re.fullmatch(r"\s*(-?\d+)\s*([kMGT]?B)?\s*", value, re.IGNORECASE)
    if not match:
        return None
    number = int(match.group(1))
    unit = match.group(2)
    return number * (_UNITS[unit.lower()] if unit else _PG_BASE_KB[param])


def pg_memory_mb(values: dict[str, str]) -> dict[str, float] | None:
    """The planned memory (MB) per term, or None when a value cannot be read."""
    merged = {**_PG_DEFAULTS, **values}
    kb = {p: _kb(p, merged[p]) for p in _PG_BASE_KB}
    if any(v is None for v in kb.values()) or not merged["max_connections"].isdigit():
        return None
    if kb["wal_buffers"] == -8:  # -1: 1/32 of shared_buffers, 64kB .. 16MB
        kb["wal_buffers"] = min(max(kb["shared_buffers"] / 32, 64), 16 * 1024)
    connections = int(merged["max_connections"])
    return {
        "shared_buffers": kb["shared_buffers"] / 1024,
        "max_connections × work_mem": connections * kb["work_mem"] / 1024,
        "maintenance_work_mem": kb["maintenance_work_mem"] / 1024,
        "wal_buffers": kb["wal_buffers"] / 1024,
    }


@check(kind="postgres", name="postgres-memory", inputs=(PG_CONF,))
def check_postgres_memory(repo_root: Path) -> list[Finding]:
    """shared_buffers + max_connections × work_mem + maintenance_work_mem + wal_buffers
    ≤ PG_MEMORY_BUDGET_MB, for postgresql.conf as it is and with the local overrides.
    Values postgres-params rejects are left to it."""
    name, kind, rel = "postgres-memory", "postgres", PG_CONF
    settings = _pg_settings((repo_root / rel).read_text())
    file_values = {k: v for k, (v, _) in settings.items() if k in _PG_DEFAULTS}
    with rendering(repo_root) as r:
        local = {k: v for k, v in r.pg_overrides if k in _PG_DEFAULTS}
    findings = []
    for label, values in (
        ("postgresql.conf", file_values),
        ("with the local runtime's -c overrides", {**file_values, **local}),
    ):
        terms = pg_memory_mb(values)
        if terms is None:
            continue
        total = sum(terms.values())
        if total > PG_MEMORY_BUDGET_MB:
            worst = max(terms, key=terms.get)
            param = "max_connections" if "×" in worst else worst
            line = settings.get(param, (None, None))[1]
            parts = " + ".join(f"{k} {v:.0f}" for k, v in terms.items())
            findings.append(
                _finding(
                    name,
                    kind,
                    rel,
                    line,
                    f"{label}: PostgreSQL may use {total:.0f} MB ({parts}), over the "
                    f"{PG_MEMORY_BUDGET_MB} MB budget",
                    f"lower {param} (the largest term), or raise PG_MEMORY_BUDGET_MB in "
                    "src/ocean/validate/stack_checks.py",
                )
            )
    return findings


# -- Redis --------------------------------------------------------------------------


def _redis_directives(text: str) -> dict[str, tuple[list[str], int]]:
    found: dict[str, tuple[list[str], int]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        found[words[0].lower()] = (words[1:], number)
    return found


def _rendered_redis(r: Rendered) -> dict[str, str]:
    data = r.settings.data
    rendered = {}
    for rel in REDIS_CONFS:
        (data / Path(rel).stem).mkdir(parents=True, exist_ok=True)  # redis chdirs to it
        rendered[rel] = r.render(rel, redis_dir=data / Path(rel).stem)
    return rendered


@check(kind="redis", name="redis-directives", inputs=REDIS_CONFS)
def check_redis_directives(repo_root: Path) -> list[Finding]:
    """The installed redis-server accepts every directive (and value) of each rendered
    config: it loads the file with ``--port 0``, a unix socket and dir in a temp dir,
    ``--replicaof no one`` and no persistence, and is stopped as soon as it is ready."""
    name, kind = "redis-directives", "redis"
    server = program("redis-server")
    if not server:
        return [
            missing_tool(
                name, kind, "redis-server", "apt-get install -y redis-server", REDIS_CONFS[0]
            )
        ]
    with rendering(repo_root) as r:
        procs: list[tuple[str, str, subprocess.Popen, Path]] = []
        try:
            for rel, text in _rendered_redis(r).items():
                work = r.root / Path(rel).stem
                work.mkdir(parents=True)
                conf = work / "redis.conf"
                conf.write_text(text)
                sock = work / "redis.sock"
                argv = [
                    server,
                    str(conf),
                    "--port",
                    "0",
                    "--unixsocket",
                    str(sock),
                    "--dir",
                    str(work),
                    "--daemonize",
                    "no",
                    "--replicaof",
                    "no",
                    "one",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--logfile",
                    "",
                    "--pidfile",
                    str(work / "redis.pid"),
                ]
                proc = subprocess.Popen(
                    argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
                )
                procs.append((rel, text, proc, sock))
            return _judge_redis_loads(name, kind, repo_root, procs)
        finally:  # whatever went wrong: no throwaway server outlives the check
            for _rel, _text, proc, _sock in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


def _judge_redis_loads(
    name: str, kind: str, repo_root: Path, procs: list[tuple[str, str, subprocess.Popen, Path]]
) -> list[Finding]:
    """Wait until each throwaway server is ready or has exited, stop it, and turn a
    refused config into a finding on the template's line."""
    findings = []
    deadline = time.monotonic() + scaled(REDIS_READY_TIMEOUT)
    for rel, _text, proc, sock in procs:
        while proc.poll() is None and not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        ready = proc.poll() is None and sock.exists()
        if proc.poll() is None:
            proc.terminate()
        try:
            output, _ = proc.communicate(timeout=scaled(5))
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        if ready:
            continue
        match = re.search(r"at line (\d+)\n>>> '(.*)'\n(.*)", output)
        if match:
            template = (repo_root / rel).read_text()
            line = _template_line(template, match.group(2)) or int(match.group(1))
            findings.append(
                _finding(
                    name,
                    kind,
                    rel,
                    line,
                    f"{match.group(3).strip()}: {match.group(2)}",
                    "see redis.conf of the installed redis-server",
                )
            )
        else:
            findings.append(
                _finding(
                    name,
                    kind,
                    rel,
                    None,
                    f"redis-server rejected the config: {output.strip()[-300:]}",
                )
            )
    return findings


@check(kind="redis", name="redis-replica-of-master", inputs=REDIS_CONFS)
def check_redis_replica(repo_root: Path) -> list[Finding]:
    """The replica's ``replicaof`` is the master's bind address and port (port plan)."""
    name, kind, rel = "redis-replica-of-master", "redis", REDIS_CONFS[1]
    with rendering(repo_root) as r:
        rendered = _rendered_redis(r)
        plan_port = r.settings.ports["redis-master"]
    master = _redis_directives(rendered[REDIS_CONFS[0]])
    replica = _redis_directives(rendered[rel])
    template = (repo_root / rel).read_text()
    entry = replica.get("replicaof") or replica.get("slaveof")
    if not entry:
        return [
            _finding(
                name,
                kind,
                rel,
                None,
                "the replica has no replicaof directive",
                "replicaof <master host> <master port>",
            )
        ]
    args, _ = entry
    line = _find_line(template, r"^\s*(replicaof|slaveof)\b")
    master_port = master.get("port", ([None], 0))[0][0]
    master_hosts = master.get("bind", (["127.0.0.1"], 0))[0]
    problems = []
    if len(args) != 2:
        problems.append(f"replicaof {' '.join(args)}: expected a host and a port")
    else:
        host, port = args
        if port != str(plan_port) or port != master_port:
            problems.append(
                f"replicaof port {port} is not the master's "
                f"({master_port}, redis-master in the port plan: {plan_port})"
            )
        if host not in master_hosts:
            problems.append(
                f"replicaof host {host} is not where the master listens ({' '.join(master_hosts)})"
            )
    return [
        _finding(
            name,
            kind,
            rel,
            line,
            p,
            "replicaof {{ redis_master_host }} {{ ports['redis-master'] }}",
        )
        for p in problems
    ]


@check(kind="redis", name="redis-persistence", inputs=REDIS_CONFS)
def check_redis_persistence(repo_root: Path) -> list[Finding]:
    """Persistence agrees with the backup procedure, which runs BGSAVE on the master and
    copies ``<dir>/<dbfilename>`` (then checks it with redis-check-rdb). The rule, for
    each config:

    - ``dbfilename`` is set explicitly to a bare file name ending in ``.rdb``;
    - RDB snapshots are on: ``save`` is set and not ``""`` (the RedisRdbSaveTooOld alert
      expects periodic saves; AOF alone leaves the backup no fresh RDB);
    - ``appendonly`` is set explicitly to yes or no, and the same on master and replica
      (a promoted replica keeps the master's durability; a restore starts with
      ``--appendonly no`` when it is yes, see the native-stack notes).
    """
    name, kind = "redis-persistence", "redis"
    with rendering(repo_root) as r:
        rendered = _rendered_redis(r)
    findings = []
    appendonly = {}
    for rel, text in rendered.items():
        template = (repo_root / rel).read_text()
        d = _redis_directives(text)

        def add(message, hint, directive, rel=rel, template=template):
            line = _find_line(template, rf"^\s*{directive}\b")
            findings.append(_finding(name, kind, rel, line, message, hint))

        db = d.get("dbfilename")
        if not db or len(db[0]) != 1 or not db[0][0].endswith(".rdb") or "/" in db[0][0]:
            add(
                "dbfilename must be set to a bare file name ending in .rdb: the backup "
                "copies <dir>/<dbfilename> after BGSAVE",
                "dbfilename dump.rdb",
                "dbfilename",
            )
        save = d.get("save")
        if not save or not any(save[0]) or save[0] == [""]:
            add(
                "RDB snapshots are off (no save rule): the backup procedure and the "
                "RedisRdbSaveTooOld alert rely on RDB saves",
                "save 900 1 300 10 60 10000",
                "save",
            )
        aof = d.get("appendonly")
        if not aof or len(aof[0]) != 1 or aof[0][0].lower() not in ("yes", "no"):
            add("appendonly must be set explicitly to yes or no", "appendonly yes", "appendonly")
        else:
            appendonly[rel] = aof[0][0].lower()
    if len(set(appendonly.values())) > 1:
        rel = REDIS_CONFS[1]
        line = _find_line((repo_root / rel).read_text(), r"^\s*appendonly\b")
        findings.append(
            _finding(
                name,
                kind,
                rel,
                line,
                f"appendonly differs: master {appendonly.get(REDIS_CONFS[0])}, "
                f"replica {appendonly.get(rel)}",
                "use the same appendonly on both",
            )
        )
    return findings


# -- nginx --------------------------------------------------------------------------


def _render_nginx(r: Rendered) -> tuple[Path, str, str]:
    etc = r.settings.etc
    etc.mkdir(parents=True, exist_ok=True)
    for directory in (
        r.settings.logs,
        r.settings.run,
        r.settings.state_dir / "nginx" / "tmp",
        r.settings.state_dir / "nginx" / "cache",
    ):
        directory.mkdir(parents=True, exist_ok=True)
    host, ports = r.settings.host, r.settings.ports
    upstream = render(
        UPSTREAM_CONF,
        {"upstream_servers": [f"{host}:{ports[c]}" for c in ("shop-blue", "shop-green")]},
        root=r.repo_root,
    )
    nginx = r.render(NGINX_CONF)
    (etc / "upstream.conf").write_text(upstream)
    (etc / "nginx.conf").write_text(nginx)
    return etc / "nginx.conf", nginx, upstream


@check(kind="nginx", name="nginx-syntax", inputs=(NGINX_CONF, UPSTREAM_CONF))
def check_nginx_syntax(repo_root: Path) -> list[Finding]:
    """The rendered nginx.conf (with a rendered upstream.conf) passes ``nginx -t``."""
    name, kind = "nginx-syntax", "nginx"
    nginx = program("nginx")
    if not nginx:
        return [missing_tool(name, kind, "nginx", "apt-get install -y nginx", NGINX_CONF)]
    with rendering(repo_root) as r:
        conf, rendered, upstream = _render_nginx(r)
        result = subprocess.run(
            [nginx, "-t", "-q", "-p", str(r.settings.state_dir / "nginx"), "-c", str(conf)],
            capture_output=True,
            text=True,
            timeout=scaled(10),
        )
        if result.returncode == 0:
            return []
        findings = []
        for message in result.stderr.splitlines():
            match = re.search(r"\[emerg\]\s*(?:\d+#\d+:\s*)?(.*?)\s+in\s+(\S+):(\d+)", message)
            if not match:
                continue
            path, line = Path(match.group(2)), int(match.group(3))
            rel, text, template = (
                (UPSTREAM_CONF, upstream, UPSTREAM_CONF)
                if path.name == "upstream.conf"
                else (NGINX_CONF, rendered, NGINX_CONF)
            )
            source = (repo_root / template).read_text()
            lines = text.splitlines()
            offending = lines[line - 1].strip() if 1 <= line <= len(lines) else ""
            # The template's line when the rendered one holds no Jinja, else the
            # rendered file's line (block tags shift it by a line or two).
            mapped = _template_line(source, offending) if offending else None
            findings.append(
                _finding(
                    name,
                    kind,
                    rel,
                    mapped or line or None,
                    f"{match.group(1)} (at: {offending})".replace(str(r.root), "<tmp>"),
                    "nginx -t -p PREFIX -c nginx.conf",
                )
            )
        if not findings:
            findings.append(
                _finding(
                    name,
                    kind,
                    NGINX_CONF,
                    None,
                    result.stderr.strip().replace(str(r.root), "<tmp>")
                    or f"nginx -t exited {result.returncode} and printed nothing",
                )
            )
        return findings


@check(kind="nginx", name="nginx-upstreams", inputs=(NGINX_CONF, UPSTREAM_CONF))
def check_nginx_upstreams(repo_root: Path) -> list[Finding]:
    """Every server of the rendered upstream.conf is a service's port in the port plan
    (config.PORT_OFFSETS, on the stack's host), and every proxy_pass names an upstream
    defined in upstream.conf or nginx.conf."""
    name, kind = "nginx-upstreams", "nginx"
    findings = []
    with rendering(repo_root) as r:
        _, rendered, upstream = _render_nginx(r)
        host, ports = r.settings.host, r.settings.ports
    by_port = {ports[s]: s for s in PORT_OFFSETS}
    up_template = (repo_root / UPSTREAM_CONF).read_text()
    ng_template = (repo_root / NGINX_CONF).read_text()
    defined = set()
    for text in (upstream, rendered):
        defined |= set(re.findall(r"^\s*upstream\s+(\S+)\s*\{", text, re.MULTILINE))
    for line in upstream.splitlines():
        match = re.match(r"^\s*server\s+([^\s;]+)", line)
        if not match:
            continue
        address = match.group(1)
        where = _template_line(up_template, line) or _find_line(up_template, r"^\s*server\s")
        server_host, _, port = address.rpartition(":")
        service = by_port.get(int(port)) if port.isdigit() else None
        if server_host != host or service is None or service not in BY_NAME:
            findings.append(
                _finding(
                    name,
                    kind,
                    UPSTREAM_CONF,
                    where,
                    f"upstream server {address} is no service of the port plan "
                    f"(host {host}, base {ports.base})",
                    "upstream servers come from the port plan: "
                    "render_upstream([color, ...]) in the stack spec",
                )
            )
    for number, line in enumerate(ng_template.splitlines(), 1):
        # An address rendered from the port plan ({{ hosts.X }}:{{ ports.X }}, the
        # operator endpoints) names a service, not an upstream; nor does a unix socket
        # (http://unix:PATH:/uri, the nginx exporter's).
        match = re.match(r"^\s*proxy_pass\s+https?://(?!unix:)([^/;\s:${]+)", line)
        if match and match.group(1) not in defined:
            findings.append(
                _finding(
                    name,
                    kind,
                    NGINX_CONF,
                    number,
                    f"proxy_pass names upstream {match.group(1)!r}, which is not defined "
                    f"(defined: {', '.join(sorted(defined)) or 'none'})",
                    "define it in stack/nginx/upstream.conf",
                )
            )
    return findings


# -- YAML ---------------------------------------------------------------------------


def yaml_files(repo_root: Path) -> list[Path]:
    found = []
    for directory, dirs, files in os.walk(repo_root):
        dirs[:] = sorted(d for d in dirs if d not in YAML_SKIP_DIRS and not d.endswith(".egg-info"))
        found += [Path(directory) / f for f in sorted(files) if f.endswith((".yml", ".yaml"))]
    return found


@functools.lru_cache(maxsize=8)
def _yamllint_config(text: str) -> Any:
    from yamllint.config import YamlLintConfig

    return YamlLintConfig(text)


@functools.lru_cache(maxsize=512)
def _yamllint_problems(config_text: str, rel: str, text: str) -> tuple[Any, ...]:
    """yamllint's problems of one file's text, remembered in the process: linting the
    repo's ≈ 70 YAML files costs ≈ 1 CPU-second, and the console, the deploy gate and
    the fuzz test validate again and again where mostly nothing changed."""
    import yaml
    from yamllint import linter

    try:
        return tuple(linter.run(text, _yamllint_config(config_text), rel))
    except yaml.YAMLError as exc:  # the reader's refusal (a control character) escapes it
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "mark", None)
        line = mark.line + 1 if mark is not None else 1
        return (linter.LintProblem(line, 1, f"syntax error: {exc}".splitlines()[0]),)


# yamllint findings that change what a file means: a syntax error (no rule: the file does
# not parse) and a key given twice (the YAML loader keeps the last one silently).
YAMLLINT_ERROR_RULES = {None, "key-duplicates"}


def yamllint_severity(rule: str | None) -> str:
    """The policy: style (indentation, spacing, line length, …) is a warning on a file
    that parses, whatever level yamllint gives it; what changes the meaning is an error."""
    return "error" if rule in YAMLLINT_ERROR_RULES else "warning"


@check(kind="yaml", name="yamllint")
def check_yamllint(repo_root: Path) -> list[Finding]:
    """yamllint (config: ``.yamllint`` at the repo root) over every YAML file.

    The Jinja templates (YAML_TEMPLATES: prometheus.yml, alertmanager.yml, blackbox.yml) are
    rendered with the local runtime's context first; their findings name the template
    and the rendered line (the same line unless a block tag sits above it); line-length
    is not checked on them (the rendered temp paths and URLs set it, not the author).
    Severity: ``yamllint_severity`` (style is a warning, a syntax error or a duplicate key
    an error).
    """
    name, kind = "yamllint", "yaml"
    try:
        import yamllint.linter  # noqa: F401  (installed? _yamllint_problems needs it)
    except ImportError:
        return [missing_tool(name, kind, "yamllint", "pip install -e '.[dev]'", ".yamllint")]
    config_file = repo_root / ".yamllint"
    config_text = config_file.read_text() if config_file.exists() else "extends: default"
    config = _yamllint_config(config_text)
    findings = []
    with rendering(repo_root) as r:
        for path in yaml_files(repo_root):
            rel = path.relative_to(repo_root).as_posix()
            if config.is_file_ignored(rel):
                continue
            text = path.read_text()
            if rel in YAML_TEMPLATES:
                try:
                    text = r.render(rel)
                except jinja2.TemplateError as exc:
                    findings.append(
                        _finding(
                            name,
                            kind,
                            rel,
                            getattr(exc, "lineno", None),
                            f"cannot render the template: {exc}",
                        )
                    )
                    continue
            for problem in _yamllint_problems(config_text, rel, text):
                if rel in YAML_TEMPLATES and problem.rule == "line-length":
                    continue  # rendered temp paths and URLs, not the template's lines
                findings.append(
                    _finding(
                        name,
                        kind,
                        rel,
                        problem.line,
                        f"{problem.desc} ({problem.rule})" if problem.rule else problem.desc,
                        "yamllint config: .yamllint"
                        if problem.rule
                        else "fix the YAML syntax: the file does not parse",
                        yamllint_severity(problem.rule),
                    )
                )
    return findings


STACK_KINDS = ("postgres", "redis", "nginx", "yaml", "compose")
