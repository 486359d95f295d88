"""Never a crash (issue 21): every registered validation check, fed generated documents
in a copy of the repo, returns findings and raises nothing.

The test iterates over ``core.registry()``: a check added anywhere (a new
``ocean/validate/*_checks.py`` module is imported by the registry on its own) is fuzzed
without a line here. Each check gets FUZZ_EXAMPLES documents (default 25; the
``OCEAN_FUZZ_EXAMPLES`` variable changes it), each written into one of the files it
reads (its ``inputs`` globs, else ``core.FUZZ_DEFAULT_INPUTS``) and restored afterwards.
The suite runs 25 a check (CI's time); ``nox -s fuzz`` runs 1,000:

- arbitrary YAML documents: nested lists, mappings, nulls, numbers and strings, keyed
  by the file's own keys as often as by random ones (or JSON for a .json file);
- mutated real configs: the file's own document (a template rendered first) with one
  to four values deleted, replaced by something generated, nulled, wrapped in a list,
  or a null put into a list (the shapes of issue 21's class 8);
- mutated text: lines of the real file deleted, duplicated, cut or replaced by random
  text (what the .conf files and the YAML syntax need).

To keep ≈ 30,000 runs within minutes, two things a check does are replaced, neither
of which reads a fuzzed file:

- the external checkers (promtool, amtool, nginx, postgres, redis-server) are not
  spawned: each run's ``subprocess.run``/``Popen`` answer with a generated exit code and
  output, made of the lines those tools print (``line 3``, ``lint error …``,
  ``Metric: …``, ``FAILED:``) and random text, so the parsers of their output are
  fuzzed too. The tools' own behaviour on real files is the other tests' business.
- the local runtime's render context (ports, paths, credentials: ``rendering``) is
  built once for the copy instead of once per run (≈ 60 ms).

A crash fails the test with hypothesis' smallest failing document and the check's
traceback. Runtime, 1,000 documents a check on 2 cores shared with other work (load
average 6–14, 2026-12-06): ≈ 35 min for the 27 checks of then, from 15 s (a dashboard
check) to 7.6 min (alert-runbooks: it parses every rule file twice a run);
``OCEAN_FUZZ_EXAMPLES=100`` (≈ 4 min) while editing a check, ``-k NAME`` for one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ocean.config import REPO_ROOT
from ocean.model import Finding
from ocean.render import render
from ocean.validate import core, rendering

FUZZ_EXAMPLES = int(os.environ.get("OCEAN_FUZZ_EXAMPLES", "25"))
# The suite's 25 a check are the same documents every run (a CI run must not turn red on
# a new random draw); `nox -s fuzz` (OCEAN_FUZZ_EXAMPLES set) draws anew each time.
FUZZ_DERANDOMIZED = "OCEAN_FUZZ_EXAMPLES" not in os.environ
COPIED = ("monitoring", "docs/runbooks", "stack", "testing")
IGNORE = shutil.ignore_patterns(".venv", "__pycache__", "*.egg-info", "node_modules")
CHECKS = sorted(core.registry())

# Lines the checkers print, for the fake tools' output (with random text between them).
TOOL_LINES = [
    "Checking x",
    "  FAILED:",
    "  SUCCESS: 3 rules found",
    "lint error 1 duplicate rule(s) found.",
    "lint error something else",
    "Metric: job:up:sum",
    "Metric: ",
    "Label(s):",
    "\tseverity: page",
    "\t: ",
    "Might cause inconsistency while recording expressions",
    'x.yml: group "application", rule 1, "ShopHighErrorRate": could not parse expression',
    "x.yml: 3:1: yaml: unmarshal errors",
    "  line 3: field x not found in type config.plain",
    "  alertname: ShopHighErrorRate, time: 5m,",
    "amtool: error: failed to validate 1 file(s)",
    "at line 4\n>>> 'maxmemory lots'\nArgument couldn't be parsed",
    'nginx: [emerg] unknown directive "x" in /tmp/nginx.conf:12',
    'FATAL:  invalid value for parameter "shared_buffers": "lots"',
    "line 0",
    "line 99999999999999999999",
]


# -- the copy, the tools and the render context --------------------------------------


@pytest.fixture(scope="module")
def fuzz_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz-repo")
    for rel in COPIED:
        shutil.copytree(REPO_ROOT / rel, root / rel, ignore=IGNORE)
    shutil.copy(REPO_ROOT / ".yamllint", root / ".yamllint")
    return root


class FakeProcess:
    """A checker that has already exited with the run's drawn exit code and output."""

    def __init__(self, args: Any, answer: tuple[int, str]) -> None:
        self.args, (self.returncode, self._output) = args, answer
        self.pid = 0

    def poll(self) -> int:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        return self.returncode

    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[str, str]:
        return self._output, ""

    def kill(self) -> None:
        pass

    terminate = kill


