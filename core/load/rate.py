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

import dataclasses
import math
from typing import Literal

from pydantic import Field

from llmcap.catalog.loader import Catalog, load_catalog
from llmcap.catalog.schema import Frozen
from llmcap.economics.energy import DEFAULT_REGION
from llmcap.economics.operating_point import CostResult, EnergyResult, OperatingPoint, point_costs
from llmcap.estimate.single import Estimate, estimate
from llmcap.load.lora_evidence import evidence_note
from llmcap.load.rate_analytic import _analytic, analytic_goodput, analytic_max_rate, analytic_point
from llmcap.load.rate_prepare import Prepared, prepare
from llmcap.load.rate_sessions import CacheResult, analytic_cache, saturation_curve, simulated_cache
from llmcap.load.rate_simulate import Simulated, _simulated, goodput, max_rate, operating_point
from llmcap.load.rate_types import Latency, LoadError, Method, Throughput, TrafficSummary
from llmcap.load.samples import answer_seconds
from llmcap.load.trace import Trace
from llmcap.scenario import Pricing, Scenario, Slo, Traffic


class Bounds(Frozen):
    prefill: str | None
    decode: str | None


class LoadMemory(Frozen):
    """Per device, with the KV cache at the simulated mean batch."""

    capacity_gb: float
    weights_gb_per_device: float
    kv_gb_per_device: float
    max_concurrency: int


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
    prefix_cache: CacheResult | None = Field(default=None, description="sessions: the prefix cache at the rate")
    prefix_hit_rate: float | None = Field(default=None, description="prompt tokens served from the prefix cache")
    prefill_tokens_per_request: float | None = Field(default=None, description="prompt tokens computed, mean")
    kv_resident_sessions: float | None = Field(default=None, description="idle session histories in device KV")
    kv_offload_gb: float | None = Field(default=None, description="KV offload tier(s) per replica, GB")
    seconds_per_answer: float | None = Field(default=None, description="mean seconds until an answer's N samples end")
    usd_per_answer: float | None = Field(default=None, description="at this rate: samples x $ per request")
    usd_per_answer_at_max_rate: float | None = Field(default=None, description="$/h / answers per hour at max rate")
    joules_per_answer: float | None = None
    samples: int = Field(default=1, description="generations per prompt; one answer = one prompt's samples")
    lora_memory_gb_per_device: float | None = Field(default=None, description="resident LoRA adapters per device")
    notes: list[str] = []
    estimate: Estimate = Field(exclude=True, description="closed-loop estimate at the simulated mean batch")


def assemble(
    prep: Prepared,
    rate_rps: float,
    slo: Slo,
    pricing: Pricing | None = None,
    region: str = DEFAULT_REGION,
    *,
    simulated: Simulated | None = None,
    catalog: Catalog | None = None,
    strict: bool = True,
) -> LoadEstimate:
    """The LoadEstimate by the method `prep` was prepared for, with cost and energy at that operating point.

    simulate: from `simulated` (the three simulations); analytic: the queueing model is evaluated here.
    """
    catalog = catalog or load_catalog()
    cache, sat = None, None
    if prep.method == "analytic" and prep.sessions is not None:
        reps = prep.scenario.replicas
        sat = dataclasses.replace(prep, curve=saturation_curve(prep.sessions, prep.sweep_input, prep.curve, reps,
                                                               prep.samples))  # fmt: skip
        cache, curve = analytic_cache(prep.sessions, prep.sweep_input, prep.curve, rate_rps, reps, prep.arrival_cv,
                                      prep.output_cv, prep.samples)  # fmt: skip
        prep = dataclasses.replace(prep, curve=curve)
    if prep.method == "analytic":  # with samples the queue sees N requests per prompt; rates are in prompts/s
        n, per_sample = prep.samples, rate_rps * prep.samples
        top = analytic_max_rate(sat or prep)
        max_rate_rps, goodput_rps = top / n, min(analytic_goodput(prep, slo), top) / n
        run = _analytic(prep, per_sample, analytic_point(prep, per_sample, slo), top, slo)
    elif simulated is None:
        raise LoadError("the simulate method needs its three simulations (llmcap.load.rate.Simulated)")
    else:
        max_rate_rps, goodput_rps = simulated.max_rate_rps, simulated.goodput_rps
        run = _simulated(prep, rate_rps, simulated.sim, max_rate_rps, slo)
        if prep.sessions is not None:
            cache = simulated_cache(prep.sessions, simulated.sim, prep.scenario.replicas)
    scn = prep.scenario
    at = estimate(scn.model_copy(update={"concurrency": max(1, round(run.mean_batch)) * scn.replicas}), catalog)
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
    pc = point_costs(at, point, pricing, region, catalog=catalog, strict=strict)
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
        notes=list(prep.estimate.notes) + list(run.notes) + list(pc.notes)
        + _workload_notes(cache, prep.lora_gb_per_device is not None),
        estimate=at,
        **_workload_fields(cache, _answer_s(prep, run, simulated), pc.cost, pc.energy,
                           prep.summary.mean_output_tokens, prep.samples, max_rate_rps),  # fmt: skip
        lora_memory_gb_per_device=prep.lora_gb_per_device,
    )


