"""Baseline traffic of one UTC day: every route's sessions built into call and tool-run tables.

`baseline_day` is pure in (seed, day, calls_per_day): each route draws from its own random
streams, so a day (or one route of it) regenerates identically alone. `build_turns` is the one
place turns become rows — cascade escalations, tool runs, tool-parented calls, timing, ids — and
incidents reuse it for the sessions they add. Rows never leave their UTC day.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np

from llmledger.simulator.calls import derive_calls
from llmledger.simulator.catalog import (
    MODEL_INDEX,
    MODELS,
    ROUTES,
    SELF_HOSTED_NODES,
    TOOLS,
    WEEKDAY_FACTOR,
    RouteKind,
    RouteSpec,
    prefix_hash,
)
from llmledger.simulator.ids import mix, stream
from llmledger.simulator.sessions import expand_turns, lognormal, sample_sessions, turn_counts
from llmledger.simulator.table import VOCAB, Table
from llmledger.simulator.tools import RUN_TIMEOUT, inner_call_rows, plan_tool_runs

DAY_MS = 86_400_000
POLICIES: tuple[str, ...] = tuple(r.cascade.policy for r in ROUTES if r.cascade is not None)
_WEEKDAY = np.array(WEEKDAY_FACTOR) / np.mean(WEEKDAY_FACTOR)
_SELF_HOSTED = np.array([m.deployment == "self_hosted" for m in MODELS])

# random-stream purposes within one (day, origin)
P_SESSIONS, P_TURNS, P_CASCADE, P_CALLS, P_TOOLS, P_INNER, P_TIMING, P_NODES = range(8)
SALT_SPAN, SALT_RUN, SALT_TRACE_HI, SALT_TRACE_LO, SALT_SESSION = 1, 2, 3, 4, 5

CALL_COLUMNS = (
    "ts", "origin", "seq", "route", "model", "node", "stream", "is_batch", "prefix", "history", "new",
    "input", "cache_read", "cache_write_5m", "cache_write_1h", "output", "reasoning_tokens", "web_searches",
    "status", "error", "ttft", "latency", "queue", "policy", "step", "score", "tool", "user", "env",
    "session_key", "trace_hi", "trace_lo", "span", "parent_span", "prompt", "prefix_hash", "tags",
)
RUN_COLUMNS = (
    "ts", "origin", "seq", "tool", "route", "user", "env", "session_key", "trace_hi", "trace_lo", "span",
    "parent_span", "duration", "status",
)


@dataclass(frozen=True)
class DayContext:
    """What generating one day needs to know."""

    seed: int
    day: date
    calls_per_day: int
    routes: frozenset[str] | None = None  # generate only these routes (None: all)

    @property
    def ordinal(self) -> int:
        return self.day.toordinal()

    @property
    def start_ms(self) -> int:
        return int(datetime(self.day.year, self.day.month, self.day.day, tzinfo=UTC).timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return self.start_ms + DAY_MS

    def wants(self, route: str) -> bool:
        return self.routes is None or route in self.routes

    def rng(self, origin: int, purpose: int) -> np.random.Generator:
        return stream(self.seed, self.ordinal, origin, purpose)


@dataclass
class DayTables:
    """One day's calls and tool runs as column tables (see CALL_COLUMNS, RUN_COLUMNS)."""

    calls: Table
    runs: Table


def weekday_factor(day: date) -> float:
    """Interactive volume of a weekday relative to the weekly mean."""
    return float(_WEEKDAY[day.weekday()])


def expected_calls_per_session(route: RouteSpec) -> float:
    """Mean calls one session of the route produces (turns × escalations × tool-parented calls)."""
    p = 1.0 / route.turns_mean
    turns = 1.0 if route.turns_max <= 1 else (1 - (1 - p) ** route.turns_max) / p
    per_turn = 1.0 + (route.cascade.escalation_rate if route.cascade else 0.0)
    for name, probability in route.tools:
        inner = next(t.inner for t in TOOLS if t.name == name)
        if inner is not None:
            per_turn += probability * inner.calls_per_run * (turns - 1) / turns
    return turns * per_turn


