"""Prometheus and Alertmanager HTTP API client over one reused connection.

A new connection per query costs ~27 ms here against ~1 ms reused, and the console
polls every couple of seconds, so the client is built once and kept.
"""

from __future__ import annotations

from typing import Any, Self

import httpx
import yaml

from ocean.durations import parse_duration
from ocean.model import TargetHealth


class PromError(Exception):
    """Prometheus could not be reached or refused the query."""


def _stack_client_args(runtime: Any) -> dict[str, Any]:
    """The operator's basic auth (its loopback port requires it, ocean/access.py)."""
    access = runtime.access()
    return {"auth": access.ops_auth, "verify": access.ssl_context()}


class _StackApi:
    """An HTTP API of the stack over one reused connection, with the stack's credentials
    when made with ``of(runtime)``; ``service`` names it in the runtime's port plan."""

    service = ""

    def __init__(
        self,
        url: str,
        timeout: float = 2.0,
        auth: tuple[str, str] | None = None,
        verify: Any = True,
    ) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(base_url=self.url, timeout=timeout, auth=auth, verify=verify)

    @classmethod
    def of(cls, runtime: Any, timeout: float = 2.0) -> Self:
        """This API of ``runtime``'s stack, with the stack's credentials."""
        return cls(runtime.url(cls.service), timeout, **_stack_client_args(runtime))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Prometheus(_StackApi):
    service = "prometheus"

    def _get(self, path: str, **params: Any) -> Any:
        try:
            response = self._client.get(path, params=params or None)
            payload = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise PromError(f"{self.url}{path}: {exc}") from exc
        if payload.get("status") != "success":
            raise PromError(f"{self.url}{path}: {payload.get('error', payload)}")
        return payload["data"]

    def ready(self) -> bool:
        try:
            return self._client.get("/-/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def active_targets(self) -> list[dict[str, Any]]:
        """The active targets as the API gives them (labels, scrape URL, health …)."""
        return self._get("/api/v1/targets", state="active")["activeTargets"]

    def series(self, match: str, start: float, end: float) -> list[dict[str, str]]:
        """The label sets of the series ``match`` selects between ``start`` and ``end``."""
        return self._get("/api/v1/series", **{"match[]": match}, start=start, end=end)

    def scrape_interval_s(self) -> float:
        """The global scrape interval of the configuration Prometheus runs."""
        try:
            config = yaml.safe_load(self._get("/api/v1/status/config")["yaml"]) or {}
            interval = (config.get("global") or {}).get("scrape_interval", "1m")  # its default
        except (yaml.YAMLError, AttributeError, KeyError, TypeError) as exc:
            raise PromError(f"{self.url}: its configuration does not read: {exc}") from None
        return parse_duration(str(interval))  # OceanError when it is no duration

    def targets(self) -> list[TargetHealth]:
        return [
            TargetHealth(
                job=target["labels"].get("job", ""),
                instance=target["labels"].get("instance", ""),
                health=target.get("health", "unknown"),
                last_scrape=target.get("lastScrape", ""),
                last_error=target.get("lastError", ""),
            )
            for target in self.active_targets()
        ]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; returns the result vector."""
        return self._get("/api/v1/query", query=expr)["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """Range query; returns the result matrix (each series' values as [t, "v"])."""
        return self._get(
            "/api/v1/query_range", query=expr, start=start, end=end, step=f"{step:g}s"
        )["result"]

    def alerts(self) -> list[dict[str, Any]]:
        return self._get("/api/v1/alerts")["alerts"]

    def rule_groups(self) -> list[dict[str, Any]]:
        return self._get("/api/v1/rules")["groups"]


class Alertmanager(_StackApi):
    """The few Alertmanager v2 calls the toolkit needs, over one reused connection."""

    service = "alertmanager"

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts Alertmanager holds, each with status.state active/suppressed."""
        try:
            response = self._client.get("/api/v2/alerts")
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise PromError(f"{self.url}/api/v2/alerts: {exc}") from exc
