"""Offline replays for the demo's cascade routes (the advisor's input, seed §3.13): support-chat's
cheap-vs-frontier agreement is one broad peak (a cascade fits), ticket-triage's is dual-peaked —
easy tickets near 1, hard ones near 0 — so the advisor recommends classifier routing there.
Deterministic for a seed; 400 queries each, token counts left to the route's logged averages."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from warehouse.client import Warehouse

REPLAY_QUERIES = 400


def demo_replays(seed: int = 7) -> dict[tuple[str, str], pl.DataFrame]:
    """(project, route) → replay frame (`score`, `task`)."""
    rng = np.random.default_rng(seed)
    chat = np.round(rng.beta(5.0, 2.2, REPLAY_QUERIES), 4)
    half = REPLAY_QUERIES // 2
    triage = np.round(np.concatenate([rng.beta(14, 2, half + 60), rng.beta(2, 10, half - 60)]), 4)
    return {
        ("acme-app", "support-chat"): pl.DataFrame({"score": chat, "task": ["support chat"] * REPLAY_QUERIES}),
        ("acme-app", "ticket-triage"): pl.DataFrame({"score": triage, "task": ["ticket classification"] * REPLAY_QUERIES}),
    }


def seed_replays(wh: Warehouse, *, at: datetime, seed: int = 7) -> int:
    """Store the demo's replays (once: skipped when the route already has one); returns rows written."""
    from advisor.replay import latest_replay, save_replay, validate
    from warehouse.queries.scope import Scope

    written = 0
    for (project, route), frame in demo_replays(seed).items():
        if latest_replay(wh, Scope.of(project), route) is not None:
            continue
        replay = validate(frame, source_file=f"demo-{route}.jsonl")
        save_replay(wh, replay, project=project, route=route, at=at)
        written += replay.rows.height
    return written
