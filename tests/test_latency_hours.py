"""Finished latency hours (`warehouse.latency_hours`): the hourly latency series read from finished
closed hours answers as merging the rollup's digests live does, per project and for all projects;
late calls show at once (their hour is merged live until the job finishes it again); the job and
the migration's back-fill finish each hour once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from ingest.pipeline import Pipeline
from llmledger.settings import Settings
from llmledger.simulator import SimulationConfig, iter_days
from tests.conftest import both_transports, migrated_database
from warehouse import latency_hours
from warehouse.client import Warehouse
from warehouse.latency_hours import finish_latency_hours
from warehouse.migrate import discover
from warehouse.queries import series
from warehouse.queries.scope import Scope

START = datetime(2025, 11, 5, tzinfo=UTC)
NOW = datetime(2025, 11, 5, 16, 20, tzinfo=UTC)  # the job's clock: hours before 16:00 are closed
RANGE = (datetime(2025, 11, 5, 2, 17, tzinfo=UTC), datetime(2025, 11, 5, 22, 41, tzinfo=UTC))  # ragged edges
ALL, APP, INTERNAL = Scope.all(), Scope.of("acme-app"), Scope.of("acme-internal")


def _simulated() -> pl.DataFrame:
    return pl.concat([d.calls for d in iter_days(SimulationConfig(start=START, days=1, calls_per_day=2_000, seed=5))])


@pytest.fixture(scope="module")
def loaded(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """A simulated day of two projects, its hours before NOW finished (the module's reads only)."""
    settings = Settings(home=tmp_path_factory.mktemp("latency-hours"), warehouse={"path": store})
    with migrated_database(settings) as wh, Pipeline(wh, settings) as pipeline:
        pipeline.ingest_frame(_simulated(), source="simulator")
        finished = finish_latency_hours(wh, NOW)
        assert finished == latency_hours.Finished(16, wh.scalar(f"SELECT count() FROM {latency_hours.TABLE}"))
        yield wh


def _live(monkeypatch: pytest.MonkeyPatch, wh: Warehouse, scope: Scope, dimension: str | None) -> pl.DataFrame:
    """The series with every whole hour merged from the rollup's digests (the read before finished hours)."""
    with monkeypatch.context() as patch:
        patch.setattr(latency_hours, "fresh_hours", lambda *a, **k: None)
        return series.latency_series(wh, scope, *RANGE, grain="hour", dimension=dimension)


def _same(served: pl.DataFrame, live: pl.DataFrame) -> None:
    """Same buckets, keys, counts and means; quantiles equal up to the order digests are merged in."""
    assert served.schema == live.schema and served.height == live.height > 0
    exact = [c for c in live.columns if not c.endswith("_p50_ms") and not c.endswith("_p95_ms")
             and not c.endswith("_p99_ms")]
    assert served.select(exact).equals(live.select(exact))
    for column in set(live.columns) - set(exact):
        for got, want in zip(served[column].to_list(), live[column].to_list(), strict=True):
            assert (got is None) == (want is None) and (want is None or got == pytest.approx(want, rel=1e-6)), column


@pytest.mark.parametrize("scope", [ALL, APP, INTERNAL], ids=["all", "app", "internal"])
@pytest.mark.parametrize("dimension", [None, "route", "model", "provider"])
def test_finished_hours_answer_as_live_merging(loaded: Warehouse, monkeypatch: pytest.MonkeyPatch, scope: Scope,
                                              dimension: str | None) -> None:
    _same(series.latency_series(loaded, scope, *RANGE, grain="hour", dimension=dimension),
          _live(monkeypatch, loaded, scope, dimension))


def test_one_projects_series_holds_only_its_calls(loaded: Warehouse) -> None:
    """Per project the hours are finished apart: the two projects' calls add up to all projects'."""
    per = [series.latency_series(loaded, s, *RANGE, grain="hour").select("bucket", "calls") for s in (APP, INTERNAL)]
    both = pl.concat(per).group_by("bucket").agg(pl.col("calls").sum()).sort("bucket")
    assert both.equals(series.latency_series(loaded, ALL, *RANGE, grain="hour").select("bucket", "calls"))
    assert per[0]["calls"].sum() == loaded.scalar(
        "SELECT count() FROM calls WHERE project = 'acme-app' AND status = 'ok' AND ts >= {s:DateTime64(3, 'UTC')} "
        "AND ts < {e:DateTime64(3, 'UTC')}", {"s": RANGE[0], "e": RANGE[1]})


def test_scopes_and_reads_no_finished_row_serves_merge_live(loaded: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several projects, a filter, another dimension or grain: nothing finished is read."""
    issued: list[str] = []
    plain = loaded.query_df
    monkeypatch.setattr(loaded, "query_df", lambda sql, *a, **k: (issued.append(sql), plain(sql, *a, **k))[1])
    two = series.latency_series(loaded, Scope.of("acme-app", "acme-internal"), *RANGE, grain="hour", dimension="route")
    series.latency_series(loaded, ALL, *RANGE, grain="hour", dimension="route", filters={"model": ["gpt-4o"]})
    series.latency_series(loaded, ALL, *RANGE, grain="hour", dimension="team")
    series.latency_series(loaded, ALL, *RANGE, grain="day", dimension="route")
    assert not any(latency_hours.TABLE in sql for sql in issued)
    series.latency_series(loaded, ALL, *RANGE, grain="hour", dimension="route")
    assert latency_hours.TABLE in issued[-1]
    assert two.select("bucket", "key", "calls").equals(
        series.latency_series(loaded, ALL, *RANGE, grain="hour", dimension="route").select("bucket", "key", "calls"))


@both_transports
def test_late_calls_show_at_once_and_the_job_finishes_their_hour_again(
        pipeline: Pipeline, wh: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline.ingest_frame(_simulated(), source="simulator")
    monkeypatch.setattr(latency_hours, "HOURS_PER_INSERT", 5)  # 16 hours in four statements
    assert finish_latency_hours(wh, NOW).hours == 16
    assert finish_latency_hours(wh, NOW).hours == 0  # nothing changed: nothing to finish
    hour = datetime(2025, 11, 5, 9, tzinfo=UTC)
    before = series.latency_series(wh, APP, *RANGE, grain="hour", dimension="route")
    other = series.latency_series(wh, INTERNAL, *RANGE, grain="hour", dimension="route")
    stale = wh.scalar(f"SELECT any(source_hash) FROM {latency_hours.TABLE} WHERE all_projects = 0 AND project = 'acme-app' "
                      "AND hour = {h:DateTime('UTC')}", {"h": hour})
    late = _simulated().filter((pl.col("project") == "acme-app") & (pl.col("status") == "ok")
                               & (pl.col("ts").dt.hour() == hour.hour)).head(1).with_columns(
        pl.lit(120_000).alias("latency_ms"), pl.lit("late-call-1").alias("event_id"))  # a slow one, in a finished hour
    pipeline.ingest_frame(late, source="simulator")
    after = series.latency_series(wh, APP, *RANGE, grain="hour", dimension="route")
    _same(after, _live(monkeypatch, wh, APP, "route"))
    changed = after.join(before, on=["bucket", "key"], suffix="_before").filter(
        pl.col("calls") != pl.col("calls_before"))
    assert changed.select("bucket", "key").rows() == [(hour, late["route"][0])]
    assert changed["calls"][0] == changed["calls_before"][0] + 1
    assert changed["latency_p99_ms"][0] > changed["latency_p99_ms_before"][0]
    assert series.latency_series(wh, INTERNAL, *RANGE, grain="hour", dimension="route").equals(other)

    assert finish_latency_hours(wh, NOW).hours == 1  # the late call's hour, finished again
    assert finish_latency_hours(wh, NOW).hours == 0
    # a row of the hour from before the late call (older: a merge keeps the newer), until a merge
    # replaces it: never read again
    wh.command(f"INSERT INTO {latency_hours.TABLE} (all_projects, project, dimension, hour, key, source_hash, calls, "
               "latency_q, finished_at) VALUES (0, 'acme-app', 'route', {h:DateTime('UTC')}, {k:String}, {x:UInt64}, 1, "
               "[1, 2, 3, 4], '2025-11-05 16:00:00')", {"h": hour, "k": late["route"][0], "x": stale})
    _same(series.latency_series(wh, APP, *RANGE, grain="hour", dimension="route"),
          _live(monkeypatch, wh, APP, "route"))
    _same(series.latency_series(wh, ALL, *RANGE, grain="hour", dimension="model"),
          _live(monkeypatch, wh, ALL, "model"))


def test_reads_use_the_finished_rows(pipeline: Pipeline, wh: Warehouse) -> None:
    """Not agreeing by accident: a finished hour's stored quantiles are what the series shows, the
    open hours (from NOW on) are merged live."""
    pipeline.ingest_frame(_simulated(), source="simulator")
    finish_latency_hours(wh, NOW)
    wh.command(f"ALTER TABLE {latency_hours.TABLE} UPDATE latency_q = [1, 2, 3, 4] WHERE 1",
               settings={"mutations_sync": 2})
    p50 = series.latency_series(wh, ALL, *RANGE, grain="hour").select("bucket", "latency_p50_ms")
    finished = pl.col("bucket").is_between(RANGE[0].replace(hour=3, minute=0), NOW.replace(minute=0), closed="left")
    assert p50.filter(finished).height == 13 and set(p50.filter(finished)["latency_p50_ms"]) == {1.0}  # 03:00-15:00
    assert 1.0 not in set(p50.filter(~finished)["latency_p50_ms"])  # edge hours 02:00, 22:00 and the open ones


def test_migration_back_fills_closed_hours_once(pipeline: Pipeline, wh: Warehouse) -> None:
    """Run again over stored calls, the migration finishes every closed hour (the clock is now: all of
    them), the job then finds nothing to do, and a third run writes nothing."""
    pipeline.ingest_frame(_simulated(), source="simulator")
    migration = next(m for m in discover() if m.name == "0091_calls_latency_finished.sql")
    for statement in migration.statements():
        wh.ddl(statement)
    rows = wh.scalar(f"SELECT count() FROM {latency_hours.TABLE}")
    assert rows > 0 and finish_latency_hours(wh, datetime.now(UTC)).hours == 0
    for statement in migration.statements():
        wh.ddl(statement)
    assert wh.scalar(f"SELECT count() FROM {latency_hours.TABLE}") == rows
