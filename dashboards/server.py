"""The dashboard as served: the Streamlit app of `dashboards/app.py` plus the two routes of its
sign-in (`dashboards/sessions.py`), run with `streamlit run dashboards/server.py` (which is what
`llmledger up` and `llmledger dashboard` do).

- `GET /sign-in/complete?ticket=…&next=/page?…` swaps a one-time ticket for the session cookie
  (HttpOnly, SameSite=Lax, expiring with the session; Secure behind HTTPS) and returns to `next`;
- `GET /sign-out?next=…` ends the session and clears the cookie.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # `streamlit run` puts only this folder on the path
    sys.path.insert(0, str(HERE.parent))

import streamlit as st  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import PlainTextResponse, RedirectResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

from dashboards.sessions import COOKIE, SESSIONS, local_path  # noqa: E402


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "") == "https"


async def complete_sign_in(request: Request) -> Response:
    """Set the session cookie of a ticket made by the sign-in form, then go back to the page."""
    session_id = SESSIONS.redeem(request.query_params.get("ticket", ""))
    if session_id is None:
        return PlainTextResponse("This sign-in link has expired: sign in again.", status_code=400)
    response = RedirectResponse(local_path(request.query_params.get("next")), status_code=303)
    response.set_cookie(COOKIE, session_id, max_age=int(SESSIONS.ttl_s), httponly=True, samesite="lax",
                        secure=_secure(request), path="/")
    return response


async def sign_out(request: Request) -> Response:
    """End the visitor's session."""
    SESSIONS.end(request.cookies.get(COOKIE))
    response = RedirectResponse(local_path(request.query_params.get("next")), status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


app = st.App("app.py", routes=[Route("/sign-in/complete", complete_sign_in), Route("/sign-out", sign_out)])
