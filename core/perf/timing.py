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

from llmcap.perf.efficiency import Efficiency, gemm_rows_factor
from llmcap.perf.operators import Layout, OpRow, OpTerms, Step, operator_terms, pp_handoff_bytes
from llmcap.perf.shapes import DeviceSpec, FormatSpec, ModelShape

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


class StepTimer:
    """Step times of one system (or a block of scenarios) for any step, from terms scaled once.

    The roofline above is applied to the operator terms (operators.OpTerms) rather than to each step's
    table: with FLOPs = F x over M = x token rows and e(M) = gemm_eff_max M / (M + gemm_m_half),
      compute_s = F / (peak * gemm_eff_max) * x (M + gemm_m_half) / M,
    so the per-operator factor is fixed and a step only supplies x (M + m_half) / M, shared by every
    operator with the same rows. Bytes and collectives scale the same way. A closed-loop evaluation
    times several steps of one system; this keeps each one to a few array operations per operator.
    `skip_empty` drops operators no scenario of the block has (they contribute exactly zero).
    """

    def __init__(
        self,
        shape: ModelShape,
        dev: DeviceSpec,
        fmt: FormatSpec,
        layout: Layout,
        eff: Efficiency,
        skip_empty: bool = True,
    ):
        self.shape, self.dev, self.fmt, self.layout, self.eff = shape, dev, fmt, layout, eff
        inv_bw = 1.0 / (dev.mem_bw * eff.mem_eff_max)
        inv_peak = {
            "gemm": 1.0 / (dev.peak_math * eff.gemm_eff_max),
            "attention": 1.0 / (dev.peak_bf16 * eff.attn_eff_max),
            "memory": 1.0 / dev.peak_bf16,
        }
        self.terms: list[OpTerms] = []
        self.plans: list[tuple] = []
        for t in operator_terms(shape, fmt, layout):
            if skip_empty and not np.any(t.count > 0):
                continue
            self.terms.append(t)
            if t.kind == "comm":
                group = layout.ep if t.name == "ep_all_to_all" else layout.tp
                inv_link = 1.0 / (link_bandwidth(dev, group) * eff.comm_eff)
                self.plans.append((t, t.comm_x * inv_link, t.hops * eff.comm_alpha_s))
                continue
            ip = inv_peak[t.kind]
            fixed_s = t.weight * inv_bw + t.count * eff.kernel_lat_s  # counts are >= 0
            self.plans.append(
                (
                    t,
                    _scaled(t.flops_x, ip),
                    _scaled(t.flops_pair_decode, ip),
                    _scaled(t.flops_pair_prefill, ip),
                    fixed_s,
                    _scaled(t.weight_expert, inv_bw),
                    _scaled(t.act_x, inv_bw),
                    _scaled(t.kv_seq, inv_bw),
                    _scaled(t.kv_token, inv_bw),
                )
            )

    def _rows_factor(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """x * gemm_eff_max / e(rows): what multiplies F / (peak * gemm_eff_max)."""
        return x * gemm_rows_factor(self.eff, rows)

    def parts(self, step: Step):
        """(terms, compute_s, memory_s, comm_s) per operator; compute/memory None for collectives, compute
        None where an operator has no FLOPs."""
        t = step.tokens
        cache: dict[str, np.ndarray] = {}
        f = step.decode_pairs_frac
        kv_new = None
        for plan in self.plans:
            terms = plan[0]
            if terms.kind == "comm":
                yield terms, None, None, plan[1] * terms.driver_of(step) + plan[2]
                continue
            _, c_x, c_pd, c_pp, fixed_s, m_exp, m_act, m_seq, m_kv = plan
            x = terms.driver_of(step)
            memory = fixed_s
            compute = None
            if terms.moe:
                distinct = terms.distinct_experts(t)
                memory = memory + m_exp * distinct
                compute = c_x * self._rows_factor(t, terms.expert_rows(t, distinct))
            elif c_x is not None:
                if terms.kind == "gemm":
                    if terms.driver not in cache:
                        cache[terms.driver] = self._rows_factor(x, x)
                    compute = c_x * cache[terms.driver]
                else:
                    compute = c_x * x
            if m_act is not None:
                memory = memory + m_act * x
            if m_seq is not None:
                memory = memory + m_seq * step.seqs
            if terms.pairs:
                pairs = terms.pairs_of(step)
                compute = pairs * (c_pd * f + c_pp * (1 - f))
                if kv_new is None:
                    kv_new = (2 - f) * t
                memory = memory + m_kv * (f * pairs + kv_new)
            yield terms, compute, memory, None

    def __call__(self, step: Step) -> StepTime:
        """Latency of one step through all pipeline stages, split by bound."""
        dev, eff, layout = self.dev, self.eff, self.layout
        shape = np.broadcast(step.tokens, self.shape.layers, dev.mem_bw).shape
        compute, memory, comm = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        for _, c, m, k in self.parts(step):
            if k is not None:
                comm += k
            elif c is None:
                memory += m
            else:
                # each operator counts as compute- or memory-bound, whichever is slower (c * mask is
                # np.where(mask, c, 0) for finite c, at half the cost)
                is_compute = c >= m
                compute += c * is_compute
                memory += m * ~is_compute
        comm += pp_handoff_bytes(self.shape, self.fmt, layout, step) / (dev.link_bw * eff.comm_eff)
        comm += (layout.pp - 1) * eff.comm_alpha_s
        overhead = eff.step_overhead_s + eff.seq_overhead_s * step.seqs
        if overhead.shape != shape:
            overhead = overhead + np.zeros(shape)
        return StepTime(compute, memory, comm, overhead)


def _scaled(term, factor) -> np.ndarray | None:
    """term * factor, or None for an absent (scalar zero) term."""
    if not isinstance(term, np.ndarray) and term == 0.0:
        return None
    return term * factor


def time_rows(
    shape: ModelShape, dev: DeviceSpec, fmt: FormatSpec, layout: Layout, eff: Efficiency, step: Step
) -> list[RowTime]:
    """The timed operator table of `step` (every operator, including those with zero layers)."""
    timer = StepTimer(shape, dev, fmt, layout, eff, skip_empty=False)
    out = []
    for terms, c, m, k in timer.parts(step):
        row = terms.at(step)
        zero = np.zeros_like(row.flops)
        if k is not None:
            out.append(RowTime(row, zero, zero, k + zero, k + zero))
            continue
        c = zero if c is None else c + zero
        m = m + zero
        out.append(RowTime(row, c, m, zero, np.maximum(c, m)))
    return out


def step_time(
    shape: ModelShape, dev: DeviceSpec, fmt: FormatSpec, layout: Layout, eff: Efficiency, step: Step
) -> StepTime:
    """Latency of one step through all pipeline stages, split by bound."""
    return StepTimer(shape, dev, fmt, layout, eff)(step)
