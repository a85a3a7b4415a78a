"""Power, energy and carbon of a deployment at an operating point.

Board power of one device during a step (profile fractions from catalogs/power.yaml, TDP from the
hardware catalog):

    P_step = P_idle + (P_compute - P_idle) * s_compute + (P_memory - P_idle) * s_memory

with s_compute / s_memory the shares of step time spent in compute-bound / memory-bound operators
(the estimator's per-phase split: compute_ms / time_ms, memory_ms / time_ms). The remainder of a step
(collectives, launch overhead) and the time between steps run at the idle floor, so a device busy a
fraction `busy` of the time draws busy * P_step + (1 - busy) * P_idle. Power is linear in the shares,
so a mix of prefill and decode steps is passed exactly as time-weighted average shares. The linear
idle-to-peak form is the usual utilization power model (Fan, Weber, Barroso, "Power provisioning for a
warehouse-sized computer", ISCA 2007); the split into a memory-bound and a compute-bound ceiling
follows the decode measurements cited in catalogs/power.yaml.

Energy and carbon at an operating point:
    J per output token      = board watts / output tokens per second            (GPU boards only, no PUE)
    kWh per day             = board watts * PUE * 24 h / 1000                    (at the facility meter)
    gCO2e per 1M out tokens = board watts * PUE / (output tok/s) * 1e6 / 3.6e6 J/kWh * gCO2e/kWh
Carbon intensity is the location-based grid average from catalogs/carbon.yaml.

A device without `tdp_w` in the catalog gets no power figure (None and a note), never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from llmcap.catalog.loader import Catalog, UnknownIdError, load_catalog, normalize_id, suggest
from llmcap.catalog.schema import CarbonIntensity, Device, Frozen, PowerProfile

HOURS_PER_DAY = 24.0
J_PER_KWH = 3.6e6
DEFAULT_REGION = "us-east-virginia"


class DevicePower(Frozen):
    """Board power levels of one device in watts; None where the catalog has no TDP."""

    device_id: str
    tdp_w: float | None
    idle_w: float | None
    memory_bound_w: float | None
    compute_bound_w: float | None
    profile: str
    notes: list[str] = []

    @property
    def known(self) -> bool:
        return self.tdp_w is not None


def power_profile(kind: str, catalog: Catalog | None = None) -> PowerProfile:
    """The catalog's power profile for a device kind, or its `default` profile."""
    power = (catalog or load_catalog()).power
    if power is None:
        raise ValueError("catalogs/power.yaml is missing or invalid; run `llmcap catalog validate`")
    by_kind = {p.kind: p for p in power.profiles}
    return by_kind.get(kind, by_kind["default"])


def device_power(device: Device, catalog: Catalog | None = None) -> DevicePower:
    """Idle, memory-bound and compute-bound board power of `device` from its TDP and kind profile."""
    prof = power_profile(device.kind, catalog)
    notes = []
    if prof.kind == "default":
        notes.append(f"no measured power profile for {device.kind} devices; data-center GPU fractions reused")
    if device.tdp_w is None:
        notes.append(f"{device.name} has no TDP in the hardware catalog, so its power is not estimated")
        return DevicePower(
            device_id=device.id,
            tdp_w=None,
            idle_w=None,
            memory_bound_w=None,
            compute_bound_w=None,
            profile=prof.kind,
            notes=notes,
        )
    return DevicePower(
        device_id=device.id,
        tdp_w=device.tdp_w,
        idle_w=device.tdp_w * prof.idle_fraction,
        memory_bound_w=device.tdp_w * prof.memory_bound_fraction,
        compute_bound_w=device.tdp_w * prof.compute_bound_fraction,
        profile=prof.kind,
        notes=notes,
    )


def step_power_w(idle_w, memory_bound_w, compute_bound_w, compute_share, memory_share, busy_fraction=1.0):
    """Average board power (W) of one device: the step-power formula of the module docstring, vectorized.

    Shares are clipped to [0, 1] and scaled down together when they sum above 1.
    """
    s_c = np.clip(np.asarray(compute_share, dtype=float), 0.0, 1.0)
    s_m = np.clip(np.asarray(memory_share, dtype=float), 0.0, 1.0)
    total = s_c + s_m
    scale = np.where(total > 1.0, 1.0 / np.maximum(total, 1e-300), 1.0)
    s_c, s_m = s_c * scale, s_m * scale
    idle = np.asarray(idle_w, dtype=float)
    step = idle + (np.asarray(compute_bound_w) - idle) * s_c + (np.asarray(memory_bound_w) - idle) * s_m
    busy = np.clip(np.asarray(busy_fraction, dtype=float), 0.0, 1.0)
    return busy * step + (1.0 - busy) * idle


