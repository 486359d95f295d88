"""The stack's certificates (ocean/tls.py) and access material (ocean/access.py)."""

from __future__ import annotations

import datetime as dt
import json
import re
import ssl
import stat

import bcrypt
import pytest
import yaml
from cryptography import x509

from ocean import access, secrets, tls
from ocean.config import REPO_ROOT
from ocean.stackspec.context import RATE_LIMITS
from ocean.validate.rendering import rendering

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_ensure_makes_a_ca_and_a_server_certificate_with_private_keys(tmp_path):
    files = tls.TlsFiles(tmp_path / "tls")
    assert tls.ensure(files, ["127.0.0.1"], NOW) == "local CA made, server certificate issued"
    assert mode(files.ca_key) == 0o600 and mode(files.key) == 0o600
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert cert.not_valid_after_utc - NOW == dt.timedelta(days=tls.SERVER_DAYS)
    # A client that trusts only the CA accepts the chain (Python's own verifier).
    context = ssl.create_default_context(cafile=str(files.ca_cert))
    assert context.get_ca_certs()[0]["subject"][0][0][1] == "Ocean Ops"
    assert tls.ensure(files, ["127.0.0.1"], NOW) == "certificates valid"


def test_a_certificate_near_its_end_or_for_another_host_is_issued_again(tmp_path):
    files = tls.TlsFiles(tmp_path / "tls")
    tls.ensure(files, ["127.0.0.1"], NOW)
    first = files.cert.read_bytes()
    later = NOW + dt.timedelta(days=tls.SERVER_DAYS) - tls.RENEW_BEFORE + dt.timedelta(days=1)
    assert tls.ensure(files, ["127.0.0.1"], later) == "server certificate issued"
    assert files.cert.read_bytes() != first
    assert tls.ensure(files, ["127.0.0.2"], later) == "server certificate issued"


def test_a_dropped_in_certificate_is_kept_even_when_due(tmp_path):
    other = tls.TlsFiles(tmp_path / "elsewhere")
    tls.ensure(other, ["127.0.0.1"], NOW)
    tls.issue_server(other, ["127.0.0.1"], NOW, NOW + dt.timedelta(days=3))
    files = tls.TlsFiles(tmp_path / "tls")
    files.directory.mkdir()
    files.cert.write_bytes(other.cert.read_bytes())
    files.key.write_bytes(other.key.read_bytes())
    assert tls.ensure(files, ["127.0.0.1"], NOW) == "certificate provided (kept as is)"
    assert files.cert.read_bytes() == other.cert.read_bytes()
    assert not files.ca_key.exists()


def test_expiry_and_pin_of_a_certificate(tmp_path):
    files = tls.TlsFiles(tmp_path / "tls")
    tls.ensure(files, ["127.0.0.1"], NOW)
    tls.issue_server(files, ["127.0.0.1"], NOW, NOW + dt.timedelta(days=10))
    assert tls.not_after(files.cert) == NOW + dt.timedelta(days=10)
    pin = tls.spki_sha256(files.cert)
    assert len(pin) == 44 and pin.endswith("=")


def test_bcrypt_hash_is_made_once_and_verifies(tmp_path):
    cache = tmp_path / "ops.bcrypt"
    made = access.bcrypt_hash("s3cret-value", cache)
    assert bcrypt.checkpw(b"s3cret-value", made.encode())
    assert mode(cache) == 0o600
    assert access.bcrypt_hash("s3cret-value", cache) == made  # cached
    assert access.bcrypt_hash("another", cache) != made  # a changed password
    assert "s3cret-value" not in cache.read_text()


def test_web_config_and_htpasswd_hold_the_hash_only():
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()
    config = yaml.safe_load(access.web_config(hashed))
    assert config == {"basic_auth_users": {access.OPS_USER: hashed}}
    assert access.htpasswd(hashed) == f"{access.OPS_USER}:{hashed}\n"


