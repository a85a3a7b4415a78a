"""The deployment planner: the cheapest deployments that serve a request rate within the objectives.

One pass, vectorized over the whole space (llmcap.plan.space: device x format x engine families tiled over
layouts and concurrency caps):
1. the open-loop load curve of one replica of every row (llmcap.load.queueing.load_curve);
2. its goodput: the highest rate per replica at which `slo_pct`% of requests meet both the TTFT and the
   TPOT objective (DistServe's definition, llmcap.load.queueing.goodput);
3. replicas = ceil(rate / goodput), re-checked at the split rate (round-robin splitting smooths
   bursts, so the check only ever confirms or adds a replica);
4. $/hour with whole instances billed (llmcap.economics.cost), percentiles at the operating point
   (llmcap.load.queueing.analyze), power and energy (llmcap.economics.energy);
5. filters (devices, budget, end-to-end objective, minimum throughput), ranking by $/hour, and for each
   family that has no feasible row the reason that binds: does not fit, TTFT, TPOT, devices, budget, price.
Disaggregated prefill/decode pools (llmcap.plan.disagg) and Mélange mixes (llmcap.plan.mix_ip) are added when allowed.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np
from pydantic import Field, model_validator

from llmcap.catalog.loader import Catalog, load_catalog
from llmcap.catalog.schema import Frozen, Workload
from llmcap.economics.cost import CostError, cheapest, offerings_for, tco_cost
from llmcap.economics.energy import device_power, step_power_w
from llmcap.estimate.sweep import evaluate, expand
from llmcap.load.queueing import LoadCurve, analyze, attainment, goodput, load_curve
from llmcap.plan.pareto import pareto_front
from llmcap.plan.space import Space, build_space, resolve_families
from llmcap.scenario import ENGINES

Progress = Callable[[float, str], None]
DEFAULT_WEIGHTS = ("bf16", "fp8", "int4")
REPLICA_LIMIT = 100_000


class PlanRequest(Frozen):
    """What must be served, within which objectives and constraints."""

    model: str = Field(min_length=1)
    rate_rps: float = Field(gt=0, le=1e6)
    input_len: float = Field(ge=1, le=10_000_000, description="mean prompt tokens")
    output_len: float = Field(ge=1, le=10_000_000, description="mean output tokens")
    input_cv: float = Field(default=0.0, ge=0, le=20)
    output_cv: float = Field(default=0.0, ge=0, le=20)
    arrival_cv: float = Field(default=1.0, gt=0, le=50, description="1 = Poisson")
    workload: str | None = None
    ttft_ms: float = Field(gt=0, le=1e7)
    tpot_ms: float = Field(gt=0, le=1e7)
    slo_pct: float = Field(default=90.0, gt=0, lt=100)
    e2e_ms: float | None = Field(default=None, gt=0)
    min_output_tokens_per_s: float | None = Field(default=None, ge=0)
    hardware: tuple[str, ...] | None = None  # None: every device in the catalog
    provider: str | None = None
    usd_per_gpu_hour: float | None = Field(default=None, gt=0, le=1e4)
    max_devices: int = Field(default=64, ge=1, le=4096)
    max_usd_per_hour: float | None = Field(default=None, gt=0)
    weights: tuple[str, ...] = DEFAULT_WEIGHTS
    kv: tuple[str | None, ...] = (None,)
    engines: tuple[str, ...] = ("vllm",)
    allow_disagg: bool = False
    allow_mixed: bool = False
    top: int = Field(default=10, ge=1, le=1000)
    region: str = "us-east-virginia"
    # what-if knobs (1.0 = as catalogued)
    mem_bw_scale: float = Field(default=1.0, gt=0, le=100)
    compute_scale: float = Field(default=1.0, gt=0, le=100)
    price_scale: float = Field(default=1.0, gt=0, le=100)

    @model_validator(mode="after")
    def _engines(self) -> PlanRequest:
        bad = [e for e in self.engines if e not in ENGINES]
        if bad:
            raise ValueError(f"unknown engine(s) {', '.join(bad)}; known: {', '.join(ENGINES)}")
        return self


def workload_traffic(wl: Workload) -> dict[str, float | str]:
    """PlanRequest traffic fields of a workload preset: mean lengths, their cvs, arrival burstiness."""
    return dict(
        workload=wl.id,
        input_len=wl.input_tokens.mean,
        output_len=wl.output_tokens.mean,
        input_cv=wl.input_tokens.cv,
        output_cv=wl.output_tokens.cv,
        arrival_cv=wl.arrival.cv,
    )


class Candidate(Frozen):
    hardware: str
    devices: int
    tp: int
    pp: int
    ep: int
    replicas: int
    weight_format: str
    kv_format: str
    engine: str
    max_seqs: int
    mode: str  # "aggregated", "disaggregated xP:yD" or "mixed"
    ttft_ms_p50: float
    ttft_ms_p90: float
    tpot_ms_p50: float
    tpot_ms_p90: float
    e2e_ms_p90: float
    slo_attainment: float
    goodput_rps: float
    max_rate_rps: float
    utilization: float
    usd_per_hour: float
    usd_per_million_output_tokens: float
    joules_per_output_token: float | None
    output_tokens_per_s_per_device: float
    price_basis: str
    detail: str = ""


class Rejected(Frozen):
    hardware: str
    weight_format: str
    kv_format: str
    engine: str
    reason: str  # does not fit | TTFT | TPOT | devices | budget | e2e | throughput | no price | invalid
    detail: str


class ParetoPoint(Frozen):
    front: str  # "throughput" (tokens/s per device vs per user) or "cost" ($/M tokens vs p90 e2e)
    hardware: str
    tp: int
    pp: int
    ep: int
    weight_format: str
    max_seqs: int
    x: float
    y: float
    x_label: str
    y_label: str


class Plan(Frozen):
    request: PlanRequest
    candidates: list[Candidate]
    rejected: list[Rejected]
    pareto: list[ParetoPoint]
    evaluated: int
    elapsed_s: float
    notes: list[str] = Field(default_factory=list)


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
    utilization: np.ndarray
    watts: np.ndarray  # whole deployment (NaN where the device has no TDP)
    feasible: np.ndarray
    reason: np.ndarray  # per row: index into REASONS (0 = feasible)


# Screening runs every row on a coarse load curve; the shortlist is then re-evaluated on the fine curve
# (the one `llmcap estimate --rate` uses), so every number shown comes from the fine model.
COARSE_GRID, COARSE_ITERATIONS = 16, 16
FINE_GRID, FINE_ITERATIONS = 48, 24
SHORTLIST_FACTOR = 4
REASONS = ("ok", "does not fit", "TTFT", "TPOT", "devices", "budget", "e2e", "throughput", "no price")
PCTS = (50.0, 90.0, 99.0)


def _scaled(space: Space, req: PlanRequest) -> Space:
    """What-if: scale every device's memory bandwidth and compute peaks."""
    if req.mem_bw_scale == 1.0 and req.compute_scale == 1.0:
        return space
    dev = space.inp.system.dev
    dev = dataclasses.replace(
        dev,
        mem_bw=dev.mem_bw * req.mem_bw_scale,
        peak_math=dev.peak_math * req.compute_scale,
        peak_bf16=dev.peak_bf16 * req.compute_scale,
    )
    inp = dataclasses.replace(space.inp, system=dataclasses.replace(space.inp.system, dev=dev))
    return dataclasses.replace(space, inp=inp)


