"""The HTTP side (stdlib ThreadingHTTPServer: a handful of small requests a minute):

    POST /webhook/<receiver>   Alertmanager's generic webhook JSON
    POST /slack/<receiver>     a Slack incoming-webhook message (Alertmanager's slack_configs)
    GET  /api/messages?since=<Unix seconds>   every stored delivery, normalised (normalise.py)
    GET  /healthz              200 while both listeners serve
    GET  /metrics              Prometheus text (metrics.py)

A malformed body is answered 400 and counted (reason bad_payload). Slack's API answers
"ok", so does this.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from ocean_inbox import normalise
from ocean_inbox.metrics import Metrics
from ocean_inbox.store import Store

log = logging.getLogger("ocean_inbox.web")
MAX_BODY = 1024 * 1024
_POST = re.compile(r"^/(?P<kind>webhook|slack)/(?P<receiver>[A-Za-z0-9_.-]{1,64})$")
_NORMALISE = {"webhook": normalise.webhook, "slack": normalise.slack}


def server(
    store: Store, metrics: Metrics, host: str, port: int, healthy: Callable[[], bool]
) -> ThreadingHTTPServer:
    """The HTTP server, bound (serve_forever() still to be called)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "ocean-inbox"

        def do_POST(self) -> None:
            match = _POST.match(urlsplit(self.path).path)
            if not match:
                self._send(404, {"error": "POST /webhook/<receiver> or /slack/<receiver>"})
                return
            kind, receiver = match.group("kind"), match.group("receiver")
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                metrics.reject("bad_payload")
                self._send(413, {"error": f"body over {MAX_BODY} bytes"})
                return
            now = time.time()
            try:
                payload = json.loads(self.rfile.read(length) or b"null")
                entry = _NORMALISE[kind](receiver, payload, now)
            except (ValueError, normalise.BadPayload) as exc:
                metrics.reject("bad_payload")
                self._send(400, {"error": str(exc).splitlines()[0]})
                return
            store.add_webhook(entry, payload)
            metrics.stored(receiver, kind, now)
            log.info("%s %s: %s %s", kind, receiver, entry["status"], entry["alertnames"])
            self._send(200, "ok")

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/api/messages":
                raw = (parse_qs(url.query).get("since") or ["0"])[0]
                try:
                    since = float(raw)
                except ValueError:
                    since = -1.0
                if not since >= 0:  # also NaN
                    self._send(400, {"error": f"since={raw!r}: Unix seconds, 0 or more"})
                    return
                self._send(200, store.messages(since))
            elif url.path == "/healthz":
                ok = healthy()
                self._send(200 if ok else 503, {"status": "ok" if ok else "smtp down"})
            elif url.path == "/metrics":
                self._send(200, metrics.text(), "text/plain; version=0.0.4; charset=utf-8")
            else:
                self._send(404, {"error": "not found"})

        def _send(self, code: int, body, content_type: str = "application/json") -> None:
            if isinstance(body, bytes):
                data = body
            elif isinstance(body, str):
                data, content_type = body.encode(), "text/plain; charset=utf-8"
            else:
                data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:
            pass  # deliveries are logged once, above; probes and scrapes are not

    httpd = ThreadingHTTPServer((host, port), Handler)
    httpd.daemon_threads = True
    return httpd
