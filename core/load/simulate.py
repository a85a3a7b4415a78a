"""Iteration-level discrete-event simulation of continuous batching under open-loop arrivals.

One engine iteration (Orca's iteration-level scheduling; vLLM, SGLang, TensorRT-LLM) runs every
decoding sequence one token further and, depending on the scheduler, prompt work:

  mixed (chunked prefill; Sarathi-Serve, vLLM V1 docs "chunked prefill"): every iteration carries all
      running decodes plus prompt chunks filling the token budget: max_batch_tokens - decodes. Partly
      computed prompts continue first, then waiting requests are admitted first come, first served.
  prefill_first (SGLang, vLLM V0): when prompt work can be scheduled, an iteration carries only prompt
      chunks (up to max_batch_tokens) and the decodes wait; otherwise it decodes.

A request is admitted while fewer than max_seqs are in the engine and the KV cache holds its prompt
plus `admit_reserve` times the tokens the decoding requests still have to generate (SGLang's
new_token_ratio, which starts at 0.7 and decays to 0.1: the default for prefill-first; vLLM admits by
the blocks in use: 0 for mixed). Without a reserve a prefill-first engine under overload thrashes:
every admitted prompt fills the cache and the next decode step preempts it again.
When decode growth overflows the cache, `preempt` (vLLM's recompute policy) evicts the most recently
admitted decoding request; it waits at the head of the queue and later recomputes prompt plus the
tokens it had generated. `reject` reserves prompt + output at arrival and turns a request away when
the cache cannot promise that (load shedding); no preemption then. A request that can never fit is
rejected under both. The prefix-cache hit fraction h skips the first floor(h * s) prompt tokens'
compute (they are still attended to and held in the KV cache).

Speculative decoding (Leviathan et al. 2023, "Fast Inference from Transformers via Speculative
Decoding"): a draft proposes k tokens, the target verifies k + 1 positions per sequence in one pass,
and with acceptance rate alpha each iteration yields E = (1 - alpha^(k+1)) / (1 - alpha) tokens per
sequence on average (domain.md). The iteration costs the target pass over b (k + 1) tokens plus k draft
steps, each `draft_cost` times a target decode step (Leviathan's c; ~0 for multi-token prediction).
A request needs ceil((O - 1) / E) decode iterations (the expectation, not a random draw).

Speed: nothing loops per token. Decoding advances every running request together, so each request's
finishing iteration is known when it starts decoding (a heap keyed in iteration count). Stretches of
decode-only iterations without an arrival, finish or KV overflow are leapt over in one go: the mean
context grows by E tokens per iteration and the step time is linear in it (StepTable), so K iterations
take K T0 + slope E K (K - 1) / 2 (arithmetic series), and the K that reaches the next arrival is the
root of that quadratic.

Replicas: arrivals (in time order) are dealt round-robin (request j to replica j mod R), as a round-robin
load balancer does; each replica is then simulated alone.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from llmcap.catalog.schema import Frozen
from llmcap.estimate.resolve import Resolved
from llmcap.estimate.sweep import evaluate, expand, resolved_input
from llmcap.load.lora import distinct_adapters
from llmcap.load.prefix_cache import CacheSpec, ReplicaCache, no_cache_results
from llmcap.load.steptable import Lookups, StepTable


def expected_tokens_per_step(k: int, alpha: float) -> float:
    """Mean tokens per sequence per verification step: (1 - alpha^(k+1)) / (1 - alpha) (Leviathan et al.)."""
    if k <= 0:
        return 1.0
    if alpha >= 1.0:
        return float(k + 1)
    return (1.0 - alpha ** (k + 1)) / (1.0 - alpha)


class SimConfig(Frozen):
    """Scheduler and memory settings of one replica, plus the replica count."""

    mixed: bool = Field(description="chunked prefill (True) or prefill-first (False)")
    max_batch_tokens: int = Field(ge=1)
    max_seqs: int = Field(ge=1)
    kv_capacity_tokens: float = Field(gt=0, description="KV cache of one replica, in tokens")
    on_full: Literal["preempt", "reject"] = "preempt"
    prefix_hit: float = Field(default=0.0, ge=0.0, lt=1.0, description="share of each prompt found in the cache")
    spec_k: int = Field(default=0, ge=0, le=16, description="draft tokens per step (0: no speculation)")
    spec_alpha: float = Field(default=0.0, ge=0.0, le=1.0, description="acceptance rate per draft token")
    draft_cost: float = Field(default=0.0, ge=0.0, description="draft step time / target decode step time")
    admit_reserve: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="share of the decoding requests' remaining output tokens that admission keeps free in KV; "
        "None: 0 for mixed, 0.1 for prefill-first",
    )
    request_overhead_s: float = Field(default=0.0, ge=0.0, description="added to TTFT and E2E (API server)")
    lora_adapters: int = Field(default=0, ge=0, description="resident LoRA adapters (llmcap.load.lora)")
    lora_s_per_adapter: float = Field(default=0.0, ge=0.0, description="read time of one adapter per step")
    replicas: int = Field(default=1, ge=1)


@dataclass(frozen=True)
class SimResult:
    """Per-request outcomes (input order; seconds) and engine totals summed over replicas.

    Rejected requests have NaN latencies. tpot_s is 0 for single-token outputs.
    """

    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    queue_s: np.ndarray  # arrival to the iteration that first schedules it
    ttft_s: np.ndarray
    tpot_s: np.ndarray
    e2e_s: np.ndarray
    preemptions: np.ndarray  # times each request was preempted
    rejected: np.ndarray  # bool
    span_s: float  # first arrival to last finish
    busy_s: float  # engine time spent iterating, summed over replicas
    decode_batch_s: float  # integral of the decode batch over time, summed over replicas
    iterations: int
    replicas: int
    cached_tokens: np.ndarray | None = None  # prompt tokens found in the prefix cache (with a CacheSpec)
    hit_tier: np.ndarray | None = None  # -1 miss, 0 device memory, 1.. offload tier
    reload_s: np.ndarray | None = None  # time to reload a prefix from an offload tier (in ttft_s)
    resident_sessions: float | None = None  # idle histories in device memory (mean, summed over replicas)


def simulate(
    table: StepTable | Lookups, cfg: SimConfig, arrival_s, input_tokens, output_tokens, cache: CacheSpec | None = None
) -> SimResult:
    """Simulate the requests (arrays of equal length) on cfg.replicas replicas.

    With a `cache` (llmcap.load.prefix_cache) every request looks its session's history up in the replica's
    prefix cache; a session's requests then all go to one replica (session-affine routing), others round-robin.
    """
    arr, s_in, s_out = _check(arrival_s, input_tokens, output_tokens)
    n = len(arr)
    order = np.argsort(arr, kind="stable")
    lk = table if isinstance(table, Lookups) else table.lookups()
    cached, tier, reload = no_cache_results(n)
    resident = 0.0
    out = {k: np.full(n, np.nan) for k in ("queue", "first", "finish")}
    pre = np.zeros(n, dtype=np.int64)
    rej = np.zeros(n, dtype=bool)
    busy = batch = 0.0
    iters = 0
    for rep in range(cfg.replicas):
        ids = order[rep :: cfg.replicas] if cache is None else order[cache.session[order] % cfg.replicas == rep]
        if len(ids) == 0:
            continue
        r = _Replica(lk, cfg, arr[ids].tolist(), s_in[ids].tolist(), s_out[ids].tolist())
        if cache is not None:
            r.pc = ReplicaCache(cache, ids, lambda c: lk.prefill(c, c * (c + 1) / 2))
        r.run()
        if r.pc is not None:
            cached[ids], tier[ids], reload[ids] = r.pc.cached, r.pc.tier, r.pc.delay
            resident += r.pc.resident_sessions
        out["queue"][ids] = r.admit_t
        out["first"][ids] = r.first_t
        out["finish"][ids] = r.finish_t
        pre[ids] = r.preempted
        rej[ids] = r.rejected
        busy += r.busy
        batch += r.batch_int
        iters += r.iterations
    ov = cfg.request_overhead_s + reload
    o = s_out.astype(float)
    ttft = out["first"] - arr + ov
    e2e = out["finish"] - arr + ov
    tpot = np.where(o > 1, (out["finish"] - out["first"]) / np.maximum(o - 1, 1), 0.0)
    tpot = np.where(rej, np.nan, tpot)
    finished = out["finish"][~rej]
    span = float(finished.max() - arr.min()) if finished.size else 0.0
    return SimResult(
        arrival_s=arr,
        input_tokens=s_in,
        output_tokens=s_out,
        queue_s=out["queue"] - arr,
        ttft_s=ttft,
        tpot_s=tpot,
        e2e_s=e2e,
        preemptions=pre,
        rejected=rej,
        span_s=span,
        busy_s=busy,
        decode_batch_s=batch,
        iterations=iters,
        replicas=cfg.replicas,
        cached_tokens=cached if cache is not None else None,
        hit_tier=tier if cache is not None else None,
        reload_s=reload if cache is not None else None,
        resident_sessions=resident if cache is not None else None,
    )


def _check(arrival_s, input_tokens, output_tokens) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        arr = np.asarray(arrival_s, dtype=float).ravel()
        s_in = np.asarray(input_tokens, dtype=float).ravel()
        s_out = np.asarray(output_tokens, dtype=float).ravel()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"arrivals and token counts must be numbers: {exc}") from None
    if not len(arr) == len(s_in) == len(s_out):
        raise ValueError(f"lengths differ: {len(arr)} arrivals, {len(s_in)} inputs, {len(s_out)} outputs")
    if len(arr) == 0:
        raise ValueError("no requests to simulate")
    for name, a in (("arrival_s", arr), ("input_tokens", s_in), ("output_tokens", s_out)):
        bad = np.flatnonzero(~np.isfinite(a))
        if bad.size:
            raise ValueError(f"{name}[{bad[0]}] is not a finite number")
    for name, a in (("input_tokens", s_in), ("output_tokens", s_out)):
        bad = np.flatnonzero((a < 1) | (a != np.round(a)))
        if bad.size:
            raise ValueError(f"{name}[{bad[0]}] = {a[bad[0]]:g}: token counts are whole numbers >= 1")
    if arr.min() < 0:
        raise ValueError("arrival_s must be >= 0")
    return arr, s_in.astype(np.int64), s_out.astype(np.int64)


class _Replica:
    """Event loop of one replica. Lists of floats and plain ints: this is the hot path."""

    def __init__(self, lk: Lookups, cfg: SimConfig, arr: list[float], s: list[int], o: list[int]):
        self.lk, self.cfg = lk, cfg
        self.arr, self.s, self.o = arr, s, o
        n = len(arr)
        self.e = expected_tokens_per_step(cfg.spec_k, cfg.spec_alpha)
        self.n_dec = [math.ceil((oi - 1) / self.e - 1e-9) if oi > 1 else 0 for oi in o]
        self.admit_t = [math.nan] * n
        self.first_t = [math.nan] * n
        self.finish_t = [math.nan] * n
        self.preempted = [0] * n
        self.rejected = [False] * n
        self.busy = self.batch_int = 0.0
        self.iterations = 0
        self._spec_rows: dict[int, list[float]] = {}
        self.pc: ReplicaCache | None = None  # prefix cache of sessions (llmcap.load.prefix_cache)

    def _lora_s(self, seqs: int) -> float:
        """Batched LoRA kernels: each distinct adapter of the step's sequences read once (llmcap.load.lora)."""
        k = self.cfg.lora_adapters
        return self.cfg.lora_s_per_adapter * distinct_adapters(k, seqs) if k else 0.0

    def _step_time(self, b: int, m: float, p: float, q: float) -> float:
        """Iteration time with b decodes and prompt work p, plus the adapters' read time."""
        return self._base_step(b, m, p, q) + self._lora_s(b + (1 if p > 0 else 0))

    def _base_step(self, b: int, m: float, p: float, q: float) -> float:
        """Iteration time with b decodes (speculative: k + 1 positions each plus k draft steps)."""
        lk, k = self.lk, self.cfg.spec_k
        if b == 0:
            return lk.prefill(p, q) if p > 0 else 0.0
        if k == 0:
            return lk.mixed(b, m, p, q) if p > 0 else lk.decode(b, m)[0]
        extra = b * k
        t = lk.mixed(b, m, p + extra, q + extra * (m + (k + 1) / 2))
        return t + k * self.cfg.draft_cost * lk.decode(b, m)[0]

    def _decode_line(self, b: int, m: float) -> tuple[float, float]:
        """(time, d time / d m) of a decode-only iteration at mean context m (adapters' read time included)."""
        t, slope = self._base_decode_line(b, m)
        return t + self._lora_s(b), slope

    def _base_decode_line(self, b: int, m: float) -> tuple[float, float]:
        if self.cfg.spec_k == 0:
            return self.lk.decode(b, m)
        row = self._spec_rows.get(b)
        if row is None:  # speculative step times on the table's context knots, once per batch size
            row = self._spec_rows[b] = [self._base_step(b, mj, 0.0, 0.0) for mj in self.lk.m]
        axis = self.lk.m
        if len(axis) == 1:
            return row[0], 0.0
        j, w = self.lk._cell(axis, m)
        slope = (row[j + 1] - row[j]) / (axis[j + 1] - axis[j])
        return row[j] + w * (row[j + 1] - row[j]), slope

    def run(self) -> None:  # noqa: C901 - one event loop, kept in one place on purpose
        cfg = self.cfg
        arr, s, o, n_dec = self.arr, self.s, self.o, self.n_dec
        n = len(arr)
        e = self.e
        cap = cfg.kv_capacity_tokens
        budget = cfg.max_batch_tokens
        max_seqs = cfg.max_seqs
        hit = cfg.prefix_hit
        reserve = cfg.on_full == "reject"
        admit_t, first_t, finish_t = self.admit_t, self.first_t, self.finish_t
        pc = self.pc

        waiting: deque[int] = deque()
        prefilling: deque[int] = deque()  # admitted, prompt not finished (in admission order)
        prompt = [0] * n  # tokens to hold before decoding (prompt, or prompt + generated after preemption)
        done = [0] * n  # prompt tokens already in the cache
        left = list(n_dec)  # decode iterations still to run
        enter = [0] * n  # decode counter when it started decoding
        version = [0] * n  # heap entries of preempted requests go stale
        heap: list[tuple[int, int, int]] = []  # (finishing decode counter, request, version)
        stack: list[int] = []  # decoding requests in admission order (LIFO preemption)
        decoding = [False] * n
        t = 0.0
        D = 0  # decode iterations run so far
        b = 0  # decoding requests
        X = 0.0  # their total context (tokens)
        R = 0.0  # tokens they still have to generate
        ratio = cfg.admit_reserve if cfg.admit_reserve is not None else (0.0 if cfg.mixed else 0.1)
        kv = 0.0  # KV tokens in use (or reserved, under `reject`)
        ia = 0
        busy = batch_int = 0.0
        iters = 0

        def finish_due(now: float) -> None:
            nonlocal b, X, kv, R
            while heap and heap[0][0] <= D:
                _, i, ver = heapq.heappop(heap)
                if ver != version[i] or not decoding[i]:
                    continue
                decoding[i] = False
                b -= 1
                ctx = prompt[i] + 1 + e * (D - enter[i])
                X -= ctx
                kv -= (s[i] + o[i]) if reserve else ctx
                finish_t[i] = now
                if pc is not None:
                    pc.finish(i, s[i] + o[i])
            if b == 0:
                X = R = 0.0
                if not reserve:  # no float drift left behind: only prompts in flight hold KV now
                    kv = float(sum(prompt[j] for j in prefilling))

        def start_decoding(i: int, now: float) -> None:
            nonlocal b, X, kv, R
            if math.isnan(first_t[i]):
                first_t[i] = now
            if left[i] <= 0:
                finish_t[i] = now
                kv -= (s[i] + o[i]) if reserve else prompt[i]
                if pc is not None:
                    pc.finish(i, s[i] + o[i])
                return
            decoding[i] = True
            enter[i] = D
            b += 1
            X += prompt[i] + 1
            R += e * left[i]
            if not reserve:
                kv += 1
            heapq.heappush(heap, (D + left[i], i, version[i]))
            stack.append(i)

        def preempt_one() -> bool:
            nonlocal b, X, kv, R
            while stack:
                i = stack.pop()
                if not decoding[i]:
                    continue
                decoding[i] = False
                version[i] += 1
                b -= 1
                ran = D - enter[i]
                ctx = prompt[i] + 1 + e * ran
                X -= ctx
                kv -= ctx
                left[i] -= ran
                R -= e * left[i]
                prompt[i] = int(ctx)  # recompute prompt + generated tokens
                done[i] = 0
                self.preempted[i] += 1
                waiting.appendleft(i)
                if b == 0:
                    X = R = 0.0
                return True
            return False

        def arrive(i: int) -> None:
            nonlocal kv
            need = s[i] + o[i]
            if need > cap or (reserve and kv + need > cap):
                self.rejected[i] = True
                return
            prompt[i] = s[i]
            if reserve:
                kv += need
            waiting.append(i)

        while True:
            while ia < n and arr[ia] <= t:
                arrive(ia)
                ia += 1
            if b == 0 and not prefilling and not waiting:
                if ia >= n:
                    break
                t = arr[ia]
                continue
            if pc is not None:  # idle cached prefixes give way to running requests first
                pc.evict(cap - kv)
            # decode growth must fit: preempt the newest decoders until it does
            if not reserve:
                while b > 0 and kv + b * e > cap and preempt_one():
                    pass
            # prompt work for this iteration
            room = budget - b if cfg.mixed else budget
            if not cfg.mixed and b > 0 and not prefilling and not self._admissible(waiting, kv + ratio * R, b, prompt):
                room = 0
            p = 0
            q = 0.0
            finished_prompts = []
            if room > 0:
                for i in prefilling:
                    if room <= 0:
                        break
                    c = min(prompt[i] - done[i], room)
                    q += c * done[i] + c * (c + 1) / 2
                    p += c
                    room -= c
                    done[i] += c
                    if done[i] >= prompt[i]:
                        finished_prompts.append(i)
                while waiting and room > 0 and b + len(prefilling) < max_seqs:
                    i = waiting[0]
                    if not reserve and kv + prompt[i] + ratio * R > cap:
                        break
                    waiting.popleft()
                    if math.isnan(admit_t[i]):
                        admit_t[i] = t
                    if not reserve:
                        kv += prompt[i]
                    cached = pc.admit(i, prompt[i]) if pc is not None else int(prompt[i] * hit)
                    done[i] = cached if cached < prompt[i] else prompt[i] - 1
                    c = min(prompt[i] - done[i], room)
                    q += c * done[i] + c * (c + 1) / 2
                    p += c
                    room -= c
                    done[i] += c
                    prefilling.append(i)
                    if done[i] >= prompt[i]:
                        finished_prompts.append(i)
            if p == 0 and b == 0:
                # nothing can run: the head of the queue cannot fit even in an empty engine
                i = waiting.popleft()
                self.rejected[i] = True
                continue
            if p > 0:
                decodes = b if cfg.mixed else 0
                dt = self._step_time(decodes, X / decodes if decodes else 1.0, p, q)
                t += dt
                busy += dt
                iters += 1
                if decodes:
                    batch_int += decodes * dt
                    D += 1
                    X += decodes * e
                    R -= decodes * e
                    if not reserve:
                        kv += decodes * e
                    finish_due(t)
                for i in finished_prompts:
                    prefilling.remove(i)
                    start_decoding(i, t)
                continue
            # decode-only iterations: leap to the next finish, KV overflow or useful arrival
            m0 = X / b
            t0, slope = self._decode_line(b, m0)
            a = slope * e / 2.0
            K = heap[0][0] - D
            if not reserve:
                K = min(K, max(int((cap - kv) / (b * e)), 1))
            if ia < n and not waiting:
                gap = arr[ia] - t
                lin = t0 - a
                # K t0 + a K (K - 1) = gap  ->  a K^2 + (t0 - a) K - gap = 0
                k_arr = (-lin + math.sqrt(lin * lin + 4 * a * gap)) / (2 * a) if a > 1e-15 else gap / t0
                K = min(K, max(math.ceil(k_arr - 1e-9), 1))
            K = max(K, 1)
            dt = K * t0 + a * K * (K - 1)
            t += dt
            busy += dt
            batch_int += b * dt
            iters += K
            D += K
            X += b * e * K
            R -= b * e * K
            if not reserve:
                kv += b * e * K
            finish_due(t)
        self.busy, self.batch_int, self.iterations = busy, batch_int, iters

    def _admissible(self, waiting: deque, kv: float, b: int, prompt: list[int]) -> bool:
        """Prefill-first: can the head of the queue be admitted now?"""
        if not waiting or b >= self.cfg.max_seqs:
            return False
        return self.cfg.on_full == "reject" or kv + prompt[waiting[0]] <= self.cfg.kv_capacity_tokens


