"""Health probes on a busy machine: a slow answer is retried, a refusal is final."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ocean import health
from ocean.services import BY_NAME

SHOP = BY_NAME["shop-blue"]  # an HTTP probe: GET its readiness path


@contextmanager
def server(delays: list[float]) -> Iterator[tuple[int, list[float]]]:
    """An HTTP server whose n-th answer waits delays[n] seconds (the last one after)."""
    seen: list[float] = []

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(time.monotonic())
            time.sleep(delays[min(len(seen), len(delays)) - 1])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_one_slow_answer_is_asked_again_not_called_unhealthy():
    # The first answer takes longer than the first timeout; the second is prompt.
    with server([health.TIMEOUTS[0] + 0.5, 0.0]) as (port, seen):
        healthy, detail = health.probe(SHOP, "127.0.0.1", port)
    assert healthy, detail
    assert len(seen) == 2


def test_a_refused_connection_is_unhealthy_at_once():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    healthy, detail = health.probe(SHOP, "127.0.0.1", port)
    assert not healthy and "ConnectError" in detail
    assert time.monotonic() - started < health.TIMEOUTS[0]


def test_silence_through_every_timeout_is_unhealthy_and_says_so():
    with server([sum(health.TIMEOUTS) + 1]) as (port, seen):
        healthy, detail = health.probe(SHOP, "127.0.0.1", port)
    assert not healthy
    assert detail.startswith(f"no answer within {sum(health.TIMEOUTS):.0f}s")
    assert len(seen) == len(health.TIMEOUTS)
