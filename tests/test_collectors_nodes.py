"""Self-hosted node metrics: vLLM and DCGM scrapes over real HTTP, nvidia-smi files, and the SQL
that turns raw counters and histogram buckets into rates, quantiles and GPU cost."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from collectors.config import CollectorsSettings, DcgmConfig, GpuPrice, NvidiaSmiConfig, ScrapeTarget, VllmConfig
from collectors.dcgm import DcgmCollector, parse_dcgm
from collectors.nvidia_smi import parse_nvidia_smi
from collectors.runner import run_collector
from collectors.vllm import VllmCollector, parse_vllm
from llmledger.settings import Settings
from tests.servers import FIXTURES, MetricsServer
from warehouse.client import Warehouse
from warehouse.queries import nodes
from warehouse.queries.scope import Scope

T0 = datetime(2025, 11, 3, 10, 0, tzinfo=UTC)
WINDOW = (T0, T0 + timedelta(minutes=1))
ALL = Scope.all()


def text(name: str) -> str:
    return (FIXTURES / name).read_text()


@pytest.fixture
def metrics() -> Iterator[MetricsServer]:
    server = MetricsServer()
    server.bodies["/metrics"] = [text(f"vllm/scrape_{i}.txt") for i in range(1, 5)]
    server.bodies["/dcgm"] = [text(f"dcgm/scrape_{i}.txt") for i in range(1, 5)]
    yield server
    server.stop()


def scrape_timeline(settings: Settings, wh: Warehouse, metrics: MetricsServer, *, prices: list[GpuPrice]) -> Settings:
    """Four scrapes 15 s apart of one node's vLLM and DCGM exporters (the 4th after a vLLM restart)."""
    section = CollectorsSettings(
        vllm=VllmConfig(enabled=True, targets=[ScrapeTarget(url=f"{metrics.url}/metrics", node="gpu-node-1")]),
        dcgm=DcgmConfig(enabled=True, targets=[ScrapeTarget(url=f"{metrics.url}/dcgm")]),
        gpu_prices=prices,
    )
    s = settings.model_copy(update={"collectors": section})
    for i in range(4):
        at = T0 + timedelta(seconds=15 * i)
        for cls, config in ((VllmCollector, section.vllm), (DcgmCollector, section.dcgm)):
            report = run_collector(cls.name, s, wh, collector=cls(config, clock=lambda at=at: at))
            assert report.ok, report.error
    return s


def test_counters_with_a_reset_give_exact_rates(settings: Settings, wh: Warehouse, metrics: MetricsServer) -> None:
    scrape_timeline(settings, wh, metrics, prices=[])
    total = nodes.token_throughput(wh, ALL, *WINDOW, step_s=None).row(0, named=True)
    # increases 600+600+300 prompt and 1500×3 generation tokens over the 45 s the samples cover;
    # the 4th scrape restarted from zero and counts as an increase of its own value
    assert (total["node"], total["model"]) == ("gpu-node-1", "llama-3.1-8b-instruct")
    assert (total["prompt_tokens"], total["generation_tokens"]) == (1500, 4500)
    assert total["generation_tokens_per_s"] == pytest.approx(100.0)
    assert total["prompt_tokens_per_s"] == pytest.approx(1500 / 45)
    assert total["requests_per_s"] == pytest.approx(11 / 45)  # summed over finished_reason, reset included
    assert total["prefix_cache_hit_rate"] == pytest.approx(0.5)
    per_bucket = nodes.token_throughput(wh, ALL, *WINDOW, step_s=30)
    assert per_bucket["generation_tokens"].to_list() == [1500, 3000]


def test_histogram_quantiles_interpolate_like_promql(settings: Settings, wh: Warehouse, metrics: MetricsServer) -> None:
    scrape_timeline(settings, wh, metrics, prices=[])
    q = nodes.latency_quantiles(wh, ALL, *WINDOW, metric="ttft_s", quantiles=(0.1, 0.5, 0.9, 0.95))
    # bucket increases over the range (le 0.1 … +Inf, reset handled): 3, 7, 15, 24, 32, 34
    values = dict(zip(q["q"].to_list(), q["value_s"].to_list(), strict=True))
    assert values[0.1] == pytest.approx(0.1 + 0.15 * (3.4 - 3) / (7 - 3))
    assert values[0.5] == pytest.approx(0.5 + 0.5 * (17 - 15) / (24 - 15))
    assert values[0.9] == pytest.approx(1.0 + 1.5 * (30.6 - 24) / (32 - 24))
    assert values[0.95] == 2.5  # falls in +Inf: the highest finite edge
    assert q["observations"][0] == 34 and q["mean_s"][0] == pytest.approx(28 / 34)


