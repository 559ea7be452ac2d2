"""Session skeletons: who starts a conversation (or job) when, and the token sizes of each turn.

`sample_sessions` draws a route-day's sessions (start second of the day, user, environment,
model); `expand_turns` turns them into one row per turn with the new tokens, visible output,
reasoning and the conversation history that turn re-sends (capped by the route's sliding window).
Timing of turns after the first depends on latencies and is decided later (`traffic.py`).
"""

from __future__ import annotations

import numpy as np

from llmledger.simulator.catalog import (
    ENVIRONMENTS,
    HOURLY_PROFILE,
    MODEL_INDEX,
    RouteKind,
    RouteSpec,
    user_ids,
    user_weights,
)
from llmledger.simulator.table import VOCAB, Table

_USER_CODES = np.array([VOCAB.code(u) for u in user_ids()], dtype=np.int32)
_USER_WEIGHTS = user_weights()
_HOUR_P = np.array(HOURLY_PROFILE) / np.sum(HOURLY_PROFILE)
_ENV_P = np.array([p for _, p in ENVIRONMENTS])


def user_code(user_id: str) -> int:
    """The vocabulary code of a user id."""
    return VOCAB.code(user_id)


def lognormal(rng: np.random.Generator, median: float, sigma: float, size: int) -> np.ndarray:
    """Log-normal draws given the median (not the mean)."""
    return rng.lognormal(np.log(max(median, 1e-9)), sigma, size)


def sample_sessions(route: RouteSpec, sessions: int, rng: np.random.Generator) -> Table:
    """`sessions` sessions of a route over one day: start second, user, environment and model."""
    if route.kind is RouteKind.BATCH:
        raise ValueError("batch routes have jobs, not sessions; see traffic.batch_items")
    hour = rng.choice(24, size=sessions, p=_HOUR_P)
    start_s = hour * 3600.0 + rng.random(sessions) * 3600.0
    if route.service_user:
        users = np.full(sessions, VOCAB.code(route.service_user), dtype=np.int32)
    else:
        users = _USER_CODES[rng.choice(len(_USER_CODES), size=sessions, p=_USER_WEIGHTS)]
    env = rng.choice(len(_ENV_P), size=sessions, p=_ENV_P).astype(np.int8)
    if route.cascade is not None:
        model = np.full(sessions, MODEL_INDEX[route.cascade.cheap_model], dtype=np.int16)
    else:
        keys = [MODEL_INDEX[m] for m, _ in route.models]
        shares = np.array([s for _, s in route.models])
        model = np.array(keys, dtype=np.int16)[rng.choice(len(keys), size=sessions, p=shares / shares.sum())]
    return Table(
        {
            "session": np.arange(sessions, dtype=np.int64),
            "start_s": start_s,
            "user": users.astype(np.int32),
            "env": env,
            "model": model,
        }
    )


def turn_counts(route: RouteSpec, sessions: int, rng: np.random.Generator) -> np.ndarray:
    """Turns per session: geometric with the route's mean, clipped to its maximum."""
    if route.turns_max <= 1:
        return np.ones(sessions, dtype=np.int64)
    return np.minimum(rng.geometric(1.0 / route.turns_mean, sessions), route.turns_max).astype(np.int64)


def expand_turns(sessions: Table, turns: np.ndarray, route: RouteSpec, rng: np.random.Generator) -> Table:
    """One row per turn, with token sizes and the history each turn re-sends."""
    n = int(turns.sum())
    owner = np.repeat(np.arange(len(sessions)), turns)
    first = (np.cumsum(turns) - turns).astype(np.int64)  # also right for a day with no sessions
    turn = np.arange(n, dtype=np.int64) - np.repeat(first, turns)
    table = sessions.take(owner)
    table["turn"] = turn
    new = np.minimum(lognormal(rng, route.new_median, route.new_sigma, n), route.new_max).astype(np.int64)
    out_vis = np.clip(lognormal(rng, route.output_median, route.output_sigma, n), 1, route.max_output)
    reasoning = reasoning_tokens(route, n, rng)
    table["new"] = np.maximum(new, 1)
    table["out_vis"] = out_vis.astype(np.int64)
    table["reasoning"] = reasoning
    table["history"] = sliding_history(table["new"] + table["out_vis"], turn, route.history_window)
    return table


def reasoning_tokens(route: RouteSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """Reasoning tokens per call: a log-normal body plus an optional long tail, clipped."""
    if route.reasoning_share <= 0:
        return np.zeros(n, dtype=np.int64)
    body = lognormal(rng, route.reasoning_median, route.reasoning_sigma, n)
    if route.reasoning_tail_share > 0:
        tail = lognormal(rng, route.reasoning_tail_median, route.reasoning_sigma, n)
        body = np.where(rng.random(n) < route.reasoning_tail_share, tail, body)
    reasons = rng.random(n) < route.reasoning_share
    return np.where(reasons, np.minimum(body, route.reasoning_max), 0).astype(np.int64)


def sliding_history(turn_tokens: np.ndarray, turn: np.ndarray, window: int) -> np.ndarray:
    """Tokens of earlier turns of the same session re-sent with each turn, capped at `window`.

    Rows must be grouped by session with `turn` counting 0, 1, … inside each session.
    """
    if window <= 0:
        return np.zeros(len(turn), dtype=np.int64)
    total = np.cumsum(turn_tokens)
    before = total - turn_tokens  # tokens of all earlier rows
    session_base = np.maximum.accumulate(np.where(turn == 0, before, 0))
    return np.minimum(before - session_base, window).astype(np.int64)
