"""The simulator's prefix cache (llmcap.load.simulate), request by request: the KV a finished request leaves,
kept per session in least-recently-used order and evicted when running requests need the memory, optionally
demoted to offload tiers (CPU memory, local SSD) instead of being dropped.

As in vLLM's automatic prefix caching and SGLang's RadixAttention: blocks no running request references stay
cached and the least recently used go first; a new request reuses the longest cached prefix of its prompt. Here
the prefix a turn can reuse is its session's history (llmcap.load.sessions), and the shared system prompt is
held by every running request, so it is never evicted once computed.

Offload tiers (vLLM's KV offloading connector, LMCache, SGLang's hierarchical cache): what device memory evicts
moves to the next tier (exclusive LRU levels); a hit there is reloaded over the tier's link before the prompt's
remaining tokens run, unless recomputing those tokens is faster (llmcap.load.offload.reload_or_recompute): the
reload time is added to the request's TTFT (the copy runs beside the engine's steps, as those connectors
load asynchronously), a recompute counts as a miss.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tier:
    """An offload tier behind device memory: its KV capacity and transfer time per token to the device."""

    name: str
    capacity_tokens: float
    seconds_per_token: float


@dataclass(frozen=True)
class CacheSpec:
    """What the simulator needs to cache prefixes: per request (input order) its session and the history it
    could reuse, the shared system prompt, and the offload tiers."""

    session: np.ndarray
    history_tokens: np.ndarray
    system_tokens: int = 0
    tiers: tuple[Tier, ...] = ()
    forked: np.ndarray | None = None  # bool per request: a later sample of a prompt, whose prompt KV is shared

    def head(self, k: int) -> CacheSpec:
        """The spec of the first k requests."""
        f = None if self.forked is None else self.forked[:k]
        return CacheSpec(self.session[:k], self.history_tokens[:k], self.system_tokens, self.tiers, f)


class ReplicaCache:
    """One replica's cache: LRU levels (device, then each tier) of session -> tokens, and per-request results."""

    def __init__(self, spec: CacheSpec, ids: np.ndarray, recompute_s: Callable[[float], float]):
        self.session = spec.session[ids].tolist()
        self.forked = spec.forked[ids].tolist() if spec.forked is not None else None
        self.history = spec.history_tokens[ids].tolist()
        self.system = int(spec.system_tokens)
        self.tiers = spec.tiers
        self.levels: list[OrderedDict[int, float]] = [OrderedDict() for _ in range(1 + len(spec.tiers))]
        self.sizes = [0.0] * (1 + len(spec.tiers))
        n = len(ids)
        self.cached = [-1] * n
        self.tier = [-1] * n  # -1 miss, 0 device, 1.. offload tier
        self.delay = [0.0] * n
        self.system_warm = False
        self.recompute_s = recompute_s
        self.resident_sum = 0.0  # idle histories in device memory, summed over admissions
        self.admissions = 0

    @property
    def idle(self) -> float:
        return self.sizes[0]

    @property
    def resident_sessions(self) -> float:
        """Mean number of idle session histories in device memory, as arriving requests find it."""
        return self.resident_sum / self.admissions if self.admissions else 0.0

    def admit(self, i: int, prompt: int) -> int:
        """Tokens of request i's prompt found in the cache (its session's entry leaves the idle pool)."""
        sid = self.session[i]
        self.resident_sum += len(self.levels[0])
        self.admissions += 1
        found = None
        for level, table in enumerate(self.levels):
            if sid in table:
                found = level, table.pop(sid)
                self.sizes[level] -= found[1]
                break
        base = min(self.system, prompt - 1) if self.system_warm else 0
        self.system_warm = self.system_warm or self.system > 0
        cached, tier, delay = base, -1, 0.0
        if found is not None:
            level, stored = found
            reuse = min(self.history[i], stored, prompt - 1)
            if reuse > base:
                if level == 0:
                    cached, tier = reuse, 0
                else:
                    how, seconds = reload_or_recompute(reuse, self.tiers[level - 1].seconds_per_token,
                                                       self.recompute_s(reuse))  # fmt: skip
                    if how == "reload":
                        cached, tier, delay = reuse, level, seconds
        if self.forked is not None and self.forked[i] and prompt - 1 > cached:
            cached, tier, delay = prompt - 1, 0, 0.0  # the prompt was prefilled once for all samples (forked)
        if self.cached[i] < 0:  # the first admission counts (a preempted request is admitted again)
            self.cached[i], self.tier[i], self.delay[i] = cached, tier, delay
        return cached

    def finish(self, i: int, context: float) -> None:
        """Request i finished: its context stays cached for its session, most recently used."""
        sid = self.session[i]
        for level, table in enumerate(self.levels):
            old = table.pop(sid, None)
            if old is not None:
                self.sizes[level] -= old
        self.levels[0][sid] = context
        self.sizes[0] += context

    def evict(self, room: float) -> None:
        """Keep the device level within `room` tokens, demoting its least recently used entries down the tiers."""
        self._shrink(0, max(room, 0.0))

    def _shrink(self, level: int, limit: float) -> None:
        table = self.levels[level]
        while self.sizes[level] > limit + 1e-6 and table:
            sid, tokens = table.popitem(last=False)
            self.sizes[level] -= tokens
            if level + 1 < len(self.levels):
                nxt = self.levels[level + 1]
                nxt[sid] = tokens
                self.sizes[level + 1] += tokens
                self._shrink(level + 1, self.tiers[level].capacity_tokens)
        if not table:
            self.sizes[level] = 0.0


def reload_or_recompute(tokens: float, seconds_per_token: float, recompute_s: float) -> tuple[str, float]:
    """'reload' with its transfer time when faster than recomputing `tokens` (`recompute_s`), else 'recompute'
    with that time: a tiered cache reloads a prefix only when the copy beats the prefill."""
    reload_s = tokens * seconds_per_token
    return ("reload", reload_s) if reload_s < recompute_s else ("recompute", recompute_s)


def no_cache_results(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """cached tokens, hit tier and reload delay arrays of a simulation without a prefix cache."""
    return np.full(n, math.nan), np.full(n, -1, dtype=np.int64), np.zeros(n)
