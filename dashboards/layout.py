"""Layout pieces every page uses: the API client for the visitor (asking for a read key where the
dashboard is served beyond localhost, or where the API wants one), an error boundary that turns
`ApiError`s into messages, headline numbers, empty states that say what to configure, and links.
Tables are `dashboards.tables`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from dashboards.client import EXPOSED_ENV, KEY_ENV, URL_ENV, Api, ApiError

KEY_STATE = "llmledger_api_key"


def exposed() -> bool:
    """The dashboard is served beyond localhost: every visitor must bring their own read key."""
    return os.environ.get(EXPOSED_ENV, "") == "1"


def _login(reason: str) -> None:
    st.title("llmledger")
    st.info(reason)
    with st.form("login"):
        token = st.text_input("API key (read scope)", type="password", placeholder="llk_…")
        if st.form_submit_button("Open the dashboard") and token.strip():
            st.session_state[KEY_STATE] = token.strip()
            st.rerun()
    st.stop()


def api_for(page: str) -> Api:
    """The client for this page and visitor. Served beyond localhost it never uses a key of the
    server's own: the visitor signs in with a read key, checked against the API."""
    key = st.session_state.get(KEY_STATE)
    if exposed():
        if not key:
            _login("This dashboard is served beyond localhost: sign in with an llmledger API key that has the "
                   "read scope (`llmledger keys create --scope read`).")
        return Api(url=os.environ.get(URL_ENV, Api.url), key=key, page=page)
    return Api.from_env(page, key=key)


@contextmanager
def guard(api: Api) -> Iterator[None]:
    """Show an `ApiError` as a message (and a sign-in form when the key was refused), then stop."""
    try:
        yield
    except ApiError as err:
        if err.auth:
            st.session_state.pop(KEY_STATE, None)
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
