"""Self-hosted node endpoints over the node-metric queries: GPU utilisation, inference load,
throughput, vLLM latency quantiles, cost per 1M tokens, the measured break-even inputs and the
self-hosted finding (utilisation and $ per 1M output tokens as run vs the API)."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field, model_validator

from llmledger.service.auth import Reader, State
from llmledger.service.models import Instant, Table
from llmledger.service.reading import Tag, answer, value
from warehouse.queries import nodes, selfhost

router = APIRouter(prefix="/v1/nodes", tags=["nodes"])

HistogramMetric = StrEnum("HistogramMetric", {m: m for m in nodes.HISTOGRAM_METRICS})  # type: ignore[misc]


class NodeQuery(BaseModel):
    """A half-open UTC range and a bucket width (seconds) for time series."""

    model_config = {"extra": "forbid"}
    start: Instant
    end: Instant
    step_s: int = Field(default=3600, ge=15, le=86_400 * 31)

    @model_validator(mode="after")
    def _ordered(self) -> NodeQuery:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.end - self.start > timedelta(days=400):
            raise ValueError("a node range is at most 400 days")
        return self


class NodeLatencyQuery(NodeQuery):
    metric: HistogramMetric = HistogramMetric("ttft_s")  # type: ignore[call-arg]


@router.get("/gpu", response_model=Table, summary="GPU utilisation, memory, power per node and GPU")
def gpu(q: Annotated[NodeQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Per bucket, node and GPU: utilisation %, SM activity, framebuffer, power (W), temperature."""
    return answer(nodes.gpu_utilisation(state.read_wh, who.read_scope, q.start, q.end, step_s=q.step_s, tag=tag))


@router.get("/load", response_model=Table, summary="Running / waiting requests and KV-cache usage")
def load(q: Annotated[NodeQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Per bucket, node and model: running and waiting requests (mean, max), KV-cache usage 0–1."""
    return answer(nodes.inference_load(state.read_wh, who.read_scope, q.start, q.end, step_s=q.step_s, tag=tag))


@router.get("/throughput", response_model=Table, summary="Tokens/s and requests/s per node and model")
def throughput(q: Annotated[NodeQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Per bucket, node and model: prompt and generation tokens/s, requests/s, prefix-cache hit rate."""
    return answer(nodes.token_throughput(state.read_wh, who.read_scope, q.start, q.end, step_s=q.step_s, tag=tag))


@router.get("/latency", response_model=Table, summary="vLLM latency histogram quantiles")
def latency(q: Annotated[NodeLatencyQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Per bucket, node, model and quantile q (0.5, 0.95, 0.99): value_s, observations, mean_s."""
    return answer(nodes.latency_quantiles(state.read_wh, who.read_scope, q.start, q.end, metric=value(q.metric),
                                         step_s=q.step_s, tag=tag))


@router.get("/cost", response_model=Table, summary="Self-hosted cost per node and model, per 1M tokens")
def cost(q: Annotated[NodeQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Per node and model: GPU-hours, infra cost allocated by tokens, cost per 1M tokens and per 1M
    output tokens, generation tokens/s per GPU."""
    return answer(nodes.self_host_cost(state.read_wh, who.read_scope, q.start, q.end, tag=tag))


@router.get("/breakeven", response_model=Table, summary="Measured inputs of the API-vs-self-host break-even")
def breakeven(q: Annotated[NodeQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Per node and model: GPUs, $/GPU-hour, measured mean / peak / estimated-capacity tokens/s per GPU
    and the $ per 1M output tokens at each."""
    return answer(nodes.breakeven_inputs(state.read_wh, who.read_scope, q.start, q.end, tag=tag))


@router.get("/finding", response_model=Table, summary="Self-hosted models against the API: utilisation and $ per 1M output")
def finding(q: Annotated[NodeQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Per self-hosted model: GPUs, mean GPU utilisation, GPU cost, tokens served, $ per 1M output
    tokens as run, the cheapest comparable API model's $ per 1M output for this traffic, what the
    same tokens cost there and the difference (`excess_usd`)."""
    return answer(selfhost.self_hosted_vs_api(state.read_wh, who.read_scope, q.start, q.end, tag=tag))