def deployment_price(hardware: str, replicas, dpr, req: PlanRequest, catalog: Catalog):
    """$/hour of `replicas` replicas of `dpr` devices (arrays) and its basis, or None when nothing prices it.

    The user's $/GPU-hour when given; else the cheapest offering (whole instances, llmcap.economics.cost.cheapest);
    else, with no provider asked for, total cost of ownership from the catalog's purchase price
    (llmcap.economics.cost.tco_cost, its default years, PUE and $/kWh, electricity at TDP).
    """
    devices = np.asarray(replicas, dtype=float) * np.asarray(dpr, dtype=float)
    if req.usd_per_gpu_hour is not None:
        return devices * req.usd_per_gpu_hour * req.price_scale, f"user ${req.usd_per_gpu_hour:g}/GPU-hour"
    try:
        offers = offerings_for(hardware, req.provider, catalog=catalog)
        usd, idx = cheapest(offers, replicas, dpr)
        best = offers[int(np.bincount(idx).argmax())]
        return usd * req.price_scale, f"{best.provider} {best.instance}"
    except CostError:
        pass
    if req.provider is None:
        try:
            per_device = tco_cost(hardware, 1, catalog=catalog).usd_per_device_hour
            return devices * per_device * req.price_scale, f"TCO ${per_device:.2f}/device-hour"
        except CostError:
            pass
    return None


