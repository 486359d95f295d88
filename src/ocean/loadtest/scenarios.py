"""The load-test scenarios (testing/k6/*.js) and a run's checked options.

Every run is bounded: VUs, arrival rate and duration have hard ceilings here, every
script's executors stop by themselves, and the procedure kills k6 past its deadline.
Targets must be loopback: a load test never leaves the machine.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from ocean.durations import parse_duration
from ocean.errors import OceanError

MAX_VUS = 20_000
MAX_RATE = 100_000  # iterations per second
MAX_DURATION_S = 3600.0


@dataclass(frozen=True)
class Scenario:
    name: str  # testing/k6/<name>.js
    about: str
    vus: int  # default VUs (arrival-rate scenarios: the most VUs k6 may use)
    duration_s: float  # default duration
    rate: int | None = None  # default arrival rate (iterations/s); None: not rate-driven

    @property
    def script(self) -> str:
        return f"{self.name}.js"


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("smoke", "every endpoint once per iteration, few VUs", 2, 10),
        Scenario("browsing", "list, search, product pages; 1-3 s think time", 50, 60),
        Scenario("shopping", "cart, checkout, order status over WebSocket", 10, 60),
        Scenario("stress", "arrival rate stepped up to --rate: the breaking point", 400, 80, 800),
        Scenario("cache", "hot product reads: micro-cache and product cache", 20, 30),
        Scenario("database", "searches, deep pages, order lookups: PostgreSQL", 10, 30),
        Scenario("websocket", "many open order feeds", 100, 30),
        Scenario("performance", "SLO validation: a browse/buy mix at --rate", 200, 120, 50),
        Scenario("shoppers", "storefront visits, 7% carts, 2% orders; 5-15 s think time", 100, 60),
    )
}


@dataclass(frozen=True)
class LoadOptions:
    scenario: str
    vus: int
    duration_s: float
    target: str
    rate: int | None = None
    guards: dict[str, str] = field(default_factory=dict)  # NAME → VALUE overrides
    # Walk the storefront in Chromium meanwhile and judge page_load (performance: on).
    browser: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def check_target(url: str) -> str:
    """``url`` without a trailing slash; OceanError unless it is http(s) on loopback."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OceanError(f"--target {url!r} is not an http:// or https:// URL")
    host = parts.hostname
    loopback = host == "localhost"
    if not loopback:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
    if not loopback:
        raise OceanError(
            f"--target {url!r} is not loopback: load tests only target this machine "
            "(127.0.0.0/8, ::1 or localhost)"
        )
    return url.rstrip("/")


def options(
    scenario: str,
    target: str,
    vus: int | str | None = None,
    duration: str | float | None = None,
    rate: int | str | None = None,
    guards: list[str] | tuple[str, ...] = (),
    browser: bool | None = None,
) -> LoadOptions:
    """Check what a user asked for; OceanError names the first problem."""
    known = SCENARIOS.get(scenario)
    if known is None:
        raise OceanError(f"unknown scenario {scenario!r}: choose from {', '.join(SCENARIOS)}")
    n_vus = _bounded_int(vus, known.vus, "vus", MAX_VUS)
    seconds = known.duration_s if duration in (None, "") else parse_duration(duration)
    if not 1 <= seconds <= MAX_DURATION_S:
        raise OceanError(f"--duration must be 1s..{MAX_DURATION_S:.0f}s, not {seconds:g}s")
    n_rate = None
    if rate not in (None, "", 0, "0"):
        if known.rate is None:
            raise OceanError(
                f"--rate applies to the stress and performance scenarios, not {scenario}"
            )
        n_rate = _bounded_int(rate, known.rate, "rate", MAX_RATE)
    elif known.rate is not None:
        n_rate = known.rate
    overrides: dict[str, str] = {}
    for item in guards:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise OceanError(f"--guard {item!r} is not NAME=VALUE (VALUE a number or 'off')")
        overrides[name.strip()] = value.strip()
    with_browser = scenario == "performance" if browser is None else browser
    return LoadOptions(
        scenario, n_vus, seconds, check_target(target), n_rate, overrides, with_browser
    )


def _bounded_int(value: int | str | None, default: int, what: str, ceiling: int) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise OceanError(f"--{what} {value!r} is not a whole number") from None
    if not 1 <= number <= ceiling:
        raise OceanError(f"--{what} must be 1..{ceiling:,}, not {number}")
    return number
