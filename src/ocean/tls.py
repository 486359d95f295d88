"""The stack's certificates: a local CA and the server certificate nginx presents.

On first `up` the runtime makes a CA (10 years) and a server certificate for the
stack's host (about a year) below ``<state>/tls/``; private keys are 0600. A real
certificate can be dropped in instead: put ``server.crt`` (the chain, leaf first) and
``server.key`` there and delete ``ca.key``; a certificate the local CA did not sign
is never replaced, only reported. Clients of ours trust ``ca.crt`` (for a dropped-in
certificate, put its issuing CA there, or the system bundle).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ocean.fsys import private_dir
from ocean.render import write_atomic

SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CA_DAYS = 3650
SERVER_DAYS = 397  # what browsers accept for a server certificate
# A certificate of ours this close to its end is made again on `up`.
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    """Where one stack's TLS material lives."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def key(self) -> Path:
        return self.directory / "server.key"


def ensure(files: TlsFiles, hosts: list[str], now: dt.datetime | None = None) -> str:
    """Make whatever is missing or due; returns what was done (for a Step's detail)."""
    now = now or dt.datetime.now(dt.UTC)
    # Private like the whole state dir (issue 25): certificates 0640, keys 0600.
    private_dir(files.directory)
    done = []
    if not files.ca_cert.exists() and not files.cert.exists():
        _write_ca(files, now)
        done.append("local CA made")
    if files.cert.exists() and not _ours(files):
        return "certificate provided (kept as is)"
    if not files.cert.exists() or _due(files.cert, hosts, now):
        if not files.ca_key.exists():
            raise ValueError(f"{files.cert} is due but {files.ca_key} is gone: replace it")
        issue_server(files, hosts, now, now + dt.timedelta(days=SERVER_DAYS))
        done.append("server certificate issued")
    return ", ".join(done) or "certificates valid"


def issue_server(
    files: TlsFiles, hosts: list[str], not_before: dt.datetime, not_after: dt.datetime
) -> None:
    """A server certificate for ``hosts`` signed by the local CA, valid in that window."""
    names = [_san(host) for host in dict.fromkeys([*hosts, "localhost"])]
    _issue(
        files,
        hosts[0],
        x509.SubjectAlternativeName(names),
        ExtendedKeyUsageOID.SERVER_AUTH,
        (files.cert, files.key),
        (not_before, not_after),
    )


def issue_client(
    files: TlsFiles,
    name: str,
    cert: Path,
    key: Path,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> None:
    """A client certificate (clientAuth only: it opens no server) named ``name``, signed
    by the local CA, for a listener that requires one (mutual TLS)."""
    _issue(files, name, None, ExtendedKeyUsageOID.CLIENT_AUTH, (cert, key), (not_before, not_after))


def _issue(
    files: TlsFiles,
    common_name: str,
    sans: x509.SubjectAlternativeName | None,
    usage: x509.ObjectIdentifier,
    out: tuple[Path, Path],
    window: tuple[dt.datetime, dt.datetime],
) -> None:
    ca_key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(window[0] - dt.timedelta(minutes=5))
        .not_valid_after(window[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if sans is not None:
        builder = builder.add_extension(sans, critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    cert_path, key_path = out
    write_atomic(key_path, _key_pem(key), mode=0o600)
    write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM).decode(), mode=0o640)


def install_provided(
    files: TlsFiles, cert_file: Path, key_file: Path, system_bundle: Path = SYSTEM_BUNDLE
) -> str:
    """A real certificate (an environment's ``tls.source: file``) where nginx reads it.

    ``cert_file`` is the chain, leaf first; ``key_file`` its private key (copied 0600).
    The local CA's key goes, so nothing is ever issued over it, and ``ca.crt`` becomes
    what our clients should trust for it: the system's roots plus the chain's issuers.
    Raises ValueError (naming the file) when a file is missing, unreadable or the key
    does not belong to the certificate.
    """
    for path, setting in ((cert_file, "tls.cert_file"), (key_file, "tls.key_file")):
        if not path.is_file():
            raise ValueError(f"{setting} {path} does not exist")
    chain = x509.load_pem_x509_certificates(cert_file.read_bytes())
    try:
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"tls.key_file {key_file} is not an unencrypted PEM key: {exc}") from None
    if _public_pem(key.public_key()) != _public_pem(chain[0].public_key()):
        raise ValueError(f"tls.key_file {key_file} is not the key of {cert_file}")
    private_dir(files.directory)
    changed = write_atomic(files.cert, cert_file.read_text(), mode=0o640)
    changed += write_atomic(files.key, key_file.read_text(), mode=0o600)
    files.ca_key.unlink(missing_ok=True)
    issuers = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain[1:])
    roots = system_bundle.read_text() if system_bundle.is_file() else ""
    write_atomic(files.ca_cert, roots + issuers, mode=0o640)
    return f"certificate from {cert_file} ({'installed' if changed else 'same'})"


def not_after(path: Path) -> dt.datetime:
    return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc


def spki_sha256(path: Path) -> str:
    """base64 SHA-256 of the certificate's public key (Chromium's SPKI pin format)."""
    import base64

    cert = x509.load_pem_x509_certificate(path.read_bytes())
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(der)
    return base64.b64encode(digest.finalize()).decode()


def _write_ca(files: TlsFiles, now: dt.datetime) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ocean Ops"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Ocean Ops local CA {now:%Y%m%d%H%M%S}"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_atomic(files.ca_key, _key_pem(key), mode=0o600)
    write_atomic(files.ca_cert, cert.public_bytes(serialization.Encoding.PEM).decode(), mode=0o640)


def _ours(files: TlsFiles) -> bool:
    """Whether the server certificate was issued by the local CA (so it may be renewed)."""
    if not files.ca_cert.exists() or not files.ca_key.exists():
        return False
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    return cert.issuer == ca.subject


def _due(path: Path, hosts: list[str], now: dt.datetime) -> bool:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    if cert.not_valid_after_utc - now < RENEW_BEFORE:
        return True
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return True
    present = {str(v) for v in sans.get_values_for_type(x509.IPAddress)}
    present |= set(sans.get_values_for_type(x509.DNSName))
    return not set(hosts) <= present


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _public_pem(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
