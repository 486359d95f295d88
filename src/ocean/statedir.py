"""What makes a directory a stack's state dir, so that ``down --purge`` deletes nothing else.

``OCEAN_STATE_DIR`` is whatever the user typed; ``down --purge --yes`` deletes it with
everything below. A typo (``OCEAN_STATE_DIR=~``) must not cost a home directory, so a
directory is purged only when it is provably a stack's:

- it carries :data:`MARKER`, written by :func:`claim` when the toolkit created the
  directory or found it empty (``up``, the first audit record): whatever was put in it
  since is part of that stack's state (the benchmarks keep their run outputs there), and
  a purge that refused it would leave a stack running at the end of each of them;
- or, made before the marker existed, it holds only :data:`LAYOUT` entries and at least
  one that only a stack writes (:data:`FOOTPRINT`: supervisord's or Compose's config,
  the secrets file, the audit log). :func:`claim` marks such a directory on the next
  ``up``.

Never, whatever it holds: ``/``, ``$HOME``, the checkout, or a parent of either.
"""

from __future__ import annotations

import os
from pathlib import Path

from ocean.errors import OceanError
from ocean.fsys import PRIVATE_DIR, writable_problem, write_private

MARKER = ".ocean-state"
MARKER_TEXT = (
    "This directory is an Ocean Ops stack's state dir: `./ocean down --purge --yes` "
    "deletes it with everything in it.\n"
)
# Every top-level entry a stack writes into its state dir: an unmarked directory (made
# before the marker) holding anything else is not purged (a new entry belongs here).
LAYOUT = frozenset(
    {
        MARKER,
        "etc",
        "data",
        "logs",
        "run",
        "nginx",
        "tls",
        "secrets.env",
        "audit.jsonl",
        "backups",
        "backup-keys",
        "builds",
        "scratch",
        "compose",
        "deploy",
        "loadtests",
        "restore-in-progress.json",
        ".write-test",
    }
)
# Entries no other program leaves behind: one of them makes an unmarked directory a
# stack's (state dirs made before the marker existed).
FOOTPRINT = (
    "etc/supervisord.conf",
    "compose/docker-compose.local.yml",
    "secrets.env",
    "audit.jsonl",
)


def protected(state: Path, repo_root: Path, home: Path | None = None) -> str:
    """Why ``state`` must never be deleted or taken over, whatever it holds ("" if not)."""
    real = Path(os.path.realpath(state))
    home = Path(os.path.realpath(home or Path.home()))
    checkout = Path(os.path.realpath(repo_root))
    if real == Path("/"):
        return "it is the root directory"
    for name, precious in (("your home directory", home), ("the checkout", checkout)):
        if real == precious:
            return f"it is {name}"
        if precious.is_relative_to(real):
            return f"it holds {name} ({precious})"
    return ""


def foreign_entries(state: Path) -> list[str]:
    """The top-level entries of ``state`` that no stack writes, sorted."""
    return sorted(entry.name for entry in state.iterdir() if entry.name not in LAYOUT)


def purge_problem(state: Path, repo_root: Path, home: Path | None = None) -> str:
    """Why ``down --purge`` must not delete ``state`` ("" when it is a stack's state dir,
    or does not exist: nothing to delete)."""
    try:
        if state.is_symlink():  # rmtree would refuse too; say why in the same words
            return f"{state} is a symbolic link, not a state dir"
        if not state.exists():
            return ""
        if not state.is_dir():
            return f"{state} is not a directory"
        if why := protected(state, repo_root, home):
            return f"{state} is not a state dir to purge: {why}"
        if why := writable_problem(state) or writable_problem(state.parent):
            return f"{state} cannot be deleted: it {why}"
        marker = state / MARKER
        if marker.is_file() and not marker.is_symlink():
            return ""
        foreign = foreign_entries(state)
        if foreign:
            more = f" and {len(foreign) - 3} more" if foreign[3:] else ""
            shown = ", ".join(foreign[:3]) + more
            return (
                f"{state} has no {MARKER} marker and holds {shown}, which no stack writes: "
                "not purged (move those away, or delete the directory yourself)"
            )
        if any((state / name).exists() for name in FOOTPRINT):
            return ""
        return f"{state} has no {MARKER} marker and nothing only a stack writes: not purged"
    except OSError as exc:
        return f"{state} cannot be inspected ({exc.strerror}): not purged"


def check_purge(state: Path, repo_root: Path) -> None:
    """OceanError (one line) unless ``state`` may be purged."""
    if problem := purge_problem(state, repo_root):
        raise OceanError(f"refusing to purge: {problem}")


def require(state: Path) -> None:
    """OceanError unless ``state`` exists: a task that acts on a stack must not create
    its state dir (a lock, an audit log, a secrets file) only to find no stack there."""
    if not state.is_dir():
        raise OceanError(f"no stack at {state}: the state dir does not exist (./ocean up)")


def mark(state: Path) -> None:
    """Write the marker (the directory exists)."""
    marker = state / MARKER
    if not marker.is_file():
        write_private(marker, MARKER_TEXT)


def claim(state: Path, repo_root: Path) -> None:
    """Make ``state`` this stack's state dir: create and mark it, or mark an existing one
    that is empty or a state dir made before the marker; OceanError for a directory
    holding anything else (``up`` would spread a stack's files among somebody's) or a
    protected one."""
    if why := protected(state, repo_root):
        raise OceanError(
            f"state dir {state} cannot be used: {why}; set OCEAN_STATE_DIR to a new directory"
        )
    # Private from the start (issue 25, Medium 4): the services' users get ACL entries.
    state.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    if (state / MARKER).is_file():
        return
    foreign = foreign_entries(state)
    if foreign:
        raise OceanError(
            f"state dir {state} already holds {', '.join(foreign[:3])}, which no stack "
            "writes: set OCEAN_STATE_DIR to a new or empty directory"
        )
    mark(state)
