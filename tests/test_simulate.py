"""Step table and simulator: against System.time, exact queueing results, Little's law, invariants.

Expected values come from queueing theory or hand arithmetic, never from the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmcap.estimate.resolve import resolve
from llmcap.load.simstats import goodput_sim, max_rate_sim, slo_attainment, summarize
from llmcap.load.simulate import SimConfig, deployment, expected_tokens_per_step, simulate
from llmcap.load.steptable import StepTable, iteration_step
from llmcap.scenario import Scenario

LLAMA = dict(model="meta-llama/Llama-3.1-8B-Instruct", hardware="h100-sxm", weight_format="fp8")


def constant_table(step_s: float) -> StepTable:
    """Every iteration takes step_s, whatever it carries: the engine becomes a textbook server."""
    return StepTable.from_function(lambda b, m, p, q: step_s + 0 * b, max_batch=4, max_context=64, max_prompt_tokens=64)


def poisson(n: int, rate: float, seed: int = 0) -> np.ndarray:
    return np.cumsum(np.random.default_rng(seed).exponential(1 / rate, n))


def single_server(**kw) -> SimConfig:
    """max_seqs = 1: one request at a time, first come first served (no batching)."""
    return SimConfig(mixed=False, max_batch_tokens=64, max_seqs=1, kv_capacity_tokens=1e9, **kw)


# --- step table ------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen3-30B-A3B"])
def table_and_system(request):
    r = resolve(Scenario(model=request.param, hardware="h100-sxm", engine="vllm", weight_format="fp8"))
    table = StepTable.from_system(r.system, max_batch=1024, max_context=32768, max_prompt_tokens=8192)
    return table, r.system


def _exact(sys, b, m, p, q):
    return sys.time(iteration_step(sys, b, m, p, q)).total_s


def test_step_table_is_exact_on_its_grid(table_and_system):
    table, sys = table_and_system
    b, m, p, r = (g.ravel() for g in np.meshgrid(table.b, table.m, table.p, table.r, indexing="ij"))
    q = np.where(p > 0, r * b * m, 0.0)
    pick = np.random.default_rng(0).choice(len(b), 3000)
    exact = _exact(sys, b[pick], m[pick], p[pick], q[pick])
    np.testing.assert_allclose(table.time_s(b[pick], m[pick], p[pick], q[pick]), exact, rtol=1e-12)
    pp, LL = (g.ravel() for g in np.meshgrid(table.pf_p, table.pf_L, indexing="ij"))
    exact = _exact(sys, 0 * pp, 1 + 0 * pp, pp, pp * LL)
    np.testing.assert_allclose(table.time_s(0 * pp, 1 + 0 * pp, pp, pp * LL), exact, rtol=1e-12)


def test_step_table_within_2_percent_off_grid(table_and_system):
    table, sys = table_and_system
    rng = np.random.default_rng(1)
    n = 20_000
    b = np.round(np.exp(rng.uniform(0, np.log(1024), n)))
    m = np.exp(rng.uniform(0, np.log(32768), n))
    p = np.round(np.exp(rng.uniform(0, np.log(8192), n)))
    q = p * np.exp(rng.uniform(0, np.log(32768), n))
    decode = np.abs(table.time_s(b, m, 0, 0) / _exact(sys, b, m, 0 * p, 0 * q) - 1)
    prefill = np.abs(table.time_s(0, 1, p, q) / _exact(sys, 0 * b, 1 + 0 * m, p, q) - 1)
    mixed = np.abs(table.time_s(b, m, p, q) / _exact(sys, b, m, p, q) - 1)
    assert decode.max() < 0.02
    assert prefill.max() < 0.02
    # mixed steps: the attention row's max(compute, memory) over decode and prompt pairs together bends
    # along a surface no grid follows in every direction; 99% of points stay within 2%
    assert np.quantile(mixed, 0.99) < 0.02
    assert mixed.max() < 0.08


def test_scalar_lookups_equal_the_vectorized_table(table_and_system):
    table, _ = table_and_system
    lk = table.lookups()
    rng = np.random.default_rng(2)
    for _ in range(300):
        b, m = int(rng.integers(1, 1024)), float(rng.uniform(1, 30000))
        p, q = float(rng.integers(1, 8192)), float(rng.uniform(1, 1e7))
        assert lk.mixed(b, m, p, q) == pytest.approx(float(table.time_s(b, m, p, q)), rel=1e-12)
        assert lk.prefill(p, q) == pytest.approx(float(table.time_s(0, 1, p, q)), rel=1e-12)
        assert lk.decode(b, m)[0] == pytest.approx(float(table.time_s(b, m, 0, 0)), rel=1e-12)


# --- exact queueing limits ---------------------------------------------------------------------------


def test_md1_mean_wait():
    """No batching, fixed lengths: service S = O steps (1 prefill + O-1 decodes); M/D/1 Wq = rho S / (2 (1-rho))."""
    step, out = 0.01, 10
    service = out * step
    rate = 0.6 / service
    n = 200_000
    res = simulate(constant_table(step), single_server(), poisson(n, rate), np.full(n, 8), np.full(n, out))
    rho = rate * service
    assert np.mean(res.queue_s) == pytest.approx(rho * service / (2 * (1 - rho)), rel=0.04)
    assert np.mean(res.e2e_s - res.queue_s) == pytest.approx(service, rel=1e-9)


def test_mg1_geometric_lengths_pollaczek_khinchine_and_mm1():
    """Geometric output lengths (mean 1/g): P-K Wq = lambda E[S^2] / (2 (1 - rho)), E[S^2] = T^2 (2 - g) / g^2.

    As g -> 0 the service becomes exponential; the M/M/1 sojourn 1 / (mu - lambda) holds within a few %.
    """
    step, g = 0.001, 0.01
    n = 200_000
    rng = np.random.default_rng(3)
    out = rng.geometric(g, n)
    mean_s, second = step / g, step**2 * (2 - g) / g**2
    rate = 0.5 / mean_s
    res = simulate(constant_table(step), single_server(), poisson(n, rate, 4), np.full(n, 8), out)
    rho = rate * mean_s
    assert np.mean(res.queue_s) == pytest.approx(rate * second / (2 * (1 - rho)), rel=0.06)
    assert np.mean(res.e2e_s) == pytest.approx(1 / (1 / mean_s - rate), rel=0.06)


# --- Little's law -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llama_vllm():
    r = resolve(Scenario(engine="vllm", **LLAMA))
    return deployment(r, input_len=1024, output_len=256, max_context=8192)


def test_littles_law(llama_vllm):
    table, cfg = llama_vllm
    cfg = cfg.model_copy(update={"request_overhead_s": 0.0})
    n, rate = 20_000, 10.0
    rng = np.random.default_rng(5)
    s, o = rng.integers(100, 2000, n), rng.integers(2, 500, n)
    arr = poisson(n, rate, 6)
    res = simulate(table, cfg, arr, s, o)
    assert res.preemptions.sum() == 0
    # decode batch integrated by the engine loop = sum over requests of their time decoding
    assert res.decode_batch_s == pytest.approx(np.sum(res.e2e_s - res.ttft_s), rel=1e-9)
    # mean number in system (from arrival and departure events) = arrival rate x mean time in system
    finish = arr + res.e2e_s
    events = np.concatenate([arr, finish])
    steps = np.concatenate([np.ones(n), -np.ones(n)])
    order = np.argsort(events, kind="stable")
    count = np.cumsum(steps[order])[:-1]
    in_system = np.sum(count * np.diff(events[order])) / (events.max() - events.min())
    assert in_system == pytest.approx(rate * np.mean(res.e2e_s), rel=0.03)


# --- speculative decoding, memory, rejection -----------------------------------------------------------


def test_expected_tokens_per_step():
    assert expected_tokens_per_step(3, 0.8) == pytest.approx((1 - 0.8**4) / 0.2)  # 2.952
    assert expected_tokens_per_step(4, 0.0) == 1.0
    assert expected_tokens_per_step(4, 1.0) == 5.0
    assert expected_tokens_per_step(0, 0.9) == 1.0


def test_speculative_decoding_shortens_decode_by_the_expected_tokens():
    """k = 3, alpha = 0.8: 2.952 tokens per step, 99 tokens after the first take ceil(99 / 2.952) = 34 steps."""
    step = 0.01
    cfg = single_server(spec_k=3, spec_alpha=0.8, draft_cost=0.0)
    res = simulate(constant_table(step), cfg, [0.0], [8], [100])
    assert res.e2e_s[0] == pytest.approx((1 + 34) * step)
    costly = single_server(spec_k=3, spec_alpha=0.8, draft_cost=0.1)  # 3 draft steps of 0.1 T each
    res = simulate(constant_table(step), costly, [0.0], [8], [100])
    assert res.e2e_s[0] == pytest.approx(step + 34 * step * 1.3)


def test_preemption_under_tiny_kv():
    n = 50
    cfg = SimConfig(mixed=True, max_batch_tokens=512, max_seqs=64, kv_capacity_tokens=1500)
    res = simulate(constant_table(0.01), cfg, np.zeros(n), np.full(n, 100), np.full(n, 400))
    assert res.preemptions.sum() > 0
    assert not res.rejected.any()
    assert np.all(np.isfinite(res.e2e_s)) and np.all(res.e2e_s > 0)
    # cache-time bound: a request's decode holds 101, 102, ..., 499 tokens over its 399 steps, and no step
    # holds more than 1500 in all, so there are at least n * sum(101..499) / 1500 steps of 0.01 s
    need = n * sum(range(101, 500))
    assert res.iterations >= need / 1500
    assert res.span_s >= need / 1500 * 0.01


def test_rejection_when_memory_runs_out():
    n = 50
    cfg = SimConfig(mixed=True, max_batch_tokens=512, max_seqs=64, kv_capacity_tokens=1500, on_full="reject")
    res = simulate(constant_table(0.01), cfg, np.zeros(n), np.full(n, 100), np.full(n, 400))
    assert res.rejected.sum() == n - 3  # 3 x 500 tokens reserved fill the 1500-token cache
    assert res.preemptions.sum() == 0
    assert np.isnan(res.e2e_s[res.rejected]).all()
    summ = summarize(res, ttft_slo_s=100.0, tpot_slo_s=100.0)
    assert summ.slo_attainment == pytest.approx(3 / n)
    too_long = simulate(constant_table(0.01), cfg.model_copy(update={"on_full": "preempt"}), [0.0], [1000], [600])
    assert too_long.rejected[0]


def test_prefix_cache_shortens_prefill():
    """A hit fraction h leaves (1 - h) of the prompt to compute: fewer tokens, fewer pairs, shorter TTFT."""
    table = StepTable.from_function(
        lambda b, m, p, q: 0.001 + 1e-5 * p, max_batch=4, max_context=4096, max_prompt_tokens=4096
    )
    base = SimConfig(mixed=True, max_batch_tokens=4096, max_seqs=8, kv_capacity_tokens=1e6)
    cold = simulate(table, base, [0.0], [2000], [2]).ttft_s[0]
    warm = simulate(table, base.model_copy(update={"prefix_hit": 0.75}), [0.0], [2000], [2]).ttft_s[0]
    assert cold == pytest.approx(0.001 + 1e-5 * 2000, rel=1e-3)
    assert warm == pytest.approx(0.001 + 1e-5 * 500, rel=1e-3)


# --- monotonicity, goodput, robustness ---------------------------------------------------------------


def test_higher_rate_never_lowers_latency_percentiles(llama_vllm):
    table, cfg = llama_vllm
    n = 4000
    rng = np.random.default_rng(7)
    s, o = rng.integers(200, 2000, n), rng.integers(20, 400, n)
    unit = poisson(n, 1.0, 8)
    last = None
    for rate in (2.0, 6.0, 12.0, 18.0, 24.0, 40.0):
        summ = summarize(simulate(table, cfg, unit / rate, s, o))
        now = np.array(
            [[getattr(summ, k).p50, getattr(summ, k).p90, getattr(summ, k).p99] for k in ("ttft_ms", "e2e_ms")]
        )
        if last is not None:
            assert np.all(now >= last * 0.98), (rate, now, last)
        last = now


def test_tighter_slo_never_raises_goodput(llama_vllm):
    table, cfg = llama_vllm
    n = 1500
    rng = np.random.default_rng(9)
    s, o = rng.integers(200, 1500, n), rng.integers(20, 300, n)
    unit = poisson(n, 1.0, 10)
    hi = max_rate_sim(table, cfg, s, o)
    loose = goodput_sim(table, cfg, unit, s, o, 1.0, 0.05, hi_rps=hi)
    tight = goodput_sim(table, cfg, unit, s, o, 0.3, 0.02, hi_rps=hi)
    assert 0 < tight <= loose <= hi


def test_summary_has_no_nan_or_inf(llama_vllm):
    table, cfg = llama_vllm
    n = 3000
    res = simulate(table, cfg, poisson(n, 15.0, 11), np.full(n, 1024), np.full(n, 256))
    summ = summarize(res, ttft_slo_s=0.5, tpot_slo_s=0.05)
    flat = summ.model_dump()
    values = [v for x in flat.values() for v in (x.values() if isinstance(x, dict) else [x])]
    assert all(math.isfinite(v) for v in values)
    assert 0 <= summ.slo_attainment <= 1 and 0 < summ.utilization <= 1
    assert slo_attainment(res, 0.5, 0.05) == summ.slo_attainment


def test_replicas_split_round_robin():
    cfg = single_server(replicas=2)
    res = simulate(constant_table(0.01), cfg, [0.0, 0.0, 0.0, 0.0], [8] * 4, [10] * 4)
    # requests 0 and 2 on one replica, 1 and 3 on the other: two wait one service (0.1 s) each
    assert sorted(res.queue_s.tolist()) == pytest.approx([0.0, 0.0, 0.1, 0.1])


@pytest.mark.parametrize(
    "args, message",
    [
        (([0.0, 1.0], [10], [10, 10]), "lengths differ"),
        (([0.0], [0], [10]), "whole numbers >= 1"),
        (([0.0], [10.5], [10]), "whole numbers >= 1"),
        (([np.nan], [10], [10]), "not a finite number"),
        (([-1.0], [10], [10]), ">= 0"),
        (([], [], []), "no requests"),
        ((["a"], [10], [10]), "must be numbers"),
    ],
)
def test_bad_input_gets_a_clear_message(args, message):
    with pytest.raises(ValueError, match=message):
        simulate(constant_table(0.01), single_server(), *args)
