"""Summaries of a simulation: means and percentiles, throughput, SLO attainment, batch and utilization.

SLO attainment follows DistServe (Zhong et al. 2024): the fraction of requests that meet both the TTFT
and the TPOT objective; a rejected request meets neither. Percentiles are over served requests (TPOT
over those with more than one output token). Utilization = engine busy time / (replicas x span).
"""

from __future__ import annotations

import numpy as np

from core.schema import Frozen
from core.simulate import SimResult

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
