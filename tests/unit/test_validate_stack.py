"""The stack's config checks (ocean.validate.stack_checks) against broken copies of the repo.

Each test copies the files the checks read into tmp_path, breaks one thing and expects
the right check to name the right file (and line); the clean copy is flagged by nothing.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from ocean.config import REPO_ROOT
from ocean.validate import core, stack_checks
from ocean.validate.core import program
from ocean.validate.stack_checks import (
    NGINX_CONF,
    PG_CONF,
    REDIS_CONFS,
    STACK_KINDS,
    UPSTREAM_CONF,
)

MASTER, REPLICA = REDIS_CONFS

needs_postgres = pytest.mark.skipif(program("postgres") is None, reason="postgres not installed")
needs_redis = pytest.mark.skipif(program("redis-server") is None, reason="no redis-server")
needs_nginx = pytest.mark.skipif(program("nginx") is None, reason="no nginx")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for part in ("stack/nginx", "stack/postgres", "stack/redis", "monitoring"):
        shutil.copytree(REPO_ROOT / part, root / part)
    shutil.copy(REPO_ROOT / ".yamllint", root / ".yamllint")
    return root


def edit(root: Path, rel: str, old: str, new: str) -> int:
    """Replace ``old`` (which must occur) by ``new`` in a copied file; the line it is on."""
    path = root / rel
    text = path.read_text()
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new, 1))
    return text[: text.index(old)].count("\n") + 1


def only(findings, check: str):
    assert findings, f"{check}: nothing found"
    assert {f.check for f in findings} == {check}, findings
    assert all(f.severity == "error" for f in findings), findings
    return findings


# -- registration and the clean copy ------------------------------------------------


def test_checks_are_registered_under_their_kinds():
    checks = core.registry()
    expected = {
        "postgres-params": "postgres",
        "postgres-memory": "postgres",
        "redis-directives": "redis",
        "redis-replica-of-master": "redis",
        "redis-persistence": "redis",
        "nginx-syntax": "nginx",
        "nginx-upstreams": "nginx",
        "yamllint": "yaml",
    }
    assert {name: checks[name].kind for name in expected} == expected
    assert set(STACK_KINDS) <= core.kinds()


@needs_postgres
@needs_redis
@needs_nginx
def test_clean_copy_is_flagged_by_nothing_within_the_budget(repo):
    started = time.monotonic()
    findings = core.run(repo, only=set(STACK_KINDS))
    assert findings == []
    assert time.monotonic() - started < 5


# -- PostgreSQL ---------------------------------------------------------------------


@needs_postgres
def test_unknown_postgres_parameter(repo):
    line = edit(repo, PG_CONF, "work_mem = 4MB\n", "work_mem = 4MB\nwurk_mem = 4MB\n") + 1
    (finding,) = only(stack_checks.check_postgres_params(repo), "postgres-params")
    assert (finding.file, finding.line) == (PG_CONF, line)
    assert "wurk_mem" in finding.message


@needs_postgres
def test_bad_postgres_value(repo):
    line = edit(repo, PG_CONF, "shared_buffers = 128MB", "shared_buffers = lots")
    (finding,) = only(stack_checks.check_postgres_params(repo), "postgres-params")
    assert (finding.file, finding.line) == (PG_CONF, line)
    assert "shared_buffers" in finding.message


@needs_postgres
def test_unknown_name_does_not_hide_bad_values(repo):
    # postgres stops at unknown names before checking values: both must still come out.
    bad = edit(repo, PG_CONF, "random_page_cost = 1.1", "random_page_cost = -3")
    unknown = edit(repo, PG_CONF, "autovacuum = on", "autovacum = on")
    findings = only(stack_checks.check_postgres_params(repo), "postgres-params")
    assert sorted(f.line for f in findings) == sorted([bad, unknown])


@needs_postgres
def test_postgres_memory_over_budget(repo):
    line = edit(repo, PG_CONF, "max_connections = 100", "max_connections = 1000")
    findings = only(stack_checks.check_postgres_memory(repo), "postgres-memory")
    assert {(f.file, f.line) for f in findings} == {(PG_CONF, line)}
    assert "budget" in findings[0].message


def test_postgres_memory_arithmetic():
    terms = stack_checks.pg_memory_mb(
        {"shared_buffers": "16384", "max_connections": "10", "work_mem": "1024kB"}
    )
    # 16384 pages of 8 kB; wal_buffers -1 → 1/32 of shared_buffers (4 MB)
    assert terms == {
        "shared_buffers": 128,
        "max_connections × work_mem": 10,
        "maintenance_work_mem": 64,
        "wal_buffers": 4,
    }


# -- Redis --------------------------------------------------------------------------


@needs_redis
def test_unknown_redis_directive(repo):
    line = edit(repo, MASTER, "maxmemory-policy allkeys-lru", "maxmemory-polcy allkeys-lru")
    (finding,) = only(stack_checks.check_redis_directives(repo), "redis-directives")
    assert (finding.file, finding.line) == (MASTER, line)
    assert "maxmemory-polcy" in finding.message


def test_replica_pointing_elsewhere(repo):
    line = edit(
        repo,
        REPLICA,
        "replicaof {{ redis_master_host }} {{ ports['redis-master'] }}",
        "replicaof {{ redis_master_host }} {{ ports['redis-replica'] }}",
    )
    (finding,) = only(stack_checks.check_redis_replica(repo), "redis-replica-of-master")
    assert (finding.file, finding.line) == (REPLICA, line)


def test_redis_persistence_contradicting_the_backup(repo):
    db_line = edit(repo, MASTER, "dbfilename dump.rdb\n", "")
    aof_line = edit(repo, REPLICA, "appendonly yes", "appendonly no")
    findings = only(stack_checks.check_redis_persistence(repo), "redis-persistence")
    assert {(f.file, f.line) for f in findings} == {(MASTER, None), (REPLICA, aof_line)}
    assert db_line  # the master has no dbfilename line left to point at
    assert any("dbfilename" in f.message for f in findings)


def test_redis_snapshots_off(repo):
    line = edit(repo, MASTER, "save 900 1 300 10 60 10000", 'save ""')
    (finding,) = only(stack_checks.check_redis_persistence(repo), "redis-persistence")
    assert (finding.file, finding.line) == (MASTER, line)


# -- nginx --------------------------------------------------------------------------


@needs_nginx
def test_nginx_syntax_error(repo):
    line = edit(repo, NGINX_CONF, "server_tokens off;", "server_tokens offf;")
    (finding,) = only(stack_checks.check_nginx_syntax(repo), "nginx-syntax")
    assert (finding.file, finding.line) == (NGINX_CONF, line)
    assert "server_tokens" in finding.message


def test_upstream_server_outside_the_port_plan(repo):
    line = edit(
        repo, UPSTREAM_CONF, "    keepalive 64;", "    server 127.0.0.1:18099;\n    keepalive 64;"
    )
    (finding,) = only(stack_checks.check_nginx_upstreams(repo), "nginx-upstreams")
    assert (finding.file, finding.line) == (UPSTREAM_CONF, line)
    assert "18099" in finding.message


def test_proxy_pass_to_an_undefined_upstream(repo):
    line = edit(repo, NGINX_CONF, "location /ws/ {\n", "location /ws/ {\n") + 1
    edit(
        repo,
        NGINX_CONF,
        "location /ws/ {\n            proxy_pass http://shop;",
        "location /ws/ {\n            proxy_pass http://shops;",
    )
    (finding,) = only(stack_checks.check_nginx_upstreams(repo), "nginx-upstreams")
    assert (finding.file, finding.line) == (NGINX_CONF, line)
    assert "shops" in finding.message


# -- YAML ---------------------------------------------------------------


def test_yaml_lint_error(repo):
    (repo / "monitoring" / "broken.yml").write_text("groups: []\ngroups: []\n")
    (finding,) = only(stack_checks.check_yamllint(repo), "yamllint")
    assert (finding.file, finding.line) == ("monitoring/broken.yml", 2)
    assert "key-duplicates" in finding.message


def test_yaml_lint_error_in_a_rendered_template(repo):
    rel = "monitoring/blackbox/blackbox.yml"
    (repo / rel).write_text((repo / rel).read_text() + "extra:   [1,2]\n")
    findings = stack_checks.check_yamllint(repo)
    # Spacing is style: warnings on a file that parses (issue 21 class 9).
    assert {(f.check, f.file, f.severity) for f in findings} == {("yamllint", rel, "warning")}


@needs_postgres
def test_bad_runtime_override_names_local_py(repo, monkeypatch):
    real = stack_checks.rendering

    def with_bad_override(root):
        cm = real(root)
        r = cm.__enter__()
        r.pg_overrides = [*r.pg_overrides, ("shared_buffers", "lots")]

        class Wrapped:
            def __enter__(self):
                return r

            def __exit__(self, *exc):
                return cm.__exit__(*exc)

        return Wrapped()

    monkeypatch.setattr(stack_checks, "rendering", with_bad_override)
    (finding,) = only(stack_checks.check_postgres_params(repo), "postgres-params")
    assert finding.file == "src/ocean/stackspec/programs.py"
    assert "shared_buffers" in finding.message
