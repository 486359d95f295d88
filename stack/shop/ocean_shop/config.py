"""Settings, read only from SHOP_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ocean_shop import __version__

COLORS = ("blue", "green")


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
    cache_ttl: int = 60
    db_pool_max: int = 10
    startup_timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.color not in COLORS:
            raise ConfigError(f"SHOP_COLOR must be one of {'|'.join(COLORS)}, got {self.color!r}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"SHOP_PORT must be 1..65535, got {self.port}")
        if self.seed_products < 0:
            raise ConfigError(f"SHOP_SEED_PRODUCTS must be >= 0, got {self.seed_products}")
        if self.cache_ttl < 1:
            raise ConfigError(f"SHOP_CACHE_TTL must be >= 1, got {self.cache_ttl}")
        if self.db_pool_max < 1:
            raise ConfigError(f"SHOP_DB_POOL_MAX must be >= 1, got {self.db_pool_max}")
        if self.startup_timeout <= 0:
            raise ConfigError(f"SHOP_STARTUP_TIMEOUT must be > 0, got {self.startup_timeout}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        def required(name: str) -> str:
            value = environ.get(name, "").strip()
            if not value:
                raise ConfigError(f"{name} is required")
            return value

        def number(name: str, default: int, kind: type[int] | type[float] = int) -> int | float:
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
            cache_ttl=int(number("SHOP_CACHE_TTL", 60)),
            db_pool_max=int(number("SHOP_DB_POOL_MAX", 10)),
            startup_timeout=float(number("SHOP_STARTUP_TIMEOUT", 30, float)),
        )
