"""How `promtool test rules` is run over many test files: a few files per process.

Each promtool process costs ≈ 0.1 CPU-second before it tests anything (a 100 MB Go
binary paged in, its runtime and a TSDB started): with one process per test file that
was ≈ 1.5 of the ≈ 7 CPU-seconds of a cold validation's 16 files. `promtool test rules
A B C` tests the files one after the other in one process and prints a section per file
on stdout (``Unit Testing:  A`` then ``  SUCCESS`` when it passed; a failure's details
go to stderr, where they can't be told apart by file).

So the files go into a few batches (``plan``), a couple per core so that a pool of one
worker per core still balances them, and ``passed`` reads which files of a batch passed.
A batch's file that did not pass is run again alone by the caller: failures are rare and
that keeps a failure's message exactly what a single-file run prints.

No invoke/textual imports here (tests/unit/test_import_contract.py).
"""

from __future__ import annotations

import re
from pathlib import Path

_SECTION = re.compile(r"^Unit Testing:\s+(?P<name>.+?)\s*$")


def plan(files: list[Path], batches: int) -> list[list[Path]]:
    """``files`` in at most ``batches`` groups of about equal total size (largest first,
    each into the lightest group so far), the heaviest group first.

    Size in bytes stands for a file's cost: a rough proxy (promtool's work is evaluation
    steps × rules), good enough to spread 16 files over a few groups."""
    groups: list[tuple[int, list[Path]]] = [(0, []) for _ in range(max(1, batches))]
    for path in sorted(files, key=lambda p: -_size(p)):
        lightest = min(range(len(groups)), key=lambda i: groups[i][0])
        weight, members = groups[lightest]
        groups[lightest] = (weight + _size(path), [*members, path])
    return [members for _, members in sorted(groups, key=lambda g: -g[0]) if members]


def passed(stdout: str) -> set[str]:
    """The names (as given on promtool's command line) of the files whose section of
    `promtool test rules` output says SUCCESS."""
    ok: set[str] = set()
    current: str | None = None
    for line in stdout.splitlines():
        section = _SECTION.match(line)
        if section:
            current = section.group("name")
        elif current is not None and line.strip() == "SUCCESS":
            ok.add(current)
            current = None
    return ok


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
