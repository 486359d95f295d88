"""Tail a log file: its last lines, then new ones as they are written (the local
runtime's `invoke logs`; supervisord writes each program's output to a file)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO


def tail_file(
    path: Path, lines: int, follow: bool, poll: float, stop: Callable[[], bool]
) -> Iterator[str]:
    with path.open("rb") as handle:
        yield from last_lines(handle, lines)
        while follow and not stop():
            line = handle.readline()
            if line:
                yield line.decode(errors="replace").rstrip("\n")
            else:
                time.sleep(poll)


def last_lines(handle: BinaryIO, count: int) -> list[str]:
    """Last ``count`` lines of an open binary file, reading backwards in blocks; leaves
    the file positioned at its end."""
    handle.seek(0, 2)
    end = handle.tell()
    block, data = 8192, b""
    position = end
    while position > 0 and data.count(b"\n") <= count:
        step = min(block, position)
        position -= step
        handle.seek(position)
        data = handle.read(step) + data
    handle.seek(end)
    text = data.decode(errors="replace").splitlines()
    return text[-count:] if count else []
