"""Tool runs of agent steps and the LLM calls some tools make themselves.

`plan_tool_runs` decides which agent steps run a tool, which one, how long it takes and how it
ends; `inner_call_rows` lays out the tool-parented calls of tools that call a model (their
`tool` column set, `run_row` pointing at the run). Times are offsets from the step's start.
"""

from __future__ import annotations

import numpy as np

from llmledger.simulator.catalog import MODEL_INDEX, TOOL_INDEX, TOOLS, RouteSpec
from llmledger.simulator.sessions import lognormal
from llmledger.simulator.table import Table

RUN_OK, RUN_ERROR, RUN_TIMEOUT = 0, 1, 2
RUN_STATUSES = ("ok", "error", "timeout")

_TIMEOUT_MS = np.array([t.timeout_ms for t in TOOLS], dtype=np.int64)
_ERROR_RATE = np.array([t.error_rate for t in TOOLS])
_TIMEOUT_RATE = np.array([t.timeout_rate for t in TOOLS])
_MEDIAN = np.array([t.duration_median_ms for t in TOOLS])
_SIGMA = np.array([t.duration_sigma for t in TOOLS])


def plan_tool_runs(route: RouteSpec, turns: Table, last_turn: np.ndarray, rng: np.random.Generator) -> Table:
    """Tool runs for the agent steps of `turns` (every step but a session's last may call one tool).

    Returns columns turn_row, tool, status, duration (ms; final unless the tool calls a model).
    """
    n = len(turns)
    if not route.tools or n == 0:
        return Table({"turn_row": np.zeros(0, dtype=np.int64)})
    names = [name for name, _ in route.tools]
    cumulative = np.cumsum([p for _, p in route.tools])
    choice = np.searchsorted(cumulative, rng.random(n), side="right")
    runs_at = np.flatnonzero((choice < len(names)) & ~last_turn)
    tool = np.array([TOOL_INDEX[name] for name in names], dtype=np.int16)[choice[runs_at]]
    runs = Table({"turn_row": runs_at.astype(np.int64), "tool": tool})
    _draw_outcomes(runs, rng)
    return runs


def _draw_outcomes(runs: Table, rng: np.random.Generator) -> None:
    """status and duration of tool runs; a timed-out run lasts exactly its tool's timeout."""
    n = len(runs)
    tool = runs["tool"]
    timeout_p = _TIMEOUT_RATE[tool]
    u = rng.random(n)
    status = np.full(n, RUN_OK, dtype=np.int8)
    status[u < _ERROR_RATE[tool] + timeout_p] = RUN_ERROR
    status[u < timeout_p] = RUN_TIMEOUT
    duration = rng.lognormal(np.log(_MEDIAN[tool]), _SIGMA[tool])
    duration = np.where(status == RUN_ERROR, duration * rng.uniform(0.1, 1.0, n), duration)
    duration = np.minimum(duration, _TIMEOUT_MS[tool] - 1)
    duration = np.where(status == RUN_TIMEOUT, _TIMEOUT_MS[tool], np.rint(duration))
    runs["status"] = status
    runs["duration"] = duration.astype(np.int64)


def inner_call_rows(runs: Table, rng: np.random.Generator) -> Table:
    """The model calls made inside the successful runs of tools that have an `inner` spec.

    Returns turn_row, run_row, tool, model, prefix, new, out_vis, reasoning, history (= 0).
    """
    rows: list[Table] = []
    for index, spec in enumerate(TOOLS):
        if spec.inner is None:
            continue
        at = np.flatnonzero((runs["tool"] == index) & (runs["status"] == RUN_OK))
        if at.size == 0:
            continue
        per_run = spec.inner.calls_per_run
        run_row = np.repeat(at, per_run)
        n = run_row.size
        new = lognormal(rng, spec.inner.new_median, spec.inner.new_sigma, n)
        rows.append(
            Table(
                {
                    "turn_row": runs["turn_row"][run_row],
                    "run_row": run_row.astype(np.int64),
                    "call_no": np.tile(np.arange(per_run), at.size).astype(np.int64),
                    "tool": np.full(n, index, dtype=np.int16),
                    "model": np.full(n, MODEL_INDEX[spec.inner.model], dtype=np.int16),
                    "prefix": np.full(n, spec.inner.prefix_tokens, dtype=np.int64),
                    "new": np.minimum(new, 60_000).astype(np.int64),
                    "out_vis": np.clip(
                        lognormal(rng, spec.inner.output_median, spec.inner.output_sigma, n), 1, 1500
                    ).astype(np.int64),
                    "reasoning": np.zeros(n, dtype=np.int64),
                    "history": np.zeros(n, dtype=np.int64),
                }
            )
        )
    return Table.concat(rows)
