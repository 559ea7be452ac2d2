"""Per-call derivation: prompt-cache split, outcome and latency, vectorised over a call table.

Input columns: route, model, node, stream, is_batch, prefix, history, new, out_vis, reasoning (and
optionally forced_ok). Output columns follow the canonical semantics: input includes cache reads
and writes, output includes reasoning, and ttft <= latency. Provider caching: Anthropic reads and
writes explicit breakpoints (the route's shared prefix, then the conversation; 5m, or 1h for the
prefix); OpenAI reads automatically in 128-token steps from 1,024 tokens and never reports writes;
Gemini reads its cached content (explicit or implicit). Errors and timeouts carry no tokens.
"""

from __future__ import annotations

import numpy as np

from llmledger.simulator.catalog import MODELS, ROUTES, CachePolicy
from llmledger.simulator.sessions import lognormal
from llmledger.simulator.table import Table

# Outcome codes (frames.py maps them to status strings).
OK, ERROR, TIMEOUT, CANCELLED = 0, 1, 2, 3
STATUSES = ("ok", "error", "timeout", "cancelled")

ERROR_RATE = 0.010  # share of calls failing with an HTTP error (429 / 5xx)
TIMEOUT_RATE = 0.003  # share of calls the client abandons at its timeout
CANCEL_RATE = 0.002  # share of streamed calls the user cancels mid-stream
PREFIX_COLD_RATE = 0.01  # Anthropic calls that find the route's shared cached prefix expired
OPENAI_MIN_CACHE = 1024
OPENAI_CACHE_STEP = 128

PROVIDERS = ("anthropic", "openai", "google", "self_hosted")
# (http_status, error_type, weight) per provider
PROVIDER_ERRORS: dict[str, tuple[tuple[int, str, float], ...]] = {
    "anthropic": ((429, "rate_limit_error", 0.55), (500, "api_error", 0.20), (529, "overloaded_error", 0.25)),
    "openai": (
        (429, "rate_limit_exceeded", 0.60), (500, "server_error", 0.30), (503, "service_unavailable", 0.10)
    ),
    "google": ((429, "RESOURCE_EXHAUSTED", 0.60), (500, "INTERNAL", 0.25), (503, "UNAVAILABLE", 0.15)),
    "self_hosted": ((503, "engine_overloaded", 0.50), (500, "internal_server_error", 0.50)),
}
ERRORS: tuple[tuple[int, str], ...] = tuple(
    (status, kind) for p in PROVIDERS for status, kind, _ in PROVIDER_ERRORS[p]
)
TIMEOUT_ERROR = len(ERRORS)  # error code of timeouts: ("timeout", no HTTP status)
CANCEL_ERROR = TIMEOUT_ERROR + 1  # ("client_cancelled", 499)

_PROVIDER_CODE = np.array([PROVIDERS.index(m.provider) for m in MODELS], dtype=np.int8)
_TTFT = np.array([m.ttft_ms for m in MODELS])
_TPOT = np.array([m.tpot_ms for m in MODELS])
_PREFILL = np.array([m.prefill_ms_per_ktok for m in MODELS])
_MIN_CACHE = np.array([m.min_cacheable_tokens for m in MODELS], dtype=np.int64)
_POLICY = np.array([list(CachePolicy).index(r.cache) for r in ROUTES], dtype=np.int8)
_HIT_RATE = np.array([r.cache_hit_rate for r in ROUTES])
_CACHE_NEW = np.array([r.cache_new_tokens for r in ROUTES])
_CLIENT_TIMEOUT = np.array([r.client_timeout_ms for r in ROUTES], dtype=np.int64)
_WEB_SEARCH = np.array([r.web_search_rate for r in ROUTES])
_P_NONE, _P_PROVIDER, _P_1H, _P_GEMINI = (list(CachePolicy).index(p) for p in CachePolicy)


def provider_code(model: np.ndarray) -> np.ndarray:
    """Index into PROVIDERS of each row's model."""
    return _PROVIDER_CODE[model]


def derive_calls(calls: Table, rng: np.random.Generator) -> Table:
    """Fill the token, outcome and latency columns of a call table (in place; also returned)."""
    n = len(calls)
    if n == 0:
        return calls
    split_cache(calls, rng)
    decide_outcomes(calls, rng)
    time_calls(calls, rng)
    web = (calls["status"] == OK) & (rng.random(n) < _WEB_SEARCH[calls["route"]])
    calls["web_searches"] = np.where(web, rng.integers(1, 4, n), 0).astype(np.int64)
    return calls


