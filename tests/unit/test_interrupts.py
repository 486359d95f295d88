"""Ctrl-C reaches a task that was started with SIGINT ignored (ocean/interrupts.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

CHILD = """
import sys, time
from ocean.interrupts import restore_ctrl_c
first = restore_ctrl_c() if sys.argv[1] == "restore" else "left"
try:  # ready is said inside the try: a Ctrl-C that follows it at once is caught too
    print(first, flush=True)
    time.sleep(20)
    print("slept through it", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def ignoring_ctrl_c() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what `cmd &` in a script does


@pytest.mark.parametrize(("mode", "first", "last"), [
    ("restore", "True", "interrupted"),
    ("leave", "left", None),  # the premise: left alone, it sleeps through Ctrl-C
])  # fmt: skip
def test_a_task_started_with_ctrl_c_ignored_is_interrupted_once_restored(
    mode: str, first: str, last: str | None
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), mode],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=ignoring_ctrl_c,  # the point of the test
    )
    try:
        assert child.stdout.readline().strip() == first
        child.send_signal(signal.SIGINT)
        if last is None:
            with pytest.raises(subprocess.TimeoutExpired):
                child.wait(timeout=2)
        else:
            assert child.stdout.readline().strip() == last
            assert child.wait(timeout=10) == 0
    finally:
        child.kill()
        child.wait()
