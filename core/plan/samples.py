"""Samples (best-of-N, self-consistency) and a token budget per answer in the planner (llmcap.plan.planner), as the
analytic rate model does it (llmcap.load.samples, llmcap.load.budget):

1. The engine sees N x the rate: each prompt's N samples are N requests (PlanRequest.rate_rps counts prompts, i.e.
   answers). The objectives apply to every sample: its TTFT and TPOT, as an engine serves and measures them.
2. Each sample computes (S + N - 1) / N prompt tokens on average (the prompt is prefilled once, its KV forked),
   while the KV cache holds whole contexts: the in-flight limit of each row stays that of S + output tokens
   (conservative: the engines hold the shared prompt's blocks once).
3. With a token budget the output length's mean and cv are those of min(X, budget), X lognormal
   (llmcap.load.budget.capped_moments).
4. Per answer: seconds = the mean E2E with the longest of the N samples' output lengths, e2e + (E[max of N
   lengths] - E[length]) x mean TPOT (llmcap.load.samples.slowest_output_lognormal, cut at the budget),
   $ = $/hour / 3600 / answers per second, J = watts / answers per second; goodput and max rate in answers/s.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from llmcap.estimate.sweep import evaluate, expand
from llmcap.load.budget import capped_moments
from llmcap.load.samples import computed_prompt, slowest_output_lognormal
from llmcap.plan.request import Candidate, PlanRequest
from llmcap.plan.space import Space


def per_sample_request(req: PlanRequest) -> PlanRequest:
    """The request the engine serves: N x the rate, output moments cut at the token budget."""
    out, cv, _ = capped_moments(req.output_len, req.output_cv, req.max_output_tokens)
    if req.samples == 1 and req.max_output_tokens is None:
        return req
    return req.model_copy(update={"rate_rps": req.rate_rps * req.samples, "output_len": max(out, 1.0),
                                  "output_cv": cv})  # fmt: skip


def with_samples(space: Space, n: int) -> Space:
    """The space with each sample's computed prompt and the in-flight limit of whole contexts (module docstring)."""
    if n == 1:
        return space
    inp = space.inp
    rows = len(space)
    n_max = np.maximum(evaluate(expand(inp, np.arange(rows), concurrency=np.full(rows, np.inf))).running, 1.0)
    eng = dataclasses.replace(inp.engine, max_seqs=np.minimum(inp.engine.max_seqs, n_max))
    computed = computed_prompt(np.asarray(inp.input_len, dtype=float), n)
    return dataclasses.replace(space, inp=dataclasses.replace(inp, engine=eng, input_len=computed))


def per_answer(candidates: list[Candidate], req: PlanRequest, work: PlanRequest) -> list[Candidate]:
    """Each candidate with its per-answer figures, and its rates in answers (prompts) per second."""
    n = req.samples
    longest = slowest_output_lognormal(req.output_len, req.output_cv, n, req.max_output_tokens) if n > 1 else 0.0
    extra = max(longest - work.output_len, 0.0) if n > 1 else 0.0  # tokens the longest sample adds to the mean
    out = []
    for c in candidates:
        watts = c.joules_per_output_token * work.rate_rps * work.output_len if c.joules_per_output_token else None
        seconds = None
        if c.e2e_ms_mean is not None and (extra == 0 or c.tpot_ms_mean is not None):
            seconds = (c.e2e_ms_mean + extra * (c.tpot_ms_mean or 0.0)) / 1e3
        out.append(c.model_copy(update={
            "seconds_per_answer": seconds,
            "usd_per_answer": c.usd_per_hour / 3600.0 / req.rate_rps,
            "joules_per_answer": watts / req.rate_rps if watts is not None else None,
            "goodput_rps": c.goodput_rps / n,
            "max_rate_rps": c.max_rate_rps / n,
        }))  # fmt: skip
    return out


def notes(req: PlanRequest, work: PlanRequest) -> list[str]:
    """What the plan assumed about samples and the budget."""
    out = []
    if req.samples > 1:
        out.append(
            f"{req.samples} samples per prompt: the engine serves {work.rate_rps:g} samples/s for {req.rate_rps:g} "
            "answers/s; TTFT/TPOT objectives apply to each sample; each prompt prefilled once (its KV counted per "
            "sample, conservative); goodput and max rate in answers/s; seconds per answer = mean E2E with the "
            "longest of the N samples' lengths (lognormal order statistics)"
        )
    if req.samples > 1 and req.allow_mixed:
        out.append("mixed-device candidates count each sample's prompt whole (conservative): their space is built "
                   "from the request's lengths")
    if req.max_output_tokens is not None:
        _, _, cut = capped_moments(req.output_len, req.output_cv, req.max_output_tokens)
        out.append(
            f"token budget {req.max_output_tokens:,}: mean output {req.output_len:,.0f} -> {work.output_len:,.0f} "
            f"tokens, cv {req.output_cv:.2f} -> {work.output_cv:.2f}, {cut:.1%} of samples cut (lognormal lengths)"
        )
    return out


def null_notes(candidates: list[Candidate]) -> list[str]:
    """Why some candidates' per-answer figures are null."""
    out = []
    if any(c.seconds_per_answer is None for c in candidates):
        out.append("seconds_per_answer is null for disaggregated and mixed candidates: their pools report no mean "
                   "end-to-end time")  # fmt: skip
    if any(c.joules_per_answer is None for c in candidates):
        out.append("joules_per_answer is null where a candidate has no energy figure (a mix of devices, or a device "
                   "without a catalogued power)")  # fmt: skip
    return out
