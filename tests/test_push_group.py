"""The push API reads the JSON lines of concurrent requests into one frame (`parse_together`): each
request's slice must be what reading it alone gives — rows, line numbers, parse failures, unknown
fields and the raw lines dead letters keep — and the group's frame is those slices in order."""

from __future__ import annotations

import orjson
import polars as pl

from ingest.formats.events import event_lines, parse_events
from llmledger.service.push import _Request, parse_together
from tests.factories import make_call


def _bodies() -> list[tuple[bytes, bool]]:
    calls = [make_call(event_id=f"e{i}") for i in range(6)]
    lines = [orjson.dumps(c) for c in calls]
    return [
        (orjson.dumps(calls[:3]), False),  # a JSON array
        (b"\n".join(lines[3:]) + b"\n", True),  # NDJSON
        (b"[]", False),  # nothing
        (lines[0] + b"\n\n" + orjson.dumps({**calls[1], "surprise": 1}) + b"\n", True),  # a blank line, an unknown field
        (lines[2] + b"\n{torn\n" + orjson.dumps({**calls[3], "input_tokens": "many"}) + b"\n" + lines[4], True),
        (orjson.dumps({"events": [calls[5]]}), False),
    ]


def test_a_group_read_together_gives_each_request_what_reading_it_alone_gives() -> None:
    bodies = _bodies()
    group = [_Request(event_lines(body, ndjson=ndjson), None, None) for body, ndjson in bodies]  # type: ignore[arg-type]
    joint = parse_together(group)
    assert joint is not None and joint.equals(pl.concat([r.raw.frame for r in group]))  # no concat needed
    for (body, ndjson), request in zip(bodies, group, strict=True):
        alone, together = parse_events(body, ndjson=ndjson), request.raw
        assert together.frame.equals(alone.frame)
        rows = list(range(alone.frame.height))
        assert [together.line_no(r) for r in rows] == [alone.line_no(r) for r in rows]
        assert together.raw(rows) == alone.raw(rows)
        assert [(f.line_no, f.reason, f.raw) for f in together.failures] == [
            (f.line_no, f.reason, f.raw) for f in alone.failures]
        assert together.unknown_fields == alone.unknown_fields
    assert [len(r.raw.failures) for r in group] == [0, 0, 0, 0, 2, 0]
    assert group[3].raw.unknown_fields == {"surprise"}