def test_gauges_give_running_waiting_and_kv_cache(settings: Settings, wh: Warehouse, metrics: MetricsServer) -> None:
    scrape_timeline(settings, wh, metrics, prices=[])
    load = nodes.inference_load(wh, ALL, *WINDOW, step_s=60).row(0, named=True)
    assert (load["requests_running_mean"], load["requests_running_max"]) == (3.75, 7)
    assert load["requests_waiting_max"] == 4
    assert load["kv_cache_usage_mean"] == pytest.approx((0.25 + 0.5 + 0.75 + 0.1) / 4)


def test_gpu_time_is_priced_and_allocated_to_tokens(settings: Settings, wh: Warehouse, metrics: MetricsServer) -> None:
    prices = [GpuPrice(gpu_model="H100", usd_per_gpu_hour=Decimal("2.50")),
              GpuPrice(node="other-node", usd_per_gpu_hour=Decimal("9"))]
    scrape_timeline(settings, wh, metrics, prices=prices)
    gpus = nodes.gpu_cost(wh, ALL, *WINDOW)
    assert gpus["gpu"].to_list() == [0, 1] and gpus["usd_per_gpu_hour"].to_list() == [Decimal("2.5")] * 2
    # 3 intervals of 15 s per GPU
    assert gpus["infra_cost_usd"].to_list() == [Decimal("0.03125")] * 2
    cost = nodes.self_host_cost(wh, ALL, *WINDOW).row(0, named=True)
    # 2 GPUs × 45 s × $2.50/h = $0.0625 for 1500 + 4500 tokens
    assert cost["infra_cost_usd"] == Decimal("0.0625")
    # $0.0625 × 1M / 6000 and / 4500, at the warehouse's 18 decimal places
    assert cost["cost_per_1m_tokens_usd"] == Decimal("10.416666666666666666")
    assert cost["cost_per_1m_output_tokens_usd"] == Decimal("13.888888888888888888")
    assert cost["generation_tokens_per_s_per_gpu"] == pytest.approx(50.0)
    breakeven = nodes.breakeven_inputs(wh, ALL, *WINDOW, step_s=15).row(0, named=True)
    assert breakeven["tokens_per_s_per_gpu"] == pytest.approx(50.0)
    assert breakeven["usd_per_1m_output_at_measured"] == pytest.approx(2.5 / (50 * 3600) * 1e6)
    assert breakeven["peak_tokens_per_s_per_gpu"] == pytest.approx(50.0)
    util = nodes.gpu_utilisation(wh, ALL, *WINDOW, step_s=60).filter(pl.col("gpu") == 0).row(0, named=True)
    # DCGM_FI_PROF_GR_ENGINE_ACTIVE (0.95) wins over DCGM_FI_DEV_GPU_UTIL (100, 90, 80, 70 → 85)
    assert (util["util_pct"], util["util_source"]) == (pytest.approx(95.0), "DCGM_FI_PROF_GR_ENGINE_ACTIVE")


def test_dcgm_labels_and_blank_sentinels() -> None:
    capital = parse_dcgm(text("dcgm/scrape_1.txt"), node=None, ts=T0).sort("gpu")
    assert capital["node"].to_list() == ["gpu-node-1"] * 2
    assert capital["gpu_model"][0] == "NVIDIA H100 80GB HBM3"
    assert capital["mem_temp_c"].to_list() == [45.0, None]  # int64 blank sentinel
    assert capital["sm_active"].to_list() == [0.88, None]  # int32 blank sentinel
    assert capital["energy_mj"].to_list()[1] == 2147483701.0  # a large counter is not a sentinel
    assert capital["fb_total_mib"].to_list() == [81559.0, 81559.0]
    lower = parse_dcgm(text("dcgm/lowercase_hostname.txt"), node=None, ts=T0).sort("gpu")
    assert lower["node"].to_list() == ["gpu-node-2"] * 2
    # the engine-active ratio (0.95, 0.01) is the utilisation where exported, also where GPU_UTIL is blank
    assert lower["util_pct"].to_list() == [95.0, 1.0] and lower["power_w"].to_list() == [612.5, None]
    assert lower["util_source"].to_list() == ["DCGM_FI_PROF_GR_ENGINE_ACTIVE"] * 2
    assert parse_dcgm(text("dcgm/scrape_1.txt"), node="configured", ts=T0)["node"].unique().to_list() == ["configured"]


def test_dcgm_without_profiling_fields_falls_back_to_gpu_util(settings: Settings, wh: Warehouse) -> None:
    # H100/H200 exporters may lack DCGM_FI_PROF_GR_ENGINE_ACTIVE (NVIDIA/DCGM#226)
    frame = parse_dcgm(text("dcgm/no_profiling.txt"), node=None, ts=T0).sort("gpu")
    assert frame["util_pct"].to_list() == [73.0, 12.0] and frame["gr_engine_active"].to_list() == [None, None]
    assert frame["util_source"].to_list() == ["DCGM_FI_DEV_GPU_UTIL"] * 2
    metrics = MetricsServer()
    metrics.bodies["/dcgm"] = [text("dcgm/no_profiling.txt")]
    try:
        config = DcgmConfig(targets=[ScrapeTarget(url=f"{metrics.url}/dcgm")])
        report = run_collector("dcgm", settings, wh, collector=DcgmCollector(config, clock=lambda: T0))
        assert report.ok, report.error
    finally:
        metrics.stop()
    util = nodes.gpu_utilisation(wh, ALL, *WINDOW, step_s=60).sort("gpu")
    assert util["util_pct"].to_list() == [73.0, 12.0]
    assert util["util_source"].to_list() == ["DCGM_FI_DEV_GPU_UTIL"] * 2


