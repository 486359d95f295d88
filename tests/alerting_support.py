"""What the alerting tests share: the stack's Alertmanager config rendered into a temp
state dir, the real Alertmanager binary run on it (one light process, the runtime's
own command line, basic auth included), and a stand-in for the alert inbox.

The inbox is the real one (the alert-inbox stack service), run with the runtime's
command line. ``StubInbox`` stands in only for what cannot run here: an *external*
receiver (a paging service's webhook), on a free port; it records what Alertmanager
posts and serves the same ``GET /api/messages`` contract as the inbox.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from ocean import tls
from ocean.config import PortPlan, Settings
from ocean.runtime.local import LocalRuntime
from tests.helpers import free_port_base


def rendered_runtime(state_dir: Path, environ: dict[str, str] | None = None) -> LocalRuntime:
    """A runtime whose configs (alertmanager.yml among them) are rendered in
    ``state_dir``, with no OCEAN_* alerting setting but ``environ``'s."""
    runtime = LocalRuntime(Settings(state_dir=state_dir, ports=PortPlan(free_port_base())))
    runtime.settings.etc.mkdir(parents=True, exist_ok=True)
    tls.ensure(tls.TlsFiles(runtime.settings.tls_dir), [runtime.settings.host])  # clients trust it
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("OCEAN_")}
    try:
        os.environ.update(environ or {})
        runtime._render_configs()
    finally:
        for name in environ or {}:
            os.environ.pop(name, None)
        os.environ.update(saved)
    return runtime


@contextmanager
def running(
    runtime: LocalRuntime, name: str, *extra: str, port: str = "", ready: str = "/-/ready"
) -> Iterator[subprocess.Popen]:
    """The stack's program ``name``, started with the runtime's own command line and
    environment (plus ``extra`` flags), waited for until ``ready`` answers 200 on its
    port (``port``: a port-plan name, default ``name``)."""
    program = next(p for p in runtime.spec.programs() if p.name == name)
    (runtime.settings.data / name).mkdir(parents=True, exist_ok=True)
    log = (runtime.settings.state_dir / f"{name}.log").open("wb")
    env = {**os.environ, **(program.env or {})}
    process = subprocess.Popen(
        [*program.argv, *extra], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with runtime.http(port or name, timeout=1) as client:
                    if client.get(ready).status_code == 200:
                        break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start: see {log.name}")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def running_alertmanager(runtime: LocalRuntime):
    return running(runtime, "alertmanager")


@contextmanager
def _inbox(runtime: LocalRuntime) -> Iterator[object]:
    """The stack's real alert inbox (the alert-inbox service) on its alert-webhook port."""
    with running(runtime, "alert-inbox", port="alert-webhook", ready="/healthz") as real:
        yield real


@contextmanager
def with_inbox(runtime: LocalRuntime, *prometheus_flags: str) -> Iterator[object]:
    """The alert inbox and Alertmanager (and, given its flags, Prometheus) of
    ``runtime``'s stack, for as long as the block runs."""
    with _inbox(runtime) as inbox, running_alertmanager(runtime):
        if not prometheus_flags:
            yield inbox
            return
        with running(runtime, "prometheus", *prometheus_flags):
            yield inbox


class StubInbox:
    """A stand-in for an external receiver (a paging service cannot run here) on
    ``port`` (0: any free one): ``url``, ``messages``, and the inbox's HTTP contract."""

    def __init__(self, port: int = 0) -> None:
        self.messages: list[dict] = []
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                inbox.messages.append(_message(self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path != "/api/messages":
                    self.send_response(404)
                    self.end_headers()
                    return
                since = float(parse_qs(url.query).get("since", ["0"])[0])
                body = json.dumps([m for m in inbox.messages if m["received_at"] >= since])
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _message(path: str, payload: dict) -> dict:
    """What the inbox stores of one POST: Alertmanager's webhook or a Slack message."""
    if "alerts" in payload:  # Alertmanager's generic webhook
        alerts = [
            {"labels": a["labels"], "annotations": a["annotations"]} for a in payload["alerts"]
        ]
        return {
            "received_at": time.time(),
            "receiver": payload.get("receiver", ""),
            "kind": "webhook",
            "channel": path,
            "status": payload.get("status", ""),
            "alertnames": sorted({a["labels"].get("alertname", "") for a in alerts}),
            "alerts": alerts,
        }
    attachments = payload.get("attachments") or [{}]
    title = attachments[0].get("title", "")
    return {
        "received_at": time.time(),
        "receiver": path.strip("/"),
        "kind": "slack",
        "channel": payload.get("channel", ""),
        "status": "resolved" if "[RESOLVED]" in title else "firing",
        "alertnames": [],
        "alerts": [],
        "subject": title,
        "text": attachments[0].get("text", ""),
    }
