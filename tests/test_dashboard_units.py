"""The dashboards' pure parts: break-even arithmetic, colours, the shared formatting layer, tables
as text, deep links in every shape, time ranges, and the figures' readability rules (top N plus
others, decade-only log ticks, short labels)."""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from common import formatting, links
from dashboards import economics, figures, palette
from dashboards.client import View
from dashboards.controls import bar_grain, grain_for, range_of, step_seconds
from dashboards.tables import displayed


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
    money = formatting.money
    assert money(Decimal("1234.565")) == "$1,234.57" and money(Decimal("2230.37")) == "$2,230.37"
    assert money(Decimal("0.004213")) == "$0.0042" and money(Decimal("0.0000312")) == "$0.000031"
    assert money(0) == "$0.00" and money(Decimal("21.09")) == "$21.09"  # never $0.0000 beside $21.09
    assert money(Decimal("-15")) == "−$15.00" and money("-0.004", places=2) == "$0.00"
    assert money(Decimal("2500000")) == "$2,500,000.00" and formatting.money_compact(Decimal("2500000")) == "$2.50M"
    assert formatting.money_compact(Decimal("12345")) == "$12.3k" and formatting.money_compact(-950) == "−$950"
    assert formatting.signed_money(Decimal("12.3")) == "+$12.30" and formatting.signed_money(-4) == "−$4.00"
    for missing in (None, float("nan"), float("inf"), "n/a"):
        assert money(missing) == formatting.count(missing) == formatting.percent(missing) == formatting.MISSING
    assert formatting.count(1659.0) == "1,659" and formatting.count(1_234_567) == "1,234,567"
    assert formatting.compact(1_234_567) == "1.23M" and formatting.compact(999) == "999"
    assert formatting.percent(0.1234) == "12.3%" and formatting.percent(Decimal("0.125"), 0, signed=True) == "+13%"
    assert formatting.change(None) == "new" and formatting.change(-0.1) == "−10%"
    assert formatting.duration_ms(850) == "850 ms" and formatting.duration_ms(12_300) == "12.3 s"
    assert formatting.duration_ms(1_159_920_000) == "13.4 days" and formatting.seconds(1234) == "1.23"
    assert formatting.timestamp(datetime(2025, 11, 3, 14, 5, tzinfo=UTC)) == "2025-11-03 14:05 UTC"
    assert formatting.timestamp("2025-11-03T14:05:09Z", seconds=True) == "2025-11-03 14:05:09 UTC"
    assert formatting.d3_money(2230) == "$,.0f" and formatting.d3_money(0.004) == "$,.4~f"


def test_column_titles_are_human_and_carry_units() -> None:
    assert formatting.title("latency_mean_ms") == "mean latency (s)"
    assert formatting.title("util_pct") == "GPU utilisation (%)"
    assert formatting.title("infra_cost_usd") == "self-hosted GPU cost ($)"
    assert formatting.title("something_new_usd") == "something new ($)"
    assert formatting.kind("tpot_p99_ms") == "ms" and formatting.kind("ttft_p99_ms") == "seconds"


def test_tables_are_text_without_none_or_nan() -> None:
    frame = pl.DataFrame({"cost_usd": [Decimal("2230.37"), None, Decimal("-15")],
                          "latency_p99_ms": [1234.0, float("nan"), None], "input_tokens": [1659, None, 3],
                          "util_pct": [5.3, None, 1.0], "route": ["a", None, ""],
                          "ts": [datetime(2025, 11, 3, tzinfo=UTC), None, None]},
                         schema_overrides={"cost_usd": pl.Decimal(38, 18)})
    shown, kinds = displayed(frame)
    assert kinds == {"cost_usd": "money", "latency_p99_ms": "seconds", "input_tokens": "count", "util_pct": "pct",
                     "route": "text", "ts": "time"}
    assert shown.row(0) == ("$2,230.37", "1.23", "1,659", "5.3%", "a", "2025-11-03 00:00 UTC")
    assert shown.row(1) == ("—",) * 6
    assert shown.row(2)[0] == "−$15.00" and shown.row(2)[4] == "(none)"
    per_call = pl.DataFrame({"cost_usd": [Decimal("0.0123"), Decimal("0.0093"), Decimal("0.00065"), Decimal(0)]},
                            schema={"cost_usd": pl.Decimal(38, 18)})
    assert displayed(per_call)[0]["cost_usd"].to_list() == ["$0.0123", "$0.0093", "$0.0007", "$0.0000"]


