"""The router threshold advisor on constructed distributions and a real warehouse: the recommended
threshold is the configured percentile to the sample's resolution, a dual-peaked sample gets the
classifier advice and a unimodal one does not, and the implied monthly costs equal a hand
computation from the price table to the Decimal."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from advisor import threshold as th
from advisor.advice import advise
from advisor.errors import AdvisorError, ReplayError
from advisor.replay import latest_replay, read_replay, save_replay, validate
from ingest.pipeline import Pipeline
from tests.factories import frame, make_call
from warehouse.client import Warehouse
from warehouse.queries.scope import Scope

END = datetime(2025, 12, 1, tzinfo=UTC)
ROUTE, POLICY = "support", "cascade-x"
LIVE_SCORES = [round(0.02 + 0.024 * i, 4) for i in range(40)]  # 0.02 … 0.956, 40 distinct requests
LIVE_THRESHOLD = 0.5


def _seed_cascade(pipeline: Pipeline) -> None:
    """40 requests in November 2025: step 0 on gpt-4o-mini with a router score, step 1 on gpt-4o
    for the ones scoring below 0.5 (20 of them)."""
    records = []
    for i, score in enumerate(LIVE_SCORES):
        ts = f"2025-11-{1 + i % 28:02d}T{10 + i % 8:02d}:00:00Z"
        records.append(make_call(route=ROUTE, routing_policy=POLICY, cascade_step=0, router_score=score,
                                 model="gpt-4o-mini", input_tokens=1000 + 10 * i, output_tokens=200 + i, ts=ts))
        if score < LIVE_THRESHOLD:
            records.append(make_call(route=ROUTE, routing_policy=POLICY, cascade_step=1, escalated=True,
                                     router_score=score, model="gpt-4o", input_tokens=1000 + 10 * i,
                                     output_tokens=300 + i, ts=ts))
    result = pipeline.ingest_frame(frame(records), source="test")
    assert result.written == len(records)


def _rates(wh: Warehouse, model: str) -> tuple[Decimal, Decimal]:
    rows = wh.query_rows(
        "SELECT rate_input, rate_output FROM prices WHERE provider = 'openai' AND model = {m:String} "
        "AND context = '' AND valid_from <= {at:DateTime64(3, 'UTC')} AND valid_to > {at:DateTime64(3, 'UTC')} "
        "AND input_above < 1 AND input_upto >= 1", {"m": model, "at": END})
    assert len(rows) == 1
    return Decimal(str(rows[0][0])), Decimal(str(rows[0][1]))


def _dist(scores: np.ndarray) -> th.Distribution:
    return th.Distribution.from_frame(pl.DataFrame({"score": scores, "n": np.ones(len(scores), dtype=np.int64)}))


@pytest.mark.parametrize("percentile", [70, 50, 85, 63.3])
def test_recommendation_is_the_configured_percentile(percentile: float) -> None:
    scores = np.random.default_rng(3).beta(5, 2, 237)
    dist = _dist(scores)
    rec = th.recommend(dist, percentile)
    kept = float((scores >= rec).mean())
    assert abs(kept - percentile / 100) <= 1 / (2 * len(scores)) + 1e-12
    k = round(len(scores) * (1 - percentile / 100))
    assert rec == float(np.sort(scores)[k])  # the order statistic: k requests below it escalate
    assert dist.escalation_rate(rec) == pytest.approx(k / len(scores))


def test_recommendation_on_tied_scores_stays_within_one_group() -> None:
    scores = np.repeat([0.2, 0.4, 0.6, 0.8], [10, 30, 40, 20])  # cumulative below: 0, .1, .4, .8
    rec = th.recommend(_dist(scores), 70)
    assert rec == 0.6 and _dist(scores).escalation_rate(rec) == pytest.approx(0.4)


def test_dip_test_separates_dual_peaked_from_unimodal() -> None:
    rng = np.random.default_rng(11)
    bimodal = np.concatenate([rng.beta(2, 14, 250), rng.beta(14, 2, 250)])
    unimodal = rng.beta(6, 3, 400)
    assert th.bimodality(_dist(np.round(bimodal, 4))).bimodal
    result = th.bimodality(_dist(np.round(unimodal, 4)))
    assert result.tested and not result.bimodal and result.p_value > 0.05
    assert not th.bimodality(_dist(np.array([0.1, 0.9] * 10))).tested  # too few to test


def test_band_warnings() -> None:
    assert th.band_warning(0.4) is None
    assert "stale routing" in (th.band_warning(0.72) or "")
    assert "above the healthy" in (th.band_warning(0.55) or "")
    assert "below the healthy" in (th.band_warning(0.2) or "")


def test_replay_validation_keeps_good_rows(tmp_path: Path) -> None:
    raw = pl.DataFrame({"agreement": [0.5, 1.3, None, 0.2, 0.9], "task": ["chat", "chat", "qa", None, "qa"],
                        "cheap_input_tokens": [100, 100, 100, -5, 100]})
    replay = validate(raw)
    assert replay.rows["position"].to_list() == [0, 4]
    assert dict(replay.rejected.iter_rows()) == {1: "agreement outside [0, 1]", 2: "agreement missing or not a number",
                                                 3: "cheap_input_tokens not a non-negative whole number"}
    raw.write_csv(tmp_path / "r.csv")
    raw.write_parquet(tmp_path / "r.parquet")
    raw.write_ndjson(tmp_path / "r.jsonl")
    for name in ("r.csv", "r.parquet", "r.jsonl"):
        assert read_replay(tmp_path / name).rows["score"].to_list() == [0.5, 0.9]
    with pytest.raises(ReplayError, match="score column"):
        validate(pl.DataFrame({"x": [1]}))
    with pytest.raises(ReplayError, match="unknown replay format"):
        read_replay(tmp_path / "r.txt")


def test_implied_costs_equal_a_hand_computation_from_the_price_table(wh: Warehouse, pipeline: Pipeline) -> None:
    _seed_cascade(pipeline)
    n = 300
    rng = np.random.default_rng(5)
    scores = np.round(rng.beta(5, 2, n), 4)
    tokens = {"cheap_input_tokens": rng.integers(200, 4000, n), "cheap_output_tokens": rng.integers(20, 800, n),
              "frontier_input_tokens": rng.integers(200, 4000, n), "frontier_output_tokens": rng.integers(20, 900, n)}
    replay = validate(pl.DataFrame({"score": scores, **tokens}))
    advice = advise(wh, Scope.all(), route=ROUTE, replay=replay, end=END, days=30)
    assert (advice.cheap.model, advice.frontier.model, advice.source) == ("gpt-4o-mini", "gpt-4o", "replay")
    assert advice.monthly_requests == 40  # 40 step-0 calls in the 30 days before END

    ci, co = _rates(wh, "gpt-4o-mini")
    fi, fo = _rates(wh, "gpt-4o")
    cheap = [int(a) * ci + int(b) * co for a, b in zip(tokens["cheap_input_tokens"], tokens["cheap_output_tokens"])]
    front = [int(a) * fi + int(b) * fo for a, b in zip(tokens["frontier_input_tokens"], tokens["frontier_output_tokens"])]

    def month(t: float) -> Decimal:
        sample = sum(cheap, Decimal(0)) + sum((f for f, s in zip(front, scores) if s < t), Decimal(0))
        with localcontext() as ctx:
            ctx.prec = 80
            return (sample * 40 / n).quantize(Decimal("1e-18"), ROUND_HALF_EVEN)

    rec = advice.recommended
    assert rec.threshold == float(np.sort(scores)[round(n * 0.3)])
    assert rec.monthly_cost_usd == month(rec.threshold)
    with localcontext() as ctx:
        ctx.prec = 80
        all_frontier = (sum(front, Decimal(0)) * 40 / n).quantize(Decimal("1e-18"), ROUND_HALF_EVEN)
    assert rec.all_frontier_usd == all_frontier
    curve = advice.curve.with_columns(pl.col("monthly_cost_usd").cast(pl.String))
    for row in curve.iter_rows(named=True):
        assert Decimal(row["monthly_cost_usd"]) == month(row["threshold"]), row["threshold"]
    assert curve.filter(pl.col("threshold") == 0.0)["escalation_rate"][0] == 0.0
    # the live cascade escalates 20 of 40: the inferred current threshold sits at the 20th score
    assert advice.current is not None and advice.current.threshold == LIVE_SCORES[20]


def test_live_traffic_gives_the_same_kind_of_advice(wh: Warehouse, pipeline: Pipeline) -> None:
    _seed_cascade(pipeline)
    advice = advise(wh, Scope.all(), route=ROUTE, end=END, days=30)
    assert advice.source == "live" and advice.requests_sampled == 40
    assert advice.recommended.threshold == LIVE_SCORES[12]  # 12 of 40 below: 30% escalate
    assert advice.recommended.escalation_rate == pytest.approx(0.3)
    # at threshold 0 nothing escalates: a month of 40 requests costs what the 40 logged step-0 calls cost
    logged = wh.scalar("SELECT sum(cost_usd) FROM calls WHERE cascade_step = 0")
    at_zero = advice.curve.filter(pl.col("threshold") == 0.0)["monthly_cost_usd"][0]
    assert Decimal(str(at_zero)) == Decimal(str(logged))
    assert advice.current is not None and advice.current.escalation_rate == pytest.approx(0.5)
    assert not advice.bimodality.tested  # 40 scores: too few for the dip test
    with pytest.raises(AdvisorError, match="no logged cascade"):
        advise(wh, Scope.all(), route="/nowhere", end=END)
    with pytest.raises(AdvisorError, match="name it as provider/gpt-4o-mini"):
        advise(wh, Scope.of("other"), route=ROUTE, end=END, cheap="gpt-4o-mini", frontier="openai/gpt-4o")
    with pytest.raises(AdvisorError, match="router_score"):  # another project sees none of the route's calls
        advise(wh, Scope.of("other"), route=ROUTE, end=END, cheap="openai/gpt-4o-mini", frontier="openai/gpt-4o",
               monthly_requests=100)


def test_dual_peaked_replay_recommends_classifier_routing(wh: Warehouse, pipeline: Pipeline) -> None:
    _seed_cascade(pipeline)
    rng = np.random.default_rng(9)
    dual = np.round(np.concatenate([rng.beta(2, 12, 200), rng.beta(12, 2, 200)]), 4)
    easy = validate(pl.DataFrame({"score": np.round(rng.beta(6, 2.5, 400), 4), "task": ["chat"] * 400}))
    advice = advise(wh, Scope.all(), route=ROUTE, replay=validate(pl.DataFrame({"score": dual})), end=END)
    assert advice.bimodality.bimodal and "classifier" in (advice.classifier_advice or "")
    plain = advise(wh, Scope.all(), route=ROUTE, replay=easy, end=END)
    assert not plain.bimodality.bimodal and plain.classifier_advice is None
    assert plain.tasks["seed_guidance"][0].startswith("conversational")


def test_stored_replay_reaches_the_cli_json(wh: Warehouse, pipeline: Pipeline, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, settings) -> None:  # type: ignore[no-untyped-def]
    _seed_cascade(pipeline)
    replay = validate(pl.DataFrame({"score": [0.1, 0.5, 0.9]}))
    save_replay(wh, replay, project="default", route=ROUTE, at=END)
    assert latest_replay(wh, Scope.of("default"), ROUTE).rows["score"].to_list() == [0.1, 0.5, 0.9]
    assert latest_replay(wh, Scope.of("other"), ROUTE) is None
    path = tmp_path / "replay.jsonl"
    pl.DataFrame({"score": np.round(np.random.default_rng(1).beta(5, 2, 250), 4)}).write_ndjson(path)
    import llmledger.runtime
    from llmledger.cli import app

    monkeypatch.setattr(llmledger.runtime.Warehouse, "from_settings", lambda _s: _Borrowed(wh))
    result = CliRunner().invoke(app, ["routing", "advise", "--route", ROUTE, "--replay", str(path), "--end",
                                      "2025-12-01T00:00:00Z", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["source"] == "replay" and body["requests_sampled"] == 250 and body["percentile"] == 70
    assert Decimal(body["recommended"]["monthly_cost_usd"]) > 0 and body["curve"]["rows"]
    text = CliRunner().invoke(app, ["routing", "advise", "--route", ROUTE, "--end", "2025-12-01T00:00:00Z"])
    assert text.exit_code == 0 and "recommended threshold" in text.output


class _Borrowed:
    """The test's warehouse, not closed by the CLI."""

    def __init__(self, wh: Warehouse) -> None:
        self._wh = wh

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._wh, name)

    def __enter__(self) -> Warehouse:
        return self._wh

    def __exit__(self, *exc: object) -> None:
        return None

    def close(self) -> None:
        return None


