"""The few Alertmanager (v2 API) and Prometheus calls alerting needs, through the
runtime's HTTP clients (they carry the operator's basic auth: ocean/access.py).

Every failure is one OceanError line that names the service, its URL and what to do,
so a task prints it and exits 1 (Alertmanager down, credentials refused, an answer that
is not JSON).
"""

from __future__ import annotations

from typing import Any, Self

import httpx

from ocean.errors import OceanError

TIMEOUT = 5.0


class ApiError(OceanError):
    """The API answered with an error status (``status``)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class StackApi:
    """One service's HTTP API over one connection (``service``: alertmanager,
    prometheus, alert-webhook); use as a context manager."""

    hint = "is the stack up? (`./ocean status`)"
    label = ""  # how errors name it (default: the port-plan name)

    def __init__(self, runtime: Any, service: str, timeout: float = TIMEOUT) -> None:
        self.service = self.label or service
        self.url = runtime.url(service)
        try:
            self._client: httpx.Client = runtime.http(service, timeout=timeout)
        except OSError as exc:  # no CA yet: the stack was never brought up here
            ca = getattr(runtime.access(), "ca_file", "its CA")
            raise OceanError(
                f"cannot talk to {self.service}: {ca}: {exc.strerror or exc} "
                "(the stack's CA is made by `./ocean up`)"
            ) from None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise OceanError(
                f"{self.service} is not answering at {self.url} ({_why(exc)}): {self.hint}"
            ) from None
        if response.status_code == 401:
            raise OceanError(f"{self.service} at {self.url} refused the operator's credentials")
        if response.status_code == 404:
            raise ApiError(f"{self.service}: {path} not found", 404)
        if response.status_code >= 400:
            text = " ".join(response.text.split())[:200]
            raise ApiError(
                f"{self.service} refused {method} {path}: HTTP {response.status_code} {text}",
                response.status_code,
            )
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise OceanError(f"{self.service}: {path} did not answer JSON") from None


def _why(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused"
    return text.splitlines()[0][:120]


class AlertmanagerApi(StackApi):
    def __init__(self, runtime: Any, timeout: float = TIMEOUT) -> None:
        super().__init__(runtime, "alertmanager", timeout)

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """Every alert it holds (active, silenced, inhibited), each with ``receivers``
        and ``status`` {state, silencedBy, inhibitedBy}; ``filters``: label=value."""
        params = [("filter", f'{k}="{v}"') for k, v in filters.items()]
        return self.json("GET", "/api/v2/alerts", params=params or None)

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        self.call("POST", "/api/v2/alerts", json=alerts)

    def silences(self) -> list[dict[str, Any]]:
        return self.json("GET", "/api/v2/silences")

    def silence(self, silence_id: str) -> dict[str, Any]:
        return self.json("GET", f"/api/v2/silence/{silence_id}")

    def create_silence(self, body: dict[str, Any]) -> str:
        return str(self.json("POST", "/api/v2/silences", json=body)["silenceID"])

    def expire_silence(self, silence_id: str) -> None:
        self.call("DELETE", f"/api/v2/silence/{silence_id}")

    def metrics(self) -> str:
        return self.call("GET", "/metrics").text


class InboxApi(StackApi):
    """The stack's alert inbox (the alert-inbox service on the ``alert-webhook`` port):
    ``GET /api/messages?since=<epoch>`` lists what its receivers got."""

    hint = "is alert-inbox running? (`./ocean status`)"
    label = "the alert inbox"

    def __init__(self, runtime: Any, timeout: float = TIMEOUT) -> None:
        super().__init__(runtime, "alert-webhook", timeout)

    def metrics(self) -> str:
        return self.call("GET", "/metrics").text

    def messages(self, since: float) -> list[dict[str, Any]]:
        found = self.json("GET", "/api/messages", params={"since": f"{since:.3f}"})
        if not isinstance(found, list):
            raise OceanError(f"the alert inbox at {self.url}/api/messages answered no list")
        return found


class PrometheusApi(StackApi):
    def __init__(self, runtime: Any, timeout: float = TIMEOUT) -> None:
        super().__init__(runtime, "prometheus", timeout)

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts (/api/v1/alerts): labels, state, activeAt …"""
        payload = self.json("GET", "/api/v1/alerts")
        if payload.get("status") != "success":
            raise OceanError(f"prometheus: /api/v1/alerts: {payload.get('error', payload)}")
        return payload["data"]["alerts"]
