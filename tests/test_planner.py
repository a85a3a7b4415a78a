"""The planner: hand-checkable cases, objectives met by every candidate, monotonicity, reasons."""

import pytest

from llmcap.plan.planner import plan
from llmcap.plan.request import PlanRequest

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"


def _req(**kw):
    base = dict(model=LLAMA_8B, rate_rps=4.0, input_len=1024, output_len=256, ttft_ms=1500, tpot_ms=60)
    base.update(kw)
    return PlanRequest(**base)


@pytest.fixture(scope="module")
def small_plan():
    return plan(_req(hardware=("h100-sxm", "l4", "a100-sxm-80gb"), top=20))


def test_only_one_device_fits():
    # Llama-3.1-70B in bf16 is 141 GB of weights: one 80 GB H100 cannot hold it, one 192 GB MI300X can.
    p = plan(
        _req(
            model=LLAMA_70B,
            hardware=("h100-sxm", "mi300x"),
            weights=("bf16",),
            max_devices=1,
            rate_rps=0.2,
            ttft_ms=5000,
            tpot_ms=200,
        )
    )
    assert {c.hardware for c in p.candidates} == {"mi300x"}
    assert all(c.devices == 1 for c in p.candidates)
    h100 = [r for r in p.rejected if r.hardware == "h100-sxm"]
    assert len(h100) == 1 and h100[0].reason == "does not fit"


def test_candidates_meet_objectives_and_are_sorted(small_plan):
    req = small_plan.request
    assert small_plan.candidates
    costs = [c.usd_per_hour for c in small_plan.candidates]
    assert costs == sorted(costs)
    for c in small_plan.candidates:
        assert c.ttft_ms_p90 <= req.ttft_ms and c.tpot_ms_p90 <= req.tpot_ms
        assert c.slo_attainment >= 0.9
        assert c.goodput_rps >= req.rate_rps
        assert c.devices == c.replicas * c.tp * c.pp <= req.max_devices
        # $/M output tokens = $/hour / (output tokens/s x 3600) x 1e6
        assert c.usd_per_million_output_tokens == pytest.approx(c.usd_per_hour / (4.0 * 256 * 3600) * 1e6)


def test_tighter_slo_or_higher_rate_never_cheaper(small_plan):
    base = small_plan.candidates[0].usd_per_hour
    hw = ("h100-sxm", "l4", "a100-sxm-80gb")
    tighter = plan(_req(hardware=hw, tpot_ms=25)).candidates
    busier = plan(_req(hardware=hw, rate_rps=40)).candidates
    assert tighter and busier
    assert tighter[0].usd_per_hour >= base
    assert busier[0].usd_per_hour >= base


def test_impossible_objective_rejects_every_family_with_the_binding_reason():
    p = plan(_req(hardware=("l4",), weights=("bf16",), tpot_ms=1.0))
    assert p.candidates == []
    assert [r.reason for r in p.rejected] == ["TPOT"]
    p = plan(_req(hardware=("l4",), weights=("bf16",), ttft_ms=1.0))
    assert [r.reason for r in p.rejected] == ["TTFT"]


def test_budget_and_device_limits_are_reasons():
    p = plan(_req(hardware=("h100-sxm",), weights=("bf16",), rate_rps=200, max_devices=2))
    assert p.candidates == [] and p.rejected[0].reason == "devices"
    p = plan(_req(hardware=("h100-sxm",), weights=("bf16",), max_usd_per_hour=0.01))
    assert p.candidates == [] and p.rejected[0].reason == "budget"


def test_user_price_per_gpu_hour(small_plan):
    p = plan(_req(hardware=("h100-sxm",), weights=("fp8",), usd_per_gpu_hour=2.0))
    for c in p.candidates:
        assert c.usd_per_hour == pytest.approx(2.0 * c.devices)


def test_pareto_fronts_are_non_dominated(small_plan):
    for front in ("throughput", "cost"):
        pts = [pt for pt in small_plan.pareto if pt.front == front]
        assert pts
    thr = [pt for pt in small_plan.pareto if pt.front == "throughput"]
    for a in thr:
        assert not any(b.x >= a.x and b.y >= a.y and (b.x > a.x or b.y > a.y) for b in thr)


