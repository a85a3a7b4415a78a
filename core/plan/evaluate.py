"""Every row of the search space at the request's rate (llmcap.plan.planner steps 1-5): load curve, goodput per
replica, replicas, $/hour, percentiles at the operating point, power, and the first reason a row fails."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from llmcap.catalog.loader import Catalog
from llmcap.estimate.bands import bands
from llmcap.estimate.sweep import evaluate, expand
from llmcap.load.queueing import LoadCurve, analyze, attainment, goodput, load_curve
from llmcap.plan.pricing import device_watts, family_prices
from llmcap.plan.request import PlanRequest
from llmcap.plan.space import Space

Progress = Callable[[float, str], None]
REPLICA_LIMIT = 100_000


@dataclasses.dataclass(frozen=True)
class Evaluated:
    """Every row of the space at its operating point (arrays; the planner's working table)."""

    space: Space
    curve: LoadCurve
    goodput_rps: np.ndarray  # per replica
    replicas: np.ndarray
    devices: np.ndarray
    usd_per_hour: np.ndarray
    price_basis: list[str]  # per family
    price_known: np.ndarray  # per row
    ttft_p: np.ndarray  # (rows, 3): p50, p90, p99 (s)
    tpot_p: np.ndarray
    e2e_p: np.ndarray
    attainment: np.ndarray
    slow_ttft: np.ndarray  # per row: the 80% band's high end over the point estimate (>= 1), TTFT
    slow_tpot: np.ndarray  # and TPOT
    utilization: np.ndarray
    watts: np.ndarray  # whole deployment (NaN where the device has no TDP)
    feasible: np.ndarray
    reason: np.ndarray  # per row: index into REASONS (0 = feasible)


# Screening runs every row on a coarse load curve; the shortlist is then re-evaluated on the fine curve
# (the one `llmcap estimate --rate` uses), so every number shown comes from the fine model.
COARSE_GRID, COARSE_ITERATIONS = 16, 16
FINE_GRID, FINE_ITERATIONS = 48, 24
REASONS = ("ok", "does not fit", "TTFT", "TPOT", "devices", "budget", "e2e", "throughput", "no price")
PCTS = (50.0, 90.0, 99.0)


def _replicas(
    curve: LoadCurve, req: PlanRequest, g: np.ndarray, limit: np.ndarray, ttft_s, tpot_s
) -> tuple[np.ndarray, np.ndarray]:
    """Fewest replicas meeting the objectives (per row, seconds) at the split rate (0 where goodput is 0), and
    attainment."""
    reps = np.where(g > 0, np.ceil(req.rate_rps / np.maximum(g, 1e-30) - 1e-9), 0.0)
    reps = np.clip(reps, 0, REPLICA_LIMIT)
    need = req.slo.pct / 100.0
    att = np.zeros_like(g)
    for _ in range(4):  # the split rate lowers burstiness, so this rarely adds a replica
        ok_rows = (reps > 0) & (reps <= limit)
        if not ok_rows.any():
            break
        c = dataclasses.replace(curve, replicas=np.maximum(reps, 1.0))
        att = np.where(ok_rows, attainment(c, req.rate_rps, ttft_s, tpot_s, arrival_cv=req.arrival_cv), 0.0)
        short = ok_rows & (att < need - 1e-9)
        if not short.any():
            break
        reps = np.where(short, reps + 1, reps)
    return reps, att


def pessimism(space: Space) -> tuple[np.ndarray, np.ndarray]:
    """Per row, how much slower than estimated TTFT and TPOT may be: the high end of the 80% error band over the
    point estimate (llmcap.estimate.bands, regime by device class and engine; load and bound unknown here)."""
    fam = space.family
    kinds = np.array([f.resolved.device.kind for f in space.families], dtype=object)[fam]
    engines = np.array([f.engine for f in space.families], dtype=object)[fam]
    ones = np.ones(len(space))
    slow = []
    for metric in ("ttft_ms", "tpot_ms"):
        _, high = bands(metric, kinds, engines, np.nan, "?", ones)
        slow.append(np.maximum(high, 1.0))
    return slow[0], slow[1]


def _power(space: Space, catalog: Catalog, utilization: np.ndarray, mean_batch: np.ndarray) -> np.ndarray:
    """Power per device at the operating point: the decode step at the mean batch, busy by utilization."""
    conc = np.where(np.isfinite(mean_batch), np.maximum(np.round(mean_batch), 1.0), 1.0)
    res = evaluate(expand(space.inp, np.arange(len(space)), concurrency=conc))
    return device_watts(space, catalog, res.decode_parts_s, utilization)


def curve_rows(curve: LoadCurve, rows: np.ndarray) -> LoadCurve:
    return LoadCurve(**{f.name: getattr(curve, f.name)[rows] for f in dataclasses.fields(LoadCurve)})


def replica_goodput(curve: LoadCurve, ttft_s, tpot_s, req: PlanRequest, iterations: int) -> np.ndarray:
    """Goodput per row; rows that miss an objective even alone (one request in flight) get 0 without a search."""
    n = len(curve.fits)
    ttft_s, tpot_s = np.broadcast_to(ttft_s, n), np.broadcast_to(tpot_s, n)
    hopeful = np.flatnonzero(curve.fits & (curve.ttft_s[:, 0] <= ttft_s) & (curve.tpot_s[:, 0] <= tpot_s))
    out = np.zeros(n)
    if hopeful.size:
        sub = curve_rows(curve, hopeful)
        out[hopeful] = goodput(
            sub, ttft_s[hopeful], tpot_s[hopeful], pct=req.slo.pct, arrival_cv=req.arrival_cv, iterations=iterations
        )
    return out


@dataclasses.dataclass(frozen=True)
class _Operating:
    ttft_p: np.ndarray
    tpot_p: np.ndarray
    e2e_p: np.ndarray
    utilization: np.ndarray
    mean_batch: np.ndarray
    max_rate_rps: np.ndarray


def _operating_point(curve: LoadCurve, served: np.ndarray, req: PlanRequest) -> _Operating:
    """Percentiles at the request rate split over each row's replicas (only rows that can serve it)."""
    n = len(curve.fits)
    out = _Operating(
        *(np.full((n, len(PCTS)), np.inf) for _ in range(3)), np.full(n, np.inf), np.ones(n), curve.max_rate_rps
    )
    rows = np.flatnonzero(served)
    if rows.size:
        q = analyze(
            curve_rows(curve, rows), req.rate_rps, arrival_cv=req.arrival_cv, output_cv=req.output_cv, percentiles=PCTS
        )
        for name in ("ttft_p", "tpot_p", "e2e_p", "utilization", "mean_batch"):
            getattr(out, name)[rows] = getattr(q, name)
    return out


def evaluate_space(
    space: Space,
    req: PlanRequest,
    catalog: Catalog,
    progress: Progress,
    grid: int = FINE_GRID,
    iterations: int = FINE_ITERATIONS,
    with_power: bool = True,
) -> Evaluated:
    """Every row at the request's rate: replicas, cost, percentiles, energy, feasibility and reason.

    With `req.robust` the objectives each row must meet are tightened by its error band's pessimistic ratio
    (pessimism()), so the SLOs hold at the band's slow end."""
    slow_ttft, slow_tpot = pessimism(space)
    tighten = (1.0 / slow_ttft, 1.0 / slow_tpot) if req.robust else (1.0, 1.0)
    ttft_s, tpot_s = req.slo.ttft_ms / 1e3 * tighten[0], req.slo.tpot_ms / 1e3 * tighten[1]
    curve = load_curve(space.inp, grid=grid)
    progress(0.45, "load curves")
    g = replica_goodput(curve, ttft_s, tpot_s, req, iterations)
    progress(0.6, "goodput")
    dpr = space.devices_per_replica
    limit = np.floor(req.max_devices / dpr)
    reps, att = _replicas(curve, req, g, limit, ttft_s, tpot_s)
    usd, basis, known = family_prices(space, req, catalog, np.maximum(reps, 1.0).astype(np.int64))
    q = _operating_point(dataclasses.replace(curve, replicas=np.maximum(reps, 1.0)), reps > 0, req)
    progress(0.75, "percentiles")
    devices = np.maximum(reps, 1.0) * dpr
    watts = _power(space, catalog, q.utilization, q.mean_batch) * devices if with_power else np.full(len(space), np.nan)
    # why each row fails, first reason wins
    reason = np.zeros(len(space), dtype=int)
    out_tps = req.rate_rps * req.output_len

    def mark(cond, code):
        nonlocal reason
        reason = np.where((reason == 0) & cond, code, reason)

    mark(~curve.fits, 1)
    if (reason == 0).any():
        mark((g <= 0) & (replica_goodput(curve, ttft_s, np.inf, req, COARSE_ITERATIONS) <= 0), 2)
    mark(g <= 0, 3)
    mark(reps > limit, 4)
    mark(~known, 8)
    if req.max_usd_per_hour is not None:
        mark(usd > req.max_usd_per_hour, 5)
    if req.slo.e2e_ms is not None:
        mark(q.e2e_p[:, 1] * 1e3 > req.slo.e2e_ms, 6)
    if req.min_output_tokens_per_s is not None:
        mark(np.minimum(out_tps, q.max_rate_rps * req.output_len) < req.min_output_tokens_per_s, 7)
    return Evaluated(
        space=space,
        curve=curve,
        goodput_rps=g,
        replicas=reps,
        devices=devices,
        usd_per_hour=usd,
        price_basis=basis,
        price_known=known,
        ttft_p=q.ttft_p,
        tpot_p=q.tpot_p,
        e2e_p=q.e2e_p,
        attainment=att,
        slow_ttft=slow_ttft,
        slow_tpot=slow_tpot,
        utilization=q.utilization,
        watts=watts,
        feasible=reason == 0,
        reason=reason,
    )
