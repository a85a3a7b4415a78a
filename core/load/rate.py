"""`estimate_load(scenario, traffic, slo, pricing, region, method=) -> LoadEstimate`: one scenario under open-loop
traffic, by the iteration-level simulator (method "simulate", the default) or the analytic queueing model
(method "analytic", llmcap.load.queueing: about 100 times faster, with the gaps listed in ANALYTIC_GAPS).

Both methods:
  1. llmcap.estimate.single at the scenario: memory and fit (a scenario that does not fit stops here, fits=False).
  2. Requests (llmcap.load.traffic): `requests` seeded arrivals at 1 req/s (Poisson or gamma with a cv) with
     lengths fixed, from a workload preset, or drawn from a trace; or a trace replayed at its own times.
     A preset or a trace sets the scenario's lengths to the drawn means.
  3. Cost and energy at the operating point (llmcap.economics.operating_point): the served throughput, the decode step
     at the mean batch, the engine's busy share.
Above the maximum rate the queue grows without bound: latencies are inf and attainment 0 (a finite run
would report whatever it happened to reach).

simulate (steps 4-7; every number from llmcap.load.simulate):
  4. Rate r uses arrival_s / r (common random numbers: every rate sees the same requests, so latency
     grows steadily with the rate and a search over rates is not thrown off by resampling noise).
     llmcap.load.simulate.deployment builds the step table and scheduler settings of the scenario's replica.
  5. Operating point: llmcap.load.simulate.simulate of all requests at the rate; latency means and percentiles
     over served requests (TPOT over those with more than one output token).
  6. max_rate_rps: llmcap.load.simstats.max_rate_sim on one replica (the first SEARCH_REQUESTS requests all
     arrive at once; completions per second in steady state), times the replicas.
  7. goodput_rps: llmcap.load.simstats.goodput_sim, DistServe's goodput by bisection on the rate in
     [0, max_rate_rps] over the first SEARCH_REQUESTS requests, SEARCH_ITERATIONS steps (resolution
     max_rate / 2^8). A fixed bracket keeps the result monotone: a tighter SLO never raises it.

analytic (steps 4-6; llmcap.load.queueing's flow-equivalent server, one replica's load curve):
  4. llmcap.load.queueing.load_curve of the resolved scenario (its replicas split the arrivals round-robin);
     arrival cv from the traffic (Poisson 1, gamma its cv, a replayed trace the cv of its gaps) and the
     output-length cv of the drawn requests (0 for fixed lengths).
  5. llmcap.load.queueing.analyze at the rate: means and percentiles of TTFT, TPOT, E2E and queueing, the mean
     batch; busy share = the probability the replica holds a request; attainment (llmcap.load.queueing.attainment).
  6. max_rate_rps = the curve's saturation rate; goodput_rps = llmcap.load.queueing.goodput (bisection).
Seeded: the same inputs give the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, ValidationError

from llmcap.catalog.loader import Catalog, load_catalog
from llmcap.catalog.schema import Device, Frozen
from llmcap.economics.energy import DEFAULT_REGION
from llmcap.economics.operating_point import CostResult, EnergyResult, OperatingPoint, Pricing, point_costs
from llmcap.estimate.resolve import resolve
from llmcap.estimate.single import Estimate, estimate
from llmcap.estimate.sweep import resolved_input
from llmcap.load.queueing import GRID, LoadCurve, QueueResult, analyze, attainment, load_curve
from llmcap.load.queueing import goodput as analytic_goodput_rps
from llmcap.load.simstats import goodput_sim, max_rate_sim, slo_attainment
from llmcap.load.simulate import SimConfig, SimResult, deployment, simulate
from llmcap.load.steptable import StepTable
from llmcap.load.trace import Trace
from llmcap.load.traffic import Requests, TrafficError, replay_trace, requests, workload_requests
from llmcap.model.architecture import Architecture
from llmcap.scenario import Scenario

DEFAULT_REQUESTS = 10_000
SEARCH_REQUESTS = 3_000
SEARCH_ITERATIONS = 8
MAX_RATE_RPS = 1e6
PERCENTILES = (50.0, 90.0, 95.0, 99.0)
MS = 1e3
Method = Literal["simulate", "analytic"]
METHODS: tuple[str, ...] = ("simulate", "analytic")
ANALYTIC_ITERATIONS = 40  # goodput bisection steps (resolution max_rate / 2^40: exact for any purpose)
ANALYTIC_GAPS = (
    "analytic method (llmcap.load.queueing, docs/method.md 'Serving under load'): against the simulator, mean TPOT "
    "and E2E agree within about 3-5% up to 70% of the maximum rate; TTFT percentiles are narrower (p99 up to "
    "about 45% low near saturation: it misses the spread of iteration times) and the maximum rate is 10-15% "
    "high (no preemption, recompute or whole-prompt iterations); prompt-length spread, preemption and "
    "rejection are not modelled (method simulate models them)"
)


class LoadError(ValueError):
    """Traffic or speculative-decoding settings that cannot be simulated, with a message for the user."""


class LoadSpec(Frozen):
    """Open-loop traffic and engine options. rate_rps None replays a trace at its own timestamps."""

    rate_rps: float | None = Field(default=None, gt=0, le=MAX_RATE_RPS)
    arrival: Literal["poisson", "gamma"] | None = Field(default=None, description="None: the preset's, or poisson")
    cv: float | None = Field(default=None, gt=0, le=20, description="gamma inter-arrival cv (None: preset's or 1)")
    workload: str | None = Field(default=None, max_length=80, description="workload preset id for the lengths")
    prefix_hit: float | None = Field(default=None, ge=0, lt=1, description="None: the preset's, or 0")
    spec_k: int = Field(default=0, ge=0, le=16)
    spec_alpha: float = Field(default=0.0, ge=0, le=1)
    draft_cost: float = Field(default=0.0, ge=0, le=10)
    on_full: Literal["preempt", "reject"] = "preempt"
    requests: int = Field(default=DEFAULT_REQUESTS, ge=100, le=1_000_000)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)


class Slo(Frozen):
    """Objectives and the share of requests that must meet both (DistServe's goodput)."""

    ttft_ms: float = Field(default=2000.0, gt=0, le=1e7)
    tpot_ms: float = Field(default=100.0, gt=0, le=1e7)
    pct: float = Field(default=90.0, gt=0, le=100)


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


class Bounds(Frozen):
    prefill: str | None
    decode: str | None


class LoadMemory(Frozen):
    """Per device, with the KV cache at the simulated mean batch."""

    capacity_gb: float
    weights_gb_per_device: float
    kv_gb_per_device: float
    max_concurrency: int


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


class LoadEstimate(Frozen):
    """One scenario at a request rate: latency, capacity, SLO, cost and energy (JSON keys of `llmcap estimate`)."""

    fits: bool
    status: Literal["ok", "does_not_fit"]
    message: str
    scenario: Scenario
    model_id: str
    hardware_name: str
    devices: int
    rate_rps: float | None = None
    stable: bool = False
    traffic: TrafficSummary | None = None
    ttft_ms: Latency | None = None
    tpot_ms: Latency | None = None
    e2e_ms: Latency | None = None
    queue_ms: Latency | None = None
    throughput: Throughput | None = None
    max_rate_rps: float | None = None
    goodput_rps: float | None = None
    slo: Slo
    slo_attainment: float | None = None
    slo_ttft_ms: float | None = Field(default=None, description="TTFT at the SLO percentile")
    slo_tpot_ms: float | None = Field(default=None, description="TPOT at the SLO percentile")
    utilization: float | None = None
    mean_batch: float | None = Field(default=None, description="time-average decode batch per replica")
    preempted_fraction: float | None = None
    rejected_fraction: float | None = None
    cost: CostResult | None = None
    energy: EnergyResult | None = None
    bound: Bounds
    memory: LoadMemory
    method: str = ""
    notes: list[str] = []
    estimate: Estimate = Field(exclude=True, description="closed-loop estimate at the simulated mean batch")


# -- preparation (cacheable: everything that does not depend on the rate or the SLO) -------------------


@dataclass(frozen=True)
class Prepared:
    """The scenario (lengths set from the traffic), its estimate, requests at 1 req/s and the method's set-up:
    the simulator's step table and settings, or the analytic model's load curve and variabilities."""

    scenario: Scenario
    estimate: Estimate
    unit: Requests  # arrivals at a mean rate of 1 req/s
    summary: TrafficSummary
    default_rate_rps: float | None  # a replayed trace's own rate
    table: StepTable | None  # simulate; None when the scenario does not fit
    cfg: SimConfig | None
    method: Method = "simulate"
    curve: LoadCurve | None = None  # analytic; None when the scenario does not fit
    arrival_cv: float = 1.0
    output_cv: float = 0.0

    @property
    def fits(self) -> bool:
        return self.table is not None or self.curve is not None


def check_method(method: str, traffic: LoadSpec) -> None:
    """LoadError unless `method` is known and can model `traffic`'s engine options."""
    if method not in METHODS:
        raise LoadError(f"unknown method {method!r}: choose {' or '.join(METHODS)}")
    if method == "analytic":
        if traffic.spec_k > 0:
            raise LoadError("speculative decoding is modelled only by the simulator: use method simulate")
        if traffic.on_full == "reject":
            raise LoadError(
                "rejection when the KV cache is full is modelled only by the simulator: use method simulate"
            )


def prepare(
    scn: Scenario,
    traffic: LoadSpec,
    *,
    method: Method = "simulate",
    trace: Trace | None = None,
    catalog: Catalog | None = None,
    arch: Architecture | None = None,
    device: Device | None = None,
) -> Prepared:
    """Draw the requests, estimate the scenario and build the simulator's step table, or (analytic) the load
    curve (raises LoadError)."""
    check_method(method, traffic)
    catalog = catalog or load_catalog()
    unit, summary, own_rate = _unit_requests(scn, traffic, trace, catalog)
    if traffic.workload is not None or trace is not None:
        scn = scn.model_copy(
            update={
                "input_len": max(1, round(summary.mean_input_tokens)),
                "output_len": max(1, round(summary.mean_output_tokens)),
            }
        )
    est = estimate(scn, catalog, arch=arch, device=device)
    if not est.fits:
        return Prepared(scn, est, unit, summary, own_rate, None, None, method=method)
    r = resolve(scn, catalog, arch=arch, device=device)
    if method == "analytic":
        curve = load_curve(resolved_input(r))
        if not bool(curve.fits[0]):
            raise LoadError("the scenario does not fit in memory: no room for the KV cache of one request")
        return Prepared(
            scn, est, unit, summary, own_rate, None, None, method="analytic", curve=curve,
            arrival_cv=_arrival_cv(unit, summary), output_cv=_cv(unit.output_tokens),
        )  # fmt: skip
    longest = float(np.max(unit.input_tokens + unit.output_tokens))
    try:
        table, cfg = deployment(
            r,
            input_len=summary.mean_input_tokens,
            output_len=summary.mean_output_tokens,
            max_context=max(min(longest, float(r.arch.max_context)), 2.0),
            on_full=traffic.on_full,
            prefix_hit=summary.prefix_hit,
            spec_k=traffic.spec_k,
            spec_alpha=traffic.spec_alpha,
            draft_cost=traffic.draft_cost,
        )
    except ValidationError as exc:
        raise LoadError(
            "; ".join(f"{e['loc'][-1] if e['loc'] else 'engine'}: {e['msg']}" for e in exc.errors())
        ) from None
    return Prepared(scn, est, unit, summary, own_rate, table, cfg)


def _cv(values: np.ndarray) -> float:
    """Coefficient of variation (population std / mean; 0 for constant or empty values)."""
    v = np.asarray(values, dtype=float)
    mean = float(v.mean()) if v.size else 0.0
    return float(v.std() / mean) if mean > 0 else 0.0


def _arrival_cv(unit: Requests, summary: TrafficSummary) -> float:
    """Inter-arrival cv: the traffic's (Poisson 1, gamma its cv), or a replayed trace's gaps."""
    if summary.cv is not None:
        return float(summary.cv)
    return _cv(np.diff(np.sort(unit.arrival_s)))


def _unit_requests(
    scn: Scenario, traffic: LoadSpec, trace: Trace | None, catalog: Catalog
) -> tuple[Requests, TrafficSummary, float | None]:
    n = traffic.requests
    notes: list[str] = []
    own_rate = None
    try:
        if trace is not None and traffic.workload is not None:
            raise LoadError("give a workload preset or a trace, not both")
        if trace is not None and traffic.rate_rps is None:
            if trace.rows < 2 or trace.span_s <= 0:
                raise LoadError("the trace cannot be replayed: its requests all share one timestamp; give a rate")
            count = min(trace.rows, n)
            req = replay_trace(trace, n=count, prefix_cache_hit=traffic.prefix_hit or 0.0)
            own_rate = req.rate_rps
            if own_rate <= 0:
                raise LoadError("the first requests of the trace share one timestamp; give a rate")
            unit_t = req.arrival_s * own_rate
            req = Requests(unit_t, req.input_tokens, req.output_tokens, req.prefix_cache_hit, req.source, req.notes)
            arrival, cv = "trace", None
            if count < trace.rows:
                notes.append(f"the first {count:,} of the trace's {trace.rows:,} requests are replayed")
        elif traffic.rate_rps is None:
            raise LoadError("give a request rate (or a trace to replay at its own timestamps)")
        elif traffic.workload is not None:
            wl = catalog.workload(traffic.workload)
            req = workload_requests(wl, 1.0, n=n, arrival=traffic.arrival, cv=traffic.cv, seed=traffic.seed)
            arrival = traffic.arrival or wl.arrival.family
            cv = traffic.cv if traffic.cv is not None else (wl.arrival.cv if arrival == wl.arrival.family else 1.0)
            if traffic.prefix_hit is not None:
                req = Requests(req.arrival_s, req.input_tokens, req.output_tokens, traffic.prefix_hit, req.source)
        else:
            arrival = traffic.arrival or "poisson"
            cv = traffic.cv if traffic.cv is not None else 1.0
            req = requests(
                1.0,
                n=n,
                arrival=arrival,
                cv=cv,
                input_tokens=scn.input_len,
                output_tokens=scn.output_len,
                trace=trace,
                prefix_cache_hit=traffic.prefix_hit or 0.0,
                seed=traffic.seed,
            )
    except TrafficError as exc:
        raise LoadError(str(exc)) from None
    if arrival == "poisson":
        cv = 1.0
    if trace is not None:
        notes.extend(trace.notes)
    hit = min(req.prefix_cache_hit, 0.99)
    if arrival == "trace":
        source = f"replay of a {trace.format} trace at its own timestamps"
    else:
        process = "Poisson arrivals" if arrival == "poisson" else f"gamma arrivals (cv {cv:g})"
        if trace is not None:
            lengths = f"lengths drawn from a {trace.format} trace"
        elif traffic.workload is not None:
            lengths = f"lengths of workload preset {traffic.workload}"
        else:
            lengths = f"{scn.input_len:,} input / {scn.output_len:,} output tokens"
        source = f"{process}, {lengths}"
    summary = TrafficSummary(
        source=source,
        arrival=arrival,
        cv=cv,
        requests=req.n,
        mean_input_tokens=float(np.mean(req.input_tokens)),
        mean_output_tokens=float(np.mean(req.output_tokens)),
        prefix_hit=hit,
        notes=notes + list(req.notes),
    )
    return req, summary, own_rate


# -- the three simulations --------------------------------------------------------------------------


def operating_point(prep: Prepared, rate_rps: float) -> SimResult:
    """Simulate all requests at `rate_rps` (whole deployment)."""
    _need_fit(prep)
    u = prep.unit
    return simulate(prep.table, prep.cfg, u.arrival_s / rate_rps, u.input_tokens, u.output_tokens)


def max_rate(prep: Prepared) -> float:
    """Saturation throughput of the deployment (req/s): one replica's, times the replicas."""
    _need_fit(prep)
    u, k = prep.unit, min(prep.unit.n, SEARCH_REQUESTS)
    one = prep.cfg.model_copy(update={"replicas": 1})
    return max_rate_sim(prep.table, one, u.input_tokens[:k], u.output_tokens[:k]) * prep.cfg.replicas


def goodput(prep: Prepared, slo: Slo, max_rate_rps: float) -> float:
    """Highest rate in [0, max_rate_rps] at which slo.pct% of requests meet both objectives (bisection)."""
    _need_fit(prep)
    u, k = prep.unit, min(prep.unit.n, SEARCH_REQUESTS)
    if max_rate_rps <= 0:
        return 0.0
    return goodput_sim(
        prep.table,
        prep.cfg,
        u.arrival_s[:k],
        u.input_tokens[:k],
        u.output_tokens[:k],
        slo.ttft_ms / MS,
        slo.tpot_ms / MS,
        pct=slo.pct,
        hi_rps=max_rate_rps,
        iterations=SEARCH_ITERATIONS,
    )


def _need_fit(prep: Prepared, method: Method = "simulate") -> None:
    if prep.method != method:
        raise LoadError(f"these requests were prepared for the {prep.method} method, not {method}")
    if not prep.fits:
        raise LoadError(f"the scenario does not fit: {prep.estimate.message}")


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


@dataclass(frozen=True)
class Simulated:
    """The simulate method's three simulations at one rate, run apart so that a caller can cache each."""

    sim: SimResult  # operating_point
    max_rate_rps: float  # max_rate
    goodput_rps: float  # goodput


def assemble(
    prep: Prepared,
    rate_rps: float,
    slo: Slo,
    pricing: Pricing | None = None,
    region: str = DEFAULT_REGION,
    *,
    simulated: Simulated | None = None,
    catalog: Catalog | None = None,
    arch: Architecture | None = None,
    device: Device | None = None,
    strict: bool = True,
) -> LoadEstimate:
    """The LoadEstimate by the method `prep` was prepared for, with cost and energy at that operating point.

    simulate: from `simulated` (the three simulations); analytic: the queueing model is evaluated here.
    """
    catalog = catalog or load_catalog()
    if prep.method == "analytic":
        max_rate_rps, goodput_rps = analytic_max_rate(prep), analytic_goodput(prep, slo)
        run = _analytic(prep, rate_rps, analytic_point(prep, rate_rps, slo), max_rate_rps, slo)
    elif simulated is None:
        raise LoadError("the simulate method needs its three simulations (llmcap.load.rate.Simulated)")
    else:
        max_rate_rps, goodput_rps = simulated.max_rate_rps, simulated.goodput_rps
        run = _simulated(prep, rate_rps, simulated.sim, max_rate_rps, slo)
    scn = prep.scenario
    at = estimate(scn.model_copy(update={"concurrency": max(1, round(run.mean_batch)) * scn.replicas}), catalog,
                  arch=arch, device=device)  # fmt: skip
    tp = run.throughput
    point = OperatingPoint(
        requests_per_s=tp.requests_per_s,
        input_tokens_per_s=tp.input_tokens_per_s,
        output_tokens_per_s=tp.output_tokens_per_s,
        prefill=at.prefill,
        decode=at.decode,
        busy_fraction=run.utilization,
        capacity_used=min(rate_rps / max_rate_rps, 1.0) if max_rate_rps > 0 else 1.0,
    )
    pc = point_costs(at, point, pricing, region, catalog=catalog, device=device, strict=strict)
    ttft, tpot, e2e, queue = run.latencies
    return LoadEstimate(
        fits=True,
        status="ok",
        message="fits",
        scenario=scn,
        model_id=prep.estimate.model_id,
        hardware_name=prep.estimate.hardware_name,
        devices=scn.devices,
        rate_rps=rate_rps,
        stable=run.stable,
        traffic=prep.summary,
        ttft_ms=ttft,
        tpot_ms=tpot,
        e2e_ms=e2e,
        queue_ms=queue,
        throughput=tp,
        max_rate_rps=max_rate_rps,
        goodput_rps=goodput_rps,
        slo=slo,
        slo_attainment=run.attainment,
        slo_ttft_ms=run.slo_ttft_ms,
        slo_tpot_ms=run.slo_tpot_ms,
        utilization=run.utilization,
        mean_batch=run.mean_batch,
        preempted_fraction=run.preempted,
        rejected_fraction=run.rejected,
        cost=pc.cost,
        energy=pc.energy,
        bound=Bounds(prefill=at.prefill.bound, decode=at.decode.bound),
        memory=_memory(prep.estimate, at),
        method=run.method,
        notes=list(prep.estimate.notes) + list(run.notes) + list(pc.notes),
        estimate=at,
    )


def _memory(base: Estimate, at: Estimate) -> LoadMemory:
    return LoadMemory(
        capacity_gb=base.memory.capacity_gb,
        weights_gb_per_device=base.memory.weights_gb,
        kv_gb_per_device=at.memory.kv_gb,
        max_concurrency=base.memory.max_concurrency,
    )


def not_fit(prep: Prepared, slo: Slo, rate_rps: float | None) -> LoadEstimate:
    est = prep.estimate
    return LoadEstimate(
        fits=False,
        status="does_not_fit",
        message=est.message,
        scenario=prep.scenario,
        model_id=est.model_id,
        hardware_name=est.hardware_name,
        devices=est.devices,
        rate_rps=rate_rps,
        traffic=prep.summary,
        slo=slo,
        bound=Bounds(prefill=None, decode=None),
        memory=_memory(est, est),
        method=prep.method,
        notes=list(est.notes),
        estimate=est,
    )


def estimate_load(
    scn: Scenario,
    traffic: LoadSpec,
    slo: Slo | None = None,
    pricing: Pricing | None = None,
    region: str = DEFAULT_REGION,
    *,
    method: Method = "simulate",
    trace: Trace | None = None,
    catalog: Catalog | None = None,
    arch: Architecture | None = None,
    device: Device | None = None,
    strict: bool = True,
) -> LoadEstimate:
    """`scn` under `traffic` by the simulator or the analytic model (`method`); see the module docstring.

    Raises LoadError/CostError/UnknownIdError for inputs that cannot be used (strict=False: a price that
    cannot be found is a note, cost None); a scenario that does not fit returns fits=False with the reason.
    """
    catalog = catalog or load_catalog()
    slo = slo or Slo()
    prep = prepare(scn, traffic, method=method, trace=trace, catalog=catalog, arch=arch, device=device)
    rate = traffic.rate_rps if traffic.rate_rps is not None else prep.default_rate_rps
    if not prep.fits:
        return not_fit(prep, slo, rate)
    simulated = None
    if method != "analytic":
        top = max_rate(prep)
        good = goodput(prep, slo, top)
        simulated = Simulated(operating_point(prep, rate), top, good)
    return assemble(prep, rate, slo, pricing, region, simulated=simulated, catalog=catalog, arch=arch, device=device,
                    strict=strict)  # fmt: skip
