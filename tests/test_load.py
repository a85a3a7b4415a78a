"""load.rate (open-loop estimate of one scenario) and economics.operating_point (cost and energy at a point)."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
from pydantic import ValidationError

from llmcap.catalog.loader import UnknownIdError, load_catalog
from llmcap.economics.cost import CostError
from llmcap.economics.operating_point import OperatingPoint, point_costs, prefill_time_share
from llmcap.estimate.single import PhaseResult, estimate
from llmcap.load.rate import estimate_load
from llmcap.load.rate_analytic import analytic_goodput, analytic_max_rate
from llmcap.load.rate_prepare import prepare
from llmcap.load.rate_simulate import goodput, max_rate
from llmcap.load.rate_types import LoadError
from llmcap.load.trace import parse_trace
from llmcap.scenario import Pricing, Scenario, Slo, Traffic

CATALOG = load_catalog()
SCN = Scenario(
    model="meta-llama/Llama-3.1-8B-Instruct",
    hardware="h100-sxm",
    engine="vllm",
    weight_format="fp8",
    kv_format="fp8",
    input_len=1024,
    output_len=256,
)
FAST = dict(requests=2000)


def phase(time_ms: float, compute_ms: float, memory_ms: float) -> PhaseResult:
    return PhaseResult(
        time_ms=time_ms,
        compute_ms=compute_ms,
        memory_ms=memory_ms,
        comm_ms=0.0,
        overhead_ms=time_ms - compute_ms - memory_ms,
        bound="compute" if compute_ms >= memory_ms else "memory",
        batch=1.0,
        tokens=1.0,
    )


def test_point_costs_worked_by_hand():
    # One H100 SXM (TDP 700 W: idle 105 W, memory-bound 301 W, compute-bound 700 W), $3.00 per GPU-hour.
    # 2 req/s, prefill 100 ms (80 compute, 20 memory), decode step 20 ms (2 compute, 16 memory), busy 80%.
    est = estimate(SCN.model_copy(update={"concurrency": 1}), CATALOG)
    point = OperatingPoint(
        requests_per_s=2.0,
        input_tokens_per_s=2000.0,
        output_tokens_per_s=400.0,
        prefill=phase(100.0, 80.0, 20.0),
        decode=phase(20.0, 2.0, 16.0),
        busy_fraction=0.8,
        capacity_used=0.5,
    )
    pc = point_costs(est, point, Pricing(usd_per_gpu_hour=3.0), "us-east-virginia", catalog=CATALOG)
    c, e = pc.cost, pc.energy
    assert c.prefill_time_share == pytest.approx(0.25)  # 2 req/s * 0.1 s / 0.8 busy
    assert c.usd_per_hour == pytest.approx(3.0)
    assert c.usd_per_million_input_tokens == pytest.approx(0.1041666667)  # 3 * 0.25 / (2000 * 3600) * 1e6
    assert c.usd_per_million_output_tokens == pytest.approx(1.5625)  # 3 * 0.75 / (400 * 3600) * 1e6
    assert c.usd_per_million_output_tokens_all_in == pytest.approx(2.0833333333)  # 3 / (400 * 3600) * 1e6
    assert c.usd_per_request == pytest.approx(0.000416666667)  # 3 / (2 * 3600)
    assert c.idle_share == pytest.approx(0.5)
    # shares: compute 0.25 * 0.8 + 0.75 * 0.1 = 0.275, memory 0.25 * 0.2 + 0.75 * 0.8 = 0.65
    assert (e.compute_share, e.memory_share) == (pytest.approx(0.275), pytest.approx(0.65))
    # step 105 + 595 * 0.275 + 196 * 0.65 = 396.025 W; busy 80%: 0.8 * 396.025 + 0.2 * 105 = 337.82 W
    assert e.watts == pytest.approx(337.82)
    assert e.joules_per_output_token == pytest.approx(0.84455)  # 337.82 W / 400 tok/s
    assert e.kwh_per_day == pytest.approx(12.6479712)  # 337.82 * 1.56 PUE * 24 h / 1000
    # 337.82 W * 1.56 / 400 tok/s = 1.3175 J/token at the meter; 1e6 tokens = 0.36597 kWh; * 343.48 g/kWh
    assert e.gco2e_per_million_output_tokens == pytest.approx(125.704, rel=1e-5)


def test_prefill_time_share_is_clipped():
    assert prefill_time_share(10.0, 200.0, 1.0) == 1.0
    assert prefill_time_share(1.0, 200.0, 0.0) == 0.0


def test_user_price_through_estimate_load_by_hand():
    scn = SCN.model_copy(update={"replicas": 2})
    le = estimate_load(scn, Traffic(rate_rps=10.0, **FAST), pricing=Pricing(usd_per_gpu_hour=2.0), catalog=CATALOG)
    c, t = le.cost, le.throughput
    assert c.basis == "user" and c.devices_billed == 2
    assert c.usd_per_hour == pytest.approx(4.0)  # 2 devices * $2.00
    assert c.usd_per_million_output_tokens_all_in == pytest.approx(4.0 / (t.output_tokens_per_s * 3600) * 1e6)
    assert c.usd_per_request == pytest.approx(4.0 / (t.requests_per_s * 3600))
    s = c.prefill_time_share
    split = (
        c.usd_per_million_input_tokens * t.input_tokens_per_s + c.usd_per_million_output_tokens * t.output_tokens_per_s
    )
    assert split * 3600 / 1e6 == pytest.approx(4.0)  # input and output charges add back up to the bill
    assert 0 < s < 1
    assert le.throughput.requests_per_s == pytest.approx(10.0, rel=0.1)  # stable: what arrives is served


def test_cloud_instance_is_billed_whole_and_idle_boards_draw_power():
    scn = SCN.model_copy(update={"replicas": 3})
    pricing = Pricing(offering="aws-p5-48xlarge-us-east-1-2026-07")  # p5.48xlarge, 8 x H100, $55.04/h
    le = estimate_load(scn, Traffic(rate_rps=6.0, **FAST), pricing=pricing, catalog=CATALOG)
    assert le.cost.usd_per_hour == pytest.approx(55.04)
    assert le.cost.devices_billed == 8 and le.cost.provider == "AWS"
    assert le.cost.idle_share >= 5 / 8  # five boards unused, and headroom below the max rate
    assert le.energy.watts == pytest.approx(3 * le.energy.watts_per_device + 5 * 105.0)  # idle floor 0.15 * 700 W


def test_explicit_price_that_does_not_exist_is_an_error_default_is_a_note():
    with pytest.raises(CostError, match="no current"):
        estimate_load(SCN, Traffic(rate_rps=5.0, **FAST), pricing=Pricing(provider="nowhere"), catalog=CATALOG)
    with pytest.raises(ValidationError, match="one price basis"):
        Pricing(provider="AWS", usd_per_gpu_hour=2.0)
    with pytest.raises(UnknownIdError):
        estimate_load(SCN, Traffic(rate_rps=5.0, **FAST), region="atlantis", catalog=CATALOG)


def test_higher_rate_never_lowers_latency_percentiles():
    rates = [2.0, 6.0, 10.0, 14.0, 18.0]
    runs = [estimate_load(SCN, Traffic(rate_rps=r, **FAST), catalog=CATALOG) for r in rates]
    assert all(le.stable for le in runs)
    for metric in ("ttft_ms", "tpot_ms", "e2e_ms"):
        for p in ("p50", "p90", "p99"):
            values = [getattr(getattr(le, metric), p) for le in runs]
            assert values == sorted(values), (metric, p, values)
    attained = [le.slo_attainment for le in runs]
    assert attained == sorted(attained, reverse=True)


def test_tighter_slo_never_raises_goodput():
    prep = prepare(SCN, Traffic(rate_rps=5.0, **FAST), catalog=CATALOG)
    top = max_rate(prep)
    slos = [Slo(ttft_ms=t, tpot_ms=p) for t, p in ((5000, 200), (500, 40), (200, 25), (120, 15), (80, 10))]
    goods = [goodput(prep, slo, top) for slo in slos]
    assert goods == sorted(goods, reverse=True), goods
    assert goods[0] == pytest.approx(top, rel=0.01)  # a loose SLO: goodput reaches the maximum rate
    assert all(0 <= g <= top for g in goods)
    stricter_pct = goodput(prep, Slo(ttft_ms=200, tpot_ms=25, pct=99), top)
    assert stricter_pct <= goods[2]


def test_goodput_meets_the_slo_and_attainment_reflects_it():
    slo = Slo(ttft_ms=300, tpot_ms=25)
    le = estimate_load(SCN, Traffic(rate_rps=2.0, **FAST), slo, catalog=CATALOG)
    assert 0 < le.goodput_rps <= le.max_rate_rps
    at_goodput = estimate_load(SCN, Traffic(rate_rps=le.goodput_rps * 0.98, **FAST), slo, catalog=CATALOG)
    assert at_goodput.slo_attainment >= 0.9 - 0.02  # op point runs all 2000 requests; the search ran the same ones
    assert le.slo_attainment >= at_goodput.slo_attainment


def test_above_the_maximum_rate_latency_is_unbounded():
    le = estimate_load(SCN, Traffic(rate_rps=500.0, **FAST), catalog=CATALOG)
    assert le.fits and not le.stable
    assert math.isinf(le.ttft_ms.p90) and math.isinf(le.e2e_ms.mean) and le.slo_attainment == 0.0
    assert any("maximum sustainable rate" in n for n in le.notes)
    assert le.throughput.requests_per_s <= le.max_rate_rps * 1.15


def test_does_not_fit_returns_the_reason():
    big = Scenario(model="meta-llama/Llama-3.1-405B-Instruct", hardware="l4", input_len=128, output_len=16)
    le = estimate_load(big, Traffic(rate_rps=1.0, **FAST), catalog=CATALOG)
    assert le.fits is False and le.status == "does_not_fit" and "GB" in le.message
    assert le.ttft_ms is None and le.cost is None


def test_same_seed_same_numbers_and_seed_changes_them():
    a = estimate_load(SCN, Traffic(rate_rps=8.0, seed=3, **FAST), catalog=CATALOG)
    b = estimate_load(SCN, Traffic(rate_rps=8.0, seed=3, **FAST), catalog=CATALOG)
    c = estimate_load(SCN, Traffic(rate_rps=8.0, seed=4, **FAST), catalog=CATALOG)
    assert a.model_dump() == b.model_dump()
    assert a.ttft_ms != c.ttft_ms


def test_workload_sets_lengths_arrivals_and_prefix_cache():
    le = estimate_load(SCN, Traffic(rate_rps=3.0, workload="rag", **FAST), catalog=CATALOG)
    wl = CATALOG.workload("rag")
    assert le.traffic.arrival == "gamma" and le.traffic.cv == pytest.approx(wl.arrival.cv)
    assert le.traffic.prefix_hit == pytest.approx(wl.prefix_cache_hit)
    assert le.scenario.input_len == round(le.traffic.mean_input_tokens)
    assert le.traffic.mean_input_tokens == pytest.approx(wl.input_tokens.mean, rel=0.05)
    poisson = estimate_load(SCN, Traffic(rate_rps=3.0, workload="rag", arrival="poisson", **FAST), catalog=CATALOG)
    assert poisson.traffic.cv == 1.0


def test_trace_replayed_at_its_own_rate_or_drawn_at_a_rate():
    rows = ["timestamp,input_tokens,output_tokens"] + [f"{i * 0.5},{300 + i % 7},{50 + i % 5}" for i in range(400)]
    trace = parse_trace("\n".join(rows).encode())
    replay = estimate_load(SCN, Traffic(**FAST), trace=trace, catalog=CATALOG)
    assert replay.rate_rps == pytest.approx(400 / (399 * 0.5))  # n / span, the trace's own mean rate
    assert replay.traffic.arrival == "trace" and replay.traffic.requests == 400
    drawn = estimate_load(SCN, Traffic(rate_rps=4.0, **FAST), trace=trace, catalog=CATALOG)
    assert drawn.traffic.requests == 2000 and drawn.scenario.input_len == round(drawn.traffic.mean_input_tokens)
    with pytest.raises(LoadError, match="not both"):
        estimate_load(SCN, Traffic(rate_rps=4.0, workload="chat", **FAST), trace=trace, catalog=CATALOG)
    flat = parse_trace(b"timestamp,input_tokens,output_tokens\n0,10,10\n0,10,10\n")
    with pytest.raises(LoadError, match="one timestamp"):
        estimate_load(SCN, Traffic(**FAST), trace=flat, catalog=CATALOG)


def test_bad_traffic_values_are_rejected_with_a_reason():
    for bad in (dict(rate_rps=0), dict(rate_rps=-1), dict(rate_rps=float("nan")), dict(cv=0), dict(requests=5)):
        with pytest.raises(ValidationError):
            Traffic(**bad)
    with pytest.raises(LoadError, match="rate"):
        estimate_load(SCN, Traffic(**FAST), catalog=CATALOG)
    with pytest.raises(UnknownIdError):
        estimate_load(SCN, Traffic(rate_rps=1.0, workload="nope", **FAST), catalog=CATALOG)


def test_speculative_decoding_lowers_tpot_at_light_load():
    plain = estimate_load(SCN, Traffic(rate_rps=2.0, **FAST), catalog=CATALOG)
    spec = estimate_load(
        SCN, Traffic(rate_rps=2.0, spec_k=3, spec_alpha=0.8, draft_cost=0.05, **FAST), catalog=CATALOG
    )
    assert spec.tpot_ms.p50 < plain.tpot_ms.p50 * 0.6  # E = (1 - 0.8^4) / 0.2 = 2.95 tokens per step


def test_littles_law_at_the_operating_point():
    le = estimate_load(SCN, Traffic(rate_rps=12.0, **FAST), catalog=CATALOG)
    # requests in the engine on average = rate * mean time in it (admission to finish); mean decode batch <= that
    in_system = le.throughput.requests_per_s * (le.e2e_ms.mean - le.queue_ms.mean) / 1e3
    assert le.mean_batch <= in_system * 1.02
    assert le.mean_batch > 0.5 * in_system  # most of the time in the engine is spent decoding
    assert np.isfinite(le.goodput_rps)


# -- method="analytic" (llmcap.load.queueing) --------------------------------------------------------------

AGREE = Slo(ttft_ms=2000, tpot_ms=12)  # TPOT-bound: goodput falls inside (0, max rate) for both methods


def test_both_methods_fill_every_field_and_say_which_they_used():
    sim = estimate_load(SCN, Traffic(rate_rps=12.0, **FAST), catalog=CATALOG)
    ana = estimate_load(SCN, Traffic(rate_rps=12.0, **FAST), method="analytic", catalog=CATALOG)
    # null by design without sessions or adapters (issue 15: `null` with a note where not applicable)
    not_applicable = {"prefix_cache", "prefix_hit_rate", "prefill_tokens_per_request", "kv_resident_sessions",
                      "kv_offload_gb", "lora_memory_gb_per_device"}  # fmt: skip
    for le in (sim, ana):
        unset = [k for k, v in le.model_dump().items() if v is None]
        assert set(unset) == not_applicable, unset
        assert any("prefix_hit_rate" in n and "sessions" in n for n in le.notes)
        assert any("lora_memory_gb_per_device is null" in n for n in le.notes)
    assert sim.method.startswith("iteration-level simulation") and ana.method.startswith("analytic queueing model")
    assert any("analytic method" in n and "p99" in n for n in ana.notes)  # its gaps travel with the result
    assert not any("analytic method" in n for n in sim.notes)
    assert ana.preempted_fraction == 0.0 and ana.rejected_fraction == 0.0


def test_analytic_agrees_with_the_simulator_at_moderate_load():
    # 12 req/s is about 40% of this deployment's maximum rate; tolerances: mean TPOT and E2E 10%, goodput 20%,
    # the analytic maximum rate 0-25% above the simulated one (docs/method.md: 10-15% high)
    sim = estimate_load(SCN, Traffic(rate_rps=12.0, requests=5000), AGREE, catalog=CATALOG)
    ana = estimate_load(SCN, Traffic(rate_rps=12.0, requests=5000), AGREE, method="analytic", catalog=CATALOG)
    assert ana.tpot_ms.mean == pytest.approx(sim.tpot_ms.mean, rel=0.10)
    assert ana.e2e_ms.mean == pytest.approx(sim.e2e_ms.mean, rel=0.10)
    assert 0 < sim.goodput_rps < sim.max_rate_rps * 0.9
    assert ana.goodput_rps == pytest.approx(sim.goodput_rps, rel=0.20)
    assert sim.max_rate_rps <= ana.max_rate_rps <= 1.25 * sim.max_rate_rps
    assert ana.mean_batch == pytest.approx(sim.mean_batch, rel=0.10)
    assert ana.energy.joules_per_output_token == pytest.approx(sim.energy.joules_per_output_token, rel=0.10)


def test_analytic_higher_rate_never_lowers_p90s_or_raises_attainment():
    rates = [1.0, 4.0, 8.0, 12.0, 16.0, 20.0, 24.0, 28.0, 31.0]
    runs = [estimate_load(SCN, Traffic(rate_rps=r, **FAST), AGREE, method="analytic", catalog=CATALOG) for r in rates]
    assert all(le.stable for le in runs)
    for metric in ("ttft_ms", "tpot_ms", "e2e_ms", "queue_ms"):
        for p in ("mean", "p50", "p90", "p99"):
            values = [getattr(getattr(le, metric), p) for le in runs]
            # never lower, up to rounding in the last bits (the same state's value interpolated twice)
            assert all(b >= a * (1 - 1e-12) for a, b in pairwise(values)), (metric, p, values)
    attained = [le.slo_attainment for le in runs]
    assert attained == sorted(attained, reverse=True) and attained[0] == 1.0 and attained[-1] < 0.9


def test_analytic_tighter_slo_never_raises_goodput():
    prep = prepare(SCN, Traffic(rate_rps=5.0, **FAST), method="analytic", catalog=CATALOG)
    top = analytic_max_rate(prep)
    slos = [Slo(ttft_ms=t, tpot_ms=p) for t, p in ((5000, 200), (500, 40), (200, 12), (120, 9), (80, 7), (50, 5))]
    goods = [analytic_goodput(prep, slo) for slo in slos]
    assert goods == sorted(goods, reverse=True), goods
    assert goods[0] == pytest.approx(top, rel=0.01) and goods[-1] == 0.0  # 5 ms/token is faster than one alone
    assert analytic_goodput(prep, Slo(ttft_ms=200, tpot_ms=12, pct=99)) <= goods[2]


def test_analytic_light_load_matches_the_infinite_server_limit():
    # At 0.05 req/s requests barely overlap: the engine holds a Poisson number of them with mean
    # rate x E2E (M/G/inf), so it is busy 1 - exp(-rate x E2E) of the time and Little's law gives the batch.
    le = estimate_load(SCN, Traffic(rate_rps=0.05, **FAST), method="analytic", catalog=CATALOG)
    in_flight = 0.05 * le.e2e_ms.mean / 1e3
    assert le.utilization == pytest.approx(1 - math.exp(-in_flight), rel=0.02)
    assert le.mean_batch == pytest.approx(in_flight, rel=0.02)
    assert le.queue_ms.p99 == 0.0


def test_analytic_cost_by_hand():
    scn = SCN.model_copy(update={"replicas": 2})
    le = estimate_load(scn, Traffic(rate_rps=10.0, **FAST), pricing=Pricing(usd_per_gpu_hour=2.0), method="analytic",
                       catalog=CATALOG)  # fmt: skip
    assert le.throughput.requests_per_s == 10.0 and le.throughput.output_tokens_per_s == 10.0 * 256
    assert le.throughput.input_tokens_per_s == 10.0 * 1024  # stable: what arrives is served
    assert le.cost.usd_per_hour == pytest.approx(4.0)  # 2 devices * $2.00
    assert le.cost.usd_per_million_output_tokens_all_in == pytest.approx(4.0 / (2560 * 3600) * 1e6)
    assert le.cost.usd_per_request == pytest.approx(4.0 / (10 * 3600))
    assert le.energy.joules_per_output_token == pytest.approx(le.energy.watts / 2560)


def test_analytic_overload_is_unbounded_and_served_at_the_maximum_rate():
    le = estimate_load(SCN, Traffic(rate_rps=500.0, **FAST), method="analytic", catalog=CATALOG)
    assert le.fits and not le.stable and le.slo_attainment == 0.0
    assert math.isinf(le.ttft_ms.p90) and math.isinf(le.tpot_ms.mean) and math.isinf(le.slo_ttft_ms)
    assert le.throughput.requests_per_s == le.max_rate_rps and le.utilization == 1.0
    assert any("maximum sustainable rate" in n for n in le.notes)


def test_analytic_arrival_and_output_variability_come_from_the_traffic():
    def prep(**kw):
        return prepare(SCN, Traffic(**{"rate_rps": 1.0, **FAST, **kw}), method="analytic", catalog=CATALOG)

    assert (prep().arrival_cv, prep().output_cv) == (1.0, 0.0)  # Poisson, fixed lengths
    assert prep(arrival="gamma", cv=2.5).arrival_cv == 2.5
    chat = prep(workload="chat")
    assert chat.arrival_cv == pytest.approx(CATALOG.workload("chat").arrival.cv)
    assert chat.output_cv == pytest.approx(CATALOG.workload("chat").output_tokens.cv, rel=0.25)  # drawn, clipped
    # a replayed trace: the cv of its gaps (evenly spaced here: 0) and of its output lengths (50..54 tokens)
    rows = ["timestamp,input_tokens,output_tokens"] + [f"{i * 0.5},{300},{50 + i % 5}" for i in range(400)]
    replay = prepare(SCN, Traffic(**FAST), trace=parse_trace("\n".join(rows).encode()), method="analytic",
                     catalog=CATALOG)  # fmt: skip
    assert replay.arrival_cv == pytest.approx(0.0, abs=1e-9)
    assert replay.output_cv == pytest.approx(np.std([50, 51, 52, 53, 54]) / 52)
    bursty = estimate_load(SCN, Traffic(rate_rps=24.0, arrival="gamma", cv=3.0, **FAST), method="analytic",
                           catalog=CATALOG)  # fmt: skip
    smooth = estimate_load(SCN, Traffic(rate_rps=24.0, **FAST), method="analytic", catalog=CATALOG)
    assert bursty.e2e_ms.p99 > smooth.e2e_ms.p99  # burstier arrivals queue more


def test_analytic_refuses_what_only_the_simulator_models_and_notes_the_prefix_cache():
    with pytest.raises(LoadError, match="speculative decoding"):
        estimate_load(SCN, Traffic(rate_rps=2.0, spec_k=3, spec_alpha=0.8, **FAST), method="analytic", catalog=CATALOG)
    with pytest.raises(LoadError, match="rejection"):
        estimate_load(SCN, Traffic(rate_rps=2.0, on_full="reject", **FAST), method="analytic", catalog=CATALOG)
    with pytest.raises(LoadError, match="unknown method"):
        estimate_load(SCN, Traffic(rate_rps=2.0, **FAST), method="guess", catalog=CATALOG)
    rag = estimate_load(SCN, Traffic(rate_rps=2.0, workload="rag", **FAST), method="analytic", catalog=CATALOG)
    assert any("prefix-cache hit (15%)" in n for n in rag.notes)


def test_analytic_does_not_fit_returns_the_reason():
    big = Scenario(model="meta-llama/Llama-3.1-405B-Instruct", hardware="l4", input_len=128, output_len=16)
    le = estimate_load(big, Traffic(rate_rps=1.0, **FAST), method="analytic", catalog=CATALOG)
    assert le.fits is False and "GB" in le.message and le.ttft_ms is None and le.method == "analytic"
