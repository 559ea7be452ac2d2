"""Idempotent writes of node metric samples, and the GPU price table.

Samples (GPU, vLLM gauges/counters, histogram buckets) are stored raw. A batch is anti-joined on
its natural key (node, series, timestamp) against what is stored in its time range, so importing
the same nvidia-smi file or scrape twice changes nothing — the same approach as calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import polars as pl

from ingest.collected import Output
from ingest.settings import GpuPrice
from ingest.writer import conform_to
from warehouse.client import ARROW_RELATION, Warehouse
from warehouse.rollups import ROLLUPS

# natural key of a sample row, after (project, node) and before ts
_SERIES: dict[Output, tuple[str, ...]] = {
    Output.GPU_SAMPLES: ("gpu", "gpu_instance"),
    Output.INFERENCE_SAMPLES: ("model", "engine"),
    Output.INFERENCE_HISTOGRAMS: ("model", "engine", "metric", "le"),
}
# tables feeding a rollup's materialized view: the engine's written-rows count includes the view's rows
_VIEWED = frozenset(r.source for r in ROLLUPS)


class SampleWriter:
    """Writes batches of samples into their tables, dropping rows already stored."""

    def __init__(self, wh: Warehouse) -> None:
        self.wh = wh
        self.columns: dict[Output, dict[str, str]] = {}
        self.sql: dict[Output, str] = {}
        for output, series in _SERIES.items():
            table = output.value
            columns = wh.table_columns(table)
            self.columns[output] = columns
            key = ", ".join(("project", "node", *series, "ts"))
            listed = ", ".join(f"`{c}`" for c in columns)
            self.sql[output] = (
                f"INSERT INTO {table} ({listed}) SELECT {listed} FROM {ARROW_RELATION} "
                f"WHERE ({key}) NOT IN (SELECT {key} FROM {table} "
                "WHERE ts >= {lo:DateTime64(3, 'UTC')} AND ts <= {hi:DateTime64(3, 'UTC')}) "
                f"LIMIT 1 BY {key}"
            )

    def write(self, output: Output, frame: pl.DataFrame) -> int:
        """Insert the new rows of a batch; returns how many were written."""
        if frame.height == 0:
            return 0
        batch = conform_to(frame, self.columns[output])
        span = {"lo": batch["ts"].min(), "hi": batch["ts"].max()}
        if output.value not in _VIEWED:
            return self.wh.written_rows_over_arrow(self.sql[output], batch, span, structure=self.columns[output],
                                                   tag=f"collect:{output.value}", idempotent=True)
        # count our rows: the batch's nodes' samples in its time span, before and after
        span.update(projects=batch["project"].unique().to_list(), nodes=batch["node"].unique().to_list())
        count = (f"SELECT count() FROM {output.value} WHERE ts >= {{lo:DateTime64(3, 'UTC')}} "
                 "AND ts <= {hi:DateTime64(3, 'UTC')} AND project IN {projects:Array(String)} "
                 "AND node IN {nodes:Array(String)}")
        before = int(self.wh.scalar(count, span, tag=f"collect:{output.value}_stored"))
        self.wh.written_rows_over_arrow(self.sql[output], batch, span, structure=self.columns[output],
                                        tag=f"collect:{output.value}", idempotent=True)
        return int(self.wh.scalar(count, span, tag=f"collect:{output.value}_stored")) - before

    def close(self) -> None:
        """Nothing to release: batches travel with their statement (no staging tables)."""


def load_gpu_prices(wh: Warehouse, prices: Sequence[GpuPrice]) -> bool:
    """Make `gpu_prices` hold exactly `prices` (from settings); returns True when it changed."""
    wanted = sorted((p.node, p.gpu_model, Decimal(p.usd_per_gpu_hour)) for p in prices)
    stored = sorted(
        (node, gpu_model, Decimal(price))
        for node, gpu_model, price in wh.query_rows("SELECT node, gpu_model, usd_per_gpu_hour FROM gpu_prices")
    )
    if stored == wanted:
        return False
    wh.command("TRUNCATE TABLE gpu_prices", tag="collect:gpu_prices")
    if wanted:
        frame = pl.DataFrame(
            {"node": [w[0] for w in wanted], "gpu_model": [w[1] for w in wanted],
             "usd_per_gpu_hour": pl.Series([w[2] for w in wanted], dtype=pl.Decimal(38, 18))}
        )
        wh.insert_arrow("gpu_prices", frame, tag="collect:gpu_prices")
    return True
