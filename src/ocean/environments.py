"""Environments (dev, staging, prod) from one definition: stack/environments/base.yaml
plus one overlay per environment, merged and checked against a strict schema.

An overlay may only name keys the base defines, with values of the base's type (and
the few constraints below): a typo must fail loudly, naming the environment, the file
and the key, rather than silently leave a production knob at its default. Secrets never
live in these files (the schema has no place for them); they come from the process
environment or the stack's 0600 secrets file.

The schema is ``ocean.environments_schema``. ``load(name)`` gives the
:class:`Environment` the toolkit runs with (``Settings.from_env`` applies OCEAN_*
variables on top); ``problems(root)`` is what ``invoke validate`` reports.
No invoke/textual imports here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ocean import freeze
from ocean.durations import parse_duration
from ocean.environments_schema import SCHEMA, check_shape, consistency
from ocean.errors import OceanError

DEFINITIONS = Path("stack/environments")  # below the checkout root
BASE = "base"
DEFAULT_ENV = "dev"
NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


def definitions_dir(root: Path) -> Path:
    """Where the definitions are: OCEAN_ENV_DIR (out-of-tree definitions, tests), or
    stack/environments of the checkout at ``root``."""
    override = os.environ.get("OCEAN_ENV_DIR")
    return Path(override).absolute() if override else root / DEFINITIONS


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition: ``key`` is dotted (``deploy.analysis_window``)."""

    env: str
    file: Path
    key: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        key = f" key {self.key!r}:" if self.key else ""
        return f"environment {self.env!r} ({where}):{key} {self.message}"


# -- loading and merging -------------------------------------------------------------------


def merge(base: dict, overlay: dict) -> dict:
    """``overlay`` over ``base``: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def leaves(data: dict, prefix: str = "") -> dict[str, Any]:
    """{dotted key: value} of every non-mapping value."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def names(root: Path, folder: Path | None = None) -> list[str]:
    """The environments defined in ``folder`` (default: ``definitions_dir(root)``):
    every YAML file but the base."""
    folder = folder or definitions_dir(root)
    found = {p.stem for p in folder.glob("*.yaml") if p.stem != BASE}
    return sorted(found)


def _read(env: str, path: Path) -> tuple[dict, str]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise _Broken(Problem(env, path, "", f"cannot be read ({exc.strerror})")) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise _Broken(Problem(env, path, "", f"is not YAML: {exc}", line)) from None
    return (data if data is not None else {}), text


class _Broken(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass(frozen=True)
class Environment:
    """One environment's effective definition (base + overlay), before OCEAN_* variables."""

    name: str
    data: dict[str, Any]
    files: tuple[Path, ...] = ()
    # dotted key → the file that set it (the base or the overlay)
    sources: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, dotted: str) -> Any:
        value: Any = self.data
        for part in dotted.split("."):
            value = value[part]
        return value

    def seconds(self, dotted: str) -> float:
        return parse_duration(self[dotted], dotted)

    def path(self, dotted: str, root: Path) -> Path | None:
        """A path setting, relative ones below ``root``; None when empty."""
        raw = self[dotted]
        if not raw:
            return None
        path = Path(raw).expanduser()
        return path if path.is_absolute() else root / path

    @property
    def confirm_destructive(self) -> bool:
        return bool(self["guard_rails.confirm_destructive"])


def inspect(
    name: str, root: Path, folder: Path | None = None
) -> tuple[Environment | None, list[Problem]]:
    """Load environment ``name`` from the definitions in ``folder`` (default:
    ``definitions_dir(root)``): every problem found, and the Environment when none."""
    folder = folder or definitions_dir(root)
    if not NAME.match(name):
        return None, [Problem(name, folder, "", "is not an environment name (a-z, 0-9, -)")]
    base_path, path = folder / f"{BASE}.yaml", folder / f"{name}.yaml"
    if name == BASE or not path.is_file():
        known = ", ".join(names(root, folder)) or "none"
        return None, [Problem(name, path, "", f"is not defined (environments: {known})")]
    try:
        base, _ = _read(name, base_path)
        overlay, text = _read(name, path)
    except _Broken as broken:
        return None, [broken.problem]
    problems = [
        Problem(name, base_path, key, msg, _line_of(base_path.read_text(), key))
        for key, msg in check_shape(base)
    ]
    if problems:  # a broken base breaks every environment: say so once, from the base
        return None, problems
    problems = [
        Problem(name, path, key, msg, _line_of(text, key))
        for key, msg in check_shape(overlay, _schema_of(base))
    ]
    if problems:
        return None, problems
    data = merge(base, overlay)
    problems = [
        Problem(name, path, key, msg, _line_of(text, key)) for key, msg in consistency(data)
    ]
    if problems:
        return None, problems
    overlaid = set(leaves(overlay))
    problems = [
        Problem(name, path, key, msg, _line_of(text, key))
        if key in overlaid
        else Problem(name, base_path, key, msg, _line_of(base_path.read_text(), key))
        for key, msg in freeze.problems(
            data.get("deploy", {}).get("freeze", {}), freeze.rule_labels(root)
        )
    ]
    if problems:
        return None, problems
    sources = {key: (path.name if key in overlaid else base_path.name) for key in leaves(data)}
    return Environment(name, data, (base_path, path), sources), []


def _schema_of(base: dict) -> dict:
    """The schema, restricted to what the base defines (an overlay adds no new key)."""

    def restrict(schema: dict, data: dict) -> dict:
        out = {}
        for key, spec in schema.items():
            if key in data:
                out[key] = restrict(spec, data[key]) if isinstance(spec, dict) else spec
        return out

    return restrict(SCHEMA, base)


def load(name: str, root: Path) -> Environment:
    """Environment ``name``; OceanError naming the environment, file and key when broken."""
    env, problems = inspect(name, root)
    if env is None:
        more = f" (and {len(problems) - 1} more: `invoke validate --only environments`)"
        raise OceanError(str(problems[0]) + (more if len(problems) > 1 else ""))
    return env


def require_defined(name: str, root: Path) -> None:
    """OceanError unless ``name`` is a defined environment (without loading it: a task
    that reports broken definitions, like validate, must not stop at one)."""
    defined = names(root)
    if name not in defined:
        raise OceanError(
            f"environment {name!r} is not defined in {definitions_dir(root)} "
            f"(environments: {', '.join(defined) or 'none'})"
        )


def problems(root: Path, folder: Path | None = None) -> list[Problem]:
    """Every problem of every environment defined in ``folder`` (default:
    ``definitions_dir(root)``)."""
    folder = folder or definitions_dir(root)
    found: list[Problem] = []
    defined = names(root, folder)
    for name in defined:
        found.extend(inspect(name, root, folder)[1])
    if DEFAULT_ENV not in defined:
        found.append(
            Problem(
                DEFAULT_ENV,
                folder / f"{DEFAULT_ENV}.yaml",
                "",
                "is not defined: every task defaults to it",
            )
        )
    return found


def _line_of(text: str, dotted: str) -> int | None:
    """The 1-based line of ``dotted`` in YAML ``text`` (its deepest key found)."""
    if not dotted:
        return None
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in dotted.split("."):
        if not isinstance(node, yaml.MappingNode):
            break
        for key_node, value_node in node.value:
            if key_node.value == part:
                line = key_node.start_mark.line + 1
                node = value_node
                break
        else:
            break
    return line
