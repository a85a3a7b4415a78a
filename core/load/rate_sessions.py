"""Sessions, prefix caching and KV offload in serving at a rate (llmcap.load.rate): the set-up both methods share
(llmcap.load.sessions' requests, the engine's prefix cache, the offload tiers) and what each method says about
the cache at the rate.

simulate: the simulator's prefix cache decides every request's hit (llmcap.load.prefix_cache).
analytic: Che's hit rate (llmcap.load.sessions.analytic_hit_rate) with the device KV left over by the running
requests (mean batch x mean context at the rate), then the load curve again with the prompt tokens actually
computed (capacity still limited by the whole context): twice, as the hit rate and the batch depend on each other.
The maximum rate comes from a second curve with the hit rate at saturation, where n_max requests hold the KV
and leave little for idle histories (as the simulator's saturation run finds); goodput is capped by it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from llmcap.catalog.loader import Catalog
from llmcap.catalog.schema import Frozen, SessionSpec, Workload
from llmcap.estimate.sweep import SweepInput, evaluate, expand
from llmcap.load.offload import offload_tiers
from llmcap.load.prefix_cache import CacheSpec, Tier
from llmcap.load.queueing import LoadCurve, analyze, load_curve
from llmcap.load.rate_types import LoadError
from llmcap.load.samples import computed_prompt
from llmcap.load.sessions import SessionRequests, analytic_hit_rate, session_requests
from llmcap.load.simulate import SimResult
from llmcap.scenario import Traffic

ANALYTIC_PASSES = 2


class CacheResult(Frozen):
    """The prefix cache at the rate (JSON keys of `llmcap estimate --rate`)."""

    prefix_cache: bool
    prefix_hit_rate: float  # prompt tokens served from the cache / prompt tokens
    offload_hit_rate: float  # of which reloaded from an offload tier
    prefill_tokens_per_request: float  # prompt tokens computed, mean
    prompt_tokens_per_request: float
    kv_resident_sessions: float | None  # idle session histories held in device memory, whole deployment
    kv_offload_gb: float  # offload tier size per replica (CPU + SSD)
    kv_offload_tokens: float  # tokens the tiers add to the prefix cache, per replica
    reload_ms_mean: float  # mean reload time of the requests reloaded from a tier (0: none)
    method: str


@dataclass(frozen=True)
class SessionSetup:
    """Rate-independent session set-up of a prepared scenario."""

    requests: SessionRequests
    prefix_cache: bool
    tiers: tuple[Tier, ...]
    kv_tokens: float  # device KV capacity of a replica, tokens
    offload_gb: float
    notes: tuple[str, ...] = ()
    forked: np.ndarray | None = None  # samples (llmcap.load.samples.expand_sessions): a later sample of a turn

    @property
    def offload_tokens(self) -> float:
        return float(sum(t.capacity_tokens for t in self.tiers))

    def cache(self, k: int | None = None) -> CacheSpec | None:
        """The simulator's CacheSpec for the first k requests (None when prefix caching is off; with samples, the
        samples' shared prompts only)."""
        r, sl = self.requests, slice(0, k)
        forked = None if self.forked is None else self.forked[sl]
        if not self.prefix_cache:
            return None if forked is None else CacheSpec(r.session[sl], np.zeros_like(r.history_tokens[sl]), 0, (),
                                                         forked)  # fmt: skip
        return CacheSpec(r.session[sl], r.history_tokens[sl], r.system_tokens, self.tiers, forked)


def sessions_of(traffic: Traffic, wl: Workload | None) -> SessionSpec | None:
    """The sessions spec of the traffic, else the workload preset's (None: independent requests)."""
    if traffic.sessions is not None:
        return traffic.sessions
    return wl.sessions if wl is not None else None


def draw_sessions(spec, output, n: int, arrival: str, cv: float, seed: int) -> SessionRequests:
    return session_requests(spec, output, n, arrival=arrival, cv=cv, seed=seed)


def prefix_cache_on(traffic: Traffic, engine: str, catalog: Catalog) -> bool:
    """--prefix-cache on|off, else the engine's default (catalogs/engines.yaml prefix_cache.default)."""
    if traffic.prefix_cache is not None:
        return traffic.prefix_cache
    return bool((catalog.engines.get(engine, {}).get("prefix_cache") or {}).get("default", False))


