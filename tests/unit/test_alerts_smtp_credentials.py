"""Wrong SMTP credentials against the real Alertmanager and the real alert inbox (their
binaries on free ports, the stack's rendered config), on a stack of their own: the test
makes Alertmanager's notifications fail, which a shared stack must never see (its
tests assert that nothing fails to notify)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from ocean.runtime.local import LocalRuntime
from tests.alerting_support import rendered_runtime, with_inbox
from tests.helpers import cli

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus-alertmanager") is None, reason="prometheus-alertmanager missing"
)


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    runtime = rendered_runtime(tmp_path_factory.mktemp("smtp-credentials"))
    with with_inbox(runtime):
        yield runtime


def test_wrong_smtp_credentials_fail_the_email_route_in_one_line(own_stack: LocalRuntime):
    """Alertmanager's SMTP password no longer matches the inbox's: the drill's e-mail
    route is not delivered → one line naming it, exit 1; the other routes still do."""
    stack = own_stack
    password_file = stack.settings.etc / "alertmanager" / "smtp_password"
    right = password_file.read_bytes()
    with stack.http("alertmanager", timeout=10) as alertmanager:
        try:
            password_file.write_bytes(b"not-the-password")
            alertmanager.post("/-/reload").raise_for_status()
            result = cli(stack, "alerts.drill", "--route", "email", timeout=180)
            everything_else = cli(stack, "alerts.drill", "--route", "pager", timeout=180)
        finally:
            password_file.write_bytes(right)
            alertmanager.post("/-/reload").raise_for_status()
    assert result.returncode == 1, result.stdout + result.stderr
    # Progress lines, then one failed step, the verdict (wrapped to the terminal): the
    # route and why.
    assert result.stderr.count("✗") == 1, result.stderr
    verdict = " ".join(result.stderr[result.stderr.index("✗") :].split())
    assert "not delivered: email" in verdict and "auth_failed" in verdict, result.stderr
    assert everything_else.returncode == 0, everything_else.stdout + everything_else.stderr
    # Put right again, the route delivers.
    again = cli(stack, "alerts.drill", "--route", "email", timeout=180)
    assert again.returncode == 0, again.stdout + again.stderr