def test_advice_endpoint(store: Path, tmp_path: Path) -> None:
    from tests.service_support import service_settings, start_in_thread

    running = start_in_thread(service_settings(store, tmp_path / "home"))
    svc = next(running)
    try:
        with svc.client() as http:
            records = [make_call(route=ROUTE, routing_policy=POLICY, cascade_step=0, router_score=s, model="gpt-4o-mini",
                                 ts=f"2025-11-{1 + i % 28:02d}T10:00:00Z") for i, s in enumerate(LIVE_SCORES)]
            records += [make_call(route=ROUTE, routing_policy=POLICY, cascade_step=1, router_score=s, model="gpt-4o",
                                  ts="2025-11-02T10:00:00Z") for s in LIVE_SCORES if s < LIVE_THRESHOLD]
            assert http.post("/v1/events", json=records).status_code == 200
            svc.wait_flushed()
            body = http.get("/v1/routing/advice", params={"route": ROUTE, "end": "2025-12-01T00:00:00Z"}).json()
            assert body["source"] == "live" and body["recommended"]["threshold"] == LIVE_SCORES[12]
            assert isinstance(body["recommended"]["monthly_cost_usd"], str) and body["curve"]["rows"]
            assert http.get("/v1/routing/advice", params={"route": "nope"}).status_code == 404
            assert http.get("/v1/routing/advice", params={"route": ROUTE, "source": "replay"}).status_code == 404
    finally:
        running.close()