def test_redis_acl_carries_hashes_and_limits_the_shop_and_exporter(tmp_path):
    values = secrets.load_or_create(tmp_path / "secrets.env")
    lines = access.redis_acl(values)
    text = "\n".join(lines)
    for name in ("REDIS_PASSWORD", "REDIS_SHOP_PASSWORD", "REDIS_EXPORTER_PASSWORD"):
        assert values[name] not in text
    by_user = {line.split()[1]: line for line in lines}
    assert set(by_user) == {"default", "shop", "exporter", "replica"}
    assert "-@admin" in by_user["shop"] and "-@dangerous" in by_user["shop"]
    assert "-@all" in by_user["exporter"].split()  # nothing but what is listed
    assert "~" not in by_user["exporter"]  # no key access


def test_redis_acl_least_privilege_for_the_exporter_and_replication(tmp_path):
    """Issue 25: the exporter read `masterauth` with CONFIG GET, and every user with
    +@all could ask the master for a full copy (PSYNC/SYNC)."""
    lines = access.redis_acl(secrets.load_or_create(tmp_path / "secrets.env"))
    by_user = {line.split()[1]: line.split()[3:] for line in lines}
    granted = {user: {w for w in words if w.startswith("+")} for user, words in by_user.items()}
    assert granted["exporter"] == set(access.EXPORTER_COMMANDS)
    assert not any(w.startswith("+config") or w.startswith("+@") for w in granted["exporter"])
    assert granted["replica"] == {"+psync", "+replconf", "+ping"}
    assert not any(w.startswith(("~", "&", "%")) for w in by_user["replica"] + by_user["exporter"])
    assert {"-psync", "-sync"} <= set(by_user["default"])
    assert {"-@admin", "-@dangerous"} <= set(by_user["shop"])  # PSYNC and SYNC are both


def test_the_exporter_password_file_names_only_the_given_targets():
    targets = ["redis://127.0.0.1:18030", "redis://127.0.0.1:18031"]
    text = access.redis_exporter_passwords(targets, "pw")
    assert json.loads(text) == {targets[0]: "pw", targets[1]: "pw"}


def test_the_scrape_htpasswd_is_the_operators_at_the_lowest_bcrypt_cost(tmp_path):
    line = access.scrape_htpasswd("secret-pw", tmp_path / "cache")
    user, hashed = line.strip().split(":", 1)
    assert user == access.OPS_USER
    assert hashed.startswith(f"$2b${access.SCRAPE_BCRYPT_ROUNDS:02d}$")
    assert bcrypt.checkpw(b"secret-pw", hashed.encode())
    assert "secret-pw" not in (tmp_path / "cache").read_text()


def test_secrets_file_has_every_new_secret_and_is_private(tmp_path):
    path = tmp_path / "secrets.env"
    values = secrets.load_or_create(path)
    for name in ("REDIS_PASSWORD", "OPS_PASSWORD", "TRAFFIC_TOKEN", "SHOP_ADMIN_TOKEN"):
        assert len(values[name]) >= 32
    assert mode(path) == 0o600


@pytest.fixture(scope="module")
def rendered():
    with rendering(REPO_ROOT) as r:
        yield r, r.render("stack/nginx/nginx.conf")


def test_nginx_serves_tls_12_13_only_with_hsts_and_redirects_plain_http(rendered):
    r, conf = rendered
    ports = r.settings.ports
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf
    assert f"listen 127.0.0.1:{ports['nginx']} ssl http2;" in conf
    assert f"return 308 https://$host:{ports['nginx']}$request_uri;" in conf
    assert 'Strict-Transport-Security "max-age=31536000" always' in conf
    for cipher in conf.split("ssl_ciphers ")[1].split(";")[0].split(":"):
        assert cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher)


def test_nginx_guards_operator_endpoints_and_rate_limits_the_api(rendered):
    _, conf = rendered
    for location in ("/prometheus/", "/alertmanager/"):
        block = conf.split(f"location {location} {{")[1].split("}")[0]
        assert 'auth_basic "Ocean Ops";' in block
        assert "auth_basic_user_file" in block and "limit_req zone=sensitive" in block
    assert "limit_req_status 429;" in conf
    assert "location ~ ^/(api/)?checkout$" in conf
    api = conf.split("location /api/ {")[1].split("}")[0]
    assert "limit_req zone=api" in api
    assert "client_max_body_size 1m;" in conf


