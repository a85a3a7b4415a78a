"""$/hour and board power of deployments, per row of the search space: the user's price, the cheapest cloud
offering in whole instances or total cost of ownership; watts from a step's time split (llmcap.economics)."""

from __future__ import annotations

import numpy as np

from llmcap.catalog.loader import Catalog
from llmcap.economics.cost import CostError, cheapest, offerings_for, tco_cost
from llmcap.economics.energy import device_power, step_power_w
from llmcap.plan.request import PlanRequest
from llmcap.plan.space import Space


def deployment_price(hardware: str, replicas, dpr, req: PlanRequest, catalog: Catalog):
    """$/hour of `replicas` replicas of `dpr` devices (arrays) and its basis, or None when nothing prices it.

    The user's $/GPU-hour when given. Else by the request's price basis: `cloud`, the cheapest on-demand offering
    (whole instances, llmcap.economics.cost.cheapest); `owned`, total cost of ownership from the catalog's purchase
    price (llmcap.economics.cost.tco_cost: its default years, PUE and $/kWh, electricity at TDP); `both`, the
    offering where there is one, else TCO. Renting and owning are never ranked together silently: the basis text
    of every row starts with "cloud", "owned" or "user".
    """
    devices = np.asarray(replicas, dtype=float) * np.asarray(dpr, dtype=float)
    user = req.pricing.usd_per_gpu_hour
    if user is not None:
        return devices * user * req.price_scale, f"user ${user:g}/GPU-hour"
    if req.pricing.basis in ("cloud", "both"):
        try:
            offers = offerings_for(hardware, req.pricing.provider, catalog=catalog)
            usd, idx = cheapest(offers, replicas, dpr)
            best = offers[int(np.bincount(idx).argmax())]
            return usd * req.price_scale, f"cloud on-demand: {best.provider} {best.instance}"
        except CostError:
            pass
    if req.pricing.basis in ("owned", "both") and req.pricing.provider is None:
        try:
            per_device = tco_cost(hardware, 1, catalog=catalog).usd_per_device_hour
            return devices * per_device * req.price_scale, f"owned (TCO): ${per_device:.2f}/device-hour"
        except CostError:
            pass
    return None


def no_price_detail(req: PlanRequest) -> str:
    """Why a device has no price under the request's basis, and what to do about it."""
    if req.pricing.basis == "cloud":
        return (
            "no cloud price: no on-demand offering in catalogs/prices/cloud.yaml"
            + (f" from {req.pricing.provider}" if req.pricing.provider else "")
            + "; choose owned hardware (--price-basis owned, URL basis=owned) or give a $/GPU-hour"
        )
    if req.pricing.basis == "owned":
        return "no purchase price in catalogs/prices/purchase.yaml; choose --price-basis cloud or give a $/GPU-hour"
    return "no cloud offering or purchase price in the catalog; give a $/GPU-hour"


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
