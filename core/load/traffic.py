"""Open-loop traffic: request arrivals at a rate and token lengths, as seeded numpy arrays.

Arrivals: Poisson (exponential gaps, cv 1) or bursty gamma gaps with a chosen coefficient of
variation, the renewal process BurstGPT fits to Azure OpenAI traffic (Wang et al. 2024,
arXiv 2401.17644). A gamma gap with mean 1/rate and cv c has shape k = 1/c^2 and scale
1/(rate k); c = 1 is Poisson.

Lengths come from a workload preset's `LengthDistribution` (catalogs/workloads.yaml), a fixed
value, or a parsed trace (input/output pairs drawn together so their correlation is kept).
Every family is parameterized by its mean and cv, then rounded to whole tokens and clipped to
[min, max]; clipping moves the realized mean a little (`summarize` reports what was drawn).

`requests(...)` returns a frozen `Requests`; the same seed always gives the same arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import Field

from llmcap.catalog.schema import Frozen, LengthDistribution, Workload
from llmcap.load.trace import Trace

ArrivalFamily = Literal["poisson", "gamma"]
Lengths = LengthDistribution | int | float
MAX_REQUESTS = 10_000_000


class TrafficError(ValueError):
    """Bad traffic parameters (rate, count, cv...), with a message meant for the user."""


@dataclass(frozen=True)
class Requests:
    """N requests in arrival order: arrival time (s from 0) and token counts, read-only arrays."""

    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    prefix_cache_hit: float = 0.0
    source: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        n = len(self.arrival_s)
        if len(self.input_tokens) != n or len(self.output_tokens) != n:
            raise TrafficError("arrival_s, input_tokens and output_tokens must have the same length")
        for arr in (self.arrival_s, self.input_tokens, self.output_tokens):
            arr.flags.writeable = False

    @property
    def n(self) -> int:
        return len(self.arrival_s)

    @property
    def span_s(self) -> float:
        """Time from 0 to the last arrival."""
        return float(self.arrival_s[-1]) if self.n else 0.0

    @property
    def rate_rps(self) -> float:
        """Realized mean arrival rate: requests / span (0 when undefined)."""
        return self.n / self.span_s if self.span_s > 0 else 0.0


class Spread(Frozen):
    """Mean, coefficient of variation and percentiles of one array."""

    mean: float
    cv: float
    p50: float
    p90: float
    p99: float
    min: float
    max: float


class RequestStats(Frozen):
    """Summary of a `Requests`: counts, realized rate and burstiness, length spreads."""

    n: int
    span_s: float
    rate_rps: float
    interarrival_cv: float = Field(description="std / mean of the gaps; 1 for Poisson")
    input_tokens: Spread
    output_tokens: Spread
    prefix_cache_hit: float


# -- arrivals --------------------------------------------------------------------------


def interarrival_s(
    n: int, rate_rps: float, family: ArrivalFamily = "poisson", cv: float = 1.0, rng: np.random.Generator | None = None
) -> np.ndarray:
    """`n` gaps between arrivals with mean 1/rate: exponential (Poisson) or gamma with the given cv."""
    _check_rate(rate_rps)
    rng = rng if rng is not None else np.random.default_rng()
    if family == "poisson":
        return rng.exponential(1.0 / rate_rps, size=n)
    if family == "gamma":
        if not (math.isfinite(cv) and cv > 0):
            raise TrafficError(f"gamma arrivals need a coefficient of variation > 0, got {cv}")
        shape = 1.0 / cv**2
        return rng.gamma(shape, 1.0 / (rate_rps * shape), size=n)
    raise TrafficError(f"unknown arrival process '{family}'; choose poisson or gamma")


def _check_rate(rate_rps: float) -> None:
    if not (isinstance(rate_rps, int | float) and math.isfinite(rate_rps) and rate_rps > 0):
        raise TrafficError(f"request rate must be a positive number of requests per second, got {rate_rps!r}")


# -- lengths ---------------------------------------------------------------------------


def sample_lengths(spec: Lengths, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """`n` whole token counts from a distribution (mean and cv, clipped to [min, max]) or a fixed value."""
    rng = rng if rng is not None else np.random.default_rng()
    if not isinstance(spec, LengthDistribution):
        value = _fixed(spec)
        return np.full(n, value, dtype=np.int64)
    mean, cv = spec.mean, spec.cv
    if spec.family == "fixed" or cv == 0:
        raw = np.full(n, mean)
    elif spec.family == "lognormal":
        sigma2 = math.log1p(cv * cv)
        raw = rng.lognormal(math.log(mean) - sigma2 / 2, math.sqrt(sigma2), size=n)
    elif spec.family == "gamma":
        shape = 1.0 / cv**2
        raw = rng.gamma(shape, mean / shape, size=n)
    elif spec.family == "exponential":
        raw = rng.exponential(mean, size=n)
    elif spec.family == "uniform":
        half = mean * cv * math.sqrt(3.0)  # a uniform on [m - h, m + h] has std h / sqrt(3)
        raw = rng.uniform(mean - half, mean + half, size=n)
    else:  # pragma: no cover - the schema's Literal admits no other family
        raise TrafficError(f"unknown length family '{spec.family}'")
    return np.clip(np.rint(raw), max(spec.min, 1), spec.max).astype(np.int64)


def _fixed(value: float) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 1:
        raise TrafficError(f"a fixed token length must be a whole number >= 1, got {value!r}")
    if value != int(value):
        raise TrafficError(f"a fixed token length must be a whole number, got {value}")
    return int(value)


# -- requests --------------------------------------------------------------------------


def requests(
    rate_rps: float,
    *,
    n: int | None = None,
    duration_s: float | None = None,
    arrival: ArrivalFamily = "poisson",
    cv: float = 1.0,
    input_tokens: Lengths = 1024,
    output_tokens: Lengths = 256,
    trace: Trace | None = None,
    prefix_cache_hit: float = 0.0,
    seed: int = 0,
) -> Requests:
    """Seeded open-loop requests: `n` of them, or all arrivals before `duration_s`.

    Lengths come from `input_tokens`/`output_tokens` (a distribution or a fixed value) unless a
    `trace` is given, in which case (input, output) pairs are drawn from it with replacement.
    Arrivals, inputs and outputs use independent streams spawned from `seed`.
    """
    _check_rate(rate_rps)
    if not (0.0 <= prefix_cache_hit <= 1.0):
        raise TrafficError(f"prefix-cache hit fraction must be within [0, 1], got {prefix_cache_hit}")
    gaps_rng, in_rng, out_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    arrival_s = _arrivals(rate_rps, n, duration_s, arrival, cv, gaps_rng)
    count = len(arrival_s)
    if trace is not None:
        if trace.rows == 0:
            raise TrafficError("the trace has no requests to draw lengths from")
        pick = in_rng.integers(0, trace.rows, size=count)
        ins, outs = trace.input_tokens[pick].copy(), trace.output_tokens[pick].copy()
        source = f"{arrival} arrivals at {rate_rps:g} req/s, lengths drawn from a {trace.format} trace"
    else:
        ins, outs = sample_lengths(input_tokens, count, in_rng), sample_lengths(output_tokens, count, out_rng)
        source = f"{arrival} arrivals at {rate_rps:g} req/s"
    return Requests(arrival_s, ins, outs, prefix_cache_hit=prefix_cache_hit, source=source)


def _arrivals(
    rate_rps: float, n: int | None, duration_s: float | None, family: ArrivalFamily, cv: float, rng: np.random.Generator
) -> np.ndarray:
    if (n is None) == (duration_s is None):
        raise TrafficError("give either a number of requests or a duration, not both")
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or not (1 <= n <= MAX_REQUESTS):
            raise TrafficError(f"number of requests must be a whole number in [1, {MAX_REQUESTS:,}], got {n!r}")
        return np.cumsum(interarrival_s(n, rate_rps, family, cv, rng))
    if not (isinstance(duration_s, int | float) and math.isfinite(duration_s) and duration_s > 0):
        raise TrafficError(f"duration must be a positive number of seconds, got {duration_s!r}")
    expected = rate_rps * duration_s
    if expected > MAX_REQUESTS:
        raise TrafficError(f"{expected:,.0f} expected requests exceed the limit of {MAX_REQUESTS:,}")
    # Draw a generous batch of gaps; extend in rare cases where the batch ends before duration_s.
    times = np.cumsum(
        interarrival_s(int(expected + 6 * math.sqrt(expected) * max(cv, 1.0)) + 16, rate_rps, family, cv, rng)
    )
    while times[-1] < duration_s:
        more = interarrival_s(int(expected) + 16, rate_rps, family, cv, rng)
        times = np.concatenate([times, times[-1] + np.cumsum(more)])
    return times[times < duration_s]


def workload_requests(
    workload: Workload,
    rate_rps: float,
    *,
    n: int | None = None,
    duration_s: float | None = None,
    arrival: ArrivalFamily | None = None,
    cv: float | None = None,
    seed: int = 0,
) -> Requests:
    """Requests shaped by a workload preset; `arrival`/`cv` override the preset's process."""
    family = arrival or workload.arrival.family
    if cv is None:
        cv = workload.arrival.cv if family == workload.arrival.family else 1.0
    req = requests(
        rate_rps,
        n=n,
        duration_s=duration_s,
        arrival=family,
        cv=cv,
        input_tokens=workload.input_tokens,
        output_tokens=workload.output_tokens,
        prefix_cache_hit=workload.prefix_cache_hit,
        seed=seed,
    )
    return Requests(
        req.arrival_s,
        req.input_tokens,
        req.output_tokens,
        workload.prefix_cache_hit,
        f"workload {workload.id}: {req.source}",
    )


