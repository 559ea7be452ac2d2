"""Push ingest endpoints: canonical events, LiteLLM StandardLoggingPayload, OTLP/HTTP traces.

Every endpoint answers only after the accepted records are fsynced to the spool. Malformed
bodies get 400, oversized ones 413, a full spool 429 with Retry-After; records that fail
validation are dead-lettered and named in the answer (422 when any was rejected, 200 otherwise).
OTLP answers per its spec: 200 with `{}` or `partialSuccess`, in the request's encoding.
"""

from __future__ import annotations

from typing import Annotated

import orjson
import polars as pl
from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ingest.formats import jsonvalues, litellm, otlp
from ingest.formats.events import MalformedBody, event_lines, looks_like_ndjson
from ingest.formats.records import records_batch
from ingest.readers import ParseFailure
from ingest.validate import Reason
from llmledger.service.auth import Ingester, State
from llmledger.service.body import read_body
from llmledger.service.models import PushResult, RecordError, body_docs
from llmledger.service.push import INLINE_PARSE_BYTES, PushOutcome, push

router = APIRouter(prefix="/v1", tags=["ingest"])

_RESPONSES = {
    400: {"description": "malformed body"},
    413: {"description": "body too large"},
    422: {"description": "some records were rejected (dead-lettered); the rest are accepted", "model": PushResult},
    429: {"description": "spool full: retry after Retry-After seconds"},
}
_SOURCE = Annotated[str | None, Query(max_length=128, pattern=r"^[A-Za-z0-9_.:/-]+$",
                                      description="Source name recorded on each call.")]


def _is_ndjson(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind in ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-lines")


def _answer(outcome: PushOutcome) -> JSONResponse:
    result = PushResult(
        accepted=outcome.accepted,
        rejected=len(outcome.rejections),
        errors=[RecordError(index=r.line_no - 1, reason=r.reason, detail=r.detail) for r in outcome.rejections],
        unknown_fields=sorted(outcome.unknown_fields),
        tool_runs=outcome.tool_runs,
    )
    code = status.HTTP_422_UNPROCESSABLE_CONTENT if result.rejected else status.HTTP_200_OK
    return JSONResponse(result.model_dump(), status_code=code)


def _bad(err: Exception) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, str(err))


@router.post("/events", summary="Push canonical call records", response_model=PushResult, responses=_RESPONSES,
             openapi_extra=body_docs("events"))
async def push_events(request: Request, state: State, principal: Ingester, source: _SOURCE = None) -> JSONResponse:
    """A JSON array of call records, `{"events": [...]}`, one record, or NDJSON
    (`Content-Type: application/x-ndjson`). Fields as in the README's canonical record."""
    body = await read_body(request, state.settings.service.max_body_bytes)
    ndjson = _is_ndjson(request)
    try:
        outcome = await push(state, lambda: (event_lines(body, ndjson=ndjson), None),
                             source=source or "api", principal=principal, inline=len(body) <= INLINE_PARSE_BYTES)
    except MalformedBody as err:
        raise _bad(err) from None
    return _answer(outcome)


def _payloads(body: bytes) -> list[object]:
    if not body.strip():
        raise MalformedBody("empty body: send LiteLLM StandardLoggingPayload JSON")
    try:
        value = jsonvalues.loads(body)
    except ValueError as err:
        if not looks_like_ndjson(body):
            raise MalformedBody(f"body is not valid JSON: {err}") from None
        try:
            return [jsonvalues.loads(line) for line in body.splitlines() if line.strip()]
        except ValueError as line_err:
            raise MalformedBody(f"body is not valid NDJSON: {line_err}") from None
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return value
    raise MalformedBody(f"expected a StandardLoggingPayload object or an array of them, got {type(value).__name__}")


@router.post("/litellm", summary="Push LiteLLM StandardLoggingPayload", response_model=PushResult,
             responses=_RESPONSES, openapi_extra=body_docs("litellm"))
async def push_litellm(request: Request, state: State, principal: Ingester) -> JSONResponse:
    """What LiteLLM's `generic_api` callback posts, in any `log_format` (json_array, ndjson, single)."""
    body = await read_body(request, state.settings.service.max_body_bytes)

    def parse():  # noqa: ANN202
        return litellm.litellm_batch(_payloads(body)), None

    try:
        outcome = await push(state, parse, source=litellm.SOURCE, principal=principal)
    except MalformedBody as err:
        raise _bad(err) from None
    return _answer(outcome)


@router.post("/traces", summary="OTLP/HTTP traces (GenAI spans)", responses={400: {"description": "malformed"},
             413: {"description": "too large"}, 429: {"description": "spool full"}}, openapi_extra=body_docs("traces"))
async def push_traces(request: Request, state: State, principal: Ingester) -> Response:
    """An `ExportTraceServiceRequest` as protobuf (`application/x-protobuf`) or JSON. Inference
    spans become calls, `execute_tool` spans tool runs; other spans are ignored."""
    body = await read_body(request, state.settings.service.max_body_bytes)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    binary = kind in ("application/x-protobuf", "application/protobuf")

    def parse():  # noqa: ANN202
        spans = otlp.spans_from_protobuf(body) if binary else otlp.spans_from_json(body)
        mapped = otlp.map_spans(spans, state.links, state.settings.otlp.input_conventions)
        runs = None
        if mapped.tool_runs:
            runs = pl.from_dicts(mapped.tool_runs).with_columns(
                pl.from_epoch("ts_ms", "ms").dt.replace_time_zone("UTC").alias("ts")).drop("ts_ms")
        spans = [{"trace_id": s.trace_id, "span_id": s.span_id, "name": s.name, "attributes": s.attrs}
                 for s in mapped.call_spans]  # the dead-letter payload of each call
        raw = records_batch(mapped.calls, spans)
        raw.failures.extend(  # unreadable spans are rejected alone; the request's other spans are kept
            ParseFailure(s.index + 1, Reason.INVALID_SPAN, f"span {s.index}: {s.problem}",
                         orjson.dumps({"traceId": s.trace_id, "spanId": s.span_id, "name": s.name}))
            for s in mapped.rejected)
        return raw, runs

    try:
        outcome = await push(state, parse, source=otlp.SOURCE, principal=principal)
    except otlp.MalformedTraces as err:
        raise _bad(err) from None
    rejected = len(outcome.rejections)
    message = "; ".join(sorted({f"{r.reason}: {r.detail}" for r in outcome.rejections}))[:1000]
    if binary:
        response = ExportTraceServiceResponse()
        if rejected:
            response.partial_success.rejected_spans = rejected
            response.partial_success.error_message = message
        return Response(response.SerializeToString(), media_type="application/x-protobuf")
    payload = {"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": message}} if rejected else {}
    return JSONResponse(payload)
