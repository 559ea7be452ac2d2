"""`llmledger routing advise`: the router threshold advice for a route, from a replay file or the
route's logged router scores, as a summary or (`--json`) the API's document for scripts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from llmledger.dispatch import ApiOption

routing_app = typer.Typer(help="Cascade routing: threshold advice from replays or logged scores.", no_args_is_help=True)
console = Console()


def _end(text: str | None) -> datetime | None:
    if text is None:
        return None
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@routing_app.command("advise")
def advise_command(
    route: Annotated[str, typer.Option(help="The route (`route` of its calls) whose cascade to advise on.")],
    replay: Annotated[Path | None, typer.Option(help="Replayed queries: JSONL, CSV or Parquet with a score in "
                                                "[0, 1] per query (default: the route's logged router scores).",
                                                exists=True, dir_okay=False)] = None,
    cheap: Annotated[str | None, typer.Option(help="Cheap model (model or provider/model); default: the "
                                              "route's logged step-0 model.")] = None,
    frontier: Annotated[str | None, typer.Option(help="Frontier model; default: the logged step-1 model.")] = None,
    percentile: Annotated[float, typer.Option(help="Share of requests (%) the threshold keeps on the cheap "
                                              "model (seed: ~70).")] = 70.0,
    current: Annotated[float | None, typer.Option(help="The live threshold (default: inferred from the "
                                                  "logged escalation rate).")] = None,
    days: Annotated[int, typer.Option(help="Days of logged traffic that size the month.")] = 30,
    end: Annotated[str | None, typer.Option(help="End of the measured window (ISO, UTC; default now).")] = None,
    monthly_requests: Annotated[int | None, typer.Option(help="Requests a month, for a route not live yet.")] = None,
    project: Annotated[str | None, typer.Option(help="Only this project's calls (and where --save stores).")] = None,
    save: Annotated[bool, typer.Option(help="Store the replay so the API and the routing page show it.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the advice as JSON.")] = False,
    api: ApiOption = None,
) -> None:
    """Recommend a cascade threshold and show what each threshold would escalate and cost."""
    from decimal import Decimal

    from llmledger.dispatch import perform

    advice = perform("routing.advise", api, upload=replay, route=route, name=replay.name if replay else None,
                     cheap=cheap, frontier=frontier, percentile=percentile, current=current, days=days,
                     end=_end(end), monthly_requests=monthly_requests, project=project, save=save)
    if as_json:
        typer.echo(json.dumps(advice, indent=2))
        return
    rec = advice["recommended"]
    console.print(f"[bold]{route}[/bold] ({advice['routing_policy'] or 'no cascade yet'}): {advice['cheap']} → "
                  f"{advice['frontier']}, {advice['requests_sampled']:,} {advice['source']} scores, "
                  f"{Decimal(advice['monthly_requests']):,.0f} requests/month")
    console.print(f"recommended threshold [bold]{rec['threshold']:.4g}[/bold] (keeps {advice['percentile']:g}% on the "
                  f"cheap model): escalates {rec['escalation_rate']:.1%}, ${Decimal(rec['monthly_cost_usd']):,.2f}/month, "
                  f"frontier share of cost {rec['frontier_cost_share'] or 0:.0%}, saves {rec['saving_vs_frontier'] or 0:.0%} "
                  f"vs all on {advice['frontier']} (${Decimal(rec['all_frontier_usd']):,.2f})")
    if advice["current"]:
        cur = advice["current"]
        console.print(f"current threshold {cur['threshold']:.4g} ({advice['current_source']}): escalates "
                      f"{cur['escalation_rate']:.1%}, ${Decimal(cur['monthly_cost_usd']):,.2f}/month")
    bim = advice["bimodality"]
    console.print(f"bimodality: {bim['method']}: " + (f"dip {bim['dip']:.4f}, p = {bim['p_value']:.3g}" if bim["tested"]
                                                       else f"not run ({bim['requests']} scores)"))
    if advice["classifier_advice"]:
        console.print(f"[yellow]classifier routing: {advice['classifier_advice']}[/yellow]")
    for warning in advice["warnings"]:
        console.print(f"[yellow]warning: {warning}[/yellow]")
    table = Table("threshold", "escalation", "$/month", "frontier share", "saving")
    for row in advice["curve"]["rows"]:
        if round(row["threshold"] * 100) % 10 != 0:
            continue
        table.add_row(f"{row['threshold']:.2f}", f"{row['escalation_rate']:.1%}",
                      f"{Decimal(str(row['monthly_cost_usd'])):,.2f}", f"{row['frontier_cost_share'] or 0:.0%}",
                      f"{row['saving_vs_frontier'] or 0:.0%}")
    console.print(table)
    for row in advice["tasks"]["rows"]:
        console.print(f"  task {row['task']}: {row['queries']} queries, median {row['median_score']:.2f}, "
                      f"own threshold {row['own_threshold']:.2f}, escalates {row['escalation_at_recommended']:.0%} "
                      f"at the recommended point {('— ' + row['seed_guidance']) if row['seed_guidance'] else ''}")