def deployment(
    r: Resolved,
    *,
    input_len: float,
    output_len: float,
    max_context: float | None = None,
    **options,
) -> tuple[StepTable, SimConfig]:
    """Step table and settings of a resolved scenario's replica (its engine, memory and replica count).

    KV capacity in tokens = the sweep's KV room / (KV bytes of a mean request / its tokens). `options`
    set SimConfig's other fields (on_full, prefix_hit, spec_k, spec_alpha, draft_cost).
    """
    inp = resolved_input(r)
    one = np.array([float(input_len)]), np.array([float(output_len)])
    res = evaluate(expand(inp, np.array([0]), input_len=one[0], output_len=one[1]))
    if not (bool(res.fits[0]) and res.kv_room_bytes[0] > 0):
        raise ValueError("the scenario does not fit in memory: no room for the KV cache of one request")
    per_token = float(res.kv_bytes_per_seq[0]) / (float(input_len) + float(output_len))
    kv_tokens = float(res.kv_room_bytes[0]) / per_token
    eng = r.engine
    ctx = max_context or min(float(r.arch.max_context), kv_tokens)
    table = StepTable.from_system(
        r.system,
        max_batch=eng.max_seqs,
        max_context=max(ctx, 2.0),
        max_prompt_tokens=max(eng.max_batch_tokens, eng.max_seqs * (options.get("spec_k", 0) + 1)),
    )
    cfg = SimConfig(
        mixed=eng.scheduler == "mixed",
        max_batch_tokens=eng.max_batch_tokens,
        max_seqs=eng.max_seqs,
        kv_capacity_tokens=kv_tokens,
        request_overhead_s=float(r.system.eff.request_overhead_s[0]),
        replicas=r.scenario.replicas,
        **options,
    )
    return table, cfg