def kv_per_token(inp: SweepInput, input_len: float, output_len: float) -> tuple[float, float]:
    """KV bytes per token on one device and the replica's KV capacity in tokens (as llmcap.load.simulate)."""
    one = np.array([float(input_len)]), np.array([float(output_len)])
    res = evaluate(expand(inp, np.array([0]), input_len=one[0], output_len=one[1]))
    per = float(res.kv_bytes_per_seq[0]) / (float(input_len) + float(output_len))
    return per, float(res.kv_room_bytes[0]) / per


def setup(req: SessionRequests, traffic: Traffic, inp: SweepInput, device, engine: str, catalog: Catalog,
          devices_per_replica: int) -> SessionSetup:  # fmt: skip
    on = prefix_cache_on(traffic, engine, catalog)
    per, kv_tokens = kv_per_token(inp, float(req.input_tokens.mean()), float(req.output_tokens.mean()))
    offload = traffic.kv_offload_cpu_gb + traffic.kv_offload_ssd_gb
    tiers, notes = (), []
    if offload > 0:
        if not on:
            raise LoadError("--kv-offload extends the prefix cache: it needs --prefix-cache on")
        tiers, notes = offload_tiers(device, traffic.kv_offload_cpu_gb, traffic.kv_offload_ssd_gb, per,
                                     devices_per_replica)  # fmt: skip
    ev = (catalog.engines.get(engine, {}).get("prefix_cache") or {}).get("eviction")
    if on and ev == "slot":
        notes.append(f"{engine} keeps one cached conversation per server slot; modelled as an LRU cache of its KV")
    return SessionSetup(req, on, tuple(tiers), kv_tokens, offload, tuple(notes))


def check_offload_needs_sessions(traffic: Traffic) -> None:
    if traffic.kv_offload_cpu_gb + traffic.kv_offload_ssd_gb > 0:
        raise LoadError("--kv-offload holds session histories: give sessions (--turns, or a session workload preset)")


# -- per method -------------------------------------------------------------------------------------


def simulated_cache(ss: SessionSetup, sim: SimResult, replicas: int) -> CacheResult:
    """The simulator's per-request cache hits, summed (with samples, over each turn's first sample: the others
    share its prompt)."""
    prompt = sim.input_tokens.astype(float)
    if sim.cached_tokens is None:
        cached = np.zeros_like(prompt)
        reload = np.zeros_like(prompt)
        tier = np.full(prompt.size, -1)
    else:
        cached = np.nan_to_num(sim.cached_tokens, nan=0.0)
        reload, tier = sim.reload_s, sim.hit_tier
    if ss.forked is not None:
        first = ~ss.forked[: prompt.size]
        prompt, cached, reload, tier = prompt[first], cached[first], reload[first], tier[first]
    if not ss.prefix_cache:
        cached = np.zeros_like(prompt)
        tier = np.full(prompt.size, -1)
    from_tier = tier > 0
    total = float(prompt.sum())
    return CacheResult(
        prefix_cache=ss.prefix_cache,
        prefix_hit_rate=float(cached.sum()) / total if total else 0.0,
        offload_hit_rate=float(cached[from_tier].sum()) / total if total else 0.0,
        prefill_tokens_per_request=float((prompt - cached).mean()),
        prompt_tokens_per_request=float(prompt.mean()),
        kv_resident_sessions=sim.resident_sessions,
        kv_offload_gb=ss.offload_gb,
        kv_offload_tokens=ss.offload_tokens,
        reload_ms_mean=float(reload[from_tier].mean()) * 1e3 if from_tier.any() else 0.0,
        method="simulated request by request (LRU per replica, session-affine routing)",
    )


