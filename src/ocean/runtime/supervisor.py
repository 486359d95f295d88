"""A small client for supervisord's XML-RPC API over its unix socket."""

from __future__ import annotations

import http.client
import xmlrpc.client  # nosec B411  # XML from our own supervisord only
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from ocean.errors import OceanError

# supervisord's process states (supervisor.states.ProcessStates) by name.
RUNNING = "RUNNING"
ACTIVE_STATES = {"RUNNING", "STARTING", "BACKOFF", "STOPPING"}


class SupervisorUnavailable(OceanError):
    """supervisord is not running (or its socket is stale).

    An OceanError: the stack stopped under a task (`down` from another shell) is a
    one-line error, not a traceback through whatever step was talking to it.
    """


class Supervisor:
    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def _call(self, method: str, *args: Any) -> Any:
        # A fresh connection per call (a unix socket: microseconds). A shared one is
        # neither thread-safe nor usable again after a call that failed midway.
        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
        try:
            return getattr(proxy, method)(*args)
        except (OSError, xmlrpc.client.ProtocolError, http.client.HTTPException) as exc:
            raise SupervisorUnavailable(
                f"the stack is not running (supervisord at {self.socket}: {exc}): "
                "start it with ./ocean up"
            ) from exc
        finally:
            transport.close()

    def alive(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return self._call("supervisor.getState")["statename"] == "RUNNING"
        except SupervisorUnavailable:
            return False

    def pid(self) -> int:
        return self._call("supervisor.getPID")

    def processes(self) -> dict[str, dict[str, Any]]:
        return {info["name"]: info for info in self._call("supervisor.getAllProcessInfo")}

    def start(self, name: str) -> None:
        """Ask for a start without waiting: the runtime polls health itself."""
        try:
            self._call("supervisor.startProcess", name, False)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" not in fault.faultString:
                raise

    def stop(self, name: str) -> None:
        try:
            self._call("supervisor.stopProcess", name, False)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString:
                raise

    def signal(self, name: str, signal: str) -> None:
        self._call("supervisor.signalProcess", name, signal)

    def reload_config(self) -> tuple[list[str], list[str], list[str]]:
        """Re-read the config file: (added, changed, removed) program names."""
        added, changed, removed = self._call("supervisor.reloadConfig")[0]
        return added, changed, removed

    def add(self, name: str) -> None:
        self._call("supervisor.addProcessGroup", name)

    def remove(self, name: str) -> None:
        self._call("supervisor.removeProcessGroup", name)

    def shutdown(self) -> None:
        self._call("supervisor.shutdown")
