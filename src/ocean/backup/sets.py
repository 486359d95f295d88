"""What lies in the backup dir: whole sets, and damaged ones that must not go unseen.

A whole set is a directory with its manifest. A directory holding a set's files but no
manifest (deleted, or lost with a disk) is damaged: it cannot be verified or restored,
yet it takes space and may be the set an operator is looking for. Listing only whole
sets hid it from `backups`, from `backup-prune` (so it was never removed) and from
`backup-verify`/`restore` ("unknown backup"). Issue 25, Medium 10.
Hidden entries (``.partial-*``, ``.verify-*``, ``.restore-*``) are work in progress.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from pathlib import Path

from ocean.backup.manifest import ID_STAMP, MANIFEST, PARTS, SIGNATURE, VERIFIED

# Every name a set's directory may hold: one of them makes a directory a set.
SET_FILES = frozenset({MANIFEST, SIGNATURE, VERIFIED, *PARTS, *(f"{p}.gpg" for p in PARTS)})


@dataclass(frozen=True)
class Found:
    whole: list[str]  # ids, sorted
    damaged: list[str]  # ids of directories with a set's files but no manifest, sorted


def scan(root: Path) -> Found:
    whole, damaged = [], []
    if root.is_dir():
        for entry in root.iterdir():
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            if (entry / MANIFEST).exists():
                whole.append(entry.name)
            elif any((entry / name).exists() for name in SET_FILES):
                damaged.append(entry.name)
    return Found(sorted(whole), sorted(damaged))


def created_from_id(set_dir: Path) -> float:
    """When a set without a readable manifest was made: its id's time stamp, else the
    directory's modification time."""
    try:
        return float(calendar.timegm(time.strptime(set_dir.name[:16], ID_STAMP)))
    except ValueError:
        return set_dir.stat().st_mtime
