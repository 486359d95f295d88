"""The template context of the stack's configs (nginx.conf, prometheus.yml,
alertmanager.yml, …): addresses, paths, resources, and the credential and alerting
files those configs name, which are written here (0600, or 0640 where nginx's workers
read them) so that no secret is ever in a template's output that need not be.
"""

from __future__ import annotations

import os
import pwd
from typing import TYPE_CHECKING

from ocean import access, secrets, tls
from ocean.render import write_atomic
from ocean.stackspec.accounts import NGINX_WORKER_USER

if TYPE_CHECKING:
    from ocean.stackspec.spec import StackSpec

# nginx's per-client request rates (429 beyond rate + burst); the toolkit's own load
# generators send the traffic token and are not limited (stack/nginx/nginx.conf).
RATE_LIMITS = {
    # the shop's API: a browsing customer needs a few requests a second
    "api": {"rate": "50r/s", "burst": 100},
    # login-like: checkout takes a card (card testing), the operator endpoints take a
    # password (guessing)
    "sensitive": {"rate": "5r/s", "burst": 10},
    # the storefront's HTML pages (home, categories, products, search, cart, orders):
    # each is rendered by the shop, search and the cart uncached. A shopper opens a
    # page every few seconds (Chromium's journey: 6 a second at most, one at a time);
    # the burst covers a dozen tabs at once and several shoppers behind one address.
    "pages": {"rate": "10r/s", "burst": 50},
}


def context(spec: StackSpec) -> dict:
    """The template context of every service config (stack/, monitoring/); writes the
    credential and alerting files it names into the state dir."""
    s = spec.settings
    hosts = {name: s.host for name in s.ports.as_dict()}
    return {
        "listen_host": s.host,
        "hosts": hosts,
        "ports": s.ports.as_dict(),
        "paths": {
            "state": s.state_dir,
            "etc": s.etc,
            "logs": s.logs,
            "run": s.run,
            "targets": s.etc / "targets",
            "rules": s.etc / "rules",  # configs.rule_files()
            "nginx_tmp": s.state_dir / "nginx" / "tmp",
            "nginx_cache": s.state_dir / "nginx" / "cache",
            # The storefront's fingerprinted assets: <www>/static/<name>, published
            # by each shop at startup (SHOP_STATIC_DIR), served by nginx.
            "nginx_www": s.state_dir / "nginx" / "www",
        },
        # The local runtime scrapes every second so a fresh stack is observable at once.
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "evaluation_interval": "1s",
        "nginx_workers": s.env["resources.nginx_workers"],
        "daemon_off": False,  # passed with -g so `nginx -t` of the file works alike
        "redis_maxmemory": s.env["resources.redis_maxmemory"],
        "redis_master_host": s.host,
        "alerting": alerting_context(spec),
        "security": access_files(spec),
        # Where operators reach Prometheus and Alertmanager: through nginx.
        "external_urls": {
            "prometheus": f"{spec.url('nginx')}/prometheus/",
            "alertmanager": f"{spec.url('nginx')}/alertmanager/",
        },
    }


