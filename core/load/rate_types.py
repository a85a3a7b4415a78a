"""The shapes both methods of serving at a rate answer in (llmcap.load.rate; the traffic and objectives are
llmcap.scenario's Traffic and Slo): latency and throughput summaries, and the per-method
result the LoadEstimate is assembled from."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from llmcap.catalog.schema import Frozen

PERCENTILES = (50.0, 90.0, 95.0, 99.0)
MS = 1e3
Method = Literal["simulate", "analytic"]
METHODS: tuple[str, ...] = ("simulate", "analytic")


class LoadError(ValueError):
    """Traffic or speculative-decoding settings that cannot be simulated, with a message for the user."""


class Latency(Frozen):
    """Milliseconds over served requests; inf when the rate exceeds the maximum sustainable rate."""

    mean: float
    p50: float
    p90: float
    p95: float
    p99: float


class Throughput(Frozen):
    requests_per_s: float
    input_tokens_per_s: float
    output_tokens_per_s: float


class TrafficSummary(Frozen):
    """The requests simulated: where they came from and what was drawn."""

    source: str
    arrival: str
    cv: float | None
    requests: int
    mean_input_tokens: float
    mean_output_tokens: float
    prefix_hit: float
    notes: list[str] = []


# -- assembly ---------------------------------------------------------------------------------------


def latency(values_s: np.ndarray) -> Latency:
    """Mean and PERCENTILES of the finite values, in ms (zeros when there are none)."""
    v = np.asarray(values_s, dtype=float)
    v = v[np.isfinite(v)] * MS
    if v.size == 0:
        return Latency(mean=0.0, p50=0.0, p90=0.0, p95=0.0, p99=0.0)
    p50, p90, p95, p99 = (float(x) for x in np.percentile(v, PERCENTILES))
    return Latency(mean=float(v.mean()), p50=p50, p90=p90, p95=p95, p99=p99)


def _unbounded() -> Latency:
    return Latency(mean=math.inf, p50=math.inf, p90=math.inf, p95=math.inf, p99=math.inf)


def _pct(values_s: np.ndarray, pct: float) -> float:
    v = np.asarray(values_s, dtype=float)
    v = v[np.isfinite(v)]
    return float(np.percentile(v, pct)) * MS if v.size else 0.0


@dataclass(frozen=True)
class _Served:
    """What a method says happens at the rate (everything the LoadEstimate needs besides cost and energy)."""

    stable: bool
    latencies: tuple[Latency, Latency, Latency, Latency]  # TTFT, TPOT, E2E, queue
    throughput: Throughput
    attainment: float
    slo_ttft_ms: float
    slo_tpot_ms: float
    mean_batch: float
    utilization: float
    preempted: float
    rejected: float
    method: str
    notes: tuple[str, ...] = ()


def _overload_note(rate_rps: float, max_rate_rps: float) -> str:
    return (
        f"{rate_rps:g} req/s is above the maximum sustainable rate ({max_rate_rps:.3g} req/s): the queue grows "
        "without bound, so latencies are infinite (null in JSON) and no request meets the SLO in the long run"
    )
