"""Disaggregated serving: separate prefill and decode pools (Splitwise, DistServe), vectorized.

Splitwise (Patel et al., ISCA 2024) and DistServe (Zhong et al., OSDI 2024) run prompts on one pool and
token generation on another, shipping the KV cache between them, so prefills never stall decodes. Per
configuration row of the planner's space (one replica layout of a device/format family):

Prefill instance: one prompt at a time (a compute-bound prefill gains little from batching), service
  time S = the prefill of one mean prompt. A G/G/1 queue: Kingman's mean wait
      E[W] = rho / (1 - rho) * (ca^2 + cs^2) / 2 * S
  (cs = the prompt-length cv, since prefill time grows with the prompt), and the usual exponential
  tail P(W > t) = rho * exp(-rho t / E[W]). TTFT_p = S + W_p + KV transfer + request overhead.
  KV transfer = the prompt's KV bytes per device / the link: the scale-up link when both instances fit
  in one scale-up domain, else the scale-out network.
Decode instance: B requests decode together, each step d(B) (the decode step of llmcap.perf.operators at the
  mean context). Little's law gives the rate it sustains, lambda(B) = B / ((O - 1) d(B)); the batch
  a request sees fluctuates about B like a Poisson count, so TPOT_p = d(B + z_p sqrt(B)), capped by
  the KV capacity and max_seqs.
Each pool gets a share of the objective's failures: the joint attainment of both objectives is at
least pct when each pool meets 1 - (1 - pct) / 2 (the union bound), so the plan is never optimistic.
Pools are sized independently (ceil(rate / capacity) instances each) and billed by whole instances.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from llmcap.catalog.loader import Catalog
from llmcap.estimate.serving import decode_contexts, per_stage_batch
from llmcap.estimate.sweep import evaluate, expand
from llmcap.perf.memory import kv_bytes_per_sequence
from llmcap.perf.operators import decode_step
from llmcap.plan.pricing import device_watts, family_prices
from llmcap.plan.request import Candidate, PlanRequest
from llmcap.plan.space import Space

BATCH_GRID = 40
BISECT = 40


def pool_percentile(pct: float) -> float:
    """Per-pool attainment that guarantees joint attainment `pct` (union bound), in percent."""
    return 100.0 - (100.0 - pct) / 2.0


def _wait_quantile(rho: np.ndarray, service_s: np.ndarray, ca2: float, cs2: float, p: float) -> np.ndarray:
    """p-quantile of the G/G/1 wait: Kingman mean with an exponential tail of mass rho."""
    rho = np.clip(rho, 0.0, 1.0 - 1e-12)
    mean = rho / (1 - rho) * (ca2 + cs2) / 2 * service_s
    tail = 1.0 - p / 100.0
    return np.where(rho > tail, mean / np.maximum(rho, 1e-12) * np.log(np.maximum(rho, 1e-12) / tail), 0.0)


def prefill_pool(space: Space, req: PlanRequest, pct: float):
    """Per prefill instance: service time, TTFT at pct when lightly loaded, capacity (req/s) within TTFT."""
    n = len(space)
    inp = expand(space.inp, np.arange(n), concurrency=np.ones(n))
    res = evaluate(inp)
    sys = inp.system
    service = res.prefill_s
    kv_bytes = kv_bytes_per_sequence(sys.shape, sys.fmt, sys.layout, inp.input_len)
    same_domain = 2 * space.devices_per_replica <= sys.dev.domain
    link = np.where(same_domain, sys.dev.link_bw, sys.dev.scaleout_bw)
    fixed = service + kv_bytes / link + sys.eff.request_overhead_s
    target = req.slo.ttft_ms / 1e3
    ca2, cs2 = req.arrival_cv**2, req.input_cv**2
    lo, hi = np.zeros(n), np.ones(n)
    for _ in range(BISECT):
        mid = (lo + hi) / 2
        ok = fixed + _wait_quantile(mid, service, ca2, cs2, pct) <= target
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    capacity = np.where((fixed <= target) & res.fits, lo / np.maximum(service, 1e-12), 0.0)
    return capacity, service, fixed, res


def decode_pool(space: Space, req: PlanRequest, pct: float):
    """Per decode instance: capacity (req/s) within TPOT at pct, and the batch and step time there."""
    n = len(space)
    top = evaluate(expand(space.inp, np.arange(n), concurrency=np.full(n, np.inf)))
    n_max = np.maximum(top.running, 1.0)
    frac = np.linspace(0.0, 1.0, BATCH_GRID)
    b = n_max[:, None] ** frac[None, :]  # rows x grid, 1 .. n_max
    rows = np.repeat(np.arange(n), BATCH_GRID)
    ex = expand(space.inp, rows)
    s, o = ex.input_len, ex.output_len
    ctx_full, ctx_slide = decode_contexts(ex.system, s, o)
    z = ndtri(pct / 100.0)
    b_flat = b.ravel()
    b_seen = np.minimum(b_flat + z * np.sqrt(b_flat), np.repeat(n_max, BATCH_GRID))
    step_mean = ex.system.time(decode_step(per_stage_batch(b_flat, ex.system.layout), ctx_full, ctx_slide))
    step_seen = ex.system.time(decode_step(per_stage_batch(b_seen, ex.system.layout), ctx_full, ctx_slide))
    d_mean = step_mean.total_s.reshape(n, BATCH_GRID)
    d_seen = step_seen.total_s.reshape(n, BATCH_GRID)
    decodes = np.maximum(space.inp.output_len - 1, 1.0)[:, None]
    rate = b / (decodes * d_mean)
    ok = (d_seen <= req.slo.tpot_ms / 1e3) & top.fits[:, None]
    capacity = np.where(ok, rate, 0.0).max(axis=1)
    best = np.argmax(np.where(ok, rate, -1.0), axis=1)
    pick = np.arange(n)
    parts = np.stack(
        [
            getattr(step_mean, f).reshape(n, BATCH_GRID)[pick, best]
            for f in ("compute_s", "memory_s", "comm_s", "overhead_s")
        ]
    )
    return capacity, d_mean[pick, best], d_seen[pick, best], parts


def disaggregated(space: Space, req: PlanRequest, catalog: Catalog) -> list[Candidate]:
    """The cheapest disaggregated deployment per family (same device for both pools), plus the best
    cross-device pair for each (weight format, KV format, engine, vendor)."""
    sub = space.take(np.flatnonzero(space.max_seqs == _family_max(space)))
    p_pct = pool_percentile(req.slo.pct)
    cap_p, service, ttft_fixed, pre = prefill_pool(sub, req, p_pct)
    cap_d, tpot_mean, tpot_seen, dec_parts = decode_pool(sub, req, p_pct)
    n_p = np.where(cap_p > 0, np.ceil(req.rate_rps / np.maximum(cap_p, 1e-30) - 1e-9), 0)
    n_d = np.where(cap_d > 0, np.ceil(req.rate_rps / np.maximum(cap_d, 1e-30) - 1e-9), 0)
    dpr = sub.devices_per_replica
    usd_p, basis, known_p = family_prices(sub, req, catalog, np.maximum(n_p, 1).astype(np.int64))
    usd_d, _, known_d = family_prices(sub, req, catalog, np.maximum(n_d, 1).astype(np.int64))
    ok_p = (n_p > 0) & known_p & (n_p * dpr <= req.max_devices)
    ok_d = (n_d > 0) & known_d & (n_d * dpr <= req.max_devices)
    rho = np.where(n_p > 0, req.rate_rps / np.maximum(n_p, 1) * service, 0.0)
    ca2, cs2 = req.arrival_cv**2, req.input_cv**2
    ttft = {q: ttft_fixed + _wait_quantile(rho, service, ca2, cs2, q) for q in (50.0, 90.0)}
    watts_p = device_watts(sub, catalog, pre.prefill_parts_s, rho) * n_p * dpr
    watts_d = device_watts(sub, catalog, dec_parts, np.ones(len(sub))) * n_d * dpr

    def pair(i: int, j: int) -> Candidate | None:
        devices = int(n_p[i] * dpr[i] + n_d[j] * dpr[j])
        usd = float(usd_p[i] + usd_d[j])
        if devices > req.max_devices or (req.max_usd_per_hour is not None and usd > req.max_usd_per_hour):
            return None
        fp, fd = sub.families[int(sub.family[i])], sub.families[int(sub.family[j])]
        out_tps = req.rate_rps * req.output_len
        w = float(watts_p[i] + watts_d[j])
        hardware = fd.hardware if fp.hardware == fd.hardware else f"{fp.hardware} (prefill) + {fd.hardware} (decode)"
        return Candidate(
            hardware=hardware,
            devices=devices,
            tp=int(sub.tp[j]),
            pp=int(sub.pp[j]),
            ep=int(sub.ep[j]),
            replicas=int(n_p[i] + n_d[j]),
            weight_format=fd.weight_format,
            kv_format=fd.kv_format,
            engine=fd.engine,
            max_seqs=int(sub.max_seqs[j]),
            mode=f"disaggregated {int(n_p[i])}P:{int(n_d[j])}D",
            ttft_ms_p50=float(ttft[50.0][i]) * 1e3,
            ttft_ms_p90=float(ttft[90.0][i]) * 1e3,
            tpot_ms_p50=float(tpot_mean[j]) * 1e3,
            tpot_ms_p90=float(tpot_seen[j]) * 1e3,
            e2e_ms_p90=float(ttft[90.0][i] + (req.output_len - 1) * tpot_seen[j]) * 1e3,
            slo_attainment=req.slo.pct / 100.0,
            goodput_rps=float(min(n_p[i] * cap_p[i], n_d[j] * cap_d[j])),
            max_rate_rps=float(min(n_p[i] / service[i], n_d[j] * cap_d[j])),
            utilization=float(max(rho[i], req.rate_rps / max(n_d[j] * cap_d[j], 1e-30))),
            usd_per_hour=usd,
            usd_per_million_output_tokens=usd / (out_tps * 3600) * 1e6,
            joules_per_output_token=w / out_tps if np.isfinite(w) else None,
            output_tokens_per_s_per_device=out_tps / devices,
            price_basis=basis[int(sub.family[j])],
            detail=(
                f"prefill pool: {int(n_p[i])} x tp={int(sub.tp[i])} pp={int(sub.pp[i])}; "
                f"decode pool: {int(n_d[j])} x tp={int(sub.tp[j])} pp={int(sub.pp[j])} ep={int(sub.ep[j])}; "
                f"objectives met at {pool_percentile(req.slo.pct):g}% per pool"
            ),
        )

    out: list[Candidate] = []
    groups: dict[tuple, list[int]] = {}
    for f, fam in enumerate(sub.families):
        # a KV cache moves between engines of one vendor's stack only
        groups.setdefault((fam.weight_format, fam.kv_format, fam.engine, fam.resolved.device.vendor), []).append(f)
        rows = np.flatnonzero(sub.family == f)
        i, j = _cheapest(rows, ok_p, usd_p), _cheapest(rows, ok_d, usd_d)
        if i is not None and j is not None and (c := pair(i, j)) is not None:
            out.append(c)
    for fams in groups.values():  # a different device per phase
        rows = np.flatnonzero(np.isin(sub.family, fams))
        i, j = _cheapest(rows, ok_p, usd_p), _cheapest(rows, ok_d, usd_d)
        if i is not None and j is not None and sub.family[i] != sub.family[j] and (c := pair(i, j)) is not None:
            out.append(c)
    return out


def _cheapest(rows: np.ndarray, ok: np.ndarray, usd: np.ndarray) -> int | None:
    rows = rows[ok[rows]]
    return int(rows[np.argmin(usd[rows])]) if rows.size else None


def _family_max(space: Space) -> np.ndarray:
    """Each row's family's largest concurrency cap (the engine default)."""
    top = np.zeros(len(space.families))
    np.maximum.at(top, space.family, space.max_seqs)
    return top[space.family]
