"""The interface every runtime implements (pyinfra-style: procedures plan, runtimes act)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from ocean.config import Settings
from ocean.model import ServiceStatus, Step
from ocean.services import Service


class Runtime(Protocol):
    name: str
    settings: Settings

    def url(self, service: str) -> str:
        """Where ``service`` answers (for HTTP services, its base URL)."""

    def check(self, services: list[Service], install: bool) -> Iterator[Step]:
        """Pre-flight: tools present, state dir usable, ports free. Raises OceanError."""

    def prepare(self, services: list[Service]) -> Iterator[Step]:
        """Secrets, rendered configs, first-time data initialisation."""

    def start(self, services: list[Service]) -> Iterator[Step]:
        """Start ``services`` (dependencies first) and wait until each is healthy."""

    def stop(self, service: Service) -> Iterator[Step]:
        """Stop one service."""

    def stop_all(self) -> Iterator[Step]:
        """Stop every service of the stack and the supervisor itself."""

    def restart(self, service: Service) -> Iterator[Step]:
        """Restart one service and wait until it is healthy again."""

    def running(self) -> set[str]:
        """Names of the services running now, without probing their health."""

    def status(self) -> list[ServiceStatus]:
        """Every service with its state and health."""

    def log_path(self, service: Service) -> Path:
        """The file ``service`` logs to."""

    def purge(self) -> Iterator[Step]:
        """Delete all state (data, logs, configs). The stack must be down."""

    def shop_command(self, args: list[str]) -> Iterator[Step]:
        """Run ``python -m ARGS`` where the shop runs, with the shop's database access.

        Credentials go through the environment, never the command line. Yields each
        output line as an INFO step as it comes, then an OK step; raises OceanError if
        PostgreSQL is not running or the command fails.
        """
