"""Every API call the dashboard pages make, recorded by rendering each page under Streamlit's
AppTest against a running service: the reads the growth benchmark replays at each store size."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("overview", "attribution", "caching", "latency", "routing", "nodes", "health")


Recorded = list[tuple[str, str, tuple[tuple[str, str], ...], float]]  # (page, path, query pairs, ms)


def record_pages(url: str, query: dict[str, str]) -> tuple[dict[str, dict[str, Any]], Recorded]:
    """Render every page under Streamlit's AppTest against the API at `url` (a warm-up pass, then
    one with an empty cache per page), recording each API call a page makes; returns per page its
    render time, API calls and errors, and the recorded calls."""
    import os

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    import dashboards.client as client

    recorded: Recorded = []
    plain = client.fetch
    current = {"page": ""}

    def timed(url: str, key: str | None, page: str, path: str, pairs: Any, timeout: float = 60.0) -> Any:
        began = time.perf_counter()
        body = plain(url, key, page, path, pairs, timeout)
        recorded.append((current["page"], path, tuple(pairs), (time.perf_counter() - began) * 1000))
        return body

    pages: dict[str, dict[str, Any]] = {}
    os.environ["LLMLEDGER_API_URL"] = url
    client._FETCH = timed  # noqa: SLF001 - record every call, no cache
    try:
        for name in PAGES:  # a warm-up pass: the engine's caches, Python imports
            AppTest.from_file(str(ROOT / "dashboards" / "views" / f"{name}.py"), default_timeout=120).run()
        recorded.clear()
        for name in PAGES:
            st.cache_data.clear()
            current["page"] = name
            at = AppTest.from_file(str(ROOT / "dashboards" / "views" / f"{name}.py"), default_timeout=120)
            for k, v in query.items():
                at.query_params[k] = v
            began = time.perf_counter()
            at.run()
            wall = (time.perf_counter() - began) * 1000
            calls_of_page = [r for r in recorded if r[0] == name]
            pages[name] = {"render_ms": round(wall), "api_calls": len(calls_of_page),
                           "api_ms": round(sum(r[3] for r in calls_of_page)),
                           "errors": [e.value for e in at.exception] + [e.value for e in at.error]}
    finally:
        client._FETCH = None  # noqa: SLF001
    return pages, recorded


def label(page: str, path: str, pairs: tuple[tuple[str, str], ...]) -> str:
    """`page: path` with the query parameters that tell one call of a path from another."""
    return f"{page}: {path}" + "".join(f" {k}={v}" for k, v in pairs if k in
                                       ("dimension", "by", "measure", "grain", "metric", "state", "like"))


def month_query(last: datetime) -> dict[str, str]:
    """The pages' URL parameters for the 30 days ending with `last`'s day."""
    return {"range": "custom", "from": (last - timedelta(days=29)).date().isoformat(), "to": last.date().isoformat()}
