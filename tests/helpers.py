"""Shared test helpers: free port bases, metric parsing, running the CLI."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ocean.config import HIGHEST_OFFSET, REPO_ROOT
from ocean.environments_schema import EPHEMERAL_PORTS


def free_port_base() -> int:
    """A port base whose whole plan is free right now (random, so parallel runs differ),
    below the ephemeral ports: an outgoing connection must never take the port of a
    service that a test stopped for a moment (a deploy's idle color)."""
    for _ in range(200):
        base = random.randrange(10000, EPHEMERAL_PORTS.start - HIGHEST_OFFSET, 100)
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


def cli(runtime, *args: str, timeout: float = 120, **env: str):
    """Run a task against ``runtime``'s stack, as a user would (``env`` added)."""
    return run_cli(
        *args,
        state_dir=runtime.settings.state_dir,
        port_base=runtime.settings.ports.base,
        timeout=timeout,
        env=env,
    )


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


class FakeReceiver:
    """Stands in for Slack, SMTP and PagerDuty: records every POST on 127.0.0.1.

    On the stack's ``alert-webhook`` port it also keeps Alertmanager's default
    receivers succeeding, so a test stack never pages about its own notifications.
    """

    def __init__(self, port: int = 0) -> None:
        self.posts: list[tuple[float, str, str]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((time.monotonic(), self.path, body.decode(errors="replace")))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, alert: str, status: str, since: float, timeout: float) -> tuple[float, str]:
        """Monotonic time and path of the first POST after ``since`` about ``alert``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, path, body in list(self.posts):
                if at >= since and alert in body and _status(body) == status:
                    return at, path
            time.sleep(0.1)
        seen = [(p, b[:200]) for at, p, b in self.posts if at >= since]
        raise AssertionError(f"no {status} notice of {alert} in {timeout:.0f}s; got {seen}")


def _status(body: str) -> str:
    """firing/resolved from a webhook (JSON status) or Slack (title) payload."""
    try:
        payload = json.loads(body)
    except ValueError:
        return ""
    if "status" in payload:
        return payload["status"]
    titles = " ".join(a.get("title", "") for a in payload.get("attachments", []))
    return "resolved" if "[RESOLVED]" in titles else "firing" if "[FIRING]" in titles else ""