def access_files(spec: StackSpec) -> dict:
    """The operator credential's bcrypt files and the password file Prometheus
    sends when it scrapes (all 0600; the htpasswd readable by nginx's workers)."""
    s = spec.settings
    password_hash = access.bcrypt_hash(spec.secret("OPS_PASSWORD"), s.etc / "ops.bcrypt")
    write_atomic(s.etc / "web-config.yml", access.web_config(password_hash), mode=0o600)
    write_atomic(s.etc / "ops-password", spec.secret("OPS_PASSWORD"), mode=0o600)
    # curl's form of the same credential (the compose runtime's healthchecks).
    write_atomic(
        s.etc / "ops.netrc",
        f"machine {s.host} login {access.OPS_USER} password {spec.secret('OPS_PASSWORD')}\n",
        mode=0o600,
    )
    htpasswd = s.state_dir / "nginx" / "htpasswd"
    htpasswd_scrape = s.state_dir / "nginx" / "htpasswd-scrape"
    scrape_hash = access.scrape_htpasswd(spec.secret("OPS_PASSWORD"), s.etc / "ops-scrape.bcrypt")
    for path, text in (
        (htpasswd, access.htpasswd(password_hash)),
        (htpasswd_scrape, scrape_hash),
    ):
        # nginx's workers read it on each request: as root they run as nobody.
        write_atomic(path, text, mode=0o640 if spec.as_root else 0o600)
        if spec.as_root:
            os.chown(path, 0, pwd.getpwnam(NGINX_WORKER_USER).pw_gid)
    # The only Redis servers the exporter authenticates to (access.py says why).
    write_atomic(
        s.etc / "redis-exporter-passwords.json",
        access.redis_exporter_passwords(
            spec.redis_scrape_targets(), spec.secret("REDIS_EXPORTER_PASSWORD")
        ),
        mode=0o600,
    )
    files, scrape, sockets = tls.TlsFiles(s.tls_dir), spec.scrape_tls(), spec.scrape_sockets()
    return {
        "web_config": s.etc / "web-config.yml",
        "ops_user": access.OPS_USER,
        "ops_password_file": s.etc / "ops-password",
        "htpasswd": htpasswd,
        "htpasswd_scrape": htpasswd_scrape,
        "scrape_ca": scrape.ca_cert,
        "scrape_cert": scrape.client_cert,
        "scrape_key": scrape.client_key,
        "sockets": {
            "nginx_status": sockets.nginx_status,
            "nginx_exporter": sockets.nginx_exporter,
        },
        "ca_file": files.ca_cert,
        "cert": files.cert,
        "key": files.key,
        "traffic_token": spec.secret("TRAFFIC_TOKEN"),
        "traffic_header": access.TRAFFIC_HEADER,
        "rate_limits": RATE_LIMITS,
        "redis_acl": access.redis_acl({name: spec.secret(name) for name in secrets.NAMES}),
        "redis_replica_password": spec.secret("REDIS_REPLICA_PASSWORD"),
    }


def alerting_context(spec: StackSpec) -> dict:
    """Alertmanager's receivers (see monitoring/alertmanager/alertmanager.yml).

    Secrets that Alertmanager can read from a file go into 0600 files below
    etc/alertmanager/ (the Slack URL, the pager token, the SMTP password); webhook
    URLs (no url_file in 0.25) go into the 0600 config.
    """
    conf = spec.settings.env["alerting"]
    chosen = spec.receivers(spec.secret("INBOX_SMTP_PASSWORD"))
    files = spec.settings.etc / "alertmanager"
    files.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(files / "slack_url", chosen.slack_url + "\n", mode=0o600)
    pager_token = spec.alerting_setting("OCEAN_PAGER_TOKEN")
    if pager_token:
        write_atomic(files / "pager_token", pager_token + "\n", mode=0o600)
    # No newline: Alertmanager 0.25 sends auth_password_file's bytes as they are.
    write_atomic(files / "smtp_password", chosen.smtp.password, mode=0o600)
    return {
        # dev: short, so a fired or resolved alert is delivered within seconds.
        "group_wait": conf["group_wait"],
        "group_interval": conf["group_interval"],
        "repeat_interval": conf["repeat_interval"],
        # The dead-man's switch beats once a minute: repeat just under the flush
        # interval (alertmanager.yml says why).
        "watchdog_interval": "1m",
        "watchdog_repeat": "50s",
        "pager_url": chosen.pager_url,
        "pager_token_file": files / "pager_token" if pager_token else None,
        "deadman_url": chosen.deadman_url,
        "slack_url_file": files / "slack_url",
        "slack_channel": spec.alerting_setting("OCEAN_SLACK_CHANNEL") or conf["slack_channel"],
        "smtp": chosen.smtp,
        "smtp_password_file": files / "smtp_password",
        # The inbox runs (and Prometheus scrapes it) only while a receiver uses it.
        "inbox": chosen.inbox,
    }
