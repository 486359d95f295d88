"""Offline validation of the repository's configs (``invoke validate``).

See ``ocean.validate.core`` for the check registry and ``run``.
"""

from ocean.validate.core import Check, check, kinds, registry, run

__all__ = ["Check", "check", "kinds", "registry", "run"]
