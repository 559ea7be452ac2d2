"""Pricing aggregated token groups at base rates, for what-if money (savings, repricing on another
model): the price context of a call and the join to the one standard price cell in force.

Callers group calls first — by model, `is_batch`, `service_tier` and hour — so the join touches a
few thousand rows, not every call. The cell is the base input tier (the tier holding 1 input
token) of the time-of-day window holding the hour's start: exact for every catalogue model
without context-length tiers, and the first tier's price for those with them.
"""

from __future__ import annotations

# the `prices.context` of a group with columns is_batch and service_tier (as ingest's pricing join)
CONTEXT = ("multiIf(is_batch, 'processing=batch', service_tier IN ('default', 'flex', 'priority', 'fast'), "
           "concat('service_tier=', service_tier), '')")


# the same for groups carrying is_batch as text ('true' / 'false'), as `hybrid.rows` gives keys
TEXT_CONTEXT = CONTEXT.replace("multiIf(is_batch,", "multiIf(is_batch = 'true',")


def base_cell(prices: str, group: str, *, provider: str, model: str) -> str:
    """ON conditions joining `prices` (alias) to the cell in force for alias `group`, which has
    `context` and `hour` (DateTime64(3, 'UTC')) columns; `provider` / `model` are SQL expressions."""
    tod = f"toUInt32(toUnixTimestamp64Milli({group}.hour) % 86400000)"
    return (f"{prices}.provider = {provider} AND {prices}.model = {model} AND {prices}.context = {group}.context "
            f"AND {group}.hour >= {prices}.valid_from AND {group}.hour < {prices}.valid_to "
            f"AND {tod} >= {prices}.tod_from_ms AND {tod} < {prices}.tod_to_ms "
            f"AND {prices}.input_above < 1 AND {prices}.input_upto >= 1")
