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
    goodput_rps: np.ndarray  # whole deployment at its replica count (NaN unless detailed)
    replicas: np.ndarray
    devices: np.ndarray
    usd_per_hour: np.ndarray
    price_basis: list[str]  # per family
    price_known: np.ndarray  # per row
    ttft_p: np.ndarray  # (rows, 3): p50, p90, p99 (s)
    tpot_p: np.ndarray
    e2e_p: np.ndarray
    attainment: np.ndarray
    e2e_mean: np.ndarray  # mean E2E (s) at the operating point
    tpot_mean: np.ndarray  # mean TPOT (s) at the operating point
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


def fewest_replicas(
    curve: LoadCurve, req: PlanRequest, ttft_s, tpot_s, iterations: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the fewest replicas at which `slo.pct`% of requests meet both objectives (seconds, per row or
    scalar) at the request rate split round-robin over them, and the attainment there; 0 replicas where no count
    does (an objective is missed even at a vanishing load: below 2^-iterations of one replica's top rate).

    Searched directly on the replica count: attainment only rises with replicas (each sees a lower rate, and the
    round-robin split smooths bursts: llmcap.load.queueing), so an exponential search from the fewest stable
    count, then bisection between the last miss and the first hit, settles most rows in one or two checks."""
    n = len(curve.fits)
    need = req.slo.pct / 100.0
    ttft_s, tpot_s = np.broadcast_to(np.asarray(ttft_s, dtype=float), n), np.broadcast_to(tpot_s, n)
    top = curve.rate.max(axis=1)  # one replica's highest completion rate
    reps, att = np.zeros(n), np.zeros(n)

    def check(rows: np.ndarray, count: np.ndarray, rate) -> np.ndarray:
        sub = dataclasses.replace(curve_rows(curve, rows), replicas=count.astype(float))
        return attainment(sub, rate, ttft_s[rows], tpot_s[rows], arrival_cv=req.arrival_cv)

    alone = curve.fits & (curve.ttft_s[:, 0] <= ttft_s) & (curve.tpot_s[:, 0] <= tpot_s) & (top > 0)
    rows = np.flatnonzero(alone)
    if rows.size:
        vanishing = top[rows] * 2.0**-iterations
        rows = rows[check(rows, np.ones(rows.size), vanishing) >= need - 1e-12]
    if not rows.size or req.rate_rps <= 0:
        return reps, att
    miss = np.minimum(np.floor(req.rate_rps / top[rows]), REPLICA_LIMIT)  # fewer replicas are unstable
    hit = np.full(rows.size, np.inf)
    probe = miss + 1
    while True:  # exponential search up from the fewest stable count
        open_ = np.flatnonzero(~np.isfinite(hit) & (probe <= REPLICA_LIMIT))
        if not open_.size:
            break
        a = check(rows[open_], probe[open_], req.rate_rps)
        ok = a >= need - 1e-9
        hit[open_[ok]], att[rows[open_[ok]]] = probe[open_[ok]], a[ok]
        miss[open_[~ok]] = probe[open_[~ok]]
        probe[open_[~ok]] = probe[open_[~ok]] * 2
    while True:  # bisection between the last miss and the first hit
        open_ = np.flatnonzero(np.isfinite(hit) & (hit - miss > 1))
        if not open_.size:
            break
        mid = np.floor((miss[open_] + hit[open_]) / 2)
        a = check(rows[open_], mid, req.rate_rps)
        ok = a >= need - 1e-9
        hit[open_[ok]], att[rows[open_[ok]]] = mid[ok], a[ok]
        miss[open_[~ok]] = mid[~ok]
    reps[rows] = np.where(np.isfinite(hit), hit, REPLICA_LIMIT + 1)
    return reps, att


def pessimism(space: Space) -> tuple[np.ndarray, np.ndarray]:
    """Per row, how much slower than estimated TTFT and TPOT may be: the high end of the 80% error band over the
    point estimate (llmcap.estimate.bands, regime by device class and engine; load and bound unknown here)."""
    kinds = np.array([f.resolved.device.kind for f in space.families], dtype=object)
    engines = np.array([f.engine for f in space.families], dtype=object)
    ones = np.ones(len(space.families))
    slow = []
    for metric in ("ttft_ms", "tpot_ms"):  # per family (its rows share the regime), then per row
        _, high = bands(metric, kinds, engines, np.nan, "?", ones)
        slow.append(np.maximum(high, 1.0)[space.family])
    return slow[0], slow[1]


def _power(space: Space, catalog: Catalog, utilization: np.ndarray, mean_batch: np.ndarray) -> np.ndarray:
    """Power per device at the operating point: the decode step at the mean batch, busy by utilization."""
    conc = np.where(np.isfinite(mean_batch), np.maximum(np.round(mean_batch), 1.0), 1.0)
    res = evaluate(expand(space.inp, np.arange(len(space)), concurrency=conc))
    return device_watts(space, catalog, res.decode_parts_s, utilization)


def curve_rows(curve: LoadCurve, rows: np.ndarray) -> LoadCurve:
    return LoadCurve(**{f.name: getattr(curve, f.name)[rows] for f in dataclasses.fields(LoadCurve)})


def replica_goodput(curve: LoadCurve, ttft_s, tpot_s, req: PlanRequest, iterations: int) -> np.ndarray:
    """Goodput per row, of the deployment each row of `curve` describes (its replicas); rows that miss an objective
    even alone (one request in flight) get 0 without a search."""
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
    e2e_mean: np.ndarray
    tpot_mean: np.ndarray


def _operating_point(curve: LoadCurve, served: np.ndarray, req: PlanRequest) -> _Operating:
    """Percentiles at the request rate split over each row's replicas (only rows that can serve it)."""
    n = len(curve.fits)
    out = _Operating(
        *(np.full((n, len(PCTS)), np.inf) for _ in range(3)), np.full(n, np.inf), np.ones(n), curve.max_rate_rps,
        np.full(n, np.inf), np.full(n, np.inf),
    )
    rows = np.flatnonzero(served)
    if rows.size:
        q = analyze(
            curve_rows(curve, rows), req.rate_rps, arrival_cv=req.arrival_cv, output_cv=req.output_cv, percentiles=PCTS
        )
        for name in ("ttft_p", "tpot_p", "e2e_p", "utilization", "mean_batch"):
            getattr(out, name)[rows] = getattr(q, name)
        out.e2e_mean[rows], out.tpot_mean[rows] = q.e2e_s, q.tpot_s
    return out


def evaluate_space(
    space: Space,
    req: PlanRequest,
    catalog: Catalog,
    progress: Progress,
    grid: int = FINE_GRID,
    iterations: int = FINE_ITERATIONS,
    detailed: bool = True,
    percentiles: bool = True,
) -> Evaluated:
    """Every row at the request's rate: replicas, cost, percentiles, feasibility and reason; `detailed` adds each
    deployment's goodput and power (the fine pass over the shortlist; the screening pass leaves them NaN);
    `percentiles` False leaves the percentiles at infinity (a screening pass with no end-to-end objective needs none).

    With `req.robust` the objectives each row must meet are tightened by its error band's pessimistic ratio
    (pessimism()), so the SLOs hold at the band's slow end."""
    slow_ttft, slow_tpot = pessimism(space)
    tighten = (1.0 / slow_ttft, 1.0 / slow_tpot) if req.robust else (1.0, 1.0)
    ttft_s, tpot_s = req.slo.ttft_ms / 1e3 * tighten[0], req.slo.tpot_ms / 1e3 * tighten[1]
    curve = load_curve(space.inp, grid=grid)
    progress(0.45, "load curves")
    reps, att = fewest_replicas(curve, req, ttft_s, tpot_s, iterations)
    progress(0.6, "replicas")
    dpr = space.devices_per_replica
    limit = np.floor(req.max_devices / dpr)
    usd, basis, known = family_prices(space, req, catalog, np.maximum(reps, 1.0).astype(np.int64))
    deployed = dataclasses.replace(curve, replicas=np.maximum(reps, 1.0))
    # percentiles only where a deployment is allowed and priced: every other row has already failed a check
    q = _operating_point(deployed, (reps > 0) & (reps <= limit) & known & percentiles, req)
    progress(0.75, "percentiles")
    devices = np.maximum(reps, 1.0) * dpr
    g, watts = np.full(len(space), np.nan), np.full(len(space), np.nan)
    if detailed:
        g = np.where(reps > 0, replica_goodput(deployed, ttft_s, tpot_s, req, iterations), 0.0)
        watts = _power(space, catalog, q.utilization, q.mean_batch) * devices
    # why each row fails, first reason wins
    reason = np.zeros(len(space), dtype=int)
    out_tps = req.rate_rps * req.output_len

    def mark(cond, code):
        nonlocal reason
        reason = np.where((reason == 0) & cond, code, reason)

    mark(~curve.fits, 1)
    missed = np.flatnonzero((reason == 0) & (reps <= 0))
    if missed.size:  # TTFT binds where even an unbounded TPOT objective leaves no replica count that serves
        ttft_only, _ = fewest_replicas(
            curve_rows(curve, missed), req, np.broadcast_to(ttft_s, len(space))[missed], np.inf, COARSE_ITERATIONS
        )
        mark(np.isin(np.arange(len(space)), missed[ttft_only <= 0]), 2)
    mark(reps <= 0, 3)
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
        e2e_mean=q.e2e_mean,
        tpot_mean=q.tpot_mean,
        slow_ttft=slow_ttft,
        slow_tpot=slow_tpot,
        utilization=q.utilization,
        watts=watts,
        feasible=reason == 0,
        reason=reason,
    )
