"""Validation of the Docker Compose files (issue 4; the files themselves come with the
compose runtime): ``stack/docker-compose*.yml`` and ``compose*.yml`` (``.yaml`` too, in
stack/ or at the repo root). No compose file: no finding.

- compose-schema       valid against the Compose Specification's JSON schema (vendored:
                       schemas/compose-spec.json, see schemas/README.md), via jsonschema.
- compose-healthcheck  every service has a healthcheck with a test (not disabled).
- compose-limits       every service has a memory and a CPU limit: deploy.resources.limits
                       (memory, cpus) or mem_limit / cpus.
- compose-env          every ``${VAR}`` (or ``$VAR``) is declared in ``.env.template``
                       (beside the compose file, else at the repo root).
- compose-secrets      no environment variable named like a secret (PASSWORD, SECRET,
                       TOKEN, KEY) has a literal value: it is ``${VAR}``, passed through
                       from the environment (no value), or a ``*_FILE`` pointing at a
                       secret the service mounts (/run/secrets/<name>). The message never
                       repeats the value.
- compose-images       every image is pinned: a tag other than ``latest``, or a digest;
                       services with ``build:`` are exempt.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ocean.model import Finding
from ocean.validate import yaml_nodes
from ocean.validate.core import check, missing_tool

KIND = "compose"
SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
COMPOSE_DIRS = ("stack", ".")
COMPOSE_PATTERNS = (
    "docker-compose.yml",
    "docker-compose.yaml",
    "docker-compose.*.yml",
    "docker-compose.*.yaml",
    "compose.yml",
    "compose.yaml",
    "compose.*.yml",
    "compose.*.yaml",
)
ENV_TEMPLATE = ".env.template"
# What the checks read (for the fuzz test, ocean.validate.core).
INPUTS = ("stack/docker-compose*.yml", f"stack/{ENV_TEMPLATE}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|KEY", re.IGNORECASE)
SECRETS_DIR = "/run/secrets/"
# Compose interpolation: $$ is a literal $; ${NAME}, ${NAME:-default}, ${NAME?err}, …, $NAME.
_ESCAPED = re.compile(r"\$\$")
_BRACED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?=[}:?+-])")
_BARE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_LITERAL_DEFAULT = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-[^}$]+\}")
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")

Path_ = tuple[str | int, ...]


@dataclass
class ComposeFile:
    path: Path
    rel: str
    data: dict[str, Any]
    lines: dict[Path_, int]  # key path → 1-based line of that key (or list item)

    def line(self, *path: str | int) -> int | None:
        """The line of ``path``, else of its longest prefix that has one."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def services(self) -> Iterator[tuple[str, dict[str, Any]]]:
        services = self.data.get("services")
        if isinstance(services, dict):
            for name, service in services.items():
                if isinstance(service, dict):
                    yield str(name), service


def compose_files(root: Path) -> list[Path]:
    found: set[Path] = set()
    for directory in COMPOSE_DIRS:
        for pattern in COMPOSE_PATTERNS:
            found.update(p for p in (root / directory).glob(pattern) if p.is_file())
    return sorted(found)


def _node_lines(
    node: yaml.Node, path: Path_ = (), above: frozenset[int] = frozenset()
) -> Iterator[tuple[Path_, int]]:
    # An alias may point at a node that holds it (`a: &x [*x]`): a node already on the
    # way down is not entered again, or the walk never ends (RecursionError).
    if id(node) in above:
        return
    above = above | {id(node)}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                here = (*path, key.value)
                yield here, key.start_mark.line + 1
                yield from _node_lines(value, here, above)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield (*path, index), item.start_mark.line + 1
            yield from _node_lines(item, (*path, index), above)


def _scalars(node: yaml.Node, above: frozenset[int] = frozenset()) -> Iterator[tuple[str, int]]:
    """(text, line) of every scalar value (not key): what compose interpolates (a node
    already on the way down, through an alias, is not entered again)."""
    if id(node) in above:
        return
    above = above | {id(node)}
    if isinstance(node, yaml.MappingNode):
        for _, value in node.value:
            yield from _scalars(value, above)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _scalars(item, above)
    elif isinstance(node, yaml.ScalarNode):
        yield node.value, node.start_mark.line + 1


def _load(root: Path, path: Path) -> tuple[ComposeFile, yaml.Node] | Finding:
    """The parsed file and its node tree, or the compose-schema error that it does not parse."""
    rel = path.relative_to(root).as_posix()

    def bad(line: int | None, message: str, hint: str = "") -> Finding:
        return Finding("compose-schema", KIND, "error", rel, line, message, hint)

    text = path.read_text()
    try:
        node = yaml_nodes.compose(text)
        data = yaml_nodes.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        first = f"invalid YAML: {exc}".splitlines()[0]
        return bad(mark.line + 1 if mark else None, first, "fix the YAML syntax")
    if not isinstance(data, dict) or node is None:
        return bad(1, "a compose file is a mapping (services:, volumes:, …)")
    return ComposeFile(path, rel, data, dict(_node_lines(node))), node


