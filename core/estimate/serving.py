"""Closed-loop serving: C requests in flight, each `input_len` in and `output_len` out.

This is how `vllm bench serve --max-concurrency C`, genai-perf and aiperf measure: a new request
starts when one finishes. Two schedulers (domain.md "Serving under load"):

prefill_first (SGLang, llama.cpp; vLLM V0): waiting prompts run first, batched up to the token budget
  P, while decodes stall. With fixed lengths the loop stays in waves: C prompts arrive together, go
  through ceil(C / floor(P/S)) prefill batches of time t_b, then decode together and finish together.
    TTFT = t_b * (batches + 1) / 2        TPOT = t_d(C) + (batches * t_b - TTFT) / (O - 1)
mixed (vLLM V1 chunked prefill, TensorRT-LLM in-flight batching; Sarathi-Serve): every step carries
  all running decodes plus prompt chunks up to P tokens. In steady state B requests decode and each
  step carries p = B * S / (O - 1) prompt tokens (Little's law), so
    TPOT = t(B decodes + p prompt tokens)       TTFT = t * (1/2 + steps to cover S)
  and when the prompt demand exceeds the budget (B > P (O-1) / (S + O - 1)) requests queue:
    TTFT = (C - B) (O - 1) TPOT / B.
  A benchmark starts all C requests at once, so the first rounds are synchronized waves and later
  rounds drift toward the steady state (timing jitter spreads arrivals); the fitted per-engine
  `wave_weight` blends the two regimes. The steady-state formula stands for both schedulers there.
Throughput = C * O / (TTFT + (O - 1) * TPOT) per replica.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from llmcap.perf.efficiency import Efficiency
from llmcap.perf.operators import Layout, Step, decode_step, mean_window_context, prefill_step
from llmcap.perf.shapes import DeviceSpec, FormatSpec, ModelShape
from llmcap.perf.timing import StepTime, StepTimer

PREFILL_FIRST, MIXED = 0.0, 1.0


@dataclass(frozen=True)
class Engine:
    """Scheduler numbers of a serving engine (arrays)."""

    mixed: np.ndarray  # 1.0 mixed / chunked, 0.0 prefill-first
    max_batch_tokens: np.ndarray
    max_seqs: np.ndarray
    kv_reserve: np.ndarray  # share of the output a waiting request must find KV for to start (0 vLLM, 1 TRT-LLM)
    preempts: np.ndarray  # 1.0 where running requests can be paused when the cache fills, else 0.0


@dataclass(frozen=True)
class System:
    """Everything a step time needs, for one or many scenarios."""

    shape: ModelShape
    dev: DeviceSpec
    fmt: FormatSpec
    layout: Layout
    eff: Efficiency

    @functools.cached_property
    def timer(self) -> StepTimer:
        """Operator terms scaled once for this system; every step time reuses them."""
        return StepTimer(self.shape, self.dev, self.fmt, self.layout, self.eff)

    def time(self, step: Step) -> StepTime:
        return self.timer(step)


@dataclass(frozen=True)
class Serving:
    """Mean closed-loop results per replica (arrays; seconds)."""

    ttft_s: np.ndarray
    tpot_s: np.ndarray
    e2e_s: np.ndarray
    requests_per_s: np.ndarray
    decode_batch: np.ndarray
    decode: StepTime  # the decode step at the operating point
    prefill: StepTime  # one request's prefill alone


def decode_contexts(sys: System, s: np.ndarray, o: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean context over the decode (tokens S+1 .. S+O-1), full and window-capped."""
    first, last = s + 1, s + np.maximum(o - 1, 1)
    full = (first + last) / 2
    return full, mean_window_context(first, last, sys.shape.window)


def per_stage_batch(b: np.ndarray, layout: Layout) -> np.ndarray:
    """Pipeline parallelism splits the batch into pp micro-batches in flight."""
    return np.maximum(b / layout.pp, 1.0)


def closed_loop(sys: System, engine: Engine, s, o, c) -> Serving:
    s = np.asarray(s, dtype=float)
    o = np.asarray(o, dtype=float)
    c = np.maximum(np.asarray(c, dtype=float), 1.0)
    budget = np.maximum(engine.max_batch_tokens, 1.0)
    ctx_full, ctx_slide = decode_contexts(sys, s, o)
    decode_tokens = np.maximum(o - 1, 0.0)
    ov = sys.eff.step_overhead_s

    # one request's prefill alone (chunked when longer than the budget)
    chunks = np.ceil(s / budget)
    one_prompt = prefill_step(np.ones_like(s), s, sys.shape)
    alone = sys.time(one_prompt)
    alone_s = alone.total_s + (chunks - 1) * ov

    # prefill-first waves
    per_batch = np.clip(np.floor(budget / s), 1.0, c)
    batches = np.ceil(c / per_batch)
    t_b = sys.time(one_prompt.times(per_batch)).total_s + (chunks - 1) * ov
    dec_all = sys.time(decode_step(per_stage_batch(c, sys.layout), ctx_full, ctx_slide))
    t_d = dec_all.total_s
    ttft_pf = t_b * (batches + 1) / 2
    tpot_pf = t_d + np.where(decode_tokens > 0, (batches * t_b - ttft_pf) / np.maximum(decode_tokens, 1), 0.0)

    # mixed steady state
    b_cap = budget * decode_tokens / (s + decode_tokens)
    b = c * decode_tokens / (decode_tokens + 1.5)
    for _ in range(3):
        steps = 0.5 + np.maximum(1.0, s / np.maximum(budget - b, 1.0))
        b_free = c / (1 + steps / np.maximum(decode_tokens, 1e-9))
        b = np.clip(np.minimum(b_free, b_cap), 1.0, c)
    p_tokens = np.minimum(b * s / np.maximum(decode_tokens, 1.0), budget)
    chunk = one_prompt.times(p_tokens / s)  # p tokens of whole prompts
    mix_step = decode_step(per_stage_batch(b, sys.layout), ctx_full, ctx_slide) + chunk
    mix = sys.time(mix_step)
    t_m = mix.total_s
    saturated = b_free > b_cap
    ttft_mx = np.where(saturated, (c - b) * decode_tokens * t_m / np.maximum(b, 1.0), t_m * steps)
    ttft_mx = np.maximum(ttft_mx, alone_s)

    use_mixed = (engine.mixed > 0) & (decode_tokens > 0)
    w = np.where(decode_tokens > 0, np.clip(sys.eff.wave_weight, 0.0, 1.0), 1.0)
    ttft = w * ttft_pf + (1 - w) * ttft_mx
    tpot = w * tpot_pf + (1 - w) * t_m
    tpot = np.where(decode_tokens > 0, tpot, 0.0)
    ttft = ttft + sys.eff.request_overhead_s
    e2e = ttft + decode_tokens * tpot
    rps = c / np.maximum(e2e, 1e-12)
    parts = ("compute_s", "memory_s", "comm_s", "overhead_s")
    decode_st = StepTime(*(np.where(use_mixed, getattr(mix, f), getattr(dec_all, f)) for f in parts))
    return Serving(
        ttft_s=ttft,
        tpot_s=tpot,
        e2e_s=e2e,
        requests_per_s=rps,
        decode_batch=np.where(use_mixed, b, c),
        decode=decode_st,
        prefill=alone,
    )
