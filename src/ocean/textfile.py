"""The toolkit's own metrics, exposed through node exporter's textfile collector.

Each producer (deploy, backup, restore test, load test) owns one ``*.prom`` file in the
stack's textfile dir (``{state}/data/textfile``, passed to node exporter with
``--collector.textfile.directory``). A file is rewritten whole, atomically (temp file +
rename, the temp name not ending in ``.prom``), so node exporter never reads half of it.

Files that carry a label (a color, a scenario) keep the other labels' samples: writing
the blue deploy does not forget green's.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from ocean.config import Settings

# name → (type, help)
METRICS: dict[str, tuple[str, str]] = {
    "ocean_deploy_last_timestamp_seconds": (
        "gauge",
        "Unix time of the last deploy of a color, by outcome.",
    ),
    "ocean_deploy_info": ("gauge", "The version last deployed to a color (always 1)."),
    "ocean_deploy_duration_seconds": (
        "gauge",
        "How long the last deploy of a color took, by outcome.",
    ),
    "ocean_backup_last_success_timestamp_seconds": (
        "gauge",
        "Unix time of the last successful backup.",
    ),
    "ocean_backup_size_bytes": ("gauge", "Size of the last successful backup in bytes."),
    "ocean_backup_duration_seconds": ("gauge", "How long the last successful backup took."),
    "ocean_restore_test_success": ("gauge", "Whether the last restore test passed (1) or not (0)."),
    "ocean_restore_test_timestamp_seconds": ("gauge", "Unix time of the last restore test."),
    "ocean_restore_test_duration_seconds": ("gauge", "How long the last restore test took."),
    "ocean_loadtest_passed": (
        "gauge",
        "Whether the last load test of a scenario passed (0: failed or inconclusive).",
    ),
    "ocean_loadtest_p99_seconds": ("gauge", "p99 latency of the last load test of a scenario."),
    "ocean_loadtest_rps": ("gauge", "Requests per second of the last load test of a scenario."),
    "ocean_loadtest_timestamp_seconds": ("gauge", "Unix time of the last load test of a scenario."),
    "ocean_page_load_p95_seconds": (
        "gauge",
        "p95 of the last browser run's page timings, by page and metric (fcp, lcp, load).",
    ),
    "ocean_page_load_timestamp_seconds": ("gauge", "Unix time of the last browser run."),
}

Labels = tuple[tuple[str, str], ...]
Samples = dict[str, dict[Labels, float]]

_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)\s*$")
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def textfile_dir(settings: Settings) -> Path:
    """The directory node exporter's textfile collector reads."""
    return settings.data / "textfile"


def record_deploy(
    settings: Settings,
    color: str,
    version: str,
    outcome: str,
    at: float | None = None,
    duration_s: float | None = None,
) -> Path:
    """A deploy of ``color`` ended with ``outcome`` (e.g. success, failed, rolled_back)."""
    at = time.time() if at is None else at
    samples = _read(_path(settings, "deploy"))
    stamps = samples.setdefault("ocean_deploy_last_timestamp_seconds", {})
    stamps[_labels(color=color, outcome=outcome)] = at
    if duration_s is not None:
        durations = samples.setdefault("ocean_deploy_duration_seconds", {})
        durations[_labels(color=color, outcome=outcome)] = round(duration_s, 3)
    if outcome == "success":
        info = samples.setdefault("ocean_deploy_info", {})
        for key in [k for k in info if dict(k).get("color") == color]:
            del info[key]  # one version per color: the one deployed last
        info[_labels(color=color, version=version)] = 1
    return write(settings, "deploy", samples)


def record_backup(
    settings: Settings,
    label: str,
    size_bytes: int,
    success: bool,
    at: float | None = None,
    duration_s: float | None = None,
) -> Path:
    """A backup named ``label`` finished; only a success moves the metrics.

    ``label`` is not a metric label (one series per backup would grow forever).

    A failed backup leaves the last success's timestamp as it is, which is what the
    "backup too old" alert measures.
    """
    at = time.time() if at is None else at
    path = _path(settings, "backup")
    samples = _read(path)
    if success:
        samples = {
            "ocean_backup_last_success_timestamp_seconds": {(): at},
            "ocean_backup_size_bytes": {(): float(size_bytes)},
        }
        if duration_s is not None:
            samples["ocean_backup_duration_seconds"] = {(): round(duration_s, 3)}
    return write(settings, "backup", samples)


