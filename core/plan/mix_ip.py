"""Mixed device types for one service (Mélange): the cheapest whole-instance mix that carries the load.

Mélange (Griggs et al., "Mélange: Cost Efficient Large Language Model Serving by Exploiting GPU
Heterogeneity", arXiv 2404.14527) splits requests into size buckets, measures each GPU type's
capacity per bucket under the SLO, and solves an integer program. Here:

    minimize    sum_t usd_per_hour[t] * n[t]
    subject to  sum_t x[b, t] = 1                                for every bucket b
                sum_b rate[b] * x[b, t] / capacity[b, t] <= n[t]   for every type t
                0 <= x[b, t] <= 1,  x[b, t] = 0 where capacity[b, t] = 0,  n[t] integer >= 0

x[b, t] is the share of bucket b's requests sent to type t (a bucket may be split across types);
n[t] counts billed units of type t (one unit = one replica's whole instances). Solved with HiGHS
through `scipy.optimize.milp`.
"""

from __future__ import annotations

import contextlib
import os
import sys

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from llmcap.catalog.schema import Frozen


class Mix(Frozen):
    """The solved mix: units per type, the share of each bucket per type, and the cost."""

    feasible: bool
    message: str
    units: list[int]  # per type
    share: list[list[float]]  # [bucket][type]
    usd_per_hour: float
    load: list[float]  # per type: units' worth of load carried (<= units)


@contextlib.contextmanager
def _quiet_stdout():
    """Silence the process's C-level stdout: HiGHS 1.x prints a debug line
    ("HighsMipSolverData::transformNewIntegerFeasibleSolution tmpSolver.run();") that no option turns
    off (github.com/jump-dev/HiGHS.jl issue 312), and it would corrupt `llmcap plan --format json`."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no file descriptor 1 (some embedded interpreters): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _infeasible(message: str, nb: int, nt: int) -> Mix:
    return Mix(
        feasible=False, message=message, units=[0] * nt, share=[[0.0] * nt] * nb, usd_per_hour=0.0, load=[0.0] * nt
    )


def solve_mix(rate_rps, capacity_rps, usd_per_hour, max_units=None) -> Mix:
    """Cheapest integer mix. rate_rps[b]; capacity_rps[b, t] per unit (0 = cannot serve); usd_per_hour[t]."""
    rate = np.asarray(rate_rps, dtype=float)
    cap = np.asarray(capacity_rps, dtype=float)
    price = np.asarray(usd_per_hour, dtype=float)
    nb, nt = cap.shape
    if rate.shape != (nb,) or price.shape != (nt,):
        raise ValueError("rate_rps must have one entry per bucket and usd_per_hour one per type")
    active = rate > 0
    if np.any(active & ~np.any(cap > 0, axis=1)):
        b = int(np.flatnonzero(active & ~np.any(cap > 0, axis=1))[0])
        return _infeasible(f"no device type can serve bucket {b} within the objectives", nb, nt)
    # variables: x (nb*nt, row-major by bucket) then n (nt)
    nx = nb * nt
    c = np.concatenate([np.zeros(nx), price])
    a_sum = np.zeros((nb, nx + nt))
    for b in range(nb):
        a_sum[b, b * nt : (b + 1) * nt] = 1.0
    with np.errstate(divide="ignore"):
        per_unit = np.where(cap > 0, rate[:, None] / np.where(cap > 0, cap, 1.0), 0.0)
    a_cap = np.zeros((nt, nx + nt))
    for t in range(nt):
        a_cap[t, t:nx:nt] = per_unit[:, t]
        a_cap[t, nx + t] = -1.0
    upper_x = np.where(cap > 0, 1.0, 0.0).ravel()
    upper_n = np.full(nt, np.inf) if max_units is None else np.asarray(max_units, dtype=float)
    with _quiet_stdout():
        res = milp(
            c,
            constraints=[
                LinearConstraint(a_sum, np.where(active, 1.0, 0.0), np.where(active, 1.0, 0.0)),
                LinearConstraint(a_cap, -np.inf, 0.0),
            ],
            integrality=np.concatenate([np.zeros(nx), np.ones(nt)]),
            bounds=Bounds(np.zeros(nx + nt), np.concatenate([upper_x, upper_n])),
        )
    if not res.success:
        return _infeasible(f"no mix meets the load: {res.message}", nb, nt)
    x = np.clip(res.x[:nx].reshape(nb, nt), 0.0, 1.0)
    n = np.round(res.x[nx:]).astype(int)
    return Mix(
        feasible=True,
        message="optimal",
        units=n.tolist(),
        share=x.tolist(),
        usd_per_hour=float(price @ n),
        load=(per_unit * x).sum(axis=0).tolist(),
    )
