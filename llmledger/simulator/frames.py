"""Column tables → Polars frames in the canonical shapes.

Calls get a subset of `ingest.schema.CallIn`'s fields (ts as Datetime(ms, UTC), token counts and
latencies as Int64, `tags` as a JSON-object string, nulls where a field does not apply); tool runs
get the columns of the `tool_runs` table. Event ids are `sim-<seed>-<yyyymmdd>-c<origin>-<seq>`
for calls and `…-t<origin>-<seq>` for tool runs: unique and stable for a seed.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from llmledger.simulator.calls import CANCEL_ERROR, ERRORS, STATUSES, TIMEOUT_ERROR
from llmledger.simulator.catalog import ENVIRONMENTS, MODELS, ROUTES, SELF_HOSTED_NODES, TEAMS, TOOLS
from llmledger.simulator.ids import hex64
from llmledger.simulator.table import VOCAB, Table
from llmledger.simulator.tools import RUN_ERROR, RUN_STATUSES, RUN_TIMEOUT
from llmledger.simulator.traffic import POLICIES

_ENVS = [name for name, _ in ENVIRONMENTS]
_TEAM_OF_ROUTE = np.array([TEAMS.index(r.team) for r in ROUTES], dtype=np.int64)
_ERROR_TYPES = [kind for _, kind in ERRORS] + ["timeout", "client_cancelled"]
_HTTP = [status for status, _ in ERRORS] + [None, 499]
assert len(_ERROR_TYPES) == CANCEL_ERROR + 1 and _ERROR_TYPES[TIMEOUT_ERROR] == "timeout"

CALL_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.String(), "ts": pl.Datetime("ms", "UTC"), "source": pl.String(), "project": pl.String(),
    "api_key_id": pl.String(), "user_id": pl.String(), "team": pl.String(), "feature": pl.String(),
    "route": pl.String(), "environment": pl.String(), "session_id": pl.String(), "trace_id": pl.String(),
    "span_id": pl.String(), "parent_span_id": pl.String(), "tool_name": pl.String(),
    "prompt_version": pl.String(), "prompt_prefix_hash": pl.String(), "tags": pl.String(),
    "provider": pl.String(), "model": pl.String(), "deployment": pl.String(), "node": pl.String(),
    "is_batch": pl.Boolean(), "stream": pl.Boolean(), "input_tokens": pl.Int64(),
    "cache_read_tokens": pl.Int64(),
    "cache_write_5m_tokens": pl.Int64(), "cache_write_1h_tokens": pl.Int64(), "output_tokens": pl.Int64(),
    "reasoning_tokens": pl.Int64(), "web_searches": pl.Int64(), "ttft_ms": pl.Int64(),
    "latency_ms": pl.Int64(),
    "queue_ms": pl.Int64(), "status": pl.String(), "error_type": pl.String(), "http_status": pl.Int64(),
    "routing_policy": pl.String(), "cascade_step": pl.Int64(), "escalated": pl.Boolean(),
    "router_score": pl.Float64(),
}
RUN_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.String(), "ts": pl.Datetime("ms", "UTC"), "source": pl.String(), "project": pl.String(),
    "tool_name": pl.String(), "route": pl.String(), "user_id": pl.String(), "session_id": pl.String(),
    "trace_id": pl.String(), "span_id": pl.String(), "parent_span_id": pl.String(), "duration_ms": pl.Int64(),
    "status": pl.String(), "error_type": pl.String(),
}


def _lookup(values: list[object], codes: np.ndarray, dtype: pl.DataType = pl.String()) -> pl.Series:
    """values[code] per row; code -1 gives null."""
    table = pl.Series([*values, None], dtype=dtype)
    index = np.where(codes < 0, len(values), codes).astype(np.int64)
    return table.gather(index)


def _nullable(values: np.ndarray, missing: np.ndarray) -> pl.Series:
    return pl.Series(values).set(pl.Series(missing), None)  # type: ignore[arg-type]


def _event_ids(prefix: str, origin: np.ndarray, seq: np.ndarray) -> pl.Series:
    frame = pl.DataFrame({"o": origin.astype(np.int64), "s": seq})
    return frame.select(
        pl.concat_str(
            pl.lit(prefix),
            pl.col("o").cast(pl.String).str.zfill(3),
            pl.lit("-"),
            pl.col("s").cast(pl.String).str.zfill(7),
        )
    ).to_series()


def _prefixed(prefix: str, values: pl.Series) -> pl.Series:
    return pl.select(pl.concat_str(pl.lit(prefix), pl.lit(values))).to_series()


def _trace_ids(hi: np.ndarray, lo: np.ndarray) -> pl.Series:
    return pl.DataFrame({"h": hex64(hi), "l": hex64(lo)}).select(pl.concat_str("h", "l")).to_series()


def _projects(override: str | None) -> list[str]:
    return [override or r.project for r in ROUTES]


def calls_frame(calls: Table, *, seed: int, day: date, source: str, project: str | None) -> pl.DataFrame:
    """The canonical call frame for one day's call table (rows in table order)."""
    n = len(calls)
    if n == 0:
        return pl.DataFrame(schema=CALL_SCHEMA)
    route, model, status, error = calls["route"], calls["model"], calls["status"], calls["error"]
    key_names = [f"ak-{team}-{env}" for team in TEAMS for env in _ENVS]
    policy, step = calls["policy"], calls["step"]
    in_cascade = policy >= 0
    columns: dict[str, pl.Series] = {
        "event_id": _event_ids(f"sim-{seed}-{day:%Y%m%d}-c", calls["origin"], calls["seq"]),
        "ts": pl.Series(calls["ts"]).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
        "source": pl.Series([source]).gather(np.zeros(n, dtype=np.int64)),
        "project": _lookup(_projects(project), route),
        "api_key_id": _lookup(key_names, _TEAM_OF_ROUTE[route] * len(_ENVS) + calls["env"]),
        "user_id": VOCAB.strings(calls["user"]),
        "team": _lookup([r.team for r in ROUTES], route),
        "feature": _lookup([r.feature for r in ROUTES], route),
        "route": _lookup([r.name for r in ROUTES], route),
        "environment": _lookup(_ENVS, calls["env"]),
        "session_id": _prefixed("sess-", hex64(calls["session_key"])),
        "trace_id": _trace_ids(calls["trace_hi"], calls["trace_lo"]),
        "span_id": hex64(calls["span"]),
        "parent_span_id": _nullable(hex64(calls["parent_span"]).to_numpy(), calls["parent_span"] == 0),
        "tool_name": _lookup([t.name for t in TOOLS], calls["tool"]),
        "prompt_version": VOCAB.strings(calls["prompt"]),
        "prompt_prefix_hash": VOCAB.strings(calls["prefix_hash"]),
        "tags": VOCAB.strings(calls["tags"]),
        "provider": _lookup([m.provider for m in MODELS], model),
        "model": _lookup([m.key for m in MODELS], model),
        "deployment": _lookup([m.deployment for m in MODELS], model),
        "node": _lookup(list(SELF_HOSTED_NODES), calls["node"]),
        "is_batch": pl.Series(calls["is_batch"]),
        "stream": pl.Series(calls["stream"]),
        "input_tokens": pl.Series(calls["input"]),
        "cache_read_tokens": pl.Series(calls["cache_read"]),
        "cache_write_5m_tokens": pl.Series(calls["cache_write_5m"]),
        "cache_write_1h_tokens": pl.Series(calls["cache_write_1h"]),
        "output_tokens": pl.Series(calls["output"]),
        "reasoning_tokens": pl.Series(calls["reasoning_tokens"]),
        "web_searches": pl.Series(calls["web_searches"]),
        "ttft_ms": _nullable(calls["ttft"], calls["ttft"] < 0),
        "latency_ms": _nullable(calls["latency"], calls["latency"] < 0),
        "queue_ms": _nullable(calls["queue"], calls["queue"] < 0),
        "status": _lookup(list(STATUSES), status.astype(np.int64)),
        "error_type": _lookup(_ERROR_TYPES, error.astype(np.int64)),
        "http_status": _lookup(_HTTP, error.astype(np.int64), pl.Int64()),
        "routing_policy": _lookup(list(POLICIES), policy.astype(np.int64)),
        "cascade_step": _nullable(step.astype(np.int64), ~in_cascade),
        "escalated": _nullable(step > 0, ~in_cascade),
        "router_score": _nullable(np.round(calls["score"], 4), ~in_cascade),
    }
    return pl.DataFrame(columns).cast(CALL_SCHEMA)  # type: ignore[arg-type]


