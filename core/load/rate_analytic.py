"""The analytic method of llmcap.load.rate (steps 4-6): llmcap.load.queueing's flow-equivalent server at the
rate, its saturation rate and goodput, and what they say happens at the rate."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from llmcap.load.queueing import GRID, QueueResult, analyze, attainment
from llmcap.load.queueing import goodput as analytic_goodput_rps
from llmcap.load.rate_prepare import Prepared, _need_fit
from llmcap.load.rate_types import MS, PERCENTILES, Latency, Throughput, _overload_note, _Served, _unbounded
from llmcap.scenario import Slo

ANALYTIC_ITERATIONS = 40  # goodput bisection steps (resolution max_rate / 2^40: exact for any purpose)
ANALYTIC_GAPS = (
    "analytic method (llmcap.load.queueing, docs/method.md 'Serving under load'): against the simulator, mean TPOT "
    "and E2E agree within about 3-5% up to 70% of the maximum rate; TTFT percentiles are narrower (p99 up to "
    "about 45% low near saturation: it misses the spread of iteration times) and the maximum rate is 10-15% "
    "high (no preemption, recompute or whole-prompt iterations); prompt-length spread, preemption and "
    "rejection are not modelled (method simulate models them)"
)


# -- the analytic model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AnalyticPoint:
    """llmcap.load.queueing at one rate: the QueueResult (one row), the busy share and the SLO attainment."""

    queue: QueueResult
    busy_fraction: float
    attainment: float


def analytic_point(prep: Prepared, rate_rps: float, slo: Slo) -> AnalyticPoint:
    """Latency means and percentiles (PERCENTILES, then slo.pct), busy share and attainment at `rate_rps`.

    Busy share = 1 - P(the replica is empty): the flow-equivalent server works whenever it holds a request.
    """
    _need_fit(prep, "analytic")
    curve = prep.curve
    q = analyze(curve, rate_rps, arrival_cv=prep.arrival_cv, output_cv=prep.output_cv,
                percentiles=(*PERCENTILES, slo.pct))  # fmt: skip
    busy = 1.0 - float(q.p_empty[0])
    att = attainment(curve, rate_rps, slo.ttft_ms / MS, slo.tpot_ms / MS, arrival_cv=prep.arrival_cv)
    return AnalyticPoint(queue=q, busy_fraction=min(max(busy, 0.0), 1.0), attainment=float(att[0]))


def analytic_max_rate(prep: Prepared) -> float:
    """Saturation rate of the deployment (req/s): one replica's X(n_max), times the replicas."""
    _need_fit(prep, "analytic")
    return float(prep.curve.max_rate_rps[0])


def analytic_goodput(prep: Prepared, slo: Slo) -> float:
    """DistServe's goodput by llmcap.load.queueing.goodput: the highest rate at which slo.pct% meet both objectives."""
    _need_fit(prep, "analytic")
    g = analytic_goodput_rps(prep.curve, slo.ttft_ms / MS, slo.tpot_ms / MS, pct=slo.pct,
                             arrival_cv=prep.arrival_cv, iterations=ANALYTIC_ITERATIONS)  # fmt: skip
    return float(g[0])


def _analytic(prep: Prepared, rate_rps: float, point: AnalyticPoint, max_rate_rps: float, slo: Slo) -> _Served:
    q, s = point.queue, prep.summary
    stable = bool(q.stable[0]) and rate_rps < max_rate_rps
    notes = [ANALYTIC_GAPS]
    if s.prefix_hit > 0:
        notes.append(
            f"the prefix-cache hit ({s.prefix_hit:.0%}) is not modelled by the analytic method: prompts are "
            "prefilled whole, so TTFT and cost lean high (method simulate skips the cached tokens)"
        )
    if stable:

        def lat(mean: np.ndarray, p: np.ndarray) -> Latency:
            p50, p90, p95, p99 = (float(x) * MS for x in p[0, :4])
            return Latency(mean=float(mean[0]) * MS, p50=p50, p90=p90, p95=p95, p99=p99)

        latencies = (lat(q.ttft_s, q.ttft_p), lat(q.tpot_s, q.tpot_p), lat(q.e2e_s, q.e2e_p), lat(q.queue_s, q.queue_p))
        slo_ttft, slo_tpot = float(q.ttft_p[0, -1]) * MS, float(q.tpot_p[0, -1]) * MS
        rps, mean_batch = rate_rps, float(q.mean_batch[0])
    else:
        latencies = (_unbounded(),) * 4
        slo_ttft = slo_tpot = math.inf
        rps = max_rate_rps  # served at saturation, the rest queues
        top = prep.curve.n[0, -1]
        mean_batch = float(top)
        notes.append(_overload_note(rate_rps, max_rate_rps))
    return _Served(
        stable=stable,
        latencies=latencies,
        throughput=Throughput(
            requests_per_s=rps,
            input_tokens_per_s=rps * s.mean_input_tokens,
            output_tokens_per_s=rps * s.mean_output_tokens,
        ),
        attainment=point.attainment if stable else 0.0,
        slo_ttft_ms=slo_ttft,
        slo_tpot_ms=slo_tpot,
        mean_batch=mean_batch,
        utilization=point.busy_fraction,
        preempted=0.0,
        rejected=0.0,
        method=(
            f"analytic queueing model (llmcap.load.queueing flow-equivalent server on a {GRID}-point load curve per "
            f"replica, {prep.scenario.replicas} replica(s)); arrival cv {prep.arrival_cv:.3g}, output-length cv "
            f"{prep.output_cv:.3g} from {prep.unit.n:,} drawn requests; goodput by bisection"
        ),
        notes=tuple(notes),
    )
