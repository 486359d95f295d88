"""Blue-green switching of the shop, whatever runs it: start a color on a build, stop
it, tell whether it is ready, switch nginx's upstream to it (``nginx -t`` first, then a
HUP: the old workers finish their requests), and keep Prometheus' shop targets to the
colors that run.

The runtime is the ``ColorHost``: it starts and stops programs (supervisord programs,
compose services), tests and reloads nginx, and probes a service; the steps and their
order are here, once for both runtimes.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from ocean import busy
from ocean.access import Access
from ocean.config import Settings
from ocean.errors import OceanError
from ocean.model import Build, Step
from ocean.render import write_atomic
from ocean.runtime.supervisor import RUNNING
from ocean.services import BY_NAME, COLORS, Service
from ocean.stackspec.spec import StackSpec


class ColorHost(Protocol):
    """What blue-green switching needs of a runtime (its executor of programs)."""

    settings: Settings
    spec: StackSpec

    def url(self, service: str) -> str: ...
    def access(self) -> Access: ...
    def log_path(self, service: Service) -> Path: ...
    def probe(self, service: Service) -> tuple[bool, str]: ...
    def names_in(self, states: set[str]) -> set[str]: ...
    def active_names(self) -> set[str]: ...
    def stop_program(self, name: str) -> None: ...
    def start_program(self, name: str) -> None: ...
    def program_state(self, name: str) -> str | None: ...
    def apply_build_choice(self) -> None: ...
    def wait_ports_free(self, service: Service) -> None: ...
    def test_nginx(self) -> tuple[int, str]: ...
    def reload_nginx(self) -> None: ...
    def log_tail(self, service: Service, lines: int = 3) -> str: ...


class BlueGreen:
    """The color operations of the Runtime protocol, over ``host``'s programs."""

    switch_confirm_timeout = 5.0

    def __init__(self, host: ColorHost) -> None:
        self.host = host

    def start_color(self, color: str, build: Build, timeout: float) -> Iterator[Step]:
        name = f"shop-{color}"
        service = BY_NAME[name]
        started = time.monotonic()
        if name in self.host.active_names():  # a leftover: it must run this build, fresh
            self.host.stop_program(name)
        chosen = self.host.spec.color_builds()
        chosen[color] = build.as_dict()
        write_atomic(
            self.host.spec.builds_file, json.dumps(chosen, indent=2, sort_keys=True) + "\n"
        )
        self.host.apply_build_choice()
        self.host.wait_ports_free(service)
        self.write_targets(self._shop_colors_running() | {color})
        self.host.start_program(name)
        detail, stretch = "", 1.0
        # The timeout stretches with the machine's load (ocean/busy.py): a starved
        # machine slows a healthy start as much as a broken one; a crash ends it early.
        while time.monotonic() - started < timeout * stretch:
            ok, detail = self.host.probe(service)
            if ok:
                yield Step(
                    f"{name} ready",
                    detail=f"{build.label} on {self.host.url(name)}",
                    seconds=time.monotonic() - started,
                )
                return
            state = self.host.program_state(name)
            # BACKOFF: it exited while starting (a crash loop would be retried).
            if state in ("FATAL", "EXITED", "BACKOFF"):
                detail = f"{state.lower()}: {self.host.log_tail(service)}"
                break
            time.sleep(0.1)
            stretch = max(stretch, busy.factor(cap=busy.MAX_FACTOR))
        waited = time.monotonic() - started  # before stopping it: the wait, not the stop
        list(self.stop_color(color))
        raise OceanError(
            f"{name} ({build.label}) not ready after {waited:.0f}s "
            f"(ready timeout {timeout:g}s{busy.describe(stretch)}; {detail}); stopped it. "
            f"See {self.host.log_path(service)}"
        )

    def stop_color(self, color: str) -> Iterator[Step]:
        name = f"shop-{color}"
        self.host.stop_program(name)
        self.write_targets(self._shop_colors_running() - {color})
        self.host.wait_ports_free(BY_NAME[name])
        yield Step(f"stop {name}")

    def color_ready(self, color: str) -> bool:
        name = f"shop-{color}"
        # STARTING too: supervisord says RUNNING only after startsecs, while the shop
        # may answer /readyz well before that.
        up = self.host.names_in({RUNNING, "STARTING"})
        return name in up and self.host.probe(BY_NAME[name])[0]

    def switch(self, color: str) -> Iterator[Step]:
        started = time.monotonic()
        path = self.host.settings.etc / "upstream.conf"
        previous = path.read_text() if path.exists() else None
        write_atomic(path, self.host.spec.render_upstream([f"shop-{color}"]))
        code, output = self.host.test_nginx()
        if code != 0:
            if previous is not None:
                write_atomic(path, previous)
            raise OceanError(f"nginx -t refused the new upstream: {output}")
        # HUP: nginx starts workers with the new upstream; the old ones finish their
        # requests (and keep-alive connections close after them), so none is lost.
        self.host.reload_nginx()
        served = self._wait_served_by(color)
        yield Step(
            f"switch to {color}",
            detail=f"nginx serves {color}" if served else f"nginx reloaded; {color} not seen yet",
            seconds=time.monotonic() - started,
        )

    def _wait_served_by(self, color: str) -> bool:
        """Whether a fresh connection through nginx reaches ``color`` (polls briefly)."""
        url = f"{self.host.url('nginx')}/version"
        context = self.host.access().ssl_context()
        deadline = time.monotonic() + self.switch_confirm_timeout
        while time.monotonic() < deadline:
            try:
                # B310: https URL of our own nginx
                with urllib.request.urlopen(url, timeout=1, context=context) as response:  # nosec B310
                    if json.loads(response.read()).get("color") == color:
                        return True
            except (OSError, ValueError):
                pass
            time.sleep(0.01)
        return False

    def _shop_colors_running(self) -> set[str]:
        active = self.host.active_names()
        return {c for c in COLORS if f"shop-{c}" in active}

    def write_targets(self, colors: set[str]) -> None:
        ordered = [f"shop-{c}" for c in COLORS if c in colors]
        targets = self.host.settings.etc / "targets" / "shop.json"
        write_atomic(targets, self.host.spec.render_shop_targets(ordered))
