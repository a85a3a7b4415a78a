"""Samples: N generations of one prompt (best-of-N, self-consistency; vLLM's `n`, SGLang's parallel sampling).

The prompt is prefilled once and its KV shared by the N sequences (forked, copy on write); each sample decodes its
own output. In the simulator a prompt becomes N requests arriving together, the later N - 1 with their prompt
already in the cache (llmcap.load.prefix_cache `forked`), routed to one replica; their KV is counted per sample
(conservative: the engines hold the prompt's blocks once). The analytic model runs the load curve at N times the
rate with the mean prompt work of a sample, (S + (N - 1)) / N tokens, and the in-flight limit of whole contexts.
With sessions each turn's prompt (history included) is prefilled once and its N samples decode; the next turn
carries one chosen answer (`expand_sessions`; analytic: llmcap.load.rate_sessions with `samples`).

Per answer (one prompt, N samples): seconds = the slowest sample's E2E (simulator: measured per prompt; analytic:
mean TTFT + (E[max of the N output lengths] - 1) x mean TPOT, the mean E2E with the longest sample's length),
dollars = N x the cost per request, joules = N x mean output tokens x joules per output token.

E[max of N lengths] (order statistics, David and Nagaraja, Order Statistics, 3rd ed. 2003, sec. 3.1: for X >= 0,
E[max] = integral over x >= 0 of 1 - F(x)^N): from drawn lengths, the mean over prompts of the longest of their N
samples (`slowest_output_tokens`); for the planner's lognormal with mean and cv, cut at a token budget c
(llmcap.load.budget), the integral up to c on a log grid (`slowest_output_lognormal`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy.special import ndtr

from llmcap.load.prefix_cache import CacheSpec
from llmcap.load.sessions import SessionRequests
from llmcap.load.traffic import Requests


def expand(req: Requests, n: int, seed: int = 0) -> tuple[Requests, CacheSpec]:
    """Each prompt of `req` as n requests (samples) arriving together; sample j > 0 draws its output length from
    the others' by a seeded permutation (the same marginal distribution, independent of its sibling's)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 15]))
    m = req.n
    outs = [req.output_tokens] + [rng.permutation(req.output_tokens) for _ in range(n - 1)]
    out = np.stack(outs, axis=1).ravel()
    group = np.repeat(np.arange(m), n)
    forked = np.tile(np.arange(n) > 0, m)
    expanded = Requests(
        np.repeat(req.arrival_s, n), np.repeat(req.input_tokens, n), out, req.prefix_cache_hit, req.source, req.notes
    )
    return expanded, CacheSpec(group, np.zeros(m * n, dtype=np.int64), 0, (), forked)


def expand_sessions(r: SessionRequests, n: int, seed: int = 0) -> tuple[SessionRequests, np.ndarray]:
    """Each turn of `r` as n samples arriving together (same session, turn, prompt and history), and the forked
    mask (a later sample, whose prompt KV is shared); sample j > 0 draws its output length from the others' by a
    seeded permutation. The next turn's history, already drawn, carries the first sample's reply: the chosen
    answer (in the simulator's cache the session keeps the context of whichever sample finishes last)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 16]))
    outs = [r.output_tokens] + [rng.permutation(r.output_tokens) for _ in range(n - 1)]

    def rep(a: np.ndarray) -> np.ndarray:
        return np.repeat(a, n)

    out = dataclasses.replace(
        r, start_unit=rep(r.start_unit), offset_s=rep(r.offset_s), session=rep(r.session), turn=rep(r.turn),
        input_tokens=rep(r.input_tokens), output_tokens=np.stack(outs, axis=1).ravel(),
        history_tokens=rep(r.history_tokens), has_next=rep(r.has_next),
    )  # fmt: skip
    return out, np.tile(np.arange(n) > 0, r.n)


def computed_prompt(prompt_tokens: float, n: int) -> float:
    """Mean prompt tokens a sample computes: the first the whole prompt, the others one token each."""
    return (prompt_tokens + (n - 1)) / n


def answer_seconds(e2e_s: np.ndarray, n: int) -> float:
    """Mean over prompts of the slowest of its n samples (samples of a prompt are consecutive)."""
    e = np.asarray(e2e_s, dtype=float)
    per = e[: e.size - e.size % n].reshape(-1, n)
    per = per[np.all(np.isfinite(per), axis=1)]
    return float(per.max(axis=1).mean()) if per.size else float("nan")


def slowest_output_tokens(output_tokens: np.ndarray, n: int, seed: int = 0, grouped: bool = False) -> float:
    """Mean over prompts of the longest of n samples' output lengths: `output_tokens` already grouped by prompt
    (n consecutive samples, `grouped`), or one length per prompt with n - 1 more drawn by seeded permutations."""
    o = np.asarray(output_tokens, dtype=float)
    if n <= 1 or o.size == 0:
        return float(o.mean()) if o.size else 0.0
    if grouped:
        return float(o[: o.size - o.size % n].reshape(-1, n).max(axis=1).mean())
    rng = np.random.default_rng(np.random.SeedSequence([seed, 17]))
    cols = [o] + [rng.permutation(o) for _ in range(n - 1)]
    return float(np.max(np.stack(cols, axis=1), axis=1).mean())


def slowest_output_lognormal(mean: float, cv: float, n: int, cap: float | None = None, points: int = 4001) -> float:
    """E[max of n iid min(X, cap)] for X lognormal with `mean` and `cv` (module docstring: the integral of
    1 - F(x)^n up to cap, on z = (ln x - mu) / s from mu - 12 s)."""
    c = math.inf if cap is None else float(cap)
    if cv <= 0:
        return min(float(mean), c)
    s2 = math.log1p(cv * cv)
    s = math.sqrt(s2)
    mu = math.log(mean) - s2 / 2
    if n <= 1 and not math.isfinite(c):
        return float(mean)
    top = min((math.log(c) - mu) / s if math.isfinite(c) else 12.0, 12.0)
    z = np.linspace(-12.0, top, points)
    x = np.exp(mu + s * z)
    f = 1.0 - ndtr(z) ** n
    y = f * x * s  # dx = x s dz
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(z)) + x[0])
