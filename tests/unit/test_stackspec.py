"""The stack spec (ocean/stackspec) is what validation validates and what the runtime
runs: validation renders each config from the spec's context into a throwaway state dir
(validate/rendering.py), the local runtime writes them from the same spec. With the same
state dir and secrets, the bytes must be the same, or validation judges files nobody runs.
"""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from ocean.config import REPO_ROOT
from ocean.runtime.local import LocalRuntime
from ocean.stackspec.spec import StackSecrets
from ocean.validate.rendering import PLACEHOLDER, rendering

# The templates the runtime writes into <etc>, with their own extra context.
CONFIGS = {
    "nginx.conf": ("stack/nginx/nginx.conf", {}),
    "prometheus.yml": ("monitoring/prometheus/prometheus.yml", {}),
    "alertmanager.yml": ("monitoring/alertmanager/alertmanager.yml", {}),
    "blackbox.yml": ("monitoring/blackbox/blackbox.yml", {}),
    "postgresql.conf": ("stack/postgres/postgresql.conf", {}),
    "redis-master.conf": ("stack/redis/redis-master.conf", {"redis_dir": "redis-master"}),
    "redis-replica.conf": ("stack/redis/redis-replica.conf", {"redis_dir": "redis-replica"}),
}
BINARIES = ["postgres", "redis-server", "nginx", "prometheus", "prometheus-alertmanager"] + [
    f"prometheus-{name}-exporter" for name in ("node", "postgres", "redis", "nginx", "blackbox")
]


@pytest.fixture
def fake_binaries(tmp_path: Path) -> str:
    """A search path where every program of the stack is (an empty script): the argv
    shapes need a path, nothing is run."""
    for name in BINARIES:
        script = tmp_path / name
        script.write_text("#!/bin/sh\n")
        script.chmod(0o755)
    return str(tmp_path)


def test_the_runtime_writes_the_configs_validation_renders(fake_binaries: str):
    with rendering(REPO_ROOT) as rendered:
        settings = rendered.settings
        runtime = LocalRuntime(settings, search_path=fake_binaries)
        # Validation's placeholders, so that both render the same secrets.
        placeholders = collections.defaultdict(lambda: PLACEHOLDER)
        runtime.spec.secrets = StackSecrets(settings.secrets_file, placeholders)
        runtime._render_configs()

        # Validation reads the committed rule files where the runtime copies them.
        paths = {**rendered.context["paths"], "rules": settings.etc / "rules"}
        for name, (template, extra) in CONFIGS.items():
            extra = {key: settings.data / value for key, value in extra.items()}
            expected = rendered.render(template, paths=paths, **extra)
            assert (settings.etc / name).read_text() == expected, name

        # postgres' -c overrides that validation checks are the ones it is started with.
        postgres = next(p for p in runtime.spec.programs() if p.name == "postgres")
        for name, value in rendered.pg_overrides:
            assert f"{name}={value}" in postgres.argv
        assert postgres.argv[0] == str(Path(fake_binaries) / "postgres")
