"""`python -m ocean_shop`: serve the shop with uvicorn, configured from SHOP_* variables."""

from __future__ import annotations

import sys

import uvicorn

from ocean_shop.app import create_app
from ocean_shop.config import ConfigError, Settings
from ocean_shop.logs import configure_logging


def main() -> None:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        sys.exit(f"ocean-shop: {exc}")
    configure_logging(settings.color)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        workers=1,
        access_log=False,
        # Our JSON handler is already on the root logger; uvicorn's own
        # config would replace it with plain-text handlers.
        log_config=None,
        # SIGTERM drains in-flight requests for at most 1 s, so a blue/green
        # switch never waits on a slow client.
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
