"""Self-hosted infra cost attributed to users, routes, …: each node-hour's GPU cost split over the
calls the node served in that hour by their tokens, idle GPU time kept apart, exact Decimals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest

from collectors.config import GpuPrice
from ingest.node_metrics import load_gpu_prices
from ingest.pipeline import Pipeline
from tests.factories import make_call, write_jsonl
from warehouse.client import Warehouse
from warehouse.queries import nodes
from warehouse.queries.scope import Scope

ALL = Scope.all()
T0 = datetime(2025, 11, 5, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _samples(wh: Warehouse, node: str, gpus: int, hours: int) -> None:
    """A sample every 15 s from T0 to T0 + `hours` (inclusive)."""
    times = [T0 + timedelta(seconds=15 * i) for i in range(hours * 240 + 1)]
    frame = pl.DataFrame({
        "ts": [t for t in times for _ in range(gpus)],
        "node": node, "gpu": [g for _ in times for g in range(gpus)], "gpu_model": "NVIDIA H100 80GB HBM3",
        "source": "test", "util_pct": 50.0,
    }).with_columns(pl.col("ts").dt.cast_time_unit("ms").dt.replace_time_zone("UTC"), pl.col("gpu").cast(pl.UInt16))
    wh.insert_arrow("gpu_samples", frame, tag="test:gpu_samples")


@pytest.fixture
def served(pipeline: Pipeline, wh: Warehouse, tmp_path) -> Warehouse:
    # node-a: 1 GPU at $3.60/h, sampled every 15 s from 10:00 to 13:00
    _samples(wh, "node-a", 1, 3)
    load_gpu_prices(wh, [GpuPrice(gpu_model="H100", usd_per_gpu_hour=Decimal("3.60"))])
    calls = [
        # hour 1: alice 3,000 tokens, bob 1,000 → 3/4 and 1/4 of $3.60
        make_call(ts="2025-11-05T10:10:00Z", user_id="alice", input_tokens=2_000, output_tokens=1_000),
        make_call(ts="2025-11-05T10:40:00Z", user_id="bob", input_tokens=900, output_tokens=100),
        # hour 2: bob alone
        make_call(ts="2025-11-05T11:30:00Z", user_id="bob", input_tokens=10, output_tokens=10),
        # hour 3: nobody (idle); an API call and a call on a node without samples
        make_call(ts="2025-11-05T12:30:00Z", user_id="alice", deployment="api", model="gpt-4o"),
    ]
    for call in calls[:3]:
        call.update(deployment="self_hosted", node="node-a", provider="self_hosted", model="llama-3.1-70b-instruct")
    calls.append({**make_call(ts="2025-11-05T11:05:00Z", user_id="carol", input_tokens=50, output_tokens=50),
                  "deployment": "self_hosted", "node": "node-b", "provider": "self_hosted",
                  "model": "llama-3.1-70b-instruct"})
    assert pipeline.ingest_file(write_jsonl(tmp_path / "calls.jsonl", calls)).written == 5
    return wh


# An interval between samples counts in the hour of its closing sample, and the range starts at
# 10:00: hour 10 has 239 intervals (10:00:15 … 10:59:45), hours 11 and 12 have 240 each.
HOURLY = {10: Decimal("3.60") * 239 / 240, 11: Decimal("3.60"), 12: Decimal("3.60")}


def test_node_hours_are_split_by_tokens_and_idle_time_kept_apart(served: Warehouse) -> None:
    got = nodes.infra_by(served, ALL, "user_id", T0, T0 + 3 * HOUR)
    rows = {r["key"]: r for r in got.iter_rows(named=True)}
    assert rows["alice"]["infra_cost_usd"] == HOURLY[10] * 3 / 4 and rows["alice"]["calls"] == 1
    assert rows["bob"]["infra_cost_usd"] == HOURLY[10] / 4 + HOURLY[11] and rows["bob"]["tokens"] == 1_020
    assert rows["carol"]["infra_cost_usd"] is None and rows["carol"]["uncosted_calls"] == 1  # node-b: no samples
    assert got["key"].to_list()[-1] == nodes.IDLE and rows[nodes.IDLE]["infra_cost_usd"] == HOURLY[12]
    total = sum(r["infra_cost_usd"] or 0 for r in rows.values())
    gpu = nodes.gpu_cost(served, ALL, T0, T0 + 3 * HOUR)["infra_cost_usd"].sum()
    assert total == gpu == sum(HOURLY.values())  # every GPU-dollar is someone's or idle, none counted twice


def test_a_filtered_view_keeps_each_share_of_the_whole_node(served: Warehouse) -> None:
    """Filtering to bob must not hand him alice's share of the node-hour they shared."""
    got = nodes.infra_by(served, ALL, "route", T0, T0 + 3 * HOUR, {"user_id": ["bob"]})
    assert got["key"].to_list() == ["/chat"] and nodes.IDLE not in got["key"].to_list()
    assert got["infra_cost_usd"][0] == HOURLY[10] / 4 + HOURLY[11]


def test_totals_are_api_plus_infra_and_self_hosted_calls_are_not_unpriced(served: Warehouse) -> None:
    """total = API + infra: the GPU-dollars of every node-hour, idle included, beside the API calls'
    token prices; the self-hosted calls (no per-token price) are costed by GPU time, not unpriced."""
    from genai_prices import Usage, calc_price

    from warehouse.queries.attribution import totals

    api_call = calc_price(Usage(input_tokens=1000, output_tokens=200), "gpt-4o", provider_id="openai",
                          genai_request_timestamp=T0).total_price
    row = totals(served, ALL, T0, T0 + 3 * HOUR).row(0, named=True)
    assert row["cost_usd"] == api_call
    assert row["infra_cost_usd"] == sum(HOURLY.values())  # $3.585 + $3.60 + $3.60
    assert row["total_cost_usd"] == api_call + sum(HOURLY.values())
    assert (row["calls"], row["self_hosted_calls"], row["unpriced_calls"], row["uncosted_self_hosted_calls"]) == \
        (5, 4, 0, 1)  # carol's call ran on node-b, which has no GPU samples
    bob = totals(served, ALL, T0, T0 + 3 * HOUR, {"user_id": ["bob"]}).row(0, named=True)
    assert (bob["cost_usd"], bob["infra_cost_usd"]) == (0, HOURLY[10] / 4 + HOURLY[11])
    assert bob["total_cost_usd"] == HOURLY[10] / 4 + HOURLY[11]
