"""The prompt-cache hit ratio: one definition, used by every query that reports one (attribution
totals and the summary, the `/v1/cache` series, the caching windows and the weekly report).

Providers report caching in two ways, and read ÷ (read + write) means something for one only:

- **explicit** caching with reported writes (Anthropic, Claude on Bedrock): the caller marks a
  prefix; each call reports the tokens written to and read from the cache. Hit ratio = cache
  reads ÷ (cache reads + cache writes).
- **automatic** caching, or caching whose writes no call reports (OpenAI, Azure OpenAI, DeepSeek,
  xAI; Gemini, whose `usageMetadata` has cached tokens only — implicit caching is automatic and an
  explicit context cache is written by a separate `cachedContents` request): read ÷ (read + write)
  would be 100% whenever anything was read. Hit ratio = cached ÷ input tokens of the cache-eligible
  calls: successful calls with at least `AUTOMATIC_MIN_INPUT_TOKENS` input tokens (the minimum
  OpenAI and Gemini's implicit cache take), or that used the cache whatever their length.

Several providers together: Σ hit tokens ÷ Σ base tokens, with per call hit = cache reads and
base = reads + writes (explicit) or input (automatic, eligible calls) — sums, so a rollup can keep
them (`calls_cache_hourly.cache_hit_tokens` / `cache_base_tokens`, migration 0055). Calls of
other providers (self-hosted, unknown) count in neither.
"""

from __future__ import annotations

EXPLICIT_PROVIDERS = ("anthropic", "aws")
AUTOMATIC_PROVIDERS = ("openai", "azure", "google", "deepseek", "x-ai")
AUTOMATIC_MIN_INPUT_TOKENS = 1024


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _columns(table: str) -> dict[str, str]:
    prefix = f"{table}." if table else ""
    names = ("provider", "status", "input_tokens", "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens")
    return {name: prefix + name for name in names}


def hit_tokens(table: str = "") -> str:
    """Per call: the tokens served from the cache that count as hits (SQL over `calls`; `table`
    qualifies the columns, as materialized views need)."""
    c = _columns(table)
    return (f"toUInt64(multiIf({c['provider']} IN {_in(EXPLICIT_PROVIDERS)}, {c['cache_read_tokens']}, "
            f"{_eligible(c)}, {c['cache_read_tokens']}, 0))")


def base_tokens(table: str = "") -> str:
    """Per call: the tokens the hits are a share of (SQL over `calls`, see `hit_tokens`)."""
    c = _columns(table)
    written = f"{c['cache_write_5m_tokens']} + {c['cache_write_1h_tokens']}"
    return (f"toUInt64(multiIf({c['provider']} IN {_in(EXPLICIT_PROVIDERS)}, "
            f"{c['cache_read_tokens']} + {written}, {_eligible(c)}, {c['input_tokens']}, 0))")


def _eligible(c: dict[str, str]) -> str:
    """Automatic caching, a successful call long enough to cache — or one that did use the cache."""
    used = f"{c['cache_read_tokens']} + {c['cache_write_5m_tokens']} + {c['cache_write_1h_tokens']} > 0"
    return (f"{c['provider']} IN {_in(AUTOMATIC_PROVIDERS)} AND {c['status']} = 'ok' "
            f"AND ({c['input_tokens']} >= {AUTOMATIC_MIN_INPUT_TOKENS} OR {used})")


def ratio(hit: str, base: str) -> str:
    """The hit ratio of summed hit and base tokens (SQL expressions); NULL when the base is 0."""
    return f"if({base} = 0, NULL, {hit} / {base})"
