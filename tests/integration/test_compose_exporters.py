"""Issue 25, High 2, on the compose runtime: the attacks of test_exporter_hardening.py
against a compose stack. Both runtimes run the same programs with the same rendered
configs (the compose override takes the stack spec's program table), so the same tests must
hold; what differs is who runs them (containers, the nginx exporter as nobody's uid)
and how a stale socket is removed (the same /bin/sh wrapper, inside the container).
Opt-in: OCEAN_COMPOSE_TESTS=1 as root (tests/compose_support.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ocean.runtime import engine
from ocean.runtime.compose import ComposeRuntime
from tests.compose_support import own_compose_stack, requires_engine

# Collected here, against this module's `stack` (a compose one).
from tests.integration.test_exporter_hardening import (  # noqa: F401
    listener,
    secret_values,
    test_an_anonymous_scrape_of_a_foreign_target_gets_no_credentials,
    test_another_local_user_cannot_reach_the_sockets_behind_nginx,
    test_even_an_authorised_scrape_sends_credentials_to_the_stacks_redis_only,
    test_nginx_exporter_and_stub_status_need_the_operators_password,
    test_only_the_replication_user_may_ask_the_master_for_a_full_copy,
    test_prometheus_still_scrapes_every_exporter,
    test_the_exporter_user_cannot_read_the_config,
    test_the_redis_exporter_refuses_a_client_without_our_certificate,
    test_the_replica_still_replicates,
    test_the_replication_user_gets_replication_and_nothing_else,
)

pytestmark = [pytest.mark.integration, requires_engine, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: engine.Engine
) -> Iterator[ComposeRuntime]:
    with own_compose_stack(tmp_path_factory, docker_engine, "compose-exporters") as runtime:
        yield runtime
