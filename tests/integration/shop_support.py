"""Helpers for the shop's in-process integration tests (fixtures are in conftest.py)."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass

import httpx
import psycopg
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from ocean_shop.app import create_app
from ocean_shop.config import Settings
from prometheus_client.parser import text_string_to_metric_families
from psycopg.conninfo import make_conninfo
from redis import Redis


@asynccontextmanager
async def serve_app(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client for `app` with its lifespan run (startup: migrate, seed, connect)."""
    async with (
        LifespanManager(app, startup_timeout=15) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://shop"
        ) as client,
    ):
        yield client


def serve(settings: Settings) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return serve_app(create_app(settings))


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def samples(text: str, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample called `name` whose labels include `labels`."""
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    ]


def value(text: str, name: str, **labels: str) -> float:
    """The value of the one sample matching `name` and `labels`."""
    found = samples(text, name, **labels)
    assert len(found) == 1, f"expected one {name}{labels}, found {found}"
    return found[0][1]


async def cache_counts(client: httpx.AsyncClient) -> dict[str, float]:
    text = await scrape(client)
    return {
        result: value(text, "shop_cache_requests_total", cache="product", result=result)
        for result in ("hit", "miss", "error")
    }


def query(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def forget_shop_keys(client: Redis) -> None:
    """Delete every shop key (products, carts, locks) another test or run may have left."""
    keys = list(client.scan_iter("shop:*"))
    if keys:
        client.delete(*keys)


def free_port() -> int:
    """A loopback port free right now, nothing listening on it (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ShopProcess:
    """A real `python -m ocean_shop` on loopback ports of its own."""

    color: str
    port: int
    admin_port: int
    admin_token: str
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}


@contextmanager
def shop_processes(
    database_url: str, redis_url: str, colors: tuple[str, ...] = ("blue", "green"), **env: str
) -> Iterator[list[ShopProcess]]:
    """Start one shop process per color on shared PostgreSQL and Redis; stop them after.

    Extra SHOP_* settings come as keyword arguments (e.g. SHOP_LOCK_WAIT_MS="10000").
    """
    shops: list[ShopProcess] = []
    try:
        for color in colors:
            port, admin_port, token = free_port(), free_port(), secrets.token_hex(16)
            environment = {
                **os.environ,
                "SHOP_DATABASE_URL": database_url,
                "SHOP_REDIS_URL": redis_url,
                "SHOP_COLOR": color,
                "SHOP_PORT": str(port),
                "SHOP_ADMIN_PORT": str(admin_port),
                "SHOP_ADMIN_TOKEN": token,
                "SHOP_STARTUP_TIMEOUT": "15",
                **env,
            }
            process = subprocess.Popen(
                [sys.executable, "-m", "ocean_shop"],
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            shops.append(ShopProcess(color, port, admin_port, token, process))
        for shop in shops:
            wait_ready(shop)
        yield shops
    finally:
        for shop in shops:
            shop.process.terminate()
        for shop in shops:
            try:
                shop.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                shop.process.kill()
                shop.process.wait()


def wait_ready(shop: ShopProcess, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if shop.process.poll() is not None:
            raise RuntimeError(f"shop {shop.color} exited with {shop.process.returncode}")
        try:
            if httpx.get(f"{shop.url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"shop {shop.color} not ready on {shop.url} after {timeout:g} s")


class Proxy:
    """A loopback TCP forwarder that can be cut (an outage of whatever is behind it) or
    hold back every answer from upstream for ``delay`` seconds (a stall)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.delay = 0.0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.open = True
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self) -> None:
        while self.open:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                if not self.open:
                    client.close()
                    upstream.close()
                    return
                self.sockets |= {client, upstream}
            for src, dst, answers in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pump, args=(src, dst, answers), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, answers: bool) -> None:
        src.settimeout(None)
        try:
            while data := src.recv(65536):
                if answers and self.delay:
                    time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Refuse new connections and break the open ones."""
        with self.lock:
            self.open = False
            sockets, self.sockets = self.sockets, set()
        self.listener.close()
        self.acceptor.join(timeout=5)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def proxied(url: str, port: int) -> str:
    if url.startswith("redis://"):
        userinfo, _, rest = url.removeprefix("redis://").rpartition("@")
        db = rest.partition("/")[2]
        return f"redis://{userinfo + '@' if userinfo else ''}127.0.0.1:{port}/{db}"
    return make_conninfo(url, host="127.0.0.1", port=str(port))
