"""No import loop in the core (issue 23): each module of src/ocean can be read, and
moved, without the ones that import it.

config ↔ environments ↔ environments_schema was one (environments_schema imported
config's port table inside a function): the table is ocean/ports.py now.
"""

from __future__ import annotations

from tests.import_graph import graph, loops, modules

# Loops still there, each to be broken by the rest of issue 23. Remove an entry when its
# loop is gone; never add one.
KNOWN_LOOPS: set[tuple[str, str]] = set()  # none left: keep it so


def test_no_import_loop_but_the_known_ones():
    assert set(loops(graph(modules()))) == KNOWN_LOOPS


def test_the_loop_finder_finds_a_loop_through_a_function_level_import(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b, d\n")
    (package / "b.py").write_text("def f():\n    from pkg.c import X\n")
    (package / "c.py").write_text("import pkg.a\n")
    (package / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n"
    )
    assert loops(graph(modules(tmp_path))) == [("pkg.a", "pkg.b", "pkg.c")]
