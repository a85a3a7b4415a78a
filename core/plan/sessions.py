"""Sessions and prefix caching in the planner (llmcap.plan.planner): every row's prefix hit rate, and the space
re-posed with the prompt tokens each row actually computes.

1. A session workload's requests are drawn once (llmcap.load.sessions, seeded); PlanRequest.input_len is their mean
   prompt (history included), so KV capacity is sized for whole contexts.
2. A coarse pass over the space at the full prompts gives each row its replicas and median E2E; requests in flight
   per replica follow Little's law (rate / replicas x E2E, at most the KV limit n_max), and the device KV they leave,
   plus any offload tier (llmcap.load.offload, the family's host link), holds idle histories.
3. Che's hit rate per row (llmcap.load.sessions.hit_rates, vectorized), then the space again with prompts of
   input_len x (1 - hit) computed tokens and at most n_max requests in flight (the KV of the whole context).
The hit rate of the first pass stands for the final row (one fixed-point step; estimate --rate iterates twice).
With samples N (llmcap.plan.samples) the request's rate counts samples: the cache sees rate / N turns and each
sample computes (prompt x (1 - hit) + N - 1) / N tokens.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from llmcap.catalog.loader import Catalog
from llmcap.catalog.schema import LengthDistribution, SessionSpec
from llmcap.estimate.sweep import evaluate, expand
from llmcap.load.offload import offload_gb, tier_tokens
from llmcap.load.samples import computed_prompt
from llmcap.load.sessions import SessionRequests, SessionShape, hit_rates, session_requests
from llmcap.plan.evaluate import COARSE_GRID, COARSE_ITERATIONS, evaluate_space
from llmcap.plan.request import Candidate, PlanRequest
from llmcap.plan.space import Space

DRAWN = 20_000


def draw(spec: SessionSpec, output_len: float, output_cv: float, seed: int = 0) -> SessionRequests:
    """The session requests a plan is sized for (replies lognormal with the request's mean and cv)."""
    out = LengthDistribution(family="lognormal" if output_cv > 0 else "fixed", mean=max(output_len, 1.0),
                             cv=output_cv, max=1_000_000)  # fmt: skip
    return session_requests(spec, out, DRAWN, seed=seed)


def session_traffic(spec: SessionSpec, output_len: float, output_cv: float) -> dict[str, float]:
    """PlanRequest input_len and input_cv of a session workload: the drawn prompts' mean and cv."""
    r = draw(spec, output_len, output_cv)
    s = r.input_tokens.astype(float)
    return {"input_len": float(s.mean()), "input_cv": float(s.std() / s.mean())}


@dataclass(frozen=True)
class RowCache:
    """Per row of the space: hit rate and prompt tokens computed."""

    hit_rate: np.ndarray
    prefill_tokens: np.ndarray


def with_prefix_cache(space: Space, req: PlanRequest, catalog: Catalog) -> tuple[Space, RowCache]:
    """The space with each row's computed prompt tokens (module docstring)."""
    r = draw(req.sessions, req.output_len, req.output_cv)
    shape = SessionShape.of(r)
    rows = len(space)
    s, o = float(r.input_tokens.mean()), float(r.output_tokens.mean())
    if not req.prefix_cache:
        return space, RowCache(np.zeros(rows), np.full(rows, s))
    idx = np.arange(rows)
    inp = space.inp
    one = evaluate(expand(inp, idx, concurrency=np.ones(rows) * inp.replicas))
    per_token = one.kv_bytes_per_seq / np.maximum(inp.input_len + inp.output_len, 1.0)
    kv_tokens = np.where(one.fits, one.kv_room_bytes / np.maximum(per_token, 1e-30), 0.0)
    n_max = np.maximum(evaluate(expand(inp, idx, concurrency=np.full(rows, np.inf))).running, 1.0)
    ev = evaluate_space(space, req, catalog, lambda _f, _m: None, COARSE_GRID, COARSE_ITERATIONS, detailed=False)
    reps = np.maximum(ev.replicas, 1.0)
    e2e = np.where(np.isfinite(ev.e2e_p[:, 0]), ev.e2e_p[:, 0], 1e6)
    lam = req.rate_rps / reps
    inflight = np.minimum(lam * e2e, n_max)
    free = np.maximum(kv_tokens - inflight * (s + o / 2), 0.0)
    offload = _offload_tokens(space, req, catalog, per_token)
    h = hit_rates(shape, lam / req.samples, free, e2e, offload)  # the cache sees turns; the queue, samples
    computed = computed_prompt(np.maximum(h["prefill_tokens_per_request"], 1.0), req.samples)
    eng = dataclasses.replace(inp.engine, max_seqs=np.minimum(inp.engine.max_seqs, n_max))
    cached = dataclasses.replace(space, inp=dataclasses.replace(inp, engine=eng, input_len=computed))
    return cached, RowCache(h["hit_rate"], computed)


def _offload_tokens(space: Space, req: PlanRequest, catalog: Catalog, per_token: np.ndarray) -> np.ndarray:
    gb = req.kv_offload_cpu_gb + req.kv_offload_ssd_gb
    if gb <= 0:
        return np.zeros(len(space))
    usable = np.array([offload_gb(catalog.device(f.hardware), req.kv_offload_cpu_gb, req.kv_offload_ssd_gb)
                       for f in space.families])  # fmt: skip
    return tier_tokens(usable[space.family], np.maximum(per_token, 1e-30), space.devices_per_replica)


def annotate(candidates: list[Candidate], space: Space, cache: RowCache) -> list[Candidate]:
    """Each aggregated candidate with its row's hit rate and computed prompt tokens."""
    labels = [(f.hardware, f.weight_format, f.kv_format, f.engine) for f in space.families]
    out = []
    for c in candidates:
        fam = [k for k, lab in enumerate(labels) if lab == (c.hardware, c.weight_format, c.kv_format, c.engine)]
        rows = np.flatnonzero(
            np.isin(space.family, fam) & (space.tp == c.tp) & (space.pp == c.pp) & (space.ep == c.ep)
            & (space.max_seqs == c.max_seqs)
        )  # fmt: skip
        if rows.size == 0:
            out.append(c)
            continue
        i = int(rows[0])
        out.append(c.model_copy(update={"prefix_hit_rate": float(cache.hit_rate[i]),
                                        "prefill_tokens_per_request": float(cache.prefill_tokens[i])}))  # fmt: skip
    return out