def test_vllm_old_and_new_metric_names() -> None:
    inference, histograms = parse_vllm(text("vllm/old_names.txt"), node="n", ts=T0)
    row = inference.row(0, named=True)
    assert (row["model"], row["engine"], row["kv_cache_usage"]) == ("qwen2.5-7b", "", 0.42)
    assert (row["prefix_cache_queries_total"], row["prefix_cache_hits_total"]) == (900.0, 300.0)
    assert row["requests_waiting"] == 1.0 and row["generation_tokens_total"] == 777.0
    assert histograms["metric"].unique().to_list() == ["itl_s"]
    assert sorted(histograms["le"].to_list()) == [0.01, 0.05, math.inf]
    # the same scrape from a current vLLM reads into the same columns and histogram
    new, new_histograms = parse_vllm(text("vllm/new_names.txt"), node="n", ts=T0)
    assert new.drop("engine").row(0) == inference.drop("engine").row(0) and new["engine"][0] == "0"
    assert new_histograms.drop("engine").sort("le").equals(histograms.drop("engine").sort("le"))
    both, _ = parse_vllm(text("vllm/both_names.txt"), node="n", ts=T0)
    assert both["kv_cache_usage"].to_list() == [0.43]  # the current name wins over the deprecated one


def test_nvidia_smi_with_and_without_header_and_units(settings: Settings, wh: Warehouse) -> None:
    config = NvidiaSmiConfig(node="smi-node", path=FIXTURES / "nvidia_smi/query_with_header.csv")
    frame, rejects = parse_nvidia_smi(config.path.read_text(), config)
    assert frame.height == 3 and len(rejects) == 1 and rejects[0].line_no == 5
    first = frame.sort("ts", "gpu").row(0, named=True)
    assert (first["util_pct"], first["fb_used_mib"], first["power_w"], first["temp_c"]) == (98.0, 79000.0, 612.5, 61.0)
    assert first["ts"] == datetime(2025, 11, 3, 10, 0, 0, 123000, tzinfo=UTC)
    assert frame.sort("ts", "gpu")["mem_temp_c"].to_list() == [45.0, None, 45.0]  # [N/A]
    assert frame.sort("ts", "gpu")["power_w"].to_list()[2] is None  # [Not Supported]
    plain = NvidiaSmiConfig(node="a100-node", timezone="Europe/Berlin")
    frame, rejects = parse_nvidia_smi((FIXTURES / "nvidia_smi/noheader_nounits.csv").read_text(), plain)
    assert frame.height == 2 and not rejects
    assert frame["ts"][0] == datetime(2025, 11, 3, 9, 0, 0, 123000, tzinfo=UTC)  # local time → UTC
    assert frame["gpu_model"][0] == "NVIDIA A100-SXM4-80GB" and frame["mem_copy_util_pct"].to_list() == [30.0, None]
    # through the runner: written once, the bad row dead-lettered, a re-import changes nothing
    for _ in range(2):
        report = run_collector("nvidia-smi", settings, wh, path=config.path, node="smi-node")
        assert report.ok, report.error
    assert wh.scalar("SELECT count() FROM gpu_samples WHERE node = 'smi-node'") == 3
    assert wh.scalar("SELECT count() FROM dead_letters WHERE source = 'nvidia-smi'") == 1  # stored once


def test_a_failing_target_does_not_stop_the_others(settings: Settings, wh: Warehouse, metrics: MetricsServer) -> None:
    metrics.fail.add("/broken")
    config = VllmConfig(targets=[ScrapeTarget(url=f"{metrics.url}/broken", node="a"),
                                 ScrapeTarget(url=f"{metrics.url}/metrics", node="b")])
    report = run_collector("vllm", settings, wh, config=config)
    assert report.status == "error" and "1 of 2 targets failed" in report.error
    assert wh.scalar("SELECT count() FROM inference_samples WHERE node = 'b'") == 1


def test_gpu_prices_follow_settings(settings: Settings, wh: Warehouse, tmp_path: Path) -> None:
    from ingest.node_metrics import load_gpu_prices

    assert load_gpu_prices(wh, [GpuPrice(node="n1", usd_per_gpu_hour=Decimal("3.10"))])
    assert not load_gpu_prices(wh, [GpuPrice(node="n1", usd_per_gpu_hour=Decimal("3.1"))])
    assert load_gpu_prices(wh, [])
    assert wh.scalar("SELECT count() FROM gpu_prices") == 0
