"""The deploy journal, lock and history: what makes a deploy safe to kill at any point.

All below ``<state>/deploy/``:

- ``lock``: an flock held for the whole of a deploy, promote or rollback. The kernel
  drops it when its holder dies (even by kill -9), so a stale lock cannot exist.
- ``journal.json``: the open deploy. Each step is written here (atomically) *before*
  it acts, so whoever takes the lock next knows how far a dead deploy got and can
  finish or undo it (``ocean.procedures.deploy.recover``). Absent when none is open.
- ``history.jsonl``: one line per closed deploy or rollback (outcome, reason,
  numbers), newest last; `deploy-status` shows the tail.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ocean.errors import OceanError
from ocean.render import write_atomic

# The steps of a deploy, in order. A journal names the last one that began.
STEPS = (
    "preflight",
    "build",
    "start",
    "preview",
    "warm-up",
    "switch",
    "analysis",
    "promoted",
    "scale-down",
)
# Once a deploy's journal reaches one of these, traffic may be on the new color.
TRAFFIC_MOVED = {"switch", "analysis", "promoted", "scale-down"}
# Once it reaches one of these, the deploy has decided: its color stays live.
DECIDED = {"promoted", "scale-down"}


def live_after(record: dict[str, Any]) -> str:
    """The color an open journal leaves live once it is settled (recover()'s rule):
    a rollback's target, a deploy's new color once promotion was decided, else the old
    color, which nothing stops before that decision. `up` starts this one."""
    if record.get("kind") == "rollback" or record.get("step") in DECIDED:
        return record["color"]
    return record["from"]


class DeployLocked(OceanError):
    """Another deploy, promote or rollback holds the lock."""


class Journal:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "deploy"
        self.path = self.dir / "journal.json"
        self.history_path = self.dir / "history.jsonl"
        self.lock_path = self.dir / "lock"

    # -- lock -------------------------------------------------------------------------

    @contextmanager
    def lock(self, what: str, wait: float = 0.0) -> Iterator[None]:
        """Hold the deploy lock for ``what`` (or raise DeployLocked naming the holder).

        ``wait``: seconds to keep trying, for holders that only look (a status read
        holds it for a moment); a deploy holds it far longer and is still refused.
        """
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() < deadline:
                        time.sleep(0.05)
                        continue
                    holder = os.pread(fd, 512, 0).decode(errors="replace").strip()
                    raise DeployLocked(
                        f"another deploy is running ({holder or 'holder unknown'}): "
                        "wait for it, or see `invoke deploy-status`"
                    ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{what}, pid {os.getpid()}, since {_clock()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # closing drops the flock

    def holder(self) -> tuple[str, int | None] | None:
        """Who holds the lock now: (what it wrote, its pid), or None when it is free.

        Creates nothing: no lock file means no deploy ever ran here (a holder makes it).
        """
        try:
            fd = os.open(self.lock_path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return None  # nobody holds it (our shared lock drops with the fd)
            except BlockingIOError:
                pass
            what = os.pread(fd, 512, 0).decode(errors="replace").strip()
        finally:
            os.close(fd)
        found = re.search(r"\bpid (\d+)", what)
        return what, int(found.group(1)) if found else None

    # -- the open deploy --------------------------------------------------------------

    def read(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except ValueError as exc:  # only a bug could do this: writes are atomic
            raise OceanError(f"{self.path} is corrupt ({exc}): inspect it, then delete it") from exc

    def open(self, record: dict[str, Any]) -> dict[str, Any]:
        record = {**record, "pid": os.getpid(), "started": time.time(), "steps": []}
        self._write(record)
        return record

    def step(self, record: dict[str, Any], name: str, **data: Any) -> None:
        """Record that step ``name`` begins (before it acts)."""
        record["step"] = name
        record["steps"].append({"step": name, "at": time.time(), **data})
        self._write(record)

    def update(self, record: dict[str, Any], **data: Any) -> None:
        record.update(data)
        self._write(record)

    def close(self, record: dict[str, Any], outcome: str, reason: str = "", **data: Any) -> dict:
        """Append the deploy to the history, then remove the journal."""
        ended = time.time()
        entry = {
            **{k: v for k, v in record.items() if k not in ("steps", "pid")},
            **data,
            "outcome": outcome,
            "reason": reason,
            "ended": ended,
            "duration_s": round(ended - record.get("started", ended), 2),
            "steps": [s["step"] for s in record.get("steps", [])],
        }
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.history_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as handle:
            handle.write(json.dumps(entry, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.path.unlink(missing_ok=True)
        return entry

    def history(self, last: int = 10) -> list[dict[str, Any]]:
        try:
            lines = self.history_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        entries = []
        for line in lines[-last:] if last else lines:
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue  # a line torn by a crash mid-append: the rest still count
        return entries

    def _write(self, record: dict[str, Any]) -> None:
        write_atomic(self.path, json.dumps(record, indent=2, sort_keys=True) + "\n")


def _clock() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
