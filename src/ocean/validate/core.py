"""The validation core: a registry of checks and a parallel runner.

A check is a function ``fn(repo_root: Path) -> list[Finding]`` registered under a kind
(what ``invoke validate --only KIND`` selects) and a unique name (what a finding names)::

    from ocean.model import Finding
    from ocean.validate.core import check

    @check(kind="postgres", name="postgres-params")
    def postgres_params(root: Path) -> list[Finding]:
        return [Finding("postgres-params", "postgres", "error", "stack/postgres/…", 12,
                        "shared_buffers: …", "hint")]

Checks read files below ``root`` only (tests pass a broken copy of the repo), write
only into temp dirs, and run concurrently in threads: subprocesses (promtool, amtool)
must carry their own ``timeout=`` (``scaled(seconds)``). A Jinja template that does not
render is the template's error: whichever check meets it, ``run_one`` turns it into a
finding on the template's line. A check that raises anything else becomes one error
finding that names it ("check crashed"); one that outlives its ``timeout`` (seconds,
default 60) likewise.

Timeouts are there to catch a hung check, not a busy machine: each check's clock starts
when it starts (not when the run does: with more checks than workers, the last ones
wait), and every budget stretches by ``busy.factor()``, the load average per core. A
deploy's validation gate on a machine whose cores are taken by other work (a CI
neighbour, a backup) then waits longer instead of refusing a sound config.

A missing checker (a program: promtool, amtool, postgres, nginx, redis-server; or a
Python library: yamllint, jsonschema) is an *error* of the check that needs it, made by
``missing_tool``: a validation that could not check must not pass as clean (deploy runs
it as its gate, and warnings never fail without --strict). The hint says how to
install it; ``./ocean up`` installs the programs, ``pip install -e '.[dev]'`` the
libraries.

Modules holding checks register them on import; ``registry()`` imports every module
of this package whose name ends in ``_checks`` (``rule_checks``, ``stack_checks``,
…): a new module of checks needs no list to be edited, and the fuzz test
(tests/unit/test_validate_fuzz.py) feeds its checks generated documents at once.

``inputs`` (globs relative to the repo root) names the files a check reads, for that fuzz
test: it writes its generated documents there. A check that declares none is fuzzed
through every YAML and JSON file below monitoring/ and stack/ (``FUZZ_DEFAULT_INPUTS``).

No invoke/textual imports here (tests/unit/test_import_contract.py).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import shutil
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from ocean import busy
from ocean.model import Finding
from ocean.stackspec.search_path import default_search_path

CheckFn = Callable[[Path], list[Finding]]
DEFAULT_TIMEOUT = 60.0
# How often the runner looks at the clocks of running checks.
POLL_SECONDS = 0.1
SEVERITIES = ("error", "warning")
# Where a check that names no ``inputs`` is fuzzed (see the module's docstring).
FUZZ_DEFAULT_INPUTS = (
    "monitoring/**/*.yml",
    "monitoring/**/*.yaml",
    "monitoring/**/*.json",
    "stack/**/*.yml",
    "stack/**/*.yaml",
)
# Modules of checks, imported first in this order; every other ``*_checks`` module of the
# package is imported after them (``_check_modules``), so a new one needs no entry here.
_MODULES = (
    "ocean.validate.prometheus_checks",
    "ocean.validate.rule_checks",
    "ocean.validate.alertmanager_checks",
    "ocean.validate.dashboard_checks",
    "ocean.validate.stack_checks",
    "ocean.validate.compose_checks",
    "ocean.validate.environment_checks",
    "ocean.validate.series_checks",
    "ocean.validate.route_reachability",
    "ocean.validate.rule_sanity",
)


def _check_modules() -> list[str]:
    """_MODULES, then every other ``ocean.validate.*_checks`` module, sorted."""
    package = Path(__file__).parent
    found = sorted(
        f"{__package__}.{info.name}"
        for info in pkgutil.iter_modules([str(package)])
        if info.name.endswith("_checks")
    )
    return [*_MODULES, *(name for name in found if name not in _MODULES)]


@dataclass(frozen=True)
class Check:
    kind: str
    name: str
    fn: CheckFn
    timeout: float = DEFAULT_TIMEOUT
    inputs: tuple[str, ...] = ()  # globs of the files it reads (for the fuzz test)


_REGISTRY: dict[str, Check] = {}
_LOAD_ERRORS: list[Finding] = []
_loaded = False


def check(
    kind: str, name: str, timeout: float = DEFAULT_TIMEOUT, inputs: tuple[str, ...] = ()
) -> Callable[[CheckFn], CheckFn]:
    """Register ``fn`` as the check ``name`` of ``kind`` (a decorator); ``inputs``: the
    globs of the files it reads (relative to the repo root), where it is fuzzed."""

    def register(fn: CheckFn) -> CheckFn:
        existing = _REGISTRY.get(name)
        if existing is not None and existing.fn.__qualname__ != fn.__qualname__:
            raise ValueError(f"validation check {name!r} is registered twice")
        _REGISTRY[name] = Check(kind, name, fn, timeout, tuple(inputs))
        return fn

    return register


def registry() -> dict[str, Check]:
    """Every registered check by name (importing the modules that hold them once)."""
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _check_modules():
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:  # the module exists but needs something missing
                    _LOAD_ERRORS.append(_load_error(module, exc))
            except Exception as exc:
                _LOAD_ERRORS.append(_load_error(module, exc))
    return dict(_REGISTRY)


def _load_error(module: str, exc: BaseException) -> Finding:
    return Finding(
        module.rsplit(".", 1)[-1],
        "core",
        "error",
        "src/" + module.replace(".", "/") + ".py",
        None,
        f"could not import: {type(exc).__name__}: {exc}",
        "fix the module: its checks did not run",
    )


def kinds() -> set[str]:
    return {c.kind for c in registry().values()}


def scaled(seconds: float) -> float:
    """A subprocess timeout inside a check, stretched for a busy machine."""
    return seconds * busy.factor()


def run(root: Path, only: set[str] | None = None, workers: int = 8) -> list[Finding]:
    """Run the checks of the kinds in ``only`` (all when None) against ``root``.

    Findings come sorted (errors first, then by file and line). An unknown kind is a
    ValueError naming the known ones.
    """
    checks = registry()
    known = kinds()
    if only is not None:
        unknown = set(only) - known
        if unknown:
            raise ValueError(
                f"unknown check kind {', '.join(sorted(unknown))}: "
                f"choose from {', '.join(sorted(known))}"
            )
    chosen = [c for c in checks.values() if only is None or c.kind in only]
    findings: list[Finding] = list(_LOAD_ERRORS)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="validate")
    started: dict[str, float] = {}  # check name → when a worker picked it up

    def timed(c: Check) -> list[Finding]:
        started[c.name] = time.monotonic()
        return run_one(c, Path(root))

    try:
        futures: dict[Future, Check] = {pool.submit(timed, c): c for c in chosen}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            for future in done:
                findings.extend(_collect(futures[future], future))
            factor = busy.factor()
            now = time.monotonic()
            for future in list(pending):
                c = futures[future]
                began = started.get(c.name)
                if began is None or now - began < c.timeout * factor:
                    continue
                pending.discard(future)
                findings.append(
                    _failed(
                        c,
                        f"timed out after {now - began:.0f}s (budget {c.timeout:.0f}s "
                        f"× {factor:.1f} for the machine's load)",
                        "the check hung: run it alone (--only) to see why",
                    )
                )
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return sorted(findings, key=_order)


def run_one(c: Check, root: Path) -> list[Finding]:
    """One check as ``run`` runs it: a Jinja template that does not render (a Jinja
    error, or any exception raised inside the template's frame) is the template's
    problem, so it becomes a finding on the template's line, from whichever check met
    it; any other exception propagates (``run`` makes it "check crashed")."""
    try:
        return c.fn(root)
    except Exception as exc:
        finding = _template_error(c, root, exc)
        if finding is None:
            raise
        return [finding]


def _template_error(c: Check, root: Path, exc: Exception) -> Finding | None:
    try:
        import jinja2
    except ImportError:
        return None
    # A syntax error names its file and line; a render-time error (an undefined value,
    # or any exception an expression raises, such as "str" - "str") is located by the
    # template's frame in the traceback. An exception without such a frame is the
    # check's own: it propagates.
    filename, line = getattr(exc, "filename", None), getattr(exc, "lineno", None)
    tb = exc.__traceback__
    while filename is None and tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if not name.endswith(".py") and Path(name).is_file():
            filename, line = name, tb.tb_lineno
        tb = tb.tb_next
    if not isinstance(exc, jinja2.TemplateError) and filename is None:
        return None
    file = ""
    if filename:
        try:
            file = Path(filename).resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            file = str(filename)
    return Finding(
        c.name,
        c.kind,
        "error",
        file,
        line if isinstance(line, int) and line > 0 else None,
        f"template does not render: {type(exc).__name__}: {exc}"[:500],
        "fix the Jinja template",
    )


def _collect(c: Check, future: Future) -> list[Finding]:
    try:
        result = future.result()
    except Exception as exc:
        return [
            _failed(
                c,
                f"check crashed: {type(exc).__name__}: {exc}",
                "a bug in the check (or an unreadable file)",
            )
        ]
    if not isinstance(result, list) or not all(isinstance(f, Finding) for f in result):
        return [_failed(c, "check returned no list of Findings", "")]
    return result


def _failed(c: Check, message: str, hint: str) -> Finding:
    """An error about the check itself (it hung, crashed or misbehaved), not a file."""
    return Finding(c.name, c.kind, "error", "", None, message, hint)


def missing_tool(check_name: str, kind: str, tool: str, install: str, file: str = "") -> Finding:
    """The error of a check whose checker ``tool`` is not installed (see the rule above)."""
    return Finding(
        check_name, kind, "error", file, None, f"{tool} is not installed: not checked", install
    )


# The external checkers the checks run, each from a Debian package (runtime/packages.py).
CHECKERS = ("promtool", "amtool", "nginx", "postgres", "redis-server")


def ensure_checkers(install: bool) -> list[str]:
    """The checkers still missing; with ``install`` (as root) apt-get installs them
    first, as `up` does for the stack, so a fresh CI machine can validate at once."""
    from ocean.runtime import packages

    missing = [name for name in CHECKERS if program(name) is None]
    if missing and install and os.geteuid() == 0:
        packages.apt_install(packages.packages_for(missing))
        missing = [name for name in CHECKERS if program(name) is None]
    return missing


def program(name: str) -> str | None:
    """A checker's binary (promtool, postgres, nginx, …) where the local runtime looks for
    its programs: PATH, the newest PostgreSQL bin dir, the sbin dirs. None when missing."""
    return shutil.which(name, path=default_search_path())


def _order(f: Finding) -> tuple:
    return (f.severity != "error", f.file, f.line or 0, f.check, f.message)
