"""Numbers as people read them, for every table, chart, caption and e-mail: money, counts,
percentages, durations, instants, and human column titles with their units.

Pure functions, no I/O and no imports beyond the standard library, so both the dashboards (which
reach the service only over HTTP) and the weekly report can use the same layer. Money arrives as
Decimal (or a float/int/str of one) and is rounded only here. Nothing returns "None" or "nan": a
missing value is `MISSING` ("—").
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MISSING = "—"
MINUS = "−"  # U+2212: a typographic minus, as in "−$15.00"
Number = Decimal | float | int | str | None


def _decimal(value: Number) -> Decimal | None:
    """The value as a finite Decimal, or None when it is missing (None, NaN, ±inf, not a number)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        out = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return out if out.is_finite() else None


def _rounded(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _signed(text: str, negative: bool) -> str:
    return f"{MINUS}{text}" if negative else text


def money(value: Number, *, places: int | None = None) -> str:
    """US dollars with thousands separators and the sign before the symbol: $1,234.57, −$15.00.

    `places=None` (tables, captions): cents, except non-zero amounts under a cent, which keep two
    significant digits ($0.0042) so a per-call cost is not shown as $0.00. `places=n`: exactly n
    decimals (rounded half up; a value that rounds to zero has no sign)."""
    amount = _decimal(value)
    if amount is None:
        return MISSING
    if places is None and amount != 0 and abs(amount) < Decimal("0.01"):
        digits = max(2, -abs(amount).adjusted() + 1)  # two significant digits
        text = f"{_rounded(abs(amount), digits):f}".rstrip("0")
        return _signed(f"${text}", amount < 0)
    shown = _rounded(amount, 2 if places is None else places)
    return _signed(f"${abs(shown):,.{2 if places is None else places}f}", shown < 0)


def _short(size: Decimal) -> str | None:
    """A non-negative amount from 1,000 up in three significant digits and a suffix (12.3k, 2.50M);
    None below 1,000."""
    for limit, suffix in ((Decimal(10) ** 9, "B"), (Decimal(10) ** 6, "M"), (Decimal(10) ** 3, "k")):
        if size >= limit:
            scaled = size / limit
            digits = 2 if scaled < 10 else 1 if scaled < 100 else 0
            return f"{_rounded(scaled, digits):,.{digits}f}{suffix}"
    return None


def money_compact(value: Number) -> str:
    """Short money for headlines and chart labels: $950, $12.3k, $2.50M, $1.2B (sub-dollar as `money`)."""
    amount = _decimal(value)
    if amount is None:
        return MISSING
    short = _short(abs(amount))
    if short is not None:
        return _signed(f"${short}", amount < 0)
    if abs(amount) >= 100:
        return _signed(f"${_rounded(abs(amount), 0):,.0f}", amount < 0)
    return money(amount)


def signed_money(value: Number, *, places: int | None = 2) -> str:
    """A change in money: +$12.30, −$4.00, $0.00."""
    amount = _decimal(value)
    if amount is None:
        return MISSING
    positive = amount > 0 and (places is None or _rounded(amount, places) > 0)
    return f"+{money(amount, places=places)}" if positive else money(amount, places=places)


def count(value: Number) -> str:
    """A whole number with thousands separators: 1,659 (never 1659.00); rounded half up."""
    number = _decimal(value)
    if number is None:
        return MISSING
    shown = _rounded(number, 0)
    return _signed(f"{abs(shown):,.0f}", shown < 0)


def compact(value: Number) -> str:
    """A large count in few characters: 1.23M, 12.3k, 999."""
    number = _decimal(value)
    if number is None:
        return MISSING
    short = _short(abs(number))
    return count(number) if short is None else _signed(short, number < 0)


def number(value: Number, *, places: int = 1) -> str:
    """A measured quantity with separators and fixed decimals: 1,234.5."""
    amount = _decimal(value)
    if amount is None:
        return MISSING
    shown = _rounded(amount, places)
    return _signed(f"{abs(shown):,.{places}f}", shown < 0)


def percent(value: Number, digits: int = 1, *, signed: bool = False) -> str:
    """A fraction as a percentage: 0.1234 → 12.3% (`signed`: +12.3%, −4.0%); rounded half up."""
    fraction = _decimal(value)
    if fraction is None:
        return MISSING
    shown = _rounded(fraction * 100, digits)
    sign = MINUS if shown < 0 else "+" if signed and shown > 0 else ""
    return f"{sign}{abs(shown):,.{digits}f}%"


def change(value: Number, digits: int = 0) -> str:
    """A relative change: +25%, −10%; nothing before (None) reads "new"."""
    return "new" if _decimal(value) is None else percent(value, digits, signed=True)


def duration_ms(value: Number) -> str:
    """A duration given in ms, in the unit that reads best: 850 ms, 12.3 s, 4.5 min, 2.0 h, 3.5 days."""
    ms = _decimal(value)
    if ms is None:
        return MISSING
    size = abs(ms)
    if size < 1000:
        text = f"{_rounded(size, 0):,.0f} ms"
    elif size < 60_000:
        text = f"{_rounded(size / 1000, 1):,.1f} s"
    elif size < 3_600_000:
        text = f"{_rounded(size / 60_000, 1):,.1f} min"
    elif size < 172_800_000:
        text = f"{_rounded(size / 3_600_000, 1):,.1f} h"
    else:
        text = f"{_rounded(size / 86_400_000, 1):,.1f} days"
    return _signed(text, ms < 0)


def seconds(value_ms: Number, *, places: int = 2) -> str:
    """A duration given in ms, in seconds with fixed decimals (for columns in seconds): 1.25."""
    ms = _decimal(value_ms)
    return MISSING if ms is None else number(ms / 1000, places=places)


def _instant(value: object) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return value if isinstance(value, datetime) else None


def timestamp(value: datetime | None, *, seconds: bool = False) -> str:
    """An instant in UTC: 2025-11-03 14:05 UTC (naive = UTC; an ISO 8601 string is read first)."""
    value = _instant(value)
    if value is None:
        return MISSING
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def moment(value: datetime | str | None) -> str:
    """An instant in few characters, in UTC: Nov 17 15:45."""
    value = _instant(value)
    if value is None:
        return MISSING
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.strftime("%b %d %H:%M")


def weekday_time(value: datetime | None) -> str:
    """An instant within a week, in UTC: Mon 03 Nov 14:05 UTC."""
    value = _instant(value)
    if value is None:
        return MISSING
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.strftime("%a %d %b %H:%M UTC")


def text(value: object) -> str:
    """Any other cell: None and NaN as "—", empty strings as "(none)"."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    return str(value) if str(value) != "" else "(none)"


# ---- chart axes: the same conventions as d3-format strings for Plotly (d3 writes −$15, not $−15)

D3_COUNT = ",.0f"
D3_PERCENT = ".0%"


def d3_money(largest: float | Decimal | None) -> str:
    """The d3 format of a money axis whose largest absolute value is `largest`: whole dollars from
    $100, cents from $0.10, finer below."""
    top = abs(float(largest or 0))
    return "$,.0f" if top >= 100 else "$,.2f" if top >= 0.1 else "$,.4~f"


# ---- column titles and kinds ------------------------------------------------------------------

# Titles of the read API's columns as people name them, with units. Columns not listed get a
# title from their name (`title`), which also knows the unit suffixes.
TITLES: dict[str, str] = {
    "key": "value", "calls": "calls", "requests": "requests", "errors": "errors",
    "unpriced_calls": "unpriced calls",
    "cost_usd": "API cost ($)", "infra_cost_usd": "self-hosted GPU cost ($)", "total_usd": "total cost ($)",
    "input_cost_usd": "input ($)", "cache_read_cost_usd": "cache reads ($)", "cache_write_cost_usd": "cache writes ($)",
    "output_cost_usd": "output ($)", "tool_cost_usd": "tools ($)", "batch_discount_usd": "batch discount ($)",
    "provider_reported_cost_usd": "provider-reported cost ($)",
    "input_tokens": "input tokens", "cache_read_tokens": "cache-read tokens", "cache_write_tokens": "cache-write tokens",
    "output_tokens": "output tokens", "reasoning_tokens": "reasoning tokens", "prompt_tokens": "prompt tokens",
    "generation_tokens": "generated tokens", "tokens": "tokens",
    "latency_mean_ms": "mean latency (s)", "latency_p50_ms": "p50 latency (s)", "latency_p95_ms": "p95 latency (s)",
    "latency_p99_ms": "p99 latency (s)", "ttft_p50_ms": "p50 TTFT (s)", "ttft_p95_ms": "p95 TTFT (s)",
    "ttft_p99_ms": "p99 TTFT (s)", "ttft_slo_ms": "TTFT SLO (s)", "tpot_p50_ms": "p50 TPOT (ms/token)",
    "tpot_p99_ms": "p99 TPOT (ms/token)", "queue_p50_ms": "p50 queue (s)", "queue_p99_ms": "p99 queue (s)",
    "latency_ms": "latency (s)", "ttft_ms": "TTFT (s)", "tpot_ms": "TPOT (ms/token)", "queue_ms": "queue (s)",
    "util_pct": "GPU utilisation (%)", "gpu_hours": "GPU-hours", "usd_per_gpu_hour": "$ per GPU-hour",
    "cost_per_1m_tokens_usd": "$ per 1M tokens", "cost_per_1m_output_tokens_usd": "$ per 1M output tokens",
    "generation_tokens_per_s_per_gpu": "generated tokens/s per GPU", "token_share": "share of the node's tokens",
    "output_tokens_per_request": "output tokens per request", "unpriced_gpus": "GPUs without a price",
    "gpu_model": "GPU model", "gpus": "GPUs",
    "saved_usd": "saved by reads ($)", "write_premium_usd": "write premium ($)", "net_saved_usd": "net saved ($)",
    "missed_usd": "missed, not cached ($)", "eligible_calls": "calls long enough to cache",
    "uncached_eligible_calls": "of them not cached",
    "ts": "time (UTC)", "opened_at": "opened (UTC)", "changed_at": "changed (UTC)", "resolved_at": "resolved (UTC)",
    "first_seen": "first seen (UTC)", "last_seen": "last seen (UTC)", "at": "at (UTC)", "last_run_at": "last run (UTC)",
    "last_success_at": "last success (UTC)", "starts_at": "from (UTC)", "ends_at": "until (UTC)",
    "lag_s": "lag", "user_id": "user", "api_key_id": "API key", "session_id": "session", "tool_name": "tool",
    "prompt_version": "prompt version", "routing_policy": "routing policy", "cascade_step": "cascade step",
    "event_id": "event id", "route_p99": "route p99 (reasoning tokens)", "times_p99": "× route p99",
    "escalation_rate": "escalation rate", "cost_share": "share of cost", "peak_severity": "peak severity",
    "next_step": "next step", "actual_cost_usd": "actual cost ($)", "all_frontier_cost_usd": "all on frontier ($)",
    "frontier_model": "frontier model", "monthly_usd": "budget per month ($)", "month_usd": "month to date ($)",
    "forecast_usd": "month-end forecast ($)", "used": "used", "forecast_used": "forecast used",
    "input_growth_tokens": "input growth (tokens)", "cumulative_cost_usd": "cumulative cost ($)", "turn": "turn",
}
UNITS = (("_usd", " ($)"), ("_ms", " (s)"), ("_pct", " (%)"), ("_s", " (s)"), ("_tokens", " tokens"))


def title(column: str) -> str:
    """A column's title for people: `latency_p99_ms` → "p99 latency (s)", `infra_cost_usd` →
    "self-hosted GPU cost ($)"; unknown names lose their underscores and keep their unit."""
    if column in TITLES:
        return TITLES[column]
    for suffix, unit in UNITS:
        if column.endswith(suffix):
            stem = column.removesuffix(suffix).replace("_", " ")
            return f"{stem}{unit}"
    return column.replace("_", " ")


def kind(column: str, *, integer: bool = False, floating: bool = False) -> str:
    """How a column's values read: money, seconds (a *_ms duration shown in s), ms (TPOT),
    percent (a 0–1 share), pct (already in %), count, number, time or text."""
    if column.endswith("_usd") or column.endswith("_mtok"):
        return "money"
    if column.startswith("tpot") or column == "decode_ms_per_token":
        return "ms"
    if column.endswith("_ms"):
        return "seconds"
    if column.endswith("_pct"):
        return "pct"
    if column.endswith(("_share", "_rate", "_ratio")) or column in ("used", "forecast_used", "share", "change"):
        return "percent"
    if integer:
        return "count"
    if floating:
        return "number"
    return "text"


def formatter(what: str):  # noqa: ANN201 - a callable of one value
    """The function that writes one value of a column of this `kind`."""
    return {
        "money": money,
        "seconds": seconds,
        "ms": lambda v: number(v, places=1),
        "pct": lambda v: MISSING if _decimal(v) is None else f"{number(v, places=1)}%",
        "percent": percent,
        "count": count,
        "number": lambda v: number(v, places=2),
        "time": lambda v: timestamp(v) if isinstance(v, datetime) else text(v),
        "time_s": lambda v: timestamp(v, seconds=True) if isinstance(v, datetime) else text(v),
    }.get(what, text)
