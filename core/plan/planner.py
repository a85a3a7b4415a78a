"""The deployment planner: the cheapest deployments that serve a request rate within the objectives.

One pass, vectorized over the whole space (llmcap.plan.space: device x format x engine families tiled over
layouts and concurrency caps):
1. the open-loop load curve of one replica of every row (llmcap.load.queueing.load_curve);
2. the fewest replicas at which `slo_pct`% of requests meet both the TTFT and the TPOT objective with the rate
   split round-robin over them (llmcap.plan.evaluate.fewest_replicas: a direct search on the count);
3. the deployment's goodput (DistServe's definition, llmcap.load.queueing.goodput), on the shortlist only;
4. $/hour with whole instances billed (llmcap.economics.cost), percentiles at the operating point
   (llmcap.load.queueing.analyze), power and energy (llmcap.economics.energy);
5. filters (devices, budget, end-to-end objective, minimum throughput), ranking by $/hour, and for each
   family that has no feasible row the reason that binds: does not fit, TTFT, TPOT, devices, budget, price.
Disaggregated prefill/decode pools (llmcap.plan.disagg) and Mélange mixes (llmcap.plan.mix_ip) are added when allowed.
"""

from __future__ import annotations

import dataclasses
import time

from llmcap.catalog.loader import Catalog, load_catalog
from llmcap.load.lora_evidence import evidence_note
from llmcap.plan.disagg import disaggregated
from llmcap.plan.evaluate import COARSE_GRID, COARSE_ITERATIONS, Evaluated, Progress, evaluate_space
from llmcap.plan.lora import annotate_lora, with_lora
from llmcap.plan.mix import mixed
from llmcap.plan.rank import pareto_points, rank, rejected_families, shortlist
from llmcap.plan.request import Candidate, ParetoPoint, Plan, PlanRequest, Rejected
from llmcap.plan.samples import notes as sample_notes
from llmcap.plan.samples import null_notes, per_answer, per_sample_request, with_samples
from llmcap.plan.sessions import annotate, with_prefix_cache
from llmcap.plan.space import Space, build_space, resolve_families

SHORTLIST_FACTOR = 4


def _scaled(space: Space, req: PlanRequest) -> Space:
    """What-if: scale every device's memory bandwidth and compute peaks."""
    if req.mem_bw_scale == 1.0 and req.compute_scale == 1.0:
        return space
    dev = space.inp.system.dev
    dev = dataclasses.replace(
        dev,
        mem_bw=dev.mem_bw * req.mem_bw_scale,
        peak_math=dev.peak_math * req.compute_scale,
        peak_bf16=dev.peak_bf16 * req.compute_scale,
    )
    inp = dataclasses.replace(space.inp, system=dataclasses.replace(space.inp.system, dev=dev))
    return dataclasses.replace(space, inp=inp)


def _search(
    req: PlanRequest, catalog: Catalog, families: list, progress: Progress, lean: bool
) -> tuple[Evaluated | None, list[Candidate], int]:
    """Steps 1-5 over the families: the screening pass over the whole space, the fine pass over its shortlist, then
    disaggregated pools and mixes; the screening result (None without families), the candidates cheapest first and
    the number of configurations. `lean` skips what only plan() shows: percentiles in screening (unless an
    end-to-end objective filters on them), each deployment's goodput and power."""
    if not families:
        return None, [], 0
    candidates: list[Candidate] = []
    space = _scaled(build_space(families, req.input_len, req.output_len, req.max_devices), req)
    cache = None
    if req.sessions is not None:  # sessions: each row's prefix hit rate, prompts re-posed (llmcap.plan.sessions)
        progress(0.1, "prefix cache per configuration")
        space, cache = with_prefix_cache(space, req, catalog)  # with samples: each sample's share of the prompt
    if req.sessions is None or not req.prefix_cache:  # samples share their prompt (llmcap.plan.samples)
        space = with_samples(space, req.samples)
    if req.lora is not None:  # adapters' memory out of each row's KV, their step cost (llmcap.plan.lora)
        space, _ = with_lora(space, req)
    progress(0.2, f"{len(space):,} configurations")
    pcts = not lean or req.slo.e2e_ms is not None
    ev = evaluate_space(space, req, catalog, progress, COARSE_GRID, COARSE_ITERATIONS, detailed=False, percentiles=pcts)
    short = shortlist(ev, req.top * SHORTLIST_FACTOR)
    if short.size:
        progress(0.8, f"refining {short.size} configurations")
        candidates = rank(evaluate_space(space.take(short), req, catalog, lambda _f, _m: None, detailed=not lean), req)
        if cache is not None:
            candidates = annotate(candidates, space, cache)
        if req.lora is not None:
            candidates = annotate_lora(candidates, space, req)
    if req.allow_disagg:
        progress(0.85, "disaggregated prefill/decode")
        candidates += disaggregated(space, req, catalog)
    if req.allow_mixed:
        progress(0.92, "device mix")
        candidates += mixed(families, req, catalog)
    return ev, sorted(candidates, key=lambda c: (c.usd_per_hour, c.ttft_ms_p90))[: req.top], len(space)


def _families(req: PlanRequest, catalog: Catalog) -> tuple[list, list[Rejected]]:
    """The request's device x format x engine families, and those that cannot be combined, as rejections."""
    hardware = list(req.hardware) if req.hardware else sorted(catalog.hardware)
    families, invalid = resolve_families(
        catalog, req.model, hardware, list(req.weights), list(req.kv), list(req.engines)
    )
    rejected = [Rejected(**label, reason=why.split(":", 1)[0], detail=why.split(": ", 1)[-1]) for label, why in invalid]
    return families, rejected


def plan(req: PlanRequest, catalog: Catalog | None = None, progress: Progress | None = None) -> Plan:
    """Rank the deployments that serve `req` within its objectives; say why the others cannot."""
    start = time.perf_counter()
    catalog = catalog or load_catalog()
    asked, req = req, per_sample_request(req)  # samples: N x the rate; a token budget cuts the output (plan.samples)
    progress = progress or (lambda _f, _m: None)
    progress(0.0, "resolving devices and formats")
    families, rejected = _families(req, catalog)
    ev, candidates, evaluated = _search(req, catalog, families, progress, lean=False)
    notes = sample_notes(asked, req) + ([evidence_note()] if req.lora is not None else [])
    pareto: list[ParetoPoint] = []
    if ev is not None:
        rejected += rejected_families(ev, req)
        pareto = pareto_points(ev, req)
        candidates = per_answer(candidates, asked, req)
        notes += null_notes(candidates)
    progress(1.0, "done")
    return Plan(
        request=asked,
        candidates=candidates,
        rejected=rejected,
        pareto=pareto,
        evaluated=evaluated,
        elapsed_s=time.perf_counter() - start,
        notes=notes,
    )


def cheapest(req: PlanRequest, catalog: Catalog | None = None) -> Candidate | None:
    """The deployment plan(req) ranks first, or None, with less work (what-ifs and sensitivities re-plan many times):
    no Pareto fronts or rejected families, and the lean search of _search. Its goodput_rps and
    joules_per_output_token are NaN: not computed."""
    catalog = catalog or load_catalog()
    asked = req.model_copy(update={"top": 1})
    one = per_sample_request(asked)
    _, candidates, _ = _search(one, catalog, _families(one, catalog)[0], lambda _f, _m: None, lean=True)
    return per_answer(candidates, asked, one)[0] if candidates else None
