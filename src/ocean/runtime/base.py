"""The interface every runtime implements (pyinfra-style: procedures plan, runtimes act)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import httpx

from ocean.access import Access
from ocean.config import Settings
from ocean.model import Build, ServiceStatus, Step
from ocean.services import Service
from ocean.storefront import BrowserRun


class Runtime(Protocol):
    name: str
    settings: Settings

    def url(self, service: str) -> str:
        """Where ``service`` answers (for HTTP services, its base URL)."""

    # -- how clients of ours talk to the stack (ocean/access.py) ------------------------

    def access(self) -> Access:
        """The stack's CA file, the operator's credentials and the traffic token."""

    def http(self, service: str, path: str = "", **kwargs: object) -> httpx.Client:
        """An httpx client for ``service``'s URL + ``path``: verifies against the
        stack's CA, sends the operator's credentials where the service requires them
        and the traffic token to nginx."""

    def redis_url(self, service: str = "redis-master", db: int = 0, user: str = "default") -> str:
        """A redis:// URL with an ACL user's credentials (environment only, never argv)."""

    def skipped_services(self) -> frozenset[str]:
        """Services of the stack this configuration does not run (the alert inbox when
        every receiver is real): the whole stack's `up` leaves them out."""

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

    def engine_pids(self) -> set[int]:
        """The runtime's daemons that serve the whole stack (dockerd): a load test counts
        their CPU as the run's, not as another process' (loadtest/machine.py)."""

    def log_path(self, service: Service) -> Path:
        """The file ``service`` logs to."""

    def log_lines(
        self, service: Service, lines: int, follow: bool, poll: float, stop: Callable[[], bool]
    ) -> Iterator[str]:
        """The last ``lines`` lines of ``service``'s output, then (``follow``) new ones
        every ``poll`` seconds until ``stop()``; OceanError when it never ran."""

    def purge(self) -> Iterator[Step]:
        """Delete all state (data, logs, configs). The stack must be down."""

    def shop_command(self, args: list[str]) -> Iterator[Step]:
        """Run ``python -m ARGS`` where the shop runs, with the shop's database access.

        Credentials go through the environment, never the command line. Yields each
        output line as an INFO step as it comes, then an OK step; raises OceanError if
        PostgreSQL is not running or the command fails.
        """

    # -- blue-green: what the deploy procedure drives ---------------------------------

    analysis_interval: float  # seconds between analysis polls (the scrape interval)

    def live_color(self) -> str:
        """The color nginx sends traffic to now (blue before any deploy)."""

    def color_build(self, color: str) -> Build:
        """The build ``color`` runs (or ran last, when stopped)."""

    def check_version(self, version: str) -> str:
        """The label ``version`` would run as; OceanError when it is unknown (cheap)."""

    def build(self, version: str) -> Iterator[Step]:
        """Make (or reuse) the build of ``version``; the generator returns the Build.

        Raises OceanError when ``version`` is unknown or cannot be built.
        """

    def start_color(self, color: str, build: Build, timeout: float) -> Iterator[Step]:
        """(Re)start ``color`` on ``build`` and wait until /readyz answers, at most
        ``timeout`` seconds; raises OceanError (and stops it) when it never does."""

    def stop_color(self, color: str) -> Iterator[Step]:
        """Stop ``color`` and stop scraping it."""

    def color_ready(self, color: str) -> bool:
        """Whether ``color`` runs and answers /readyz now."""

    def switch(self, color: str) -> Iterator[Step]:
        """Send all new requests to ``color``: render the upstream, test the config,
        replace it atomically, reload gracefully; returns once nginx serves ``color``."""

    # -- backup and restore: what ocean.procedures.backup drives ------------------------

    def backup_location(self) -> Path:
        """Where backup sets live (OCEAN_BACKUP_DIR, default <state>/backups)."""

    def backup_key_dir(self) -> Path:
        """The backup keys (GPG home, HMAC key): OCEAN_BACKUP_KEY_DIR or <state>/backup-keys."""

    def pg_major(self) -> int:
        """The PostgreSQL major version a restore loads into."""

    def source_info(self) -> dict:
        """What the backup is of: live color, its version, host."""

    def dump_postgres(self, dest: Path) -> dict:
        """pg_dump -Fc of the shop database into ``dest``; returns version, major and
        {table: {rows, checksum}} of exactly the dumped snapshot."""

    def snapshot_redis(self, dest: Path) -> dict:
        """BGSAVE, copy the finished RDB to ``dest``, check it; returns key counts per
        database and sampled value digests of exactly that file."""

    def export_configs(self, dest: Path) -> dict:
        """The stack's configs (no secrets) and a secrets template as a tar at ``dest``."""

    def scratch_restore(self, dump: Path, rdb: Path, samples: dict) -> Iterator[Step]:
        """Restore into scratch PostgreSQL and Redis on free ports, measure, remove them;
        the generator returns (table stats, redis stats)."""

    def sweep_scratch(self, everything: bool = False) -> list[Path]:
        """Remove the scratch servers' dirs no live run holds (a killed verify's or
        restore's), stopping the servers still running there; ``everything``: all of
        them (``down --purge``). Returns the dirs removed."""

    def stop_writes(self) -> list[str]:
        """Stop the shop (no writes reach the data); returns the colors that ran."""

    def resume_writes(self, colors: list[str]) -> Iterator[Step]:
        """Start the live color (and ``colors``) again; wait until ready."""

    def load_postgres(self, dump: Path) -> Iterator[Step]:
        """Load ``dump`` into a database beside the shop's; returns its table stats."""

    def swap_postgres(self) -> Iterator[Step]:
        """Make the loaded database the shop's (the old one kept aside)."""

    def drop_previous_postgres(self) -> None:
        """Drop the database a successful restore replaced."""

    def restore_redis(self, rdb: Path, failpoint: object = None) -> Iterator[Step]:
        """Replace the Redis master's data with the snapshot's (mind the AOF)."""

    def restore_configs(self, archive: Path) -> Iterator[Step]:
        """Put the archived configs back."""

    def live_stats(self, samples: dict) -> tuple[dict, dict]:
        """Table stats of the shop database and Redis stats of the master, now."""

    def health_check(self) -> Iterator[Step]:
        """Raise OceanError unless every running service is healthy and the live color ready."""

    # -- load tests: what ocean.procedures.loadtest drives ------------------------------

    def run_browser(self, base_url: str, **options: object) -> BrowserRun:
        """The storefront's browser journey against ``base_url`` (runtime/browser.py
        has the options); blocks until it ends."""

    def run_k6(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        """Start ``k6 run ARGS`` (no usage report, no REST API port) with ``env`` added,
        its output to ``log``; k6 gets SIGINT if the caller dies. Returns at once."""
