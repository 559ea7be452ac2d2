"""Layout pieces every page uses: the API client for the visitor (asking for a read key where the
dashboard is served beyond localhost, or where the API wants one, and keeping the visitor signed
in through `dashboards.sessions`), an error boundary that turns `ApiError`s into messages, headline
numbers, empty states that say what to configure, and links. Tables are `dashboards.tables`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode, urlsplit

import streamlit as st

from dashboards.client import EXPOSED_ENV, KEY_ENV, URL_ENV, Api, ApiError
from dashboards.sessions import COOKIE, SESSIONS

KEY_STATE = "llmledger_api_key"


def exposed() -> bool:
    """The dashboard is served beyond localhost: every visitor must bring their own read key."""
    return os.environ.get(EXPOSED_ENV, "") == "1"


def _visitor_key() -> str | None:
    """The key this visitor signed in with: this browser tab's, else its session cookie's."""
    key = st.session_state.get(KEY_STATE)
    if key:
        return str(key)
    key = SESSIONS.key(st.context.cookies.get(COOKIE))
    if key:
        st.session_state[KEY_STATE] = key
    return key


def _here() -> str:
    """This page's path and query, to come back to after signing in or out."""
    path = urlsplit(st.context.url or "/").path or "/"
    query = urlencode([(k, v) for k in st.query_params for v in st.query_params.get_all(k)])
    return f"{path}?{query}" if query else path


def _sign_in(api_url: str, token: str) -> str | None:
    """Check a key against the API and start a session for it; returns what is wrong, or None."""
    try:
        who = Api(url=api_url, key=token).whoami()
    except ApiError as err:
        return "that key was not accepted" if err.auth else str(err)
    if "read" not in who.get("scopes", []) and "admin" not in who.get("scopes", []):
        return "that key lacks the read scope"
    st.session_state[KEY_STATE] = token
    ticket = SESSIONS.start(token)
    _go("/sign-in/complete?" + urlencode({"ticket": ticket, "next": _here()}))
    return None


def _login(reason: str) -> None:
    st.title("llmledger")
    st.info(reason)
    with st.form("login"):
        token = st.text_input("API key (read scope)", type="password", placeholder="llk_…")
        if st.form_submit_button("Open the dashboard") and token.strip():
            problem = _sign_in(os.environ.get(URL_ENV, Api.url), token.strip())
            if problem is None:
                st.caption("Signing in…")
                st.stop()
            st.error(problem, icon=":material/error:")
    st.stop()


def _go(target: str) -> None:
    """Send the browser to `target` on this site (a cookie can only be set or cleared by an HTTP answer)."""
    st.html(f"<script>window.location.replace({json.dumps(target)});</script>", unsafe_allow_javascript=True)


def _sign_out_button() -> None:
    if st.context.cookies.get(COOKIE) and st.sidebar.button("Sign out", type="tertiary", key="sign_out"):
        SESSIONS.end(st.context.cookies.get(COOKIE))
        st.session_state.pop(KEY_STATE, None)
        _go("/sign-out?" + urlencode({"next": _here()}))
        st.stop()


def api_for(page: str) -> Api:
    """The client for this page and visitor. Served beyond localhost it never uses a key of the
    server's own: the visitor signs in with a read key, checked against the API, and stays signed
    in (a session cookie) across reloads and deep links until the session expires."""
    key = _visitor_key()
    if exposed():
        if not key:
            _login("This dashboard is served beyond localhost: sign in with an llmledger API key that has the "
                   "read scope (`llmledger keys create --scope read`).")
        _sign_out_button()
        return Api(url=os.environ.get(URL_ENV, Api.url), key=key, page=page)
    if key:
        _sign_out_button()
    return Api.from_env(page, key=key)


@contextmanager
def guard(api: Api) -> Iterator[None]:
    """Show an `ApiError` as a message (and a sign-in form when the key was refused), then stop."""
    try:
        yield
    except ApiError as err:
        if err.auth:
            st.session_state.pop(KEY_STATE, None)
            SESSIONS.end(st.context.cookies.get(COOKIE))
            _login(str(err) if os.environ.get(KEY_ENV) is None or exposed() else
                   f"{err} — the key in {KEY_ENV} was refused; sign in with another.")
        st.error(str(err), icon=":material/error:")
        st.caption(f"API: {api.url}")
        st.stop()


def metric(where, title: str, value: str, note: str | None = None, *, help: str | None = None) -> None:  # noqa: A002, ANN001
    """A headline number with a neutral note under it (no arrow, no colour)."""
    where.metric(title, value, note, delta_color="off", delta_arrow="off", help=help)


def empty(message: str, hint: str | None = None) -> None:
    """An empty state: what is missing and what to configure."""
    st.info(message + (f"\n\n{hint}" if hint else ""), icon=":material/info:")


def link(label: str, url: str, *, where=None) -> None:  # noqa: ANN001 - a Streamlit container
    """A drill-down link (it opens the page in a new tab, with its range and filters in the URL)."""
    (where or st).markdown(f"[{label}]({url})")
