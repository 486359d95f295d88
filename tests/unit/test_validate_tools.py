"""A missing checker is an error of the check that needs it (ocean.validate.core's rule):
a validation that could not check must not pass as clean."""

from __future__ import annotations

import builtins

import pytest

from ocean.config import REPO_ROOT
from ocean.validate import (
    alertmanager_checks,
    core,
    dashboard_checks,
    prometheus_checks,
    rule_checks,
    stack_checks,
)

PROGRAM_CHECKS = {
    "prometheus-config",
    "promtool-check-rules",
    "promtool-test-rules",
    "dashboard-queries",
    "alertmanager-config",
    "postgres-params",
    "redis-directives",
    "nginx-syntax",
}


def test_missing_programs_are_errors(monkeypatch: pytest.MonkeyPatch):
    for module in (
        prometheus_checks,
        rule_checks,
        alertmanager_checks,
        dashboard_checks,
        stack_checks,
    ):
        monkeypatch.setattr(module, "program", lambda name: None)
    findings = core.run(REPO_ROOT)
    missing = [f for f in findings if "is not installed" in f.message]
    assert {f.check for f in missing} == PROGRAM_CHECKS
    assert {f.severity for f in missing} == {"error"}
    assert all(f.hint for f in missing)


def test_a_missing_library_is_an_error(monkeypatch: pytest.MonkeyPatch):
    real_import = builtins.__import__

    def no_yamllint(name, *args, **kwargs):
        if name.startswith("yamllint"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_yamllint)
    (finding,) = stack_checks.check_yamllint(REPO_ROOT)
    assert (finding.check, finding.severity) == ("yamllint", "error")
    assert "yamllint is not installed" in finding.message
