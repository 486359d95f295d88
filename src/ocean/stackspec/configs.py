"""The stack's service configs, rendered into the state dir: nginx, Prometheus (and its
rule files), Alertmanager, blackbox, PostgreSQL and Redis; nginx's upstream and the
shop's scrape targets, which the deploy procedure rewrites when colors change. The
process manager's own config (supervisord.conf) is the local runtime's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ocean import environments_apply, slo
from ocean.config import REPO_ROOT, Settings
from ocean.render import render, write_atomic
from ocean.stackspec import accounts

if TYPE_CHECKING:
    from ocean.stackspec.spec import StackSpec


def write_service_configs(spec: StackSpec, ctx: dict) -> int:
    """Render every service config with ``ctx`` (spec.context()) into <etc>, and make
    the services' data directories; returns how many files changed."""
    s = spec.settings
    # 0600: nginx.conf holds the traffic token, the replica's config its master
    # password (Redis has no file for it); the master's holds hashes only.
    private = {
        s.etc / "nginx.conf": render("stack/nginx/nginx.conf", ctx),
        s.etc / "redis-replica.conf": render(
            "stack/redis/redis-replica.conf", {**ctx, "redis_dir": s.data / "redis-replica"}
        ),
    }
    files = {
        s.etc / "prometheus.yml": render("monitoring/prometheus/prometheus.yml", ctx),
        s.etc / "blackbox.yml": render("monitoring/blackbox/blackbox.yml", ctx),
        s.etc / "postgresql.conf": render("stack/postgres/postgresql.conf", ctx),
        s.etc / "redis-master.conf": render(
            "stack/redis/redis-master.conf", {**ctx, "redis_dir": s.data / "redis-master"}
        ),
    }
    # The live color's upstream and scrape targets survive re-renders: they belong
    # to the deploy procedure once it has run.
    if not (s.etc / "upstream.conf").exists():
        files[s.etc / "upstream.conf"] = render_upstream(s, ["shop-blue"])
    if not (s.etc / "targets" / "shop.json").exists():
        files[s.etc / "targets" / "shop.json"] = render_shop_targets(
            s, [f"shop-{spec.live_color()}"]
        )
    files.update(rule_files(s))
    group = {s.etc / "postgresql.conf": accounts.pg_config_group(spec.as_root)}
    changed = sum(write_atomic(p, text, group=group.get(p)) for p, text in files.items())
    changed += sum(write_atomic(path, text, mode=0o600) for path, text in private.items())
    # 0600: webhook URLs may carry tokens (Alertmanager 0.25 has no url_file).
    changed += write_atomic(
        s.etc / "alertmanager.yml",
        render("monitoring/alertmanager/alertmanager.yml", ctx),
        mode=0o600,
    )
    for name in ("redis-master", "redis-replica", "prometheus", "alertmanager"):
        (s.data / name).mkdir(mode=0o700, parents=True, exist_ok=True)
    return changed


def rule_files(settings: Settings) -> dict[Path, str]:
    """The rule files Prometheus loads, in <etc>/rules: monitoring/rules as committed,
    except that an environment overriding an SLO objective (``slo.*``) gets the SLO
    rules generated again with its figures, so that its burn-rate alerts fire on
    its own objective. Files no longer in monitoring/rules are removed."""
    folder = settings.etc / "rules"
    committed = REPO_ROOT / "monitoring" / "rules"
    texts = {path.name: path.read_text() for path in committed.glob("*.rules.yml")}
    base = slo.load()
    effective = environments_apply.slos(base, settings.env)
    if effective != base:
        texts.update(slo.rule_files(effective))
    for stale in folder.glob("*.rules.yml"):
        if stale.name not in texts:
            stale.unlink()
    return {folder / name: text for name, text in texts.items()}


def render_upstream(settings: Settings, colors: list[str]) -> str:
    """nginx's upstream of the shop: ``colors`` (service names, shop-blue …)."""
    servers = [f"{settings.host}:{settings.ports[c]}" for c in colors]
    return render("stack/nginx/upstream.conf", {"upstream_servers": servers})


def render_shop_targets(settings: Settings, colors: list[str]) -> str:
    """Prometheus' file_sd targets of the shop: ``colors``, each labelled by color."""
    groups = [
        {
            "targets": [f"{settings.host}:{settings.ports[c]}"],
            "labels": {"color": c.removeprefix("shop-")},
        }
        for c in colors
    ]
    return json.dumps(groups, indent=2) + "\n"
