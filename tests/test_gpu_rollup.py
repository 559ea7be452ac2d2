"""The nodes page's GPU chart read from the GPU rollups (`gpu_samples_hourly` for whole hours,
`gpu_samples_5m` for the other whole five-minute buckets) and raw samples for the partial buckets
at a range's edges: the same rows as the raw samples alone (means up to float rounding), and the
plan reads the rollups, not every sample."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from warehouse.client import Warehouse
from warehouse.queries import nodes
from warehouse.queries.scope import Scope

T0 = datetime(2025, 11, 3, 9, 0, tzinfo=UTC)
ALL = Scope.all()
RAGGED = (T0 + timedelta(minutes=7, seconds=31), T0 + timedelta(hours=2, minutes=52, seconds=10))


@pytest.fixture
def samples(wh: Warehouse) -> Warehouse:
    """Three hours of scrapes every 20 s of two nodes' GPUs, with blank fields and two util sources."""
    n = 3 * 180
    rows = []
    for node, gpus in (("n1", 2), ("n2", 1)):
        for gpu in range(gpus):
            for i in range(n):
                rows.append({
                    "project": "p", "ts": T0 + timedelta(seconds=20 * i), "node": node, "gpu": gpu,
                    "gpu_model": "NVIDIA H100 80GB HBM3", "source": "dcgm",
                    "util_pct": None if i % 7 == 0 else float((i * 13 + gpu) % 100),
                    "util_source": "DCGM_FI_DEV_GPU_UTIL" if i % 5 == 0 else "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
                    "sm_active": (i % 10) / 10, "tensor_active": None if i % 3 else 0.5,
                    "fb_used_mib": 1000.0 + i, "fb_free_mib": 80000.0 - i,
                    "fb_total_mib": 0.0 if i % 11 == 0 else 81559.0, "power_w": 300.0 + i % 50,
                    "temp_c": None if i % 13 == 0 else 40.0 + i % 30,
                })
    frame = pl.DataFrame(rows).with_columns(pl.col("gpu").cast(pl.UInt16), pl.col("ts").dt.cast_time_unit("ms"))
    wh.insert_arrow("gpu_samples", frame)
    return wh


def _raw(wh: Warehouse, *args, **kwargs) -> pl.DataFrame:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nodes, "_five_minutes", lambda *a: None)
        return nodes.gpu_utilisation(wh, *args, **kwargs)


def test_gpu_chart_from_the_rollup_equals_raw_samples(samples: Warehouse) -> None:
    for step_s in (300, 1800, 3600, 7200):
        for span in (RAGGED, (T0, T0 + timedelta(hours=3))):
            _same(samples, step_s, span)


def _same(samples: Warehouse, step_s: int, span: tuple[datetime, datetime]) -> None:
    planned = nodes.gpu_utilisation(samples, ALL, *span, step_s=step_s)
    raw = _raw(samples, ALL, *span, step_s=step_s)
    assert planned.height == raw.height > 0 and planned.schema == raw.schema
    exact = ["bucket", "node", "gpu", "gpu_model", "util_source", "temp_c_max", "samples"]
    assert planned.select(exact).equals(raw.select(exact))
    for column in ("util_pct", "sm_active", "tensor_active", "fb_used_mib", "fb_free_mib", "fb_used_share", "power_w"):
        for got, want in zip(planned[column].to_list(), raw[column].to_list(), strict=True):
            assert (got is None) == (want is None) and (want is None or got == pytest.approx(want, rel=1e-12))
    assert "DCGM_FI_DEV_GPU_UTIL,DCGM_FI_PROF_GR_ENGINE_ACTIVE" in planned["util_source"].to_list()
    one = nodes.gpu_utilisation(samples, ALL, *span, step_s=step_s, nodes=["n2"])
    assert one["node"].unique().to_list() == ["n2"] and one["samples"].sum() < planned["samples"].sum()


def test_gpu_chart_reads_the_rollup_and_only_the_edges_raw(samples: Warehouse) -> None:
    captured: list[tuple[str, dict]] = []
    query_df = samples.query_df

    def spy(sql, params=None, *, tag=None):
        captured.append((sql, params))
        return query_df(sql, params, tag=tag)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(samples, "query_df", spy)
        nodes.gpu_utilisation(samples, ALL, *RAGGED, step_s=1800)  # a step of half hours: no hourly tier
        nodes.gpu_utilisation(samples, ALL, *RAGGED, step_s=3600)
    assert "gpu_samples_5m" in captured[0][0] and "gpu_samples_hourly" not in captured[0][0]
    sql, params = captured[-1]
    plan = "\n".join(r[0] for r in samples.query_rows("EXPLAIN indexes = 1 " + sql, params))
    assert "gpu_samples_5m)" in plan and "gpu_samples_hourly)" in plan  # ReadFromMergeTree (db.table)
    assert (params["hour_first"], params["hour_last"]) == (T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    # the hour's samples come from the hourly tier alone, the other whole buckets from the 5-minute one
    tiers = samples.query_rows(
        "SELECT (SELECT sum(samples) FROM gpu_samples_hourly WHERE hour = {h:DateTime64(3, 'UTC')}), "
        "(SELECT count() FROM gpu_samples_5m WHERE bucket >= {h:DateTime64(3, 'UTC')} "
        "AND bucket < {h:DateTime64(3, 'UTC')} + INTERVAL 1 HOUR)", {"h": T0 + timedelta(hours=1)})[0]
    assert tiers == (3 * 180, 3 * 12)
    # the raw samples read: the two partial buckets (2:29 + 2:10 of scrapes), not the range's 2h45m
    raw = samples.query_rows(
        "SELECT count() FROM gpu_samples WHERE ts >= {a:DateTime64(3, 'UTC')} AND ts < {b:DateTime64(3, 'UTC')} "
        "AND (ts < {f:DateTime64(3, 'UTC')} OR ts >= {l:DateTime64(3, 'UTC')})",
        {"a": RAGGED[0], "b": RAGGED[1], "f": params["five_first"], "l": params["five_last"]})[0][0]
    assert params["five_first"] == T0 + timedelta(minutes=10) and params["five_last"] == T0 + timedelta(hours=2,
                                                                                                       minutes=50)
    assert 0 < raw < 3 * 15
    assert nodes.gpu_utilisation(samples, ALL, *RAGGED, step_s=60).equals(_raw(samples, ALL, *RAGGED, step_s=60))


def test_the_migrations_back_fill_samples_stored_before_them(samples: Warehouse) -> None:
    from warehouse.migrate import discover

    tiers = ("gpu_samples_5m", "gpu_samples_hourly")
    before = {t: samples.query_rows(f"SELECT * FROM {t} FINAL ORDER BY ALL") for t in tiers}
    for table in tiers:
        samples.command(f"TRUNCATE TABLE {table}")
    for m in (m for m in discover() if m.version in (87, 88)):
        for statement in (s for s in m.statements() if "INSERT INTO" in s):
            samples.command(statement)
    assert {t: samples.query_rows(f"SELECT * FROM {t} FINAL ORDER BY ALL") for t in tiers} == before
