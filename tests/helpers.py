"""Shared test helpers: free port bases, metric parsing, running the CLI."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ocean.config import REPO_ROOT
from ocean.ports import EPHEMERAL_PORTS, HIGHEST_OFFSET


def free_port_base() -> int:
    """A port base whose whole plan is free right now (random, so parallel runs differ),
    below the ephemeral ports: an outgoing connection must never take the port of a
    service that a test stopped for a moment (a deploy's idle color)."""
    low, high = _port_base_range()
    for _ in range(200):
        base = random.randrange(low, high, 100)
        if all(_free(base + offset) for offset in range(HIGHEST_OFFSET + 1)):
            return base
    raise RuntimeError("no free port range found")


def _port_base_range() -> tuple[int, int]:
    """Where bases are drawn from: OCEAN_TEST_PORT_RANGE=LOW-HIGH (e.g. 24000-24999)
    keeps one run's stacks inside its share when several runs use the machine at once;
    by default anywhere from 10000 to below the ephemeral ports."""
    default = (10000, EPHEMERAL_PORTS.start - HIGHEST_OFFSET)
    chosen = os.environ.get("OCEAN_TEST_PORT_RANGE", "")
    if not chosen:
        return default
    low, _, high = chosen.partition("-")
    return int(low), int(high) - HIGHEST_OFFSET


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cli(runtime, *args: str, timeout: float = 120, **env: str):
    """Run a task against ``runtime``'s stack, as a user would (``env`` added)."""
    return run_cli(
        *args,
        state_dir=runtime.settings.state_dir,
        port_base=runtime.settings.ports.base,
        timeout=timeout,
        env=env,
    )


def readable_by_others(state: Path) -> list[str]:
    """What `find STATE -perm /o+r` lists (issue 25's check), with each entry's mode,
    owner and type."""
    found = subprocess.run(
        ["find", str(state), "-perm", "/o+r", "-printf", "%m %u %y %p\n"],
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.splitlines()


def metric_value(url: str, name: str, auth: tuple[str, str] | None = None, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``, from /metrics
    (``auth``: the operator's credentials, for the exporters that require them)."""
    response = httpx.get(url, timeout=5, auth=auth)
    response.raise_for_status()
    text = response.text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def run_cli(
    *args: str,
    state_dir: Path,
    port_base: int,
    timeout: float = 120,
    env: dict[str, str] | None = None,
):
    """Run a task the way a user does, with the stack's env (plus ``env``); returns
    CompletedProcess."""
    env = {
        **os.environ,
        "OCEAN_STATE_DIR": str(state_dir),
        "OCEAN_PORT_BASE": str(port_base),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(REPO_ROOT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def validate_copy(
    root: Path, *args: str, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess:
    """`invoke validate ARGS` of the repo copy at ``root`` (its own src/ first on the path),
    with ``env`` added to the environment and OCEAN_ENV_DIR left out (a copy's own
    stack/environments/ is what it validates)."""
    full_env = {**os.environ, "PYTHONPATH": str(root / "src"), **env}
    full_env.pop("OCEAN_ENV_DIR", None)
    return subprocess.run(
        [sys.executable, "-m", "invoke", "-r", str(root), "validate", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=root,
        timeout=timeout,
        check=False,
    )


def inbox_messages(runtime, since: float = 0.0) -> list[dict]:
    """The stack's alert inbox: every delivery since ``since`` (Unix time), normalised
    (stack/inbox/ocean_inbox/normalise.py)."""
    with runtime.http("alert-inbox", timeout=5) as inbox:
        response = inbox.get("/api/messages", params={"since": since})
    response.raise_for_status()
    return response.json()


def wait_for_delivery(
    runtime, alert: str, status: str, since: float, timeout: float, receiver: str = ""
) -> dict:
    """The first delivery to the stack's inbox after ``since`` of ``alert`` with
    ``status`` (firing/resolved), to ``receiver`` when named; AssertionError after
    ``timeout`` seconds, listing what did arrive."""
    deadline = time.monotonic() + timeout
    seen: list[dict] = []
    while time.monotonic() < deadline:
        seen = inbox_messages(runtime, since)
        for message in seen:
            if (
                alert in message["alertnames"]
                and message["status"] == status
                and receiver in ("", message["receiver"])
            ):
                return message
        time.sleep(0.2)
    got = [(m["receiver"], m["status"], m["alertnames"]) for m in seen]
    raise AssertionError(f"no {status} delivery of {alert} in {timeout:.0f}s; got {got}")


def sigint_as_a_terminal_sends_it() -> None:
    """A Popen ``preexec_fn``: SIGINT back to its default in the child. A shell runs a
    job started with ``&`` (a CI script's background run) with SIGINT ignored, and
    children inherit that: Python then never raises KeyboardInterrupt, and a test of
    Ctrl-C would test nothing. An operator's terminal delivers it."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
