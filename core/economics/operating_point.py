"""Cost and energy of one deployment at an operating point, closed-loop or open-loop.

An operating point is what the serving model says the deployment does: requests/s, input and output
tokens/s, the prefill step and the decode step it runs (llmcap.estimate.single.PhaseResult, split into compute-,
memory-bound, communication and overhead time) and the share of time the engine is busy. From it:

  prefill time share  s = min(1, lambda_replica * P / busy)
      lambda_replica = requests/s per replica, P = one mean prompt's prefill step (alone): the share of
      the engine's busy time spent on prompts. The rest is decoding. (With chunked prefill a prompt rides
      along decode iterations and costs less than alone, so s is an upper bound there.)
  compute share       s * P_compute / P + (1 - s) * D_compute / D      (D: the decode step at the batch)
  memory share        s * P_memory  / P + (1 - s) * D_memory  / D

The shares feed economics.energy.step_power_w (board power) and s splits the bill in economics.cost.unit_costs.
$/hour comes from llmcap.economics.cost: a catalog cloud offering (by provider or offering id, or the cheapest
current one), a user's $/GPU-hour, or total cost of ownership with the operating point's power.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Literal

from pydantic import Field

from llmcap.catalog.loader import Catalog, UnknownIdError, load_catalog
from llmcap.catalog.schema import Frozen
from llmcap.economics.cost import CostError, HourlyCost, cloud_cost, tco_cost, unit_costs, user_cost
from llmcap.economics.energy import DEFAULT_REGION, estimate_energy
from llmcap.estimate.single import Estimate, PhaseResult, estimate
from llmcap.scenario import Pricing


class CostResult(Frozen):
    """$/hour and the per-token and per-request cost at the operating point (inf where nothing flows)."""

    usd_per_hour: float
    usd_per_million_input_tokens: float
    usd_per_million_output_tokens: float
    usd_per_million_output_tokens_all_in: float = Field(description="the whole bill on output tokens")
    usd_per_request: float
    idle_share: float = Field(description="share of what is paid for that sits idle (unused devices, headroom)")
    prefill_time_share: float
    basis: Literal["cloud", "user", "tco"]
    usd_per_device_hour: float
    devices_billed: int
    offering_id: str | None = None
    provider: str | None = None
    instance: str | None = None
    source: str | None = None
    notes: list[str] = []


class EnergyResult(Frozen):
    """Board power, energy and carbon at the operating point; None where the device has no TDP."""

    watts: float | None
    watts_per_device: float | None
    joules_per_output_token: float | None
    kwh_per_day: float | None
    gco2e_per_million_output_tokens: float | None
    gco2e_per_day: float | None
    region: str
    gco2e_per_kwh: float
    pue: float
    busy_fraction: float
    compute_share: float
    memory_share: float
    notes: list[str] = []


class OperatingPoint(Frozen):
    """What the serving model says one deployment does (whole deployment, per second)."""

    requests_per_s: float = Field(ge=0)
    input_tokens_per_s: float = Field(ge=0)
    output_tokens_per_s: float = Field(ge=0)
    prefill: PhaseResult
    decode: PhaseResult
    busy_fraction: float = Field(ge=0, le=1)
    capacity_used: float = Field(ge=0, le=1, description="request rate / maximum sustainable rate")


def prefill_time_share(requests_per_s_per_replica: float, prefill_ms: float, busy_fraction: float) -> float:
    """Share of busy engine time spent on prompts: min(1, lambda_replica * P / busy) (module docstring)."""
    if busy_fraction <= 0:
        return 0.0
    return min(1.0, max(0.0, requests_per_s_per_replica * prefill_ms / 1e3 / busy_fraction))


def time_shares(prefill: PhaseResult, decode: PhaseResult, s: float) -> tuple[float, float]:
    """(compute-bound, memory-bound) shares of busy time, prefill and decode weighted by s and 1 - s."""

    def split(p: PhaseResult) -> tuple[float, float]:
        return (p.compute_ms / p.time_ms, p.memory_ms / p.time_ms) if p.time_ms > 0 else (0.0, 0.0)

    (pc, pm), (dc, dm) = split(prefill), split(decode)
    return s * pc + (1 - s) * dc, s * pm + (1 - s) * dm


def hourly_cost(pricing: Pricing, est: Estimate, catalog: Catalog, power_w: float | None = None) -> HourlyCost:
    """$/hour of the estimate's deployment on the chosen basis; raises CostError (or UnknownIdError).

    The user's $/GPU-hour first; owned: total cost of ownership; cloud: the offering; both: the offering, else
    total cost of ownership."""
    scn = est.scenario
    if pricing.usd_per_gpu_hour is not None:
        return user_cost(scn.devices, pricing.usd_per_gpu_hour)
    if pricing.basis == "owned":
        return tco_cost(scn.hardware, scn.devices, power_w=power_w, pue=pricing.pue, catalog=catalog)
    try:
        return cloud_cost(
            scn.hardware,
            scn.devices,
            devices_per_replica=scn.devices_per_replica,
            provider=pricing.provider,
            offering_id=pricing.offering,
            catalog=catalog,
        )
    except CostError:
        if pricing.basis != "both":
            raise
        return tco_cost(scn.hardware, scn.devices, power_w=power_w, pue=pricing.pue, catalog=catalog)


class PointCosts(Frozen):
    """Cost (None when the deployment has no price) and energy at an operating point, with notes."""

    cost: CostResult | None
    energy: EnergyResult
    notes: list[str] = []


def point_costs(
    est: Estimate,
    point: OperatingPoint,
    pricing: Pricing | None = None,
    region: str = DEFAULT_REGION,
    *,
    catalog: Catalog | None = None,
    strict: bool = True,
) -> PointCosts:
    """Cost and energy of `est`'s deployment at `point`.

    An explicit price basis that cannot be priced raises CostError (with strict=False: cost None and a
    note, as for the default basis, the cheapest cloud offering, when the device has none). An unknown
    region raises UnknownIdError.
    """
    catalog = catalog or load_catalog()
    pricing = pricing or Pricing()
    device = catalog.device(est.scenario.hardware)
    scn = est.scenario
    s = prefill_time_share(point.requests_per_s / scn.replicas, point.prefill.time_ms, point.busy_fraction)
    compute, memory = time_shares(point.prefill, point.decode, s)
    hourly: HourlyCost | None = None
    missing: str | None = None
    owned = pricing.basis == "owned" and pricing.usd_per_gpu_hour is None
    if not owned:
        try:
            hourly = hourly_cost(pricing.model_copy(update={"basis": "cloud"}), est, catalog)
        except (CostError, UnknownIdError) as exc:
            if pricing.basis == "both":
                owned = True  # no rental offering: priced as owned hardware, after the power is known
            elif strict and not pricing.is_default:
                raise
            else:
                missing = f"no cost figure: {str(exc).strip(chr(34))}"
    idle = (hourly.devices_billed - hourly.devices_used) if hourly else 0
    e = estimate_energy(
        device,
        scn.devices,
        point.output_tokens_per_s,
        compute_share=compute,
        memory_share=memory,
        busy_fraction=point.busy_fraction,
        idle_devices=idle,
        region=region,
        pue=pricing.pue,
        catalog=catalog,
    )
    if owned:
        try:
            as_owned = pricing.model_copy(update={"basis": "owned"})
            hourly = hourly_cost(as_owned, est, catalog, power_w=e.watts_per_device)
        except (CostError, UnknownIdError) as exc:
            if strict:
                raise
            missing = f"no cost figure: {str(exc).strip(chr(34))}"
    # the estimate's figures (those EnergyResult shows) and the shares that made them
    energy = EnergyResult(
        **e.model_dump(include=set(EnergyResult.model_fields)),
        busy_fraction=point.busy_fraction,
        compute_share=compute,
        memory_share=memory,
    )
    if hourly is None:
        return PointCosts(cost=None, energy=energy, notes=[missing] if missing else [])
    u = unit_costs(
        hourly.usd_per_hour,
        requests_per_s=point.requests_per_s,
        input_tokens_per_s=point.input_tokens_per_s,
        output_tokens_per_s=point.output_tokens_per_s,
        prefill_time_share=s,
        devices_used=hourly.devices_used,
        devices_billed=hourly.devices_billed,
        capacity_used=point.capacity_used,
    )
    # the price basis (what CostResult shows of it), every unit cost, and the prefill share that split them
    cost = CostResult(
        **hourly.model_dump(include=set(CostResult.model_fields)),
        **{f.name: float(getattr(u, f.name)) for f in fields(u)},
        prefill_time_share=s,
    )
    return PointCosts(cost=cost, energy=energy)


def closed_loop_point(est: Estimate, max_requests_per_s: float | None = None) -> OperatingPoint | None:
    """The operating point of a closed-loop estimate: its throughput, always busy; None if it does not fit."""
    s = est.serving
    if s is None or est.prefill is None or est.decode is None:
        return None
    used = 1.0
    if max_requests_per_s and math.isfinite(max_requests_per_s) and max_requests_per_s > 0:
        used = min(s.requests_per_s / max_requests_per_s, 1.0)
    return OperatingPoint(
        requests_per_s=s.requests_per_s,
        input_tokens_per_s=s.input_tokens_per_s,
        output_tokens_per_s=s.output_tokens_per_s,
        prefill=est.prefill,
        decode=est.decode,
        busy_fraction=1.0,
        capacity_used=used,
    )


def closed_loop_costs(
    est: Estimate,
    pricing: Pricing | None = None,
    region: str = DEFAULT_REGION,
    *,
    catalog: Catalog | None = None,
    strict: bool = True,
) -> PointCosts | None:
    """Cost and energy of a closed-loop estimate at its throughput (None when it does not fit).

    The idle share compares that throughput with the closed loop's at `max` concurrency.
    """
    catalog = catalog or load_catalog()
    if not est.fits:
        return None
    top = estimate(est.scenario.model_copy(update={"concurrency": "max"}), catalog)
    point = closed_loop_point(est, top.serving.requests_per_s if top.serving else None)
    if point is None:
        return None
    return point_costs(est, point, pricing, region, catalog=catalog, strict=strict)
