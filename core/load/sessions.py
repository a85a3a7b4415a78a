"""Multi-turn sessions and the prefix cache: the requests sessions send, and the analytic hit rate.

A session has T turns (a length distribution). Turn k sends the system prompt S, every earlier message and
reply, and its own new tokens u:  prompt_k = S + k u + sum_{j<k} reply_j.  What turn k could find in the cache
is the context the previous turn left, history_k = prompt_{k-1} + reply_{k-1} (turn 1: the system prompt).
Sessions start as the traffic's arrival process at rate lambda / E[T] (so requests arrive at lambda); the turns
of a session follow at exponential gaps of mean `think_s`, which are not scaled with the rate.

Prefix caching (vLLM automatic prefix caching, SGLang RadixAttention, TensorRT-LLM block reuse): the KV blocks of a
finished request stay in the cache, unreferenced, and are evicted least recently used first when memory is needed
(catalogs/engines.yaml `prefix_cache`). The shared system prompt is used by every request and never goes cold.

Analytic hit rate (Che, Tung and Wang 2002, "Hierarchical Web caching systems: modeling, design and experimental
results", IEEE JSAC 20(7): an LRU cache keeps an item while it is accessed again within the cache's characteristic
time t_C, the age at which LRU evicts). Per replica, finished requests leave their context c_i idle at rate lambda;
it stays until its session's next turn uses it or it ages past t_C. With an exponential gap G (mean theta) between
two turns and the previous turn's response time e (its mean E2E), the next turn finds the history idle with
probability p = exp(-e / theta) (it arrived after the reply) and then after an idle time Exp(theta), so

    occupancy(t) = lambda * mean_i( c_i * m_i(t) ),  m_i(t) = t                              (last turn)
                                                    m_i(t) = p theta (1 - exp(-t / theta)) + (1 - p) t (otherwise)
    t_C solves occupancy(t_C) = C_free   (C_free: KV tokens not held by running requests)
    P(hit of turn k >= 2) = p (1 - exp(-t_C / theta))

and the prefix hit rate is the share of prompt tokens served from the cache, sum_i P_i h_i / sum_i prompt_i (the
system prompt counted as a hit for every request after the first). An offload tier of C_2 tokens behind an
exclusive LRU gives a second characteristic time for C_free + C_2: hits between the two come from the tier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from llmcap.catalog.schema import LengthDistribution, SessionSpec
from llmcap.load.traffic import Lengths, TrafficError, interarrival_s, sample_lengths

MAX_TURNS = 10_000


@dataclass(frozen=True)
class SessionRequests:
    """Requests of sessions, in session order (turns of a session together). Arrival at a request rate r:
    start_unit / r + offset_s (the session starts scale with the rate, the think gaps do not)."""

    start_unit: np.ndarray  # session start at a mean request rate of 1 req/s
    offset_s: np.ndarray  # seconds from the session start to this turn
    session: np.ndarray  # session id (int)
    turn: np.ndarray  # 1-based
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    history_tokens: np.ndarray  # context the previous turn left (turn 1: the system prompt)
    has_next: np.ndarray  # bool: the session has a later turn
    system_tokens: int
    think_s: float

    @property
    def n(self) -> int:
        return len(self.input_tokens)

    def arrivals(self, rate_rps: float) -> np.ndarray:
        return self.start_unit / rate_rps + self.offset_s


def session_requests(
    spec: SessionSpec,
    output_tokens: Lengths,
    n: int,
    *,
    arrival: str = "poisson",
    cv: float = 1.0,
    seed: int = 0,
) -> SessionRequests:
    """`n` requests of whole sessions (the last session cut at n), seeded; replies from `output_tokens`."""
    if n < 1:
        raise TrafficError("a session workload needs at least one request")
    turns_rng, gap_rng, think_rng, out_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4))
    mean_turns = _mean(spec.turns)
    turns = sample_lengths(spec.turns, max(8, int(n / max(mean_turns, 1.0) * 1.5) + 8), turns_rng)
    turns = np.minimum(turns, MAX_TURNS)
    while turns.sum() < n:
        turns = np.concatenate([turns, np.minimum(sample_lengths(spec.turns, turns.size, turns_rng), MAX_TURNS)])
    last = int(np.searchsorted(np.cumsum(turns), n))
    turns = turns[: last + 1].copy()
    turns[-1] -= int(turns.sum() - n)
    sessions = turns.size
    starts = np.cumsum(interarrival_s(sessions, 1.0 / mean_turns, arrival, cv, gap_rng))  # type: ignore[arg-type]
    sid = np.repeat(np.arange(sessions), turns)
    first = np.concatenate([[0], np.cumsum(turns)[:-1]])
    turn = np.arange(n) - np.repeat(first, turns) + 1
    gaps = think_rng.exponential(spec.think_s, size=n) if spec.think_s > 0 else np.zeros(n)
    gaps[first] = 0.0
    offset = _cumsum_by_session(gaps, first, turns)
    reply = sample_lengths(output_tokens, n, out_rng)
    replies_before = _cumsum_by_session(np.where(turn > 1, np.roll(reply, 1), 0), first, turns)
    prompt = spec.system_prompt_tokens + turn * spec.new_tokens + replies_before
    history = np.where(turn > 1, prompt - spec.new_tokens, spec.system_prompt_tokens)
    has_next = np.ones(n, dtype=bool)
    has_next[np.cumsum(turns) - 1] = False
    return SessionRequests(
        start_unit=np.repeat(starts, turns),
        offset_s=offset,
        session=sid.astype(np.int64),
        turn=turn.astype(np.int64),
        input_tokens=prompt.astype(np.int64),
        output_tokens=reply.astype(np.int64),
        history_tokens=history.astype(np.int64),
        has_next=has_next,
        system_tokens=int(spec.system_prompt_tokens),
        think_s=float(spec.think_s),
    )


def _mean(d: LengthDistribution) -> float:
    return max(float(d.mean), 1.0)


def _cumsum_by_session(values: np.ndarray, first: np.ndarray, turns: np.ndarray) -> np.ndarray:
    """Running sum of `values` restarting at each session's first turn."""
    c = np.cumsum(values, dtype=float)
    base = np.repeat(c[first] - values[first], turns)
    return c - base


