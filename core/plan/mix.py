"""Mixed device types for one service (Mélange), built on the planner's space and llmcap.plan.mix_ip.

The request-size distribution is cut into buckets: prompt and output lengths, each lognormal with the
request's mean and cv, split at equal-probability quantiles (3 prompt x 2 output buckets; one bucket
per axis whose cv is 0). Each bucket carries rate / buckets and has its lengths at the bin's
conditional mean. For every family (device, formats, engine) the configurations (layout and concurrency
cap) that are cheapest for the mixture are the unit types; a unit's capacity per bucket is its goodput
under the objectives when serving that bucket alone (llmcap.load.queueing). llmcap.plan.mix_ip then buys whole units at
the lowest $/hour, sharing each unit's capacity across buckets in proportion (Mélange's assumption,
Griggs et al. 2024, section 5). A unit is priced as one replica's whole instances; the
final bill packs each device type's replicas into whole instances (llmcap.economics.cost.cheapest). Percentiles are
taken on each type's main bucket at the rate of that bucket that loads the type's units as much as its
whole share does; a mix that misses an objective there is not offered.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.special import ndtri
from scipy.stats import norm

from llmcap.catalog.loader import Catalog
from llmcap.load.queueing import analyze, load_curve
from llmcap.plan.evaluate import COARSE_GRID, COARSE_ITERATIONS, curve_rows, replica_goodput
from llmcap.plan.mix_ip import solve_mix
from llmcap.plan.pricing import deployment_price
from llmcap.plan.request import Candidate, PlanRequest
from llmcap.plan.space import Family, build_space

INPUT_BUCKETS, OUTPUT_BUCKETS = 3, 2
TYPES_PER_FAMILY = 2


def lognormal_buckets(mean: float, cv: float, k: int) -> np.ndarray:
    """Conditional means of k equal-probability bins of a lognormal with this mean and cv."""
    if cv <= 0 or k == 1:
        return np.array([mean])
    sigma = np.sqrt(np.log1p(cv**2))
    mu = np.log(mean) - sigma**2 / 2
    edges = ndtri(np.linspace(0.0, 1.0, k + 1))  # z edges, -inf .. inf
    # E[X | z in (a, b)] = exp(mu + sigma^2 / 2) (Phi(b - sigma) - Phi(a - sigma)) / (Phi(b) - Phi(a))
    upper = norm.cdf(edges[1:] - sigma) - norm.cdf(edges[:-1] - sigma)
    return np.exp(mu + sigma**2 / 2) * upper / (1.0 / k)


def _bill(fam: Family, replicas: int, dpr: int, req: PlanRequest, catalog: Catalog) -> float | None:
    """$/hour of `replicas` replicas of `dpr` devices (llmcap.plan.planner.deployment_price), None if unpriced."""
    priced = deployment_price(fam.hardware, np.array([replicas]), np.array([dpr]), req, catalog)
    return None if priced is None else float(priced[0][0])


def mixed(families: list[Family], req: PlanRequest, catalog: Catalog) -> list[Candidate]:
    """The cheapest Mélange mix of device types for the request, as one candidate (or none)."""
    ins = lognormal_buckets(req.input_len, req.input_cv, INPUT_BUCKETS)
    outs = lognormal_buckets(req.output_len, req.output_cv, OUTPUT_BUCKETS)
    buckets = [(float(i), float(o)) for i in ins for o in outs]
    rate_b = np.full(len(buckets), req.rate_rps / len(buckets))
    fams = [f for f in families if _bill(f, 1, 1, req, catalog) is not None]
    if not fams:
        return []
    spaces = [build_space(fams, i, o, req.max_devices) for i, o in buckets]
    curves = [load_curve(sp.inp, grid=COARSE_GRID) for sp in spaces]
    caps = np.stack(
        [replica_goodput(c, req.slo.ttft_ms / 1e3, req.slo.tpot_ms / 1e3, req, COARSE_ITERATIONS) for c in curves]
    )  # buckets x rows
    sp0 = spaces[0]
    # a unit is one replica, priced as whole instances on its own (packing several may bill less; the
    # final bill below packs them)
    unit_price = {}
    for f, dpr in set(zip(sp0.family.tolist(), sp0.devices_per_replica.astype(int).tolist(), strict=True)):
        unit_price[f, dpr] = _bill(fams[f], 1, dpr, req, catalog)
    unit_usd = np.array([unit_price[f, int(d)] for f, d in zip(sp0.family, sp0.devices_per_replica, strict=True)])
    # unit types: per family, the rows that would serve the whole mixture alone most cheaply
    with np.errstate(divide="ignore"):
        alone = np.where(caps > 0, rate_b[:, None] / np.where(caps > 0, caps, 1.0), np.inf).sum(axis=0) * unit_usd
    types = []
    for f in range(len(fams)):
        rows = np.flatnonzero(sp0.family == f)
        rows = rows[np.isfinite(alone[rows])]
        types += rows[np.argsort(alone[rows])[:TYPES_PER_FAMILY]].tolist()
    if not types:
        return []
    mix = solve_mix(rate_b, caps[:, types], unit_usd[types])
    if not mix.feasible:
        return []
    used = [(t, n) for t, n in zip(types, mix.units, strict=True) if n > 0]
    share = np.asarray(mix.share)  # buckets x types
    worst = {"ttft": (0.0, 0.0), "tpot": (0.0, 0.0), "e2e": 0.0}
    billed: dict[tuple[int, int], int] = {}
    for row, units in used:
        col = types.index(row)
        key = (int(sp0.family[row]), int(sp0.devices_per_replica[row]))
        billed[key] = billed.get(key, 0) + units
        # percentiles on the bucket this type carries most of, at the rate of that bucket that loads the
        # type's units as much as its whole share does (its load in units of capacity x that bucket's capacity)
        b = int(np.argmax(share[:, col] * rate_b))
        load = float(mix.load[col] * caps[b, row])
        curve = dataclasses.replace(curve_rows(curves[b], np.array([row])), replicas=np.array([float(units)]))
        q = analyze(curve, load, arrival_cv=req.arrival_cv, output_cv=req.output_cv)
        for name, arr in (("ttft", q.ttft_p), ("tpot", q.tpot_p)):
            worst[name] = max(worst[name], (float(arr[0, 0]), float(arr[0, 1])), key=lambda v: v[1])
        worst["e2e"] = max(worst["e2e"], float(q.e2e_p[0, 1]))
    usd = sum(_bill(fams[f], n, dpr, req, catalog) for (f, dpr), n in billed.items())
    devices = sum(n * dpr for (_, dpr), n in billed.items())
    per_hw: dict[str, int] = {}
    for (f, dpr), n in billed.items():
        per_hw[fams[f].hardware] = per_hw.get(fams[f].hardware, 0) + n * dpr
    parts = [f"{hw} x{n}" for hw, n in sorted(per_hw.items(), key=lambda kv: -kv[1])]
    if len(per_hw) < 2:
        return []  # one device type: that is an aggregated deployment, already ranked
    first = (fams[int(sp0.family[used[0][0]])], used[0][0])
    if max(worst["ttft"][1] * 1e3 - req.slo.ttft_ms, worst["tpot"][1] * 1e3 - req.slo.tpot_ms) > 1e-6:
        return []  # the shared units miss the objective at their combined load: no honest mix to offer
    if devices > req.max_devices or (req.max_usd_per_hour is not None and usd > req.max_usd_per_hour):
        return []
    fam, row = first
    # headroom: the rate at which the most loaded type would be full (loads are in units of capacity)
    headroom = min(units / max(mix.load[types.index(t)], 1e-30) for t, units in used)
    out_tps = req.rate_rps * req.output_len
    return [
        Candidate(
            hardware=" + ".join(parts),
            devices=devices,
            tp=int(sp0.tp[row]),
            pp=int(sp0.pp[row]),
            ep=int(sp0.ep[row]),
            replicas=int(sum(n for _, n in used)),
            weight_format=fam.weight_format,
            kv_format=fam.kv_format,
            engine=fam.engine,
            max_seqs=int(sp0.max_seqs[row]),
            mode="mixed",
            ttft_ms_p50=worst["ttft"][0] * 1e3,
            ttft_ms_p90=worst["ttft"][1] * 1e3,
            tpot_ms_p50=worst["tpot"][0] * 1e3,
            tpot_ms_p90=worst["tpot"][1] * 1e3,
            e2e_ms_p90=worst["e2e"] * 1e3,
            slo_attainment=req.slo.pct / 100.0,
            goodput_rps=float(req.rate_rps * headroom),
            max_rate_rps=float(req.rate_rps * headroom),
            utilization=float(sum(mix.load) / max(sum(mix.units), 1)),
            usd_per_hour=usd,
            usd_per_million_output_tokens=usd / (out_tps * 3600) * 1e6,
            joules_per_output_token=None,
            output_tokens_per_s_per_device=out_tps / devices,
            price_basis=f"{req.pricing.basis}: cheapest $/device-hour per type, whole instances",
            detail=(
                f"{len(buckets)} request-size buckets; integer program: {mix.message}; goodput from capacity "
                "headroom; percentiles on each type's main bucket at its equivalent load"
            ),
        )
    ]