def record_restore_test(
    settings: Settings, success: bool, seconds: float, at: float | None = None
) -> Path:
    """A restore test ran for ``seconds`` and passed or not."""
    at = time.time() if at is None else at
    return write(
        settings,
        "restore_test",
        {
            "ocean_restore_test_success": {(): 1.0 if success else 0.0},
            "ocean_restore_test_timestamp_seconds": {(): at},
            "ocean_restore_test_duration_seconds": {(): seconds},
        },
    )


def record_loadtest(
    settings: Settings,
    scenario: str,
    passed: bool,
    p99_seconds: float,
    rps: float,
    at: float | None = None,
) -> Path:
    """A load test of ``scenario`` ended; other scenarios' last results are kept."""
    at = time.time() if at is None else at
    samples = _read(_path(settings, "loadtest"))
    key = _labels(scenario=scenario)
    for name, value in (
        ("ocean_loadtest_passed", 1.0 if passed else 0.0),
        ("ocean_loadtest_p99_seconds", p99_seconds),
        ("ocean_loadtest_rps", rps),
        ("ocean_loadtest_timestamp_seconds", at),
    ):
        samples.setdefault(name, {})[key] = value
    return write(settings, "loadtest", samples)


def record_page_load(
    settings: Settings,
    p95_ms: Mapping[str, Mapping[str, float]],
    at: float | None = None,
) -> Path:
    """A browser run ended: ``p95_ms`` is page → metric (fcp, lcp, load) → p95 in ms.

    The whole file is replaced: it holds the last run only.
    """
    samples: Samples = {"ocean_page_load_p95_seconds": {}, "ocean_page_load_timestamp_seconds": {}}
    for page, figures in p95_ms.items():
        for metric, value in figures.items():
            key = _labels(page=page, metric=metric)
            samples["ocean_page_load_p95_seconds"][key] = value / 1000
    samples["ocean_page_load_timestamp_seconds"][()] = time.time() if at is None else at
    return write(settings, "page_load", samples)


def write(settings: Settings, producer: str, samples: Mapping[str, Mapping[Labels, float]]) -> Path:
    """Replace ``{producer}.prom`` with ``samples`` (name → labels → value), atomically."""
    path = _path(settings, producer)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = render(samples)
    # The temp file must not end in .prom: node exporter would read it half-written.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{producer}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)  # node exporter runs as us (as root in its container)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def render(samples: Mapping[str, Mapping[Labels, float]]) -> str:
    """Prometheus text exposition of ``samples``, with HELP and TYPE for each metric."""
    lines: list[str] = []
    for name in sorted(samples):
        if not samples[name]:
            continue
        kind, help_text = METRICS[name]
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for labels, value in sorted(samples[name].items()):
            body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            selector = f"{name}{{{body}}}" if body else name
            lines.append(f"{selector} {_number(value)}")
    return "\n".join(lines) + "\n" if lines else ""


def _path(settings: Settings, producer: str) -> Path:
    if not re.fullmatch(r"[a-z0-9_]+", producer):
        raise ValueError(f"bad producer name {producer!r}")
    return textfile_dir(settings) / f"ocean_{producer}.prom"


def _labels(**labels: str) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def _number(value: float) -> str:
    value = float(value)
    if math.isfinite(value) and value == int(value):
        return str(int(value))
    return {math.inf: "+Inf", -math.inf: "-Inf"}.get(value, repr(value))


def _read(path: Path) -> Samples:
    """The samples of one of our own files (empty when it does not exist yet)."""
    samples: Samples = {}
    try:
        text = path.read_text()
    except FileNotFoundError:
        return samples
    for line in text.splitlines():
        match = _SAMPLE_RE.match(line)
        if not match or line.startswith("#") or match.group(1) not in METRICS:
            continue
        name, raw_labels, value = match.groups()
        labels = tuple(sorted((k, _unescape(v)) for k, v in _LABEL_RE.findall(raw_labels or "")))
        samples.setdefault(name, {})[labels] = float(value)
    return samples
