"""Replay files: a route's queries replayed offline before a cascade goes live (seed §3.13).

A JSONL, CSV or Parquet file with, per query, `score` (or `agreement`, `router_score`,
`confidence`) in [0, 1]; optionally `task` and token counts per model (`cheap_input_tokens`,
`cheap_output_tokens`, `frontier_input_tokens`, `frontier_output_tokens`). A row with a score
outside [0, 1], no score, or negative / non-integer tokens is rejected with its reason; the good
rows are kept. Loaded replays live in `routing_replays`, one `replay_id` per load.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from advisor.errors import ReplayError
from warehouse.client import Warehouse
from warehouse.queries.scope import Scope

SCORE_NAMES = ("score", "agreement", "router_score", "confidence")
TOKEN_COLUMNS = ("cheap_input_tokens", "cheap_output_tokens", "frontier_input_tokens", "frontier_output_tokens")


@dataclass(frozen=True)
class Replay:
    """The good rows (`position`, `score`, `task`, token columns) and the rejected ones (`position`, `reason`)."""

    rows: pl.DataFrame
    rejected: pl.DataFrame
    source_file: str = ""


def read_replay(path: Path) -> Replay:
    """Read and validate a replay file (format from the suffix: .jsonl/.ndjson, .csv, .parquet)."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson", ".json"):
            raw = pl.read_ndjson(path, infer_schema_length=None)
        elif suffix == ".csv":
            raw = pl.read_csv(path, infer_schema_length=None)
        elif suffix == ".parquet":
            raw = pl.read_parquet(path)
        else:
            raise ReplayError(f"{path.name}: unknown replay format {suffix!r} (use .jsonl, .csv or .parquet)")
    except (OSError, pl.exceptions.PolarsError) as err:
        raise ReplayError(f"cannot read the replay {path}: {err}") from err
    return validate(raw, source_file=path.name)


def validate(raw: pl.DataFrame, *, source_file: str = "") -> Replay:
    """Normalise a replay frame and split it into good and rejected rows (vectorised)."""
    name = next((n for n in SCORE_NAMES if n in raw.columns), None)
    if name is None:
        raise ReplayError(f"a replay needs a score column, one of {', '.join(SCORE_NAMES)}; got {raw.columns}")
    frame = raw.with_row_index("position").with_columns(
        pl.col(name).cast(pl.Float64, strict=False).alias("score"),
        (pl.col("task").cast(pl.String).fill_null("") if "task" in raw.columns else pl.lit("")).alias("task"),
    )
    reasons = [pl.when(pl.col("score").is_null() | pl.col("score").is_nan()).then(pl.lit(f"{name} missing or not a number"))
               .when((pl.col("score") < 0) | (pl.col("score") > 1)).then(pl.lit(f"{name} outside [0, 1]"))]
    for col in TOKEN_COLUMNS:
        if col not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.Int64).alias(col))
            continue
        number = pl.col(col).cast(pl.Float64, strict=False)
        bad = (pl.col(col).is_not_null() & number.is_null()) | (number < 0) | (number != number.floor())
        frame = frame.with_columns(pl.when(bad).then(pl.lit(f"{col} not a non-negative whole number"))
                                   .alias(f"_bad_{col}"),
                                   pl.when(bad).then(None).otherwise(number).cast(pl.Int64).alias(col))
        reasons.append(pl.col(f"_bad_{col}"))
    frame = frame.with_columns(pl.concat_str(reasons, separator="; ", ignore_nulls=True).alias("reason"))
    keep = ["position", "score", "task", *TOKEN_COLUMNS]
    good = frame.filter(pl.col("reason").is_null() | (pl.col("reason") == "")).select(keep)
    rejected = frame.filter(pl.col("reason").is_not_null() & (pl.col("reason") != "")).select("position", "reason")
    return Replay(good.with_columns(pl.col("position").cast(pl.UInt32)), rejected, source_file)


def save_replay(wh: Warehouse, replay: Replay, *, project: str, route: str, at: datetime | None = None) -> str:
    """Store the good rows as a new replay of (project, route); returns its id."""
    if replay.rows.is_empty():
        raise ReplayError("the replay has no valid rows to store")
    replay_id = uuid.uuid4().hex
    rows = replay.rows.with_columns(
        pl.lit(project).alias("project"), pl.lit(route).alias("route"), pl.lit(replay_id).alias("replay_id"),
        pl.lit(at or datetime.now(UTC)).cast(pl.Datetime("ms", "UTC")).alias("loaded_at"),
        pl.lit(replay.source_file).alias("source_file"),
        *(pl.col(c).cast(pl.UInt64) for c in TOKEN_COLUMNS),
    )
    wh.insert_arrow("routing_replays", rows, tag="advisor:replay-save")
    return replay_id


def latest_replay(wh: Warehouse, scope: Scope, route: str) -> Replay | None:
    """The newest stored replay of `route` within the scope, or None."""
    params: dict[str, object] = {"route": route}
    cond = scope.clause(params)
    frame = wh.query_df(f"""
        SELECT position, score, task, {', '.join(TOKEN_COLUMNS)}, source_file FROM routing_replays
        WHERE {cond} AND route = {{route:String}} AND replay_id = (
            SELECT argMax(replay_id, loaded_at) FROM routing_replays WHERE {cond} AND route = {{route:String}})
        ORDER BY position
    """, params, tag="advisor:replay-read")
    if frame.is_empty():
        return None
    source = frame["source_file"][0]
    rows = frame.drop("source_file").with_columns(pl.col(c).cast(pl.Int64) for c in TOKEN_COLUMNS)
    return Replay(rows, pl.DataFrame(schema={"position": pl.UInt32, "reason": pl.String}), source)
