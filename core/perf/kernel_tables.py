"""Measured kernel tables (catalogs/kernels/) as dense log-log grids, and interpolation over them.

A table row is (engine, hard keys, soft keys, grid axes, latency). Per engine and hard key (dtypes, MoE routing)
the rows fall into groups, one per soft key (attention heads and head_dim, MoE model shape); each group is a
rectilinear grid over its axes (GEMM m, n, k; attention batch and length; MoE tokens; all-reduce GPUs and message
size). Within a group:
  - values are log latency (seconds) over log coordinates; a query is multilinear in that space, so it is exact on
    measured points and lies between its neighbours;
  - grid cells the source did not measure (the large corners of the attention and GEMM grids) are filled along
    each axis: between measured points by the same log-log line, beyond the last one by the ratio of work
    (`ratio` below), before the first one by the first value;
  - along the token axes (`Op.monotone`) the grid is replaced by its lower monotone envelope (a running minimum
    from the large end: each value at most any value at more tokens), so more tokens are never faster. The raw data
    is noisy: 2-7% between neighbours in the flat small-m region of GEMM, and single slow outliers up to 10x; a
    running maximum from the small end would carry each slow outlier into every larger shape (median +107% on
    B200 vLLM fp8 GEMM), the envelope only lowers the outlier. It also lowers small shapes that an engine runs with
    a slower kernel than larger ones (e.g. B200 vLLM fp8 GEMM at small m). `monotone=False` returns the raw
    (filled) grid, exact on every measured point.
A query outside the grid is evaluated at its clamped point and scaled by the ratio of work (roofline seconds plus
the group's smallest latency as a fixed floor), never below the edge for a larger shape; below the grid the edge
value holds (a launch floor). A query whose soft key was not measured takes the nearest group (log distance) and
is scaled by the same ratio of work between its own soft key and the group's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from llmcap.catalog.loader import catalog_dir
from llmcap.perf.interp import multilinear

MS = 1e-3
WorkFn = Callable[..., np.ndarray]  # work(**named float arrays, hard keys as str) -> roofline seconds


@dataclass(frozen=True)
class Op:
    """How one table is laid out."""

    file: str
    hard: tuple[str, ...]  # matched exactly (strings)
    soft: tuple[str, ...]  # nearest measured group, scaled by work
    axes: tuple[str, ...]  # grid axes (interpolated)
    monotone: tuple[str, ...]  # axes along which latency may not fall
    exact_soft: tuple[str, ...] = ()  # soft keys preferred equal (window): any other value but 0 is far


@dataclass
class Grid:
    axes: tuple[np.ndarray, ...]  # log coordinates, ascending
    raw: np.ndarray  # log latency (s), filled
    mono: np.ndarray  # raw under its lower monotone envelope along the monotone axes
    soft: dict[str, float]
    floor_s: float  # smallest measured latency of the group


@dataclass
class Family:
    """The groups of one (engine, hard key)."""

    op: Op
    grids: list[Grid]
    soft: dict[str, np.ndarray] = field(default_factory=dict)  # soft key -> values per group


def _table_path(device: str, op: Op) -> Path:
    return catalog_dir() / "kernels" / device / op.file


@functools.lru_cache(maxsize=64)
def _read(path: str) -> pl.DataFrame | None:
    p = Path(path)
    return pl.read_parquet(p) if p.is_file() else None


def read_table(device: str, op: Op) -> pl.DataFrame | None:
    """The shipped table of `op` on `device` (None when there is none)."""
    return _read(str(_table_path(device, op)))


def _fill_axis(v: np.ndarray, logc: np.ndarray, w: np.ndarray, floor: float, axis: int):
    """Candidate values for the NaNs of log values `v` along `axis`, and how far each is extrapolated.

    Inside the measured span: the log-log line between the neighbours (distance 0); beyond the last measured
    point: that point scaled by the work ratio (distance: the log of that ratio); before the first: the first
    value (distance: the log of the coordinate ratio). `w` is roofline seconds on the same grid."""
    v, w = np.moveaxis(v, axis, -1), np.moveaxis(w, axis, -1)
    n = v.shape[-1]
    ok = ~np.isnan(v)
    pos = np.arange(n)
    prev = np.maximum.accumulate(np.where(ok, pos, -1), axis=-1)
    nxt = np.minimum.accumulate(np.where(ok, pos, n)[..., ::-1], axis=-1)[..., ::-1]
    p, q = np.clip(prev, 0, n - 1), np.clip(nxt, 0, n - 1)
    vp, vq = np.take_along_axis(v, p, -1), np.take_along_axis(v, q, -1)
    out, dist = v.copy(), np.where(ok, 0.0, np.inf)
    inside = (~ok) & (prev >= 0) & (nxt < n)
    t = (logc - logc[p]) / np.where(q > p, logc[q] - logc[p], 1.0)
    out = np.where(inside, vp + t * (vq - vp), out)
    dist = np.where(inside, 0.0, dist)
    beyond = (~ok) & (prev >= 0) & (nxt >= n)
    grow = np.log(np.maximum((floor + w) / (floor + np.take_along_axis(w, p, -1)), 1.0))
    out = np.where(beyond, vp + grow, out)
    dist = np.where(beyond, grow, dist)
    before = (~ok) & (prev < 0) & (nxt < n)
    out = np.where(before, vq, out)
    dist = np.where(before, logc[q] - logc, dist)
    return np.moveaxis(out, -1, axis), np.moveaxis(dist, -1, axis)


def _fill(v: np.ndarray, logs: list[np.ndarray], w: np.ndarray, floor: float) -> np.ndarray:
    """Fill unmeasured cells, each from the axis whose candidate is extrapolated least (repeated while any
    cell has no candidate on any axis)."""
    for _ in range(v.ndim + 1):
        if not np.isnan(v).any():
            break
        cands = [_fill_axis(v, logs[ax], w, floor, ax) for ax in range(v.ndim)]
        dist = np.stack([d for _, d in cands])
        vals = np.stack([c for c, _ in cands])
        best = np.argmin(dist, axis=0)
        v = np.take_along_axis(vals, best[None], 0)[0]
    return v


def _grid(op: Op, part: pl.DataFrame, hard: dict[str, str], work: WorkFn) -> Grid:
    soft = {k: float(part[k][0]) for k in op.soft}
    coords = [np.unique(part[a].to_numpy()).astype(float) for a in op.axes]
    idx = tuple(np.searchsorted(c, part[a].to_numpy()) for c, a in zip(coords, op.axes, strict=True))
    lat = part["latency"].to_numpy().astype(float) * MS
    v = np.full(tuple(len(c) for c in coords), np.nan)
    v[idx] = np.log(lat)
    floor = float(lat.min())
    if np.isnan(v).any():
        mesh = np.meshgrid(*coords, indexing="ij")
        w = work(**hard, **soft, **dict(zip(op.axes, mesh, strict=True)))
        w = np.broadcast_to(w, v.shape)
        v = _fill(v, [np.log(c) for c in coords], np.asarray(w, dtype=float), floor)
    mono = v
    for a in op.monotone:  # lower monotone envelope: each value at most every value at a larger coordinate
        ax = op.axes.index(a)
        mono = np.flip(np.minimum.accumulate(np.flip(mono, ax), axis=ax), ax)
    return Grid(tuple(np.log(c) for c in coords), v, mono, soft, floor)


@functools.lru_cache(maxsize=256)
def _family(path: str, op: Op, engine: str, hard_vals: tuple[str, ...], work: WorkFn) -> Family | None:
    df = _read(path)
    if df is None:
        return None
    cond = pl.col("engine") == engine
    for k, val in zip(op.hard, hard_vals, strict=True):
        cond = cond & (pl.col(k) == val)
    sub = df.filter(cond)
    if sub.height == 0:
        return None
    hard = dict(zip(op.hard, hard_vals, strict=True))
    parts = sub.partition_by(list(op.soft), maintain_order=True) if op.soft else [sub]
    grids = [_grid(op, p, hard, work) for p in parts]
    fam = Family(op, grids)
    fam.soft = {k: np.array([g.soft[k] for g in grids]) for k in op.soft}
    return fam


def family(device: str, op: Op, engine: str, hard: dict[str, str], work: WorkFn) -> Family | None:
    """The grids of `op` on `device` for one engine and hard key (cached per catalog folder); None if unmeasured."""
    return _family(str(_table_path(device, op)), op, engine, tuple(hard[k] for k in op.hard), work)


def _interp(g: Grid, logq: list[np.ndarray], monotone: bool) -> np.ndarray:
    """Multilinear interpolation of log latency at log coordinates already inside the grid."""
    return multilinear(list(g.axes), g.mono if monotone else g.raw, logq)


def _nearest(fam: Family, q: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """Index of the nearest measured group per query (sum of |log2| distances over the soft keys)."""
    if not fam.op.soft:
        return np.zeros(shape, dtype=int)
    dist = np.zeros((*shape, len(fam.grids)))
    for k in fam.op.soft:
        g = fam.soft[k]
        x = np.asarray(q[k], dtype=float)[..., None]
        if k in fam.op.exact_soft:
            dist += np.where(x == g, 0.0, np.where(g == 0, 50.0, 1e3))
        else:
            dist += np.abs(np.log2(np.maximum(x, 1e-9)) - np.log2(np.maximum(g, 1e-9)))
    return np.argmin(dist, axis=-1)


def lookup(fam: Family, q: dict[str, np.ndarray], hard: dict[str, str], work: WorkFn, monotone: bool) -> np.ndarray:
    """Latency (s) of the queries `q` (soft keys and axes, broadcast together) in one family."""
    names = list(fam.op.soft) + list(fam.op.axes)
    arrs = np.broadcast_arrays(*[np.asarray(q[k], dtype=float) for k in names])
    q = dict(zip(names, arrs, strict=True))
    shape = arrs[0].shape
    out = np.full(shape, np.nan)
    which = _nearest(fam, q, shape)
    for gi in np.unique(which):
        g = fam.grids[gi]
        sel = which == gi
        qa = {a: q[a][sel] for a in fam.op.axes}
        bad = np.zeros(qa[fam.op.axes[0]].shape, dtype=bool)
        for a in fam.op.axes:
            bad |= ~(qa[a] > 0)
        logq = [np.log(np.maximum(qa[a], 1e-30)) for a in fam.op.axes]
        clamped = [np.clip(x, c[0], c[-1]) for x, c in zip(logq, g.axes, strict=True)]
        val = np.exp(_interp(g, clamped, monotone))
        at_c = {a: np.exp(x) for a, x in zip(fam.op.axes, clamped, strict=True)}
        ext = {a: np.where(x > c[-1], qa[a], at_c[a]) for a, x, c in zip(fam.op.axes, logq, g.axes, strict=True)}
        own = {k: q[k][sel] for k in fam.op.soft}
        w_c = work(**hard, **g.soft, **at_c)
        w_e = work(**hard, **g.soft, **ext)
        w_q = work(**hard, **own, **ext)
        f = g.floor_s
        grow = np.maximum((f + w_e) / (f + w_c), 1.0)
        val = val * grow * (f + w_q) / (f + w_e)
        out[sel] = np.where(bad, np.nan, val)
    return out
