"""Autoscaling over a day: replicas per interval for a day profile (llmcap.load.day), the SLO misses while replicas
start, and what each policy costs (llmcap.plan.planner gives the deployments).

Per deployment the capacity of one replica is its goodput g (requests/s at which `slo.pct`% of requests meet TTFT
and TPOT at the arrival burstiness, DistServe's definition), computed ONCE by the planner at the day's peak rate;
every interval then needs

    need_i = max(min_replicas, ceil(rate_i / g))

(where need_i reaches the peak's count, the planner's own count is used: its re-check at the split rate may have
added a replica). Policies (one schedule R_i of replicas billed per interval):
  autoscaled      R_i = max(need_j) over the scale-down window (j from i - ceil(scale_down_s / dt) to i), the
                  stabilization window of the Kubernetes Horizontal Pod Autoscaler; replicas asked for at the start
                  of interval i serve `start_s` later (image pull, weight load, warm-up), so the replicas serving at
                  time t are min R(s) over s in [t - start_s, t] (the newest replicas are the first removed);
  static-peak     R_i = max(need) all day;
  static-pNN      R_i = ceil(quantile_NN(rate) / g) all day.
Requests above the serving capacity (ready replicas x g) miss the SLO:
    missed requests  = sum over the day of max(0, rate(t) - ready(t) * g) dt
    SLO-miss minutes = time during which rate(t) > ready(t) * g
    SLO-miss share   = missed requests / all requests
(on top of the (100 - slo.pct)% of requests the percentile objective allows at any load). Billing:
    GPU-hours/day    = sum_i R_i * devices per replica * dt / 3600 / days
    $/day            = sum_i $/hour(R_i) * dt / 3600 / days   (whole instances, llmcap.plan.pricing.deployment_price)
    $/M output tok   = $/day / (output tokens per day) * 1e6
    utilization      = served requests / (sum_i R_i * g * dt): the share of the billed capacity used.
Rows are ranked by $/day among those whose SLO-miss share is within the budget (default 1% of requests).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from pydantic import Field

from llmcap.catalog.loader import Catalog, catalog_file
from llmcap.catalog.schema import Frozen, Sourced
from llmcap.load.day import DayProfile
from llmcap.plan.pricing import deployment_price
from llmcap.plan.request import Candidate, Plan

DEFAULT_STATIC_PCT = 90.0
DEFAULT_SLO_MISS_BUDGET = 0.01
STARTUP_FILE = "startup.yaml"


class AutoscaleError(ValueError):
    """A day plan that cannot be made (bad parameter, no usable deployment), with the reason."""


class StorageTier(Sourced):
    id: str
    name: str
    bytes_per_s: float = Field(gt=0)


class StartupCatalog(Sourced):
    """catalogs/startup.yaml: storage tiers, image pull and warm-up, the autoscaler's scale-down window."""

    storage_tiers: list[StorageTier] = Field(min_length=1)
    default_tier: str
    image_pull_s: float = Field(ge=0)
    warmup_s: float = Field(ge=0)
    scale_down_s: float = Field(ge=0)


def startup_catalog() -> StartupCatalog:
    return catalog_file(STARTUP_FILE, StartupCatalog.model_validate, AutoscaleError)


class StartupTime(Frozen):
    """How long a new replica takes before it serves: shown, and overridable (`--scale-up-s`)."""

    image_pull_s: float
    weight_load_s: float
    warmup_s: float
    total_s: float
    checkpoint_gb: float
    tier: str
    tier_gb_per_s: float
    overridden: bool = False


def checkpoint_bytes(model: str, weight_format: str, catalog: Catalog) -> float:
    """Bytes of one replica's checkpoint: weights at the format's bits, embeddings and head at its embedding bits."""
    arch = catalog.model(model).arch
    fmt = catalog.format(weight_format)
    head = arch.params_embedding + arch.params_lm_head
    return ((arch.params_total - head) * fmt.weight_bits + head * fmt.embedding_bits) / 8.0


def startup_time(
    model: str, weight_format: str, catalog: Catalog, tier: str | None = None, override_s: float | None = None
) -> StartupTime:
    """Replica start time = image pull + checkpoint bytes / tier bandwidth + warm-up (catalogs/startup.yaml)."""
    sc = startup_catalog()
    tiers = {t.id: t for t in sc.storage_tiers}
    tier = tier or sc.default_tier
    if tier not in tiers:
        raise AutoscaleError(f"unknown storage tier '{tier}'; known: {', '.join(tiers)}")
    t = tiers[tier]
    nbytes = checkpoint_bytes(model, weight_format, catalog)
    load_s = nbytes / t.bytes_per_s
    total = sc.image_pull_s + load_s + sc.warmup_s
    if override_s is not None:
        if not (math.isfinite(override_s) and 0 <= override_s <= 86_400):
            raise AutoscaleError(f"--scale-up-s must be in [0, 86400] seconds, got {override_s!r}")
        total = float(override_s)
    return StartupTime(
        image_pull_s=sc.image_pull_s,
        weight_load_s=load_s,
        warmup_s=sc.warmup_s,
        total_s=total,
        checkpoint_gb=nbytes / 1e9,
        tier=tier,
        tier_gb_per_s=t.bytes_per_s / 1e9,
        overridden=override_s is not None,
    )


