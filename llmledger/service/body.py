"""Request bodies read with a size limit enforced while streaming, optionally gzip/deflate
compressed (the limit then also bounds the decompressed size)."""

from __future__ import annotations

import zlib

from fastapi import HTTPException, Request, status


def _too_large(limit: int) -> HTTPException:
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"request body exceeds the limit of {limit:,} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, or 413 as soon as it (or its decompressed form) passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"unsupported Content-Encoding {encoding!r}")
    inflater = zlib.decompressobj(wbits=(16 + zlib.MAX_WBITS) if encoding == "gzip" else zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as err:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"body is not valid {encoding}: {err}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise _too_large(limit)
    return out
