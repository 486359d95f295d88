"""Run a task in this process, through Invoke's own Program, the way `./ocean` runs it.

A subprocess costs about a second of CPU (interpreter and imports) before the task
starts; the bad-input tests run hundreds of invocations, so they run here instead: the
same parser, the same task code and the same error paths (an Exit or ParseError printed
as one line, anything else escaping as it would into a traceback). Only the process's
start is skipped, which tests/unit/test_bad_input.py still exercises for a sample.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import traceback
from collections.abc import Iterator
from dataclasses import dataclass

from invoke import Program

from ocean.config import REPO_ROOT


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    traceback: str = ""  # an exception no front end turned into a message
    timed_out: bool = False


class _TimedOut(BaseException):  # BaseException: no `except Exception` swallows it
    pass


def _put(values: dict[str, str | None]) -> None:
    """Set each variable, or unset it where the value is None."""
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@contextlib.contextmanager
def _environ(env: dict[str, str | None]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in env}
    try:
        _put(env)
        yield
    finally:
        _put(saved)


def run_task(*args: str, env: dict[str, str | None] | None = None, timeout: int = 20) -> Outcome:
    """``invoke ARGS`` with ``env`` over os.environ, stopped after ``timeout`` seconds
    (SIGALRM: call from the main thread)."""
    out, err = io.StringIO(), io.StringIO()
    code, trace, timed_out = 0, "", False

    def expire(signum, frame):
        raise _TimedOut()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(timeout)
    try:
        with _environ(env or {}), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            Program(binary="invoke").run(["invoke", "--search-root", str(REPO_ROOT), *args])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except _TimedOut:
        code, timed_out = -1, True
    except BaseException:  # the point: whatever escaped would be a traceback
        code, trace = 1, traceback.format_exc()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return Outcome(code, out.getvalue(), err.getvalue(), trace, timed_out)
