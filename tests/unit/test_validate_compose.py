"""The compose checks (ocean.validate.compose_checks) against broken compose fixtures.

A clean compose file (every rule kept) is flagged by nothing; each fixture breaks one
rule and must be caught by the right check, naming the file and the line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ocean.validate import compose_checks, core

COMPOSE = "stack/docker-compose.prod.yml"

CLEAN = """\
name: ocean
x-limits: &limits
  resources:
    limits:
      memory: 256M
      cpus: "0.5"
services:
  shop:
    build:
      context: ./shop
    image: ocean/shop:${SHOP_VERSION}
    environment:
      SHOP_DB_PASSWORD_FILE: /run/secrets/shop_db_password
      SHOP_SESSION_SECRET: ${SHOP_SESSION_SECRET:?set it in .env}
      SHOP_CACHE_TTL: "60"
    secrets:
      - shop_db_password
    healthcheck:
      test: [CMD, curl, -fsS, http://localhost:8000/healthz]
      interval: 5s
      timeout: 3s
      retries: 5
    deploy: *limits
  postgres:
    image: postgres:15.5-bookworm
    environment:
      - POSTGRES_PASSWORD_FILE=/run/secrets/shop_db_password
      - PGDATA=/var/lib/postgresql/data/pgdata
    secrets:
      - shop_db_password
    healthcheck:
      test: [CMD-SHELL, pg_isready -U postgres]
    mem_limit: 512m
    cpus: 1.0
    ports:
      - "${OCEAN_BIND:-127.0.0.1}:5432:5432"
  redis:
    image: redis@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    command: [redis-server, --requirepass, "$${REDIS_PASSWORD}"]
    environment:
      REDIS_PASSWORD:
    healthcheck:
      test: [CMD, redis-cli, ping]
    deploy: *limits
secrets:
  shop_db_password:
    file: ./secrets/shop_db_password
"""

ENV_TEMPLATE = """\
# Variables the compose files read (copy to .env and fill in).
SHOP_VERSION=0.1.0
SHOP_SESSION_SECRET=
export OCEAN_BIND=127.0.0.1
"""

COMPOSE_CHECKS = {
    "compose-schema",
    "compose-healthcheck",
    "compose-limits",
    "compose-env",
    "compose-secrets",
    "compose-images",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "stack").mkdir(parents=True)
    (root / COMPOSE).write_text(CLEAN)
    (root / ".env.template").write_text(ENV_TEMPLATE)
    return root


def edit(root: Path, old: str, new: str) -> int:
    """Replace ``old`` (which must occur once) in the compose file; the line it starts on."""
    path = root / COMPOSE
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    path.write_text(text.replace(old, new))
    return text[: text.index(old)].count("\n") + 1


def run(root: Path) -> list:
    return core.run(root, only={"compose"})


def test_the_compose_checks_are_registered():
    checks = core.registry()
    assert {name for name, c in checks.items() if c.kind == "compose"} == COMPOSE_CHECKS


def test_no_compose_file_no_finding(tmp_path: Path):
    (tmp_path / "stack").mkdir()
    assert run(tmp_path) == []


def test_the_clean_fixture_is_flagged_by_nothing(repo: Path):
    assert run(repo) == []


def test_compose_files_are_discovered(tmp_path: Path):
    for rel in (
        "stack/docker-compose.yml",
        "stack/docker-compose.prod.yaml",
        "stack/compose.yaml",
        "compose.override.yml",
        "stack/notes.yml",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("services: {}\n")
    found = [p.relative_to(tmp_path).as_posix() for p in compose_checks.compose_files(tmp_path)]
    assert found == [
        "compose.override.yml",
        "stack/compose.yaml",
        "stack/docker-compose.prod.yaml",
        "stack/docker-compose.yml",
    ]


# -- one broken rule per fixture ------------------------------------------------------

# (id, [(old, new) edits of the clean file], check, the lines flagged: where each of
# these texts stands in the broken file, text each message names)
BREAKAGES = [
    (
        "unknown top-level key",
        [("secrets:\n  shop_db_password:", "servises: {}\nsecrets:\n  shop_db_password:")],
        "compose-schema",
        ["servises: {}"],
        "servises",
    ),
    (
        "unknown service key",
        [("    mem_limit: 512m\n", "    mem_limit: 512m\n    restart_policy: always\n")],
        "compose-schema",
        ["restart_policy: always"],
        "restart_policy",
    ),
    (
        "wrong type",
        [("      retries: 5", "      retries: [5]")],
        "compose-schema",
        ["retries: [5]"],
        "retries",
    ),
    (
        "invalid YAML",
        [("    cpus: 1.0\n", "    cpus: [1.0\n")],
        "compose-schema",
        None,  # the parser's line
        "invalid YAML",
    ),
    (
        "service without healthcheck",
        [("    healthcheck:\n      test: [CMD, redis-cli, ping]\n", "")],
        "compose-healthcheck",
        ["  redis:"],
        "redis has no healthcheck",
    ),
    (
        "disabled healthcheck",
        [("test: [CMD, redis-cli, ping]", "disable: true")],
        "compose-healthcheck",
        ["    healthcheck:\n      disable: true"],
        "disabled",
    ),
    (
        "service without memory limit",
        [("    mem_limit: 512m\n", "")],
        "compose-limits",
        ["  postgres:"],
        "postgres has no memory limit",
    ),
    (
        "undeclared variable",
        [('SHOP_CACHE_TTL: "60"', "SHOP_CACHE_TTL: ${SHOP_CACHE_TTL:-60}")],
        "compose-env",
        ["SHOP_CACHE_TTL: ${"],
        "${SHOP_CACHE_TTL} is not declared in .env.template",
    ),
    (
        "literal secret",
        [("SHOP_SESSION_SECRET: ${SHOP_SESSION_SECRET:?set it in .env}", "SHOP_SESSION_SECRET: x")],
        "compose-secrets",
        ["SHOP_SESSION_SECRET: x"],
        "SHOP_SESSION_SECRET has a literal value",
    ),
    (
        "literal secrets in a list and as a default",
        [
            ("- PGDATA=", "- POSTGRES_PASSWORD=postgres\n      - PGDATA="),
            ("${SHOP_SESSION_SECRET:?set it in .env}", "${SHOP_SESSION_SECRET:-changeme}"),
        ],
        "compose-secrets",
        ["- POSTGRES_PASSWORD=postgres", "SHOP_SESSION_SECRET: ${"],
        "has a literal",
    ),
    (
        "secret file pointing at no mounted secret",
        [
            (
                "SHOP_DB_PASSWORD_FILE: /run/secrets/shop_db_password",
                "SHOP_DB_PASSWORD_FILE: /etc/pw",
            )
        ],
        "compose-secrets",
        ["SHOP_DB_PASSWORD_FILE: /etc/pw"],
        "points at no secret",
    ),
    (
        "image without a tag",
        [("image: postgres:15.5-bookworm", "image: postgres")],
        "compose-images",
        ["image: postgres\n"],
        "has no tag",
    ),
    (
        "latest image",
        [("image: postgres:15.5-bookworm", "image: docker.io/library/postgres:latest")],
        "compose-images",
        ["image: docker.io/library/postgres:latest"],
        "is :latest",
    ),
]


def line_of(text: str, needle: str) -> int:
    assert text.count(needle) == 1, f"{needle!r} occurs {text.count(needle)} times"
    return text[: text.index(needle)].count("\n") + 1


@pytest.mark.parametrize(
    ("edits", "check", "at", "says"),
    [case[1:] for case in BREAKAGES],
    ids=[case[0] for case in BREAKAGES],
)
def test_each_breakage_is_caught(repo: Path, edits, check: str, at, says: str):
    for old, new in edits:
        edit(repo, old, new)
    findings = run(repo)
    assert findings, f"{check}: nothing found"
    assert {f.check for f in findings} == {check}, findings
    assert {f.file for f in findings} == {COMPOSE}, findings
    assert all(says in f.message for f in findings), findings
    if at is not None:
        text = (repo / COMPOSE).read_text()
        assert sorted(f.line for f in findings) == sorted(line_of(text, a) for a in at)


def test_a_literal_secret_is_not_repeated(repo: Path):
    edit(repo, "${SHOP_SESSION_SECRET:?set it in .env}", "hunter2")
    (finding,) = run(repo)
    assert "hunter2" not in finding.message + finding.hint


def test_escaped_dollar_is_no_variable():
    assert compose_checks.variables("$${REDIS_PASSWORD} ${A:-${B}} $C") == ["A", "B", "C"]


def test_build_exempts_the_image_and_a_registry_port_is_no_tag(repo: Path):
    edit(repo, "image: ocean/shop:${SHOP_VERSION}", "image: ocean/shop")
    edit(repo, "image: postgres:15.5-bookworm", "image: registry.local:5000/postgres:15.5")
    assert run(repo) == []