def family_prices(space: Space, req: PlanRequest, catalog: Catalog, replicas: np.ndarray) -> tuple:
    """$/hour per row (whole instances), the price basis per family, and whether a price exists."""
    usd = np.full(len(space), np.inf)
    known = np.zeros(len(space), dtype=bool)
    basis: list[str] = []
    dpr = space.devices_per_replica.astype(np.int64)
    for f, fam in enumerate(space.families):
        rows = np.flatnonzero(space.family == f)
        priced = deployment_price(fam.hardware, replicas[rows], dpr[rows], req, catalog) if rows.size else None
        if priced is None:
            basis.append("no price" if rows.size else "")
            continue
        usd[rows], text = priced
        known[rows] = True
        basis.append(text)
    return usd, basis, known


def _replicas(curve: LoadCurve, req: PlanRequest, g: np.ndarray, limit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fewest replicas meeting the objectives at the split rate (0 where goodput is 0), and attainment."""
    reps = np.where(g > 0, np.ceil(req.rate_rps / np.maximum(g, 1e-30) - 1e-9), 0.0)
    reps = np.clip(reps, 0, REPLICA_LIMIT)
    need = req.slo_pct / 100.0
    att = np.zeros_like(g)
    for _ in range(4):  # the split rate lowers burstiness, so this rarely adds a replica
        ok_rows = (reps > 0) & (reps <= limit)
        if not ok_rows.any():
            break
        c = dataclasses.replace(curve, replicas=np.maximum(reps, 1.0))
        att = np.where(
            ok_rows, attainment(c, req.rate_rps, req.ttft_ms / 1e3, req.tpot_ms / 1e3, arrival_cv=req.arrival_cv), 0.0
        )
        short = ok_rows & (att < need - 1e-9)
        if not short.any():
            break
        reps = np.where(short, reps + 1, reps)
    return reps, att


def device_watts(space: Space, catalog: Catalog, parts_s: np.ndarray, busy: np.ndarray) -> np.ndarray:
    """Board power per device (W) from a step's time split (4 x rows: compute, memory, comm, overhead) and
    the busy share; NaN where the device has no TDP (llmcap.economics.energy)."""
    n = len(space)
    idle, mem, comp = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    for f, fam in enumerate(space.families):
        p = device_power(fam.resolved.device, catalog)
        if p.known:
            rows = space.family == f
            idle[rows], mem[rows], comp[rows] = p.idle_w, p.memory_bound_w, p.compute_bound_w
    total = np.maximum(parts_s.sum(axis=0), 1e-30)
    return step_power_w(idle, mem, comp, parts_s[0] / total, parts_s[1] / total, np.clip(busy, 0.0, 1.0))


def _power(space: Space, catalog: Catalog, utilization: np.ndarray, mean_batch: np.ndarray) -> np.ndarray:
    """Power per device at the operating point: the decode step at the mean batch, busy by utilization."""
    conc = np.where(np.isfinite(mean_batch), np.maximum(np.round(mean_batch), 1.0), 1.0)
    res = evaluate(expand(space.inp, np.arange(len(space)), concurrency=conc))
    return device_watts(space, catalog, res.decode_parts_s, utilization)


def curve_rows(curve: LoadCurve, rows: np.ndarray) -> LoadCurve:
    return LoadCurve(**{f.name: getattr(curve, f.name)[rows] for f in dataclasses.fields(LoadCurve)})


def replica_goodput(curve: LoadCurve, ttft_s: float, tpot_s: float, req: PlanRequest, iterations: int) -> np.ndarray:
    """Goodput per row; rows that miss an objective even alone (one request in flight) get 0 without a search."""
    hopeful = np.flatnonzero(curve.fits & (curve.ttft_s[:, 0] <= ttft_s) & (curve.tpot_s[:, 0] <= tpot_s))
    out = np.zeros(len(curve.fits))
    if hopeful.size:
        sub = curve_rows(curve, hopeful)
        out[hopeful] = goodput(sub, ttft_s, tpot_s, pct=req.slo_pct, arrival_cv=req.arrival_cv, iterations=iterations)
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
    """Every row at the request's rate: replicas, cost, percentiles, energy, feasibility and reason."""
    ttft_s, tpot_s = req.ttft_ms / 1e3, req.tpot_ms / 1e3
    curve = load_curve(space.inp, grid=grid)
    progress(0.45, "load curves")
    g = replica_goodput(curve, ttft_s, tpot_s, req, iterations)
    progress(0.6, "goodput")
    dpr = space.devices_per_replica
    limit = np.floor(req.max_devices / dpr)
    reps, att = _replicas(curve, req, g, limit)
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
    if req.e2e_ms is not None:
        mark(q.e2e_p[:, 1] * 1e3 > req.e2e_ms, 6)
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
        utilization=q.utilization,
        watts=watts,
        feasible=reason == 0,
        reason=reason,
    )


