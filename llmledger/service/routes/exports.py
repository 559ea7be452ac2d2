"""`GET /v1/export/focus`: the FOCUS 1.2 cost export of a range as CSV or Parquet (read scope;
a project-bound key exports its project; filters narrow the calls and leave GPU rows out)."""

from __future__ import annotations

import io
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import Field

from llmledger.exports import focus
from llmledger.service.auth import Reader, State
from llmledger.service.models import RangeQuery

router = APIRouter(prefix="/v1/export", tags=["export"])
MEDIA = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


class FocusQuery(RangeQuery):
    format: Literal["csv", "parquet"] = Field(default="csv")


@router.get("/focus", summary="FOCUS 1.2 cost export (CSV or Parquet)", response_class=Response,
            responses={200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}}}})
def export_focus(q: Annotated[FocusQuery, Query()], state: State, who: Reader) -> Response:
    """Rows per hour × model × attribution set, plus self-hosted GPU node-hours (see the README's
    "FinOps tools: FOCUS export")."""
    rows = focus.focus_frame(state.read_wh, state.settings, who.read_scope, q.start, q.end, q.filters())
    sink = io.BytesIO()
    focus.write(rows, sink, q.format)
    name = f"focus_{q.start:%Y%m%dT%H%M}_{q.end:%Y%m%dT%H%M}.{q.format}"
    return Response(sink.getvalue(), media_type=MEDIA[q.format],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