def replay_trace(
    trace: Trace, rate_rps: float | None = None, n: int | None = None, prefix_cache_hit: float = 0.0
) -> Requests:
    """The trace's own requests at their own times (first `n`), optionally time-scaled to a mean rate.

    Scaling multiplies every timestamp by one factor, so burstiness (the gap cv) is kept.
    """
    if trace.rows == 0:
        raise TrafficError("the trace has no requests to replay")
    count = trace.rows if n is None else n
    if isinstance(count, bool) or not isinstance(count, int) or not (1 <= count <= trace.rows):
        raise TrafficError(f"number of requests to replay must be in [1, {trace.rows}], got {n!r}")
    t = trace.timestamp_s[:count] - trace.timestamp_s[0]
    notes: list[str] = []
    if rate_rps is not None:
        _check_rate(rate_rps)
        if count < 2 or t[-1] <= 0:
            raise TrafficError("cannot scale a trace to a rate: its requests all share one timestamp")
        t = t * ((count / t[-1]) / rate_rps)
        notes.append(f"timestamps scaled to a mean rate of {rate_rps:g} req/s")
    return Requests(
        t.astype(float),
        trace.input_tokens[:count].copy(),
        trace.output_tokens[:count].copy(),
        prefix_cache_hit,
        f"replay of a {trace.format} trace",
        tuple(notes),
    )


# -- summary ---------------------------------------------------------------------------


def spread(values: np.ndarray) -> Spread:
    """Mean, cv (population std / mean) and p50/p90/p99 of an array."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return Spread(mean=0.0, cv=0.0, p50=0.0, p90=0.0, p99=0.0, min=0.0, max=0.0)
    mean = float(v.mean())
    p50, p90, p99 = (float(x) for x in np.percentile(v, [50, 90, 99]))
    return Spread(
        mean=mean,
        cv=float(v.std() / mean) if mean > 0 else 0.0,
        p50=p50,
        p90=p90,
        p99=p99,
        min=float(v.min()),
        max=float(v.max()),
    )


def summarize(req: Requests) -> RequestStats:
    """Realized rate, gap cv and length spreads of `req` (what was drawn, after clipping)."""
    gaps = np.diff(req.arrival_s, prepend=0.0)
    return RequestStats(
        n=req.n,
        span_s=req.span_s,
        rate_rps=req.rate_rps,
        interarrival_cv=spread(gaps).cv if req.n > 1 else 0.0,
        input_tokens=spread(req.input_tokens),
        output_tokens=spread(req.output_tokens),
        prefix_cache_hit=req.prefix_cache_hit,
    )
