"""`GET /metrics` content: the service's own health and the LLM traffic, as Prometheus metric
families (prometheus-client renders the text format).

Traffic figures are warehouse aggregates (`warehouse.queries.metrics.traffic`), re-read at most
every `metrics.cache_s` per scope; the Python here only turns its rows — at most `max_series` + 1
label sets × statuses — into samples. Cost is a float counter of USD: the exact Decimal sum of
each series, rounded once to float64 at the end (see the README's "Prometheus and Grafana").
Health figures (spool, flush, collectors, lease, incidents, ingest counts, query latency) are shown
only to callers not bound to one project: they describe the whole service.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

import polars as pl
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from llmledger.service.state import ServiceState
from warehouse.lease import current_holder
from warehouse.queries import collectors, metrics
from warehouse.queries.scope import Scope

TOKEN_COLUMNS = {kind: f"{kind}_tokens" for kind in metrics.TOKEN_KINDS}


class _Families:
    """A prometheus-client collector yielding prepared families (one registry per scrape)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def render(state: ServiceState, scope: Scope, *, health: bool) -> bytes:
    """The exposition text for a caller reading `scope` (health families when `health`)."""
    registry = CollectorRegistry(auto_describe=False)
    families = list(traffic_families(state, scope))
    if health:
        families += health_families(state, scope)
        registry.register(_Families(state.meters.registry.collect()))
    registry.register(_Families(families))
    return generate_latest(registry)


# ---- LLM traffic ----------------------------------------------------------------------------


def _traffic_frame(state: ServiceState, scope: Scope) -> pl.DataFrame:
    cfg = state.settings.metrics
    key = (scope.projects, tuple(cfg.labels), cfg.max_series, tuple(cfg.latency_buckets_s))
    cached = state.meters.traffic_cache.get(key)
    now = time.monotonic()
    if cached is not None and now - cached[0] < cfg.cache_s:
        return cached[1]
    frame = metrics.traffic(state.read_wh, scope, cfg.labels, max_series=cfg.max_series,
                            buckets_s=cfg.latency_buckets_s)
    state.meters.traffic_cache[key] = (now, frame)
    return frame


def _histogram(name: str, doc: str, labels: list[str], frame: pl.DataFrame, prefix: str,
               bounds: list[float]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=labels)
    for row in frame.iter_rows(named=True):
        if not row[f"{prefix}_count"]:
            continue
        buckets = [(_le(b), float(n)) for b, n in zip(bounds, row[f"{prefix}_le"], strict=True)]
        buckets.append(("+Inf", float(row[f"{prefix}_count"])))
        family.add_metric([row[name] for name in labels], buckets, float(row[f"{prefix}_sum_s"]))
    return family


def _le(bound: float) -> str:
    return repr(float(bound))


def traffic_families(state: ServiceState, scope: Scope) -> list[Metric]:
    """Calls by status, cost (USD), tokens by kind, latency and TTFT histograms per label set."""
    cfg = state.settings.metrics
    labels = list(cfg.labels)
    frame = _traffic_frame(state, scope)
    calls = CounterMetricFamily("llmledger_gen_ai_calls", "LLM calls recorded, by status (ok, error, timeout, "
                                "cancelled).", labels=[*labels, "status"])
    for row in frame.select(*labels, "status", "calls").iter_rows():
        calls.add_metric([str(v) for v in row[:-1]], float(row[-1]))
    n = len(cfg.latency_buckets_s)
    merged = frame.with_columns(  # bucket arrays as columns, to sum them over statuses
        pl.col(f"{p}_le").list.get(i).alias(f"{p}_le_{i}") for p in ("latency", "ttft") for i in range(n)
    ).group_by(labels).agg(
        pl.col("cost_usd").sum(), *(pl.col(c).sum() for c in TOKEN_COLUMNS.values()),
        *(pl.col(f"{p}_le_{i}").sum() for p in ("latency", "ttft") for i in range(n)),
        *(pl.col(f"{p}_{m}").sum() for p in ("latency", "ttft") for m in ("count", "sum_s")),
    ).with_columns(
        pl.concat_list(f"{p}_le_{i}" for i in range(n)).alias(f"{p}_le") for p in ("latency", "ttft")
    ).sort(labels)
    cost = CounterMetricFamily("llmledger_gen_ai_cost_usd", "Cost of LLM calls in US dollars, as priced by "
                               "llmledger (list prices with your overrides and discounts).", labels=labels)
    tokens = CounterMetricFamily("gen_ai_client_inference_usage_tokens", "Tokens by kind (OpenTelemetry "
                                 "gen_ai.client.inference.usage.*): input (all, cached included), cache_read, "
                                 "cache_write, output (all, reasoning included), reasoning.",
                                 labels=[*labels, "gen_ai_token_type"])
    for row in merged.iter_rows(named=True):
        values = [str(row[name]) for name in labels]
        cost.add_metric(values, float(row["cost_usd"] or 0))
        for kind, column in TOKEN_COLUMNS.items():
            tokens.add_metric([*values, kind], float(row[column] or 0))
    return [
        calls, cost, tokens,
        _histogram("gen_ai_client_inference_duration_seconds", "End-to-end latency of successful calls "
                   "(OpenTelemetry gen_ai.client.inference.duration).", labels, merged, "latency",
                   cfg.latency_buckets_s),
        _histogram("gen_ai_client_inference_time_to_first_chunk_seconds", "Time to first token of successful "
                   "streamed calls (OpenTelemetry gen_ai.client.inference.time_to_first_chunk).", labels, merged,
                   "ttft", cfg.latency_buckets_s),
    ]