def _answer_s(prep: Prepared, run, simulated: Simulated | None) -> float:
    """Mean seconds per answer: the slowest of a prompt's samples (simulator: measured; analytic: mean TTFT +
    (E[longest of the N outputs] - 1) x mean TPOT, llmcap.load.samples)."""
    ttft, tpot, e2e, _ = run.latencies
    if prep.samples == 1 or not math.isfinite(e2e.mean):
        return e2e.mean / 1e3
    if simulated is None:
        if prep.answer_output_tokens is None:
            return e2e.mean / 1e3
        return (ttft.mean + max(prep.answer_output_tokens - 1.0, 0.0) * tpot.mean) / 1e3
    return answer_seconds(simulated.sim.e2e_s, prep.samples)


def _workload_fields(cache: CacheResult | None, answer_s: float, cost, energy, output_tokens: float, samples: int,
                     max_rate_rps: float) -> dict:  # fmt: skip
    """The per-answer figures (one answer = one prompt's `samples` generations) and the cache's keys."""
    out: dict = {
        "samples": samples,
        "seconds_per_answer": answer_s if math.isfinite(answer_s) else None,
        "usd_per_answer": cost.usd_per_request * samples if cost is not None else None,
        "usd_per_answer_at_max_rate": (
            cost.usd_per_hour / 3600.0 / max_rate_rps if cost is not None and max_rate_rps > 0 else None
        ),
        "joules_per_answer": (
            energy.joules_per_output_token * output_tokens * samples
            if energy is not None and energy.joules_per_output_token is not None
            and math.isfinite(energy.joules_per_output_token) else None
        ),
    }  # fmt: skip
    if cache is not None:
        out |= {
            "prefix_cache": cache,
            "prefix_hit_rate": cache.prefix_hit_rate,
            "prefill_tokens_per_request": cache.prefill_tokens_per_request,
            "kv_resident_sessions": cache.kv_resident_sessions,
            "kv_offload_gb": cache.kv_offload_gb,
        }
    return out


def _workload_notes(cache: CacheResult | None, lora: bool = False) -> list[str]:
    notes = [evidence_note()] if lora else ["lora_memory_gb_per_device is null: no LoRA adapters (--lora-adapters)"]
    if cache is None:
        notes.append(
            "prefix_hit_rate, prefill_tokens_per_request, kv_resident_sessions and kv_offload_gb are null: they "
            "describe sessions (--turns or a session workload preset)"
        )
    else:
        notes.append(
            f"prefix cache ({cache.method}): {cache.prefix_hit_rate:.1%} of prompt tokens served from the cache, "
            f"{cache.prefill_tokens_per_request:,.0f} of {cache.prompt_tokens_per_request:,.0f} prompt tokens "
            "computed per request"
        )
    return notes


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
    traffic: Traffic,
    slo: Slo | None = None,
    pricing: Pricing | None = None,
    region: str = DEFAULT_REGION,
    *,
    method: Method = "simulate",
    trace: Trace | None = None,
    catalog: Catalog | None = None,
    strict: bool = True,
) -> LoadEstimate:
    """`scn` under `traffic` by the simulator or the analytic model (`method`); see the module docstring.

    Raises LoadError/CostError/UnknownIdError for inputs that cannot be used (strict=False: a price that
    cannot be found is a note, cost None); a scenario that does not fit returns fits=False with the reason.
    """
    catalog = catalog or load_catalog()
    slo = slo or Slo()
    prep = prepare(scn, traffic, method=method, trace=trace, catalog=catalog)
    rate = traffic.rate_rps if traffic.rate_rps is not None else prep.default_rate_rps
    if not prep.fits:
        return not_fit(prep, slo, rate)
    simulated = None
    if method != "analytic":
        top = max_rate(prep)
        good = goodput(prep, slo, top)
        simulated = Simulated(operating_point(prep, rate), top, good)
    return assemble(prep, rate, slo, pricing, region, simulated=simulated, catalog=catalog, strict=strict)