def _loaded(root: Path) -> Iterator[tuple[ComposeFile, yaml.Node]]:
    """The compose files that parse (compose-schema reports the others)."""
    for path in compose_files(root):
        loaded = _load(root, path)
        if not isinstance(loaded, Finding):
            yield loaded


# -- schema ---------------------------------------------------------------------------


@functools.cache
def _validator() -> Any:
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _unexpected(message: str) -> list[str]:
    """The keys an additional/unevaluatedProperties error names: "('a', 'b' were
    unexpected)" or "'a', 'b' do not match any of the regexes"."""
    match = re.search(r"\((.*) (?:was|were) unexpected\)", message) or re.match(
        r"(.*) (?:does|do) not match any of the regexes", message
    )
    return re.findall(r"'([^']*)'", match.group(1)) if match else []


def _schema_errors(validator: Any, data: dict[str, Any]) -> list[Any]:
    """The schema's errors, less the unevaluatedProperties ones that only echo an error
    inside one of the properties they name (draft 2020-12 reports both)."""
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    paths = [tuple(e.absolute_path) for e in errors]

    def echo(error: Any) -> bool:
        if error.validator != "unevaluatedProperties":
            return False
        here = tuple(error.absolute_path)
        return any(len(p) > len(here) and p[: len(here)] == here for p in paths)

    return [e for e in errors if not echo(e)]


@check(kind=KIND, name="compose-schema", inputs=INPUTS)
def compose_schema(root: Path) -> list[Finding]:
    """Each compose file is valid against the Compose Specification's JSON schema."""
    files = compose_files(root)
    if not files:
        return []
    try:
        validator = _validator()
    except ImportError:
        return [missing_tool("compose-schema", KIND, "jsonschema", "pip install -e '.[dev]'")]
    out = []
    for path in files:
        loaded = _load(root, path)
        if isinstance(loaded, Finding):
            out.append(loaded)
            continue
        compose, _ = loaded
        for error in _schema_errors(validator, compose.data):
            where = list(error.absolute_path)
            extra = _unexpected(error.message)
            line = compose.line(*where, extra[0]) if extra else compose.line(*where)
            at = "/".join(str(p) for p in where) or "top level"
            out.append(
                Finding(
                    "compose-schema",
                    KIND,
                    "error",
                    compose.rel,
                    line,
                    f"{at}: {error.message}"[:400],
                    "see the Compose Specification (src/ocean/validate/schemas/compose-spec.json)",
                )
            )
    return out


# -- per-service checks -----------------------------------------------------------------

# A judge looks at one service and yields its problems: (line, message, hint, severity).
Problem = tuple[int | None, str, str, str]


def _per_service(root: Path, check_name: str, judge: Any) -> list[Finding]:
    return [
        Finding(check_name, KIND, severity, compose.rel, line, message, hint)
        for compose, _ in _loaded(root)
        for name, service in compose.services()
        for line, message, hint, severity in judge(compose, name, service)
    ]


def _healthcheck(compose: ComposeFile, name: str, service: dict[str, Any]) -> Iterator[Problem]:
    healthcheck = service.get("healthcheck")
    line = compose.line("services", name, "healthcheck")
    if not isinstance(healthcheck, dict):
        problem = "has no healthcheck"
    elif healthcheck.get("disable") is True or healthcheck.get("test") in ("NONE", ["NONE"]):
        problem = "has its healthcheck disabled"
    elif not healthcheck.get("test"):
        problem = "has a healthcheck without a test"
    else:
        return
    hint = "healthcheck: {test: [CMD, …], interval: 5s, timeout: 3s, retries: 5}"
    yield line, f"service {name} {problem}", hint, "error"


@check(kind=KIND, name="compose-healthcheck", inputs=INPUTS)
def compose_healthcheck(root: Path) -> list[Finding]:
    """Every service has a healthcheck with a test, not disabled."""
    return _per_service(root, "compose-healthcheck", _healthcheck)


def _limits(compose: ComposeFile, name: str, service: dict[str, Any]) -> Iterator[Problem]:
    deploy = service.get("deploy")
    resources = deploy.get("resources") if isinstance(deploy, dict) else None
    limits = resources.get("limits") if isinstance(resources, dict) else None
    limits = limits if isinstance(limits, dict) else {}
    missing = [
        what
        for what, other in (("memory", "mem_limit"), ("cpus", "cpus"))
        if not (limits.get(what) or service.get(other))
    ]
    if missing:
        yield (
            compose.line("services", name),
            f"service {name} has no {' and no '.join(missing)} limit",
            "deploy: {resources: {limits: {memory: 256M, cpus: '0.5'}}}",
            "error",
        )