def _candidate(ev: Evaluated, i: int, req: PlanRequest) -> Candidate:
    sp = ev.space
    fam = sp.families[int(sp.family[i])]
    out_tps = req.rate_rps * req.output_len
    usd = float(ev.usd_per_hour[i])
    w = float(ev.watts[i])
    return Candidate(
        hardware=fam.hardware,
        devices=int(ev.devices[i]),
        tp=int(sp.tp[i]),
        pp=int(sp.pp[i]),
        ep=int(sp.ep[i]),
        replicas=int(ev.replicas[i]),
        weight_format=fam.weight_format,
        kv_format=fam.kv_format,
        engine=fam.engine,
        max_seqs=int(sp.max_seqs[i]),
        mode="aggregated",
        ttft_ms_p50=float(ev.ttft_p[i, 0]) * 1e3,
        ttft_ms_p90=float(ev.ttft_p[i, 1]) * 1e3,
        tpot_ms_p50=float(ev.tpot_p[i, 0]) * 1e3,
        tpot_ms_p90=float(ev.tpot_p[i, 1]) * 1e3,
        e2e_ms_p90=float(ev.e2e_p[i, 1]) * 1e3,
        slo_attainment=float(ev.attainment[i]),
        goodput_rps=float(ev.goodput_rps[i] * ev.replicas[i]),
        max_rate_rps=float(ev.curve.rate[i].max() * ev.replicas[i]),
        utilization=float(ev.utilization[i]),
        usd_per_hour=usd,
        usd_per_million_output_tokens=usd / (out_tps * 3600) * 1e6,
        joules_per_output_token=w / out_tps if np.isfinite(w) else None,
        output_tokens_per_s_per_device=out_tps / float(ev.devices[i]),
        price_basis=ev.price_basis[int(sp.family[i])],
    )


