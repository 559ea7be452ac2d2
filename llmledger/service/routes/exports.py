"""`GET /v1/export/focus`: the FOCUS 1.2 cost export of a range as CSV or Parquet (read scope;
a project-bound key exports its project; filters narrow the calls and leave GPU rows out).
`GET /v1/export/calls`: every stored column of the calls of a range as Parquet, written in
bounded chunks to a scratch file that is streamed back and removed."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse, Response
from pydantic import Field
from starlette.background import BackgroundTask

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


class CallsQuery(RangeQuery):
    chunk_rows: int = Field(default=200_000, ge=1_000, le=2_000_000, description="Calls per read (bounds memory).")


@router.get("/calls", summary="Every stored column of the calls of a range (Parquet)", response_class=FileResponse,
            responses={200: {"content": {"application/vnd.apache.parquet": {}}}})
def export_calls(q: Annotated[CallsQuery, Query()], state: State, who: Reader) -> FileResponse:
    """The calls of [start, end) with the read API's filters, as Parquet (zstd), one row group per chunk."""
    from llmledger.exports.calls import export_calls as write_calls

    handle = tempfile.NamedTemporaryFile(prefix="llmledger-calls-", suffix=".parquet", delete=False)  # noqa: SIM115
    handle.close()
    path = Path(handle.name)
    try:
        write_calls(state.read_wh, who.read_scope, q.start, q.end, path, q.filters(), chunk_rows=q.chunk_rows)
    except ValueError as err:
        path.unlink(missing_ok=True)
        raise HTTPException(422, str(err)) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    name = f"calls_{q.start:%Y%m%dT%H%M}_{q.end:%Y%m%dT%H%M}.parquet"
    return FileResponse(path, media_type=MEDIA["parquet"], filename=name,
                        background=BackgroundTask(path.unlink, missing_ok=True))
