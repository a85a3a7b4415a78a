"""Multilinear interpolation on a rectilinear grid, vectorized: the step table (llmcap.load.steptable) and the
measured kernel tables (llmcap.perf.kernel_tables) both read their grids through it."""

from __future__ import annotations

import numpy as np


def multilinear(axes: list[np.ndarray], values: np.ndarray, xs: list[np.ndarray]) -> np.ndarray:
    """values[i, j, ...] (on the grid `axes`) at the points xs (one array per axis), clamped at the edges.

    A corner with zero weight adds nothing even where its value is not finite (an unmeasured cell)."""
    idx, wts = [], []
    for axis, x in zip(axes, xs, strict=True):
        if len(axis) == 1:
            idx.append(np.zeros(x.shape, dtype=int))
            wts.append(np.zeros(x.shape))
            continue
        i = np.clip(np.searchsorted(axis, x, side="right") - 1, 0, len(axis) - 2)
        idx.append(i)
        wts.append(np.clip((x - axis[i]) / (axis[i + 1] - axis[i]), 0.0, 1.0))
    out = np.zeros(xs[0].shape)
    for corner in range(2 ** len(axes)):
        weight = np.ones(xs[0].shape)
        pos = []
        for k, axis in enumerate(axes):
            up = (corner >> k) & 1
            pos.append(np.minimum(idx[k] + up, len(axis) - 1))
            weight = weight * (wts[k] if up else 1.0 - wts[k])
        out = out + np.where(weight > 0, weight * values[tuple(pos)], 0.0)
    return out
