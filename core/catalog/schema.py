"""Pydantic models for every catalog entry.

Each model is frozen: catalog data is read once and shared. Units are in field names.
Every entry carries a `source`; fields taken from another source than the entry's own
are named in `field_sources`, and estimated values are named in `estimated` with the
reasoning behind them.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DeviceKind = Literal["datacenter_gpu", "consumer_gpu", "accelerator", "apple_soc", "edge", "cpu"]
MathType = Literal["fp32", "bf16", "fp8", "int8", "fp4", "int4"]
MATH_TYPES: tuple[str, ...] = ("fp32", "bf16", "fp8", "int8", "fp4", "int4")
ID_PATTERN = r"^[a-z0-9][a-z0-9.\-]*$"


class Frozen(BaseModel):
    """Immutable model that rejects unknown fields (a typo in a catalog is an error)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Sourced(Frozen):
    """An entry whose facts cite where they come from. A fact is a finite number: NaN and infinity are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    source: str = Field(min_length=3, description="URL or document and table the facts come from")
    field_sources: dict[str, str] = Field(default_factory=dict, description="field -> its own source")
    estimated: dict[str, str] = Field(default_factory=dict, description="field -> reasoning for an estimate")
    notes: str = ""


class ScaleUp(Frozen):
    """Scale-up link (NVLink, Infinity Fabric, ICI...): bandwidth per device per direction."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str
    gbps_per_direction: float | None = Field(default=None, gt=0)
    domain_devices: int | None = Field(default=None, ge=1)


class HostLink(Frozen):
    """The link between a device and its host CPU's memory (PCIe, NVLink-C2C): GB/s per direction. KV offload to
    CPU memory (llmcap.load.offload) moves blocks over it."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str
    gbps_per_direction: float = Field(gt=0)


class Device(Sourced):
    """One accelerator, SoC or CPU socket. Throughput figures are dense (no sparsity)."""

    id: str = Field(pattern=ID_PATTERN)
    name: str
    vendor: str
    kind: DeviceKind
    arch: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="micro-architecture id the support matrix matches on (hopper, ada, cdna3, rdna3, apple-m3, ...)",
    )
    memory_gb: float = Field(gt=0)
    usable_memory_gb: float | None = Field(
        default=None,
        gt=0,
        description="memory an inference runtime may use, where less than memory_gb (unified memory)",
    )
    reported_memory_mib: float | None = Field(
        default=None,
        gt=0,
        description="memory.total as the driver reports it (nvidia-smi MiB): what an engine's memory fraction "
        "applies to. Datasheet 'GB' of HBM parts are close to GiB, so this exceeds memory_gb x 1e9 bytes",
    )
    mem_bw_gbps: float = Field(gt=0)
    peak_tflops: dict[MathType, float] = Field(
        description="dense peak per math type: TFLOP/s for float types, TOP/s for int types; absent = no native support"
    )
    cache_mb: float | None = Field(default=None, gt=0)
    scaleup: ScaleUp | None = None
    scaleout_gbps: float | None = Field(default=None, gt=0, description="scale-out bandwidth per device, GB/s")
    host_link: HostLink | None = Field(default=None, description="device <-> host memory link (KV offload)")
    unified_memory: bool = Field(
        default=False,
        description="memory shared with the host CPU (GB10, APUs; apple_soc, edge and cpu kinds always are): no "
        "separate CPU-memory tier for KV offload",
    )
    tdp_w: float | None = Field(default=None, gt=0)
    release_year: int | None = Field(default=None, ge=1990, le=2035)
    list_price_usd: float | None = Field(default=None, gt=0)

    @field_validator("peak_tflops")
    @classmethod
    def _positive_peaks(cls, peaks: dict[str, float]) -> dict[str, float]:
        if not peaks:
            raise ValueError("at least one peak throughput is required")
        bad = [k for k, v in peaks.items() if not v > 0]
        if bad:
            raise ValueError(f"peaks must be > 0: {bad}")
        return peaks

    @model_validator(mode="after")
    def _usable_within_total(self) -> Device:
        if self.usable_memory_gb is not None and self.usable_memory_gb > self.memory_gb:
            raise ValueError("usable_memory_gb exceeds memory_gb")
        return self


class KVFormat(Sourced):
    """A KV-cache storage format."""

    id: str = Field(pattern=ID_PATTERN)
    name: str
    bits: float = Field(gt=0, le=32)


class Format(Sourced):
    """A weight quantization format and the math precision its matrix products run in."""

    id: str = Field(pattern=ID_PATTERN)
    name: str
    weight_bits: float = Field(gt=0, le=32, description="bits per weight including block-scale overhead")
    activation_bits: float = Field(gt=0, le=32)
    math: MathType = Field(description="precision the matrix products run in; decides which device peak applies")
    applies_to: list[Literal["linear", "experts", "embedding", "lm_head"]]
    embedding_bits: float = Field(gt=0, le=32, description="bits per weight of embeddings and output head")
    kv_default: str = Field(description="KV format id used when none is chosen")
    engines: list[str] | None = Field(default=None, description="engines that run it; None = all")


class MathFallback(Frozen):
    """Where a device lacks native `math`, use the first of `then` it supports (fp32 last)."""

    math: MathType
    then: list[MathType]
    source: str


class CloudOffering(Frozen):
    """One on-demand cloud instance price."""

    id: str = Field(pattern=ID_PATTERN)
    provider: str
    instance: str
    hardware: str = Field(description="device id")
    devices_per_instance: int = Field(ge=1)
    usd_per_hour: float = Field(gt=0)
    usd_per_device_hour: float = Field(gt=0)
    region: str
    date_seen: dt.date | None
    source: str = Field(min_length=3)
    superseded: bool = False
    notes: str = ""


class PurchasePrice(Frozen):
    """A price for buying one device, for total cost of ownership."""

    hardware: str
    kind: Literal["list", "street"]
    usd: float = Field(gt=0)
    date_seen: dt.date | None
    source: str = Field(min_length=3)
    notes: str = ""


class LengthDistribution(Frozen):
    """Token-length distribution: mean plus a family and its parameters, clipped to [min, max]."""

    family: Literal["fixed", "lognormal", "gamma", "exponential", "uniform"]
    mean: float = Field(gt=0)
    cv: float = Field(default=0.0, ge=0, description="coefficient of variation (std / mean)")
    min: int = Field(default=1, ge=1)
    max: int = Field(default=1_000_000, ge=1)


class Arrival(Frozen):
    """Inter-arrival process: Poisson (cv 1) or gamma with a coefficient of variation."""

    family: Literal["poisson", "gamma"]
    cv: float = Field(default=1.0, gt=0)


class SessionSpec(Frozen):
    """Multi-turn sessions (llmcap.load.sessions): turn k of a session sends the system prompt, every earlier
    message and reply, and `new_tokens` of its own; replies follow the output length. `think_s` is the mean
    gap between the arrivals of two turns of a session (exponential)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    turns: LengthDistribution = Field(description="turns per session")
    think_s: float = Field(ge=0, le=86_400, description="mean seconds between two turns of a session")
    new_tokens: int = Field(ge=1, le=1_000_000, description="tokens a turn adds to the history (the user's message)")
    system_prompt_tokens: int = Field(default=0, ge=0, le=1_000_000, description="shared by every session")


