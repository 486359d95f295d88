"""Who may talk to the stack, and how our own clients do: the one place that knows.

- **Operators** (people, the toolkit, Prometheus scraping) authenticate as ``OPS_USER``
  with the generated ``OPS_PASSWORD``: nginx checks it (htpasswd) in front of
  Prometheus and Alertmanager, and Prometheus, Alertmanager and the exporter-toolkit
  exporters check it again on their own loopback ports (``--web.config.file``), so a
  local user who skips nginx gets a 401 as well. Both files hold bcrypt hashes only.
  The nginx exporter and stub_status, whose programs have no such option, sit behind
  nginx with the same credentials (``scrape_htpasswd``); the redis exporter, which
  cannot sit behind nginx (ocean/scrape_tls.py), requires a client certificate.
- **Redis** has four ACL users (``redis_acl``), each with only what it needs; the config
  carries SHA-256 hashes of their passwords, never the passwords.
- **TLS**: every HTTPS client of ours trusts the stack's CA (``ssl_context``), never
  "verify off"; k6 and other Go programs get it through ``SSL_CERT_FILE``.

Clients get an ``Access`` from the runtime (``runtime.access()``) rather than reading
secrets themselves.
"""

from __future__ import annotations

import hashlib
import json
import ssl
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import httpx

from ocean.render import write_atomic
from ocean.scrape_tls import ScrapeTls

OPS_USER = "ocean-ops"
# bcrypt's usual cost. nginx verifies on every request to the operator locations (each
# ~50 ms of one worker: people, not machines, use that path); the exporter toolkit
# caches a verified password, so Prometheus' 1 s scrapes cost one bcrypt each, once.
BCRYPT_ROUNDS = 10
# The machines' path (ports scraped every second through nginx): scrape_htpasswd says why.
SCRAPE_BCRYPT_ROUNDS = 4
TRAFFIC_HEADER = "X-Ocean-Traffic"


