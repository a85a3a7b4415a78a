"""Time of an engine step from its operator table: roofline per operator plus what it misses.

Per operator (llm-analysis style, each term kept for display):
  compute_s = FLOPs / (peak at the math precision * achieved fraction)
  memory_s  = bytes / (bandwidth * achieved fraction) + kernel latency * kernels
  comm_s    = bytes / (link bandwidth * achieved fraction) + alpha * hops     (alpha-beta model)
  time      = max(compute_s, memory_s) for compute operators, comm_s for collectives
Step time = sum over operators + per-step overhead (launch, scheduling, sampling) + pipeline hand-offs.
The link is the scale-up link while tp fits in one scale-up domain, the scale-out network beyond.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.efficiency import Efficiency, gemm_efficiency
from core.operators import Layout, OpRow, Step, operator_rows, pp_handoff_bytes
from core.shapes import DeviceSpec, FormatSpec, ModelShape

BOUNDS = ("compute", "memory", "interconnect", "overhead")


@dataclass(frozen=True)
class RowTime:
    row: OpRow
    compute_s: np.ndarray
    memory_s: np.ndarray
    comm_s: np.ndarray
    time_s: np.ndarray


@dataclass(frozen=True)
class StepTime:
    """A step's time split by what bounds each part (arrays, seconds)."""

    compute_s: np.ndarray
    memory_s: np.ndarray
    comm_s: np.ndarray
    overhead_s: np.ndarray

    @property
    def total_s(self) -> np.ndarray:
        return self.compute_s + self.memory_s + self.comm_s + self.overhead_s


def link_bandwidth(dev: DeviceSpec, group: np.ndarray) -> np.ndarray:
    """Per-direction bandwidth for a collective over `group` devices (scale-out beyond one domain)."""
    return np.where(group <= dev.domain, dev.link_bw, np.minimum(dev.scaleout_bw, dev.link_bw))


def time_rows(
    shape: ModelShape, dev: DeviceSpec, fmt: FormatSpec, layout: Layout, eff: Efficiency, step: Step
) -> list[RowTime]:
    out = []
    for r in operator_rows(shape, fmt, layout, step):
        if r.kind == "comm":
            group = layout.ep if r.name == "ep_all_to_all" else layout.tp
            bw = link_bandwidth(dev, group) * eff.comm_eff
            comm = r.comm_bytes / bw + r.hops * eff.comm_alpha_s
            zero = np.zeros_like(comm)
            out.append(RowTime(r, zero, zero, comm, comm))
            continue
        if r.kind == "attention":
            peak = dev.peak_bf16 * eff.attn_eff_max
        elif r.kind == "gemm":
            peak = dev.peak_math * gemm_efficiency(eff, r.rows)
        else:
            peak = dev.peak_bf16
        compute = r.flops / peak
        nbytes = r.weight_bytes + r.act_bytes + r.kv_bytes
        memory = nbytes / (dev.mem_bw * eff.mem_eff_max) + np.where(r.count > 0, r.count * eff.kernel_lat_s, 0.0)
        zero = np.zeros_like(compute)
        out.append(RowTime(r, compute, memory, zero, np.maximum(compute, memory)))
    return out


def step_time(
    shape: ModelShape, dev: DeviceSpec, fmt: FormatSpec, layout: Layout, eff: Efficiency, step: Step
) -> StepTime:
    """Latency of one step through all pipeline stages, split by bound."""
    compute = memory = comm = 0.0
    for rt in time_rows(shape, dev, fmt, layout, eff, step):
        if rt.row.kind == "comm":
            comm = comm + rt.time_s
        else:
            is_compute = rt.compute_s >= rt.memory_s
            compute = compute + np.where(is_compute, rt.time_s, 0.0)
            memory = memory + np.where(is_compute, 0.0, rt.time_s)
    handoff = (
        pp_handoff_bytes(shape, fmt, layout, step) / (dev.link_bw * eff.comm_eff) + (layout.pp - 1) * eff.comm_alpha_s
    )
    overhead = eff.step_overhead_s + eff.seq_overhead_s * step.seqs
    z = np.zeros(np.broadcast(step.tokens, shape.layers, dev.mem_bw).shape)
    return StepTime(compute + z, memory + z, comm + handoff + z, overhead + z)
