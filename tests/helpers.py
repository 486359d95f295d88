"""Shared test helpers: free port bases, metric parsing, running the CLI."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ocean.config import HIGHEST_OFFSET, REPO_ROOT


def free_port_base() -> int:
    """A port base whose whole plan is free right now (random, so parallel runs differ)."""
    for _ in range(200):
        base = random.randrange(20000, 60000 - HIGHEST_OFFSET, 100)
        if all(_free(base + offset) for offset in range(HIGHEST_OFFSET + 1)):
            return base
    raise RuntimeError("no free port range found")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def metric_value(url: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``, from /metrics."""
    text = httpx.get(url, timeout=5).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def run_cli(*args: str, state_dir: Path, port_base: int, timeout: float = 120):
    """Run a task the way a user does, with the stack's env; returns CompletedProcess."""
    env = {
        **os.environ,
        "OCEAN_STATE_DIR": str(state_dir),
        "OCEAN_PORT_BASE": str(port_base),
    }
    return subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(REPO_ROOT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
