"""estimate.curve, perf.roofline and estimate.slo: the Estimate page's charts and SLO check take their numbers here."""

from __future__ import annotations

import numpy as np
import pytest

from llmcap.catalog.loader import load_catalog
from llmcap.estimate.curve import concurrency_curve, concurrency_levels
from llmcap.estimate.roofline import attainable_tflops, ceilings, operator_points, phase_points, ridge_flops_per_byte
from llmcap.estimate.single import estimate
from llmcap.estimate.slo import slo_checks
from llmcap.scenario import Scenario

CATALOG = load_catalog()
SCN = Scenario(model="meta-llama/Llama-3.1-8B-Instruct", hardware="h100-sxm", weight_format="fp8", kv_format="fp8",
               input_len=1024, output_len=256, concurrency=16)  # fmt: skip


def test_levels_are_whole_log_spaced_and_include_the_current_one():
    levels = concurrency_levels(717, current=16)
    assert levels[0] == 1 and levels[-1] == 717 and 16 in levels
    assert np.all(np.diff(levels) > 0) and np.all(levels == np.round(levels))
    assert 20 <= len(levels) <= 26
    assert list(concurrency_levels(3)) == [1, 2, 3]
    assert list(concurrency_levels(0)) == [1]


def test_curve_points_equal_single_estimates():
    curve = concurrency_curve(SCN, np.array([1.0, 16.0, 64.0]), CATALOG)
    assert curve["concurrency"].to_list() == [1, 16, 64]
    for row in curve.iter_rows(named=True):
        s = estimate(SCN.model_copy(update={"concurrency": row["concurrency"]}), CATALOG).serving
        assert row["ttft_ms"] == pytest.approx(s.ttft_ms, rel=1e-9)
        assert row["tpot_ms"] == pytest.approx(s.tpot_ms, rel=1e-9)
        assert row["output_tokens_per_s"] == pytest.approx(s.output_tokens_per_s, rel=1e-9)


def test_curve_throughput_rises_and_tpot_grows_with_concurrency():
    curve = concurrency_curve(SCN, concurrency_levels(256), CATALOG)
    assert np.all(np.diff(curve["output_tokens_per_s"].to_numpy()) > 0)
    assert np.all(np.diff(curve["tpot_ms"].to_numpy()) >= 0)


def test_curve_leaves_out_what_does_not_fit():
    big = SCN.model_copy(update={"model": "meta-llama/Llama-3.1-70B-Instruct", "weight_format": "bf16",
                                 "kv_format": None})  # fmt: skip
    assert concurrency_curve(big, np.array([1.0, 8.0]), CATALOG).is_empty()


def test_roofline_by_hand():
    # H100 SXM: 3350 GB/s; at 10 FLOP/byte the memory roof is 33.5 TFLOP/s, far below the 989 TFLOP/s bf16 peak
    assert attainable_tflops(np.array([10.0]), 989.0, 3350.0)[0] == pytest.approx(33.5)
    assert attainable_tflops(np.array([1e4]), 989.0, 3350.0)[0] == 989.0
    assert ridge_flops_per_byte(989.0, 3350.0) == pytest.approx(295.2, abs=0.1)
    roofs = ceilings(CATALOG.device("h100-sxm"), "fp8")
    assert roofs == [{"ceiling": "fp8 peak", "peak_tflops": 1979.0}, {"ceiling": "bf16 peak", "peak_tflops": 989.0}]


def test_operating_points_sit_under_the_roof():
    est = estimate(SCN, CATALOG)
    dev = CATALOG.device("h100-sxm")
    points = {p["point"]: p for p in phase_points(est)}
    assert set(points) == {"prefill", "decode"}
    # decode at batch 16 reads the weights every step: low intensity, memory-bound; prefill is compute-heavy
    assert points["decode"]["intensity_flops_per_byte"] < 100 < points["prefill"]["intensity_flops_per_byte"]
    for p in [*points.values(), *operator_points(est)]:
        roof = attainable_tflops(np.array([p["intensity_flops_per_byte"]]), dev.peak_tflops["fp8"], dev.mem_bw_gbps)
        assert 0 < p["achieved_tflops"] <= roof[0] * 1.0001, p
    assert points["decode"]["time_ms"] == est.decode.time_ms


def test_slo_checks():
    serving = estimate(SCN, CATALOG).serving
    loose = slo_checks(serving, ttft_ms=serving.ttft_ms + 1, tpot_ms=serving.tpot_ms, percentile=90)
    assert [(c.metric, c.met) for c in loose] == [("TTFT", True), ("TPOT", True)]
    tight = slo_checks(serving, ttft_ms=serving.ttft_ms / 2, tpot_ms=serving.tpot_ms * 0.99, percentile=99)
    assert [c.met for c in tight] == [False, False]
    assert tight[0].objective_ms == serving.ttft_ms / 2 and tight[0].percentile == 99
