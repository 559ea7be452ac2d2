"""`llmledger reconcile [--since …] [--until …] [--by model] [--json]`: provider bills against the
logged calls — the capture rate per provider and the invisible spend (billed, never logged) per
key / model / day, at the finest grain each provider's cost export has.

Reads the store directly when it is free, else goes through the service holding it (`GET
/v1/reconciliation`, `llmledger.dispatch`), so it works beside `llmledger up`.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import typer

from llmledger.dispatch import ApiOption, store_or_service

if TYPE_CHECKING:
    from rich.console import Console
_DIMENSIONS = ("api_key_id", "model", "service_tier")  # warehouse.queries.reconciliation.DIMENSIONS
_DEFAULT_BY = ("api_key_id", "model")


def _day(text: str, option: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(text[:10]), time(0), tzinfo=UTC)
    except ValueError as err:
        raise typer.BadParameter(f"{text!r} is not a date (YYYY-MM-DD)", param_hint=option) from err


def _money(value: Any) -> str:
    if value is None:
        return "—"
    amount = Decimal(str(value))
    return f"${amount:,.2f}" if abs(amount) >= 1 else f"${amount:,.4f}"


def _share(value: Any) -> str:
    return "—" if value is None else f"{float(value):.1%}"


def _fetch(api: str | None, since: datetime, until: datetime,
           by: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(per-provider rows, per-day rows) as JSON-safe dicts, from the store or the service."""

    def local(wh: Any, _: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        from llmledger.service.reading import table
        from warehouse.queries.reconciliation import capture, reconcile
        from warehouse.queries.scope import Scope

        providers = capture(wh, Scope.all(), since, until, by=by, tag="cli:reconcile")
        rows = reconcile(wh, Scope.all(), since, until, by=by, tag="cli:reconcile")
        return table(providers).rows, table(rows).rows

    def remote(service: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        query = {"start": str(since.date()), "end": str(until.date()), "by": by}
        return (service.get("/v1/reconciliation/providers", **query)["rows"],
                service.get("/v1/reconciliation", **query)["rows"])

    return store_or_service(api, local=local, remote=remote)


def reconcile(
    since: Annotated[str | None, typer.Option(help="First day (UTC); default 30 days before --until.")] = None,
    until: Annotated[str | None, typer.Option(help="End day, exclusive (default today).")] = None,
    by: Annotated[list[str] | None, typer.Option("--by", help="api_key_id, model and/or service_tier (repeatable; "
                                                 "default api_key_id and model), narrowed per provider to what its bill has.")] = None,
    top: Annotated[int, typer.Option(min=0, help="Rows of invisible spend to list.")] = 15,
    as_json: Annotated[bool, typer.Option("--json", help="Print {providers, rows} as JSON.")] = False,
    api: ApiOption = None,
) -> None:
    """Provider bills (cost exports) against logged calls: capture rate and invisible spend."""
    dims = list(dict.fromkeys(by or _DEFAULT_BY))
    unknown = sorted(set(dims) - set(_DIMENSIONS))
    if unknown:
        raise typer.BadParameter(f"{unknown} — choose among {list(_DIMENSIONS)}", param_hint="--by")
    end = _day(until, "--until") if until else datetime.combine(date.today(), time(0), tzinfo=UTC)
    start = _day(since, "--since") if since else end - timedelta(days=30)
    if end <= start:
        raise typer.BadParameter("--until must be after --since", param_hint="--until")
    providers, rows = _fetch(api, start, end, dims)
    if as_json:
        print(json.dumps({"since": str(start.date()), "until": str(end.date()), "providers": providers, "rows": rows},
                         default=str))
        return
    from rich.console import Console

    render(Console(), start, end, providers, rows, top=top)


def render(out: Console, start: datetime, end: datetime, providers: list[dict[str, Any]], rows: list[dict[str, Any]],
           *, top: int = 15) -> None:
    """The per-provider table and the largest invisible spend, as the command prints them."""
    from rich.table import Table

    out.print(f"reconciliation {start:%Y-%m-%d} → {end:%Y-%m-%d} UTC: provider bills against logged calls")
    if not providers:
        out.print("no provider cost exports in this range: enable the openai / anthropic collectors "
                  "(\\[collectors.openai], \\[collectors.anthropic]) and run `llmledger collect`")
        return
    summary = Table("provider", "reconciled by", "days", "billed", "logged", "capture", "invisible")
    for p in providers:
        summary.add_row(p["provider"], p["grain"], str(p["days"]), _money(p["billed_usd"]), _money(p["logged_usd"]),
                        _share(p["capture_rate"]), _money(p["invisible_usd"]))
    out.print(summary)
    invisible = sorted((r for r in rows if r["invisible_usd"] and Decimal(r["invisible_usd"]) > 0),
                       key=lambda r: Decimal(r["invisible_usd"]), reverse=True)
    if not invisible:
        out.print("no invisible spend: every billed dollar is explained by logged calls")
        return
    detail = Table("day", "provider", "api key", "model", "billed", "logged", "invisible",
                   title="invisible spend (billed, not logged), largest first", title_justify="left")
    for r in invisible[:top]:
        detail.add_row(str(r["day"]), r["provider"],
                       r["api_key_id"] or ("—" if "api_key_id" not in r["grain"] else "(none)"),
                       r["model"] or ("—" if "model" not in r["grain"] else "(not per model)"),
                       _money(r["billed_usd"]), _money(r["logged_usd"]), _money(r["invisible_usd"]))
    out.print(detail)
    out.print("[dim]— : that provider's bill is not split by this; (none) / (not per model): bill lines "
              "without a key / model (tool uses and other line items, beside the logged tool cost)[/dim]")
    if len(invisible) > top:
        out.print(f"… and {len(invisible) - top} more rows (--top, or --json for all)")
