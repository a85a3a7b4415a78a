"""Summaries of a simulation: means and percentiles, throughput, SLO attainment, batch and utilization.

SLO attainment follows DistServe (Zhong et al. 2024): the fraction of requests that meet both the TTFT
and the TPOT objective; a rejected request meets neither. Percentiles are over served requests (TPOT
over those with more than one output token). Utilization = engine busy time / (replicas x span).
"""

from __future__ import annotations

import numpy as np

from llmcap.catalog.schema import Frozen
from llmcap.load.simulate import SimResult, simulate

MS = 1e3


class Stats(Frozen):
    mean: float
    p50: float
    p90: float
    p99: float


class SimSummary(Frozen):
    """Milliseconds for latencies; rates per second for the whole deployment."""

    ttft_ms: Stats
    tpot_ms: Stats
    e2e_ms: Stats
    queue_ms: Stats
    requests_per_s: float
    output_tokens_per_s: float
    slo_attainment: float
    mean_batch: float  # time-average decode batch per replica
    utilization: float
    preempted_fraction: float
    rejected_fraction: float


def stats(values: np.ndarray, scale: float = 1.0) -> Stats:
    """Mean and p50/p90/p99 of the finite values (zeros when there are none)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)] * scale
    if v.size == 0:
        return Stats(mean=0.0, p50=0.0, p90=0.0, p99=0.0)
    p50, p90, p99 = np.percentile(v, [50, 90, 99])
    return Stats(mean=float(v.mean()), p50=float(p50), p90=float(p90), p99=float(p99))


def slo_attainment(res: SimResult, ttft_slo_s: float, tpot_slo_s: float) -> float:
    """Fraction of all requests meeting both objectives (DistServe's attainment)."""
    ok = ~res.rejected & (res.ttft_s <= ttft_slo_s) & (res.tpot_s <= tpot_slo_s)
    return float(np.mean(ok))


def summarize(res: SimResult, ttft_slo_s: float = np.inf, tpot_slo_s: float = np.inf) -> SimSummary:
    served = ~res.rejected
    multi = served & (res.output_tokens > 1)
    span = max(res.span_s, 1e-12)
    return SimSummary(
        ttft_ms=stats(res.ttft_s[served], MS),
        tpot_ms=stats(res.tpot_s[multi], MS),
        e2e_ms=stats(res.e2e_s[served], MS),
        queue_ms=stats(res.queue_s[served], MS),
        requests_per_s=float(served.sum() / span),
        output_tokens_per_s=float(res.output_tokens[served].sum() / span),
        slo_attainment=slo_attainment(res, ttft_slo_s, tpot_slo_s),
        mean_batch=res.decode_batch_s / (res.replicas * span),
        utilization=min(res.busy_s / (res.replicas * span), 1.0),
        preempted_fraction=float(np.mean(res.preemptions > 0)),
        rejected_fraction=float(np.mean(res.rejected)),
    )


def max_rate_sim(table, cfg, input_tokens, output_tokens, *, offset_s=None, cache=None) -> float:
    """Saturation throughput (req/s): every request arrives at once; completions per second between the
    25th and 75th percentile finish times (the engine's steady state, away from start-up and drain).
    Sessions: every session starts at once, its turns at their own offsets (`offset_s`, think times)."""
    arr = np.zeros(len(input_tokens)) if offset_s is None else np.asarray(offset_s, dtype=float)
    res = simulate(table, cfg, arr, input_tokens, output_tokens, cache)
    done = np.sort(res.e2e_s[~res.rejected])
    if done.size < 4:
        return 0.0
    lo, hi = int(0.25 * done.size), int(0.75 * done.size)
    return float((hi - lo) / max(done[hi] - done[lo], 1e-12))


def goodput_sim(
    table,
    cfg,
    unit_arrival_s,
    input_tokens,
    output_tokens,
    ttft_slo_s: float,
    tpot_slo_s: float,
    *,
    pct: float = 90.0,
    hi_rps: float | None = None,
    iterations: int = 12,
    offset_s=None,
    cache=None,
) -> float:
    """Highest rate (req/s) at which >= pct% of requests meet both objectives (DistServe), by bisection.

    unit_arrival_s: arrival times at rate 1 req/s; rate r uses unit_arrival_s / r (common random numbers,
    so attainment falls steadily with the rate). hi_rps defaults to the saturation throughput. Sessions add
    their turns' `offset_s` (think times, not scaled) and a prefix `cache` (llmcap.load.prefix_cache).
    """
    unit = np.asarray(unit_arrival_s, dtype=float)
    extra = 0.0 if offset_s is None else np.asarray(offset_s, dtype=float)
    hi = hi_rps if hi_rps is not None else max_rate_sim(table, cfg, input_tokens, output_tokens, offset_s=offset_s,
                                                        cache=cache)  # fmt: skip
    lo = 0.0
    for _ in range(iterations):
        mid = (lo + hi) / 2
        res = simulate(table, cfg, unit / mid + extra, input_tokens, output_tokens, cache)
        if slo_attainment(res, ttft_slo_s, tpot_slo_s) >= pct / 100.0:
            lo = mid
        else:
            hi = mid
    return lo