def split_cache(calls: Table, rng: np.random.Generator) -> None:
    """input / cache_read / cache_write_5m / cache_write_1h from prefix, history and new tokens."""
    route, model = calls["route"], calls["model"]
    prefix, history, new = calls["prefix"], calls["history"], calls["new"]
    n = len(calls)
    provider = _PROVIDER_CODE[model]
    policy = _POLICY[route]
    hit = rng.random(n) < _HIT_RATE[route]
    cacheable = prefix + history
    zero = np.zeros(n, dtype=np.int64)

    explicit = (policy == _P_PROVIDER) | (policy == _P_1H)
    anthropic = (provider == 0) & explicit & (cacheable >= _MIN_CACHE[model])
    # Two breakpoints: the route's shared prefix (system prompt, tools), kept warm by all sessions, and
    # the session's conversation. A miss loses the conversation only; the rare call that finds the
    # shared prefix expired rewrites it (in the 1-hour cache under the prefix_1h policy).
    prefix_cold = anthropic & (rng.random(n) < PREFIX_COLD_RATE)
    warm_prefix = np.where(prefix_cold, zero, prefix)
    new_written = np.where(_CACHE_NEW[route], new, 0)
    read = np.where(anthropic, np.where(hit, warm_prefix + history, warm_prefix), zero)
    conversation_write = np.where(hit, new_written, history + new_written)
    prefix_write = np.where(prefix_cold, prefix, zero)
    one_hour = policy == _P_1H
    write_5m = np.where(anthropic, conversation_write + np.where(one_hour, 0, prefix_write), zero)
    write_1h = np.where(anthropic & one_hour, prefix_write, zero)

    openai = (provider == 1) & (policy == _P_PROVIDER) & (cacheable >= OPENAI_MIN_CACHE)
    read = np.where(openai & hit, cacheable // OPENAI_CACHE_STEP * OPENAI_CACHE_STEP, read)

    gemini = (provider == 2) & (
        (policy == _P_GEMINI) | ((policy == _P_PROVIDER) & (prefix >= _MIN_CACHE[model]))
    )
    read = np.where(gemini & hit, prefix, read)

    calls["input"] = prefix + history + new
    calls["cache_read"] = read
    calls["cache_write_5m"] = write_5m
    calls["cache_write_1h"] = write_1h


def decide_outcomes(calls: Table, rng: np.random.Generator) -> None:
    """status / error code; failed calls lose their tokens, cancelled ones keep part of the output."""
    n = len(calls)
    u = rng.random(n)
    status = np.full(n, OK, dtype=np.int8)
    status[u < ERROR_RATE + TIMEOUT_RATE + CANCEL_RATE] = CANCELLED
    status[(status == CANCELLED) & ~calls["stream"]] = OK
    status[u < ERROR_RATE + TIMEOUT_RATE] = TIMEOUT
    status[u < ERROR_RATE] = ERROR
    if "forced_ok" in calls:  # rows an incident needs to succeed
        status[calls["forced_ok"]] = OK
    error = np.full(n, -1, dtype=np.int16)
    error[status == TIMEOUT] = TIMEOUT_ERROR
    error[status == CANCELLED] = CANCEL_ERROR
    failed = status == ERROR
    if failed.any():
        provider = _PROVIDER_CODE[calls["model"][failed]]
        pick = rng.random(int(failed.sum()))
        codes = np.zeros(len(pick), dtype=np.int16)
        offset = 0
        for p, name in enumerate(PROVIDERS):
            weights = np.array([w for _, _, w in PROVIDER_ERRORS[name]])
            choice = np.searchsorted(np.cumsum(weights / weights.sum()), pick, side="right")
            choice = np.minimum(choice, len(weights) - 1)
            codes = np.where(provider == p, offset + choice, codes)
            offset += len(weights)
        error[failed] = codes
    out_vis, reasoning = calls["out_vis"].copy(), calls["reasoning"].copy()
    cancelled = status == CANCELLED
    kept = rng.uniform(0.05, 0.8, n)
    out_vis = np.where(cancelled, (out_vis * kept).astype(np.int64), out_vis)
    reasoning = np.where(cancelled, (reasoning * kept).astype(np.int64), reasoning)
    dead = (status == ERROR) | (status == TIMEOUT)
    for name in ("input", "cache_read", "cache_write_5m", "cache_write_1h"):
        calls[name] = np.where(dead, 0, calls[name])
    calls["reasoning_tokens"] = np.where(dead, 0, reasoning)
    calls["output"] = np.where(dead, 0, out_vis + reasoning)
    calls["status"] = status
    calls["error"] = error


def time_calls(calls: Table, rng: np.random.Generator) -> None:
    """queue / ttft / latency in ms (-1 = null): TTFT = queue + warm TTFT + prefill of uncached input;
    latency adds decoding of every output token (reasoning included). Streams alone report TTFT;
    Batch API calls report neither."""
    n = len(calls)
    model, route, status = calls["model"], calls["route"], calls["status"]
    self_hosted = _PROVIDER_CODE[model] == 3
    queue = np.where(self_hosted, lognormal(rng, 15.0, 0.8, n), 0.0)
    uncached = calls["input"] - calls["cache_read"]
    first = _TTFT[model] * rng.lognormal(0.0, 0.22, n) + _PREFILL[model] * uncached / 1000.0 + queue
    decode = np.maximum(calls["output"] - 1, 0) * _TPOT[model] * rng.lognormal(0.0, 0.08, n)
    latency = first + decode + rng.uniform(5.0, 60.0, n)
    latency = np.where(status == ERROR, queue + lognormal(rng, 250.0, 0.6, n), latency)
    latency = np.where(status == TIMEOUT, _CLIENT_TIMEOUT[route], latency)
    ttft = np.where(calls["stream"] & ((status == OK) | (status == CANCELLED)), first, -1.0)
    batch = calls["is_batch"]
    calls["queue"] = np.where(self_hosted & ~batch, np.rint(queue), -1).astype(np.int64)
    calls["ttft"] = np.where(batch, -1, np.rint(ttft)).astype(np.int64)
    calls["latency"] = np.where(batch, -1, np.rint(latency)).astype(np.int64)
    # rounding must not put the first token after the end
    calls["ttft"] = np.minimum(calls["ttft"], calls["latency"])
