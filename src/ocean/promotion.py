"""The promotion gate: a build reaches prod only after it passed a load test on staging.

``deploy --require-staging-pass`` (or ``deploy.require_staging_pass`` in the
environment's definition) looks in staging's state dir, as staging's own definition
names it (not this process's OCEAN_STATE_DIR, which belongs to the stack being
deployed), for load tests whose ``params.shop_build`` is the build being deployed: the
newest of them must have passed (an inconclusive run, whose load generator was the
bottleneck, is no pass). Builds are content-addressed (``git-<tree>`` of the
shop), so a tag and the commit it names are the same build.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ocean import environments
from ocean.config import PortPlan, Settings
from ocean.errors import OceanError, Refused
from ocean.loadtest import results
from ocean.model import Step
from ocean.runtime import builds

STAGING = "staging"


def staging_settings(settings: Settings) -> Settings:
    env = environments.load(STAGING, settings.repo_root)
    state = env.path("state_dir", settings.repo_root)
    # the schema's state_dir is text; "" is below the checkout (B101: narrows a type only)
    assert state is not None  # nosec B101
    return Settings(state_dir=state, ports=PortPlan(env["port_base"]), environment=env)


def build_id(repo_root: Path, version: str) -> str:
    return builds.resolve(repo_root, version)[0]


def staging_runs(staging: Settings, wanted: str) -> list[results.LoadResult]:
    """The load tests on staging that loaded build ``wanted``, oldest first."""
    found = []
    for run_id in results.run_ids(staging):
        try:
            run = results.load(staging, run_id)
        except OceanError:  # a torn result is no evidence either way
            continue
        shop = run.params.get("shop_build") or {}
        if shop.get("id") == wanted:
            found.append(run)
    return found


def gate(settings: Settings, version: str) -> Iterator[Step]:
    """A Step when ``version`` passed on staging; Refused (saying what to do) otherwise."""
    try:
        staging = staging_settings(settings)
        wanted = build_id(settings.repo_root, version)
    except Refused:
        raise
    except OceanError as exc:  # nothing to check against: the gate cannot pass
        raise Refused(f"promotion gate: {exc}") from None
    runs = staging_runs(staging, wanted)
    where = results.runs_dir(staging)
    if not runs:
        raise Refused(
            f"promotion gate: {version} ({wanted}) has no load test on staging "
            f"(looked in {where}); deploy it to staging and run "
            f"`invoke loadtest --env staging --scenario shopping` first"
        )
    newest = runs[-1]
    if newest.outcome == results.INCONCLUSIVE:  # no evidence either way: not a pass
        raise Refused(
            f"promotion gate: the newest staging load test of {version} ({wanted}), "
            f"{newest.id}, was {newest.headline()}; rerun it where k6 has room"
        )
    if not newest.passed:
        raise Refused(
            f"promotion gate: the newest staging load test of {version} ({wanted}), "
            f"{newest.id}, failed; fix it and pass a load test on staging first"
        )
    yield Step("staging gate", detail=f"{version} passed {newest.scenario} on staging: {newest.id}")
