"""`python -m ocean_shop`: serve the shop with uvicorn, configured from SHOP_* variables.

One process, one event loop, one app, up to two listeners:

- public: SHOP_HOST:SHOP_PORT, which runs the app's lifespan (migrations, pool, cache);
- admin (only with SHOP_ADMIN_TOKEN): always 127.0.0.1:SHOP_ADMIN_PORT, lifespan off,
  the SAME app object, so both share its resources and fault settings; admin.py
  refuses admin routes on the public listener. Its socket listens before anything
  starts (a taken port fails at once, exit 1), but requests are served only once the
  public listener has started (earlier connections wait in the backlog), so admin
  routes always find the app's resources.

SIGTERM or SIGINT stops both: each drains in-flight requests for at most 1 s, then
the lifespan closes the pool and queued spans are flushed (at most 1 s). Exit 0;
3 when the public listener never started (as uvicorn.run).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Iterator

import uvicorn
import uvloop

from ocean_shop.config import ConfigError, Settings
from ocean_shop.logs import configure_logging

log = logging.getLogger("ocean_shop")

ADMIN_HOST = "127.0.0.1"
ADMIN_BACKLOG = 128
STARTUP_FAILURE = 3  # uvicorn's exit status when the app cannot start
# SIGTERM drains in-flight requests for at most 1 s, so a blue/green switch never
# waits on a slow client.
GRACEFUL_SHUTDOWN = 1


def import_redis_without_otel_sdk() -> None:
    """Import redis-py while the OpenTelemetry SDK looks absent.

    redis-py (8.x) imports opentelemetry.sdk.metrics on `import redis` whenever the
    SDK is installed (it is, for tracing.py), for optional client metrics the shop
    never enables: about 1.2 MB of RSS in every instance, tracing or not. A None
    entry in sys.modules makes that import fail, so redis notes the SDK as missing;
    the entry goes at once, and tracing.py, when enabled, imports the SDK as usual.
    """
    if "redis" in sys.modules or "opentelemetry.sdk" in sys.modules:
        return
    sys.modules["opentelemetry.sdk"] = None  # type: ignore[assignment]
    try:
        import redis  # noqa: F401
    finally:
        del sys.modules["opentelemetry.sdk"]


class Server(uvicorn.Server):
    """A uvicorn server that leaves signals to serve(), which stops every listener."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def server_config(app: object, host: str, port: int, lifespan: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan=lifespan,
        http="httptools",
        access_log=False,
        # Our JSON handler is already on the root logger; uvicorn's own
        # config would replace it with plain-text handlers.
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
    )


def bind_admin_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ADMIN_HOST, port))
        sock.listen(ADMIN_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


async def run(server: Server, sockets: list[socket.socket] | None = None) -> int:
    """Serve until told to stop; uvicorn's sys.exit on a startup failure becomes a code."""
    try:
        await server.serve(sockets=sockets)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


async def wait_started(server: Server, task: asyncio.Task[int]) -> bool:
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    return server.started


async def serve(settings: Settings, admin_socket: socket.socket | None) -> int:
    from ocean_shop.app import create_app  # after import_redis_without_otel_sdk()

    app = create_app(settings)
    public = Server(server_config(app, settings.host, settings.port, "on"))
    admin = None
    if admin_socket is not None:
        admin = Server(server_config(app, ADMIN_HOST, settings.admin_port, "off"))
    servers = [s for s in (public, admin) if s is not None]

    def stop(sig: signal.Signals) -> None:
        for server in servers:
            if server.should_exit and sig == signal.SIGINT:
                server.force_exit = True  # a second Ctrl+C: stop waiting for clients
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig)

    public_task = asyncio.create_task(run(public), name="public listener")
    if not await wait_started(public, public_task):
        if admin_socket is not None:
            admin_socket.close()
        return await public_task or STARTUP_FAILURE
    tasks = [public_task]
    if admin is not None:
        tasks.append(asyncio.create_task(run(admin, [admin_socket]), name="admin listener"))
        log.info("admin API on http://%s:%d/admin", ADMIN_HOST, settings.admin_port)
    # Both run until a signal; should one end by itself, the other stops too.
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for server in servers:
        server.should_exit = True
    codes = await asyncio.gather(*tasks)
    return next((code for code in codes if code), 0)


def main() -> None:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        sys.exit(f"ocean-shop: {exc}")
    import_redis_without_otel_sdk()
    tracing = settings.otlp_endpoint is not None
    configure_logging(settings.color, tracing=tracing)
    admin_socket = None
    if settings.admin_token is not None:
        try:
            admin_socket = bind_admin_socket(settings.admin_port)
        except OSError as exc:
            sys.exit(
                f"ocean-shop: cannot listen on {ADMIN_HOST}:{settings.admin_port}"
                f" (SHOP_ADMIN_PORT): {exc.strerror}"
            )
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        code = runner.run(serve(settings, admin_socket))
    if tracing:
        from ocean_shop import tracing as otel

        otel.shutdown()
    sys.exit(code)


if __name__ == "__main__":
    main()
