"""Preparation for serving at a rate (llmcap.load.rate steps 1-2): the requests at 1 req/s, the scenario's
estimate, and the method's set-up (the simulator's step table or the analytic load curve); cacheable,
as nothing here depends on the rate or the SLO."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from pydantic import ValidationError

from llmcap.catalog.loader import Catalog, load_catalog
from llmcap.estimate.resolve import resolve
from llmcap.estimate.single import Estimate, estimate
from llmcap.estimate.sweep import resolved_input
from llmcap.load.budget import budget_note, cap_lengths
from llmcap.load.lora import adapter_gb_per_device, adapter_read_s, kv_tokens_left, step_overhead_s, with_lora
from llmcap.load.prefix_cache import CacheSpec
from llmcap.load.queueing import LoadCurve, load_curve
from llmcap.load.rate_sessions import (
    SessionSetup,
    check_offload_needs_sessions,
    computed_curve,
    draw_sessions,
    kv_per_token,
    sessions_of,
    setup,
)
from llmcap.load.rate_types import METHODS, LoadError, Method, TrafficSummary
from llmcap.load.samples import computed_prompt, expand, expand_sessions, slowest_output_tokens
from llmcap.load.sessions import SessionRequests
from llmcap.load.simulate import SimConfig, deployment
from llmcap.load.steptable import StepTable
from llmcap.load.trace import Trace
from llmcap.load.traffic import Requests, TrafficError, replay_trace, requests, workload_requests
from llmcap.scenario import Scenario, Traffic

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
    sessions: SessionSetup | None = None  # multi-turn sessions and their prefix cache (llmcap.load.rate_sessions)
    sweep_input: object | None = None  # analytic with sessions: the SweepInput the load curve came from
    samples: int = 1  # generations per prompt (llmcap.load.samples); unit holds every sample
    lora_gb_per_device: float | None = None  # resident LoRA adapters (llmcap.load.lora)
    sample_cache: CacheSpec | None = None  # the samples' shared prompts, for the simulator
    answer_output_tokens: float | None = None  # samples: E[longest of a prompt's N outputs] (llmcap.load.samples)

    def cache(self, k: int | None = None) -> CacheSpec | None:
        """The simulator's prefix cache spec (sessions or samples) of the first k requests."""
        if self.sessions is not None:
            return self.sessions.cache(k)
        if self.sample_cache is not None:
            return self.sample_cache if k is None else self.sample_cache.head(k)
        return None

    @property
    def fits(self) -> bool:
        return self.table is not None or self.curve is not None