@dataclass(frozen=True)
class Access:
    """What one of our clients needs to talk to one stack."""

    ca_file: Path
    ops_password: str
    traffic_token: str = ""
    # The redis exporter's mutual TLS: its CA and our client certificate.
    scrape_tls: ScrapeTls | None = None

    @property
    def ops_auth(self) -> tuple[str, str]:
        return (OPS_USER, self.ops_password)

    def ssl_context(self) -> ssl.SSLContext:
        """Verifies the stack's certificate against its CA (and the host name)."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def http_client(self, base_url: str, *, operator: bool = False, **kwargs) -> httpx.Client:
        """An httpx client for ``base_url``: the CA for https, credentials when asked."""
        return httpx.Client(
            base_url=base_url,
            verify=self.ssl_context(),
            auth=self.ops_auth if operator else None,
            **kwargs,
        )

    def scrape_client(self, base_url: str, **kwargs) -> httpx.Client:
        """An httpx client for a port that requires the scrape client certificate (the
        redis exporter's): verifies the server against the scrape CA, presents ours."""
        if self.scrape_tls is None:
            raise ValueError("this Access has no scrape certificates")
        context = ssl.create_default_context(cafile=str(self.scrape_tls.ca_cert))
        context.load_cert_chain(self.scrape_tls.client_cert, self.scrape_tls.client_key)
        return httpx.Client(base_url=base_url, verify=context, **kwargs)

    def k6_env(self) -> dict[str, str]:
        """k6 (Go) trusts the stack's CA, identifies its traffic to nginx, and signs in
        to Prometheus when it streams its metrics there (remote write). All through
        the environment, which only its user can read, never its command line."""
        return {
            "SSL_CERT_FILE": str(self.ca_file),
            "OCEAN_TRAFFIC_TOKEN": self.traffic_token,
            "K6_PROMETHEUS_RW_USERNAME": OPS_USER,
            "K6_PROMETHEUS_RW_PASSWORD": self.ops_password,
        }


def bcrypt_hash(password: str, cache: Path, rounds: int = BCRYPT_ROUNDS) -> str:
    """A bcrypt hash of ``password``, made once: ``cache`` (0600) keeps it with a
    SHA-256 of the password, so a changed password gets a new hash and an unchanged
    one costs nothing on the next `up` (one cache per cost: ``rounds``)."""
    digest = hashlib.sha256(password.encode()).hexdigest()
    try:
        known_digest, known_hash = cache.read_text().split()
        if known_digest == digest:
            return known_hash
    except (FileNotFoundError, ValueError):
        pass
    made = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()
    write_atomic(cache, f"{digest} {made}\n", mode=0o600)
    return made


def htpasswd(password_hash: str) -> str:
    return f"{OPS_USER}:{password_hash}\n"


def web_config(password_hash: str) -> str:
    """exporter-toolkit's web config (Prometheus, Alertmanager, node, postgres and
    blackbox exporters): basic auth with the operator's bcrypt hash."""
    return (
        "# Generated by ocean (ocean/access.py): basic auth on this loopback port too.\n"
        f"basic_auth_users:\n  {OPS_USER}: {password_hash}\n"
    )


def _acl_hash(password: str) -> str:
    return "#" + hashlib.sha256(password.encode()).hexdigest()


# What redis_exporter 1.45 sends with our flags (exporter/exporter.go, scrapeRedisHost):
# AUTH, CLIENT SETNAME, CONFIG GET *, INFO ALL, LATENCY LATEST, SLOWLOG LEN, SLOWLOG
# GET 1. CONFIG GET is left out on purpose: it reads `masterauth`, the replication
# password, on the replica (issue 25); refused, the exporter logs it at debug level and
# carries on (every metric the rules and dashboards use comes from INFO, maxmemory
# too). SLOWLOG GET is left out: it returns the arguments of slow commands, i.e. data.
# Each refusal is in Redis' ACL LOG: one merged entry per command, its count rising
# with every scrape (user exporter, config|get and slowlog|get): expected, not an attack.
EXPORTER_COMMANDS = ("+ping", "+client|setname", "+info", "+latency|latest", "+slowlog|len")
# Full copies of the data set: only the replica's user may ask for one.
REPLICATION_COMMANDS = ("+psync", "+replconf", "+ping")
FULL_SYNC = ("-psync", "-sync")


def redis_acl(secrets: dict[str, str]) -> list[str]:
    """ACL users for redis.conf (``user`` lines, hashed passwords).

    - default: the toolkit (probes, backups, restores: BGSAVE, FLUSHALL, MIGRATE,
      CONFIG GET dir); no PSYNC/SYNC: backups copy the RDB file, and a full sync is
      the one command that hands out everything at once.
    - shop: every data command and pub/sub, no admin or dangerous ones (no CONFIG,
      FLUSHALL, KEYS, DEBUG, SHUTDOWN, PSYNC …).
    - exporter: exactly what redis_exporter sends (``EXPORTER_COMMANDS``), no keys,
      no CONFIG.
    - replica: replication only (PSYNC, REPLCONF, PING), no keys.
    AUTH (and HELLO) are open to every connection, as Redis requires.
    """
    return [
        f"user default on {_acl_hash(secrets['REDIS_PASSWORD'])} ~* &* +@all {' '.join(FULL_SYNC)}",
        f"user shop on {_acl_hash(secrets['REDIS_SHOP_PASSWORD'])} ~* &* +@all -@admin -@dangerous",
        f"user exporter on {_acl_hash(secrets['REDIS_EXPORTER_PASSWORD'])} resetchannels -@all "
        + " ".join(EXPORTER_COMMANDS),
        f"user replica on {_acl_hash(secrets['REDIS_REPLICA_PASSWORD'])} resetchannels -@all "
        + " ".join(REPLICATION_COMMANDS),
    ]


def redis_exporter_passwords(targets: list[str], password: str) -> str:
    """redis_exporter's ``-redis.password-file`` (JSON, target URI → password).

    The exporter sends a password only to a target listed here (exporter/redis.go:
    ``PasswordMap[uri]``), so a ``/scrape?target=`` naming any other address gets no
    AUTH at all: the stack's two Redis servers are the only ones it authenticates to.
    It must never get ``-redis.password``/``REDIS_PASSWORD``, which it sends everywhere.
    """
    return json.dumps(dict.fromkeys(targets, password), indent=2) + "\n"


def scrape_htpasswd(password: str, cache: Path) -> str:
    """The htpasswd nginx checks on the machines' ports (the nginx exporter's and
    stub_status): the operator's user and password, bcrypt at its lowest cost.

    nginx verifies on every request (it caches nothing) and Prometheus scrapes every
    second: cost 10 is ~50-250 ms of a worker per scrape, cost 4 ~1.5 ms. The password
    is generated (192 random bits, ocean/secrets.py), so the cost does not protect it;
    bcrypt's cost is for passwords people choose. Readable by nginx's workers only,
    like the operator htpasswd."""
    return htpasswd(bcrypt_hash(password, cache, rounds=SCRAPE_BCRYPT_ROUNDS))
