"""`python -m ocean_inbox`: the alert inbox, configured from INBOX_* variables
(config.py). SMTP with STARTTLS and AUTH on INBOX_SMTP_PORT, HTTP on INBOX_HTTP_PORT,
both on INBOX_HOST only. SIGTERM or SIGINT stops both (exit 0); bad settings or a port
already taken: one line on stderr, exit 1.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading

from ocean_inbox import smtp, web
from ocean_inbox.config import Config, ConfigError
from ocean_inbox.metrics import Metrics
from ocean_inbox.store import Store

log = logging.getLogger("ocean_inbox")


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command log
    try:
        config = Config.from_env()
        context = smtp.tls_context(config.tls_cert, config.tls_key)
    except (ConfigError, OSError) as exc:  # ssl.SSLError is an OSError
        return _fail(str(exc))
    try:
        store, metrics = Store(config.directory), Metrics()
    except OSError as exc:
        return _fail(f"INBOX_DIR {config.directory}: {exc.strerror}")
    mail = smtp.controller(
        store, metrics, config.host, config.smtp_port, context,
        config.smtp_user, config.smtp_password,
    )  # fmt: skip
    try:  # both ports first: aiosmtpd only notices a taken port after its ready timeout
        httpd = web.server(
            store, metrics, config.host, config.http_port, lambda: mail.server is not None
        )
    except OSError as exc:
        return _fail(f"HTTP on {config.host}:{config.http_port}: {exc.strerror}")
    try:
        _check_free(config.host, config.smtp_port)
        mail.start()
    except (OSError, RuntimeError) as exc:
        httpd.server_close()
        return _fail(f"SMTP on {config.host}:{config.smtp_port}: {getattr(exc, 'strerror', exc)}")

    def stop(signum, frame) -> None:
        # shutdown() waits for serve_forever to return: call it from another thread.
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "listening: smtp %s:%d (STARTTLS, AUTH), http %s:%d, store %s",
        config.host, config.smtp_port, config.host, config.http_port, config.directory,
    )  # fmt: skip
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
        mail.stop()
    return 0


def _check_free(host: str, port: int) -> None:
    """OSError (address in use) when something listens on ``port`` already."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def _fail(message: str) -> int:
    print(f"ocean-inbox: error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
