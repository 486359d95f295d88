"""The core must stay importable without either front end (harlequin's contract)."""

import subprocess
import sys

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
