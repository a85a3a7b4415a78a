"""Samples: N generations of one prompt (best-of-N, self-consistency; vLLM's `n`, SGLang's parallel sampling).

The prompt is prefilled once and its KV shared by the N sequences (forked, copy on write); each sample decodes its
own output. In the simulator a prompt becomes N requests arriving together, the later N - 1 with their prompt
already in the cache (llmcap.load.prefix_cache `forked`), routed to one replica; their KV is counted per sample
(conservative: the engines hold the prompt's blocks once). The analytic model runs the load curve at N times the
rate with the mean prompt work of a sample, (S + (N - 1)) / N tokens, and the in-flight limit of whole contexts.
With sessions each turn's prompt (history included) is prefilled once and its N samples decode; the next turn
carries one chosen answer (`expand_sessions`; analytic: llmcap.load.rate_sessions with `samples`).

Per answer (one prompt, N samples): seconds = the slowest sample's E2E (simulator; analytic: the mean sample's),
dollars = N x the cost per request, joules = N x mean output tokens x joules per output token.
"""

from __future__ import annotations

import dataclasses

import numpy as np

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
