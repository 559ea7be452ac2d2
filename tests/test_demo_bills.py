"""The demo's provider bills: the daily cost and usage exports equal the logged calls except the one
planted story (a direct batch job on the busiest Anthropic model, working days from the range's
middle), and reconciliation finds exactly that, to the cent."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from llmledger.demo import seed_demo
from llmledger.settings import Settings
from llmledger.simulator.bills import UNLOGGED_SHARE
from tests.conftest import migrated_database
from warehouse.client import Warehouse
from warehouse.queries.reconciliation import capture, reconcile
from warehouse.queries.scope import Scope

NOW = datetime(2026, 6, 12, 13, 30, tzinfo=UTC)  # a Friday: the range holds a weekend and working days


@pytest.fixture(scope="module")
def demo(store: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Warehouse, object]:
    settings = Settings(home=tmp_path_factory.mktemp("home"), warehouse={"path": store})
    with migrated_database(settings) as wh:
        result = seed_demo(wh, settings, days=6, calls_per_day=3000, signals=False, now=NOW)
        yield wh, result


def test_bills_match_the_logged_calls_but_the_planted_direct_job(demo: tuple[Warehouse, object]) -> None:
    wh, result = demo
    assert result.bill_rows > 0
    start, end = datetime(2026, 6, 7, tzinfo=UTC), datetime(2026, 6, 12, tzinfo=UTC)  # whole days only
    rows = reconcile(wh, Scope.all(), start, end, by=("model",))
    assert set(rows["provider"]) == {"openai", "anthropic"}
    assert rows["grain"].unique().to_list() == ["model"]
    off = rows.filter(pl.col("diff_usd") != 0)
    # one Anthropic model, working days from the middle (Jun 9, a Tuesday) on: 9, 10, 11
    assert off["provider"].unique().to_list() == ["anthropic"] and off["model"].n_unique() == 1
    assert sorted(d.isoformat() for d in off["day"]) == ["2026-06-09", "2026-06-10", "2026-06-11"]
    for row in off.iter_rows(named=True):
        token_usd = wh.scalar(
            "SELECT sum(cost_usd - tool_cost_usd) FROM calls WHERE provider = 'anthropic' AND model = {m:String} "
            "AND toDate(ts) = {d:Date} AND deployment = 'api'", {"m": row["model"], "d": row["day"]})
        assert row["diff_usd"] == row["invisible_usd"] == pytest.approx(token_usd * UNLOGGED_SHARE, abs=Decimal("1e-15"))
        assert row["provider_input_tokens"] > row["logged_input_tokens"]
    matched = rows.filter(pl.col("diff_usd") == 0)
    assert matched.height > 2 * off.height
    assert (matched["provider_input_tokens"] == matched["logged_input_tokens"]).all()
    summary = {r["provider"]: r for r in capture(wh, Scope.all(), start, end, by=("model",)).iter_rows(named=True)}
    assert summary["openai"]["capture_rate"] == 1.0
    assert 0.9 < summary["anthropic"]["capture_rate"] < 1.0
    assert summary["anthropic"]["invisible_usd"] == off["invisible_usd"].sum()


def test_reseeding_replaces_the_bills(demo: tuple[Warehouse, object]) -> None:
    """The demo is idempotent for the same seed and dates: its bills too (a re-fetch replaces)."""
    from ingest.catalog import Catalog
    from llmledger.simulator.bills import seed_provider_bills

    wh, result = demo
    live = "SELECT count(), sum(cost_usd) FROM provider_costs_live"
    before = wh.query_rows(live)
    seed_provider_bills(wh, Catalog(()), result.start, result.end)
    assert wh.query_rows(live) == before