def _layout_keys(sp: Space) -> np.ndarray:
    """One integer per (family, tp, pp, ep): rows that differ only in their concurrency cap share it."""
    _, key = np.unique(np.column_stack([sp.family, sp.tp, sp.pp, sp.ep]), axis=0, return_inverse=True)
    return key.ravel()


def _first_per_key(order: np.ndarray, key: np.ndarray) -> np.ndarray:
    """The first row of `order` for each key, kept in `order`'s order."""
    _, first = np.unique(key[order], return_index=True)
    return order[np.sort(first)]


def shortlist(ev: Evaluated, k: int) -> np.ndarray:
    """Rows of the k cheapest feasible (family, layout) pairs, every cap of each (the fine pass may reorder them)."""
    rows = np.flatnonzero(ev.feasible)
    key = _layout_keys(ev.space)
    best = _first_per_key(rows[np.argsort(ev.usd_per_hour[rows], kind="stable")], key)[:k]
    return np.flatnonzero(np.isin(key, key[best]))


def rank(ev: Evaluated, req: PlanRequest) -> list[Candidate]:
    """Feasible rows by $/hour, one per (family, layout): the cap that serves cheapest (then fastest)."""
    rows = np.flatnonzero(ev.feasible)
    order = rows[np.lexsort((ev.ttft_p[rows, 1], ev.usd_per_hour[rows]))]
    return [_candidate(ev, int(i), req) for i in _first_per_key(order, _layout_keys(ev.space))[: req.top]]


def rejected_families(ev: Evaluated) -> list[Rejected]:
    """For each family with no feasible row, the reason that binds its most promising row."""
    sp = ev.space
    out = []
    for f, fam in enumerate(sp.families):
        rows = np.flatnonzero(sp.family == f)
        if ev.feasible[rows].any():
            continue
        # the furthest a row got down the chain of checks says what binds the family
        best = rows[np.argmax(np.where(ev.reason[rows] == 1, -1, ev.reason[rows]))]
        code = int(ev.reason[best])
        out.append(
            Rejected(
                hardware=fam.hardware,
                weight_format=fam.weight_format,
                kv_format=fam.kv_format,
                engine=fam.engine,
                reason=REASONS[code],
                detail=_detail(ev, int(best), code),
            )
        )
    return out


def _detail(ev: Evaluated, i: int, code: int) -> str:
    sp = ev.space
    layout = f"tp={int(sp.tp[i])} pp={int(sp.pp[i])} ep={int(sp.ep[i])}"
    if code == 1:
        return (
            f"no layout up to {int(sp.devices_per_replica.max())} devices per replica holds the model and one request"
        )
    if code in (2, 3):
        n1 = ev.curve
        what = "TTFT" if code == 2 else "TPOT"
        best = (n1.ttft_s if code == 2 else n1.tpot_s)[sp.family == sp.family[i]].min() * 1e3
        return f"best {what} at any load is {best:.1f} ms (with {layout})"
    if code == 4:
        return f"needs {int(ev.replicas[i] * sp.devices_per_replica[i])} devices with {layout}"
    if code == 5:
        return f"cheapest is ${ev.usd_per_hour[i]:,.2f}/hour with {layout}"
    if code == 6:
        return f"p90 end-to-end {ev.e2e_p[i, 1] * 1e3:,.0f} ms with {layout}"
    if code == 8:
        return "no cloud offering or purchase price in the catalog; give --usd-per-gpu-hour"
    return layout