@pytest.fixture
def fake_tools(monkeypatch: pytest.MonkeyPatch, fuzz_repo: Path) -> Iterator[list]:
    """Checkers that answer with ``answer[0]`` (set by each run) instead of running."""
    answer: list[tuple[int, str]] = [(0, "")]

    def run(args: Any, *unused: Any, **kwargs: Any) -> subprocess.CompletedProcess:
        code, output = answer[0]
        return subprocess.CompletedProcess(args, code, output, "")

    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setattr(subprocess, "Popen", lambda args, *a, **k: FakeProcess(args, answer[0]))
    for name, module in list(sys.modules.items()):
        if name.startswith("ocean.validate.") and hasattr(module, "program"):
            # An existing file: the rule-test cache key stats the binary.
            monkeypatch.setattr(module, "program", lambda tool: sys.executable)
    _render_context_once(monkeypatch, fuzz_repo)
    yield answer


def _render_context_once(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    state = root.parent / f"{root.name}-render-state"
    spec = rendering._spec(root, state)
    context = rendering._context(spec, root)
    monkeypatch.setattr(rendering, "_spec", lambda repo_root, state_dir: spec)
    monkeypatch.setattr(rendering, "_context", lambda sp, repo_root: dict(context))
    for name, module in list(sys.modules.items()):
        if name.startswith("ocean.validate.") and hasattr(module, "local_context"):
            monkeypatch.setattr(module, "local_context", lambda repo_root, state_dir: dict(context))


# -- documents ------------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["", "-", "{{", "}}", "{% if x %}", "${VAR}", "5m", "1x", "127.0.0.1:1"])
)


def values(keys: list[str]) -> st.SearchStrategy[Any]:
    key = st.sampled_from(keys) | st.text(max_size=12) if keys else st.text(max_size=12)
    return st.recursive(
        SCALARS,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(key, children, max_size=5)
        ),
        max_leaves=25,
    )


def _keys(doc: Any) -> set[str]:
    if isinstance(doc, dict):
        return {str(k) for k in doc} | {k for v in doc.values() for k in _keys(v)}
    if isinstance(doc, list):
        return {k for v in doc for k in _keys(v)}
    return set()


def _paths(doc: Any, at: tuple = ()) -> list[tuple]:
    """Every place in ``doc`` (a path of keys and indexes), the root included."""
    out = [at]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*at, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*at, i))
    return out


def _mutate(doc: Any, path: tuple, how: str, new: Any) -> Any:
    if not path:
        return {"delete": None, "replace": new, "null": None, "wrap": [doc]}.get(how, [None, doc])
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if how == "delete":
        del parent[last]
    elif how == "replace":
        parent[last] = new
    elif how == "null":
        parent[last] = None
    elif how == "wrap":
        parent[last] = [parent[last]]
    elif isinstance(parent[last], list):  # "null entry": a `-` with nothing after it
        parent[last].insert(0, None)
    else:
        parent[last] = [None, parent[last]]
    return doc


def _dump(doc: Any, rel: str) -> str:
    if rel.endswith(".json"):
        return json.dumps(doc, allow_nan=True)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


class Source:
    """One input file of a check: its text, and its document when it parses (a Jinja
    template is rendered first)."""

    def __init__(self, root: Path, rel: str) -> None:
        self.rel, self.text = rel, (root / rel).read_text(errors="replace")
        self.doc: Any = None
        with contextlib.suppress(Exception):
            text = self.text
            if "{{" in text or "{%" in text:
                context = rendering.local_context(root, root.parent / "source-state")
                text = render(rel, context, root=root)
            self.doc = json.loads(text) if rel.endswith(".json") else yaml.safe_load(text)
        self.keys = sorted(_keys(self.doc))


