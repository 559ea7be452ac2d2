"""FOCUS 1.2 export: every mandatory column with the spec's types and nulls — the column table
checked against the FinOps Foundation's own rule model (focus-validator's model-1.2.0.1.json) —,
BilledCost equal to /v1/totals (calls) plus GPU cost (self-hosted) to the cent, ListCost at
catalogue prices against EffectiveCost with negotiated overrides."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl

from llmledger.exports import focus
from tests.factories import frame, make_call
from tests.service_support import service  # noqa: F401 - fixture
from tests.test_infra_allocation import served  # noqa: F401 - fixture
from warehouse.queries import attribution
from warehouse.queries.scope import Scope

SINCE, UNTIL = datetime(2025, 11, 3, tzinfo=UTC), datetime(2025, 11, 4, tzinfo=UTC)
MODEL = Path(__file__).parent / "fixtures" / "focus" / "model-1.2.0.1.json"
_TYPES = {"TypeDecimal": "Decimal", "TypeString": "String", "TypeDateTime": "Date/Time"}


def _foundation_model() -> tuple[dict[str, str], dict[str, str], set[str]]:
    """From the Foundation's FOCUS 1.2 rule model: each column's presence level (dataset rules:
    MUST → Mandatory, MUST when the provider supports it → Conditional, RECOMMENDED), its type, and
    the columns that must never be null (an unconditional MUST NOT rule)."""
    rules = json.loads(MODEL.read_text())["ModelRules"]
    presence, types, not_null = {}, {}, set()
    for rule_id, rule in rules.items():
        criteria, need = rule["ValidationCriteria"], rule["ValidationCriteria"]["Requirement"]
        if rule_id.startswith("CostAndUsage-D-") and need.get("CheckFunction") == "ColumnPresent":
            presence[need["ColumnName"]] = "Recommended" if criteria["Keyword"] == "RECOMMENDED" else \
                "Conditional" if rule["ApplicabilityCriteria"] else "Mandatory"
        elif rule.get("EntityType") == "Column" and rule.get("Function") == "Type" and need.get("CheckFunction"):
            types[rule["Reference"]] = _TYPES[need["CheckFunction"]]
        elif (rule.get("Function") == "Nullability" and criteria["Keyword"] == "MUST NOT" and not criteria["Condition"]
              and not rule["ApplicabilityCriteria"] and need.get("CheckFunction") == "CheckNotValue"):
            not_null.add(rule["Reference"])
    return presence, types, not_null


def test_the_column_table_agrees_with_the_foundations_rule_model() -> None:
    presence, types, _ = _foundation_model()
    assert presence == {c.name: c.level for c in focus.SPEC}  # all 57 columns, each at its level
    assert types == {c.name: c.kind for c in focus.SPEC if c.kind != "JSON"}  # the model types no JSON column


def _calls() -> list[dict]:
    return [
        make_call(team="search", model="gpt-4o", input_tokens=1000, cache_read_tokens=400, output_tokens=100),
        make_call(team="search", model="gpt-4o", input_tokens=3000, output_tokens=300, ts="2025-11-03T10:40:00Z"),
        make_call(team="ads", model="gpt-4o-mini", input_tokens=2000, output_tokens=50, ts="2025-11-03T13:05:00Z"),
        make_call(team="ads", model="claude-sonnet-4-5", provider="anthropic", input_tokens=3000,
                  cache_read_tokens=2000, output_tokens=300, ts="2025-11-03T13:45:00Z"),
    ]


def test_focus_columns_types_and_totals(wh, settings, pipeline) -> None:
    pipeline.ingest_frame(frame(_calls()), source="t")
    rows = focus.focus_frame(wh, settings, Scope.all(), SINCE, UNTIL)
    assert focus.check(rows) == []
    assert {c.name for c in focus.SPEC if c.level == "Mandatory"} <= set(rows.columns)
    assert rows.height == 3  # gpt-4o 10:00 search, gpt-4o-mini 13:00 ads, sonnet 13:00 ads
    totals = attribution.totals(wh, Scope.all(), SINCE, UNTIL).row(0, named=True)
    billed = rows["BilledCost"].sum()
    assert round(Decimal(billed), 2) == round(totals["cost_usd"], 2) and Decimal(billed) == totals["cost_usd"]
    # no override: list price = what we priced
    assert (rows["ListCost"] == rows["EffectiveCost"]).all()
    _, _, not_null = _foundation_model()
    for name in not_null & set(rows.columns):  # e.g. BilledCost, ChargeFrequency, ServiceSubcategory
        assert rows[name].null_count() == 0, name
    tags = rows.filter(pl.col("ResourceName") == "gpt-4o")["Tags"][0]
    assert '"team":"search"' in tags and rows.filter(pl.col("ResourceName") == "gpt-4o")["x_Calls"][0] == 2

    for fmt in ("csv", "parquet"):
        sink = io.BytesIO()
        focus.write(rows, sink, fmt)
        sink.seek(0)
        back = pl.read_csv(sink) if fmt == "csv" else pl.read_parquet(sink)
        assert back.columns[: len(focus.EMITTED)] == list(focus.EMITTED)
        assert Decimal(str(back["BilledCost"].cast(pl.Decimal(38, 18)).sum())) == totals["cost_usd"]


def test_list_cost_is_the_catalogue_price_under_an_override(wh, settings, pipeline) -> None:
    from ingest.pricing import load_prices
    from llmledger.settings import ModelPriceOverride

    settings.pricing.models = [ModelPriceOverride(provider="openai", model="gpt-4o", input_mtok=Decimal("1"),
                                                  output_mtok=Decimal("2"))]
    load_prices(wh, settings.pricing)
    pipeline.ingest_frame(frame(_calls()[:2]), source="t")
    rows = focus.focus_frame(wh, settings, Scope.all(), SINCE, UNTIL)
    assert focus.check(rows) == []
    row = rows.row(0, named=True)
    # overridden: 4000 input tokens at $1/M (400 cached: charged as input) + 400 output at $2/M
    assert row["EffectiveCost"] == Decimal("0.0048")
    # list: gpt-4o's catalogue ($2.50/M input, $1.25/M cached, $10/M output)
    assert row["ListCost"] == Decimal("3600") * Decimal("2.5e-6") + Decimal("400") * Decimal("1.25e-6") \
        + Decimal("400") * Decimal("10e-6")


def test_self_hosted_gpu_time_is_its_own_rows(served, settings) -> None:
    from tests.test_infra_allocation import HOURLY, T0
    from warehouse.queries import nodes

    since, until = T0, T0 + (T0 - T0.replace(hour=7))  # 10:00 → 13:00
    rows = focus.focus_frame(served, settings, Scope.all(), since, until)
    assert focus.check(rows) == []
    gpu = rows.filter(pl.col("ServiceCategory") == "Compute").sort("ChargePeriodStart")
    assert gpu["ConsumedUnit"].to_list() == ["GPU-Hours"] * 3 and set(gpu["ResourceId"]) == {"node-a"}
    assert [round(v, 12) for v in gpu["BilledCost"]] == [round(HOURLY[h], 12) for h in (10, 11, 12)]
    calls = attribution.totals(served, Scope.all(), since, until).row(0, named=True)["cost_usd"]
    infra = nodes.gpu_cost(served, Scope.all(), since, until)["infra_cost_usd"].sum()
    llm = rows.filter(pl.col("ServiceCategory") == "AI and Machine Learning")["BilledCost"].sum()
    assert llm == calls and round(rows["BilledCost"].sum(), 2) == round(Decimal(calls) + Decimal(infra), 2)


def test_export_endpoint_matches_v1_totals_to_the_cent(service) -> None:
    with service.client() as http:
        assert http.post("/v1/events", json=_calls()).status_code == 200
        service.wait_flushed()
        params = {"start": "2025-11-03T00:00:00Z", "end": "2025-11-04T00:00:00Z"}
        totals = http.get("/v1/totals", params=params).json()["rows"][0]
        csv = http.get("/v1/export/focus", params=params)
        parquet = http.get("/v1/export/focus", params={**params, "format": "parquet"})
        search = http.get("/v1/export/focus", params={**params, "filter": "team:search", "format": "parquet"})
    assert csv.status_code == parquet.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    for body in (pl.read_csv(io.BytesIO(csv.content), infer_schema=False), pl.read_parquet(io.BytesIO(parquet.content))):
        billed = sum(Decimal(str(v)) for v in body["BilledCost"].to_list())
        assert round(billed, 2) == round(Decimal(totals["cost_usd"]), 2) and billed == Decimal(totals["cost_usd"])
    only = pl.read_parquet(io.BytesIO(search.content))
    assert focus.check(only) == [] and set(only["Tags"].str.json_path_match("$.team")) == {"search"}


def test_cli_writes_a_focus_file(settings, wh, pipeline, store, tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from llmledger.cli import app

    assert pipeline.ingest_frame(frame(_calls()), source="t").written == 4
    monkeypatch.setenv("LLMLEDGER_HOME", str(settings.home))
    monkeypatch.setenv("LLMLEDGER_WAREHOUSE__PATH", str(store))
    monkeypatch.setenv("LLMLEDGER_WAREHOUSE__DATABASE", wh.database)
    from llmledger.settings import get_settings

    get_settings.cache_clear()
    out = tmp_path / "focus.parquet"
    result = CliRunner().invoke(app, ["export", "focus", "--since", "2025-11-03", "--until", "2025-11-04",
                                      "--format", "parquet", "--out", str(out)])
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    rows = pl.read_parquet(out)
    assert focus.check(rows) == [] and rows.height == 3