@dataclass(frozen=True)
class Energy:
    """Energy and carbon of a deployment at an operating point (arrays; inf where no tokens flow)."""

    watts: np.ndarray
    facility_watts: np.ndarray
    joules_per_output_token: np.ndarray
    kwh_per_day: np.ndarray
    gco2e_per_million_output_tokens: np.ndarray
    gco2e_per_day: np.ndarray


ENERGY_FIGURES = tuple(f.name for f in fields(Energy))


def energy(
    watts_per_device,
    devices,
    output_tokens_per_s,
    *,
    gco2e_per_kwh,
    pue,
    idle_devices=0,
    idle_w_per_device=0.0,
) -> Energy:
    """Deployment energy: `devices` boards at `watts_per_device` plus `idle_devices` billed but unused at idle.

    All arguments broadcast (numpy arrays or scalars). Formulas in the module docstring.
    """
    watts = (
        np.asarray(watts_per_device, dtype=float) * devices + np.asarray(idle_w_per_device, dtype=float) * idle_devices
    )
    facility = watts * np.asarray(pue, dtype=float)
    tok_s = np.asarray(output_tokens_per_s, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        j_per_tok = np.where(tok_s > 0, watts / np.where(tok_s > 0, tok_s, 1.0), np.inf)
        facility_j_per_tok = np.where(tok_s > 0, facility / np.where(tok_s > 0, tok_s, 1.0), np.inf)
    intensity = np.asarray(gco2e_per_kwh, dtype=float)
    kwh_day = facility * HOURS_PER_DAY / 1000.0
    return Energy(
        watts=watts,
        facility_watts=facility,
        joules_per_output_token=j_per_tok,
        kwh_per_day=kwh_day,
        gco2e_per_million_output_tokens=facility_j_per_tok * 1e6 / J_PER_KWH * intensity,
        gco2e_per_day=kwh_day * intensity,
    )


def carbon_intensity(region: str, catalog: Catalog | None = None) -> CarbonIntensity:
    """Grid carbon intensity of a catalog region id (catalogs/carbon.yaml)."""
    carbon = (catalog or load_catalog()).carbon
    key = normalize_id(region)
    if key not in carbon:
        raise UnknownIdError("carbon region", region, suggest(key, carbon))
    return carbon[key]


class EnergyEstimate(Frozen):
    """Energy, carbon and their inputs for one deployment (None where the device has no TDP)."""

    watts: float | None
    facility_watts: float | None
    joules_per_output_token: float | None
    kwh_per_day: float | None
    gco2e_per_million_output_tokens: float | None
    gco2e_per_day: float | None
    watts_per_device: float | None
    devices: int
    idle_devices: int
    pue: float
    region: str
    gco2e_per_kwh: float
    notes: list[str] = []


def estimate_energy(
    device: Device,
    devices: int,
    output_tokens_per_s: float,
    *,
    compute_share: float,
    memory_share: float,
    busy_fraction: float = 1.0,
    idle_devices: int = 0,
    region: str = DEFAULT_REGION,
    pue: float | None = None,
    catalog: Catalog | None = None,
) -> EnergyEstimate:
    """Energy at one operating point; `idle_devices` are billed but unused boards (drawing the idle floor)."""
    catalog = catalog or load_catalog()
    if devices < 1 or idle_devices < 0:
        raise ValueError(f"devices must be >= 1 and idle devices >= 0, got {devices} and {idle_devices}")
    if pue is None:
        pue = catalog.power.defaults.pue if catalog.power else 1.0
    if not 1.0 <= pue <= 3.0:
        raise ValueError(f"PUE must be within [1, 3], got {pue}")
    grid = carbon_intensity(region, catalog)
    dp = device_power(device, catalog)
    common = dict(devices=devices, idle_devices=idle_devices, pue=pue, region=grid.id, gco2e_per_kwh=grid.gco2e_per_kwh)
    figures: dict[str, float | None] = dict.fromkeys((*ENERGY_FIGURES, "watts_per_device"))  # None: no TDP
    if dp.known:
        per_device = float(
            step_power_w(dp.idle_w, dp.memory_bound_w, dp.compute_bound_w, compute_share, memory_share, busy_fraction)
        )
        e = energy(
            per_device,
            devices,
            output_tokens_per_s,
            gco2e_per_kwh=grid.gco2e_per_kwh,
            pue=pue,
            idle_devices=idle_devices,
            idle_w_per_device=dp.idle_w,
        )
        figures = {name: float(getattr(e, name)) for name in ENERGY_FIGURES} | {"watts_per_device": per_device}
    return EnergyEstimate(**figures, notes=dp.notes, **common)
