"""Capturing the metric catalog from a live stack (``invoke validate --refresh-catalog``).

What a stack exports depends on what happened to it: the shop's 5xx counter, a route's
latency buckets, k6's remote-written series and the toolkit's textfile metrics appear
only after traffic or an event. The capture therefore *drives* what it cheaply can and
*declares* what it must not fake:

1. **Traffic** (:func:`drive_traffic`): a few reads through nginx (a 404 among them),
   the deploy warm-up on each running color (every route class, the dry-run checkout
   that leaves nothing behind), one 5xx per color by fault injection on its admin
   listener (set and reset around a single request: too short for any alert's ``for:``),
   and short k6 smoke and websocket runs, whose remote-written ``k6_*`` series the console reads
   (it also writes the load-test textfile, as any load test does); then it waits for
   the always-firing Watchdog to reach the alert inbox (series only a delivered alert
   brings: Prometheus' notification latency, the inbox's counters).
2. **Scrapes**: each active target's /metrics, read as Prometheus reads it (its
   scrape URL, with the operator's credentials), HELP/TYPE lines included: a family a
   client library declares without samples is in the catalog by name. Target labels
   (job, instance, color, role) are added as Prometheus adds them.
3. **Prometheus' own series** (``/api/v1/series``): ``up`` and ``scrape_*``, the
   recording rules' outputs as evaluated, remote-written k6 series.
4. **Textfile metrics no event wrote** (a deploy, a backup, a restore test: faking one on
   a live stack would lie to its dashboards and alerts): their families and label names
   from ocean/textfile.py, rendered into a scratch dir by the writers the events use.

The result replaces monitoring/catalog.json (catalog.py); the versions of the services
it came from go with it.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from ocean import textfile
from ocean.config import PortPlan, Settings
from ocean.prom import Prometheus
from ocean.services import COLORS
from ocean.validate.catalog import Catalog, Exposed, Family, parse_exposition

# Series Prometheus stores for at most this long back are read (a fresh capture is
# what counts: a metric renamed an hour ago must not linger in the catalog).
LOOKBACK_S = 300
# Series Prometheus makes for alerting rules: the series check knows them from the rule
# files, whatever fired while the catalog was captured.
SYNTHESISED = ("ALERTS", "ALERTS_FOR_STATE")
# Our own Python services: prometheus_client prints every registered family's HELP and
# TYPE, sampled or not, so each must be on any live stack (the staleness test's check
# that nothing the catalog holds was dropped). Exporters print a family only with samples.
DECLARING_JOBS = ("shop", "alert_inbox")
# build_info metrics → the name their version is filed under.
VERSION_METRICS = {
    "prometheus_build_info": "prometheus",
    "alertmanager_build_info": "alertmanager",
    "node_exporter_build_info": "node_exporter",
    "postgres_exporter_build_info": "postgres_exporter",
    "redis_exporter_build_info": "redis_exporter",
    "nginx_exporter_build_info": "nginx_exporter",
    "nginxexporter_build_info": "nginx_exporter",  # its name before 1.0
    "blackbox_exporter_build_info": "blackbox_exporter",
}


def capture(runtime: Any) -> Catalog:
    """The catalog of ``runtime``'s live stack as it is now (no traffic driven)."""
    families: dict[str, Family] = {}
    with Prometheus.of(runtime, timeout=15) as prom:
        targets = prom.active_targets()
        access = runtime.access()
        with httpx.Client(auth=access.ops_auth, verify=access.ssl_context(), timeout=15) as http:
            for target in targets:
                _add_target(families, http, target)
        now = time.time()
        series = prom.series('{__name__=~".+"}', now - LOOKBACK_S, now)
        rules = {
            rule["name"]
            for group in prom.rule_groups()
            for rule in group.get("rules", [])
            if rule.get("type") == "recording"
        }
    versions = _versions(series)
    for labels in series:
        labels = dict(labels)
        name = labels.pop("__name__", "")
        if not name:
            continue
        family = families.get(name)
        if family is None:
            origin = "rule" if name in rules else "prometheus"
            family = families[name] = Family(origin=origin)
        elif family.labels is not None and family.origin == "scrape":
            continue  # the scrape saw it with its target labels already
        family.add_series(labels)
        if labels.get("job"):
            family.jobs.add(labels["job"])
    for name, family in _textfile_families().items():
        families.setdefault(name, family)
    for name in SYNTHESISED:
        families.pop(name, None)
    routes = _shop_routes(runtime)
    for name, family in families.items():
        if name.startswith("k6_"):
            family.labels = None  # k6's tags are the scripts' choice: no closed set
        _complete_domains(family, routes)
    metrics = {name: family.as_json() for name, family in families.items()}
    return Catalog(metrics, versions)


INBOX_KINDS = ("webhook", "slack", "email")  # ocean_inbox_messages_total{kind}


