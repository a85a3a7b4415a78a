"""What a deployment costs per hour, and per token and request at an operating point.

$/hour comes from one of three bases:
  cloud  an on-demand offering from catalogs/prices/cloud.yaml. Whole instances are billed:
         instances = ceil(devices / devices_per_instance) when each replica is one device (in general
         replicas are packed whole into instances, `instances_needed`); $/hour = instances * instance
         $/hour. By default the cheapest current (non-superseded) offering for the deployment.
  user   a $/device-hour the user enters, times the devices used.
  tco    total cost of ownership per device-hour:
             purchase $ / (years * 8760 h)  +  power kW * PUE * $/kWh
         (capital amortized straight-line, no interest or resale; servers, network and staff are not
         included). Defaults for years, PUE and $/kWh are in catalogs/power.yaml.

Cost attribution at an operating point (`unit_costs`). The hour is split between input and output
tokens by the share of device time spent in prefill (prefill_time_share, s):
    $/1M input tokens  = $/hour * s       / (input tokens/s  * 3600) * 1e6
    $/1M output tokens = $/hour * (1 - s) / (output tokens/s * 3600) * 1e6
so input and output charges add back up to the whole bill, idle time included (idle cost is spread in
the same proportion). The simpler figure domain.md uses, with the whole bill on output tokens:
    $/1M output tokens (all-in) = $/hour / (output tokens/s * 3600) * 1e6
$/request = $/hour / (requests/s * 3600). Share of capacity left idle:
    1 - (devices used / devices billed) * (request rate / maximum sustainable rate)
counting billed-but-unused devices of a partly used instance and headroom below the maximum rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from llmcap.catalog.loader import Catalog, load_catalog
from llmcap.catalog.schema import CloudOffering, Device, Frozen, PurchasePrice

HOURS_PER_YEAR = 8760.0
SECONDS_PER_HOUR = 3600.0


class CostError(ValueError):
    """A price that cannot be worked out (no offering, no purchase price, bad number), with the reason."""


class HourlyCost(Frozen):
    """$/hour of a deployment and what it is made of."""

    usd_per_hour: float
    basis: Literal["cloud", "user", "tco"]
    devices_used: int
    devices_billed: int
    usd_per_device_hour: float
    instances: int | None = None
    offering_id: str | None = None
    provider: str | None = None
    instance: str | None = None
    region: str | None = None
    date_seen: str | None = None
    source: str | None = None
    breakdown_usd_per_hour: dict[str, float] = {}
    notes: list[str] = []


# -- whole instances ---------------------------------------------------------------------


def instances_needed(replicas, devices_per_replica, devices_per_instance):
    """Whole instances for `replicas` copies of a `devices_per_replica`-device replica; vectorized.

    A replica that fits in one instance never straddles two: floor(per_instance / per_replica) replicas
    share an instance. A larger replica takes ceil(per_replica / per_instance) instances of its own.
    With one device per replica this is ceil(devices / devices_per_instance).
    """
    reps = np.asarray(replicas, dtype=np.int64)
    per_rep = np.asarray(devices_per_replica, dtype=np.int64)
    per_inst = np.asarray(devices_per_instance, dtype=np.int64)
    fits = per_inst >= per_rep
    packed = -(-reps // np.maximum(per_inst // per_rep, 1))
    spanning = reps * -(-per_rep // per_inst)
    return np.where(fits, packed, spanning)


def cheapest(offerings: list[CloudOffering], replicas, devices_per_replica=1) -> tuple[np.ndarray, np.ndarray]:
    """Lowest $/hour over `offerings` for each deployment (whole instances), and the offering index.

    Vectorized over `replicas` and `devices_per_replica`. Offerings whose instance holds a whole
    replica are preferred; only when none does may a replica span instances. Ties go to the earlier
    offering in the list.
    """
    if not offerings:
        raise CostError("no offerings to choose from")
    reps = np.atleast_1d(np.asarray(replicas, dtype=np.int64))
    per_rep = np.broadcast_to(np.asarray(devices_per_replica, dtype=np.int64), reps.shape)
    per_inst = np.array([o.devices_per_instance for o in offerings], dtype=np.int64)
    price = np.array([o.usd_per_hour for o in offerings])
    table = instances_needed(reps[:, None], per_rep[:, None], per_inst[None, :]) * price[None, :]
    fits = per_inst[None, :] >= per_rep[:, None]
    any_fit = fits.any(axis=1, keepdims=True)
    table = np.where(fits | ~any_fit, table, np.inf)
    idx = np.argmin(table, axis=1)
    return table[np.arange(len(reps)), idx], idx


def offerings_for(
    hardware: str, provider: str | None = None, include_superseded: bool = False, catalog: Catalog | None = None
) -> list[CloudOffering]:
    """Cloud offerings of a device (newest first), optionally of one provider (any case)."""
    catalog = catalog or load_catalog()
    device = catalog.device(hardware)
    rows = [o for o in catalog.cloud_prices.values() if o.hardware == device.id]
    if not include_superseded:
        rows = [o for o in rows if not o.superseded]
    if provider is not None:
        providers = sorted({o.provider for o in rows})
        rows = [o for o in rows if o.provider.lower() == provider.strip().lower()]
        if not rows:
            have = ", ".join(providers) or "none"
            raise CostError(
                f"no {'' if include_superseded else 'current '}{provider} offering for {device.id}; "
                f"providers with one: {have}"
            )
    if not rows:
        raise CostError(
            f"no current cloud offering for {device.id} in catalogs/prices/cloud.yaml; "
            "enter a $/GPU-hour or use total cost of ownership"
        )
    return sorted(rows, key=lambda o: (o.date_seen is None, -(o.date_seen.toordinal() if o.date_seen else 0), o.id))


def cloud_cost(
    hardware: str,
    devices: int,
    *,
    devices_per_replica: int = 1,
    provider: str | None = None,
    offering_id: str | None = None,
    include_superseded: bool = False,
    catalog: Catalog | None = None,
) -> HourlyCost:
    """$/hour from the price catalog: a named offering, or the cheapest for the deployment.

    `devices` = replicas x `devices_per_replica` (tp x pp x ...); a replica is kept inside one instance
    when any offering allows it (see `instances_needed`).
    """
    catalog = catalog or load_catalog()
    _check_devices(devices)
    _check_devices(devices_per_replica)
    if devices % devices_per_replica:
        raise CostError(f"{devices} devices is not a whole number of {devices_per_replica}-device replicas")
    replicas = devices // devices_per_replica
    device = catalog.device(hardware)
    if offering_id is not None:
        offering = catalog.cloud_prices.get(offering_id.strip().lower())
        if offering is None:
            raise CostError(f"unknown cloud offering '{offering_id}'; see `llmcap catalog list prices`")
        if offering.hardware != device.id:
            raise CostError(f"offering '{offering.id}' is for {offering.hardware}, not {device.id}")
    else:
        rows = offerings_for(device.id, provider, include_superseded, catalog)
        _, idx = cheapest(rows, replicas, devices_per_replica)
        offering = rows[int(idx[0])]
    instances = int(instances_needed(replicas, devices_per_replica, offering.devices_per_instance))
    billed = instances * offering.devices_per_instance
    notes = []
    if offering.devices_per_instance < devices_per_replica:
        notes.append(
            f"each {devices_per_replica}-device replica spans "
            f"{-(-devices_per_replica // offering.devices_per_instance)} {offering.instance} instances"
        )
    if billed > devices:
        notes.append(
            f"{instances} x {offering.instance} bills {billed} devices for the {devices} used ({billed - devices} idle)"
        )
    if "component only" in offering.notes.lower() or "gpu component" in offering.instance.lower():
        notes.append("this price covers the GPU component only; the host VM is billed separately")
    if offering.superseded:
        notes.append("this price is superseded (historical)")
    usd_per_hour = instances * offering.usd_per_hour
    return HourlyCost(
        usd_per_hour=usd_per_hour,
        basis="cloud",
        devices_used=devices,
        devices_billed=billed,
        usd_per_device_hour=usd_per_hour / billed,
        instances=instances,
        offering_id=offering.id,
        provider=offering.provider,
        instance=offering.instance,
        region=offering.region,
        date_seen=offering.date_seen.isoformat() if offering.date_seen else None,
        source=offering.source,
        notes=notes,
    )


def user_cost(devices: int, usd_per_device_hour: float) -> HourlyCost:
    """$/hour from a user-entered $/device-hour (only the devices used are billed)."""
    _check_devices(devices)
    if not (isinstance(usd_per_device_hour, int | float) and math.isfinite(usd_per_device_hour)):
        raise CostError(f"$/GPU-hour must be a number, got {usd_per_device_hour!r}")
    if usd_per_device_hour <= 0:
        raise CostError(f"$/GPU-hour must be positive, got {usd_per_device_hour}")
    return _each_device_billed(devices, usd_per_device_hour, "user")


def _each_device_billed(devices: int, usd_per_device_hour: float, basis: str, **detail) -> HourlyCost:
    """The user and tco bases: exactly the devices used are billed, each at one $/device-hour."""
    return HourlyCost(
        usd_per_hour=devices * usd_per_device_hour,
        basis=basis,
        devices_used=devices,
        devices_billed=devices,
        usd_per_device_hour=usd_per_device_hour,
        **detail,
    )


# -- total cost of ownership -------------------------------------------------------------


def tco_usd_per_device_hour(purchase_usd, years, power_w, pue, usd_per_kwh):
    """purchase / (years * 8760) + power_w / 1000 * PUE * $/kWh, per device-hour; vectorized."""
    capex = np.asarray(purchase_usd, dtype=float) / (np.asarray(years, dtype=float) * HOURS_PER_YEAR)
    energy = np.asarray(power_w, dtype=float) / 1000.0 * np.asarray(pue, dtype=float) * np.asarray(usd_per_kwh)
    return capex + energy


def purchase_price(hardware: str, catalog: Catalog | None = None) -> tuple[float, list[PurchasePrice]]:
    """Catalog purchase price of a device: the newest dated row(s), averaged when several share that date."""
    catalog = catalog or load_catalog()
    device = catalog.device(hardware)
    rows = [p for p in catalog.purchase_prices if p.hardware == device.id]
    if not rows:
        raise CostError(f"no purchase price for {device.id} in catalogs/prices/purchase.yaml; enter one")
    newest = max(rows, key=lambda p: p.date_seen.toordinal() if p.date_seen else 0).date_seen
    chosen = [p for p in rows if p.date_seen == newest]
    return sum(p.usd for p in chosen) / len(chosen), chosen


def tco_cost(
    hardware: str,
    devices: int,
    *,
    purchase_usd: float | None = None,
    years: float | None = None,
    power_w: float | None = None,
    pue: float | None = None,
    usd_per_kwh: float | None = None,
    catalog: Catalog | None = None,
) -> HourlyCost:
    """$/hour of owning `devices` devices; `power_w` is average board power per device (default: TDP)."""
    catalog = catalog or load_catalog()
    _check_devices(devices)
    device: Device = catalog.device(hardware)
    defaults = catalog.power.defaults if catalog.power else None
    years = years if years is not None else (defaults.amortization_years if defaults else None)
    pue = pue if pue is not None else (defaults.pue if defaults else None)
    usd_per_kwh = usd_per_kwh if usd_per_kwh is not None else (defaults.usd_per_kwh if defaults else None)
    for name, value, low in (("years", years, 0.0), ("PUE", pue, 1.0), ("$/kWh", usd_per_kwh, 0.0)):
        if value is None or not math.isfinite(value) or value < low or (low == 0.0 and value == 0.0):
            raise CostError(f"{name} must be a number {'>= 1' if low else '> 0'}, got {value!r}")
    notes: list[str] = []
    source = None
    if purchase_usd is None:
        purchase_usd, rows = purchase_price(device.id, catalog)
        source = "; ".join(p.source for p in rows)
        kinds = {p.kind for p in rows}
        notes.append(f"purchase price {purchase_usd:,.0f} USD ({'/'.join(sorted(kinds))} price, catalog)")
    elif not (math.isfinite(purchase_usd) and purchase_usd > 0):
        raise CostError(f"purchase price must be a positive number of dollars, got {purchase_usd!r}")
    if power_w is None:
        if device.tdp_w is None:
            power_w = 0.0
            notes.append(f"{device.name} has no TDP in the catalog: electricity is left out of the TCO")
        else:
            power_w = device.tdp_w
            notes.append("electricity at full TDP (an upper bound); pass the operating point's power for less")
    per_device = float(tco_usd_per_device_hour(purchase_usd, years, power_w, pue, usd_per_kwh))
    capex = purchase_usd / (years * HOURS_PER_YEAR)
    breakdown = {"capital": devices * capex, "electricity": devices * (per_device - capex)}
    return _each_device_billed(devices, per_device, "tco", source=source, breakdown_usd_per_hour=breakdown, notes=notes)


def _check_devices(devices: int) -> None:
    if isinstance(devices, bool) or not isinstance(devices, int | np.integer) or devices < 1:
        raise CostError(f"number of devices must be a whole number >= 1, got {devices!r}")


# -- at an operating point ----------------------------------------------------------------


@dataclass(frozen=True)
class UnitCosts:
    """Cost per token and request at an operating point (arrays; inf where the rate is 0)."""

    usd_per_million_input_tokens: np.ndarray
    usd_per_million_output_tokens: np.ndarray
    usd_per_million_output_tokens_all_in: np.ndarray
    usd_per_request: np.ndarray
    idle_share: np.ndarray


def _per(usd_per_hour: np.ndarray, per_s: np.ndarray, scale: float) -> np.ndarray:
    per_s = np.asarray(per_s, dtype=float)
    safe = np.where(per_s > 0, per_s, 1.0)
    return np.where(per_s > 0, usd_per_hour / (safe * SECONDS_PER_HOUR) * scale, np.inf)


def unit_costs(
    usd_per_hour,
    *,
    requests_per_s,
    input_tokens_per_s,
    output_tokens_per_s,
    prefill_time_share,
    devices_used=1,
    devices_billed=1,
    capacity_used=1.0,
) -> UnitCosts:
    """Per-token and per-request cost and idle share; the attribution rule is in the module docstring.

    `prefill_time_share`: share of busy device time spent in prefill, in [0, 1].
    `capacity_used`: request rate / maximum sustainable rate of the devices used, in [0, 1].
    Everything broadcasts, so a planner passes arrays of thousands of configurations at once.
    """
    usd = np.asarray(usd_per_hour, dtype=float)
    s = np.clip(np.asarray(prefill_time_share, dtype=float), 0.0, 1.0)
    used = np.clip(np.asarray(capacity_used, dtype=float), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        idle = 1.0 - np.asarray(devices_used, dtype=float) / np.asarray(devices_billed, dtype=float) * used
        return UnitCosts(
            usd_per_million_input_tokens=_per(usd * s, input_tokens_per_s, 1e6),
            usd_per_million_output_tokens=_per(usd * (1.0 - s), output_tokens_per_s, 1e6),
            usd_per_million_output_tokens_all_in=_per(usd, output_tokens_per_s, 1e6),
            usd_per_request=_per(usd, requests_per_s, 1.0),
            idle_share=np.asarray(np.clip(idle, 0.0, 1.0)),
        )