# ---- service health -------------------------------------------------------------------------


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _oldest_segment_age_s(state: ServiceState) -> float:
    """Seconds since the last write to the oldest spool segment still holding data (0 when none):
    its records have waited at least this long for the warehouse."""
    mtimes = []
    for path in state.push.spool.directory.glob("*"):
        try:
            stat = path.stat()
        except FileNotFoundError:  # flushed and deleted meanwhile
            continue
        if stat.st_size > 0 and path.is_file():
            mtimes.append(stat.st_mtime)
    return max(0.0, time.time() - min(mtimes)) if mtimes else 0.0


def health_families(state: ServiceState, scope: Scope) -> list[Metric]:
    """Spool, flush, collectors, scheduler lease and alert incidents."""
    push, stats = state.push, state.push.stats
    now = datetime.now(UTC)
    lag = (now - (stats.last_flush_at or stats.started_at)).total_seconds() if stats.pending_rows else 0.0
    out: list[Metric] = [
        _gauge("llmledger_spool_bytes", "Bytes in the push spool (live segments and the queued commit).",
               float(push.spool.used_bytes)),
        _gauge("llmledger_spool_max_bytes", "The spool's bound; pushes get 429 beyond it.", float(push.spool.max_bytes)),
        _gauge("llmledger_spool_pending_rows", "Acknowledged rows not yet in the warehouse.", float(stats.pending_rows)),
        _gauge("llmledger_spool_oldest_age_seconds", "Age of the oldest spool segment still holding data.",
               _oldest_segment_age_s(state)),
        _gauge("llmledger_flush_lag_seconds", "Seconds since the last flush while rows are pending (0 when none).",
               max(lag, 0.0)),
        _gauge("llmledger_flush_last_duration_seconds", "Wall time of the last spool flush.", stats.last_flush_s),
        CounterMetricFamily("llmledger_flush_errors", "Spool flushes that failed (retried).", value=stats.errors),
        CounterMetricFamily("llmledger_flushed_calls", "Calls the flusher wrote to the warehouse.",
                            value=stats.flushed_calls),
    ]
    status = collectors.collector_status(state.read_wh, scope, now=now, tag="metrics:collectors")
    lag_f = GaugeMetricFamily("llmledger_collector_lag_seconds", "Now minus the newest data a successful run "
                              "vouched for.", labels=["collector"])
    success = GaugeMetricFamily("llmledger_collector_last_success_timestamp_seconds", "Unix time of the last "
                                "successful run.", labels=["collector"])
    runs = CounterMetricFamily("llmledger_collector_runs", "Collector runs recorded.", labels=["collector"])
    errors = CounterMetricFamily("llmledger_collector_errors", "Collector runs that failed.", labels=["collector"])
    for row in status.iter_rows(named=True):
        name = [row["collector"]]
        if row["lag_s"] is not None:
            lag_f.add_metric(name, float(row["lag_s"]))
        if row["last_success_at"] is not None:
            success.add_metric(name, row["last_success_at"].timestamp())
        runs.add_metric(name, float(row["runs"]))
        errors.add_metric(name, float(row["errors"]))
    out += [lag_f, success, runs, errors]
    holder = current_holder(state.read_wh)
    lease = GaugeMetricFamily("llmledger_scheduler_lease_holder", "1 for the replica holding the scheduler lease "
                              "(holder label); 0 with holder=\"\" when none holds it.", labels=["holder"])
    lease.add_metric([holder or ""], 1.0 if holder else 0.0)
    out.append(lease)
    incidents = GaugeMetricFamily("llmledger_alert_incidents", "Alert incidents (latest state each) by signal "
                                  "and state.", labels=["signal", "state"])
    for row in metrics.incident_counts(state.read_wh, scope).iter_rows(named=True):
        incidents.add_metric([row["signal"], row["state"]], float(row["incidents"]))
    out.append(incidents)
    return out


def content_type() -> str:
    """The exposition's media type."""
    from prometheus_client import CONTENT_TYPE_LATEST

    return CONTENT_TYPE_LATEST

