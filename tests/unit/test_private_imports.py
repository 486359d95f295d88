"""No module imports another module's underscore names (issue 23): what a module
keeps private can change without its importers breaking, so ``from x import _y`` (or
``import x._y``) couples two modules through what neither declared. Checked over the
core (src/) and the front ends (tasks.py, tui/)."""

from __future__ import annotations

from pathlib import Path

from tests.import_graph import front_ends, imports, modules


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")  # __version__ is public


def private_imports(found: dict[str, Path]) -> set[tuple[str, str, str]]:
    """(importer, module, underscore name) for each import that takes one."""
    taken = set()
    for importer, path in found.items():
        for statement in imports(importer, path):
            parts = statement.target.split(".")
            for depth, part in enumerate(parts):
                if _private(part):  # import x._y, from x._y import z
                    taken.add((importer, ".".join(parts[:depth]), part))
            taken.update(
                (importer, statement.target, name) for name in statement.names if _private(name)
            )
    return taken


# Today's violations, each to be ended by the rest of issue 23 (the runtime wing's
# redesign). Remove an entry when its import is gone; never add one.
KNOWN: set[tuple[str, str, str]] = set()  # none left: keep it so


def test_no_module_imports_another_modules_underscore_names_but_the_known_ones():
    assert private_imports({**modules(), **front_ends()}) == KNOWN


def test_the_detector_finds_each_form(tmp_path: Path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("__version__ = '1'\n")
    (package / "_hidden.py").write_text("")
    (package / "a.py").write_text(
        "from pkg import __version__\nfrom pkg.b import _helper, public\nimport pkg._hidden\n"
    )
    (package / "b.py").write_text("_helper = public = 1\n")
    (package / "c.py").write_text("def f():\n    from ._hidden import thing\n")
    assert private_imports(modules(tmp_path)) == {
        ("pkg.a", "pkg.b", "_helper"),
        ("pkg.a", "pkg", "_hidden"),
        ("pkg.c", "pkg", "_hidden"),
    }