def route_calls_target(ctx: DayContext, route: RouteSpec) -> float:
    """Expected calls of a route on the context's day."""
    factor = 1.0 if route.kind is RouteKind.BATCH else weekday_factor(ctx.day)
    return ctx.calls_per_day * route.share * factor


def baseline_day(ctx: DayContext) -> DayTables:
    """Every wanted route's normal traffic for the day, unsorted."""
    parts = [route_day(ctx, i) for i, route in enumerate(ROUTES) if ctx.wants(route.name)]
    return DayTables(Table.concat(p.calls for p in parts), Table.concat(p.runs for p in parts))


def route_day(ctx: DayContext, route_i: int) -> DayTables:
    """One route's traffic for the day."""
    route = ROUTES[route_i]
    target = route_calls_target(ctx, route)
    if route.kind is RouteKind.BATCH:
        return build_turns(ctx, route_i, batch_items(ctx, route_i, target), origin=route_i)
    rng = ctx.rng(route_i, P_SESSIONS)
    sessions = sample_sessions(route, int(rng.poisson(target / expected_calls_per_session(route))), rng)
    turns_rng = ctx.rng(route_i, P_TURNS)
    turns = expand_turns(sessions, turn_counts(route, len(sessions), turns_rng), route, turns_rng)
    return build_turns(ctx, route_i, turns, origin=route_i)


def batch_items(ctx: DayContext, route_i: int, target: float) -> Table:
    """A nightly job: items spread uniformly over the route's batch window, one trace each."""
    route = ROUTES[route_i]
    rng = ctx.rng(route_i, P_SESSIONS)
    n = int(rng.poisson(target))
    first, last = route.batch_hours or (0, 24)
    ts = ctx.start_ms + np.sort(rng.uniform(first * 3_600_000, last * 3_600_000, n)).astype(np.int64)
    new = np.minimum(lognormal(rng, route.new_median, route.new_sigma, n), route.new_max).astype(np.int64)
    out = np.clip(lognormal(rng, route.output_median, route.output_sigma, n), 1, route.max_output)
    return Table(
        {
            "session": np.zeros(n, dtype=np.int64),
            "turn": np.arange(n, dtype=np.int64),
            "ts": ts,
            "user": np.full(n, VOCAB.code(route.service_user or "svc-batch"), dtype=np.int32),
            "env": np.zeros(n, dtype=np.int8),
            "model": np.full(n, MODEL_INDEX[route.models[0][0]], dtype=np.int16),
            "new": np.maximum(new, 1),
            "out_vis": out.astype(np.int64),
            "reasoning": np.zeros(n, dtype=np.int64),
            "history": np.zeros(n, dtype=np.int64),
        }
    )


def _call_rows(route_i: int, model: np.ndarray, prefix: np.ndarray, source: Table,
               turn_row: np.ndarray) -> Table:
    route = ROUTES[route_i]
    n = len(turn_row)
    return Table(
        {
            "turn_row": turn_row.astype(np.int64),
            "route": np.full(n, route_i, dtype=np.int16),
            "model": model.astype(np.int16),
            "stream": np.full(n, route.stream),
            "is_batch": np.full(n, route.is_batch),
            "prefix": prefix.astype(np.int64),
            "history": source["history"],
            "new": source["new"],
            "out_vis": source["out_vis"],
            "reasoning": source["reasoning"],
            "tool": np.full(n, -1, dtype=np.int16),
            "run_row": np.full(n, -1, dtype=np.int64),
            "step": np.full(n, -1, dtype=np.int8),
            "policy": np.full(n, -1, dtype=np.int8),
            "score": np.full(n, np.nan),
            "offset": np.zeros(n, dtype=np.int64),
            "forced_ok": source["forced_ok"] if "forced_ok" in source else np.zeros(n, dtype=bool),
        }
    )


