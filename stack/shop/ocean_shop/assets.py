"""Fingerprinted static assets: `shop.css` is served as `shop.<hash>.css`.

The hash is the first 12 hex digits of the file's SHA-256, so a changed file gets a
new name and every name can be cached for a year (`immutable`): a page only ever
asks for the names its own version knows. At startup the shop publishes its files
under those names into SHOP_STATIC_DIR (`<dir>/static/<name>`), where nginx serves
them from disk. Names never collide across versions, so a blue and a green of
different versions publish side by side and old pages keep their assets during a
deploy. The shop also serves them itself (`GET /static/{name}`), for nginx's
fallback and for clients that reach a color directly.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).parent / "static"
HASH_LENGTH = 12
# One year, never revalidated: the name changes whenever the content does.
IMMUTABLE = "public, max-age=31536000, immutable"
MEDIA_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


def fingerprint(name: str, content: bytes) -> str:
    """`shop.css` + content → `shop.<first 12 hex digits of sha256>.css`."""
    stem, dot, ext = name.rpartition(".")
    digest = hashlib.sha256(content).hexdigest()[:HASH_LENGTH]
    return f"{stem}.{digest}.{ext}" if dot else f"{name}.{digest}"


@dataclass(frozen=True, slots=True)
class Asset:
    name: str  # fingerprinted
    content: bytes
    media_type: str


class Assets:
    """The manifest (source name → fingerprinted name) and the files' contents."""

    def __init__(self, source: Path = SOURCE) -> None:
        self.manifest: dict[str, str] = {}
        self.files: dict[str, Asset] = {}
        for path in sorted(source.iterdir()):
            if not path.is_file() or path.name.startswith("."):
                continue
            content = path.read_bytes()
            name = fingerprint(path.name, content)
            media_type = MEDIA_TYPES.get(path.suffix, "application/octet-stream")
            self.manifest[path.name] = name
            self.files[name] = Asset(name, content, media_type)

    def url(self, name: str) -> str:
        """The URL of a source file's current version (KeyError for an unknown file)."""
        return f"/static/{self.manifest[name]}"

    def publish(self, directory: Path) -> int:
        """Write every fingerprinted file into `directory`/static (readable by nginx).

        Existing names are left alone (same name, same content); returns how many
        files were written.
        """
        target = Path(directory) / "static"
        target.mkdir(parents=True, exist_ok=True)
        # Nobody else's to read on this machine (the state dir is private, issue 25):
        # nginx's workers read them through the ACL the toolkit set on the directory.
        os.chmod(target, 0o750)  # nosec B103  # a directory; nothing for others
        written = 0
        for asset in self.files.values():
            path = target / asset.name
            if path.exists():
                continue
            fd, tmp = tempfile.mkstemp(dir=target, prefix=f".{asset.name}.")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(asset.content)
                os.chmod(tmp, 0o640)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            written += 1
        return written
