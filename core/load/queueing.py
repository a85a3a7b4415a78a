"""Open-loop serving, analytic and vectorized over many configurations: a flow-equivalent server.

The closed-loop model (estimate.serving.closed_loop, through estimate.sweep.evaluate) gives, for n requests in
a replica, the time to first token TTFT(n), the time per output token TPOT(n) and so the rate at which
requests complete, X(n) = n / E2E(n). Open-loop arrivals at rate lambda then make the number in the
replica a birth-death process (Chandy, Herzog and Woo 1975, "Parametric analysis of queuing networks":
the flow-equivalent server; exact for processor-sharing, whose distribution is insensitive to the
length distribution, Kelly 1979 "Reversibility and Stochastic Networks" ch. 3). Continuous batching
serves everyone admitted together, close to processor sharing:

  pi(n) = pi(0) * prod_{k=1..n} (lambda / X(k))^beta,        X(k) = X(n_max) for k > n_max

n_max is the concurrency the KV cache (at mean context) and max_seqs allow; above it requests wait.
beta = 2 / (ca^2 + 1) carries bursty arrivals as a diffusion (heavy-traffic) scaling: a G/G/1 queue's
length decays geometrically with rate 2 (1 - rho) / (ca^2 + cs^2) against M/M/1's (1 - rho) (Kingman
1961; Allen-Cunneen's (ca^2 + cs^2) / 2 factor on the mean wait); processor sharing makes the service
variability irrelevant, so cs = 1. Replicas split arrivals round-robin (as llmcap.load.simulate does): each sees
every R-th arrival, inter-arrival cv^2 = ca^2 / R.

Per request, by the state n it finds on arrival (PASTA for Poisson; assumed otherwise):
  queue wait  (n + 1 - n_max)+ / X(n_max)         (its place in line, served at the saturated rate)
  TTFT        wait + TTFT(min(n + 1, n_max))
  TPOT        TPOT(n_eff), n_eff = (min(n + 1, n_max) + E[min(N, n_max)]) / 2: the batch it decodes in
              relaxes from what it found toward the stationary mean (an assumption; checked against the
              simulator in tests/test_queueing.py)
  E2E         TTFT + (O - 1) TPOT with O lognormal (mean, cv) when an output cv is given
Percentiles are quantiles of these over the stationary distribution (and the output lengths).
Open-loop arrivals are not synchronized, so the closed-loop model runs in its steady-state regime
(wave_weight = 0). Stable while lambda < max rate = X(n_max) per replica; beyond, latencies are inf.
Goodput (DistServe, Zhong et al. 2024): the highest rate at which a share `pct` of requests meet both
the TTFT and the TPOT objective, found by bisection on the rate for all rows at once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from llmcap.estimate.serving import decode_contexts, per_stage_batch
from llmcap.estimate.sweep import SweepInput, evaluate, expand
from llmcap.perf.operators import decode_step, prefill_step

LOG_SPAN = 64.0  # > log of any concurrency, so shifted rows never interleave in _at
GRID = 48  # concurrency points per configuration (log-spaced from 1 to n_max)
TAIL = 24  # quantile points standing for the waiting line beyond n_max
LENGTH_POINTS = 12  # equal-probability output lengths when a cv is given


@dataclass(frozen=True)
class LoadCurve:
    """Closed-loop numbers per replica on a concurrency grid (rows x GRID), steady-state regime."""

    n: np.ndarray
    ttft_s: np.ndarray
    tpot_s: np.ndarray
    rate: np.ndarray  # completions per second per replica: n / E2E(n)
    output_len: np.ndarray  # rows
    replicas: np.ndarray  # rows
    fits: np.ndarray  # rows, bool

    @property
    def max_rate_rps(self) -> np.ndarray:
        """Highest sustainable request rate of the deployment: X(n_max) x replicas (0 where it does not fit)."""
        return np.where(self.fits, self.rate.max(axis=1) * self.replicas, 0.0)


def load_curve(inp: SweepInput, grid: int = GRID) -> LoadCurve:
    """Evaluate the serving model at `grid` concurrencies per row, up to the KV/max_seqs limit.

    TTFT(n) is the closed-loop model's (steady state). Decoding is modelled as a stream of decode steps
    d(n) that every arriving prompt interrupts for `delta`: its own iteration under prefill-first, the
    extra time of the iteration that carries it under chunked prefill (a whole prompt in one iteration
    costs far more than the same tokens spread thinly over many, the roofline's max(compute, memory)).
    At completion rate X prompts take a share X delta of the time, so TPOT = d / (1 - X delta).
    """
    rows = len(inp.input_len)
    eff = inp.system.eff
    steady = dataclasses.replace(inp.system, eff=dataclasses.replace(eff, wave_weight=np.zeros_like(eff.wave_weight)))
    inp = dataclasses.replace(inp, system=steady)
    idx = np.arange(rows)
    top = evaluate(expand(inp, idx, concurrency=np.full(rows, np.inf)))
    n_max = np.maximum(top.running, 1.0)
    n = np.round(n_max[:, None] ** np.linspace(0.0, 1.0, grid)[None, :])
    rep = np.repeat(idx, grid)
    ex = expand(inp, rep, concurrency=n.ravel() * inp.replicas[rep])
    ttft = evaluate(ex).ttft_s.reshape(rows, grid)
    decode_s, delta_s = _decode_and_prompt(ex, n.ravel())
    decode_s, delta_s = decode_s.reshape(rows, grid), delta_s.reshape(rows, grid)
    decodes = np.maximum(inp.output_len - 1, 0.0)[:, None]
    rate = _completion_rate(n, ttft, decodes * decode_s, delta_s)
    tpot = np.where(decodes > 0, decode_s / np.maximum(1 - rate * delta_s, 1e-9), 0.0)
    # more requests in flight never lowers throughput: an engine can always hold some back
    rate = np.maximum.accumulate(rate, axis=1)
    return LoadCurve(
        n=n,
        ttft_s=ttft,
        tpot_s=tpot,
        rate=rate,
        output_len=inp.output_len.astype(float),
        replicas=inp.replicas.astype(float),
        fits=top.fits.astype(bool),
    )


def _decode_and_prompt(ex: SweepInput, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decode step time at batch n and the time one prompt adds (in chunks of at most the token budget)."""
    sys = ex.system
    s, o = ex.input_len, ex.output_len
    full, slide = decode_contexts(sys, s, o)
    dec = decode_step(per_stage_batch(n, sys.layout), full, slide)
    decode_s = sys.time(dec).total_s
    mixed = ex.engine.mixed > 0
    room = np.where(mixed, np.maximum(ex.engine.max_batch_tokens - n, 1.0), ex.engine.max_batch_tokens)
    chunks = np.ceil(s / room)
    chunk = prefill_step(np.ones_like(s), s / chunks, sys.shape)
    alone = sys.time(chunk).total_s
    extra = sys.time(dec + chunk).total_s - decode_s
    return decode_s, chunks * np.where(mixed, extra, alone)


def _completion_rate(n: np.ndarray, ttft: np.ndarray, decode_s: np.ndarray, delta_s: np.ndarray) -> np.ndarray:
    """Completion rate X of n requests in service when each arrival's prompt stops decoding for delta_s.

    Prompts take a share X delta of the time, so a decode token takes d / (1 - X delta) and
    X = n / (TTFT + (O - 1) d / (1 - X delta)): with A = TTFT, B = (O - 1) d, p = delta,
    A p X^2 - (A + B + n p) X + n = 0, whose smaller root keeps X p < 1.
    """
    a, p = np.maximum(ttft, 1e-12), np.maximum(delta_s, 1e-15)
    lin = a + decode_s + n * p
    disc = np.sqrt(np.maximum(lin * lin - 4 * a * p * n, 0.0))
    return 2 * n / (lin + disc)  # the smaller root, written without cancellation


@dataclass(frozen=True)
class QueueResult:
    """Arrays over configurations (seconds); `*_p` columns follow `percentiles`."""

    percentiles: tuple[float, ...]
    stable: np.ndarray
    ttft_s: np.ndarray
    ttft_p: np.ndarray
    tpot_s: np.ndarray
    tpot_p: np.ndarray
    e2e_s: np.ndarray
    e2e_p: np.ndarray
    queue_s: np.ndarray
    queue_p: np.ndarray
    utilization: np.ndarray  # rate / max rate
    mean_batch: np.ndarray  # E[min(N, n_max)] per replica
    in_system: np.ndarray  # E[N] per replica
    max_rate_rps: np.ndarray
    p_empty: np.ndarray  # P(N = 0) per replica: the share of time a replica holds no request (0 where unstable)


@dataclass(frozen=True)
class _States:
    prob: np.ndarray  # rows x K: probability an arrival finds each state
    ttft: np.ndarray
    tpot: np.ndarray
    wait: np.ndarray
    n: np.ndarray
    stable: np.ndarray


@dataclass(frozen=True)
class _Fixed:
    """The parts of _states that do not depend on the rate, computed once per curve (a goodput search asks for the
    stationary distribution of the same curve at many rates)."""

    curve: LoadCurve
    log_x: np.ndarray  # log completion rate per grid state
    step: np.ndarray  # integer states between grid points
    width: np.ndarray  # integer states each grid point stands for
    served: np.ndarray  # rows x (1 + grid): requests in service once an arrival finding empty/grid state is admitted
    ttft_served: np.ndarray  # TTFT at `served`; beyond n_max it is TTFT(n_max)
    wait_body: np.ndarray  # queue wait of an arrival finding empty/grid state (1 / X(n_max) at n_max, else 0)


def _fixed(curve: LoadCurve) -> _Fixed:
    rows = curve.n.shape[0]
    n = curve.n
    x = np.maximum(curve.rate, 1e-30)
    step = np.diff(n, axis=1)
    gaps = np.concatenate([np.zeros((rows, 1)), step, np.zeros((rows, 1))], axis=1)
    width = (gaps[:, :-1] + gaps[:, 1:]) / 2
    width[:, 0] += 0.5
    width[:, -1] += 0.5
    n_max = n[:, -1:]
    body = np.concatenate([np.zeros((rows, 1)), n], axis=1)
    served = np.minimum(body + 1, n_max)
    return _Fixed(
        curve=curve,
        log_x=np.log(x),
        step=step,
        width=width,
        served=served,
        ttft_served=_at(n, curve.ttft_s, served),
        wait_body=np.maximum(body + 1 - n_max, 0.0) / x[:, -1:],
    )


def _states(curve: LoadCurve, rate_rps, arrival_cv, fixed: _Fixed | None = None) -> _States:
    """Stationary distribution over: empty, the grid states 1..n_max, and TAIL quantiles of the line."""
    fx = fixed if fixed is not None else _fixed(curve)
    rows, g = curve.n.shape
    lam = np.broadcast_to(np.asarray(rate_rps, dtype=float), (rows,)) / curve.replicas
    ca2 = np.broadcast_to(np.asarray(arrival_cv, dtype=float), (rows,)) ** 2 / curve.replicas
    beta = 2.0 / (ca2 + 1.0)
    n = curve.n
    phi = beta[:, None] * (np.log(np.maximum(lam, 1e-300))[:, None] - fx.log_x)  # log birth-death ratio per state
    # log pi(n) - log pi(0) = sum of phi(k) over k = 1..n; between grid points phi is linear in k, so the
    # integers in (n_{j-1}, n_j] add d phi_{j-1} + (phi_j - phi_{j-1}) (d + 1) / 2, d = n_j - n_{j-1}
    step = fx.step
    add = step * phi[:, :-1] + (phi[:, 1:] - phi[:, :-1]) * (step + 1) / 2 * (step > 0)
    cum = np.concatenate([phi[:, :1], phi[:, :1] + np.cumsum(add, axis=1)], axis=1)
    # each grid point stands for the integer states around it (trapezoid weights, in _fixed; duplicates weigh 0)
    g_tail = np.exp(phi[:, -1])  # ratio of successive states beyond n_max
    stable = (g_tail < 1.0) & curve.fits & (lam > 0)
    g_safe = np.where(stable, g_tail, 0.5)
    # waiting line: q = 1, 2, ... geometric (mean 1 / (1 - g)); TAIL equal-probability points of it,
    # scaled so that their mean is exact (means of waits are linear in q)
    u = (np.arange(TAIL) + 0.5) / TAIL
    q = 1.0 + np.log1p(-u)[None, :] / np.log(g_safe)[:, None]
    q = q * (1.0 / (1.0 - g_safe))[:, None] / q.mean(axis=1, keepdims=True)
    tail_mass = g_safe / (1 - g_safe)
    shift = np.maximum(cum.max(axis=1), 0.0)[:, None]  # keeps exp() in range
    body = np.exp(cum - shift) * fx.width
    empty = np.exp(-shift)
    tail = np.exp(cum[:, -1:] - shift) * (tail_mass[:, None] / TAIL)
    prob = np.concatenate([empty, body, np.broadcast_to(tail, (rows, TAIL))], axis=1)
    prob = prob / prob.sum(axis=1, keepdims=True)
    n_max = n[:, -1:]
    states = np.concatenate([np.zeros((rows, 1)), n, n_max + q], axis=1)
    # every arrival that finds the line full is served at n_max: one TTFT and TPOT column stands for the tail
    mean_served = (prob[:, : g + 1] * np.minimum(states[:, : g + 1], n_max)).sum(axis=1, keepdims=True)
    mean_served = mean_served + prob[:, g + 1 :].sum(axis=1, keepdims=True) * n_max
    wait = np.concatenate([fx.wait_body, (q + 1.0) / np.maximum(curve.rate[:, -1:], 1e-30)], axis=1)
    ttft = wait + np.concatenate([fx.ttft_served, np.broadcast_to(curve.ttft_s[:, -1:], (rows, TAIL))], axis=1)
    served = np.concatenate([fx.served, n_max], axis=1)
    tpot = _at(n, curve.tpot_s, (served + np.maximum(mean_served, 1.0)) / 2)
    tpot = np.concatenate([tpot, np.broadcast_to(tpot[:, -1:], (rows, TAIL - 1))], axis=1)
    return _States(prob=prob, ttft=ttft, tpot=tpot, wait=wait, n=states, stable=stable)


def _at(n: np.ndarray, values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Row-wise linear interpolation of values(n) at x (rows x k), in log n.

    One searchsorted over all rows at once: each row's log grid is shifted by its own offset so the
    concatenation stays sorted (log n spans far less than LOG_SPAN). Gathers index the flattened arrays
    (cheaper than take_along_axis).
    """
    rows, g = n.shape
    ln, lx = np.log(n), np.log(np.clip(x, n[:, :1], n[:, -1:]))
    base = (np.arange(rows) * g)[:, None]
    off = (np.arange(rows, dtype=float) * LOG_SPAN)[:, None]
    j = np.searchsorted((ln + off).ravel(), (lx + off).ravel(), side="right").reshape(lx.shape)
    j = np.clip(j - 1 - base, 0, g - 2) + base
    flat_ln, flat_v = ln.ravel(), values.ravel()
    lo, hi = flat_ln[j], flat_ln[j + 1]
    w = np.where(hi > lo, (lx - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0)
    return (1 - w) * flat_v[j] + w * flat_v[j + 1]


def _quantiles(values: np.ndarray, prob: np.ndarray, pcts: tuple[float, ...]) -> np.ndarray:
    """Row-wise quantiles of a discrete distribution (values with probabilities), rows x len(pcts)."""
    rows, k = values.shape
    order = (np.argsort(values, axis=1) + (np.arange(rows) * k)[:, None]).ravel()
    v = values.ravel()[order].reshape(rows, k)
    c = np.cumsum(prob.ravel()[order].reshape(rows, k), axis=1)
    out = []
    for pct in pcts:
        j = np.argmax(c >= pct / 100.0 - 1e-12, axis=1)
        out.append(v[np.arange(rows), j])
    return np.stack(out, axis=1)


def _length_factors(output_cv, rows: int) -> np.ndarray:
    """Equal-probability multipliers of the mean output length, lognormal with the given cv (rows x M)."""
    cv = np.broadcast_to(np.asarray(output_cv, dtype=float), (rows,))
    sigma = np.sqrt(np.log1p(cv**2))[:, None]
    z = ndtri((np.arange(LENGTH_POINTS) + 0.5) / LENGTH_POINTS)[None, :]
    return np.exp(sigma * z - sigma**2 / 2)


def analyze(
    curve: LoadCurve,
    rate_rps,
    *,
    arrival_cv=1.0,
    output_cv=0.0,
    percentiles: tuple[float, ...] = (50.0, 90.0, 99.0),
) -> QueueResult:
    """Latency means and percentiles at `rate_rps` (whole deployment) for every configuration in `curve`."""
    st = _states(curve, rate_rps, arrival_cv)
    rows = len(st.prob)
    o = np.maximum(curve.output_len - 1, 0.0)[:, None, None]
    f = _length_factors(output_cv, rows)[:, None, :]
    e2e = st.ttft[:, :, None] + o * f * st.tpot[:, :, None]
    e2e_prob = np.broadcast_to(st.prob[:, :, None] / LENGTH_POINTS, e2e.shape)
    lam = np.broadcast_to(np.asarray(rate_rps, dtype=float), (rows,))
    inf = np.where(st.stable, 0.0, np.inf)[:, None]

    def mean(v):
        return (st.prob * v).sum(axis=1) + inf[:, 0]

    def pcts(v, p=st.prob):
        return _quantiles(v, p, percentiles) + inf

    n_max = curve.n[:, -1:]
    return QueueResult(
        percentiles=tuple(percentiles),
        stable=st.stable,
        ttft_s=mean(st.ttft),
        ttft_p=pcts(st.ttft),
        tpot_s=mean(st.tpot),
        tpot_p=pcts(st.tpot),
        e2e_s=mean(st.ttft + o[:, :, 0] * st.tpot),
        e2e_p=pcts(e2e.reshape(rows, -1), e2e_prob.reshape(rows, -1)),
        queue_s=mean(st.wait),
        queue_p=pcts(st.wait),
        utilization=lam / np.maximum(curve.max_rate_rps, 1e-30),
        mean_batch=(st.prob * np.minimum(st.n, n_max)).sum(axis=1) + inf[:, 0],
        in_system=(st.prob * st.n).sum(axis=1) + inf[:, 0],
        max_rate_rps=curve.max_rate_rps,
        p_empty=np.where(st.stable, st.prob[:, 0], 0.0),
    )


def attainment(curve: LoadCurve, rate_rps, ttft_slo_s, tpot_slo_s, *, arrival_cv=1.0, _fx: _Fixed | None = None):
    """Share of requests meeting both objectives at `rate_rps` (0 where unstable)."""
    st = _states(curve, rate_rps, arrival_cv, _fx)
    ok = (st.ttft <= np.asarray(ttft_slo_s, dtype=float)[..., None]) & (
        st.tpot <= np.asarray(tpot_slo_s, dtype=float)[..., None]
    )
    share = np.round((st.prob * ok).sum(axis=1), 12)  # a share: summing probabilities must not jitter past 1
    return np.where(st.stable, np.clip(share, 0.0, 1.0), 0.0)


def goodput(
    curve: LoadCurve, ttft_slo_s, tpot_slo_s, *, pct: float = 90.0, arrival_cv=1.0, iterations: int = 40
) -> np.ndarray:
    """Highest deployment rate (req/s) at which >= pct% of requests meet both objectives (DistServe); 0 if none."""
    hi = curve.max_rate_rps.astype(float).copy()
    lo = np.zeros_like(hi)
    fx = _fixed(curve)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        ok = attainment(curve, mid, ttft_slo_s, tpot_slo_s, arrival_cv=arrival_cv, _fx=fx) >= pct / 100.0
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    return lo
