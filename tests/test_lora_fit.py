"""The candidate per-projection LoRA kernel cost (llmcap.calibration.lora_fit) against the step-level published
measurements: which observations can enter the fit, the fitted constant and the leave-one-source-out errors by hand,
and the verdict that keeps the roofline (too few measurements with CUDA graphs)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmcap.calibration.lora_fit import (
    FitPoint,
    acceptance,
    fit_k_launch_s,
    fit_points,
    leave_one_source_out,
    predicted_ratio,
)
from llmcap.catalog.loader import load_catalog
from llmcap.load.lora import adapted_projections
from llmcap.load.lora_evidence import kernel_timings, lora_evidence, roofline_slowdown_bound
from llmcap.load.rate_types import LoadError

CAT = load_catalog()


def _obs(oid: str):
    return next(o for o in lora_evidence() if o.id == oid)


def test_only_step_points_with_base_time_and_known_targets_enter():
    # punica 27 (Yi-34B, all seven projections, eager) and vLLM pull 48887 (Qwen2.5-7B, o_proj only, CUDA graphs);
    # LoRAX 333/611 and SGLang 22809 have a base step time but no stated targets, the rest are system-level
    assert [p.id for p in fit_points(CAT)] == ["punica-27-yi-34b-r32", "vllm-48887-qwen2.5-7b-o-proj-r8"]
    assert [p.id for p in fit_points(CAT, cuda_graphs_only=True)] == ["vllm-48887-qwen2.5-7b-o-proj-r8"]


def test_adapted_projections_by_hand():
    yi = CAT.model("01-ai/Yi-34B").arch  # 60 layers: q, k, v, o and gate, up, down in each
    qwen = CAT.model("Qwen/Qwen2.5-7B-Instruct").arch  # 28 layers
    assert adapted_projections(yi, "all") == 60 * 7
    assert adapted_projections(yi, "attn") == 60 * 4
    assert adapted_projections(qwen, "attn", per_layer=1) == 28
    with pytest.raises(LoadError, match="MoE experts"):
        adapted_projections(CAT.model("Qwen/Qwen3-30B-A3B").arch, "all")


def test_single_point_fit_by_hand_for_vllm_48887():
    (p,) = fit_points(CAT, cuda_graphs_only=True)
    o = _obs(p.id)
    # measured: mean TPOT 65.21 ms with the o_proj adapter, 57.91 ms without (catalog ratio 0.8881)
    assert p.ratio == pytest.approx(65.21 / 57.91, rel=2e-4)
    # roofline: a rank-8 adapter (bounded on all seven projections) of 40.4 MB against ~14.1 GB of bf16 weights
    c = roofline_slowdown_bound(o, CAT)
    assert p.roofline == c and 0.0025 < c < 0.0032
    # candidate: 28 adapted projections (o_proj in each of 28 layers) over the 57.91 ms base step
    assert p.projections_per_s == pytest.approx(28 / 0.05791)
    k_hand = (1 / 0.8881 - 1 - c) * 0.05791 / 28  # one point: the ratio is met exactly
    assert k_hand == pytest.approx(2.547e-4, rel=1e-3)  # about 0.25 ms a projection
    assert fit_k_launch_s((p,)) == pytest.approx(k_hand, rel=1e-5)
    assert predicted_ratio(p, k_hand) == pytest.approx(1 / 0.8881)


def test_fit_on_both_step_points_matches_an_independent_grid_search():
    pts = fit_points(CAT)
    c = np.array([p.roofline for p in pts])
    x = np.array([p.projections_per_s for p in pts])
    y = np.log([p.ratio for p in pts])
    grid = np.linspace(1e-6, 5e-4, 499_001)  # 1 ns steps
    sse = ((np.log(1 + c[None, :] + grid[:, None] * x[None, :]) - y[None, :]) ** 2).sum(axis=1)
    assert fit_k_launch_s(pts) == pytest.approx(grid[np.argmin(sse)], abs=2e-9)


def test_leave_one_source_out_by_hand():
    punica, vllm = fit_points(CAT)
    # each source is predicted from the other's single point, whose fit meets its ratio exactly
    k_from_vllm = (vllm.ratio - 1 - vllm.roofline) / vllm.projections_per_s
    k_from_punica = (punica.ratio - 1 - punica.roofline) / punica.projections_per_s
    rows = {r["id"]: r for r in leave_one_source_out((punica, vllm))}
    for p, k in ((punica, k_from_vllm), (vllm, k_from_punica)):
        r = rows[p.id]
        assert r["k_launch_s"] == pytest.approx(k, rel=1e-5)
        assert r["roofline_error"] == pytest.approx(abs(math.log((1 + p.roofline) / p.ratio)))
        assert r["fit_error"] == pytest.approx(abs(math.log((1 + p.roofline + k * p.projections_per_s) / p.ratio)),
                                               rel=1e-4)  # fmt: skip
        assert r["fit_error"] < r["roofline_error"]
    # one source alone has nothing to be predicted from
    assert leave_one_source_out((vllm,)) == []


def test_fit_recovers_a_known_constant():
    k_true = 5e-6
    pts = tuple(FitPoint(f"p{i}", f"s{i}", True, 1 + 0.01 + k_true * x, 0.01, x) for i, x in enumerate((2e3, 8e3, 3e4)))
    assert fit_k_launch_s(pts) == pytest.approx(k_true, rel=1e-4)
    with pytest.raises(LoadError):
        fit_k_launch_s(())


def test_verdict_keeps_the_roofline():
    v = acceptance(CAT)
    assert v["accepted"] is False and v["points"] == 1 and v["sources"] == 1
    assert "at least 3 from 2" in str(v["reason"])


def test_kernel_timings_are_sourced_and_far_below_the_fitted_constant():
    kts = {k.id: k for k in kernel_timings()}
    assert all(k.source.startswith("https://github.com/") for k in kts.values())
    shrink, expand = kts["xpu-kernels-31-bgmv-shrink-2048x16"], kts["xpu-kernels-31-bgmv-expand-16x2048"]
    assert (shrink.in_features, shrink.out_features, expand.in_features, expand.out_features) == (2048, 16, 16, 2048)
    pair_s = (7.0 + 8.1) * 1e-6  # one projection's shrink and expand at one token, rank 16, hidden 2048
    assert (shrink.time_us + expand.time_us) * 1e-6 == pytest.approx(pair_s)
    # every constant fitted on the step-level measurements is ten times that or more: the measured step ratios carry
    # more than the kernels' own time (eager dispatch in Punica 2023, adapted prefill chunks in vLLM pull 48887)
    rows = leave_one_source_out(fit_points(CAT))
    assert min(float(r["k_launch_s"]) for r in rows) > 9 * pair_s
    assert fit_k_launch_s(fit_points(CAT)) > 9 * pair_s
