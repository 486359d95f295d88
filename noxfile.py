"""CI sessions for Ocean Ops. `nox -l` lists them; CI runs `nox -s lint validate tests`."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "validate", "tests"]
nox.options.reuse_existing_virtualenvs = True

PROJECT = ["-e", "stack/shop", "-e", "stack/inbox", "-e", ".[dev]"]


# Bandit's scope and config (pyproject.toml [tool.bandit]; docs/security.md).
BANDIT = ["bandit", "-c", "pyproject.toml", "-q", "-r", "src", "tasks.py", "tui"]
BANDIT += ["stack/shop", "stack/inbox"]


# Where lint-imports finds the packages its contracts name: this checkout's, whatever
# the session's venv has installed (it reads the source; it imports nothing).
IMPORT_ROOTS = ["src", ".", "stack/shop", "stack/inbox"]


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: lint rules and formatting of every Python file; then bandit, the offline
    half of `nox -s audit` (≈ 6 CPU-seconds), so CI checks our code on every run; then
    the architecture contracts of pyproject.toml's [tool.importlinter] (issue 23)."""
    session.install("ruff>=0.6", "bandit>=1.8", "import-linter>=2.17")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run(*BANDIT)
    session.run("lint-imports", env={"PYTHONPATH": os.pathsep.join(IMPORT_ROOTS)})


@nox.session(default=False)
def audit(session: nox.Session) -> None:
    """Security scanning (issue 25, Medium 13): bandit over our code (offline), then
    pip-audit of the toolkit's environment, the shop's requirements and the shop image's
    requirement set (`python -m ocean.depaudit`). Needs network to pypi.org (its JSON API
    is pip-audit's vulnerability service): without it the audit is *inconclusive*, exit 2,
    never a pass. A known vulnerability: exit 1 and the list. Arguments after `--` go to
    ocean.depaudit, e.g. `nox -s audit -- --target toolkit --json` (docs/security.md).
    """
    session.install("bandit>=1.8", "pip-audit>=2.7", *PROJECT)
    session.run(*BANDIT)
    session.run("python", "-m", "ocean.depaudit", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and integration tests against real services started in a temp state dir.

    Pass pytest arguments after `--`, e.g. `nox -s tests -- -k status -x`.
    """
    session.install(*PROJECT)
    session.run("pytest", *(session.posargs or ["-ra"]))


@nox.session
def validate(session: nox.Session) -> None:
    """Offline config validation: `invoke validate` (promtool, amtool, dashboards, SLO
    files, runbooks, and the stack's own checks). Arguments after `--` go to it, e.g.
    `nox -s validate -- --only rules,dashboards --strict` or `-- --json`.

    CI runs it before the tests: a broken config fails the build in seconds. A cold run
    takes ≈ 4 s on 2 cores (≈ 6 CPU-seconds, most of it `promtool test rules`), ≈ 1 s
    once the rule-test passes are cached in ~/.cache/ocean/validate (docs/benchmarks.md).
    """
    session.install(*PROJECT)
    # --install: a fresh CI machine gets the checkers (promtool, nginx, …) from Debian.
    session.run("invoke", "validate", "--install", *session.posargs)


BENCHES = {
    "bringup": "tests.bench.bringup",
    "shop": "tests.bench.shop",
    "seed": "tests.bench.seed",
    "deploy": "tests.bench.deploy",
    "tui": "tests.bench.tui",
    # the Dashboards screen: first paint, CPU per refresh of 20 panels, idle CPU
    "dashboards": "tests.bench.dashboards",
    "backup": "tests.bench.backup",  # 1M orders: backup vs pg_dump, verify vs pg_restore
    "loadtest": "tests.bench.loadtest",  # browsing VU search, stress breaking point, 10k VUs
    "storefront": "tests.bench.storefront",  # page load in Chromium under 100 API VUs
    # 10 healthy, 10 failing, 10 slow deploys under 50 VUs, with CPU hogs and without
    "verdicts": "tests.bench.verdicts",
    # `invoke validate` cold, after one rule file changed, and warm (issue 21)
    "validate": "tests.bench.validate",
}


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Bring-up benchmarks (first-ever and warm up, down, idle memory, kill -9 recovery),
    then shop throughput (k6 through nginx: reads, browse, checkout), then bulk seed
    (`invoke seed --orders 1000000`, three runs), then blue-green deploys under k6 load
    (five deploys, three automatic rollbacks), then the others in BENCHES (`-- loadtest`:
    browsing VU search, stress breaking point, 10,000 VUs; ≈ 5 min).

    Results go to docs/benchmarks.md by hand, with this command; `-- --warm-runs 9` etc.
    go to the bring-up; `-- shop --duration 30` (or `-- bringup ...`) runs one alone.
    """
    session.install(*PROJECT)
    args = list(session.posargs)
    only = args.pop(0) if args and args[0] in BENCHES else None
    for name, module in BENCHES.items():
        if only in (None, name):
            passed = args if only or name == "bringup" else []
            session.run("python", "-m", module, *passed)


@nox.session(default=False)
def fuzz(session: nox.Session) -> None:
    """Never a crash (issue 21): every registered validation check fed 1,000 generated
    documents (≈ 35 min on 2 busy cores). The suite runs the same test with 25 a check so
    CI stays within its time; `-- -k NAME` fuzzes one check.
    """
    session.install(*PROJECT)
    session.env["OCEAN_FUZZ_EXAMPLES"] = session.env.get("OCEAN_FUZZ_EXAMPLES", "1000")
    session.run("pytest", "-q", "tests/unit/test_validate_fuzz.py", *session.posargs)