def analytic_cache(
    ss: SessionSetup, inp: SweepInput, curve: LoadCurve, rate_rps: float, replicas: int, arrival_cv: float,
    output_cv: float, samples: int = 1,
) -> tuple[CacheResult, LoadCurve]:  # fmt: skip
    """Che's hit rate at the rate and the load curve of the prompt tokens actually computed (module docstring).
    With `samples` N per turn (llmcap.load.samples) the queue sees N x the rate (prompts/s) and each sample
    computes (computed prompt + N - 1) / N tokens; the cache sees the turns."""
    r = ss.requests
    prompt = float(r.input_tokens.mean())
    held = prompt + float(r.output_tokens.mean()) / 2
    if not ss.prefix_cache:
        res = CacheResult(
            prefix_cache=False, prefix_hit_rate=0.0, offload_hit_rate=0.0, prefill_tokens_per_request=prompt,
            prompt_tokens_per_request=prompt, kv_resident_sessions=0.0, kv_offload_gb=0.0, kv_offload_tokens=0.0,
            reload_ms_mean=0.0, method="prefix caching off: every prompt is computed whole",
        )  # fmt: skip
        return res, curve
    n_max = float(curve.n[0, -1])
    cur = curve
    hit = None
    for _ in range(ANALYTIC_PASSES):
        q = analyze(cur, rate_rps * samples, arrival_cv=arrival_cv, output_cv=output_cv)
        stable = bool(q.stable[0])
        batch = float(q.mean_batch[0]) if stable else n_max
        e2e = float(q.e2e_s[0]) if stable else math.inf
        free = max(ss.kv_tokens - batch * held, 0.0)
        hit = analytic_hit_rate(r, rate_rps / replicas, free, e2e_s=e2e, offload_tokens=ss.offload_tokens)
        cur = computed_curve(inp, computed_prompt(max(hit.prefill_tokens_per_request, 1.0), samples), n_max)
    reload_ms = 0.0
    if hit.offload_hit_rate > 0 and ss.tiers:
        reload_ms = _mean_reload_ms(r, ss.tiers[0])
        cur = dataclasses.replace(cur, ttft_s=cur.ttft_s + hit.offload_hit_rate / hit.hit_rate * reload_ms / 1e3)
    res = CacheResult(
        prefix_cache=True,
        prefix_hit_rate=hit.hit_rate,
        offload_hit_rate=hit.offload_hit_rate,
        prefill_tokens_per_request=hit.prefill_tokens_per_request,
        prompt_tokens_per_request=prompt,
        kv_resident_sessions=hit.resident_sessions * replicas if math.isfinite(hit.resident_sessions) else None,
        kv_offload_gb=ss.offload_gb,
        kv_offload_tokens=ss.offload_tokens,
        reload_ms_mean=reload_ms,
        method=f"analytic (Che's LRU approximation, characteristic time {hit.t_cache_s:.3g} s)",
    )
    return res, cur


def saturation_curve(ss: SessionSetup, inp: SweepInput, curve: LoadCurve, replicas: int,
                     samples: int = 1) -> LoadCurve:  # fmt: skip
    """The load curve with the hit rate at saturation: n_max requests in flight, the rest of the KV for idle
    histories, arrivals at the saturated rate (twice: the rate depends on the hit rate); with `samples` N the
    curve's rate counts samples, the cache sees N times fewer turns."""
    if not ss.prefix_cache:
        return curve
    r = ss.requests
    held = float(r.input_tokens.mean()) + float(r.output_tokens.mean()) / 2
    n_max = float(curve.n[0, -1])
    free = max(ss.kv_tokens - n_max * held, 0.0)
    cur = curve
    for _ in range(ANALYTIC_PASSES):
        lam = float(cur.max_rate_rps[0]) / replicas / samples
        e2e = float(cur.ttft_s[0, -1] + max(float(cur.output_len[0]) - 1, 0.0) * cur.tpot_s[0, -1])
        hit = analytic_hit_rate(r, lam, free, e2e_s=e2e, offload_tokens=ss.offload_tokens)
        cur = computed_curve(inp, computed_prompt(max(hit.prefill_tokens_per_request, 1.0), samples), n_max)
    return cur


def _mean_reload_ms(r: SessionRequests, tier: Tier) -> float:
    later = r.turn > 1
    h = r.history_tokens[later] if later.any() else r.history_tokens
    return float(h.mean()) * tier.seconds_per_token * 1e3


def computed_curve(inp: SweepInput, computed_len: float, n_max: float) -> LoadCurve:
    """The load curve with prompts of `computed_len` tokens (prefill work) and at most n_max requests in flight
    (the KV limit of the whole context)."""
    eng = dataclasses.replace(inp.engine, max_seqs=np.minimum(inp.engine.max_seqs, max(n_max, 1.0)))
    return load_curve(dataclasses.replace(inp, engine=eng, input_len=np.array([float(computed_len)])))