def test_deep_links_in_every_shape_read_the_same() -> None:
    report = links.read({"start": "2025-11-03", "end": "2025-11-10", "team": "search"})
    assert report.params() == {"range": "custom", "from": "2025-11-03", "to": "2025-11-09", "f": ["team:search"]}
    slack = links.read({"signal": "cache_hit_collapse", "scope.route": "chat", "scope.period": "2025-11",
                        "at": "2025-11-03T14:05:00+00:00", "incident": "abc"})
    assert slack.params() == {"range": "custom", "from": "2025-11-02", "to": "2025-11-04", "f": ["route:chat"],
                              "incident": "abc", "signal": "cache_hit_collapse"}
    assert links.read({"at": "2025-11-03T14:05:00 00:00"}).first == date(2025, 11, 2)  # an unescaped "+"
    canonical = links.build("http://h/", "calls", start=datetime(2025, 11, 3, 14, tzinfo=UTC),
                            end=datetime(2025, 11, 3, 18, tzinfo=UTC), filters={"team": "a b"}, session="s1")
    assert canonical == ("http://h/calls?range=custom&from=2025-11-03T14%3A00%3A00Z&to=2025-11-03T18%3A00%3A00Z"
                         "&f=team%3Aa+b&session=s1")
    assert links.read({"from": "2025-11-03T14:00:00Z", "to": "2025-11-03T18:00:00Z"}).params()["to"] == \
        "2025-11-03T18:00:00Z"
    assert links.instants(date(2025, 11, 3), date(2025, 11, 3)) == (datetime(2025, 11, 3, tzinfo=UTC),
                                                                   datetime(2025, 11, 4, tzinfo=UTC))
    mangled = links.read({"start": "yesterday", "end": "2025-11-10", "filter": ["bogus", "model:gpt-4o"]})
    assert mangled.first is None and mangled.filters == ("model:gpt-4o",)
    assert links.is_canonical({"range": "7d", "f": ["team:x"]}) and not links.is_canonical({"team": "x"})
    assert links.chart_page("cache_hit_collapse")[0] == "caching" and links.chart_page("new_signal")[0] == ""


def test_figures_stay_readable() -> None:
    rows = pl.DataFrame({"key": [f"route-{i}" for i in range(30)], "cost_usd": [float(i) for i in range(30)]})
    kept = figures.top_with_others(rows, key="key", value="cost_usd", n=12)
    assert kept.height == 13 and kept["key"][-1] == "others (18)" and kept["cost_usd"][-1] == sum(range(18))
    assert figures.log_ticks([3, 45_000])["ticktext"] == ["1", "10", "100", "1k", "10k", "100k"]
    assert figures.short("claude-haiku-4-5-20251001-with-a-long-suffix") == "claude-haiku-4-5-2…ng-suffix"
    assert figures.short(None) == "—"


def test_dashboards_reach_the_service_only_over_http() -> None:
    """dashboards/ imports itself, the pure bottom package `common` and third-party packages: never
    the warehouse, ingest, alerts or the application shell (layering: they talk to the API)."""
    allowed: set[str] = set()  # nothing of llmledger: formatting, links and query pairs live in common/
    for path in (Path(__file__).resolve().parents[1] / "dashboards").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [f"{node.module}.{a.name}" if node.module == "llmledger" else node.module or "" for a in node.names] \
                if isinstance(node, ast.ImportFrom) else []
            for name in names:
                top = name.split(".")[0]
                assert top not in ("warehouse", "ingest", "alerts", "collectors") and (
                    top != "llmledger" or name in allowed), f"{path.name} imports {name}"


def test_time_ranges_and_bucket_widths() -> None:
    end = datetime(2025, 11, 20, 15, 31, tzinfo=UTC)
    assert range_of("7d", end=end) == (datetime(2025, 11, 13, 15, 31, tzinfo=UTC), end)
    assert range_of("mtd", end=end)[0] == datetime(2025, 11, 1, tzinfo=UTC)
    assert range_of("custom", end=end, first=date(2025, 11, 3), last=date(2025, 11, 1)) == (
        datetime(2025, 11, 1, tzinfo=UTC), datetime(2025, 11, 4, tzinfo=UTC))
    day, month = View(*range_of("24h", end=end)), View(*range_of("30d", end=end))
    assert (grain_for(day), grain_for(month), bar_grain(day), bar_grain(month)) == ("5min", "hour", "hour", "day")
    assert step_seconds(day) == 300 and step_seconds(month) == 3 * 3600


def test_no_page_parameter_reads_as_an_old_link_parameter() -> None:
    """A page choice named like a dimension (`model=`) would be taken for an old-style filter and
    rewritten into `f=` on the next run."""
    import re

    taken = set(links.DIMENSIONS) | set(links.OLD_RANGE_KEYS) | {"f", "filter"}
    views = Path(__file__).resolve().parents[1] / "dashboards" / "views"
    names = {m for p in views.glob("*.py") for m in re.findall(r'choice\("([a-z_]+)"', p.read_text())}
    assert names and not names & taken, names & taken