# -- schedules (arrays: deployments x intervals) -----------------------------------------------------------------


def needed_replicas(rate_rps: np.ndarray, per_replica_rps: np.ndarray, peak_replicas: np.ndarray, min_replicas: int):
    """need[c, i] = max(min_replicas, ceil(rate_i / g_c)); the planner's count where it reaches the peak's."""
    g = np.maximum(np.asarray(per_replica_rps, dtype=float)[:, None], 1e-30)
    rate = np.asarray(rate_rps, dtype=float)[None, :]
    need = np.ceil(rate / g - 1e-9)
    at_peak = np.ceil(rate.max() / g - 1e-9)
    need = np.where(need >= at_peak, np.maximum(need, np.asarray(peak_replicas, dtype=float)[:, None]), need)
    return np.maximum(need, float(min_replicas))


def rolling(values: np.ndarray, window: int, op) -> np.ndarray:
    """op (np.maximum or np.minimum) over the current and the `window` previous intervals, periodic in time."""
    out = values.copy()
    shifted = values
    for _ in range(min(int(window), values.shape[-1] - 1)):
        shifted = np.roll(shifted, 1, axis=-1)
        out = op(out, shifted)
    return out


def autoscaled(need: np.ndarray, interval_s: float, scale_down_s: float) -> np.ndarray:
    """Replicas billed per interval: the most needed over the scale-down window (HPA stabilization)."""
    return rolling(need, math.ceil(max(scale_down_s, 0.0) / interval_s - 1e-9), np.maximum)


def static(need: np.ndarray, per_replica_rps: np.ndarray, rate_rps: np.ndarray, pct: float | None, min_replicas: int):
    """All day at the peak's count (pct None) or at the count for the pct-th percentile of the rate."""
    if pct is None:
        level = need.max(axis=1, keepdims=True)
    else:
        q = float(np.percentile(rate_rps, pct))
        level = np.maximum(np.ceil(q / np.maximum(per_replica_rps, 1e-30) - 1e-9), float(min_replicas))[:, None]
    return np.broadcast_to(level, need.shape).copy()


@dataclasses.dataclass(frozen=True)
class Shortfall:
    missed_requests: np.ndarray  # per deployment, whole series
    miss_s: np.ndarray
    served_requests: np.ndarray


def shortfall(
    billed: np.ndarray, rate_rps: np.ndarray, per_replica_rps: np.ndarray, interval_s: float, start_s: np.ndarray
) -> Shortfall:
    """Requests above the ready capacity; replicas billed at interval i serve `start_s` later (per deployment).

    With start_s = m dt + r: during the first r seconds of interval i the ready replicas are min(R[i-m-1 .. i]),
    for the rest min(R[i-m .. i])."""
    n = billed.shape[1]
    start = np.clip(np.asarray(start_s, dtype=float), 0.0, (n - 1) * interval_s)
    m = np.floor(start / interval_s + 1e-12).astype(int)
    r = start - m * interval_s
    ready_a = np.empty_like(billed)
    ready_b = np.empty_like(billed)
    cur = billed.copy()
    shifted = billed
    for w in range(int(m.max()) + 2):
        if w:
            shifted = np.roll(shifted, 1, axis=1)
            cur = np.minimum(cur, shifted)
        ready_b[m == w] = cur[m == w]
        ready_a[m + 1 == w] = cur[m + 1 == w]
    g = np.asarray(per_replica_rps, dtype=float)[:, None]
    rate = np.asarray(rate_rps, dtype=float)[None, :]
    ra, rb = r[:, None], (interval_s - r)[:, None]
    cap_a, cap_b = ready_a * g, ready_b * g
    short_a = np.maximum(rate - cap_a, 0.0)
    short_b = np.maximum(rate - cap_b, 0.0)
    tol = 1e-9 * np.maximum(rate, 1e-12)
    missed = (short_a * ra + short_b * rb).sum(axis=1)
    miss_s = ((short_a > tol) * ra + (short_b > tol) * rb).sum(axis=1)
    served = (np.minimum(rate, cap_a) * ra + np.minimum(rate, cap_b) * rb).sum(axis=1)
    return Shortfall(missed, miss_s, served)


# -- results -----------------------------------------------------------------------------------------------------


