"""The simulate method of llmcap.load.rate (steps 4-7): the operating point, the maximum rate and the goodput
by the iteration-level simulator, and what they say happens at the rate."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from llmcap.load.rate_prepare import Prepared, _need_fit
from llmcap.load.rate_types import MS, Throughput, _overload_note, _pct, _Served, _unbounded, latency
from llmcap.load.simstats import goodput_sim, max_rate_sim, slo_attainment
from llmcap.load.simulate import SimResult, simulate
from llmcap.scenario import Slo

SEARCH_REQUESTS = 3_000
SEARCH_ITERATIONS = 8


# -- the three simulations --------------------------------------------------------------------------


def operating_point(prep: Prepared, rate_rps: float) -> SimResult:
    """Simulate all requests at `rate_rps` (whole deployment)."""
    _need_fit(prep)
    u, ss = prep.unit, prep.sessions
    arrivals = ss.requests.arrivals(rate_rps) if ss is not None else u.arrival_s / rate_rps
    return simulate(prep.table, prep.cfg, arrivals, u.input_tokens, u.output_tokens, prep.cache())


def max_rate(prep: Prepared) -> float:
    """Saturation throughput of the deployment (req/s): one replica's, times the replicas."""
    _need_fit(prep)
    u, k = prep.unit, _search_k(prep)
    one = prep.cfg.model_copy(update={"replicas": 1})
    ss = prep.sessions
    # sessions saturate turn by turn: every first turn queues ahead of every second turn, and so on, so a turn
    # is admitted after its session's previous one (as in a real queue of sessions) and can find its history
    kw = {"cache": prep.cache(k)}
    if ss is not None:
        kw["offset_s"] = (ss.requests.turn[:k] - 1) * 1e-6
    top = max_rate_sim(prep.table, one, u.input_tokens[:k], u.output_tokens[:k], **kw) * prep.cfg.replicas
    return top / prep.samples  # prompts (answers) per second


def _search_k(prep: Prepared) -> int:
    """Requests of the max-rate and goodput searches: whole prompts' samples."""
    k = min(prep.unit.n, SEARCH_REQUESTS)
    return max(k - k % prep.samples, prep.samples)


def goodput(prep: Prepared, slo: Slo, max_rate_rps: float) -> float:
    """Highest rate in [0, max_rate_rps] at which slo.pct% of requests meet both objectives (bisection)."""
    _need_fit(prep)
    u, k = prep.unit, _search_k(prep)
    if max_rate_rps <= 0:
        return 0.0
    ss = prep.sessions
    kw = {"cache": prep.cache(k)}
    if ss is not None:
        kw["offset_s"] = ss.requests.offset_s[:k]
    unit = u.arrival_s[:k] if ss is None else ss.requests.start_unit[:k]
    return goodput_sim(
        prep.table,
        prep.cfg,
        unit,
        u.input_tokens[:k],
        u.output_tokens[:k],
        slo.ttft_ms / MS,
        slo.tpot_ms / MS,
        pct=slo.pct,
        hi_rps=max_rate_rps,
        iterations=SEARCH_ITERATIONS,
        **kw,
    )


def _simulated(prep: Prepared, rate_rps: float, sim: SimResult, max_rate_rps: float, slo: Slo) -> _Served:
    cfg = prep.cfg
    served = ~sim.rejected
    multi = served & (sim.output_tokens > 1)
    span = max(sim.span_s, 1e-12)
    stable = rate_rps < max_rate_rps
    notes = []
    if stable:
        lat = tuple(latency(x) for x in (sim.ttft_s[served], sim.tpot_s[multi], sim.e2e_s[served],
                                         sim.queue_s[served]))  # fmt: skip
        attained = slo_attainment(sim, slo.ttft_ms / MS, slo.tpot_ms / MS)
        slo_ttft, slo_tpot = _pct(sim.ttft_s[served], slo.pct), _pct(sim.tpot_s[multi], slo.pct)
    else:
        lat = (_unbounded(),) * 4
        attained, slo_ttft, slo_tpot = 0.0, math.inf, math.inf
        notes.append(_overload_note(rate_rps, max_rate_rps))
    rejected = float(np.mean(sim.rejected))
    if rejected > 0:
        notes.append(f"{rejected:.1%} of requests were rejected (KV cache full or a request longer than it holds)")
    return _Served(
        stable=stable,
        latencies=lat,
        throughput=Throughput(
            requests_per_s=float(served.sum() / span),
            input_tokens_per_s=float(sim.input_tokens[served].sum() / span),
            output_tokens_per_s=float(sim.output_tokens[served].sum() / span),
        ),
        attainment=attained,
        slo_ttft_ms=slo_ttft,
        slo_tpot_ms=slo_tpot,
        mean_batch=sim.decode_batch_s / (sim.replicas * span),
        utilization=min(sim.busy_s / (sim.replicas * span), 1.0),
        preempted=float(np.mean(sim.preemptions > 0)),
        rejected=rejected,
        method=(
            f"iteration-level simulation of {sim.arrival_s.size:,} requests ({cfg.replicas} replica(s), "
            f"{'chunked prefill' if cfg.mixed else 'prefill-first'}); max rate and goodput from "
            f"{min(prep.unit.n, SEARCH_REQUESTS):,} requests"
        ),
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class Simulated:
    """The simulate method's three simulations at one rate, run apart so that a caller can cache each."""

    sim: SimResult  # operating_point
    max_rate_rps: float  # max_rate
    goodput_rps: float  # goodput
