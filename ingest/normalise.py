"""Vectorised normalisation of a batch of raw call records into canonical columns.

Everything here is Polars expressions over whole columns; the only per-item Python is the name
resolver, which runs once per distinct (provider, model) pair. Steps:

- token counts from a provider-native `usage` object where the canonical fields are absent
  (canonical fields win when both are present);
- timestamps (ISO 8601 with offset or naive-as-UTC, or epoch s/ms/µs/ns) to UTC milliseconds;
- provider and model names to catalogue ids (`ingest.catalog`), the reported model kept as `model_raw`;
- the service tier from the record or its usage object; a `batch` tier marks a Batch API call;
- defaults for absent attribution, outcome and routing fields.

Validation happens afterwards (`ingest.validate`) on the columns this produces; `ts_raw` is kept
for its messages.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType

import orjson
import polars as pl

from ingest.catalog import SELF_HOSTED, Catalog
from ingest.schema import READ_SCHEMA, TOKEN_FIELDS, USAGE_SCHEMA, Deployment, Status

_ISO_WITH_OFFSET = "%Y-%m-%dT%H:%M:%S%.f%#z"
_ISO_NAIVE = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d")


def conform(raw: pl.DataFrame) -> pl.DataFrame:
    """Give a frame every column of the read schema, with the schema's types (`ts` may stay a datetime).

    Absent columns become nulls. Present columns of another type are cast leniently; a value
    that does not cast becomes null and its row is flagged in `_invalid_type` (name of the column).
    """
    columns: list[pl.Expr] = []
    problems: list[pl.Expr] = []
    if raw.schema.get("usage") == pl.String:
        decoded, undecodable = decode_usage(raw["usage"])
        raw = raw.with_columns(decoded)
        problems.append(pl.when(pl.lit(undecodable)).then(pl.lit("usage")))
    schema = raw.schema  # built once: each `frame.schema` builds the whole mapping anew
    for name, dtype in READ_SCHEMA.items():
        if name not in schema:
            columns.append(pl.lit(None, dtype=dtype).alias(name))
            continue
        current = schema[name]
        if name == "ts" and isinstance(current, pl.Datetime):
            # already a datetime (simulator, Parquet): kept as one, naive meaning UTC
            aware = pl.col(name) if current.time_zone else pl.col(name).dt.replace_time_zone("UTC")
            columns.append(aware.dt.convert_time_zone("UTC").dt.cast_time_unit("ms").alias(name))
            continue
        if current == dtype:
            columns.append(pl.col(name))
            continue
        if isinstance(dtype, pl.Struct) or current == pl.Null:
            cast = pl.col(name).cast(dtype, strict=False)
        elif dtype == pl.String and isinstance(current, (pl.Struct, pl.List)):
            cast = pl.col(name).struct.json_encode() if isinstance(current, pl.Struct) else pl.col(name).cast(pl.String)
        elif dtype == pl.Boolean and current == pl.String:
            lowered = pl.col(name).str.to_lowercase().str.strip_chars()
            cast = pl.when(lowered.is_in(["true", "1", "yes"])).then(True).when(
                lowered.is_in(["false", "0", "no", ""])
            ).then(False)
        else:
            cast = pl.col(name).cast(dtype, strict=False)
        columns.append(cast.alias(name))
        problems.append(pl.when(pl.col(name).is_not_null() & cast.is_null()).then(pl.lit(name)))
    frame = raw.select(columns + ([pl.coalesce(problems).alias("_invalid_type")] if problems else []))
    if "_invalid_type" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias("_invalid_type"))
    return frame


def decode_usage(text: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Usage objects from JSON text (CSV / Parquet columns), and a mask of the values that are not
    JSON objects (decoded as null, so their rows are flagged `invalid_type` instead of failing the
    batch). Only a batch that has such a value pays for finding it row by row."""
    try:
        return text.str.json_decode(USAGE_SCHEMA), pl.Series("undecodable", [False] * text.len())
    except Exception:  # noqa: BLE001 - polars raises ComputeError for any malformed value
        values = text.to_list()
        bad = [not _is_json_object(value) for value in values]
        cleaned = pl.Series(text.name, [None if b else v for v, b in zip(values, bad, strict=True)], dtype=pl.String)
        return cleaned.str.json_decode(USAGE_SCHEMA), pl.Series("undecodable", bad)


