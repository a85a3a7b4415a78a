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
TURN_FAMILIES = ("fixed", "exponential", "lognormal", "gamma", "uniform")


def parse_turns(text: str) -> LengthDistribution:
    """Turns per session from text: `N` (fixed) or `FAMILY:MEAN[:CV]` (FAMILY in TURN_FAMILIES; exponential's cv
    is 1, the others' 0 unless given). ValueError saying what is expected."""
    parts = [t.strip() for t in str(text).split(":")]
    try:
        if not str(text).isascii() or len(str(text)) > 200:  # float() reads other scripts' digits too
            raise ValueError
        if len(parts) == 1:
            n = float(parts[0])
            if not (math.isfinite(n) and n == int(n) and 1 <= n <= MAX_TURNS):
                raise ValueError
            return LengthDistribution(family="fixed", mean=n, min=1, max=MAX_TURNS)
        if len(parts) not in (2, 3) or parts[0] not in TURN_FAMILIES:
            raise ValueError
        mean = float(parts[1])
        cv = float(parts[2]) if len(parts) == 3 else (1.0 if parts[0] == "exponential" else 0.0)
        if not (math.isfinite(mean) and 1 <= mean <= MAX_TURNS and math.isfinite(cv) and 0 <= cv <= 20):
            raise ValueError
        return LengthDistribution(family=parts[0], mean=mean, cv=cv, min=1, max=MAX_TURNS)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        raise ValueError(
            f"expected N (1 to {MAX_TURNS}) or FAMILY:MEAN[:CV] with FAMILY one of {', '.join(TURN_FAMILIES)}, "
            f"MEAN 1 to {MAX_TURNS} and CV 0 to 20 (got {text!r})"
        ) from None


def turns_text(d: LengthDistribution) -> str:
    """The text parse_turns reads back as `d`."""
    if d.family == "fixed":
        return str(int(d.mean))
    default_cv = 1.0 if d.family == "exponential" else 0.0
    mean = f"{d.mean:g}"
    return f"{d.family}:{mean}" if d.cv == default_cv else f"{d.family}:{mean}:{d.cv:g}"


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


def idle_time(t, p_idle, think_s):
    """Mean time a history with a later turn stays idle in an LRU cache of characteristic time t (arrays):
    p theta (1 - exp(-t / theta)) + (1 - p) t (module docstring)."""
    t, p, theta = np.asarray(t, dtype=float), np.asarray(p_idle, dtype=float), np.asarray(think_s, dtype=float)
    safe = np.where(theta > 0, theta, 1.0)
    cold = -np.expm1(-np.where(np.isfinite(t), t, 1e300) / safe)
    return np.where(theta > 0, p * theta * cold + (1.0 - p) * t, (1.0 - p) * t)


@dataclass(frozen=True)
class SessionShape:
    """The few sums of a session workload the analytic hit rate needs (llmcap.load.sessions module docstring)."""

    context_next: float  # mean over requests of context x [the session has a later turn]
    context_last: float  # mean over requests of context x [last turn]
    gain_tokens: float  # sum over turns >= 2 of the history beyond the system prompt (what a hit adds)
    base_tokens: float  # sum of the system-prompt tokens every request finds cached
    prompt_tokens: float  # sum of the prompts
    n: int
    next_share: float  # share of requests with a later turn
    think_s: float

    @classmethod
    def of(cls, req: SessionRequests) -> SessionShape:
        s = req.input_tokens.astype(float)
        ctx = s + req.output_tokens
        base = np.minimum(float(req.system_tokens), s - 1)
        gain = np.where(req.turn > 1, np.maximum(np.minimum(req.history_tokens, s - 1) - base, 0.0), 0.0)
        return cls(
            context_next=float(np.mean(ctx * req.has_next)),
            context_last=float(np.mean(ctx * ~req.has_next)),
            gain_tokens=float(gain.sum()),
            base_tokens=float(base.sum()),
            prompt_tokens=float(s.sum()),
            n=req.n,
            next_share=float(np.mean(req.has_next)),
            think_s=float(req.think_s),
        )


def characteristic_times(shape: SessionShape, p_idle, rate_rps, capacity_tokens) -> np.ndarray:
    """Che's t_C per row (arrays): the age at which LRU evicts, from rate x occupancy(t_C) = capacity, where
    occupancy(t) = mean(c [next]) idle_time(t) + mean(c [last]) t; bisection on a log scale. inf where the
    cache never fills, 0 where it holds nothing."""
    p, lam, cap = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (p_idle, rate_rps, capacity_tokens)))

    def occupancy(t):
        return lam * (shape.context_next * idle_time(t, p, shape.think_s) + shape.context_last * t)

    lo, hi = np.full(p.shape, -9.0), np.full(p.shape, 13.0)  # log10 seconds
    for _ in range(60):
        mid = (lo + hi) / 2
        below = occupancy(10.0**mid) < cap
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    t = 10.0 ** ((lo + hi) / 2)
    t = np.where(occupancy(1e13) < cap, np.inf, t)
    return np.where((cap <= 0) | (lam <= 0), 0.0, t)


def hit_rates(shape: SessionShape, rate_rps, free_tokens, e2e_s, offload_tokens=0.0) -> dict[str, np.ndarray]:
    """Token hit rates per row (arrays): any tier, device memory, offload tier; prompt tokens computed per
    request; idle histories resident in device memory and in the tier; t_C of the device cache."""
    theta = shape.think_s
    e2e = np.asarray(e2e_s, dtype=float)
    p = np.exp(-e2e / theta) if theta > 0 else np.zeros_like(e2e)
    free = np.asarray(free_tokens, dtype=float)
    t1 = characteristic_times(shape, p, rate_rps, free)
    t2 = characteristic_times(shape, p, rate_rps, free + np.asarray(offload_tokens, dtype=float))

    def p_hit(t):
        return p * -np.expm1(-np.where(np.isfinite(t), t, 1e300) / theta) if theta > 0 else np.zeros_like(t)

    def resident(t):
        per = shape.next_share * idle_time(t, p, theta) + (1 - shape.next_share) * t
        return np.where(np.isfinite(t), np.asarray(rate_rps, dtype=float) * per, np.inf)

    total = max(shape.prompt_tokens, 1e-12)
    gpu = (shape.base_tokens + p_hit(t1) * shape.gain_tokens) / total
    anywhere = (shape.base_tokens + p_hit(t2) * shape.gain_tokens) / total
    r1, r2 = resident(t1), resident(t2)
    return {
        "hit_rate": anywhere,
        "gpu_hit_rate": gpu,
        "offload_hit_rate": anywhere - gpu,
        "prefill_tokens_per_request": shape.prompt_tokens * (1 - anywhere) / shape.n,
        "resident_sessions": r1,
        "offload_resident_sessions": np.where(np.isfinite(r2), np.maximum(r2 - r1, 0.0), np.inf),
        "t_cache_s": t1,
    }


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
    h = hit_rates(SessionShape.of(req), rate_rps_per_replica, free_tokens, e2e_s, offload_tokens)
    return HitRate(**{k: float(np.asarray(v).ravel()[0]) for k, v in h.items()})
