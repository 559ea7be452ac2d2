"""Validation rules for normalised call records, each a named reason.

A rule is a vectorised condition over the batch; a row takes the reason of the first rule it
breaks and goes to the dead-letter table with a human-readable detail. Rows breaking none are
written. Parse failures (`malformed_json`, `invalid_type`) are found earlier, by the readers.
The rules' expressions are built once per batch shape and limits (the moment "now" enters as a
column), since building them costs more than evaluating them on a push request's few rows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import polars as pl

from ingest.schema import FIELD_MAX_CHARS, TOKEN_FIELDS, Deployment, Status


class Reason(StrEnum):
    """Why a record was dead-lettered."""

    MALFORMED_JSON = "malformed_json"
    INVALID_TYPE = "invalid_type"
    MISSING_TIMESTAMP = "missing_timestamp"
    INVALID_TIMESTAMP = "invalid_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    MISSING_MODEL = "missing_model"
    MISSING_ID = "missing_id"
    FIELD_TOO_LONG = "field_too_long"
    NEGATIVE_TOKENS = "negative_tokens"
    IMPOSSIBLE_TOKENS = "impossible_tokens"
    CACHE_EXCEEDS_INPUT = "cache_exceeds_input"
    REASONING_EXCEEDS_OUTPUT = "reasoning_exceeds_output"
    INVALID_STATUS = "invalid_status"
    INVALID_DEPLOYMENT = "invalid_deployment"
    INVALID_LATENCY = "invalid_latency"
    INVALID_COST = "invalid_cost"
    PROJECT_NOT_ALLOWED = "project_not_allowed"
    INVALID_SPAN = "invalid_span"  # an OTLP span with non-hex ids or non-numeric times


@dataclass(frozen=True)
class Limits:
    """Bounds the rules check against."""

    now: datetime
    max_future_skew_s: int
    max_tokens_per_call: int
    project: str | None = None  # set: every record must belong to this project (a project-bound API key)


_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = "_latest_ms"  # column split_valid adds: the newest `ts` allowed (now + skew), epoch ms


def _any(exprs: list[pl.Expr]) -> pl.Expr:
    return pl.any_horizontal(exprs)


def _too_long(columns: list[str]) -> pl.Expr:
    """The name and length of the first text field over its cap (`FIELD_MAX_CHARS`), else null."""
    found = [
        pl.when(pl.col(name).str.len_chars() > cap).then(
            pl.format("{} has {} characters; at most {} are kept", pl.lit(name), pl.col(name).str.len_chars(),
                      pl.lit(cap)))
        for name, cap in FIELD_MAX_CHARS.items() if name in columns
    ]
    return pl.coalesce(found) if found else pl.lit(None, dtype=pl.String)


def rules(limits: Limits, columns: list[str] | None = None) -> list[tuple[Reason, pl.Expr, pl.Expr]]:
    """(reason, breaks-the-rule condition, detail) in the order they are checked. The future-time rule
    compares against the `_latest_ms` column (`split_valid` adds it from `limits.now`)."""
    ts_ms = pl.col("ts").dt.epoch("ms")
    cache = pl.col("cache_read_tokens") + pl.col("cache_write_5m_tokens") + pl.col("cache_write_1h_tokens")
    tokens = [pl.col(name) for name in TOKEN_FIELDS]
    statuses = [s.value for s in Status]
    deployments = [d.value for d in Deployment]
    ttft, latency = pl.col("ttft_ms"), pl.col("latency_ms")
    too_long = _too_long(list(FIELD_MAX_CHARS) if columns is None else columns)
    return [
        (Reason.INVALID_TYPE, pl.col("_invalid_type").is_not_null(),
         pl.format("field {} has a value of the wrong type", pl.col("_invalid_type"))),
        (Reason.MISSING_TIMESTAMP, pl.col("ts_raw").is_null() | (pl.col("ts_raw").str.strip_chars() == ""),
         pl.lit("no ts: every call needs its request start time")),
        (Reason.INVALID_TIMESTAMP, pl.col("ts").is_null() | (ts_ms < int(_EARLIEST.timestamp() * 1000)),
         pl.format("ts {} is not ISO 8601 or epoch time after 2000-01-01", pl.col("ts_raw"))),
        (Reason.FUTURE_TIMESTAMP, ts_ms > pl.col(_LATEST),
         pl.format("ts {} is more than {}s in the future", pl.col("ts_raw"), pl.lit(limits.max_future_skew_s))),
        (Reason.MISSING_MODEL, pl.col("model_raw").is_null() | (pl.col("model_raw") == ""),
         pl.lit("no model: every call needs the model it was sent to")),
        (Reason.MISSING_ID, pl.col("event_id").is_not_null() & (pl.col("event_id").str.strip_chars() == ""),
         pl.lit("event_id is present but blank; omit it to derive one from the record")),
        (Reason.FIELD_TOO_LONG, too_long.is_not_null(), too_long),
        (Reason.NEGATIVE_TOKENS, _any([t < 0 for t in tokens]),
         pl.lit("a token or tool-use count is negative")),
        (Reason.IMPOSSIBLE_TOKENS, _any([t > limits.max_tokens_per_call for t in tokens]),
         pl.format("a token count exceeds {} per call", pl.lit(limits.max_tokens_per_call))),
        (Reason.CACHE_EXCEEDS_INPUT, cache > pl.col("input_tokens"),
         pl.format("cache reads + writes ({}) exceed input_tokens ({}); input_tokens must include cached tokens",
                   cache, pl.col("input_tokens"))),
        (Reason.REASONING_EXCEEDS_OUTPUT, pl.col("reasoning_tokens") > pl.col("output_tokens"),
         pl.format("reasoning_tokens ({}) exceed output_tokens ({}); output_tokens must include reasoning",
                   pl.col("reasoning_tokens"), pl.col("output_tokens"))),
        (Reason.INVALID_STATUS, ~pl.col("status").is_in(statuses),
         pl.format("status {} is not one of " + "/".join(statuses), pl.col("status"))),
        (Reason.INVALID_DEPLOYMENT, ~pl.col("deployment").is_in(deployments),
         pl.format("deployment {} is not one of " + "/".join(deployments), pl.col("deployment"))),
        (Reason.INVALID_LATENCY,
         (ttft < 0).fill_null(False) | (latency < 0).fill_null(False) | (ttft > latency).fill_null(False),
         pl.format("ttft_ms ({}) / latency_ms ({}) negative or ttft after the end", ttft, latency)),
        (Reason.INVALID_COST,
         (pl.col("reported_cost_raw").is_not_null() & pl.col("provider_reported_cost_usd").is_null())
         | (pl.col("provider_reported_cost_usd") < 0).fill_null(False),
         pl.format("provider_reported_cost_usd {} is not a non-negative decimal", pl.col("reported_cost_raw"))),
    ] + ([(Reason.PROJECT_NOT_ALLOWED, pl.col("project") != limits.project,
           pl.format("project {} is not {}, the project this API key is bound to", pl.col("project"),
                     pl.lit(limits.project)))] if limits.project is not None else [])


def latest_ms(limits: Limits) -> int:
    """The newest `ts` the limits allow, in epoch milliseconds."""
    return int(limits.now.timestamp() * 1000) + limits.max_future_skew_s * 1000


@functools.lru_cache(maxsize=64)
def _checks(max_future_skew_s: int, max_tokens_per_call: int, project: str | None,
            columns: tuple[str, ...]) -> tuple[pl.Expr, pl.Expr]:
    """The `reason` and `detail` expressions of a batch shape under these limits (built once)."""
    limits = Limits(now=_EARLIEST, max_future_skew_s=max_future_skew_s, max_tokens_per_call=max_tokens_per_call,
                    project=project)  # `now` is not read by the expressions: it arrives as `_latest_ms`
    checks = rules(limits, list(columns))
    reason = pl.when(checks[0][1]).then(pl.lit(checks[0][0].value))
    for name, condition, _ in checks[1:]:
        reason = reason.when(condition).then(pl.lit(name.value))
    detail = pl.when(pl.lit(False)).then(pl.lit(""))
    for name, _, message in checks:
        detail = detail.when(pl.col("reason") == name.value).then(message)
    return reason.otherwise(None).alias("reason"), detail.alias("detail")


def split_valid(frame: pl.DataFrame, limits: Limits) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(good rows, bad rows with `reason` and `detail` columns); row order kept within each."""
    reason, detail = _checks(limits.max_future_skew_s, limits.max_tokens_per_call, limits.project,
                             tuple(frame.columns))
    flagged = (frame.lazy().with_columns(pl.lit(latest_ms(limits), dtype=pl.Int64).alias(_LATEST))
               .with_columns(reason).drop(_LATEST).collect())
    if flagged["reason"].null_count() == flagged.height:  # the common case: nothing to split off
        return frame, flagged.clear()
    good = flagged.filter(pl.col("reason").is_null()).drop("reason")
    bad = flagged.filter(pl.col("reason").is_not_null())
    return good, bad.with_columns(detail)