class LoraSpec(Frozen):
    """K resident LoRA adapters per replica of rank r on the attention projections, or attention and MLP
    (llmcap.load.lora)."""

    adapters: int = Field(ge=1, le=10_000)
    rank: int = Field(default=16, ge=1, le=1024)
    targets: Literal["attn", "all"] = "attn"


class Workload(Sourced):
    """A named workload preset."""

    id: str = Field(pattern=ID_PATTERN)
    name: str
    description: str
    input_tokens: LengthDistribution
    output_tokens: LengthDistribution
    arrival: Arrival
    prefix_cache_hit: float = Field(default=0.0, ge=0, le=1)
    sessions: SessionSpec | None = Field(default=None, description="multi-turn sessions (lengths per turn)")
    samples: int = Field(default=1, ge=1, le=64, description="generations per prompt (best-of-N)")


class CarbonIntensity(Frozen):
    """Grid carbon intensity of a region."""

    id: str = Field(pattern=ID_PATTERN)
    name: str
    gco2e_per_kwh: float = Field(ge=0)
    year: int
    source: str = Field(min_length=3)


class Checkpoint(Frozen):
    """A published checkpoint of a catalog architecture: a vendor quantization or a dated re-release.

    Resolving `id` gives the base architecture with `weights` (and `kv`, where the checkpoint declares one)
    preselected.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=3, description="repository id, org/name")
    weights: str = Field(description="weight format id the checkpoint ships in")
    kv: str | None = Field(default=None, description="KV format id the checkpoint declares, if any")
    source: str = Field(min_length=3)
    notes: str = ""


class ModelMeta(Sourced):
    """Metadata of a catalog model; its shapes come from the `config.json` beside it."""

    id: str = Field(description="Hugging Face id, org/name")
    display_name: str
    family: str
    release_date: dt.date | None = None
    license: str
    aliases: list[str] = Field(default_factory=list)
    checkpoints: list[Checkpoint] = Field(
        default_factory=list, description="published checkpoints of this architecture, each with its format"
    )
    params_total_b: float = Field(gt=0, description="published total parameters, billions")
    params_active_b: float | None = Field(default=None, gt=0, description="published active parameters (MoE)")
    config_source: str = Field(min_length=3, description="where the config.json comes from")


class PowerProfile(Sourced):
    """Board power of a device kind as fractions of its TDP: idle floor, memory-bound and compute-bound steps."""

    kind: DeviceKind | Literal["default"]
    idle_fraction: float = Field(gt=0, lt=1, description="idle with a model loaded / TDP")
    memory_bound_fraction: float = Field(gt=0, le=1, description="power / TDP while HBM bandwidth is saturated")
    compute_bound_fraction: float = Field(gt=0, le=1, description="power / TDP while tensor cores are saturated")

    @model_validator(mode="after")
    def _ordered(self) -> PowerProfile:
        if not self.idle_fraction <= self.memory_bound_fraction <= self.compute_bound_fraction:
            raise ValueError("expected idle_fraction <= memory_bound_fraction <= compute_bound_fraction")
        return self


class EnergyDefaults(Sourced):
    """Defaults for energy and ownership cost: facility overhead, electricity price, amortization."""

    pue: float = Field(ge=1, le=3, description="power usage effectiveness: facility power / IT power")
    usd_per_kwh: float = Field(gt=0, description="electricity price")
    amortization_years: float = Field(gt=0, description="years over which a purchase is spread")


class PowerCatalog(Frozen):
    """catalogs/power.yaml: energy defaults and power profiles by device kind."""

    defaults: EnergyDefaults
    profiles: list[PowerProfile]
