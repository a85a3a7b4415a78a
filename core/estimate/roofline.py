"""Roofline view of an estimate: the device's ceilings and where each phase and operator sits under them.

Roofline model (Williams, Waterman, Patterson, "Roofline: An Insightful Visual Performance Model for
Multicore Architectures", CACM 52(4), 2009): attainable FLOP/s = min(peak FLOP/s, intensity * bandwidth),
with arithmetic intensity = FLOPs / bytes moved to and from memory. Operating points use the estimate's own
numbers: FLOPs and bytes per device from the operator table, divided by the modelled time, so the gap
under the roof is the efficiency model's (and, for a phase, the per-step overhead's) share.
"""

from __future__ import annotations

import numpy as np

from llmcap.catalog.schema import Device
from llmcap.estimate.single import Estimate


def attainable_tflops(intensity_flops_per_byte: np.ndarray, peak_tflops: float, mem_bw_gbps: float) -> np.ndarray:
    """min(peak, intensity * bandwidth), in TFLOP/s (GB/s * FLOP/byte / 1000 = TFLOP/s)."""
    return np.minimum(peak_tflops, np.asarray(intensity_flops_per_byte, dtype=float) * mem_bw_gbps / 1e3)


def ridge_flops_per_byte(peak_tflops: float, mem_bw_gbps: float) -> float:
    """Intensity where the memory roof meets the compute roof."""
    return peak_tflops * 1e3 / mem_bw_gbps


def ceilings(device: Device, math: str) -> list[dict]:
    """The compute roofs to draw: the math the products run in, and bf16 (attention) when it differs."""
    out = [{"ceiling": f"{math} peak", "peak_tflops": device.peak_tflops[math]}] if math in device.peak_tflops else []
    if math != "bf16" and "bf16" in device.peak_tflops:
        out.append({"ceiling": "bf16 peak", "peak_tflops": device.peak_tflops["bf16"]})
    return out


def phase_points(est: Estimate) -> list[dict]:
    """Prefill and decode steps: total FLOPs / bytes per device, achieved = FLOPs / whole step time."""
    out = []
    for name, phase in (("prefill", est.prefill), ("decode", est.decode)):
        rows = [r for r in est.operators if r.phase == name and r.bound != "interconnect"]
        if phase is None or not rows or phase.time_ms <= 0:
            continue
        gflops = sum(r.gflops for r in rows)
        mb = sum(r.weight_mb + r.activation_mb + r.kv_mb for r in rows)
        if gflops <= 0 or mb <= 0:
            continue
        out.append(
            {
                "point": name,
                "intensity_flops_per_byte": 1e3 * gflops / mb,
                "achieved_tflops": gflops / phase.time_ms,
                "time_ms": phase.time_ms,
                "bound": phase.bound,
            }
        )
    return out


def operator_points(est: Estimate) -> list[dict]:
    """Every compute operator of both phases: its intensity and achieved TFLOP/s (GFLOP per ms)."""
    out = []
    for r in est.operators:
        if r.bound == "interconnect" or r.gflops <= 0 or r.time_ms <= 0 or r.intensity_flops_per_byte <= 0:
            continue
        out.append(
            {
                "point": f"{r.phase}: {r.operator}",
                "phase": r.phase,
                "intensity_flops_per_byte": r.intensity_flops_per_byte,
                "achieved_tflops": r.gflops / r.time_ms,
                "time_ms": r.time_ms,
                "bound": r.bound,
            }
        )
    return out
