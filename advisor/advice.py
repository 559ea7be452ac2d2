"""The advice for one route: gather the score distribution (a replay or the logged router scores),
the route's measured volume and token mix, the two models' prices, and say which threshold to start
with, what it and every other threshold would escalate and cost a month, whether the scores are
dual-peaked (classifier routing), and where the escalation rate leaves the healthy band.

Volume is the route's requests (step-0 calls of its cascade, else its top-level calls) over the
`days` before `end`, scaled to 30 days. A replayed query without token counts gets the route's
mean tokens per call of that model's step (rounded to whole tokens) and is priced as a standard-
context call at `end`; logged requests are priced with their own tokens, context and time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

import polars as pl

from advisor import threshold as th
from advisor.errors import AdvisorError
from advisor.replay import TOKEN_COLUMNS, Replay
from common.frames import json_rows
from warehouse.client import Warehouse
from warehouse.queries import advice as q
from warehouse.queries.scope import Scope

DEFAULT_PERCENTILE = 70.0
DEFAULT_DAYS = 30
SEED_REPLAY_SIZE = (200, 500)


@dataclass(frozen=True)
class ModelRef:
    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True)
class RouteTraffic:
    """What the route's logged calls say over the window."""

    route: str
    policy: str  # '' without a cascade
    projects: tuple[str, ...]
    requests: int
    scored_requests: int
    cheap: ModelRef | None
    frontier: ModelRef | None
    cheap_tokens: dict[str, int] = field(default_factory=dict)  # mean per call, whole tokens
    frontier_tokens: dict[str, int] = field(default_factory=dict)
    observed_escalation: float | None = None


def _means(rows: pl.DataFrame) -> dict[str, int]:
    calls = int(rows["calls"].sum()) if rows.height else 0
    if not calls:
        return {}
    return {c: int((Decimal(int(rows[c].sum())) / calls).to_integral_value()) for c in q.TOKEN_CLASSES}


def _top(rows: pl.DataFrame) -> ModelRef | None:
    if rows.is_empty():
        return None
    best = rows.sort("calls", descending=True).row(0, named=True)
    return ModelRef(best["provider"], best["model"])


def measure_route(wh: Warehouse, scope: Scope, route: str, start: datetime, end: datetime,
                  *, policy: str | None = None) -> RouteTraffic:
    """The route's requests, cascade models, token means and observed escalation rate."""
    frame = q.route_traffic(wh, scope, route, start, end)
    projects = tuple(sorted({p for ps in frame["projects"].to_list() for p in ps})) if frame.height else ()
    if policy is None:
        cascaded = frame.filter((pl.col("policy") != "") & (pl.col("cascade_step") == 0))
        if cascaded.height:
            policy = cascaded.group_by("policy").agg(pl.col("calls").sum()).sort(
                ["calls", "policy"], descending=[True, False])["policy"][0]
    if not policy:
        rows = frame.filter(pl.col("policy") == "")
        return RouteTraffic(route, "", projects, int(rows["calls"].sum()) if rows.height else 0, 0, None, None,
                            _means(rows), _means(rows))
    step0 = frame.filter((pl.col("policy") == policy) & (pl.col("cascade_step") == 0))
    step1 = frame.filter((pl.col("policy") == policy) & (pl.col("cascade_step") == 1))
    requests = int(step0["calls"].sum()) if step0.height else 0
    escalated = int(step1["calls"].sum()) if step1.height else 0
    return RouteTraffic(
        route, policy, projects, requests, int(step0["scored_calls"].sum()) if step0.height else 0,
        _top(step0), _top(step1), _means(step0), _means(step1) or _means(step0),
        escalated / requests if requests else None)


def resolve_model(wh: Warehouse, text: str, known: tuple[ModelRef | None, ...] = ()) -> ModelRef:
    """`model` or `provider/model` as priced in the price table; a model priced under several
    providers takes the one the route logged, else must be named with its provider."""
    candidates = [(None, text)]
    if "/" in text:
        provider, model = text.split("/", 1)
        candidates.insert(0, (provider, model))
    for provider, model in candidates:
        priced = q.priced_providers(wh, model)
        if provider is not None:
            if provider in priced:
                return ModelRef(provider, model)
            continue
        for ref in known:
            if ref is not None and ref.model == model and ref.provider in priced:
                return ref
        if len(priced) == 1:
            return ModelRef(priced[0], model)
        if len(priced) > 1:
            raise AdvisorError(f"{model} is priced under {', '.join(priced)}: name it as provider/{model}")
    raise AdvisorError(f"{text} has no price in the price table (run `llmledger prices load`, or add an override)")


