"""The dependency audit (issue 25, Medium 13): pip-audit's "No known vulnerabilities
found" with every package skipped must fail as inconclusive, not pass.

Network rule: nothing here leaves loopback. The one test that runs the real pip-audit
routes every request through a proxy on 127.0.0.1:9 (nothing listens there), for
pip-audit's service queries (requests) and pip alike.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocean import depaudit

# Real shapes: printed by pip-audit 2.10.1's own JSON formatter (pip_audit._format.json).
CLEAN = (
    '{"dependencies": [{"name": "idna", "version": "3.10", "vulns": []}, {"name": "jinja2",'
    ' "version": "3.1.6", "vulns": []}], "fixes": []}'
)
SKIPPED = (
    '{"dependencies": [{"name": "idna", "skip_reason": "Dependency not found on PyPI and'
    ' could not be audited: idna (3.10)"}, {"name": "jinja2", "skip_reason": "Dependency'
    ' not found on PyPI and could not be audited: jinja2 (3.1.6)"}], "fixes": []}'
)
VULNS = (
    '{"dependencies": [{"name": "idna", "version": "3.10", "vulns": []}, {"name": "jinja2",'
    ' "version": "3.1.3", "vulns": [{"id": "GHSA-h75v-3vvj-5mfj", "fix_versions": ["3.1.4"],'
    ' "description": "Jinja vulnerable to HTML attribute injection"}]}], "fixes": []}'
)

LOOPBACK_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens, refused at once


def test_parse_clean_passes():
    report = depaudit.parse("toolkit", CLEAN)
    assert report.checked == ["idna", "jinja2"]
    assert report.skipped == [] and report.vulns == []
    code, lines = depaudit.verdict([report])
    assert code == 0
    assert lines == ["dependency audit: 2 packages checked, no known vulnerabilities"]


def test_parse_skipped_is_inconclusive():
    """What pip-audit reports here with exit 0 and "No known vulnerabilities found"."""
    report = depaudit.parse("toolkit", SKIPPED)
    assert report.checked == []
    assert [name for name, _ in report.skipped] == ["idna", "jinja2"]
    code, lines = depaudit.verdict([report])
    assert code == 2
    assert lines[-1].startswith(
        "dependency audit inconclusive: 2 of 2 packages could not be checked"
        " (vulnerability service unreachable: Dependency not found on PyPI"
    )


def test_parse_vulns_fails_with_the_list():
    report = depaudit.parse("shop", VULNS)
    assert report.checked == ["idna", "jinja2"]
    assert [(v.package, v.version, v.id, v.fix_versions) for v in report.vulns] == [
        ("jinja2", "3.1.3", "GHSA-h75v-3vvj-5mfj", ["3.1.4"])
    ]
    code, lines = depaudit.verdict([report])
    assert code == 1
    assert lines == [
        "vulnerable: jinja2 3.1.3: GHSA-h75v-3vvj-5mfj (fixed in: 3.1.4)",
        "dependency audit failed: 1 known vulnerabilities",
    ]


def test_one_skip_among_checked_is_inconclusive():
    clean, skipped = depaudit.parse("toolkit", CLEAN), depaudit.parse("shop", SKIPPED)
    code, lines = depaudit.verdict([clean, skipped])
    assert code == 2
    assert "inconclusive: 2 of 4 packages" in lines[-1]


def test_parse_refuses_what_is_not_pip_audit_json():
    with pytest.raises(ValueError):
        depaudit.parse("toolkit", '{"vulnerabilities": []}')


def test_requirement_sets():
    toolkit = depaudit.toolkit_requirements()
    names = {line.split("==")[0].lower() for line in toolkit}
    assert all("==" in line for line in toolkit)
    assert {"invoke", "httpx", "textual"} <= names  # the toolkit's own dependencies
    assert not names & {"ocean-ops", "ocean-shop", "ocean-inbox"}  # ours: not on PyPI
    shop = depaudit.shop_requirements()
    assert any(line.startswith("fastapi") for line in shop)
    image, _ = depaudit.requirements("shop-image")
    assert image[: len(shop)] == shop and "setuptools==65.5.0" in image


def _run(args: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_extra}
    for var in ("NO_PROXY", "no_proxy"):  # nothing may bypass the loopback proxy
        env.pop(var, None)
    return subprocess.run(
        [sys.executable, "-m", "ocean.depaudit", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )


def test_pip_audit_that_skips_everything_and_exits_0_fails(tmp_path: Path):
    """pip-audit's behaviour on this machine, replayed: every package skipped, exit 0."""
    fake = tmp_path / "pip-audit"
    fake.write_text(f"#!{sys.executable}\nprint({SKIPPED!r})\n")
    fake.chmod(0o755)
    proc = _run(["--target", "toolkit"], {"OCEAN_PIP_AUDIT": str(fake)})
    assert proc.returncode == 2, proc.stderr
    # The two it skipped and the rest it did not mention: none was checked.
    n = len(depaudit.toolkit_requirements())
    assert f"dependency audit inconclusive: {n} of {n} packages could not be checked" in proc.stderr
    assert "no known vulnerabilities" not in (proc.stdout + proc.stderr).lower()


def test_unreachable_service_fails_loudly(tmp_path: Path):
    """The real pip-audit with its vulnerability service unreachable (on loopback only)."""
    proxies = {
        var: LOOPBACK_PROXY
        for var in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy")
    }
    proxies |= {"PIP_INDEX_URL": f"{LOOPBACK_PROXY}/simple", "PIP_RETRIES": "0"}
    # An empty cache: no answer from an earlier run with network stands in for the service.
    proxies |= {"PIP_CACHE_DIR": str(tmp_path / "pip"), "XDG_CACHE_HOME": str(tmp_path)}
    proc = _run(["--target", "toolkit", "--cache-dir", str(tmp_path / "audit")], proxies)
    assert proc.returncode == 2, proc.stderr
    expected = len(depaudit.toolkit_requirements())
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(
        f"dependency audit inconclusive: {expected} of {expected} packages could not be"
        " checked (vulnerability service unreachable: "
    ), proc.stderr
    assert "127.0.0.1" in line  # the request went to the loopback proxy, nowhere else
