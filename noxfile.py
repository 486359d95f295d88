"""CI sessions for Ocean Ops. `nox -l` lists them; CI runs `nox -s lint tests`."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

PROJECT = ["-e", "stack/shop", "-e", ".[dev]"]


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: lint rules and formatting of every Python file."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and integration tests against real services started in a temp state dir.

    Pass pytest arguments after `--`, e.g. `nox -s tests -- -k status -x`.
    """
    session.install(*PROJECT)
    session.run("pytest", *(session.posargs or ["-ra"]))


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Bring-up benchmarks (first-ever and warm up, down, idle memory, kill -9 recovery).

    Results go to docs/benchmarks.md by hand, with this command; `-- --warm-runs 9` etc.
    """
    session.install(*PROJECT)
    session.run("python", "-m", "tests.bench.bringup", *session.posargs)
