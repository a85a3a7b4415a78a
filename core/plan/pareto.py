"""Pareto fronts over many configurations (vectorized).

A point is on the front when no other point is at least as good on both axes and strictly better on
one. Used for AIConfigurator-style throughput fronts (output tokens/s per device against tokens/s per
user) and for cost against latency.
"""

from __future__ import annotations

import numpy as np


def pareto_front(x, y, maximize_x: bool = True, maximize_y: bool = True) -> np.ndarray:
    """Indices of the non-dominated points, ordered by x ascending. NaN and infinite points are skipped."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    if keep.size == 0:
        return keep
    sx = x[keep] if maximize_x else -x[keep]
    sy = y[keep] if maximize_y else -y[keep]
    # best x first (ties: best y first); a point is on the front when its y beats every earlier point's y
    order = np.lexsort((-sy, -sx))
    ys = sy[order]
    best_before = np.concatenate([[-np.inf], np.maximum.accumulate(ys)[:-1]])
    front = keep[order[ys > best_before]]
    return front[np.argsort(x[front], kind="stable")]