def _is_json_object(value: str | None) -> bool:
    if value is None:
        return True
    try:
        return isinstance(orjson.loads(value), dict)
    except orjson.JSONDecodeError:
        return False


def _usage_field(*path: str) -> pl.Expr:
    expr = pl.col("usage")
    for part in path:
        expr = expr.struct.field(part)
    return expr


@functools.cache
def usage_token_columns() -> Mapping[str, pl.Expr]:
    """Canonical token counts derived from a native usage object (null where it has none); built
    once (expressions are immutable), since building them costs more than a small batch's evaluation.

    Shapes are told apart by their keys, which do not overlap: Gemini's camelCase counts, OpenAI
    chat's prompt/completion tokens, and input/output tokens shared by OpenAI Responses (cache as
    a *subset* in input_tokens_details) and Anthropic (cache reads and writes *in addition* to
    input_tokens, hence the sum).
    """
    u = _usage_field
    zero = pl.lit(0, dtype=pl.Int64)
    gemini = u("promptTokenCount").is_not_null() | u("candidatesTokenCount").is_not_null()
    chat = u("prompt_tokens").is_not_null() | u("completion_tokens").is_not_null()
    anthropic_reads = u("cache_read_input_tokens")
    anthropic_writes = pl.coalesce(
        u("cache_creation_input_tokens"),
        u("cache_creation", "ephemeral_5m_input_tokens").fill_null(0)
        + u("cache_creation", "ephemeral_1h_input_tokens").fill_null(0),
    )
    write_1h = u("cache_creation", "ephemeral_1h_input_tokens")
    input_tokens = (
        pl.when(gemini)
        .then(u("promptTokenCount").fill_null(0) + u("toolUsePromptTokenCount").fill_null(0))
        .when(chat)
        .then(u("prompt_tokens"))
        .otherwise(u("input_tokens") + anthropic_reads.fill_null(0) + anthropic_writes.fill_null(0))
    )
    cache_read = (
        pl.when(gemini)
        .then(u("cachedContentTokenCount"))
        .when(chat)
        .then(u("prompt_tokens_details", "cached_tokens"))
        .otherwise(pl.coalesce(anthropic_reads, u("input_tokens_details", "cached_tokens")))
    )
    cache_write_5m = (
        pl.when(gemini)
        .then(zero)
        .when(chat)
        .then(u("prompt_tokens_details", "cache_write_tokens"))
        .otherwise(
            pl.coalesce(
                # Responses first: Anthropic's write sum reads 0, not null, on a Responses object
                u("input_tokens_details", "cache_write_tokens"),
                u("cache_creation", "ephemeral_5m_input_tokens"),
                anthropic_writes - write_1h.fill_null(0),
            )
        )
    )
    output_tokens = (
        pl.when(gemini)
        .then(u("candidatesTokenCount").fill_null(0) + u("thoughtsTokenCount").fill_null(0))
        .when(chat)
        .then(u("completion_tokens"))
        .otherwise(u("output_tokens"))
    )
    reasoning = (
        pl.when(gemini)
        .then(u("thoughtsTokenCount"))
        .when(chat)
        .then(u("completion_tokens_details", "reasoning_tokens"))
        .otherwise(
            pl.coalesce(u("output_tokens_details", "reasoning_tokens"), u("output_tokens_details", "thinking_tokens"))
        )
    )
    has_usage = pl.col("usage").is_not_null()
    derived = {
        "input_tokens": input_tokens,
        "cache_read_tokens": cache_read,
        "cache_write_5m_tokens": cache_write_5m,
        "cache_write_1h_tokens": pl.when(gemini | chat).then(zero).otherwise(write_1h),
        "output_tokens": output_tokens,
        "reasoning_tokens": reasoning,
        "web_searches": u("server_tool_use", "web_search_requests"),
    }
    return MappingProxyType({name: pl.when(has_usage).then(expr) for name, expr in derived.items()})


