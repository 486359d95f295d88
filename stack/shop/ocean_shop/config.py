"""Settings, read only from SHOP_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ocean_shop import __version__

COLORS = ("blue", "green")
# Without SHOP_ADMIN_PORT the admin listener takes SHOP_PORT + this (8000 -> 9000).
ADMIN_PORT_OFFSET = 1000
# The admin token guards fault injection and stock changes: refuse guessable ones.
MIN_ADMIN_TOKEN_LENGTH = 16


class ConfigError(ValueError):
    """A SHOP_* variable has an unusable value; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    redis_url: str
    host: str = "127.0.0.1"
    port: int = 8000
    color: str = "blue"
    version: str = __version__
    seed_products: int = 1000
    seed_customers: int = 100
    # Entries are replaced by version on every change (see cache.py), so a long
    # TTL costs no staleness; it only bounds memory for products nobody reads.
    cache_ttl: int = 300
    cart_ttl: int = 86_400
    payment_latency_ms: int = 10
    payment_failure_rate: float = 0.0
    # How long a checkout waits for a contended product before answering 503,
    # and how long a lock outlives a holder that died (must exceed any hold).
    lock_wait_ms: int = 2_000
    lock_ttl_ms: int = 5_000
    low_stock_threshold: int = 10
    db_pool_min: int = 0
    db_pool_max: int = 10
    startup_timeout: float = 30.0
    # The admin listener (fault injection, back office) always binds 127.0.0.1 and
    # exists only when admin_token is set. None: port + ADMIN_PORT_OFFSET, filled
    # in at construction (so set it again when dataclasses.replace changes port).
    admin_port: int | None = None
    admin_token: str | None = field(default=None, repr=False)
    # OTLP/HTTP collector, e.g. http://jaeger:4318 (/v1/traces is appended).
    # None: no tracing, and no OpenTelemetry SDK module is ever imported.
    otlp_endpoint: str | None = None
    # Where the storefront's fingerprinted assets are published for nginx
    # (<dir>/static/<name>, see assets.py). None: served by the shop only.
    static_dir: str | None = None
    # One log line per request (method, path, status, duration, with its trace id):
    # what `invoke logs --trace ID` finds beside nginx's access line. Probes and
    # /metrics are never logged.
    access_log: bool = True

    def __post_init__(self) -> None:
        if self.color not in COLORS:
            raise ConfigError(f"SHOP_COLOR must be one of {'|'.join(COLORS)}, got {self.color!r}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"SHOP_PORT must be 1..65535, got {self.port}")
        if self.seed_products < 0:
            raise ConfigError(f"SHOP_SEED_PRODUCTS must be >= 0, got {self.seed_products}")
        if self.seed_customers < 0:
            raise ConfigError(f"SHOP_SEED_CUSTOMERS must be >= 0, got {self.seed_customers}")
        if self.cart_ttl < 1:
            raise ConfigError(f"SHOP_CART_TTL must be >= 1, got {self.cart_ttl}")
        if self.payment_latency_ms < 0:
            raise ConfigError(
                f"SHOP_PAYMENT_LATENCY_MS must be >= 0, got {self.payment_latency_ms}"
            )
        if not 0.0 <= self.payment_failure_rate <= 1.0:
            raise ConfigError(
                f"SHOP_PAYMENT_FAILURE_RATE must be 0..1, got {self.payment_failure_rate}"
            )
        if self.lock_wait_ms < 0:
            raise ConfigError(f"SHOP_LOCK_WAIT_MS must be >= 0, got {self.lock_wait_ms}")
        if self.lock_ttl_ms < 100:
            raise ConfigError(f"SHOP_LOCK_TTL_MS must be >= 100, got {self.lock_ttl_ms}")
        if self.low_stock_threshold < 0:
            raise ConfigError(
                f"SHOP_LOW_STOCK_THRESHOLD must be >= 0, got {self.low_stock_threshold}"
            )
        if self.cache_ttl < 1:
            raise ConfigError(f"SHOP_CACHE_TTL must be >= 1, got {self.cache_ttl}")
        if not 0 <= self.db_pool_min <= self.db_pool_max:
            raise ConfigError(
                f"SHOP_DB_POOL_MIN must be 0..SHOP_DB_POOL_MAX, got {self.db_pool_min}"
            )
        if self.db_pool_max < 1:
            raise ConfigError(f"SHOP_DB_POOL_MAX must be >= 1, got {self.db_pool_max}")
        if self.startup_timeout <= 0:
            raise ConfigError(f"SHOP_STARTUP_TIMEOUT must be > 0, got {self.startup_timeout}")
        if self.admin_port is None:
            object.__setattr__(self, "admin_port", self.port + ADMIN_PORT_OFFSET)
        if self.admin_token is not None:
            if len(self.admin_token) < MIN_ADMIN_TOKEN_LENGTH:
                raise ConfigError(
                    f"SHOP_ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_LENGTH} characters"
                )
            if not 0 < self.admin_port < 65536:
                raise ConfigError(f"SHOP_ADMIN_PORT must be 1..65535, got {self.admin_port}")
            if self.admin_port == self.port:
                raise ConfigError(f"SHOP_ADMIN_PORT must differ from SHOP_PORT ({self.port})")
        if self.otlp_endpoint is not None and not _http_url(self.otlp_endpoint):
            raise ConfigError(
                "SHOP_OTLP_ENDPOINT must be an http(s) URL such as http://jaeger:4318,"
                f" got {self.otlp_endpoint!r}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        def required(name: str) -> str:
            value = environ.get(name, "").strip()
            if not value:
                raise ConfigError(f"{name} is required")
            return value

        def number(name: str, default: float, kind: type[int] | type[float] = int) -> int | float:
            raw = environ.get(name, "").strip()
            if not raw:
                return default
            try:
                return kind(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a {kind.__name__}, got {raw!r}") from None

        return cls(
            database_url=required("SHOP_DATABASE_URL"),
            redis_url=required("SHOP_REDIS_URL"),
            host=environ.get("SHOP_HOST", "").strip() or "127.0.0.1",
            port=int(number("SHOP_PORT", 8000)),
            color=environ.get("SHOP_COLOR", "").strip() or "blue",
            version=environ.get("SHOP_VERSION", "").strip() or __version__,
            seed_products=int(number("SHOP_SEED_PRODUCTS", 1000)),
            seed_customers=int(number("SHOP_SEED_CUSTOMERS", 100)),
            cache_ttl=int(number("SHOP_CACHE_TTL", 300)),
            cart_ttl=int(number("SHOP_CART_TTL", 86_400)),
            payment_latency_ms=int(number("SHOP_PAYMENT_LATENCY_MS", 10)),
            payment_failure_rate=float(number("SHOP_PAYMENT_FAILURE_RATE", 0.0, float)),
            lock_wait_ms=int(number("SHOP_LOCK_WAIT_MS", 2_000)),
            lock_ttl_ms=int(number("SHOP_LOCK_TTL_MS", 5_000)),
            low_stock_threshold=int(number("SHOP_LOW_STOCK_THRESHOLD", 10)),
            db_pool_min=int(number("SHOP_DB_POOL_MIN", 0)),
            db_pool_max=int(number("SHOP_DB_POOL_MAX", 10)),
            startup_timeout=float(number("SHOP_STARTUP_TIMEOUT", 30, float)),
            admin_port=(
                int(number("SHOP_ADMIN_PORT", 0))
                if environ.get("SHOP_ADMIN_PORT", "").strip()
                else None
            ),
            admin_token=environ.get("SHOP_ADMIN_TOKEN", "").strip() or None,
            otlp_endpoint=environ.get("SHOP_OTLP_ENDPOINT", "").strip() or None,
            static_dir=environ.get("SHOP_STATIC_DIR", "").strip() or None,
            access_log=environ.get("SHOP_ACCESS_LOG", "").strip().lower()
            not in ("0", "false", "no", "off"),
        )


def _http_url(value: str) -> bool:
    try:
        url = urlsplit(value)
        url.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return url.scheme in ("http", "https") and bool(url.hostname) and not url.query
