"""Render the service configs in stack/ and monitoring/ (Jinja templates shared by runtimes)."""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import Any

import jinja2

from ocean.config import REPO_ROOT

_ENV = jinja2.Environment(  # nosec B701  # renders configs (nginx, redis …), not HTML
    loader=jinja2.FileSystemLoader(str(REPO_ROOT)),
    undefined=jinja2.StrictUndefined,  # a missing value is a bug, never an empty string
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,
)


@functools.cache
def _environment(root: Path) -> jinja2.Environment:
    """The same environment, loading templates from another checkout (validation fixtures)."""
    return _ENV if root == REPO_ROOT else _ENV.overlay(loader=jinja2.FileSystemLoader(str(root)))


def render(template: str, context: dict[str, Any], root: Path = REPO_ROOT) -> str:
    """Render ``template`` (a path relative to ``root``, the repo root) with ``context``."""
    return _environment(Path(root)).get_template(template).render(**context)


def write_atomic(path: Path, text: str, mode: int = 0o640, group: int | None = None) -> bool:
    """Write ``text`` to ``path`` via a temp file and rename; return whether it changed.

    Readers (nginx reload, Prometheus file_sd) never see a half-written file. No file is
    readable by other users (issue 25, Medium 4): 0640 is a config without secrets (a
    backup takes those: runtime/local_backup.py), 0600 one with secrets; ``group`` (a
    gid) is the service's that reads it when it runs as another user.
    """
    try:
        if path.read_text() == text:
            os.chmod(path, mode)
            if group is not None:
                os.chown(path, -1, group)
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        if group is not None:
            os.chown(tmp, -1, group)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
