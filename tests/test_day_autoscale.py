"""Autoscaling over a day (llmcap.plan.autoscale): hand-computed schedules, misses, costs and utilization on handmade
deployments, and properties against the real planner (flat day = single-rate plan, autoscaled <= static at peak,
replicas follow the profile, longer start never lowers misses)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmcap.catalog.loader import load_catalog
from llmcap.load.day import DayProfile, flat_profile, preset_profile, presets
from llmcap.plan.autoscale import (
    AutoscaleError,
    day_plan,
    needed_replicas,
    replica_bounds,
    rolling,
    shortfall,
    startup_catalog,
    startup_time,
)
from llmcap.plan.planner import plan
from llmcap.plan.request import Candidate, Plan, PlanRequest
from llmcap.scenario import Pricing, Slo

CAT = load_catalog()
LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"


def cand(goodput_per_replica: float, replicas: int, **kw) -> Candidate:
    base = dict(
        hardware="h100-sxm", devices=replicas, tp=1, pp=1, ep=1, replicas=replicas, weight_format="fp8",
        kv_format="fp8", engine="vllm", max_seqs=64, mode="aggregated", ttft_ms_p50=80.0, ttft_ms_p90=150.0,
        tpot_ms_p50=5.0, tpot_ms_p90=8.0, e2e_ms_p90=1800.0, slo_attainment=0.9,
        goodput_rps=goodput_per_replica * replicas, max_rate_rps=goodput_per_replica * replicas * 1.2,
        utilization=0.6, usd_per_hour=2.0 * replicas, usd_per_million_output_tokens=1.0, joules_per_output_token=None,
        output_tokens_per_s_per_device=800.0, price_basis="user $2/GPU-hour",
    )  # fmt: skip
    base.update(kw)
    return Candidate(**base)


def handmade_plan(cands: list[Candidate], peak_rps: float, usd_per_gpu_hour: float = 2.0) -> Plan:
    req = PlanRequest(
        model=LLAMA_8B, rate_rps=peak_rps, input_len=1000, output_len=200, slo=Slo(ttft_ms=2000, tpot_ms=50),
        pricing=Pricing(usd_per_gpu_hour=usd_per_gpu_hour),
    )  # fmt: skip
    return Plan(request=req, candidates=cands, rejected=[], pareto=[], evaluated=len(cands), elapsed_s=0.0)


def hourly(rates: list[float]) -> DayProfile:
    return DayProfile(name="test", interval_s=3600.0, rate_rps=np.asarray(rates, dtype=float))


def rows_by_policy(day) -> dict:
    return {r.policy: r for r in day.rows}


# -- by hand ---------------------------------------------------------------------------------------------------


def test_a_ramp_misses_the_excess_while_the_new_replicas_start():
    # 1 req/s for an hour then 3 req/s; 1 req/s per replica; replicas start in 30 minutes; no scale-down delay.
    # Interval 1 (3 req/s): for 1800 s only 1 replica serves -> 2 req/s x 1800 s = 3600 requests miss.
    # Interval 0 (1 req/s): ready = min(R of the wrapped interval 1 = 3, R0 = 1) = 1 -> no miss.
    p = handmade_plan([cand(1.0, 3)], peak_rps=3.0)
    day = day_plan(p, hourly([1.0, 3.0]), CAT, scale_up_s=1800, scale_down_s=0)
    auto = rows_by_policy(day)["autoscaled"]
    assert auto.replicas == [1, 3]
    total = (1.0 + 3.0) * 3600
    assert auto.slo_miss_request_share == pytest.approx(3600 / total)
    # two intervals = 2 hours = 1/12 day: minutes per day = 30 min x 12
    assert auto.slo_miss_minutes == pytest.approx(30 * 12)
    # served = total - missed = 10800; offered = (1 + 3) x 3600
    assert auto.utilization == pytest.approx((total - 3600) / (4 * 3600))
    # $2/GPU-hour, 1 + 3 replica-hours in 2 hours -> $8 per 2 hours -> $96 per day
    assert auto.usd_per_day == pytest.approx(96.0)
    assert auto.gpu_hours == pytest.approx(4 * 12)
    peak = rows_by_policy(day)["static-peak"]
    assert peak.replicas == [3, 3] and peak.slo_miss_request_share == 0 and peak.usd_per_day == pytest.approx(144.0)


def test_static_percentile_misses_the_hours_above_it():
    # rates 1, 2, 3, 4 req/s; the 50th percentile is 2.5 -> 3 replicas; the 4 req/s hour misses 1 req/s.
    p = handmade_plan([cand(1.0, 4)], peak_rps=4.0)
    day = day_plan(p, hourly([1.0, 2.0, 3.0, 4.0]), CAT, static_pct=50, scale_down_s=0)
    row = rows_by_policy(day)["static-p50"]
    assert row.replicas == [3, 3, 3, 3]
    assert row.slo_miss_request_share == pytest.approx(3600 / (10 * 3600))
    assert row.slo_miss_minutes == pytest.approx(60 * 6)  # one hour in four = 6 hours a day
    assert not row.within_budget and row.rank is None  # 10% > the 1% budget


def test_scale_down_waits_for_the_window_and_min_replicas_hold():
    # needs 4, 1, 1, 1 per hour; a 90-minute window keeps 4 for two more hours.
    p = handmade_plan([cand(1.0, 4)], peak_rps=4.0)
    day = day_plan(p, hourly([4.0, 1.0, 1.0, 0.5]), CAT, scale_down_s=5400, scale_up_s=0, min_replicas=2)
    assert rows_by_policy(day)["autoscaled"].replicas == [4, 4, 4, 2]


def test_utilization_and_cost_per_token_of_a_flat_day():
    p = handmade_plan([cand(1.0, 2)], peak_rps=1.5)
    day = day_plan(p, flat_profile(1.5), CAT)
    auto = rows_by_policy(day)["autoscaled"]
    assert set(auto.replicas) == {2} and auto.utilization == pytest.approx(0.75)
    # $2/GPU-hour x 2 x 24 = $96/day; 1.5 req/s x 86400 s x 200 tokens = 25.92 M output tokens
    assert auto.usd_per_million_output_tokens == pytest.approx(96 / 25.92)


def test_the_cheapest_row_within_budget_ranks_first_and_bounds_feed_the_autoscaler():
    cheap, dear = cand(1.0, 4), cand(0.5, 8, hardware="l4")
    p = handmade_plan([dear, cheap], peak_rps=4.0)
    day = day_plan(p, hourly([1.0, 4.0, 2.0]), CAT, scale_up_s=0, scale_down_s=0)
    ranked = [r for r in day.rows if r.rank is not None]
    assert [r.rank for r in ranked] == list(range(1, len(ranked) + 1))
    assert all(a.usd_per_day <= b.usd_per_day for a, b in zip(ranked, ranked[1:], strict=False))
    assert replica_bounds(day) == (1, 4)  # the recommended deployment's autoscaled schedule
    assert replica_bounds(day, dear) == (2, 8)


def test_bad_parameters_are_clear_errors():
    p = handmade_plan([cand(1.0, 2)], peak_rps=2.0)
    for kw, word in (({"slo_miss_budget": 1.5}, "budget"), ({"min_replicas": -1}, "min-replicas"),
                     ({"scale_up_s": -5}, "scale-up"), ({"static_pct": 100}, "percentile"),
                     ({"scale_down_s": math.inf}, "scale-down"), ({"tier": "floppy"}, "storage tier")):  # fmt: skip
        with pytest.raises(AutoscaleError, match=word):
            day_plan(p, flat_profile(2.0), CAT, **kw)


def test_rolling_and_shortfall_primitives():
    x = np.array([[1.0, 5.0, 2.0, 0.0]])
    assert rolling(x, 1, np.maximum).tolist() == [[1.0, 5.0, 5.0, 2.0]]
    assert rolling(x, 1, np.minimum).tolist() == [[0.0, 1.0, 2.0, 0.0]]  # periodic: interval 0 sees interval 3
    sf = shortfall(np.array([[2.0, 2.0]]), np.array([3.0, 1.0]), np.array([1.0]), 100.0, np.array([0.0]))
    assert sf.missed_requests[0] == pytest.approx(100.0) and sf.miss_s[0] == pytest.approx(100.0)
    need = needed_replicas(np.array([0.1, 2.5, 4.0]), np.array([1.0]), np.array([5.0]), 1)
    assert need.tolist() == [[1.0, 3.0, 5.0]]  # the peak's count is the planner's (its re-check added one)


def test_replica_start_is_pull_plus_checkpoint_over_the_tier_plus_warmup():
    sc = startup_catalog()
    for tier in sc.storage_tiers:
        s = startup_time(LLAMA_8B, "bf16", CAT, tier.id)
        assert s.total_s == pytest.approx(s.image_pull_s + s.checkpoint_gb * 1e9 / tier.bytes_per_s + s.warmup_s)
    fast, slow = (startup_time(LLAMA_8B, "bf16", CAT, t) for t in ("ebs-gp3-max", "ebs-gp3-baseline"))
    assert slow.weight_load_s == pytest.approx(fast.weight_load_s * 8.0)  # 1000 vs 125 MiB/s
    # ~8.0e9 parameters: bf16 (16 bits) is twice the bytes of fp8's 8-bit weights, less the 16-bit embeddings
    assert 15 < startup_time(LLAMA_8B, "bf16", CAT).checkpoint_gb < 17
    assert startup_time(LLAMA_8B, "bf16", CAT, override_s=42).total_s == 42


# -- against the planner ---------------------------------------------------------------------------------------

SMALL = ("h100-sxm", "l4", "rtx-4090")


def real_plan(rate: float) -> Plan:
    req = PlanRequest(
        model=LLAMA_8B, rate_rps=rate, input_len=1000, output_len=200, slo=Slo(ttft_ms=1500, tpot_ms=50),
        hardware=SMALL, weights=("fp8",), top=6,
    )  # fmt: skip
    return plan(req, CAT)


@pytest.fixture(scope="module")
def chat_day():
    prof = preset_profile("consumer-chat", 20.0)
    return prof, day_plan(real_plan(prof.peak_rate_rps), prof, CAT)


def test_a_flat_day_gives_the_single_rate_plans_replicas():
    p = real_plan(12.0)
    day = day_plan(p, flat_profile(12.0), CAT)
    by_dep = {(c.hardware, c.weight_format, c.engine, c.tp, c.pp): c.replicas for c in p.candidates}
    autos = [r for r in day.rows if r.policy == "autoscaled"]
    assert autos
    for r in autos:
        assert set(r.replicas) == {by_dep[(r.hardware, r.weight_format, r.engine, r.tp, r.pp)]}
        assert r.slo_miss_request_share == 0


def test_autoscaled_never_costs_more_than_static_at_peak(chat_day):
    _, day = chat_day
    by = {}
    for r in day.rows:
        by.setdefault((r.hardware, r.weight_format, r.engine, r.tp), {})[r.policy] = r
    assert by
    for pols in by.values():
        assert pols["autoscaled"].usd_per_day <= pols["static-peak"].usd_per_day + 1e-9
        assert pols["autoscaled"].gpu_hours <= pols["static-peak"].gpu_hours + 1e-9


def test_replicas_follow_the_profile(chat_day):
    prof, day = chat_day
    rate = prof.rate_rps
    for r in (r for r in day.rows if r.policy == "autoscaled"):
        reps = np.asarray(r.replicas)
        # more traffic never gets fewer replicas than any interval with less traffic in the same window-free view
        assert reps[int(np.argmax(rate))] == reps.max()
        assert reps[int(np.argmin(rate))] <= np.median(reps)
        # and the count always covers the rate at a replica's goodput once started (steady state)
        assert (reps * r.per_replica_goodput_rps >= rate - 1e-9).all()


@pytest.mark.parametrize("preset", sorted(presets()))
def test_a_longer_scale_up_never_lowers_slo_misses(preset):
    prof = preset_profile(preset, 6.0)
    p = handmade_plan(
        [cand(1.0, math.ceil(prof.peak_rate_rps)), cand(0.7, math.ceil(prof.peak_rate_rps / 0.7), hardware="l4")],
        prof.peak_rate_rps,
    )
    last = None
    for s in (0, 60, 300, 900, 1800, 3600, 7200):
        miss = np.array([r.slo_miss_request_share for r in day_plan(p, prof, CAT, scale_up_s=s).rows
                         if r.policy == "autoscaled"])  # fmt: skip
        if last is not None:
            assert (miss >= last - 1e-12).all()
        last = miss
    assert last.max() > 0 or preset == "flat-api"
