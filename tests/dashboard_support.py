"""Services for the dashboard tests: a real service (uvicorn in a thread, its own database on the
session store) holding three simulated weeks with every incident and the self-hosted nodes' samples,
and one holding nothing. Session-scoped (registered in conftest): seeding takes seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from llmledger.demo import seed_demo
from llmledger.runtime import open_warehouse
from tests.service_support import Running, service_settings, start_in_thread

VIEWS = Path(__file__).resolve().parents[1] / "dashboards" / "views"
PAGES = ("overview", "attribution", "caching", "latency", "routing", "nodes", "calls", "alerts", "health")
DEMO_DAYS, DEMO_CALLS_PER_DAY = 21, 5000  # every incident fits; the cascade serves 40-60 requests in its incident hours


@pytest.fixture(scope="session")
def demo_service(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A service over three simulated weeks ending now (every incident, node samples, GPU prices)."""
    settings = service_settings(store, tmp_path_factory.mktemp("dashboards") / "home")
    with open_warehouse(settings) as wh:
        seed_demo(wh, settings, days=DEMO_DAYS, calls_per_day=DEMO_CALLS_PER_DAY)
    yield from start_in_thread(settings)


@pytest.fixture(scope="session")
def empty_service(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A service with an empty database, which it migrates as it starts."""
    yield from start_in_thread(service_settings(store, tmp_path_factory.mktemp("dashboards-empty") / "home",
                                                new_database=True))


def page(name: str, url: str, *, query: dict[str, str | list[str]] | None = None, key: str | None = None,
         timeout: float = 60) -> AppTest:
    """Run one dashboard page against the API at `url` (and return the finished AppTest)."""
    os.environ["LLMLEDGER_API_URL"] = url
    os.environ.pop("LLMLEDGER_API_KEY", None)
    os.environ.pop("LLMLEDGER_DASHBOARD_EXPOSED", None)
    at = AppTest.from_file(str(VIEWS / f"{name}.py"), default_timeout=timeout)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    if key:
        at.session_state["llmledger_api_key"] = key
    return at.run()


def charts(at: AppTest) -> list:
    """The Plotly charts a page drew."""
    return list(at.get("plotly_chart"))


def table(at: AppTest, index: int = 0) -> dict[str, list[str]]:
    """A drawn table as column → the text of its cells; a link column under its own name, holding
    the text it shows (the URL's fragment) and the URL beside it as `<name> url`."""
    from urllib.parse import unquote

    frame = at.dataframe[index].value
    out: dict[str, list[str]] = {}
    for column in frame.columns:
        values = [str(v) for v in frame[column].tolist()]
        if column.endswith("__url"):
            name = column.removesuffix("__url")
            out[name] = [unquote(v.partition("#")[2]) for v in values]
            out[f"{name} url"] = [v.partition("#")[0] for v in values]
        else:
            out[column] = values
    return out
