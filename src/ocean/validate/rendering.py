"""The stack spec's template context, for the checks: one way to render a template as
``./ocean up`` would, into a throwaway state dir, without touching a real one.

``local_context(repo_root, state_dir)`` builds it (default port plan; every secret a
placeholder, so no secrets file is written; program paths not looked up; the rule files
and the shop's file_sd targets taken from / written for ``repo_root``), and
``rendering(repo_root)`` wraps it in a temp dir with the PostgreSQL ``-c`` overrides.
Both read the spec (ocean/stackspec) that the runtimes read: no runtime is built.
"""

from __future__ import annotations

import collections
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocean import scrape_tls, tls
from ocean.config import DEFAULT_PORT_BASE, PortPlan, Settings
from ocean.render import render
from ocean.runtime import scrape_sockets
from ocean.stackspec.spec import StackSecrets, StackSpec

# -c overrides that only point at files in the state dir: nothing to validate.
PG_PATH_OVERRIDES = {"config_file", "hba_file", "ident_file"}


# Every secret renders as this placeholder; OPS_PASSWORD's bcrypt hash (web-config.yml,
# htpasswd) is given ready made: bcrypt costs ≈ 0.35 s a hash by design, and each check
# that renders a template would pay it (a dozen a validation; thousands in the fuzz test).
PLACEHOLDER = "placeholder"
PLACEHOLDER_BCRYPT = "$2b$10$Xr3/qYYYFHiEU11Qfbt3vuDengHQFgAh7L1onCmOBMe1FBDPgVqeO"


def _spec(repo_root: Path, state_dir: Path) -> StackSpec:
    settings = Settings(
        state_dir=state_dir, ports=PortPlan(DEFAULT_PORT_BASE), repo_root=Path(repo_root)
    )
    settings.etc.mkdir(parents=True, exist_ok=True)
    # access.bcrypt_hash's cache file: (SHA-256 of the password, its hash).
    digest = hashlib.sha256(PLACEHOLDER.encode()).hexdigest()
    (settings.etc / "ops.bcrypt").write_text(f"{digest} {PLACEHOLDER_BCRYPT}\n")
    # nginx -t loads the certificate: a throwaway local CA and certificate (ms).
    tls.ensure(tls.TlsFiles(settings.tls_dir), [settings.host])
    spec = StackSpec(
        settings,
        # No secrets file: every secret is the placeholder.
        secrets=StackSecrets(settings.secrets_file, collections.defaultdict(lambda: PLACEHOLDER)),
        binary=lambda binary: binary,  # only argv shapes are read, nothing runs
        as_root=os.geteuid() == 0,
    )
    # promtool checks the scrape client certificate's files exist; nginx -t binds (and
    # removes) its unix socket, whose directory must exist.
    scrape_tls.ensure(spec.scrape_tls(), [settings.host])
    sockets = spec.scrape_sockets()
    if sockets.directory.is_relative_to(state_dir):  # never a /tmp fallback from a check
        scrape_sockets.prepare(sockets, None)
    return spec


def _context(spec: StackSpec, repo_root: Path) -> dict[str, Any]:
    ctx = spec.context()
    ctx["paths"] = {**ctx["paths"], "rules": Path(repo_root) / "monitoring" / "rules"}
    targets = ctx["paths"]["targets"]
    targets.mkdir(parents=True, exist_ok=True)
    (targets / "shop.json").write_text(spec.render_shop_targets(["shop-blue"]))
    return ctx


def local_context(repo_root: Path, state_dir: Path) -> dict[str, Any]:
    """The stack spec's template context with its state dir in ``state_dir``."""
    return _context(_spec(repo_root, state_dir), repo_root)


@dataclass
class Rendered:
    root: Path  # the temp dir (the state dir is root / "state")
    settings: Settings
    context: dict[str, Any]
    pg_overrides: list[tuple[str, str]]
    repo_root: Path  # where the templates are read from

    def render(self, template: str, **extra: Any) -> str:
        return render(template, {**self.context, **extra}, root=self.repo_root)


@contextmanager
def rendering(repo_root: Path) -> Iterator[Rendered]:
    """The stack spec's render context for a throwaway state dir below /tmp."""
    tmp = Path(tempfile.mkdtemp(prefix="ocean-validate-"))
    try:
        spec = _spec(repo_root, tmp / "state")
        context = _context(spec, repo_root)
        pg = next(p for p in spec.programs() if p.name == "postgres")
        overrides = [
            tuple(value.split("=", 1))
            for flag, value in zip(pg.argv, pg.argv[1:], strict=False)
            if flag == "-c" and value.split("=", 1)[0] not in PG_PATH_OVERRIDES
        ]
        yield Rendered(tmp, spec.settings, context, overrides, Path(repo_root))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
