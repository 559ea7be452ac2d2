"""The dashboards' pure parts: break-even arithmetic, colours, number formats, time ranges."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
import pytest

from dashboards import economics, formatting, palette
from dashboards.client import View
from dashboards.controls import bar_grain, grain_for, range_of, step_seconds


def test_break_even_follows_the_brief_formulas() -> None:
    work = economics.Workload(calls_per_month=1e6, input_tokens_per_call=1000, output_tokens_per_call=500)
    price = economics.ApiPrice(Decimal("0.5"), Decimal("1.5"))
    host = economics.SelfHost(Decimal("2.5"), tokens_per_s_per_gpu=1000, gpus_per_node=2)
    assert price.per_call(work) == pytest.approx((1000 * 0.5 + 500 * 1.5) / 1e6)
    # GPU-hours = calls × output ÷ (tokens/s × 3600); whole 2-GPU nodes all month, at least one
    one_node = 2 * economics.HOURS_PER_MONTH * 2.5
    assert economics.self_hosted_monthly(np.array([1e6]), work, host)[0] == pytest.approx(one_node)
    gpu_hours = 1e9 * 500 / (1000 * 3600)
    nodes = np.ceil(gpu_hours / (economics.HOURS_PER_MONTH * 2))
    assert economics.self_hosted_monthly(np.array([1e9]), work, host)[0] == pytest.approx(nodes * one_node)
    crossing = economics.crossing(work, price, host)
    assert crossing == pytest.approx(one_node / price.per_call(work), rel=0.01)
    assert economics.crossing(work, economics.ApiPrice(Decimal(0), Decimal(0)), host) is None
    assert economics.self_hosted_per_1m_output(host) == pytest.approx(2.5 / 3600 * 1000)


def test_colours_are_stable_and_distinct_within_a_chart() -> None:
    assert palette.color("anthropic") == palette.PROVIDERS["anthropic"]
    assert palette.color("gpt-4o") == palette.MODELS["gpt-4o"]
    routes = [f"route-{i}" for i in range(14)]
    first, again = palette.color_map(routes), palette.color_map(list(reversed(routes)))
    assert first == again and len(set(first.values())) == len(routes)
    assert palette.color("some-team") == palette.color("some-team")


def test_numbers_read_as_money_percentages_and_counts() -> None:
    assert formatting.money(Decimal("1234.565")) == "$1,234.57"
    assert formatting.money(Decimal("0.004213")) == "$0.0042"
    assert formatting.money(Decimal("-3")) == "−$3.00"
    assert formatting.money(Decimal("2500000")) == "$2.50M"
    assert formatting.money(None) == "—" and formatting.money(float("nan")) == "—"
    assert formatting.percent(0.1234) == "12.3%" and formatting.signed_percent(None) == "new"
    assert formatting.count(1_234_567) == "1.23M" and formatting.count(999) == "999"
    assert formatting.duration_ms(850) == "850 ms" and formatting.duration_ms(12_300) == "12.3 s"


def test_time_ranges_and_bucket_widths() -> None:
    end = datetime(2025, 11, 20, 15, 31, tzinfo=UTC)
    assert range_of("7d", end=end) == (datetime(2025, 11, 13, 15, 31, tzinfo=UTC), end)
    assert range_of("mtd", end=end)[0] == datetime(2025, 11, 1, tzinfo=UTC)
    assert range_of("custom", end=end, first=date(2025, 11, 3), last=date(2025, 11, 1)) == (
        datetime(2025, 11, 1, tzinfo=UTC), datetime(2025, 11, 4, tzinfo=UTC))
    day, month = View(*range_of("24h", end=end)), View(*range_of("30d", end=end))
    assert (grain_for(day), grain_for(month), bar_grain(day), bar_grain(month)) == ("5min", "hour", "hour", "day")
    assert step_seconds(day) == 300 and step_seconds(month) == 3 * 3600
