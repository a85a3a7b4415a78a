"""Step-time table of one resolved scenario: engine iteration time as a cheap function of the batch.

The simulator asks for the time of a hundred thousand different iterations; `System.time` per step
would dominate its run time. So the estimator is sampled once, vectorized, on a grid over the numbers
that describe an iteration of continuous batching, and interpolated:

  b   decode sequences (one new token each) at a mean context of m tokens (KV read b * m)
  p   prompt tokens computed in the iteration (prefill chunks, or draft tokens being verified)
  q   their attention pairs (keys summed over the p queries: a whole prompt of s tokens alone has
      s (s + 1) / 2, a chunk of c tokens after a cached prefix of h tokens has c h + c (c + 1) / 2)

Two tables: prefill-only iterations (b = 0) over (p, L = q / p), and iterations with decodes over
(b, m, p, r = q / (b m)). The ratio r is an axis because the roofline's attention row takes
max(compute, memory) over the decode and prompt pairs together: its kink sits at a fixed ratio of
prompt to decode pairs, which a grid in (m, L) would cut diagonally. Multilinear interpolation (linear
inside each cell) reproduces the products b * m and r * b * m exactly, and the knots of each axis are
chosen where the sampled curve bends (`simplify`), so grid points are exact and points between them
stay within about 2% (tests/test_simulate.py). Sliding-window layers see min(context, window).
Pipeline parallelism: decodes run as pp micro-batches (llmcap.estimate.serving.per_stage_batch), as in the
closed-loop model.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

import numpy as np

from llmcap.estimate.serving import System, per_stage_batch
from llmcap.perf.interp import multilinear
from llmcap.perf.operators import Step, decode_step

R_MIN = 1e-3  # below this ratio of prompt to decode pairs the prompt's attention is negligible


def fine_axis(top: float, zero: bool = False, bottom: float = 1.0, step: float = 1.02) -> np.ndarray:
    """Candidate knots: every integer up to 64 (from `bottom`), then `step` ratios up to `top`."""
    top = max(float(top), bottom * 2)
    if bottom >= 1:
        dense = np.arange(bottom, min(top, 64.0) + 1)
        start = min(top, 64.0)
    else:
        dense, start = np.array([bottom]), bottom
    n = max(int(np.log(max(top / start, 1.0)) / np.log(step)), 1) + 1
    tail = np.geomspace(start, top, n)
    pts = np.unique(np.concatenate([dense, np.round(tail) if bottom >= 1 else tail]))
    return np.concatenate([[0.0], pts]) if zero else pts


def simplify(x: np.ndarray, y: np.ndarray, tol: float) -> np.ndarray:
    """Knots (a subset of x, ends kept) whose piecewise-linear interpolant stays within relative `tol` of y.

    y has shape (len(x), k): k curves sampled along x; a segment is kept only if it fits all of them.
    Greedy one pass: from each knot jump to the farthest x that still fits (galloping search).
    """
    keep, i, n = [0], 0, len(x)
    while i < n - 1:
        j, step = i + 1, 1
        while j + step < n and _fits(x, y, i, j + step, tol):
            j += step
            step *= 2
        while step > 1:
            step //= 2
            if j + step < n and _fits(x, y, i, j + step, tol):
                j += step
        keep.append(j)
        i = j
    return x[keep]


def _fits(x: np.ndarray, y: np.ndarray, i: int, j: int, tol: float) -> bool:
    w = ((x[i : j + 1] - x[i]) / (x[j] - x[i]))[:, None]
    line = (1 - w) * y[i] + w * y[j]
    return bool(np.all(np.abs(line - y[i : j + 1]) <= tol * np.abs(y[i : j + 1])))


def iteration_step(sys: System, b, m, p, q) -> Step:
    """The Step of one iteration: b decodes at mean context m plus p prompt tokens with q attention pairs."""
    b, m, p, q = (np.asarray(x, dtype=float) for x in (b, m, p, q))
    window = sys.shape.window
    b_stage = np.where(b > 0, per_stage_batch(b, sys.layout), 0.0)
    mean_keys = q / np.maximum(p, 1.0)
    has_prompt = (p > 0).astype(float)
    prompt = Step(
        tokens=p,
        seqs=has_prompt,
        logit_rows=has_prompt,
        pairs_full=q,
        pairs_sliding=p * np.where(window > 0, np.minimum(mean_keys, np.maximum(window, 1.0)), mean_keys),
        decode_pairs_frac=np.zeros_like(p),
    )
    slide_m = np.where(window > 0, np.minimum(m, np.maximum(window, 1.0)), m)
    return decode_step(b_stage, m, slide_m) + prompt


def _sample_knots(fn, fine: list[np.ndarray], tol: float, probes: int = 5) -> list[np.ndarray]:
    """Simplify each axis along slices where the other axes sit at `probes` spread values (one call to fn)."""
    picks = [f[np.unique(np.linspace(0, len(f) - 1, probes).round().astype(int))] for f in fine]
    blocks = []
    for k in range(len(fine)):
        axes = [picks[a] if a != k else fine[k] for a in range(len(fine))]
        grid = np.meshgrid(*axes, indexing="ij")
        blocks.append([np.moveaxis(g, k, 0).reshape(len(fine[k]), -1) for g in grid])
    flat = [np.concatenate([blk[a].ravel() for blk in blocks]) for a in range(len(fine))]
    t = np.broadcast_to(fn(*flat), flat[0].shape)
    knots, start = [], 0
    for k, blk in enumerate(blocks):
        size = blk[0].size
        knots.append(simplify(fine[k], t[start : start + size].reshape(len(fine[k]), -1), tol))
        start += size
    return knots


def _fill(fn, knots: list[np.ndarray]) -> np.ndarray:
    grid = [g.ravel() for g in np.meshgrid(*knots, indexing="ij")]
    return np.array(np.broadcast_to(fn(*grid), grid[0].shape)).reshape(tuple(len(k) for k in knots))


@dataclass(frozen=True)
class StepTable:
    """Iteration times (seconds): `prefill_s[p, L]` without decodes, `mixed_s[b, m, p, r]` with b >= 1."""

    pf_p: np.ndarray
    pf_L: np.ndarray
    prefill_s: np.ndarray
    b: np.ndarray
    m: np.ndarray
    p: np.ndarray
    r: np.ndarray
    mixed_s: np.ndarray

    @classmethod
    def from_function(
        cls, fn, *, max_batch: float, max_context: float, max_prompt_tokens: float, tol: float = 0.002
    ) -> StepTable:
        """Tabulate fn(b, m, p, q) -> seconds (arrays), picking knots where the curve bends."""
        max_pairs = max_prompt_tokens * max_context
        p_axis = fine_axis(max_prompt_tokens)
        L_axis = fine_axis(max_context)
        pf_knots = _sample_knots(lambda p, L: fn(0 * p, 1 + 0 * p, p, p * L), [p_axis, L_axis], tol, probes=60)
        r_axis = np.concatenate([[0.0], fine_axis(max_pairs, bottom=R_MIN, step=1.05)])
        mixed_fine = [fine_axis(max_batch), fine_axis(max_context), np.concatenate([[0.0], p_axis]), r_axis]
        mixed_knots = _sample_knots(
            lambda b, m, p, r: fn(b, m, p, np.where(p > 0, r * b * m, 0.0)), mixed_fine, tol, probes=6
        )
        return cls(
            *pf_knots,
            _fill(lambda p, L: fn(0 * p, 1 + 0 * p, p, p * L), pf_knots),
            *mixed_knots,
            _fill(lambda b, m, p, r: fn(b, m, p, np.where(p > 0, r * b * m, 0.0)), mixed_knots),
        )

    @classmethod
    def from_system(cls, sys: System, **limits: float) -> StepTable:
        """Sample `sys.time` (limits: max_batch, max_context, max_prompt_tokens, tol)."""

        def fn(b, m, p, q):
            return sys.time(iteration_step(sys, b, m, p, q)).total_s

        return cls.from_function(fn, **limits)

    def time_s(self, b, m, p, q) -> np.ndarray:
        """Interpolated iteration time for arrays of (b decodes, mean context m, p prompt tokens, q pairs)."""
        b, m, p, q = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (b, m, p, q)))
        bm = np.maximum(b * m, 1e-30)
        mixed = multilinear([self.b, self.m, self.p, self.r], self.mixed_s, [b, m, p, np.where(p > 0, q / bm, 0.0)])
        alone = multilinear([self.pf_p, self.pf_L], self.prefill_s, [p, q / np.maximum(p, 1.0)])
        return np.where(b > 0, mixed, np.where(p > 0, alone, 0.0))

    def lookups(self) -> Lookups:
        return Lookups(self)


class Lookups:
    """Scalar interpolation for the simulator's inner loop: Python floats and `bisect`, no numpy per call.

    decode(b, m) serves the decode-only iterations (rows per integer batch, interpolated along b once
    and cached); mixed(b, m, p, q) and prefill(p, q) the iterations that carry prompt tokens.
    """

    def __init__(self, table: StepTable):
        self.b, self.m, self.p, self.r = (a.tolist() for a in (table.b, table.m, table.p, table.r))
        self.pf_p, self.pf_L = table.pf_p.tolist(), table.pf_L.tolist()
        self.flat = table.mixed_s.ravel().tolist()
        self.pf_flat = table.prefill_s.ravel().tolist()
        nb, nm, np_, nr = table.mixed_s.shape
        self.strides = (nm * np_ * nr, np_ * nr, nr)
        self.shape = table.mixed_s.shape
        self.pf_stride = table.prefill_s.shape[1]
        self._decode_grid = table.mixed_s[:, :, 0, 0]  # p = 0 is the first knot of the p axis
        self._rows: dict[int, list[float]] = {}

    @staticmethod
    def _cell(axis: list[float], x: float) -> tuple[int, float]:
        n = len(axis)
        if n == 1:
            return 0, 0.0
        i = bisect_right(axis, x) - 1
        if i < 0:
            return 0, 0.0
        if i >= n - 1:
            return n - 2, 1.0
        lo = axis[i]
        return i, (x - lo) / (axis[i + 1] - lo)

    def _row(self, b: int) -> list[float]:
        row = self._rows.get(b)
        if row is None:
            i, w = self._cell(self.b, float(b))
            g = self._decode_grid
            j = min(i + 1, g.shape[0] - 1)
            row = ((1 - w) * g[i] + w * g[j]).tolist()
            self._rows[b] = row
        return row

    def decode(self, b: int, m: float) -> tuple[float, float]:
        """(time, d time / d m) of a decode-only iteration of b >= 1 sequences at mean context m."""
        row, axis = self._row(b), self.m
        if len(axis) == 1:
            return row[0], 0.0
        j, w = self._cell(axis, m)
        slope = (row[j + 1] - row[j]) / (axis[j + 1] - axis[j])
        return row[j] + w * (row[j + 1] - row[j]), slope

    def prefill(self, p: float, q: float) -> float:
        """Time of a prefill-only iteration of p prompt tokens with q attention pairs."""
        (i, wi), (j, wj) = self._cell(self.pf_p, p), self._cell(self.pf_L, q / p)
        f, s = self.pf_flat, self.pf_stride
        ni, nj = len(self.pf_p), len(self.pf_L)
        i1, j1 = min(i + 1, ni - 1), min(j + 1, nj - 1)
        return (1 - wi) * ((1 - wj) * f[i * s + j] + wj * f[i * s + j1]) + wi * (
            (1 - wj) * f[i1 * s + j] + wj * f[i1 * s + j1]
        )

    def mixed(self, b: int, m: float, p: float, q: float) -> float:
        """Time of an iteration with b >= 1 decodes at mean context m and p prompt tokens with q pairs."""
        (i0, w0), (i1, w1) = self._cell(self.b, b), self._cell(self.m, m)
        (i2, w2), (i3, w3) = self._cell(self.p, p), self._cell(self.r, q / (b * m) if p > 0 else 0.0)
        flat, (s0, s1, s2), shape = self.flat, self.strides, self.shape
        last3 = shape[3] - 1
        total = 0.0
        for d0, f0 in ((0, 1 - w0), (1, w0)):
            if f0 == 0.0 or i0 + d0 >= shape[0]:
                continue
            o0 = (i0 + d0) * s0
            for d1, f1 in ((0, 1 - w1), (1, w1)):
                if f1 == 0.0 or i1 + d1 >= shape[1]:
                    continue
                o1 = o0 + (i1 + d1) * s1
                for d2, f2 in ((0, 1 - w2), (1, w2)):
                    if f2 == 0.0 or i2 + d2 >= shape[2]:
                        continue
                    o2 = o1 + (i2 + d2) * s2 + i3
                    v = flat[o2] if i3 >= last3 else (1 - w3) * flat[o2] + w3 * flat[o2 + 1]
                    total += f0 * f1 * f2 * v
        return total
