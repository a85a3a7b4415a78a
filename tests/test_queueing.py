"""Analytic open-loop model: exact birth-death limits, agreement with the simulator, monotonicity, goodput."""

from __future__ import annotations

import numpy as np
import pytest

from llmcap.estimate.resolve import resolve
from llmcap.estimate.sweep import expand, resolved_input
from llmcap.load.queueing import LoadCurve, analyze, attainment, goodput, load_curve
from llmcap.load.simstats import max_rate_sim, summarize
from llmcap.load.simulate import deployment, simulate
from llmcap.scenario import Scenario

LLAMA = dict(model="meta-llama/Llama-3.1-8B-Instruct", hardware="h100-sxm", weight_format="fp8")


def hand_curve(n_max: float, rate_fn, *, ttft_s=0.0, tpot_s=0.0, output_len=1.0, grid=48) -> LoadCurve:
    n = np.round(n_max ** np.linspace(0, 1, grid))[None, :]
    return LoadCurve(
        n=n,
        ttft_s=np.full_like(n, ttft_s),
        tpot_s=np.full_like(n, tpot_s),
        rate=rate_fn(n),
        output_len=np.array([output_len]),
        replicas=np.array([1.0]),
        fits=np.array([True]),
    )


def test_single_server_is_mm1():
    """n_max = 1 and a constant completion rate mu: M/M/1, E[N] = rho / (1 - rho), Wq = rho / (mu - lambda)."""
    mu = 4.0
    curve = hand_curve(1.0, lambda n: mu + 0 * n)
    for rho in (0.2, 0.5, 0.8, 0.95):
        res = analyze(curve, rho * mu)
        assert res.in_system[0] == pytest.approx(rho / (1 - rho), rel=1e-9)
        assert res.queue_s[0] == pytest.approx(rho / (mu - rho * mu), rel=1e-9)
        assert res.utilization[0] == pytest.approx(rho)
    assert curve.max_rate_rps[0] == mu


def test_many_servers_is_poisson():
    """X(n) = n / E (every request served in parallel, time E): M/G/inf, N ~ Poisson(lambda E)."""
    e2e = 2.0
    curve = hand_curve(2000.0, lambda n: n / e2e)
    for lam in (1.0, 10.0, 100.0):
        assert analyze(curve, lam).in_system[0] == pytest.approx(lam * e2e, rel=0.03)


def test_burstier_arrivals_wait_longer():
    curve = hand_curve(1.0, lambda n: 4.0 + 0 * n)
    waits = [analyze(curve, 2.0, arrival_cv=cv).queue_s[0] for cv in (0.5, 1.0, 2.0, 4.0)]
    assert all(a < b for a, b in zip(waits, waits[1:], strict=False))


def test_overload_is_unstable_not_nan():
    curve = hand_curve(1.0, lambda n: 4.0 + 0 * n)
    res = analyze(curve, 5.0)
    assert not res.stable[0]
    assert np.isinf(res.ttft_s[0]) and np.isinf(res.e2e_p[0]).all()
    assert attainment(curve, 5.0, 10.0, 10.0)[0] == 0.0


@pytest.fixture(scope="module", params=["vllm", "sglang"])
def engine_case(request):
    r = resolve(Scenario(engine=request.param, input_len=1024, output_len=256, **LLAMA))
    return request.param, r, load_curve(resolved_input(r))


def test_analytic_agrees_with_simulator_at_moderate_load(engine_case):
    """At 30% and 50% of the analytic maximum rate: TPOT and E2E means within 10%, TTFT within 20% of 20,000
    simulated requests; the analytic maximum rate within 20% of the simulator's saturation throughput."""
    engine, r, curve = engine_case
    table, cfg = deployment(r, input_len=1024, output_len=256)
    n = 20_000
    unit = np.cumsum(np.random.default_rng(0).exponential(1.0, n))
    for share in (0.3, 0.5):
        rate = share * curve.max_rate_rps[0]
        sim = summarize(simulate(table, cfg, unit / rate, np.full(n, 1024), np.full(n, 256)))
        ana = analyze(curve, rate)
        assert ana.ttft_s[0] * 1e3 == pytest.approx(sim.ttft_ms.mean, rel=0.2), engine
        assert ana.tpot_s[0] * 1e3 == pytest.approx(sim.tpot_ms.mean, rel=0.1), engine
        assert ana.e2e_s[0] * 1e3 == pytest.approx(sim.e2e_ms.mean, rel=0.1), engine
    saturated = max_rate_sim(table, cfg, np.full(n // 4, 1024), np.full(n // 4, 256))
    assert curve.max_rate_rps[0] == pytest.approx(saturated, rel=0.2), engine


def test_higher_rate_never_lowers_percentiles(engine_case):
    _, r, _ = engine_case
    rates = np.linspace(0.5, 30.0, 40)
    inp = resolved_input(r)
    curve = load_curve(expand(inp, np.zeros(len(rates), dtype=int)))
    res = analyze(curve, rates, output_cv=0.8)
    stable = res.stable
    assert stable[:5].all()
    for arr in (res.ttft_p, res.tpot_p, res.e2e_p, res.queue_p):
        s = arr[stable]
        assert np.all(np.diff(s, axis=0) >= -1e-12)
    for arr in (res.ttft_s, res.tpot_s, res.e2e_s):
        assert np.all(np.diff(arr[stable]) >= -1e-12)
    assert np.all(np.isfinite(res.e2e_p[stable])) and not np.isnan(res.e2e_p).any()


def test_goodput_bounds_and_slo_monotonicity(engine_case):
    _, _, curve = engine_case
    ttft = np.array([2.0, 1.0, 0.5, 0.3, 0.25, 0.2])
    tpot = np.array([0.1, 0.05, 0.03, 0.02, 0.015, 0.012])
    rows = LoadCurve(
        **{k: np.repeat(getattr(curve, k), len(ttft), axis=0) for k in ("n", "ttft_s", "tpot_s", "rate")},
        output_len=np.repeat(curve.output_len, len(ttft)),
        replicas=np.repeat(curve.replicas, len(ttft)),
        fits=np.repeat(curve.fits, len(ttft)),
    )
    g = goodput(rows, ttft, tpot, pct=90)
    assert np.all(np.diff(g) <= 1e-9)  # each SLO is tighter than the one before
    assert np.all(g <= rows.max_rate_rps)
    served = g > 0
    assert served.any()
    assert np.all(attainment(rows, g, ttft, tpot)[served] >= 0.9 - 1e-9)
    assert np.all(goodput(rows, ttft, tpot, pct=99) <= g + 1e-9)
