"""The newcomer's first run: a simulated month of multi-provider traffic, with every incident the
signals detect, ingested through the real pipeline into the configured warehouse; the metrics of
the self-hosted vLLM nodes that served its self-hosted calls (vLLM and DCGM samples); and the
signals evaluated over the month, so its incidents are alerts with causes from the first screen.
Without budgets of your own, the demo's team budget (from the ground truth) is used. The
notifications of that simulated history are recorded as handled, never sent or logged one by one:
they describe the past of traffic that never happened."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import logging

import polars as pl

from collectors.base import Output
from collectors.config import GpuPrice
from ingest.node_metrics import SampleWriter, load_gpu_prices
from ingest.pipeline import Pipeline
from ingest.tool_runs import ToolRunWriter
from llmledger.progress import SILENT, Feed
from llmledger.settings import Settings
from warehouse.client import Warehouse
from warehouse.queries.scope import Scope

log = logging.getLogger("llmledger.demo")


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
    incidents: int = 0
    bill_rows: int = 0  # the providers' cost and usage export rows (reconciliation)


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
    feed: Feed = SILENT,
    signals: bool = True,
    now: datetime | None = None,
    nodes: bool = True,
) -> DemoResult:
    """Simulate and ingest `days` of traffic ending today, seed the nodes' samples (`nodes`) and
    (`signals`) evaluate the signals over it; idempotent for the same seed and dates. `now` pins the instant the
    demo treats as the present (default: the wall clock), so tests can place it on any calendar day.
    `feed` shows the progress of each stage."""
    from llmledger.simulator import SimulationConfig, ground_truth, iter_days
    from llmledger.simulator.bills import seed_provider_bills

    now = (now or datetime.now(UTC)).astimezone(UTC)
    start, end = demo_window(days, now.date())
    # the last day is simulated only up to now: the future is not ours to record
    end = min(end, now)
    config = SimulationConfig(
        start=start, days=days, calls_per_day=calls_per_day, seed=seed, incidents=True, end_at=end
    )
    truth = ground_truth(config)
    truth_path = truth_file(settings)
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    truth_path.write_text(truth.to_json(), encoding="utf-8")
    feed = feed or SILENT
    advance_day = feed.task("simulate and ingest (days)", days)
    written = duplicates = runs = 0
    tool_writer = ToolRunWriter(wh)
    self_hosted: list[pl.DataFrame] = []
    with Pipeline(wh, settings) as pipeline:
        for day in iter_days(config):
            result = pipeline.ingest_frame(day.calls, source="simulator")
            written += result.written
            duplicates += result.duplicates
            runs += tool_writer.write(day.tool_runs)
            if nodes:
                self_hosted.append(self_hosted_calls(day.calls))
            advance_day(1)
        bill_rows = seed_provider_bills(wh, pipeline.catalog, config.range_start, end)
    samples = 0
    if nodes:
        advance_nodes = feed.task("self-hosted node metrics (days)", days)
        samples = seed_nodes(wh, settings, pl.concat(self_hosted), config.range_start, end, seed=seed,
                             on_day=lambda: advance_nodes(1))
    seed_routing_replays(wh, end, seed=seed)
    incidents = 0
    if signals:
        advance_signals = feed.task("evaluate the signals over the range", 1)
        incidents = backfill_signals(wh, with_demo_budget(settings), config.range_start + SIGNAL_WARM_UP, end)
        settled = settle_replayed_notifications(wh)
        advance_signals(1)
        if settled:
            log.info("demo: %d notifications of its simulated incidents recorded as handled, not sent", settled)
    return DemoResult(start, end, written, duplicates, runs, truth_path, samples, incidents, bill_rows)


SIGNAL_WARM_UP = timedelta(days=2)  # baselines need some history before the first evaluated instant


def truth_file(settings: Settings) -> Path:
    """Where the demo keeps its ground truth."""
    return settings.home / "demo" / "ground_truth.json"


def with_demo_budget(settings: Settings) -> Settings:
    """`settings` plus the demo's monthly budget (the ground truth's budget_overrun team), when no
    budget is configured and a demo has been seeded; unchanged otherwise."""
    path = truth_file(settings)
    if settings.signals.budgets or not path.is_file():
        return settings
    from llmledger.settings import Budget
    from llmledger.simulator import GroundTruth

    try:
        overrun = GroundTruth.from_json(path.read_text(encoding="utf-8")).incident("budget_overrun")
    except (KeyError, ValueError):
        return settings
    budget = Budget(team=overrun.scope.get("team"), monthly_usd=Decimal(str(overrun.details["budget_usd"])))
    signals = settings.signals.model_copy(update={"budgets": [budget]})
    return settings.model_copy(update={"signals": signals})


def backfill_signals(wh: Warehouse, settings: Settings, since: datetime, until: datetime) -> int:
    """Evaluate every signal at each instant of [since, until) — what the scheduler would have done
    had it run all month; returns the incidents open or resolved afterwards. Their notifications wait
    in the outbox like any others."""
    from alerts.evaluate import evaluate_signals
    from warehouse.queries.alerts import incidents

    if since >= until:
        return 0
    evaluate_signals(wh, settings, since=since, at=until)
    return incidents(wh, Scope.all(), limit=100_000).height


def settle_replayed_notifications(wh: Warehouse) -> int:
    """Record the pending notifications of the demo's replayed history as handled (`logged`) without
    sending or logging each: nobody needs paging about a month of simulated incidents. Returns how many."""
    from dataclasses import replace

    from alerts.store import STATE_LOCK, notification_from_row, write_notifications
    from warehouse.queries.alerts import outbox

    now = datetime.now(UTC)
    with STATE_LOCK:
        pending = [notification_from_row(r) for r in outbox(wh, states=["pending"], limit=1_000_000).iter_rows(named=True)]
        write_notifications(wh, [replace(n, state="logged", sent_at=now) for n in pending])
    return len(pending)


def self_hosted_calls(calls: pl.DataFrame) -> pl.DataFrame:
    """The self-hosted calls of a simulated day, in the columns the node simulator reads."""
    from llmledger.simulator.nodes import CALL_COLUMNS

    return calls.filter(pl.col("deployment") == "self_hosted").select(CALL_COLUMNS)


def seed_routing_replays(wh: Warehouse, at: datetime, *, seed: int = 7) -> int:
    """The offline replays of the demo's cascade routes, for the routing page's threshold advice."""
    from llmledger.simulator.replays import seed_replays

    return seed_replays(wh, at=at, seed=seed)


DEMO_GPU_PRICE = GpuPrice(gpu_model="H100", usd_per_gpu_hour=Decimal("2.50"))  # a neo-cloud H100's hourly rate


def seed_nodes(
    wh: Warehouse, settings: Settings, calls: pl.DataFrame, start: datetime, end: datetime, *, seed: int = 7,
    on_day: Callable[[], None] | None = None,
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
        if on_day is not None:
            on_day()
    load_gpu_prices(wh, settings.collectors.gpu_prices or [DEMO_GPU_PRICE])
    return written
