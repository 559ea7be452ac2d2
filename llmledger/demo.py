"""The newcomer's first run: a simulated month of multi-provider traffic, with every incident the
signals detect, ingested through the real pipeline into the configured warehouse, and the metrics
of the self-hosted vLLM nodes that served its self-hosted calls (vLLM and DCGM samples)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
from rich.progress import Progress

from collectors.base import Output
from collectors.config import GpuPrice
from ingest.node_metrics import SampleWriter, load_gpu_prices
from ingest.pipeline import Pipeline
from ingest.tool_runs import ToolRunWriter
from llmledger.settings import Settings
from warehouse.client import Warehouse


@dataclass(frozen=True)
class DemoResult:
    """What the demo seeding wrote."""

    start: datetime
    end: datetime
    written: int
    duplicates: int
    tool_runs: int
    ground_truth_path: Path
    node_samples: int = 0


def demo_window(days: int, today: date | None = None) -> tuple[datetime, datetime]:
    """The simulated range: `days` whole UTC days ending with today."""
    end_day = datetime.combine(today or datetime.now(UTC).date(), time(0), tzinfo=UTC) + timedelta(days=1)
    return end_day - timedelta(days=days), end_day


def seed_demo(
    wh: Warehouse,
    settings: Settings,
    *,
    days: int = 30,
    calls_per_day: int = 30_000,
    seed: int = 7,
    progress: Progress | None = None,
) -> DemoResult:
    """Simulate and ingest `days` of traffic ending today; idempotent for the same seed and dates."""
    from llmledger.simulator import SimulationConfig, ground_truth, iter_days

    start, end = demo_window(days)
    # the last day is simulated only up to now: the future is not ours to record
    end = min(end, datetime.now(UTC))
    config = SimulationConfig(
        start=start, days=days, calls_per_day=calls_per_day, seed=seed, incidents=True, end_at=end
    )
    truth_path = settings.home / "demo" / "ground_truth.json"
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    truth_path.write_text(ground_truth(config).to_json(), encoding="utf-8")
    task = progress.add_task("simulate and ingest", total=days) if progress else None
    written = duplicates = runs = 0
    tool_writer = ToolRunWriter(wh)
    self_hosted: list[pl.DataFrame] = []
    with Pipeline(wh, settings) as pipeline:
        for day in iter_days(config):
            result = pipeline.ingest_frame(day.calls, source="simulator")
            written += result.written
            duplicates += result.duplicates
            runs += tool_writer.write(day.tool_runs)
            self_hosted.append(self_hosted_calls(day.calls))
            if progress is not None and task is not None:
                progress.advance(task)
    samples = seed_nodes(wh, settings, pl.concat(self_hosted), config.range_start, end, seed=seed)
    return DemoResult(start, end, written, duplicates, runs, truth_path, samples)


def self_hosted_calls(calls: pl.DataFrame) -> pl.DataFrame:
    """The self-hosted calls of a simulated day, in the columns the node simulator reads."""
    from llmledger.simulator.nodes import CALL_COLUMNS

    return calls.filter(pl.col("deployment") == "self_hosted").select(CALL_COLUMNS)


DEMO_GPU_PRICE = GpuPrice(gpu_model="H100", usd_per_gpu_hour=Decimal("2.50"))  # the brief's neo-cloud H100


def seed_nodes(
    wh: Warehouse, settings: Settings, calls: pl.DataFrame, start: datetime, end: datetime, *, seed: int = 7
) -> int:
    """Write the vLLM and DCGM samples of the nodes that served `calls` over [start, end) (idempotent),
    and GPU prices: the configured `collectors.gpu_prices`, else an H100 at $2.50/h. Returns rows written."""
    from llmledger.simulator.nodes import node_samples

    writer = SampleWriter(wh)
    written = 0
    for day in node_samples(calls, start, end, seed=seed):
        written += writer.write(Output.GPU_SAMPLES, day.gpu)
        written += writer.write(Output.INFERENCE_SAMPLES, day.inference)
        written += writer.write(Output.INFERENCE_HISTOGRAMS, day.histograms)
    load_gpu_prices(wh, settings.collectors.gpu_prices or [DEMO_GPU_PRICE])
    return written