def pareto_points(ev: Evaluated, req: PlanRequest) -> list[ParetoPoint]:
    """Throughput front over every fitting row and concurrency, and the cost front at the operating point."""
    sp, c = ev.space, ev.curve
    out: list[ParetoPoint] = []
    fit = np.flatnonzero(c.fits)
    if fit.size:
        dpr = sp.devices_per_replica[fit][:, None]
        per_dev = (c.rate[fit] * c.output_len[fit][:, None] / dpr).ravel()
        per_user = np.where(c.tpot_s[fit] > 0, 1.0 / np.maximum(c.tpot_s[fit], 1e-12), np.nan).ravel()
        idx = pareto_front(per_user, per_dev)
        rows = fit[idx // c.n.shape[1]]
        out += [
            _point(
                sp,
                int(r),
                "throughput",
                per_user[k],
                per_dev[k],
                "output tokens/s per user",
                "output tokens/s per device",
            )
            for r, k in zip(rows, idx, strict=True)
        ]
    ok = np.flatnonzero(c.fits & (ev.replicas > 0) & ev.price_known & np.isfinite(ev.e2e_p[:, 1]))
    if ok.size:
        usd_m = ev.usd_per_hour[ok] / (req.rate_rps * req.output_len * 3600) * 1e6
        e2e = ev.e2e_p[ok, 1] * 1e3
        for k in pareto_front(usd_m, e2e, maximize_x=False, maximize_y=False):
            out.append(_point(sp, int(ok[k]), "cost", usd_m[k], e2e[k], "$ per million output tokens", "p90 e2e ms"))
    return out


def _point(sp: Space, i: int, front: str, x: float, y: float, xl: str, yl: str) -> ParetoPoint:
    fam = sp.families[int(sp.family[i])]
    return ParetoPoint(
        front=front,
        hardware=fam.hardware,
        tp=int(sp.tp[i]),
        pp=int(sp.pp[i]),
        ep=int(sp.ep[i]),
        weight_format=fam.weight_format,
        max_seqs=int(sp.max_seqs[i]),
        x=float(x),
        y=float(y),
        x_label=xl,
        y_label=yl,
    )


def plan(req: PlanRequest, catalog: Catalog | None = None, progress: Progress | None = None) -> Plan:
    """Rank the deployments that serve `req` within its objectives; say why the others cannot."""
    start = time.perf_counter()
    catalog = catalog or load_catalog()
    progress = progress or (lambda _f, _m: None)
    hardware = list(req.hardware) if req.hardware else sorted(catalog.hardware)
    progress(0.0, "resolving devices and formats")
    families, invalid = resolve_families(
        catalog, req.model, hardware, list(req.weights), list(req.kv), list(req.engines)
    )
    rejected = [Rejected(**label, reason="invalid", detail=why) for label, why in invalid]
    notes: list[str] = []
    candidates: list[Candidate] = []
    pareto: list[ParetoPoint] = []
    evaluated = 0
    if families:
        space = _scaled(build_space(families, req.input_len, req.output_len, req.max_devices), req)
        evaluated = len(space)
        progress(0.2, f"{len(space):,} configurations")
        ev = evaluate_space(space, req, catalog, progress, COARSE_GRID, COARSE_ITERATIONS, with_power=False)
        rejected += rejected_families(ev)
        pareto = pareto_points(ev, req)
        short = shortlist(ev, req.top * SHORTLIST_FACTOR)
        if short.size:
            progress(0.8, f"refining {short.size} configurations")
            candidates = rank(evaluate_space(space.take(short), req, catalog, lambda _f, _m: None), req)
        if req.allow_disagg:
            from llmcap.plan.disagg import disaggregated

            progress(0.85, "disaggregated prefill/decode")
            candidates += disaggregated(space, req, catalog)
        if req.allow_mixed:
            from llmcap.plan.mix import mixed

            progress(0.92, "device mix")
            candidates += mixed(families, req, catalog)
        candidates = sorted(candidates, key=lambda c: (c.usd_per_hour, c.ttft_ms_p90))[: req.top]
    progress(1.0, "done")
    return Plan(
        request=req,
        candidates=candidates,
        rejected=rejected,
        pareto=pareto,
        evaluated=evaluated,
        elapsed_s=time.perf_counter() - start,
        notes=notes,
    )