class DayPolicy(Frozen):
    """One deployment under one policy over the day (the JSON `day` objects)."""

    policy: str
    rank: int | None = None  # among rows within the SLO-miss budget, by $/day
    hardware: str
    devices_per_replica: int
    weight_format: str
    engine: str
    tp: int
    pp: int
    interval_s: float
    rate_rps: list[float]
    replicas: list[int]
    capacity_rps: list[float]  # replicas billed x per-replica goodput
    per_replica_goodput_rps: float
    gpu_hours: float  # per day
    usd_per_day: float
    usd_per_million_output_tokens: float
    slo_miss_minutes: float  # per day
    slo_miss_request_share: float
    utilization: float
    within_budget: bool
    price_basis: str
    startup_s: float


class DayPlan(Frozen):
    profile: str
    interval_s: float
    days: float
    rate_rps: list[float]
    mean_rate_rps: float
    peak_rate_rps: float
    startup: StartupTime | None
    scale_down_s: float
    min_replicas: int
    slo_miss_budget: float
    static_pct: float
    rows: list[DayPolicy]  # every deployment x policy, ranked rows first ($/day), then the rest
    notes: list[str] = Field(default_factory=list)

    def best(self) -> list[DayPolicy]:
        """The recommended deployment (cheapest row within budget) under each policy."""
        ok = [r for r in self.rows if r.within_budget]
        if not ok:
            return []
        top = ok[0]
        key = (top.hardware, top.weight_format, top.engine, top.tp, top.pp)
        return [r for r in self.rows if (r.hardware, r.weight_format, r.engine, r.tp, r.pp) == key]


def policy_names(static_pct: float) -> tuple[str, ...]:
    return ("autoscaled", "static-peak", f"static-p{static_pct:g}")