# -- analytic hit rate ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HitRate:
    """The analytic prefix cache per replica: token hit rate, its split by tier, and what stays resident."""

    hit_rate: float  # prompt tokens served from the cache (any tier) / prompt tokens
    gpu_hit_rate: float  # of which from device memory
    offload_hit_rate: float  # of which reloaded from the offload tier(s)
    prefill_tokens_per_request: float  # prompt tokens computed, mean
    resident_sessions: float  # idle session histories in the device cache (one replica)
    offload_resident_sessions: float  # and in the offload tier(s)
    t_cache_s: float  # LRU characteristic time of the device cache (inf: nothing is ever evicted)


def idle_time(t: float, p_idle: float, think_s: float) -> float:
    """Mean time a history with a later turn stays idle in an LRU cache of characteristic time t:
    p theta (1 - exp(-t / theta)) + (1 - p) t (module docstring)."""
    if think_s <= 0:
        return (1.0 - p_idle) * t
    return p_idle * think_s * (1.0 - math.exp(-t / think_s)) + (1.0 - p_idle) * t


def characteristic_time(context: np.ndarray, has_next: np.ndarray, p_idle: float, think_s: float,
                        rate_rps: float, capacity_tokens: float) -> float:  # fmt: skip
    """Che's t_C: the age at which LRU evicts, from occupancy(t_C) = capacity (see the module docstring)."""
    if capacity_tokens <= 0 or rate_rps <= 0:
        return 0.0
    c = np.asarray(context, dtype=float)

    def occupancy(t: float) -> float:
        return rate_rps * float(np.mean(c * np.where(has_next, idle_time(t, p_idle, think_s), t)))

    hi = 1.0
    while occupancy(hi) < capacity_tokens:
        hi *= 2.0
        if hi > 1e12:
            return math.inf
    lo = 0.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if occupancy(mid) < capacity_tokens:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def analytic_hit_rate(
    req: SessionRequests,
    rate_rps_per_replica: float,
    free_tokens: float,
    *,
    e2e_s: float,
    offload_tokens: float = 0.0,
) -> HitRate:
    """The prefix hit rate of `req` at a per-replica request rate with `free_tokens` of device KV for idle
    histories and `offload_tokens` more in an offload tier (Che's approximation; module docstring)."""
    s = req.input_tokens.astype(float)
    h = req.history_tokens.astype(float)
    ctx = s + req.output_tokens
    theta = req.think_s
    p_idle = math.exp(-e2e_s / theta) if theta > 0 else 0.0
    t1 = characteristic_time(ctx, req.has_next, p_idle, theta, rate_rps_per_replica, free_tokens)
    t2 = characteristic_time(ctx, req.has_next, p_idle, theta, rate_rps_per_replica, free_tokens + offload_tokens)

    def p_hit(t: float) -> float:
        if theta <= 0:
            return 0.0
        return p_idle * (1.0 - (0.0 if math.isinf(t) else math.exp(-t / theta)))

    later = req.turn > 1
    sys_tokens = float(req.system_tokens)
    # turn 1 and a missed history still find the shared system prompt
    base = np.minimum(sys_tokens, s - 1)
    gain = np.where(later, np.maximum(np.minimum(h, s - 1) - base, 0.0), 0.0)
    total = float(s.sum())
    gpu = float(base.sum() + p_hit(t1) * gain.sum())
    anywhere = float(base.sum() + p_hit(t2) * gain.sum())

    def resident(t: float) -> float:
        if not math.isfinite(t):
            return math.inf
        return rate_rps_per_replica * float(np.mean(np.where(req.has_next, idle_time(t, p_idle, theta), t)))

    r1, r2 = resident(t1), resident(t2)
    return HitRate(
        hit_rate=anywhere / total if total else 0.0,
        gpu_hit_rate=gpu / total if total else 0.0,
        offload_hit_rate=(anywhere - gpu) / total if total else 0.0,
        prefill_tokens_per_request=(total - anywhere) / req.n,
        resident_sessions=r1,
        offload_resident_sessions=max(r2 - r1, 0.0) if math.isfinite(r2) else math.inf,
        t_cache_s=t1,
    )
