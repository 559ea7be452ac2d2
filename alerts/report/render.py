"""A weekly report as the three things an e-mail carries: HTML (Jinja2 templates in `templates/`,
table layout, CSS inlined by css-inline, images by `cid:`), plain text, and the per-dimension
CSV. Numbers are written by the shared formatting layer (`common.formatting`, the dashboards'
too); the CSV keeps exact decimals as the read API writes them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from alerts.report.charts import Chart
from alerts.report.model import WeeklyReport
from common import formatting as fmt

TEMPLATES = Path(__file__).resolve().parent / "templates"
DIMENSION_TITLES = {"team": "Teams", "route": "Routes", "feature": "Features", "user_id": "Users", "model": "Models"}


@dataclass(frozen=True)
class Rendered:
    """The parts of one report e-mail."""

    subject: str
    html: str
    text: str
    csv: str
    csv_name: str
    charts: tuple[Chart, ...]


def exact(value: Decimal) -> str:
    """A Decimal as the read API writes money: plain digits, no trailing zeros."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def usd(value: Decimal | None, places: int = 2) -> str:
    """$1,234.57 (rounded half up); "—" for None (the shared formatting layer)."""
    return fmt.money(value, places=places)


def signed_usd(value: Decimal | None) -> str:
    """+$12.30 / −$4.00."""
    return fmt.signed_money(value)


def pct(value: Decimal | float | None, places: int = 0, *, signed: bool = False) -> str:
    """25% (or +25% with `signed`); "—" for None."""
    return fmt.percent(value, places, signed=signed)


def ms(value: float | None) -> str:
    """A duration given in ms, in the unit that reads best (850 ms, 12.3 s); "—" for None."""
    return fmt.duration_ms(value)


def when(value: datetime | None) -> str:
    return fmt.weekday_time(value)


def content_id(chart: Chart) -> str:
    """The Content-ID (without angle brackets) an HTML part refers to as `cid:…`."""
    return f"{chart.name}@llmledger"


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "html.j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(usd=usd, signed_usd=signed_usd, pct=pct, ms=ms, when=when, count=fmt.count)
    env.globals.update(dimension_titles=DIMENSION_TITLES, content_id=content_id)
    return env


_ENV = _environment()
_INLINER = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)


def subject(report: WeeklyReport) -> str:
    """`LLM spend 2025-W45 · Team search: $1,234.56 (+12% vs last week)`."""
    change = report.totals.change
    versus = f" ({pct(change, signed=True)} vs last week)" if change is not None else ""
    return f"LLM spend {report.week.label} · {report.audience.title}: {usd(report.totals.cost_usd)}{versus}"


def to_csv(report: WeeklyReport) -> str:
    """The per-dimension table as CSV (exact decimal strings)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(report.table.columns)
    for row in report.table.iter_rows():
        writer.writerow(exact(v) if isinstance(v, Decimal) else ("" if v is None else v) for v in row)
    return buffer.getvalue()


def render(report: WeeklyReport, charts: tuple[Chart, ...] = ()) -> Rendered:
    """Subject, HTML (CSS inlined; charts as `cid:<name>@llmledger` images), text and CSV."""
    audience = "company" if report.audience.team is None else report.audience.team
    context = {"r": report, "charts": charts, "subject": subject(report)}
    html = _INLINER.inline(_ENV.get_template("weekly.html.j2").render(**context))
    text = _ENV.get_template("weekly.txt.j2").render(**context)
    return Rendered(subject(report), html, text, to_csv(report), f"llm-cost-{report.week.label}-{audience}.csv",
                    charts)