@dataclasses.dataclass(frozen=True)
class Deployments:
    """The aggregated candidates of a plan as arrays (one row per deployment)."""

    cands: list[Candidate]
    per_replica_rps: np.ndarray
    peak_replicas: np.ndarray
    dpr: np.ndarray

    @classmethod
    def of(cls, plan: Plan) -> Deployments:
        cands = [c for c in plan.candidates if c.mode == "aggregated" and c.replicas > 0 and c.goodput_rps > 0]
        return cls(
            cands=cands,
            per_replica_rps=np.array([c.goodput_rps / c.replicas for c in cands], dtype=float),
            peak_replicas=np.array([c.replicas for c in cands], dtype=float),
            dpr=np.array([max(c.devices // c.replicas, 1) for c in cands], dtype=np.int64),
        )


def schedules(
    dep: Deployments, rate: np.ndarray, interval_s: float, scale_down_s: float, min_replicas: int, static_pct: float
) -> dict[str, np.ndarray]:
    """Replicas billed per interval for each policy (deployments x intervals)."""
    need = needed_replicas(rate, dep.per_replica_rps, dep.peak_replicas, min_replicas)
    names = policy_names(static_pct)
    return {
        names[0]: autoscaled(need, interval_s, scale_down_s),
        names[1]: static(need, dep.per_replica_rps, rate, None, min_replicas),
        names[2]: static(need, dep.per_replica_rps, rate, static_pct, min_replicas),
    }


def _hourly_usd(cand: Candidate, counts: np.ndarray, dpr: int, plan: Plan, catalog: Catalog):
    """$/hour per interval for `counts` replicas (whole instances), and the basis text; None when unpriced."""
    uniq, inv = np.unique(counts.astype(np.int64), return_inverse=True)
    priced = deployment_price(cand.hardware, np.maximum(uniq, 1), np.full(uniq.size, dpr), plan.request, catalog)
    if priced is None:
        return None
    usd, basis = priced
    usd = np.where(uniq > 0, np.asarray(usd, dtype=float), 0.0)
    return usd[inv], basis


def day_plan(
    plan: Plan,
    profile: DayProfile,
    catalog: Catalog,
    *,
    scale_up_s: float | None = None,
    scale_down_s: float | None = None,
    min_replicas: int = 1,
    slo_miss_budget: float = DEFAULT_SLO_MISS_BUDGET,
    static_pct: float = DEFAULT_STATIC_PCT,
    tier: str | None = None,
) -> DayPlan:
    """Every aggregated candidate of `plan` (planned at the profile's peak rate) under each policy over the day."""
    if not 0 <= min_replicas <= 10_000:
        raise AutoscaleError(f"--min-replicas must be in [0, 10000], got {min_replicas}")
    if not (math.isfinite(slo_miss_budget) and 0 <= slo_miss_budget < 1):
        raise AutoscaleError(f"--slo-miss-budget must be a share in [0, 1), got {slo_miss_budget!r}")
    if not (math.isfinite(static_pct) and 0 < static_pct < 100):
        raise AutoscaleError(f"the static percentile must be in (0, 100), got {static_pct!r}")
    sc = startup_catalog()
    down = sc.scale_down_s if scale_down_s is None else float(scale_down_s)
    if not (math.isfinite(down) and 0 <= down <= 86_400):
        raise AutoscaleError(f"the scale-down delay must be in [0, 86400] s, got {scale_down_s!r}")
    req = plan.request
    dep = Deployments.of(plan)
    rate, dt, days = profile.rate_rps, profile.interval_s, profile.days
    notes = [
        f"deployments planned at the day's peak rate {profile.peak_rate_rps:.3g} req/s; "
        "capacity per replica = the planner's goodput at that rate's burstiness"
    ]
    if len(dep.cands) < len(plan.candidates):
        notes.append("disaggregated and mixed candidates are not scaled over the day (aggregated rows only)")
    starts = {
        wf: startup_time(req.model, wf, catalog, tier, scale_up_s)
        for wf in sorted({c.weight_format for c in dep.cands})
    }
    rows: list[DayPolicy] = []
    total_requests = float(rate.sum() * dt)
    out_tokens_per_day = total_requests * req.output_len / days
    if dep.cands:
        start_s = np.array([starts[c.weight_format].total_s for c in dep.cands])
        for name, billed in schedules(dep, rate, dt, down, min_replicas, static_pct).items():
            ready_start = start_s if name == "autoscaled" else np.zeros_like(start_s)
            sf = shortfall(billed, rate, dep.per_replica_rps, dt, ready_start)
            for k, cand in enumerate(dep.cands):
                priced = _hourly_usd(cand, billed[k], int(dep.dpr[k]), plan, catalog)
                if priced is None:
                    continue
                usd_h, basis = priced
                usd_day = float((usd_h * dt).sum() / 3600.0 / days)
                share = float(sf.missed_requests[k] / total_requests) if total_requests > 0 else 0.0
                offered = float((billed[k] * dep.per_replica_rps[k] * dt).sum())
                rows.append(
                    DayPolicy(
                        policy=name,
                        hardware=cand.hardware,
                        devices_per_replica=int(dep.dpr[k]),
                        weight_format=cand.weight_format,
                        engine=cand.engine,
                        tp=cand.tp,
                        pp=cand.pp,
                        interval_s=dt,
                        rate_rps=[float(x) for x in rate],
                        replicas=[int(x) for x in billed[k]],
                        capacity_rps=[float(x) for x in billed[k] * dep.per_replica_rps[k]],
                        per_replica_goodput_rps=float(dep.per_replica_rps[k]),
                        gpu_hours=float((billed[k] * dep.dpr[k] * dt).sum() / 3600.0 / days),
                        usd_per_day=usd_day,
                        usd_per_million_output_tokens=usd_day / out_tokens_per_day * 1e6 if out_tokens_per_day else 0.0,
                        slo_miss_minutes=float(sf.miss_s[k] / 60.0 / days),
                        slo_miss_request_share=share,
                        utilization=float(sf.served_requests[k] / offered) if offered > 0 else 0.0,
                        within_budget=share <= slo_miss_budget + 1e-12,
                        price_basis=basis,
                        startup_s=float(ready_start[k]),
                    )
                )
    ok = sorted((r for r in rows if r.within_budget), key=lambda r: (r.usd_per_day, r.slo_miss_request_share))
    rest = sorted((r for r in rows if not r.within_budget), key=lambda r: (r.slo_miss_request_share, r.usd_per_day))
    ranked = [r.model_copy(update={"rank": i + 1}) for i, r in enumerate(ok)] + rest
    first = starts[ok[0].weight_format] if ok else (next(iter(starts.values())) if starts else None)
    return DayPlan(
        profile=profile.name,
        interval_s=dt,
        days=days,
        rate_rps=[float(x) for x in rate],
        mean_rate_rps=profile.mean_rate_rps,
        peak_rate_rps=profile.peak_rate_rps,
        startup=first,
        scale_down_s=down,
        min_replicas=min_replicas,
        slo_miss_budget=slo_miss_budget,
        static_pct=static_pct,
        rows=ranked,
        notes=notes + list(profile.notes),
    )


def replica_bounds(day: DayPlan, cand: Candidate | None = None) -> tuple[int, int] | None:
    """(min, max) replicas of a deployment's autoscaled schedule (default: the recommended one's): the bounds of
    its Kubernetes autoscaler."""
    rows = day.best() if cand is None else day.rows
    for r in rows:
        same = cand is None or (r.hardware, r.weight_format, r.engine, r.tp, r.pp) == (
            cand.hardware,
            cand.weight_format,
            cand.engine,
            cand.tp,
            cand.pp,
        )
        if r.policy == "autoscaled" and same:
            return min(r.replicas), max(r.replicas)
    return None