@st.composite
def documents(draw: st.DrawFn, sources: list[Source]) -> tuple[str, str]:
    """(file, generated text): a document for one of ``sources``."""
    source = draw(st.sampled_from(sources))
    kind = draw(st.sampled_from(["arbitrary", "mutated", "text"]))
    if kind == "arbitrary" or (kind == "mutated" and source.doc is None):
        return source.rel, _dump(draw(values(source.keys)), source.rel)
    if kind == "mutated":
        doc = json.loads(json.dumps(source.doc, default=str))  # a deep copy
        for _ in range(draw(st.integers(1, 4))):
            path = draw(st.sampled_from(_paths(doc)))
            how = draw(st.sampled_from(["delete", "replace", "null", "wrap", "null entry"]))
            if how == "delete" and not path:
                how = "null"
            doc = _mutate(doc, path, how, draw(values(source.keys)))
        return source.rel, _dump(doc, source.rel)
    lines = source.text.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            lines = [draw(st.text(max_size=40))]
            continue
        index = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["delete", "duplicate", "cut", "random"]))
        if how == "delete":
            del lines[index]
        elif how == "duplicate":
            lines.insert(index, lines[index])
        elif how == "cut":
            lines[index] = lines[index][: draw(st.integers(0, len(lines[index])))]
        else:
            lines[index] = draw(st.text(max_size=40))
    return source.rel, "\n".join(lines) + "\n"


tool_answers = st.tuples(
    st.sampled_from([0, 0, 1, 2, 3, -9]),
    st.lists(st.sampled_from(TOOL_LINES) | st.text(max_size=40), max_size=6).map("\n".join),
)


def input_files(root: Path, chosen: core.Check) -> list[str]:
    globs = chosen.inputs or core.FUZZ_DEFAULT_INPUTS
    found = {p.relative_to(root).as_posix() for g in globs for p in root.glob(g) if p.is_file()}
    return sorted(found)


# -- the test -------------------------------------------------------------------------


# Crashes known and being fixed elsewhere (check name → why): the test is expected to
# fail for these, and passes (XPASS) once the fix is in; delete the entry then. Empty.
KNOWN_CRASHES: dict[str, str] = {}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.xfail(reason=KNOWN_CRASHES[name], strict=False))
        if name in KNOWN_CRASHES
        else name
        for name in CHECKS
    ],
)
@pytest.mark.timeout(
    1800
)  # 1,000 runs of the slowest check (promtool-test-rules) on a busy machine
def test_a_check_never_crashes(name: str, fuzz_repo: Path, fake_tools: list):
    chosen = core.registry()[name]
    files = input_files(fuzz_repo, chosen)
    assert files, f"{name}: its inputs {chosen.inputs} match no file of the repo"
    sources = [Source(fuzz_repo, rel) for rel in files]
    originals = {rel: (fuzz_repo / rel).read_bytes() for rel in files}
    runs: list[str] = []

    @settings(
        max_examples=FUZZ_EXAMPLES,
        derandomize=FUZZ_DERANDOMIZED,
        deadline=None,
        database=None,  # no .hypothesis/ directory in the checkout
        suppress_health_check=list(HealthCheck),
        # No "explain" phase: tracing every line of a check to explain a failure takes
        # minutes here; the shrunk document and the traceback say enough.
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        report_multiple_bugs=False,
    )
    @given(document=documents(sources), answer=tool_answers)
    def one_document(document: tuple[str, str], answer: tuple[int, str]) -> None:
        rel, text = document
        fake_tools[0] = answer
        (fuzz_repo / rel).write_text(text)
        try:
            found = core.run_one(chosen, fuzz_repo)  # as `validate` runs it
        finally:
            (fuzz_repo / rel).write_bytes(originals[rel])
        runs.append(rel)
        assert isinstance(found, list), f"{name} returned {type(found).__name__}"
        for finding in found:
            assert isinstance(finding, Finding), finding
            assert finding.severity in core.SEVERITIES and finding.message, finding
            assert finding.line is None or (isinstance(finding.line, int) and finding.line > 0)

    one_document()
    assert len(runs) >= FUZZ_EXAMPLES, f"{name}: only {len(runs)} documents were tried"
