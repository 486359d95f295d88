"""Runtime adapters: the only code that starts, stops or execs anything.

A procedure gets a runtime from :func:`make_runtime` and never asks which one it is.
"""

from __future__ import annotations

import os

from ocean.config import Settings
from ocean.errors import OceanError
from ocean.runtime.base import Runtime

RUNTIMES = ("local", "compose")


def make_runtime(name: str | None = None, settings: Settings | None = None) -> Runtime:
    """Build the runtime named by ``name``, else ``OCEAN_RUNTIME``, else the one the
    settings' environment names (default ``local``)."""
    settings = settings or Settings.from_env()
    name = name or os.environ.get("OCEAN_RUNTIME") or settings.runtime or settings.env["runtime"]
    if name == "local":
        from ocean.runtime.local import LocalRuntime

        return LocalRuntime(settings)
    if name == "compose":  # issue 8: Docker Compose (ocean/runtime/compose.py)
        from ocean.runtime.compose import ComposeRuntime

        return ComposeRuntime(settings)
    raise OceanError(f"unknown runtime {name!r}: choose from {', '.join(RUNTIMES)}")