@dataclass(frozen=True)
class Advice:
    """Everything the CLI, the API and the routing page show."""

    route: str
    policy: str
    source: str  # 'replay' or 'live'
    percentile: float
    cheap: ModelRef
    frontier: ModelRef
    requests_sampled: int
    monthly_requests: Decimal
    days: int
    end: datetime
    recommended: th.Point
    current: th.Point | None
    current_source: str
    bimodality: th.Bimodality
    classifier_advice: str | None
    warnings: tuple[str, ...]
    curve: pl.DataFrame
    tasks: pl.DataFrame
    rejected: pl.DataFrame
    replay_file: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe: money as exact decimal strings."""
        return {
            "route": self.route, "routing_policy": self.policy, "source": self.source,
            "percentile": self.percentile,
            "percentile_meaning": "share of requests the threshold keeps on the cheap model (score >= threshold); "
                                  "requests scoring below it escalate",
            "cheap": str(self.cheap), "frontier": str(self.frontier), "requests_sampled": self.requests_sampled,
            "monthly_requests": str(self.monthly_requests), "days": self.days,
            "end": self.end.astimezone(UTC).isoformat().replace("+00:00", "Z"), "replay_file": self.replay_file,
            "recommended": self.recommended.as_dict(),
            "current": self.current.as_dict() if self.current else None, "current_source": self.current_source,
            "bimodality": self.bimodality.as_dict(), "classifier_advice": self.classifier_advice,
            "healthy_band": list(th.HEALTHY_BAND), "warnings": list(self.warnings),
            "curve": json_rows(self.curve), "tasks": json_rows(self.tasks),
            "rejected": json_rows(self.rejected),
        }


def _replay_distribution(wh: Warehouse, replay: Replay, traffic: RouteTraffic, cheap: ModelRef,
                         frontier: ModelRef, at: datetime) -> pl.DataFrame:
    rows = replay.rows
    n = rows.height
    sides = []
    for side, ref, means, offset in (("cheap", cheap, traffic.cheap_tokens, 0),
                                     ("frontier", frontier, traffic.frontier_tokens, n)):
        given_in, given_out = rows[f"{side}_input_tokens"], rows[f"{side}_output_tokens"]
        missing = given_in.is_null() | given_out.is_null()
        if missing.any() and not means:
            raise AdvisorError(f"{int(missing.sum())} replayed queries have no {side} token counts and route "
                               f"{traffic.route} has no logged calls to take averages from: add {side}_input_tokens "
                               f"and {side}_output_tokens to the replay")
        frame = pl.DataFrame({"qid": pl.int_range(offset, offset + n, eager=True)}).with_columns(
            pl.lit(ref.provider).alias("provider"), pl.lit(ref.model).alias("model"))
        for c in q.TOKEN_CLASSES:
            mean = pl.lit(means.get(c, 0), dtype=pl.Int64)
            if c in ("input_tokens", "output_tokens"):
                value = pl.when(pl.Series(missing)).then(mean).otherwise(
                    pl.Series(given_in if c == "input_tokens" else given_out))
            else:
                value = pl.when(pl.Series(missing)).then(mean).otherwise(0)
            frame = frame.with_columns(value.cast(pl.Int64).alias(c))
        sides.append(frame)
    priced = q.price_queries(wh, pl.concat(sides), at=at)
    if priced["unpriced"].cast(pl.Boolean).any():
        raise AdvisorError(f"some replayed queries have no price cell on {cheap} or {frontier} at {at:%Y-%m-%d %H:%M} UTC")
    costs = priced["cost_usd"]
    return pl.DataFrame({"score": rows["score"], "n": pl.repeat(1, n, eager=True),
                         "cheap_cost_usd": costs[:n], "frontier_cost_usd": costs[n:]})


def _live_distribution(wh: Warehouse, scope: Scope, traffic: RouteTraffic, cheap: ModelRef, frontier: ModelRef,
                       start: datetime, end: datetime) -> pl.DataFrame:
    frame = q.live_scores(wh, scope, traffic.route, traffic.policy, start, end,
                          cheap=(cheap.provider, cheap.model), frontier=(frontier.provider, frontier.model))
    return frame


def _tasks(replay: Replay, dist_threshold: float, percentile: float) -> pl.DataFrame:
    rows = replay.rows.filter(pl.col("task") != "")
    if rows.is_empty():
        return pl.DataFrame(schema={"task": pl.String, "queries": pl.UInt32})
    total = replay.rows.height
    out = rows.group_by("task").agg(
        pl.len().alias("queries"), pl.col("score").median().alias("median_score"),
        pl.col("score").quantile(1 - percentile / 100, "lower").alias("own_threshold"),
        (pl.col("score") < dist_threshold).mean().alias("escalation_at_recommended"),
    ).sort("task")
    return out.with_columns((pl.col("queries") / total).alias("share"),
                            pl.col("task").map_elements(th.task_guidance, return_dtype=pl.String).alias("seed_guidance"))


def advise(
    wh: Warehouse, scope: Scope, *, route: str, replay: Replay | None = None, percentile: float = DEFAULT_PERCENTILE,
    cheap: str | None = None, frontier: str | None = None, current: float | None = None, days: int = DEFAULT_DAYS,
    end: datetime | None = None, monthly_requests: int | None = None, policy: str | None = None,
) -> Advice:
    """The advice for `route` from `replay` (else from its logged router scores); raises `AdvisorError`."""
    if not 0 < percentile < 100:
        raise AdvisorError("--percentile must be between 0 and 100")
    if days < 1:
        raise AdvisorError("--days must be at least 1")
    end = end or datetime.now(UTC)
    start = end - timedelta(days=days)
    traffic = measure_route(wh, scope, route, start, end, policy=policy)
    known = (traffic.cheap, traffic.frontier)
    cheap_ref = resolve_model(wh, cheap, known) if cheap else traffic.cheap
    frontier_ref = resolve_model(wh, frontier, known) if frontier else traffic.frontier
    if cheap_ref is None or frontier_ref is None:
        raise AdvisorError(f"route {route} has no logged cascade in the last {days} days: name the models with "
                           "--cheap and --frontier")
    if monthly_requests is not None:
        monthly = Decimal(monthly_requests)
    else:
        with localcontext() as ctx:
            ctx.prec = 80
            monthly = Decimal(traffic.requests) * 30 / days
    if monthly <= 0:
        raise AdvisorError(f"route {route} has no requests in the last {days} days to size a month: pass "
                           "--monthly-requests")
    warnings: list[str] = []
    live = None
    if traffic.policy and traffic.scored_requests:
        live = _live_distribution(wh, scope, traffic, cheap_ref, frontier_ref, start, end)
    if replay is not None:
        if replay.rows.is_empty():
            raise AdvisorError("the replay has no valid rows")
        frame, source = _replay_distribution(wh, replay, traffic, cheap_ref, frontier_ref, end), "replay"
        if replay.rows.height < SEED_REPLAY_SIZE[0]:
            warnings.append(f"only {replay.rows.height} replayed queries: the seed replays 200–500 before "
                            "trusting a threshold")
        if replay.rejected.height:
            warnings.append(f"{replay.rejected.height} replay rows rejected (see `rejected`)")
    else:
        if live is None or live.is_empty():
            raise AdvisorError(f"route {route} logged no router_score on a cascade in the last {days} days: "
                               "give a replay file (--replay)")
        frame, source = live, "live"
    unpriced = int(frame["unpriced_cheap"].sum() + frame["unpriced_frontier"].sum()) if "unpriced_cheap" in frame.columns else 0
    if unpriced:
        warnings.append(f"{unpriced} logged requests had no price cell on {cheap_ref} or {frontier_ref} and count "
                        "as $0: the costs are understated")
    dist = th.Distribution.from_frame(frame)
    pricer = th.Pricer(dist, monthly)
    recommended = pricer.at(th.recommend(dist, percentile))
    current_point, current_source = None, ""
    if current is not None:
        current_point, current_source = pricer.at(current), "given"
    elif live is not None and not live.is_empty() and traffic.observed_escalation is not None \
            and 0 < traffic.observed_escalation < 1:
        inferred = th.recommend(th.Distribution.from_frame(live), 100 * (1 - traffic.observed_escalation))
        current_point = pricer.at(inferred)
        current_source = (f"inferred: the logged score below which {traffic.observed_escalation:.0%} of requests "
                          "fall (the observed escalation rate)")
    band = th.band_warning(recommended.escalation_rate)
    if band:
        warnings.append(band)
    if traffic.observed_escalation is not None and traffic.observed_escalation >= th.STALE_RATE:
        warnings.append(th.band_warning(traffic.observed_escalation, what="the live cascade") or "")
    bimodal = th.bimodality(dist)
    classifier = None
    if bimodal.bimodal:
        classifier = (f"the scores are dual-peaked (dip {bimodal.dip:.3f}, p = {bimodal.p_value:.3g}): easy and hard "
                      "queries separate — route them with a classifier to the right model up front instead of "
                      "cascading (seed §3.13); a cascade pays the cheap call on every hard query")
    tasks = _tasks(replay, recommended.threshold, percentile) if replay is not None else \
        pl.DataFrame(schema={"task": pl.String, "queries": pl.UInt32})
    extra = tuple(p.threshold for p in (recommended, current_point) if p is not None)
    rejected = replay.rejected if replay is not None else pl.DataFrame(schema={"position": pl.UInt32, "reason": pl.String})
    return Advice(route=route, policy=traffic.policy, source=source, percentile=percentile, cheap=cheap_ref,
                  frontier=frontier_ref, requests_sampled=dist.requests, monthly_requests=monthly, days=days, end=end,
                  recommended=recommended, current=current_point, current_source=current_source, bimodality=bimodal,
                  classifier_advice=classifier, warnings=tuple(w for w in warnings if w), curve=pricer.curve(extra),
                  tasks=tasks, rejected=rejected, replay_file=replay.source_file if replay else "")