def check_method(method: str, traffic: Traffic) -> None:
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
    traffic: Traffic,
    *,
    method: Method = "simulate",
    trace: Trace | None = None,
    catalog: Catalog | None = None,
) -> Prepared:
    """Draw the requests, estimate the scenario and build the simulator's step table, or (analytic) the load
    curve (raises LoadError)."""
    check_method(method, traffic)
    catalog = catalog or load_catalog()
    unit, summary, own_rate, sreq = _unit_requests(scn, traffic, trace, catalog)
    n_samples = traffic.samples or (catalog.workload(traffic.workload).samples if traffic.workload else 1)
    sample_cache, forked, longest = None, None, None
    if n_samples > 1:
        longest = slowest_output_tokens(unit.output_tokens, n_samples, traffic.seed)
        if sreq is None:
            unit, sample_cache = expand(unit, n_samples, traffic.seed)
            longest = slowest_output_tokens(unit.output_tokens, n_samples, grouped=True)
        elif method != "analytic":  # the simulator runs every sample; the analytic model the turns at N x the rate
            sreq, forked = expand_sessions(sreq, n_samples, traffic.seed)
            unit = Requests(sreq.arrivals(1.0), sreq.input_tokens, sreq.output_tokens, 0.0, unit.source)
        summary = summary.model_copy(update={"notes": list(summary.notes) + [
            f"{n_samples} samples per prompt: the rate counts prompts (answers), throughput counts samples; the "
            "prompt is prefilled once and shared (its KV counted per sample, conservative)"
            + ("; each turn's prompt with its history is prefilled once, its samples decode, and the next turn "
               "carries one chosen answer (a reply of the same length distribution)" if sreq is not None else "")
        ]})  # fmt: skip
    if traffic.workload is not None or trace is not None or sreq is not None or traffic.max_output_tokens:
        scn = scn.model_copy(
            update={
                "input_len": max(1, round(summary.mean_input_tokens)),
                "output_len": max(1, round(summary.mean_output_tokens)),
            }
        )
    est = estimate(scn, catalog)
    if not est.fits:
        return Prepared(scn, est, unit, summary, own_rate, None, None, method=method)
    r = resolve(scn, catalog)
    kv_left, lora_gb, lora_opts = 1.0, None, {}  # share of the KV cache the adapters leave
    if traffic.lora is not None:
        per, kv_tokens = kv_per_token(resolved_input(r), summary.mean_input_tokens, summary.mean_output_tokens)
        kv_left = kv_tokens_left(kv_tokens, per, r, traffic.lora) / kv_tokens
        lora_gb = traffic.lora.adapters * adapter_gb_per_device(r, traffic.lora)
        summary = summary.model_copy(update={"notes": list(summary.notes) + [
            f"LoRA: {traffic.lora.adapters} adapters of rank {traffic.lora.rank} ({traffic.lora.targets}) take "
            f"{lora_gb:,.3g} GB per device, {1 - kv_left:.1%} of the KV cache; batched adapter kernels add "
            f"{adapter_read_s(r, traffic.lora) * 1e3:.3g} ms to a step per distinct adapter in it ("
            + ("simulated step by step" if method != "analytic" else
               f"analytic: at the full batch, {step_overhead_s(r, traffic.lora) * 1e3:.3g} ms, conservative at low")
            + "; estimated, llmcap.load.lora)"
        ]})  # fmt: skip
        lora_opts = {"lora_adapters": traffic.lora.adapters, "lora_s_per_adapter": adapter_read_s(r, traffic.lora)}
        if method == "analytic":
            r = with_lora(r, traffic.lora)
    ss = None
    if sreq is not None:
        ss = setup(sreq, traffic, resolved_input(r), r.device, scn.engine, catalog, scn.devices_per_replica)
        ss = dataclasses.replace(ss, kv_tokens=ss.kv_tokens * kv_left, forked=forked)
        summary = summary.model_copy(update={"notes": list(summary.notes) + list(ss.notes)})
    if method == "analytic":
        inp = resolved_input(r)
        curve = load_curve(inp)
        if not bool(curve.fits[0]):
            raise LoadError("the scenario does not fit in memory: no room for the KV cache of one request")
        if kv_left < 1.0:  # the adapters' memory lowers the in-flight limit
            curve = computed_curve(inp, summary.mean_input_tokens, max(float(curve.n[0, -1]) * kv_left, 1.0))
        if n_samples > 1:  # each sample's prompt work, the in-flight limit of whole contexts
            curve = computed_curve(inp, computed_prompt(summary.mean_input_tokens, n_samples), float(curve.n[0, -1]))
        return Prepared(
            scn, est, unit, summary, own_rate, None, None, method="analytic", curve=curve,
            arrival_cv=_arrival_cv(unit, summary), output_cv=_cv(unit.output_tokens), sessions=ss, sweep_input=inp,
            samples=n_samples, lora_gb_per_device=lora_gb, answer_output_tokens=longest,
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
            **lora_opts,
        )
    except ValidationError as exc:
        raise LoadError(
            "; ".join(f"{e['loc'][-1] if e['loc'] else 'engine'}: {e['msg']}" for e in exc.errors())
        ) from None
    if kv_left < 1.0:
        cfg = cfg.model_copy(update={"kv_capacity_tokens": cfg.kv_capacity_tokens * kv_left})
    return Prepared(scn, est, unit, summary, own_rate, table, cfg, sessions=ss, samples=n_samples,
                    sample_cache=sample_cache, lora_gb_per_device=lora_gb)  # fmt: skip


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
    scn: Scenario, traffic: Traffic, trace: Trace | None, catalog: Catalog
) -> tuple[Requests, TrafficSummary, float | None, SessionRequests | None]:
    n = traffic.requests
    notes: list[str] = []
    own_rate = None
    sreq = None
    wl = catalog.workload(traffic.workload) if traffic.workload is not None else None
    spec = sessions_of(traffic, wl)
    try:
        if trace is not None and traffic.workload is not None:
            raise LoadError("give a workload preset or a trace, not both")
        if spec is not None and trace is not None:
            raise LoadError("sessions (--turns) draw their own requests: give them without a trace")
        if spec is None:
            check_offload_needs_sessions(traffic)
        if spec is not None:
            if traffic.rate_rps is None:
                raise LoadError("give a request rate for sessions")
            arrival = traffic.arrival or (wl.arrival.family if wl else "poisson")
            cv = traffic.cv if traffic.cv is not None else (wl.arrival.cv if wl and arrival == wl.arrival.family
                                                             else 1.0)  # fmt: skip
            out = _capped(wl.output_tokens if wl is not None else scn.output_len, traffic.max_output_tokens)
            sreq = draw_sessions(spec, out, n, arrival, 1.0 if arrival == "poisson" else cv, traffic.seed)
            req = Requests(sreq.arrivals(1.0), sreq.input_tokens, sreq.output_tokens, 0.0,
                           f"sessions of {spec.turns.mean:g} turns on average")  # fmt: skip
        elif trace is not None and traffic.rate_rps is None:
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
    cap = traffic.max_output_tokens
    if cap is not None and sreq is None:  # the budget cuts each sample's output (llmcap.load.budget)
        capped = cap_lengths(req.output_tokens, cap)
        notes.append(budget_note(req.output_tokens, capped, cap))
        req = Requests(req.arrival_s, req.input_tokens, capped, req.prefix_cache_hit, req.source, req.notes)
    elif cap is not None:
        notes.append(f"token budget {cap:,} output tokens per sample: each reply drawn at most {cap:,} tokens, and "
                     "the history carries the cut reply")  # fmt: skip
    if arrival == "poisson":
        cv = 1.0
    if trace is not None:
        notes.extend(trace.notes)
    hit = min(req.prefix_cache_hit, 0.99)
    if arrival == "trace":
        source = f"replay of a {trace.format} trace at its own timestamps"
    else:
        process = "Poisson arrivals" if arrival == "poisson" else f"gamma arrivals (cv {cv:g})"
        if sreq is not None:
            lengths = (
                f"sessions of {spec.turns.mean:g} turns on average, {spec.new_tokens:,} new tokens per turn, "
                f"{spec.system_prompt_tokens:,}-token system prompt, {spec.think_s:g} s between turns"
            )
        elif trace is not None:
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
    return req, summary, own_rate, sreq


def _capped(out, cap: int | None):
    """A session's reply lengths under a token budget: a distribution's max (sample_lengths clips there), or a
    fixed length's minimum with the cap."""
    if cap is None:
        return out
    if isinstance(out, (int, float)):
        return min(out, cap)
    return out.model_copy(update={"max": min(out.max, cap), "min": min(out.min, cap)})


def _need_fit(prep: Prepared, method: Method = "simulate") -> None:
    if prep.method != method:
        raise LoadError(f"these requests were prepared for the {prep.method} method, not {method}")
    if not prep.fits:
        raise LoadError(f"the scenario does not fit: {prep.estimate.message}")
