"""The llmledger dashboard's pages (served with its sign-in routes by `dashboards/server.py`, which
`llmledger up` runs). A client of the service's read API at `LLMLEDGER_API_URL` (key:
`LLMLEDGER_API_KEY`, or the visitor's own when `LLMLEDGER_DASHBOARD_EXPOSED=1`). Each page's URL
path is its file's name (`/calls`, `/alerts`, …), the paths deep links from e-mails and Slack use."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # `streamlit run` puts only this folder on the path
    sys.path.insert(0, str(HERE.parent))

import streamlit as st  # noqa: E402

PAGES = (
    ("overview.py", "Overview", ":material/dashboard:"),
    ("attribution.py", "Attribution", ":material/account_tree:"),
    ("caching.py", "Caching", ":material/cached:"),
    ("latency.py", "Latency", ":material/speed:"),
    ("routing.py", "Reasoning & routing", ":material/alt_route:"),
    ("nodes.py", "Self-hosted nodes", ":material/memory:"),
    ("reconciliation.py", "Reconciliation", ":material/receipt_long:"),
    ("calls.py", "Calls", ":material/list_alt:"),
    ("alerts.py", "Alerts", ":material/notifications:"),
    ("health.py", "Data health", ":material/health_and_safety:"),
)

st.set_page_config(page_title="llmledger", page_icon=":material/payments:", layout="wide")
navigation = st.navigation([st.Page(HERE / "views" / file, title=title, icon=icon, default=i == 0)
                            for i, (file, title, icon) in enumerate(PAGES)])
navigation.run()