def _last_turns(turns: Table) -> np.ndarray:
    turn = turns["turn"]
    return np.append(turn[1:] == 0, True) if len(turn) else np.zeros(0, dtype=bool)


def _group_cumsum(values: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting at each True of `first` (rows grouped by session)."""
    total = np.cumsum(values)
    base = np.maximum.accumulate(np.where(first, total - values, 0))
    return total - base


def build_turns(ctx: DayContext, route_i: int, turns: Table, *, origin: int,
                until_ms: int | None = None) -> DayTables:
    """Rows for turns of one route: the call of each turn, its escalation, tool run and the tool's
    own calls, timed within sessions and given ids. Turns ending after `until_ms` (default: the end
    of the day) are dropped whole.

    `turns` needs session, turn, user, env, model, new, out_vis, reasoning, history and either
    `start_s` (session start, seconds into the day) or `ts` (epoch ms per turn); `think_s` is optional.
    """
    route = ROUTES[route_i]
    n_turns = len(turns)
    if n_turns == 0:
        return DayTables(Table(), Table())
    turn_rows = np.arange(n_turns, dtype=np.int64)
    prefix = np.full(n_turns, route.prefix_tokens, dtype=np.int64)
    first = _call_rows(route_i, turns["model"], prefix, turns, turn_rows)
    parts = [first]
    escalated = np.zeros(n_turns, dtype=bool)
    if route.cascade is not None:
        rng = ctx.rng(origin, P_CASCADE)
        escalated = rng.random(n_turns) < route.cascade.escalation_rate
        threshold = route.cascade.score_threshold
        first["step"][:] = 0
        first["policy"][:] = POLICIES.index(route.cascade.policy)
        low, high = rng.uniform(0.05, threshold, n_turns), rng.uniform(threshold, 0.99, n_turns)
        first["score"] = np.where(escalated, low, high)
        second = first.take(escalated)
        second["model"][:] = MODEL_INDEX[route.cascade.frontier_model]
        second["step"][:] = 1
        parts.append(second)
    calls_rng = ctx.rng(origin, P_CALLS)
    for part in parts:
        _assign_nodes(part, ctx.rng(origin, P_NODES))
        derive_calls(part, calls_rng)
    if route.cascade is not None:
        parts[1]["offset"] = first["latency"][escalated] + 30

    runs = plan_tool_runs(route, turns, _last_turns(turns), ctx.rng(origin, P_TOOLS))
    if len(runs):
        runs["offset"] = np.maximum(first["latency"][runs["turn_row"]], 0) + 20
        inner = inner_call_rows(runs, ctx.rng(origin, P_INNER))
        if len(inner):
            rows = _call_rows(route_i, inner["model"], inner["prefix"], inner, inner["turn_row"])
            rows["stream"][:] = False
            rows["tool"] = inner["tool"]
            rows["run_row"] = inner["run_row"]
            _assign_nodes(rows, ctx.rng(origin, P_NODES))
            derive_calls(rows, calls_rng)
            _time_inner_calls(rows, inner["call_no"], runs)
            parts.append(rows)
    calls = Table.concat(parts)

    duration = np.zeros(n_turns, dtype=np.int64)
    np.maximum.at(duration, calls["turn_row"], calls["offset"] + np.maximum(calls["latency"], 0))
    if len(runs):
        np.maximum.at(duration, runs["turn_row"], runs["offset"] + runs["duration"])
    turn_ts = _turn_times(ctx, route, turns, duration, ctx.rng(origin, P_TIMING))
    keep = turn_ts + duration < (ctx.end_ms if until_ms is None else min(until_ms, ctx.end_ms))
    return _finish(ctx, route_i, origin, turns, turn_ts, keep, calls, runs)


def _assign_nodes(calls: Table, rng: np.random.Generator) -> None:
    hosted = _SELF_HOSTED[calls["model"]]
    calls["node"] = np.where(hosted, rng.integers(0, len(SELF_HOSTED_NODES), len(calls)), -1).astype(np.int8)


def _time_inner_calls(rows: Table, call_no: np.ndarray, runs: Table) -> None:
    """Inner calls run one after another after the tool's own work (its sampled duration); the run
    lasts until the last of them returns (a timed-out run still ends at its timeout)."""
    run_row = rows["run_row"]
    latency = np.maximum(rows["latency"], 0)
    order = np.lexsort((call_no, run_row))
    sorted_run, sorted_latency = run_row[order], latency[order]
    first = np.append(True, sorted_run[1:] != sorted_run[:-1])
    before = _group_cumsum(sorted_latency, first) - sorted_latency
    offset = np.empty_like(before)
    offset[order] = before + 15 * call_no[order]
    work = runs["duration"][run_row]
    rows["offset"] = runs["offset"][run_row] + work + offset
    end = np.zeros(len(runs), dtype=np.int64)
    np.maximum.at(end, run_row, rows["offset"] + latency + 30 - runs["offset"][run_row])
    timed_out = runs["status"] == RUN_TIMEOUT
    runs["duration"] = np.where(timed_out, runs["duration"], np.maximum(runs["duration"], end))


def _turn_times(ctx: DayContext, route: RouteSpec, turns: Table, duration: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
    """Epoch ms of each turn: the session start, then each turn after the previous one ends plus a pause."""
    if "ts" in turns:
        return turns["ts"].astype(np.int64)
    n = len(turns)
    think_s = turns["think_s"] if "think_s" in turns else lognormal(rng, route.think_median_s, 0.6, n)
    first = turns["turn"] == 0
    previous = np.concatenate([[0], duration[:-1]])
    gap = np.where(first, 0, previous + think_s * 1000.0)
    start = ctx.start_ms + (turns["start_s"] * 1000.0)
    return (start + _group_cumsum(gap, first)).astype(np.int64)


def _finish(ctx: DayContext, route_i: int, origin: int, turns: Table, turn_ts: np.ndarray, keep: np.ndarray,
            calls: Table, runs: Table) -> DayTables:
    """Drop turns that do not fit, then stamp times, ids and attribution codes."""
    route = ROUTES[route_i]
    calls = calls.take(keep[calls["turn_row"]])
    session, turn = turns["session"], turns["turn"]
    trace_turn = np.zeros_like(turn) if route.kind is RouteKind.AGENT else turn
    trace_hi = mix(ctx.seed, ctx.ordinal, origin, session, trace_turn, SALT_TRACE_HI)
    trace_lo = mix(ctx.seed, ctx.ordinal, origin, session, trace_turn, SALT_TRACE_LO)
    session_key = mix(ctx.seed, ctx.ordinal, origin, session, SALT_SESSION)

    def stamp(table: Table, salt: int) -> np.ndarray:
        row = table["turn_row"]
        table["ts"] = turn_ts[row] + table["offset"]
        table["origin"] = np.full(len(table), origin, dtype=np.int16)
        table["seq"] = np.arange(len(table), dtype=np.int64)
        for name in ("user", "env"):
            table[name] = turns[name][row]
        table["session_key"] = session_key[row]
        table["trace_hi"], table["trace_lo"] = trace_hi[row], trace_lo[row]
        table["span"] = mix(ctx.seed, ctx.ordinal, origin, table["seq"], salt)
        table["route"] = np.full(len(table), route_i, dtype=np.int16)
        return table["span"]

    call_span = stamp(calls, SALT_SPAN)
    first_call = np.full(len(turns), -1, dtype=np.int64)
    is_first = calls["step"] <= 0
    is_first &= calls["tool"] < 0
    first_call[calls["turn_row"][is_first]] = np.flatnonzero(is_first)
    calls["parent_span"] = np.zeros(len(calls), dtype=np.uint64)
    if len(runs):
        kept_runs = keep[runs["turn_row"]]
        new_index = np.cumsum(kept_runs) - 1
        runs = runs.take(kept_runs)
        run_span = stamp(runs, SALT_RUN)
        runs["parent_span"] = call_span[first_call[runs["turn_row"]]]
        inner = calls["tool"] >= 0
        calls["parent_span"][inner] = run_span[new_index[calls["run_row"][inner]]]
        runs = Table({name: runs[name] for name in RUN_COLUMNS})
    else:
        runs = Table()
    calls["prompt"] = np.full(len(calls), VOCAB.code(route.prompt_version), dtype=np.int32)
    calls["prefix_hash"] = np.full(len(calls), _prefix_code(route), dtype=np.int32)
    calls["tags"] = np.full(len(calls), VOCAB.code(tags_json(route.tags)), dtype=np.int32)
    return DayTables(Table({name: calls[name] for name in CALL_COLUMNS}), runs)


def _prefix_code(route: RouteSpec) -> int:
    return VOCAB.code(prefix_hash(route.name, route.prompt_version))


def tags_json(tags: dict[str, str]) -> str:
    """A tags object as compact JSON with sorted keys."""
    return json.dumps(dict(sorted(tags.items())), separators=(",", ":"))


def new_call_rows(
    ctx: DayContext, origin: int, route_i: int, *, like: Table, ts: np.ndarray, model: np.ndarray,
    prefix: np.ndarray, history: np.ndarray, new: np.ndarray, out_vis: np.ndarray, reasoning: np.ndarray,
    parent_span: np.ndarray, seq_start: int, rng: np.random.Generator, tool: int = -1, step: int = -1,
    score: np.ndarray | None = None,
) -> Table:
    """Calls an incident adds next to existing rows (`like`: calls or tool runs whose user, env,
    session and trace they share), derived like any other call and stamped with `origin` ids."""
    route = ROUTES[route_i]
    n = len(ts)
    rows = Table(
        {
            "route": np.full(n, route_i, dtype=np.int16),
            "model": model.astype(np.int16),
            "stream": np.full(n, route.stream and tool < 0),
            "is_batch": np.full(n, route.is_batch),
            "prefix": prefix.astype(np.int64),
            "history": history.astype(np.int64),
            "new": new.astype(np.int64),
            "out_vis": out_vis.astype(np.int64),
            "reasoning": reasoning.astype(np.int64),
        }
    )
    _assign_nodes(rows, rng)
    derive_calls(rows, rng)
    rows["ts"] = ts.astype(np.int64)
    rows["origin"] = np.full(n, origin, dtype=np.int16)
    rows["seq"] = np.arange(seq_start, seq_start + n, dtype=np.int64)
    rows["span"] = mix(ctx.seed, ctx.ordinal, origin, rows["seq"], SALT_SPAN)
    rows["parent_span"] = parent_span.astype(np.uint64)
    rows["tool"] = np.full(n, tool, dtype=np.int16)
    policy = POLICIES.index(route.cascade.policy) if route.cascade is not None and tool < 0 else -1
    rows["policy"] = np.full(n, policy, dtype=np.int8)
    rows["step"] = np.full(n, step if policy >= 0 else -1, dtype=np.int8)
    rows["score"] = score if score is not None else np.full(n, np.nan)
    for name in ("user", "env", "session_key", "trace_hi", "trace_lo"):
        rows[name] = like[name]
    rows["prompt"] = np.full(n, VOCAB.code(route.prompt_version), dtype=np.int32)
    rows["prefix_hash"] = np.full(n, _prefix_code(route), dtype=np.int32)
    rows["tags"] = np.full(n, VOCAB.code(tags_json(route.tags)), dtype=np.int32)
    return Table({name: rows[name] for name in CALL_COLUMNS})
