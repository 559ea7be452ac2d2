"""`nvidia-smi --query-gpu=… --format=csv[,noheader][,nounits]` output → GPU sample rows.

With a header, its names are used (units in brackets, `utilization.gpu [%]`, are stripped);
without one (`noheader`), `fields` gives the query list. Values may carry units (`98 %`,
`30994 MiB`) or be `[N/A]` / `[Not Supported]` / `N/A`, which become NULL. nvidia-smi prints
local time (`2025/11/03 10:00:00.123`); `timezone` names the machine's zone. Rows that cannot be
read (bad timestamp or GPU index) are reported, never silently dropped.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import ClassVar

import polars as pl

from collectors.base import Batch, Capabilities, Cursor, Kind, Output, Window
from collectors.config import NvidiaSmiConfig
from collectors.errors import ConfigError, ImportFormatError
from ingest.readers import ParseFailure
from ingest.validate import Reason

# query field → gpu_samples column (numbers); the first listed of a column wins
NUMERIC = {
    "utilization.gpu": "util_pct",
    "utilization.memory": "mem_copy_util_pct",
    "memory.total": "fb_total_mib",
    "memory.used": "fb_used_mib",
    "memory.free": "fb_free_mib",
    "temperature.gpu": "temp_c",
    "temperature.memory": "mem_temp_c",
    "power.draw": "power_w",
    "power.draw.average": "power_w",
    "power.draw.instant": "power_w",
    "power.limit": "power_limit_w",
    "clocks.sm": "sm_clock_mhz",
    "clocks.current.sm": "sm_clock_mhz",
}
_TIMESTAMP_FORMATS = ("%Y/%m/%d %H:%M:%S%.f", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S%.f")


def _field_names(header: list[str]) -> list[str]:
    return [h.split("[", 1)[0].strip() for h in header]


def parse_nvidia_smi(text: str, config: NvidiaSmiConfig) -> tuple[pl.DataFrame, list[ParseFailure]]:
    """(gpu_samples rows, rejects): every readable row of the output, and each unreadable one."""
    if not config.node:
        raise ConfigError("nvidia-smi output does not name its machine: pass --node", setting="node")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return pl.DataFrame(), []
    first = [cell.strip() for cell in lines[0].split(",")]
    has_header = first[0].split("[")[0].strip() in {"timestamp", "index", "uuid", "name"} and not first[0][:1].isdigit()
    names = _field_names(first) if has_header else list(config.fields)
    body = "\n".join(lines[1:] if has_header else lines)
    try:
        raw = pl.read_csv(io.StringIO(body), has_header=False, new_columns=names, infer_schema=False,
                          truncate_ragged_lines=False) if body else pl.DataFrame(schema={n: pl.String for n in names})
    except pl.exceptions.ComputeError as err:
        raise ImportFormatError(f"nvidia-smi CSV: {err}; with noheader pass the --query-gpu list as fields") from err
    if raw.width != len(names):
        raise ImportFormatError(f"nvidia-smi CSV has {raw.width} columns but {len(names)} fields were named")
    raw = raw.with_columns(pl.all().str.strip_chars()).with_row_index("_row")
    first_line = 2 if has_header else 1
    if "timestamp" not in raw.columns or "index" not in raw.columns:
        raise ImportFormatError("nvidia-smi output needs the timestamp and index fields in --query-gpu")

    def number(field: str) -> pl.Expr:  # "98 %", "30994 MiB", "[N/A]" → 98.0, 30994.0, null
        return pl.col(field).str.extract(r"^(-?\d+(?:\.\d+)?)").cast(pl.Float64, strict=False)

    ts = pl.coalesce([pl.col("timestamp").str.to_datetime(f, strict=False, time_unit="ms")
                      for f in _TIMESTAMP_FORMATS]).dt.replace_time_zone(config.timezone).dt.convert_time_zone("UTC")
    columns: dict[str, pl.Expr] = {}
    for field, column in NUMERIC.items():
        if field in raw.columns and column not in columns:
            columns[column] = number(field)
    frame = raw.select(
        "_row", "timestamp", "index", ts.alias("ts"), pl.col("index").cast(pl.UInt16, strict=False).alias("gpu"),
        (pl.col("uuid") if "uuid" in raw.columns else pl.lit("")).alias("gpu_uuid"),
        (pl.col("name") if "name" in raw.columns else pl.lit("")).alias("gpu_model"),
        *(expr.alias(name) for name, expr in columns.items()),
    )
    bad = frame.filter(pl.col("ts").is_null() | pl.col("gpu").is_null())
    problems = [
        ParseFailure(row + first_line, Reason.INVALID_TIMESTAMP if stamp is None else Reason.INVALID_TYPE,
                     f"nvidia-smi row with unreadable timestamp {timestamp!r} or GPU index {index!r}",
                     lines[row + first_line - 1].encode())
        for row, timestamp, stamp, index in zip(bad["_row"], bad["timestamp"], bad["ts"], bad["index"], strict=True)
    ]
    good = frame.filter(pl.col("ts").is_not_null() & pl.col("gpu").is_not_null()).drop("_row", "timestamp", "index")
    return good.with_columns(
        pl.lit(config.project).alias("project"), pl.lit(config.node).alias("node"), pl.lit("nvidia-smi").alias("source"),
        pl.lit("").alias("gpu_instance"), pl.lit(config.node).alias("hostname"),
        pl.col("ts").dt.cast_time_unit("ms"),
        pl.when(pl.col("util_pct").is_not_null()).then(pl.lit("utilization.gpu")).otherwise(pl.lit(""))
        .alias("util_source") if "util_pct" in good.columns else pl.lit("").alias("util_source"),
    ), problems


class NvidiaSmiImport:
    """Imports a file of nvidia-smi CSV output."""

    name: ClassVar[str] = "nvidia-smi"
    Config: ClassVar[type[NvidiaSmiConfig]] = NvidiaSmiConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        kind=Kind.FILE,
        outputs=frozenset({Output.GPU_SAMPLES}),
        incremental=False,
        backfill=False,
        summary="nvidia-smi --query-gpu CSV (with or without header / units)",
    )

    def __init__(self, config: NvidiaSmiConfig) -> None:
        self.config = config

    def collect(self, window: Window, cursor: Cursor | None) -> Iterator[Batch]:
        """The whole file as one batch (nvidia-smi logs are small: one row per GPU per interval)."""
        if self.config.path is None:
            raise ConfigError("nvidia-smi: no file to import", setting="path")
        frame, problems = parse_nvidia_smi(self.config.path.read_text(encoding="utf-8", errors="replace"), self.config)
        if window.start is not None and frame.height:
            frame = frame.filter(pl.col("ts") >= window.start)
        if window.end is not None and frame.height:
            frame = frame.filter(pl.col("ts") < window.end)
        yield Batch(Output.GPU_SAMPLES, frame=frame, rejects=problems,
                    notes=[f"{len(problems)} unreadable rows dead-lettered"] if problems else [])
