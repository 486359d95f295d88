"""A deploy's options and their bounds (ocean/procedures/deploy.py takes them)."""

from __future__ import annotations

from dataclasses import dataclass

# An analysis window is at most an hour: a deploy holds the lock (no restore, no
# rollback) while it runs.
MAX_ANALYSIS_WINDOW_S = 3600.0

# What an analysis still inconclusive after its extension does: no evidence is no
# promotion, unless the environment says otherwise (deploy.on_inconclusive).
ON_INCONCLUSIVE = ("rollback", "promote")


@dataclass(frozen=True)
class DeployOptions:
    color: str
    version: str = "HEAD"
    auto_promote: bool = True
    analysis_window: float = 60.0
    preview_timeout: float = 15.0
    ready_timeout: float = 60.0
    scale_down_delay: float = 30.0
    force: bool = False
    min_requests: int = 20
    validate: bool = True
    # At most this many requests sent straight to the new color right before the
    # switch, in rounds until its latency settles (0: none), this many at a time: the
    # shop's default DB pool size (see ocean.rollout.warmup).
    warmup_requests: int = 600
    warmup_concurrency: int = 10
    on_inconclusive: str = "rollback"  # or "promote": see ON_INCONCLUSIVE
