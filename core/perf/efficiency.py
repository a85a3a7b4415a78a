"""Achieved fractions of peak, kernel latencies and per-step overheads.

Real kernels reach a fraction of peak that depends on problem size (domain.md, "Speed: roofline
plus what the roofline misses"). The shapes used here:
  GEMM compute efficiency   e(M) = gemm_eff_max * M / (M + gemm_m_half)      (M = token rows)
  attention compute         attn_eff_max of the 16-bit peak
  memory                    bytes / (bw * mem_eff_max) + kernel_lat_s per kernel
  step overhead             step_overhead_s + seq_overhead_s * sequences in the step
  collectives               alpha-beta: comm_alpha_s per hop, link bw * comm_eff
  request_overhead_s        added to every TTFT (API server, tokenizer, scheduler hand-off)
  wave_weight               mixed schedulers: how far closed-loop waves stay synchronized (serving.py)
Parameters live in catalogs/efficiency.yaml: defaults, then per device class, then per engine,
each level overriding the one before. `llmcap calibrate` fits them to ../shared/reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

PARAM_NAMES = (
    "gemm_eff_max",
    "gemm_m_half",
    "attn_eff_max",
    "mem_eff_max",
    "kernel_lat_s",
    "step_overhead_s",
    "seq_overhead_s",
    "comm_alpha_s",
    "comm_eff",
    "wave_weight",
    "request_overhead_s",
)


@dataclass(frozen=True)
class Efficiency:
    gemm_eff_max: np.ndarray
    gemm_m_half: np.ndarray
    attn_eff_max: np.ndarray
    mem_eff_max: np.ndarray
    kernel_lat_s: np.ndarray
    step_overhead_s: np.ndarray
    seq_overhead_s: np.ndarray
    comm_alpha_s: np.ndarray
    comm_eff: np.ndarray
    wave_weight: np.ndarray  # mixed schedulers: share of the synchronized-wave behaviour (see serving.py)
    request_overhead_s: np.ndarray  # per request before its first token: HTTP, tokenization, queue hand-off


def efficiency_params(table: dict[str, Any], device_kind: str, engine: str) -> dict[str, float]:
    """Merge defaults, device-class and engine levels of the efficiency table."""
    out = dict(table.get("default", {}))
    out.update(table.get("device_class", {}).get(device_kind, {}) or {})
    engine_level = table.get("engine", {}).get(engine, {}) or {}
    out.update(engine_level.get("all", {}) or {})
    out.update(engine_level.get(device_kind, {}) or {})
    missing = [n for n in PARAM_NAMES if n not in out]
    if missing:
        raise ValueError(f"efficiency table lacks {missing} for {device_kind}/{engine}")
    return {n: float(out[n]) for n in PARAM_NAMES}


def efficiency(table: dict[str, Any], device_kind: str, engine: str) -> Efficiency:
    p = efficiency_params(table, device_kind, engine)
    return Efficiency(**{k: np.array([v]) for k, v in p.items()})


def gemm_rows_factor(eff: Efficiency, rows: np.ndarray) -> np.ndarray:
    """gemm_eff_max / e(M) = (M + gemm_m_half) / M: how much longer than at full efficiency a product takes."""
    rows = np.maximum(rows, 1.0)
    return (rows + eff.gemm_m_half) / rows


def gemm_efficiency(eff: Efficiency, rows: np.ndarray) -> np.ndarray:
    """Fraction of peak a matrix product with `rows` token rows reaches."""
    return eff.gemm_eff_max / gemm_rows_factor(eff, rows)