def test_unknown_format_is_an_invalid_family_not_an_error():
    p = plan(_req(hardware=("h100-sxm",), weights=("fp8", "fp9")))
    assert any(r.reason == "invalid" and "fp9" in r.detail for r in p.rejected)
    assert p.candidates


def test_wait_quantile_is_exact_for_mm1():
    # M/M/1 (ca = cs = 1): P(W > t) = rho exp(-(1 - rho) t / S). rho 0.8, S 1 s, p90:
    # t = ln(0.8 / 0.1) / 0.2 = 10.397 s; P(W > 0) = 0.8, so the 10th percentile wait is 0
    import numpy as np

    from llmcap.plan.disagg import _wait_quantile, pool_percentile

    assert _wait_quantile(np.array([0.8]), np.array([1.0]), 1.0, 1.0, 90.0)[0] == pytest.approx(10.3972, rel=1e-4)
    assert _wait_quantile(np.array([0.8]), np.array([1.0]), 1.0, 1.0, 10.0)[0] == 0.0
    assert pool_percentile(90.0) == 95.0


def _disagg(isl, tpot_ms):
    return plan(
        _req(
            rate_rps=20,
            input_len=isl,
            output_len=256,
            ttft_ms=3000,
            tpot_ms=tpot_ms,
            hardware=("h100-sxm",),
            weights=("fp8",),
            allow_disagg=True,
            top=30,
        )
    )


def test_disaggregation_wins_for_long_prompts_with_tight_tpot():
    best = _disagg(8000, 20).candidates[0]
    assert best.mode.startswith("disaggregated")
    assert best.tpot_ms_p90 <= 20 and best.ttft_ms_p90 <= 3000


def test_disaggregation_loses_for_short_prompts():
    p = _disagg(128, 40)
    assert p.candidates[0].mode == "aggregated"
    assert any(c.mode.startswith("disaggregated") for c in p.candidates)  # considered, just dearer


def test_lognormal_buckets_average_to_the_mean():
    import numpy as np

    from llmcap.plan.mix import lognormal_buckets

    assert lognormal_buckets(500.0, 0.0, 3).tolist() == [500.0]
    b = lognormal_buckets(1000.0, 1.5, 3)  # equal-probability bins: their conditional means average to the mean
    assert np.mean(b) == pytest.approx(1000.0, rel=1e-9)
    assert b[0] < b[1] < b[2]


def test_mixed_candidate_meets_objectives():
    p = plan(
        _req(
            rate_rps=30,
            input_len=2000,
            output_len=300,
            input_cv=1.5,
            output_cv=1.0,
            ttft_ms=2000,
            tpot_ms=60,
            hardware=("h100-sxm", "l4", "l40s"),
            weights=("fp8",),
            allow_mixed=True,
            top=50,
        )
    )
    mixed = [c for c in p.candidates if c.mode == "mixed"]
    assert len(mixed) == 1
    m = mixed[0]
    assert m.ttft_ms_p90 <= 2000 + 1e-6 and m.tpot_ms_p90 <= 60
    assert m.goodput_rps >= 30 - 1e-9
    assert m.devices <= 64 and " + " in m.hardware


def test_device_without_cloud_offering_is_priced_by_cost_of_ownership():
    # the M2 Ultra has a purchase price in the catalog but no cloud offering: the plan falls back to TCO
    from llmcap.economics.cost import tco_cost

    p = plan(
        _req(
            model="Qwen/Qwen3-0.6B",
            hardware=("m2-ultra-76c",),
            weights=("bf16",),
            rate_rps=0.5,
            ttft_ms=5000,
            tpot_ms=200,
        )
    )
    assert p.candidates, p.rejected
    c = p.candidates[0]
    assert c.price_basis.startswith("TCO")
    assert c.usd_per_hour == pytest.approx(c.devices * tco_cost("m2-ultra-76c", 1).usd_per_device_hour)
    # asking for a cloud provider leaves it unpriced
    assert (
        plan(
            _req(
                model="Qwen/Qwen3-0.6B",
                hardware=("m2-ultra-76c",),
                weights=("bf16",),
                rate_rps=0.5,
                ttft_ms=5000,
                tpot_ms=200,
                provider="AWS",
            )
        )
        .rejected[0]
        .reason
        == "no price"
    )
