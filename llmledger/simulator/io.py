"""Files of a simulation: calls.jsonl, tool_runs.jsonl and ground_truth.json, written day by day.

One JSON object per line; `ts` is ISO 8601 UTC with milliseconds and a `Z`; `tags` is a JSON
object (as `CallIn` documents it); absent values are null. Memory stays bounded by one day.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from llmledger.simulator.config import SimulationConfig
from llmledger.simulator.simulation import ground_truth, iter_days

TS_FORMAT = "%Y-%m-%dT%H:%M:%S%.3fZ"


def jsonl_lines(frame: pl.DataFrame) -> pl.Series:
    """One JSON object per row, `ts` as ISO text and a `tags` string column embedded as an object."""
    has_tags = "tags" in frame.columns
    plain = frame.with_columns(pl.col("ts").dt.strftime(TS_FORMAT)).drop("tags", strict=False)
    encoded = pl.struct(plain.columns).struct.json_encode()
    if has_tags:
        tags = frame["tags"]
        encoded = pl.when(pl.lit(tags).is_null()).then(encoded).otherwise(
            pl.concat_str(encoded.str.strip_suffix("}"), pl.lit(',"tags":'), pl.lit(tags), pl.lit("}"))
        )
    return plain.select(encoded.alias("line")).to_series()


def _append(handle, frame: pl.DataFrame) -> None:  # type: ignore[no-untyped-def]
    if frame.height:
        handle.write(jsonl_lines(frame).str.join("\n").item().encode() + b"\n")


def write_simulation(config: SimulationConfig, out_dir: Path) -> list[Path]:
    """Write the simulation of `config` under `out_dir` (created); returns the three paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    calls_path, runs_path, truth_path = (out_dir / name for name in
                                         ("calls.jsonl", "tool_runs.jsonl", "ground_truth.json"))
    with calls_path.open("wb") as calls, runs_path.open("wb") as runs:
        for day in iter_days(config):
            _append(calls, day.calls)
            _append(runs, day.tool_runs)
    truth_path.write_text(ground_truth(config).to_json() + "\n", encoding="utf-8")
    return [calls_path, runs_path, truth_path]