def runs_frame(runs: Table, *, seed: int, day: date, source: str, project: str | None) -> pl.DataFrame:
    """The tool-run frame for one day's run table (rows in table order)."""
    n = len(runs)
    if n == 0:
        return pl.DataFrame(schema=RUN_SCHEMA)
    tool, status = runs["tool"].astype(np.int64), runs["status"].astype(np.int64)
    error_codes = np.where(status == RUN_ERROR, tool, np.where(status == RUN_TIMEOUT, len(TOOLS), -1))
    columns = {
        "event_id": _event_ids(f"sim-{seed}-{day:%Y%m%d}-t", runs["origin"], runs["seq"]),
        "ts": pl.Series(runs["ts"]).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
        "source": pl.Series([source]).gather(np.zeros(n, dtype=np.int64)),
        "project": _lookup(_projects(project), runs["route"]),
        "tool_name": _lookup([t.name for t in TOOLS], tool),
        "route": _lookup([r.name for r in ROUTES], runs["route"]),
        "user_id": VOCAB.strings(runs["user"]),
        "session_id": _prefixed("sess-", hex64(runs["session_key"])),
        "trace_id": _trace_ids(runs["trace_hi"], runs["trace_lo"]),
        "span_id": hex64(runs["span"]),
        "parent_span_id": hex64(runs["parent_span"]),
        "duration_ms": pl.Series(runs["duration"]),
        "status": _lookup(list(RUN_STATUSES), status),
        "error_type": _lookup([t.error_type for t in TOOLS] + ["timeout"], error_codes),
    }
    return pl.DataFrame(columns).cast(RUN_SCHEMA)  # type: ignore[arg-type]
