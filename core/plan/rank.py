"""From the evaluated space to answers: the shortlist for the fine pass, candidates ranked by $/hour (one per
family and layout), the binding reason of each rejected family, and the Pareto fronts."""

from __future__ import annotations

import numpy as np

from llmcap.plan.evaluate import REASONS, Evaluated
from llmcap.plan.pareto import pareto_front
from llmcap.plan.pricing import no_price_detail
from llmcap.plan.request import Candidate, ParetoPoint, PlanRequest, Rejected
from llmcap.plan.space import Space


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
        e2e_ms_mean=float(ev.e2e_mean[i]) * 1e3 if np.isfinite(ev.e2e_mean[i]) else None,
        tpot_ms_mean=float(ev.tpot_mean[i]) * 1e3 if np.isfinite(ev.tpot_mean[i]) else None,
        slo_attainment=float(ev.attainment[i]),
        goodput_rps=float(ev.goodput_rps[i]),
        max_rate_rps=float(ev.curve.rate[i].max() * ev.replicas[i]),
        utilization=float(ev.utilization[i]),
        usd_per_hour=usd,
        usd_per_million_output_tokens=usd / (out_tps * 3600) * 1e6,
        joules_per_output_token=w / out_tps if np.isfinite(w) else None,
        output_tokens_per_s_per_device=out_tps / float(ev.devices[i]),
        price_basis=ev.price_basis[int(sp.family[i])],
        **slo_margins(ev, i, req),
    )


def slo_margins(ev: Evaluated, i: int, req: PlanRequest) -> dict[str, float]:
    """How far row i stays under its objectives at p90 (the tighter of TTFT and TPOT, % of the objective), at the
    point estimate and at the slow end of its 80% error band."""
    ttft, tpot = float(ev.ttft_p[i, 1]) * 1e3, float(ev.tpot_p[i, 1]) * 1e3
    slo = req.slo

    def margin(t: float, p: float) -> float:
        return round(100.0 * min(1.0 - t / slo.ttft_ms, 1.0 - p / slo.tpot_ms), 1)

    return {
        "slo_margin_pct": margin(ttft, tpot),
        "slo_margin_pessimistic_pct": margin(ttft * float(ev.slow_ttft[i]), tpot * float(ev.slow_tpot[i])),
    }


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


def rejected_families(ev: Evaluated, req: PlanRequest) -> list[Rejected]:
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
                detail=_detail(ev, req, int(best), code),
            )
        )
    return out


def _detail(ev: Evaluated, req: PlanRequest, i: int, code: int) -> str:
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
        return no_price_detail(req)
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
