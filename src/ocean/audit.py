"""The audit log: who did what to a stack, when, with which arguments, and how it ended.

One JSON object per line in ``<state>/audit.jsonl`` (append-only, 0600): an action
writes ``started`` then ``succeeded`` or ``failed`` (same ``id``), or only ``refused``
when a guard rail stopped it before anything was touched. Arguments are recorded
without secrets (secret-like names are masked). ``down --purge`` deletes the state dir;
:func:`kept` puts the log back so the record of a purge survives it.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets as _random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ocean import statedir
from ocean.config import Settings

FILE = "audit.jsonl"
OUTCOMES = ("refused", "started", "succeeded", "failed")
MASK = "••••"
_SECRET_WORDS = ("password", "token", "secret", "passphrase", "credential", "apikey", "api_key")


def path(settings: Settings) -> Path:
    return settings.state_dir / FILE


def who() -> str:
    """The person behind the command: sudo's caller when run through sudo."""
    user = os.environ.get("SUDO_USER")
    if user:
        return f"{user} (as {getpass.getuser()})"
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return f"uid {os.getuid()}"


def secret_like(name: str) -> bool:
    lowered = name.lower().replace("-", "_")
    return any(word in lowered for word in _SECRET_WORDS)


def safe_args(args: dict[str, Any]) -> dict[str, Any]:
    """``args`` with secret-like names masked (a value is never worth a leak)."""
    return {k: (MASK if secret_like(k) and v not in ("", None) else v) for k, v in args.items()}


def new_id() -> str:
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{_random.token_hex(3)}"


def record(
    settings: Settings,
    action: str,
    outcome: str,
    args: dict[str, Any] | None = None,
    detail: str = "",
    action_id: str = "",
    via: str = "cli",
) -> dict[str, Any]:
    """Append one entry and return it."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    now = time.time()
    entry = {
        "id": action_id or new_id(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "ts": round(now, 3),
        "env": settings.env_name,
        "who": who(),
        "via": via,
        "pid": os.getpid(),
        "action": action,
        "args": safe_args(args or {}),
        "outcome": outcome,
        "detail": detail[:500],
    }
    target = path(settings)
    _ensure_dir(target.parent)
    # O_APPEND: concurrent writers (the console and a shell) never interleave a line.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as out:
        out.write(json.dumps(entry, default=str) + "\n")
    return entry


def _ensure_dir(state: Path) -> None:
    """The state dir, made (and marked as a stack's) when the audit log is its first file,
    or made again after a purge: the log stays in a directory a later purge may delete."""
    if not state.is_dir():
        state.mkdir(mode=0o700, parents=True, exist_ok=True)  # private (issue 25)
        statedir.mark(state)


def read(settings: Settings, last: int = 200) -> list[dict[str, Any]]:
    """The last ``last`` entries, oldest first (a torn or foreign line is skipped)."""
    try:
        lines = path(settings).read_text().splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines[-last:] if last else lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


@contextmanager
def kept(settings: Settings) -> Iterator[None]:
    """Whatever the body deletes (``down --purge`` removes the state dir), the audit log
    written so far is there again afterwards."""
    target = path(settings)
    try:
        before = target.read_bytes()
    except FileNotFoundError:
        before = b""
    try:
        yield
    finally:
        if before and not target.exists():
            _ensure_dir(target.parent)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "ab") as out:
                out.write(before)
