"""Numbers as people read them: money, percentages, token counts, durations. Money arrives as
Decimal and is rounded only here, for display."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def money(value: Decimal | float | int | None, *, cents: bool = True) -> str:
    """$1,234.56 (or $1,235 without cents); sub-cent amounts keep 4 significant decimals ($0.0042)."""
    if _missing(value):
        return "—"
    amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
    sign = "−" if amount < 0 else ""
    amount = abs(amount)
    if amount != 0 and amount < Decimal("0.01"):
        return f"{sign}${amount:.2g}" if amount < Decimal("0.0001") else f"{sign}${amount:.4f}".rstrip("0")
    if amount >= Decimal(1_000_000):
        return f"{sign}${amount / Decimal(1_000_000):,.2f}M"
    quantum = Decimal("0.01") if cents else Decimal(1)
    return f"{sign}${amount.quantize(quantum, rounding=ROUND_HALF_UP):,}"


def percent(value: float | None, *, digits: int = 1) -> str:
    """0.1234 → 12.3%."""
    if _missing(value):
        return "—"
    return f"{value * 100:.{digits}f}%"


def signed_percent(value: float | None) -> str:
    """0.25 → +25%, −0.1 → −10%; None (nothing before) → new."""
    if _missing(value):
        return "new"
    return f"{'+' if value >= 0 else '−'}{abs(value) * 100:.0f}%"


def count(value: float | int | None) -> str:
    """1234567 → 1.23M, 12345 → 12.3k, 999 → 999."""
    if _missing(value):
        return "—"
    v = float(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= limit:
            return f"{v / limit:.3g}{suffix}"
    return f"{v:,.0f}"


def duration_ms(value: float | None) -> str:
    """850 → 850 ms, 12_300 → 12.3 s."""
    if _missing(value):
        return "—"
    return f"{value:,.0f} ms" if abs(value) < 1000 else f"{value / 1000:,.1f} s"