@check(kind=KIND, name="compose-limits", inputs=INPUTS)
def compose_limits(root: Path) -> list[Finding]:
    """Every service has a memory and a CPU limit (deploy.resources.limits, or
    mem_limit / cpus)."""
    return _per_service(root, "compose-limits", _limits)


def variables(text: str) -> list[str]:
    """The variables a compose value interpolates (defaults' own variables included)."""
    text = _ESCAPED.sub("", text)
    return _BRACED.findall(text) + _BARE.findall(text)


def declared_variables(path: Path) -> set[str]:
    return {
        match.group(1) for line in path.read_text().splitlines() if (match := _ENV_LINE.match(line))
    }


@check(kind=KIND, name="compose-env", inputs=INPUTS)
def compose_env(root: Path) -> list[Finding]:
    """Every variable a compose file interpolates is declared in .env.template."""
    out = []
    for compose, node in _loaded(root):
        template = next(
            (d / ENV_TEMPLATE for d in (compose.path.parent, root) if (d / ENV_TEMPLATE).is_file()),
            None,
        )
        declared = declared_variables(template) if template else set()
        where = template.relative_to(root).as_posix() if template else ENV_TEMPLATE
        undeclared = {
            (name, line)
            for text, line in _scalars(node)
            for name in variables(text)
            if name not in declared
        }
        out += [
            Finding(
                "compose-env",
                KIND,
                "error",
                compose.rel,
                line,
                f"${{{name}}} is not declared in {where}",
                f"add `{name}=` (with a comment saying what it is) to {where}",
            )
            for name, line in sorted(undeclared, key=lambda u: (u[1], u[0]))
        ]
    return out


def _environment(service: dict[str, Any]) -> Iterator[tuple[str, Any, str | int]]:
    """(name, value or None, key in the environment node) of a service's environment."""
    env = service.get("environment")
    if isinstance(env, dict):
        for key, value in env.items():
            yield str(key), value, str(key)
    elif isinstance(env, list):
        for index, item in enumerate(env):
            key, sep, value = str(item).partition("=")
            yield key, value if sep else None, index


def _secret_targets(service: dict[str, Any]) -> set[str]:
    """The paths of the secrets a service mounts (/run/secrets/<name> or its target)."""
    out = set()
    for entry in service.get("secrets") or []:
        if isinstance(entry, str):
            out.add(SECRETS_DIR + entry)
        elif isinstance(entry, dict) and entry.get("source"):
            target = str(entry.get("target") or entry["source"])
            out.add(target if target.startswith("/") else SECRETS_DIR + target)
    return out


def _secrets(compose: ComposeFile, name: str, service: dict[str, Any]) -> Iterator[Problem]:
    mounted = _secret_targets(service)
    for key, value, node_key in _environment(service):
        if not SECRET_NAME.search(key) or value is None:
            continue  # not a secret, or passed through from the environment
        text = str(value)
        line = compose.line("services", name, "environment", node_key)
        if variables(text):
            if not _LITERAL_DEFAULT.search(text):
                continue
            message = f"{key} has a literal default (a secret in the file)"
            hint = f"{key}: ${{{key}:?set {key}}} (fail when unset) instead of a default"
        elif key.upper().endswith("_FILE"):
            if text in mounted:
                continue
            message = f"{key} points at no secret the service mounts"
            hint = f"secrets: [name] on the service and {key}: {SECRETS_DIR}name"
        else:
            message = f"{key} has a literal value (a secret in the file)"
            hint = f"{key}: ${{{key}}} (declared in {ENV_TEMPLATE}), or {key}_FILE"
        yield line, f"service {name}: {message}", hint, "error"


@check(kind=KIND, name="compose-secrets", inputs=INPUTS)
def compose_secrets(root: Path) -> list[Finding]:
    """No secret-named environment variable has a literal value."""
    return _per_service(root, "compose-secrets", _secrets)


def _image(compose: ComposeFile, name: str, service: dict[str, Any]) -> Iterator[Problem]:
    if "build" in service:
        return
    image = str(service.get("image") or "")
    severity = "error"
    if not image:
        problem = "has neither an image nor a build"
    elif "@" in image:
        return  # pinned by digest
    else:
        last, _, tag = image.rpartition("/")[2].partition(":")
        if not tag and variables(last):
            problem = f"image {image} may or may not be pinned (a variable names it)"
            severity = "warning"
        elif not tag:
            problem = f"image {image} has no tag (that is :latest)"
        elif tag == "latest" or tag.endswith("-latest}"):
            problem = f"image {image} is :latest"
        else:
            return
    hint = "pin a version tag (image: name:1.2.3) or a digest (@sha256:…)"
    yield compose.line("services", name, "image"), f"service {name}: {problem}", hint, severity


@check(kind=KIND, name="compose-images", inputs=INPUTS)
def compose_images(root: Path) -> list[Finding]:
    """Every image is pinned by a tag other than latest (or a digest); build: exempts."""
    return _per_service(root, "compose-images", _image)