def _complete_domains(family: Family, routes: set[str]) -> None:
    """Closed sets a capture cannot see whole, completed from what fixes them:

    - ``color``: every color (the idle one exports the same series once a deploy starts
      it; a capture must not depend on which color is live now);
    - ``route`` (the shop labels a request with its route template): every route of
      both listeners' OpenAPI documents, and ``other``;
    - ``status`` in classes (``2xx``: the shop folds statuses): all five classes;
    - ``kind`` of the inbox's deliveries: webhook, slack and email (stack/inbox: one per
      listener; the Watchdog the capture waits for brings only the webhook).
    """
    labels = family.labels or {}
    if family.jobs == {"alert_inbox"} and labels.get("kind"):
        labels["kind"].update(INBOX_KINDS)
    if labels.get("color") and labels["color"] - {""}:
        labels["color"].update(COLORS)
    if labels.get("route") and routes and labels["route"] & routes:
        labels["route"].update(routes | {"other"})
    status = labels.get("status")
    if status and all(re.fullmatch(r"[1-5]xx|", v) for v in status):
        status.update(f"{n}xx" for n in range(1, 6))


def _shop_routes(runtime: Any) -> set[str]:
    """The route templates of each running color's public and admin listeners."""
    from ocean import secrets

    token = secrets.load_or_create(runtime.settings.secrets_file).get("SHOP_ADMIN_TOKEN", "")
    routes: set[str] = set()
    for color in COLORS:
        for service, headers in (
            (f"shop-{color}", {}),
            (f"shop-{color}-admin", {"Authorization": f"Bearer {token}"}),
        ):
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                document = httpx.get(
                    runtime.url(service) + "/openapi.json", headers=headers, timeout=5
                ).json()
                routes.update(document["paths"])
    return routes


def _add_target(families: dict[str, Family], http: httpx.Client, target: dict) -> None:
    """Read one target's /metrics (its scrape URL) into ``families``."""
    labels = dict(target.get("labels") or {})
    job = labels.get("job", "")
    try:
        response = http.get(target["scrapeUrl"])
        response.raise_for_status()
    except httpx.HTTPError:
        return  # a target down now: Prometheus' series still name what it exported
    exposed = parse_exposition(response.text)
    declares_empty = job in DECLARING_JOBS
    for family in exposed:
        # What the exporter declares with or without samples: what any live stack must
        # show. Not the _created series (prometheus_client prints their family, a gauge
        # of its own, only once the counter or histogram has a sample).
        typed = []
        if declares_empty and not family.name.endswith("_created"):
            typed = [
                name
                for name in Exposed(family.name, family.type).series_names()
                if not name.endswith("_created")
            ]
        for name in family.series_names() + typed:
            entry = families.setdefault(name, Family(family.type, family.help, "scrape"))
            entry.type, entry.help = family.type, family.help or entry.help
            entry.jobs.add(job)
            entry.declared = entry.declared or name in typed
        for name, sample_labels in family.samples:
            families[name].add_series({**sample_labels, **labels})


def _textfile_families() -> dict[str, Family]:
    """The toolkit's textfile metrics as its writers produce them (values open)."""
    with tempfile.TemporaryDirectory(prefix="ocean-catalog-") as tmp:
        settings = Settings(state_dir=Path(tmp), ports=PortPlan(18000))
        textfile.record_deploy(settings, "blue", "v", "success", duration_s=1.0)
        textfile.record_backup(settings, "label", 1, True, duration_s=1.0)
        textfile.record_restore_test(settings, True, 1.0)
        textfile.record_loadtest(settings, "smoke", True, 0.1, 1.0)
        textfile.record_page_load(settings, {"home": {"load": 1.0}})
        text = "".join(
            p.read_text() for p in sorted(textfile.textfile_dir(settings).glob("*.prom"))
        )
    out: dict[str, Family] = {}
    for exposed in parse_exposition(text):
        family = out[exposed.name] = Family(exposed.type, exposed.help, "code", {"node"})
        for _, labels in exposed.samples:
            family.add_series({**labels, "job": "node", "instance": ""})
        # The values are the writer's sample arguments, not the stack's: keep names only.
        family.closed = False
    return out


def _versions(series: list[dict]) -> dict[str, str]:
    """Version of each service, from the build_info series and the servers' info."""
    out: dict[str, str] = {}
    wanted = {**VERSION_METRICS, "redis_instance_info": "redis", "pg_static": "postgresql"}
    for labels in series:
        name = labels.get("__name__")
        if name not in wanted:
            continue
        version = (
            labels.get("short_version") or labels.get("redis_version") or labels.get("version")
        )
        if version:
            out[wanted[name]] = version
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        from ocean.runtime.k6 import k6_binary

        line = subprocess.run(
            [k6_binary(), "version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout.split()
        if len(line) > 1:
            out["k6"] = line[1]
    return out
