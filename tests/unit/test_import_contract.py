"""The core must stay importable without either front end (harlequin's contract)."""

import ast
import subprocess
import sys
from pathlib import Path

CHECK = """
import pkgutil, importlib, sys
import ocean
for module in pkgutil.walk_packages(ocean.__path__, "ocean."):
    importlib.import_module(module.name)
banned = sorted(m for m in sys.modules if m.split(".")[0] in {"textual", "invoke"})
print(len([m for m in sys.modules if m.startswith("ocean")]))
assert not banned, banned
"""


def test_core_imports_neither_textual_nor_invoke():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # Every module of the core was really imported (the walk found the package).
    assert int(result.stdout.strip()) >= 10


# The runtime contract (issue 8): procedures and the front ends drive a runtime only
# through ocean/runtime/base.py; what differs between local and compose lives in the
# adapters, never in an `if runtime.name == …` of theirs.
ROOT = Path(__file__).resolve().parents[2]
RUNTIME_USERS = [
    *sorted((ROOT / "src" / "ocean" / "procedures").glob("*.py")),
    *sorted((ROOT / "src" / "ocean" / "rollout").glob("*.py")),
    *sorted((ROOT / "src" / "ocean" / "backup").glob("*.py")),
    *sorted((ROOT / "src" / "ocean" / "loadtest").glob("*.py")),
    ROOT / "src" / "ocean" / "observe.py",
    *sorted((ROOT / "src" / "ocean" / "views").glob("*.py")),
    *sorted((ROOT / "tui").rglob("*.py")),
    ROOT / "tasks.py",
]
ADAPTERS = {"ocean.runtime.local", "ocean.runtime.compose", "ocean.runtime.local_backup",
            "ocean.runtime.compose_backup", "ocean.runtime.compose_files",
            "ocean.runtime.local_supervisord", "ocean.runtime.local_initdb",
            "ocean.runtime.bluegreen", "ocean.runtime.local_scratch",
            "ocean.runtime.private_state"}  # fmt: skip
RUNTIME_NAMES = {"local", "compose"}


def runtime_branches(source: str) -> list[str]:
    """Each place that imports an adapter, checks a runtime's class, or compares a
    runtime's name (or any value) with 'local' / 'compose'."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module in ADAPTERS:
            found.append(f"line {node.lineno}: imports {node.module}")
        if isinstance(node, ast.ImportFrom):  # from ocean.runtime import local
            found += [
                f"line {node.lineno}: imports {node.module}.{a.name}"
                for a in node.names
                if f"{node.module}.{a.name}" in ADAPTERS
            ]
        if isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: imports {a.name}" for a in node.names if a.name in ADAPTERS
            ]
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            names = {o.value for o in operands if isinstance(o, ast.Constant)}
            if names & RUNTIME_NAMES:
                found.append(f"line {node.lineno}: compares with {sorted(names & RUNTIME_NAMES)}")
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "isinstance":
            classes = ast.unparse(node.args[1]) if len(node.args) > 1 else ""
            if "Runtime" in classes:
                found.append(f"line {node.lineno}: isinstance(…, {classes})")
    return found


def test_procedures_and_front_ends_have_no_runtime_branches():
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in RUNTIME_USERS
        if (found := runtime_branches(path.read_text()))
    }
    assert not offenders, offenders


def test_the_branch_detector_finds_each_kind_of_branch():
    source = (
        "from ocean.runtime.compose import ComposeRuntime\n"
        "if runtime.name == 'compose':\n    pass\n"
        "if isinstance(runtime, LocalRuntime):\n    pass\n"
    )
    assert [f.split(":")[0] for f in runtime_branches(source)] == ["line 1", "line 2", "line 4"]
    assert runtime_branches("if color == 'green':\n    pass\n") == []
    assert runtime_branches("from ocean.runtime import local_scratch, k6\n") == [
        "line 1: imports ocean.runtime.local_scratch"
    ]
