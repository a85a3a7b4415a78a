"""`estimate(scenario) -> Estimate`: memory, per-phase latency with its operator table, closed-loop serving."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from llmcap.catalog.loader import Catalog, load_catalog
from llmcap.catalog.schema import Frozen
from llmcap.catalog.support import label
from llmcap.estimate.bands import serving_bands
from llmcap.estimate.fit import not_fit_message
from llmcap.estimate.resolve import Resolved, resolve
from llmcap.estimate.serving import decode_contexts, per_stage_batch
from llmcap.estimate.sweep import evaluate, resolved_input
from llmcap.perf.memory import GB, kv_bytes_per_sequence
from llmcap.perf.operators import decode_step, prefill_step
from llmcap.perf.timing import BOUNDS, time_rows
from llmcap.scenario import Scenario

MS = 1e3


class OperatorRow(Frozen):
    phase: Literal["prefill", "decode"]
    operator: str
    layers: float
    gflops: float
    weight_mb: float
    activation_mb: float
    kv_mb: float
    comm_mb: float
    intensity_flops_per_byte: float
    compute_ms: float
    memory_ms: float
    comm_ms: float
    time_ms: float
    bound: str


class PhaseResult(Frozen):
    """One step of a phase, split by what bounds it."""

    time_ms: float
    compute_ms: float
    memory_ms: float
    comm_ms: float
    overhead_ms: float
    bound: str
    batch: float
    tokens: float


class MemoryResult(Frozen):
    capacity_gb: float
    weights_gb: float
    kv_gb: float
    activations_gb: float
    overhead_gb: float
    reserved_gb: float
    free_gb: float
    kv_gb_per_sequence: float
    max_concurrency: int
    max_context_at_concurrency: int
    overflow_gb: float = Field(description="how much more memory would be needed; 0 when it fits")


class ServingResult(Frozen):
    concurrency: int
    concurrency_per_replica: int
    ttft_ms: float
    tpot_ms: float
    e2e_ms: float
    requests_per_s: float
    output_tokens_per_s: float
    input_tokens_per_s: float
    output_tokens_per_s_per_device: float
    prefill_tokens_per_s: float
    # 80% intervals from cross-validated residuals of comparable scenarios (llmcap.estimate.bands)
    ttft_ms_low: float
    ttft_ms_high: float
    tpot_ms_low: float
    tpot_ms_high: float
    e2e_ms_low: float
    e2e_ms_high: float
    output_tokens_per_s_low: float
    output_tokens_per_s_high: float


class Estimate(Frozen):
    status: Literal["ok", "does_not_fit"]
    message: str
    scenario: Scenario
    model_id: str
    hardware_name: str
    devices: int
    math: str
    memory: MemoryResult
    prefill: PhaseResult | None = None
    decode: PhaseResult | None = None
    serving: ServingResult | None = None
    operators: list[OperatorRow] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def fits(self) -> bool:
        return self.status == "ok"


def _f(x) -> float:
    return float(np.asarray(x).ravel()[0])


def _operator_rows(r: Resolved, phase: str, step) -> list[OperatorRow]:
    s = r.system
    out = []
    for rt in time_rows(s.shape, s.dev, s.fmt, s.layout, s.eff, step):
        if _f(rt.row.count) == 0:
            continue
        nbytes = _f(rt.row.weight_bytes + rt.row.act_bytes + rt.row.kv_bytes)
        comp, mem, comm = _f(rt.compute_s), _f(rt.memory_s), _f(rt.comm_s)
        bound = "interconnect" if rt.row.kind == "comm" else ("compute" if comp >= mem else "memory")
        out.append(
            OperatorRow(
                phase=phase,
                operator=rt.row.name,
                layers=_f(rt.row.count),
                gflops=_f(rt.row.flops) / 1e9,
                weight_mb=_f(rt.row.weight_bytes) / 1e6,
                activation_mb=_f(rt.row.act_bytes) / 1e6,
                kv_mb=_f(rt.row.kv_bytes) / 1e6,
                comm_mb=_f(rt.row.comm_bytes) / 1e6,
                intensity_flops_per_byte=_f(rt.row.flops) / nbytes if nbytes else 0.0,
                compute_ms=comp * MS,
                memory_ms=mem * MS,
                comm_ms=comm * MS,
                time_ms=_f(rt.time_s) * MS,
                bound=bound,
            )
        )
    return out


def _max_context(r: Resolved, room: float, conc: float) -> int:
    """Longest context per sequence whose KV fits `conc` sequences (bisection on the monotone KV size)."""
    s = r.system
    if room <= 0:
        return 0
    lo, hi = 0, max(r.arch.max_context, 1)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _f(kv_bytes_per_sequence(s.shape, s.fmt, s.layout, np.array([float(mid)]))) * conc <= room:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _parts(parts: np.ndarray, batch: float, tokens: float) -> PhaseResult:
    c, m, k, o = (float(x[0]) for x in parts)
    return PhaseResult(
        time_ms=(c + m + k + o) * MS,
        compute_ms=c * MS,
        memory_ms=m * MS,
        comm_ms=k * MS,
        overhead_ms=o * MS,
        bound=BOUNDS[int(np.argmax([c, m, k, o]))],
        batch=batch,
        tokens=tokens,
    )


def estimate(scn: Scenario, catalog: Catalog | None = None) -> Estimate:
    """Estimate one scenario. Never raises for a scenario that does not fit: it says what overflows."""
    catalog = catalog or load_catalog()
    r = resolve(scn, catalog)
    res = evaluate(resolved_input(r))
    notes: list[str] = list(r.notes)
    if r.engine_math != r.fmt.math:
        engine = label(catalog.support, scn.engine) if catalog.support else scn.engine
        notes.append(f"{engine} runs {r.fmt.id} weights with {r.engine_math} math on {r.device.name}")
    if r.math != r.engine_math:
        notes.append(f"{r.device.name} has no native {r.engine_math} math: products run in {r.math}")
    per_replica = _f(res.concurrency)
    running = _f(res.running)
    fit_conc = _f(res.max_concurrency)
    kv_seq_gb = _f(res.kv_bytes_per_seq) / GB
    room_gb = _f(res.kv_room_bytes) / GB
    kv_gb = kv_seq_gb * running if fit_conc >= 1 else 0.0
    memory = MemoryResult(
        capacity_gb=_f(res.capacity_bytes) / GB,
        weights_gb=_f(res.weights_bytes) / GB,
        kv_gb=kv_gb,
        activations_gb=_f(res.activation_bytes) / GB,
        overhead_gb=_f(res.overhead_bytes) / GB,
        reserved_gb=_f(res.reserved_bytes) / GB,
        free_gb=max(room_gb - kv_gb, 0.0),
        kv_gb_per_sequence=kv_seq_gb,
        max_concurrency=int(fit_conc * scn.replicas),
        max_context_at_concurrency=_max_context(r, room_gb * GB, max(per_replica, 1.0)),
        overflow_gb=max(kv_seq_gb - room_gb, 0.0) if fit_conc < 1 else 0.0,
    )
    base = dict(
        scenario=scn,
        model_id=r.model_id,
        hardware_name=r.device.name,
        devices=scn.devices,
        math=r.math,
        memory=memory,
        notes=notes,
    )
    if not bool(res.fits[0]):
        return Estimate(status="does_not_fit", message=not_fit_message(scn, r.arch, res), **base)
    if per_replica > running:
        notes.append(f"only {int(running)} of {int(per_replica)} requests per replica fit in KV memory; the rest wait")
    rps = _f(res.requests_per_s)
    intervals = serving_bands(res, [r.device.kind], [scn.engine], scn.output_len)
    band = {k: (_f(lo), _f(hi)) for k, (lo, hi) in intervals.items()}
    serving = ServingResult(
        concurrency=int(per_replica * scn.replicas),
        concurrency_per_replica=int(per_replica),
        ttft_ms=_f(res.ttft_s) * MS,
        tpot_ms=_f(res.tpot_s) * MS,
        e2e_ms=_f(res.e2e_s) * MS,
        requests_per_s=rps,
        output_tokens_per_s=rps * scn.output_len,
        input_tokens_per_s=rps * scn.input_len,
        output_tokens_per_s_per_device=rps * scn.output_len / scn.devices,
        prefill_tokens_per_s=scn.input_len / _f(res.prefill_s),
        **{f"{k}_{end}": v for k, (lo, hi) in band.items() for end, v in (("low", lo), ("high", hi))},
    )
    s = r.system
    ctx_full, ctx_slide = decode_contexts(s, np.array([float(scn.input_len)]), np.array([float(scn.output_len)]))
    dstep = decode_step(per_stage_batch(res.decode_batch, s.layout), ctx_full, ctx_slide)
    pstep = prefill_step(np.array([1.0]), np.array([float(scn.input_len)]), s.shape)
    ops = _operator_rows(r, "prefill", pstep) + _operator_rows(r, "decode", dstep)
    return Estimate(
        status="ok",
        message="fits",
        prefill=_parts(res.prefill_parts_s, 1.0, float(scn.input_len)),
        decode=_parts(res.decode_parts_s, _f(res.decode_batch), _f(res.decode_batch)),
        serving=serving,
        operators=ops,
        **base,
    )
