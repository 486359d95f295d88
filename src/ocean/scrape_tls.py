"""Mutual TLS for the redis exporter's port (issue 25, High 2).

redis_exporter 1.45 (Debian 12) has no basic auth: the only way its port can refuse a
client is TLS that requires a client certificate (``-tls-server-ca-cert-file``). So the
stack keeps a second, private CA below ``<state>/tls/scrape/`` that signs exactly two
certificates: the exporter's server certificate and one client certificate for the
stack's own scrapers (Prometheus, the health probes, the tests).

Why not nginx's CA: nginx may present a dropped-in real certificate (``tls.source:
file``), and then there is no local CA key to sign with; and a CA that signs only these
two keeps everything else it may ever sign from opening the exporter.

Why not nginx with basic auth in front, as for the nginx exporter: Prometheus would then
reach Redis' metrics through nginx, and an nginx outage would page ``RedisDown``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from ocean import tls

CLIENT_NAME = "ocean-scraper"
CLIENT_DAYS = tls.SERVER_DAYS


@dataclass(frozen=True)
class ScrapeTls:
    """Where one stack's scrape PKI lives (``<state>/tls/scrape``)."""

    directory: Path

    @property
    def files(self) -> tls.TlsFiles:
        """The CA and the exporter's server certificate (tls.TlsFiles' names)."""
        return tls.TlsFiles(self.directory)

    @property
    def ca_cert(self) -> Path:
        return self.files.ca_cert

    @property
    def server_cert(self) -> Path:
        return self.files.cert

    @property
    def server_key(self) -> Path:
        return self.files.key

    @property
    def client_cert(self) -> Path:
        return self.directory / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.directory / "client.key"


def ensure(scrape: ScrapeTls, hosts: list[str], now: dt.datetime | None = None) -> str:
    """Make whatever is missing or due (keys 0600); returns what was done."""
    now = now or dt.datetime.now(dt.UTC)
    done = [] if (d := tls.ensure(scrape.files, hosts, now)) == "certificates valid" else [d]
    if _client_due(scrape, now):
        tls.issue_client(
            scrape.files,
            CLIENT_NAME,
            scrape.client_cert,
            scrape.client_key,
            now,
            now + dt.timedelta(days=CLIENT_DAYS),
        )
        done.append("client certificate issued")
    return ", ".join(done) or "certificates valid"


def _client_due(scrape: ScrapeTls, now: dt.datetime) -> bool:
    if not scrape.client_cert.exists() or not scrape.client_key.exists():
        return True
    cert = x509.load_pem_x509_certificate(scrape.client_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(scrape.ca_cert.read_bytes())
    try:  # a CA made again (files wiped) no longer vouches for the old client
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return True
    return cert.not_valid_after_utc - now < tls.RENEW_BEFORE