def parse_timestamps(text: pl.Series) -> pl.Series:
    """UTC millisecond datetimes from ISO 8601 text or epoch numbers; null where unparseable.

    The common form (ISO with an offset or Z) is parsed for all rows; the other forms only for the
    rows the first pass could not read, so a clean batch costs one pass.
    """
    parsed = text.str.to_datetime(_ISO_WITH_OFFSET, time_unit="ms", strict=False)
    if parsed.dtype.time_zone != "UTC":  # type: ignore[union-attr]
        parsed = parsed.dt.convert_time_zone("UTC")
    missing = parsed.is_null() & text.is_not_null()
    if not missing.any():
        return parsed
    index = missing.arg_true()
    rest = text.gather(index)
    attempts = [rest.str.to_datetime(fmt, time_unit="ms", time_zone="UTC", strict=False) for fmt in _ISO_NAIVE]
    numeric = rest.str.strip_chars().cast(pl.Float64, strict=False)
    magnitude = numeric.abs()
    epoch_ms = (
        pl.select(
            pl.when(magnitude < 1e11)
            .then(numeric * 1e3)
            .when(magnitude < 1e14)
            .then(numeric)
            .when(magnitude < 1e17)
            .then(numeric / 1e3)
            .otherwise(numeric / 1e6)
            .round(0)
            .cast(pl.Int64, strict=False)
        )
        .to_series()
        .cast(pl.Datetime("ms"))
        .dt.replace_time_zone("UTC")
    )
    fallback = pl.select(pl.coalesce([*attempts, epoch_ms])).to_series()
    return parsed.scatter(index, fallback)


def normalise(frame: pl.DataFrame, *, source: str, catalog: Catalog) -> pl.DataFrame:
    """Canonical columns for a conformed batch (see module docstring); adds `ts_raw` and `model_raw`."""
    usage_tokens = usage_token_columns()
    frame = frame.with_columns(
        *(pl.coalesce(pl.col(name), usage_tokens[name]).alias(name) for name in TOKEN_FIELDS),
    )
    if isinstance(frame.schema["ts"], pl.Datetime):
        parsed = pl.col("ts")
        raw_ts = pl.col("ts").cast(pl.String)
    else:
        parsed = pl.lit(parse_timestamps(frame["ts"]))
        raw_ts = pl.col("ts")
    frame = frame.with_columns(
        raw_ts.alias("ts_raw"),
        parsed.alias("ts"),
        pl.col("model").str.strip_chars().alias("model"),
    )
    resolved = catalog.resolve_frame(frame.filter(pl.col("model").is_not_null() & (pl.col("model") != "")))
    frame = frame.join(resolved, on=["provider", "model"], how="left", nulls_equal=True, maintain_order="left")
    provider = pl.col("provider_id").fill_null(pl.col("provider").str.to_lowercase()).fill_null("unknown")
    # the record's tier, else the native usage object's (Anthropic reports Message Batches results as
    # service_tier "batch"): a batch tier is a Batch API call, priced at the batch rates
    tier = pl.coalesce(pl.col("service_tier"), pl.col("usage").struct.field("service_tier")).str.strip_chars() \
        .str.to_lowercase()
    return frame.with_columns(
        pl.col("model").alias("model_raw"),
        pl.col("model_id").fill_null(pl.col("model")).alias("model"),
        provider.alias("provider"),
        pl.col("source").fill_null(source),
        pl.col("project").fill_null("default"),
        pl.col("status").str.to_lowercase().fill_null(Status.OK.value),
        pl.col("deployment")
        .str.to_lowercase()
        .fill_null(pl.when(provider == SELF_HOSTED).then(pl.lit(Deployment.SELF_HOSTED.value)).otherwise(
            pl.lit(Deployment.API.value)
        )),
        tier.alias("service_tier"),
        pl.col("is_batch").fill_null(False) | (tier == "batch").fill_null(False),
        pl.col("stream").fill_null(False),
        pl.col("escalated").fill_null(pl.col("cascade_step").fill_null(0) > 0),
        *(pl.col(name).fill_null(0) for name in TOKEN_FIELDS),
        pl.col("provider_reported_cost_usd").str.strip_chars().alias("reported_cost_raw"),
        pl.col("provider_reported_cost_usd").str.strip_chars().cast(pl.Decimal(38, 18), strict=False),
    ).drop("provider_id", "model_id", "known", "usage")
