"""Published LoRA serving measurements (catalogs/measured/lora_overhead.yaml) against the per-step cost of
llmcap.load.lora.

The model's per-step cost is the adapters' weight-read time, d a / B (d distinct adapters in the step, a bytes of
one adapter on a device, B the memory bandwidth). A decode step reads at least every weight once, W bytes, so the
base step takes at least W / B and the slowdown the model can predict is bounded without knowing the device:

    predicted slowdown = (d a / B) / t_step <= d a / W          (roofline_slowdown_bound)

A measurement's slowdown is 1 / lora_over_base - 1 (lora_over_base: LoRA throughput over base throughput, or base
step time over LoRA step time). Where it exceeds the bound, the engine pays for something the roofline leaves out
(kernel launches of two small GEMMs per adapted layer, gathers, unfused code paths), and `underestimate` says by how
much. The measurements are system-level or single-stream, not kernel-level with shapes, so they check the model and
are not fitted to it (docs/method.md "LoRA adapters").
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llmcap.catalog.loader import Catalog, catalog_file
from llmcap.catalog.schema import Frozen, Sourced
from llmcap.load.lora import arch_adapter_params
from llmcap.load.rate_types import LoadError

LORA_EVIDENCE_FILE = "measured/lora_overhead.yaml"
BOUND_RANK = 64  # where a source does not state the rank: the bound is taken at rank 64 (larger bound, safer check)


class LoraObservation(Sourced):
    """One published with/without-LoRA measurement."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")
    engine: str
    hardware: str
    hardware_id: str | None = None
    model: str = Field(description="catalog model with the shapes the adapters attach to")
    weight_bytes_per_param: float = Field(default=2.0, gt=0, le=4)
    rank: int | None = Field(default=None, ge=1, le=1024)
    targets: Literal["attn", "all"] | None = None
    adapters_in_batch: int | None = Field(default=None, ge=1)
    projections_per_layer: int | None = Field(
        default=None, ge=1, le=16, description="adapted projections per attention layer where fewer than `targets`"
    )
    batch: str
    concurrency: int | None = Field(default=None, ge=1, description="requests in flight, where the source fixes it")
    cuda_graphs: bool | None = Field(default=None, description="engine ran with CUDA graphs (null: not stated)")
    base_step_ms: float | None = Field(default=None, gt=0, description="measured base step time (TPOT or batch/tput)")
    level: Literal["step", "system"]
    lora_over_base: float = Field(gt=0, le=1.5)


class LoraKernelTiming(Sourced):
    """One published timing of a single LoRA kernel (shrink: x A^T, or expand: . B^T) at stated shapes."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")
    engine: str
    hardware: str
    op: Literal["shrink", "expand"]
    tokens: int | None = Field(default=None, ge=1, description="tokens in the call (the decode batch)")
    in_features: int | None = Field(default=None, ge=1)
    out_features: int | None = Field(default=None, ge=1)
    adapters: int | None = Field(default=None, ge=1)
    time_us: float = Field(gt=0, le=1e5)


class LoraEvidence(Frozen):
    """catalogs/measured/lora_overhead.yaml."""

    observations: tuple[LoraObservation, ...] = Field(min_length=1)
    kernel_timings: tuple[LoraKernelTiming, ...] = ()


def lora_evidence() -> tuple[LoraObservation, ...]:
    """The observations of catalogs/measured/lora_overhead.yaml."""
    return catalog_file(LORA_EVIDENCE_FILE, LoraEvidence.model_validate, LoadError).observations


def kernel_timings() -> tuple[LoraKernelTiming, ...]:
    """The single-kernel timings of catalogs/measured/lora_overhead.yaml."""
    return catalog_file(LORA_EVIDENCE_FILE, LoraEvidence.model_validate, LoadError).kernel_timings


def measured_slowdown(o: LoraObservation) -> float:
    """The observation's slowdown with LoRA: step time (or inverse throughput) with LoRA over without, minus one."""
    return 1.0 / o.lora_over_base - 1.0


def roofline_slowdown_bound(o: LoraObservation, catalog: Catalog) -> float:
    """The largest slowdown llmcap.load.lora's weight-read cost can give for the observation, on any device: d a / W
    with d the adapters in the batch (1 where not stated), a the adapter's bytes at the stated rank and targets (rank
    64 on all targets where not stated) and W the base weights a decode step reads (active parameters less the
    embedding table, at the checkpoint's bytes per parameter)."""
    arch = catalog.model(o.model).arch
    rank = o.rank or BOUND_RANK
    targets = o.targets or ("all" if arch.n_moe_layers == 0 else "attn")
    adapter_bytes = arch_adapter_params(arch, rank, targets) * 2.0  # adapters are held in 16 bits
    weight_bytes = (arch.params_active - arch.params_embedding) * o.weight_bytes_per_param
    return (o.adapters_in_batch or 1) * adapter_bytes / weight_bytes


def underestimate(o: LoraObservation, catalog: Catalog) -> float:
    """How many times the measured slowdown exceeds the largest one the weight-read model can give."""
    return measured_slowdown(o) / roofline_slowdown_bound(o, catalog)


def evidence_note() -> str:
    """One line for results with LoRA: the model's cost is a lower bound, and what the measurements show."""
    try:
        obs = lora_evidence()
    except LoadError as exc:
        return f"LoRA step cost: adapters' weight-read time only, a lower bound ({exc})"
    s = [measured_slowdown(o) for o in obs]
    return (
        f"LoRA step cost is the adapters' weight-read time, a lower bound: {len(obs)} published measurements "
        f"(catalogs/{LORA_EVIDENCE_FILE}) show {min(s):.0%}-{max(s):.0%} slower serving with LoRA on, depending on "
        "the engine (kernel launches and code paths the roofline leaves out)"
    )


def evidence_table(catalog: Catalog) -> list[dict[str, object]]:
    """One row per observation: measured slowdown, the weight-read model's largest slowdown, and their ratio."""
    return [
        {"id": o.id, "engine": o.engine, "hardware": o.hardware, "model": o.model, "rank": o.rank,
         "targets": o.targets, "level": o.level, "measured_slowdown": round(measured_slowdown(o), 4),
         "roofline_slowdown_bound": round(roofline_slowdown_bound(o, catalog), 5),
         "underestimate_x": round(underestimate(o, catalog), 1)}
        for o in lora_evidence()
    ]  # fmt: skip
