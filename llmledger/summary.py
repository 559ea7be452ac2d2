"""The cost-attribution summary printed by `llmledger demo` and `llmledger summary`:
totals (API spend, self-hosted GPU cost and their sum), top routes / users / models, cache hit
ratio and latency percentiles, from the warehouse.

`build_summary` queries it; `Summary.as_dict` / `Summary.from_dict` carry it over the service's API
(`GET /v1/summary`), so the CLI renders the same panel from the store or through the service."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

if TYPE_CHECKING:
    from warehouse.client import Warehouse
    from warehouse.queries.scope import Scope


@dataclass(frozen=True)
class Summary:
    """The numbers the summary shows."""

    start: datetime
    end: datetime
    totals: dict[str, Any]
    top: dict[str, list[dict[str, Any]]]  # per dimension: key, calls, cost_usd
    cache_hit_ratio: float | None
    latency: dict[str, Any]
    unpriced_models: list[tuple[str, int]]
    gpu_costed_models: list[tuple[str, int]]  # self-hosted: no token price, costed by GPU time

    def as_dict(self) -> dict[str, Any]:
        """JSON-shaped (money as exact decimal strings, times as ISO 8601)."""
        out = asdict(self)
        out["start"], out["end"] = self.start.isoformat(), self.end.isoformat()
        return _jsonable(out)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        return cls(start=datetime.fromisoformat(data["start"]), end=datetime.fromisoformat(data["end"]),
                   totals=data["totals"], top=data["top"], cache_hit_ratio=data["cache_hit_ratio"],
                   latency=data["latency"], unpriced_models=[tuple(m) for m in data["unpriced_models"]],  # type: ignore[misc]
                   gpu_costed_models=[tuple(m) for m in data["gpu_costed_models"]])  # type: ignore[misc]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def build_summary(wh: Warehouse, start: datetime, end: datetime, *, scope: Scope | None = None, top_n: int = 5) -> Summary:
    """Query everything the summary shows for [start, end)."""
    import polars as pl

    from warehouse.queries.attribution import cache_hit_ratio, latency_percentiles, totals, usage_by
    from warehouse.queries.ops import unpriced_models
    from warehouse.queries.scope import Scope

    scope = scope or Scope.all()
    tops = {
        dim: usage_by(wh, scope, dim, start, end, limit=top_n, tag=f"summary:{dim}")
        .select("key", "calls", "cost_usd").to_dicts()
        for dim in ("route", "user_id", "model", "team")
    }
    latency = latency_percentiles(wh, scope, start, end, tag="summary:latency")
    unpriced = unpriced_models(wh, scope, start, end, tag="summary:unpriced")
    by_model = unpriced.group_by("deployment", "model", maintain_order=True).agg(pl.col("calls").sum())
    api, self_hosted = (by_model.filter(pl.col("deployment") != "self_hosted"),
                        by_model.filter(pl.col("deployment") == "self_hosted"))
    return Summary(
        start=start,
        end=end,
        totals=totals(wh, scope, start, end, tag="summary:totals").row(0, named=True),
        top=tops,
        cache_hit_ratio=cache_hit_ratio(wh, scope, start, end, tag="summary:cache"),
        latency=latency.row(0, named=True) if latency.height else {},
        unpriced_models=list(api.select("model", "calls").iter_rows()),
        gpu_costed_models=list(self_hosted.select("model", "calls").iter_rows()),
    )


def money(value: object) -> str:
    """Dollars with cents (four decimals under a dollar)."""
    amount = Decimal(str(value or 0))
    return f"${amount:,.2f}" if abs(amount) >= 1 else f"${amount:,.4f}"


def _ms(value: object) -> str:
    return "–" if value is None else f"{float(value):,.0f} ms"  # type: ignore[arg-type]


def render_summary(summary: Summary, console: Console | None = None) -> None:
    """Print the summary as rich tables."""
    console = console or Console()
    t = summary.totals
    calls = int(t["calls"] or 0)  # type: ignore[arg-type]
    cost = Decimal(str(t["cost_usd"] or 0))
    infra = Decimal(str(t["infra_cost_usd"] or 0))
    # two rows of four: eight money-wide columns do not fit an 80-column terminal without cutting digits
    money_head, quality_head = (Table(box=None, expand=True, show_edge=False) for _ in range(2))
    for table, columns in ((money_head, ("calls", "total", "API", "self-hosted GPU")),
                           (quality_head, ("cost / call", "cache hit ratio", "errors", "unpriced calls"))):
        for column in columns:
            table.add_column(column, justify="right", no_wrap=True)
    money_head.add_row(f"[b]{calls:,}[/b]", f"[b]{money(cost + infra)}[/b]", money(cost), money(infra))
    quality_head.add_row(
        money((cost + infra) / calls if calls else 0),
        "–" if summary.cache_hit_ratio is None else f"[b]{summary.cache_hit_ratio:.1%}[/b]",
        f"{int(t['errors'] or 0):,}",  # type: ignore[arg-type]
        f"{int(t['unpriced_calls'] or 0):,}",  # type: ignore[arg-type]
    )
    lat = summary.latency
    latency = Table.grid(padding=(0, 3))
    latency.add_row(
        "[b]latency[/b]",
        f"p50 {_ms(lat.get('latency_p50_ms'))}",
        f"p95 {_ms(lat.get('latency_p95_ms'))}",
        f"p99 {_ms(lat.get('latency_p99_ms'))}",
        f"TTFT p50 {_ms(lat.get('ttft_p50_ms'))} / p99 {_ms(lat.get('ttft_p99_ms'))}",
    )
    tables = []
    titles = {"route": "Top routes", "user_id": "Top users", "model": "Top models", "team": "Teams"}
    for dim, rows in summary.top.items():
        table = Table(title=titles.get(dim, dim), title_justify="left", expand=True)
        table.add_column(dim)
        table.add_column("calls", justify="right")
        table.add_column("cost", justify="right")
        table.add_column("share", justify="right")
        for row in rows:
            share = Decimal(str(row["cost_usd"] or 0)) / cost if cost else Decimal(0)
            table.add_row(str(row["key"] or "(none)"), f"{int(row['calls']):,}", money(row["cost_usd"]), f"{share:.1%}")
        tables.append(table)
    if summary.unpriced_models:
        names = ", ".join(f"{model} ({calls:,} calls)" for model, calls in summary.unpriced_models[:5])
        tables.append(f"[yellow]unpriced models[/yellow] {names}: kept and priced $0 — add a price override "
                      "(\\[pricing.models] in llmledger.toml) and run `llmledger reprice`")
    if summary.gpu_costed_models:
        names = ", ".join(f"{model} ({calls:,} calls)" for model, calls in summary.gpu_costed_models[:5])
        uncosted = int(t["uncosted_self_hosted_calls"] or 0)  # type: ignore[arg-type]
        note = (f"; {uncosted:,} calls ran in node-hours without GPU samples or a GPU price "
                "(\\[[collectors.gpu_prices]])") if uncosted else ""
        tables.append(f"[cyan]self-hosted[/cyan] {names}: costed by GPU time, {money(infra)} of node-hours "
                      f"(in the total){note}")
    span = f"{summary.start:%Y-%m-%d %H:%M} → {summary.end:%Y-%m-%d %H:%M} UTC"
    console.print(Panel(Group(money_head, quality_head, latency, *tables), title=f"llmledger · cost attribution · {span}"))