def test_nginx_rate_limits_the_storefront_pages_in_a_zone_of_their_own(rendered):
    """Issue 25, Medium 8: the HTML pages had no limit. Their location matches every
    page route of the shop (stack/shop/ocean_shop/pages.py) and none of the API, the
    static assets or the paths health checks and deploys poll without the token."""
    _, conf = rendered
    zone = re.search(r"limit_req_zone \$ocean_limit_key zone=pages:\S+ rate=(\d+)r/s;", conf)
    assert zone and int(zone[1]) == int(RATE_LIMITS["pages"]["rate"].removesuffix("r/s"))
    match = re.search(r"location ~ (\S+) \{\n\s+limit_req zone=pages burst=(\d+) nodelay;", conf)
    assert match, "no location limits zone=pages"
    assert int(match[2]) == RATE_LIMITS["pages"]["burst"]
    pages = re.compile(match[1])
    for path in (
        "/",
        "/search",
        "/cart",
        "/cart/items",
        "/categories/diving",
        "/categories/Fins & Masks/2?",  # nginx matches the decoded URI: %2F is a slash
        "/products/6",
        "/orders/12",
    ):
        assert pages.search(path), path
    for path in (
        "/api/search",
        "/api/carts/abc",
        "/api/products/1",
        "/checkout",  # limited as checkout (zone=sensitive)
        "/static/shop.0123456789ab.css",
        "/healthz",
        "/readyz",
        "/version",
        "/metrics",
        "/ws/orders/1",
        "/prometheus/",
        "/searchx",
        "/cartoon",
    ):
        assert not pages.search(path), path
    # Every other zone the template names is defined, with its rate and burst rendered.
    assert set(re.findall(r"limit_req zone=(\w+) burst=\d+ nodelay;", conf)) == set(RATE_LIMITS)


def test_an_environments_certificate_files_are_installed_and_checked(tmp_path):
    """tls.source: file — the chain and key go where nginx reads them, the local CA's
    key goes, clients trust the system roots plus the chain's issuers; a key of another
    certificate or a missing file is refused, naming the setting."""
    issuer = tls.TlsFiles(tmp_path / "issuer")
    tls.ensure(issuer, ["127.0.0.1"], NOW)
    chain = tmp_path / "shop.crt"
    chain.write_text(issuer.cert.read_text() + issuer.ca_cert.read_text())
    bundle = tmp_path / "roots.pem"
    bundle.write_text("# the system roots\n")
    files = tls.TlsFiles(tmp_path / "tls")
    tls.ensure(files, ["127.0.0.1"], NOW)  # a stack that had a generated certificate
    done = tls.install_provided(files, chain, issuer.key, bundle)
    assert done.endswith("(installed)")
    assert files.cert.read_text() == chain.read_text()
    assert mode(files.key) == 0o600 and files.key.read_bytes() == issuer.key.read_bytes()
    assert not files.ca_key.exists()
    assert files.ca_cert.read_text() == "# the system roots\n" + issuer.ca_cert.read_text()
    assert tls.ensure(files, ["127.0.0.1"], NOW) == "certificate provided (kept as is)"
    assert tls.install_provided(files, chain, issuer.key, bundle).endswith("(same)")
    with pytest.raises(ValueError, match="is not the key of"):
        tls.install_provided(files, chain, _other_key(tmp_path), bundle)
    with pytest.raises(ValueError, match=r"tls.cert_file .*missing.crt does not exist"):
        tls.install_provided(files, tmp_path / "missing.crt", issuer.key, bundle)


def _other_key(tmp_path):
    other = tls.TlsFiles(tmp_path / "other")
    tls.ensure(other, ["127.0.0.1"], NOW)
    return other.key
