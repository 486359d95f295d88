"""``invoke validate --only environments``: every environment's definition, not only the
default one (stack/environments/: base.yaml plus one overlay each).

Each problem is an error naming the environment, the file, the line and the key: an
unknown key, a value of the wrong type, a broken base (reported for every environment
it breaks), an overlay that is not YAML. ``ocean.environments`` holds the schema.
"""

from __future__ import annotations

from pathlib import Path

from ocean import environments
from ocean.model import Finding
from ocean.validate.core import check


@check(
    kind="environments",
    name="environment-definitions",
    inputs=(f"{environments.DEFINITIONS}/*.yaml",),
)
def environment_definitions(root: Path) -> list[Finding]:
    folder = root / environments.DEFINITIONS  # the checked tree, never OCEAN_ENV_DIR
    return [
        Finding(
            "environment-definitions",
            "environments",
            "error",
            _relative(problem.file, root),
            problem.line,
            f"environment {problem.env!r}: "
            + (f"key {problem.key!r}: " if problem.key else "")
            + problem.message,
            "fix the overlay (schema: src/ocean/environments.py; effective values: "
            f"`invoke config --env {problem.env}`)",
        )
        for problem in environments.problems(root, folder)
    ]


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
