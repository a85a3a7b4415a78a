"""The Scenario: everything one estimate needs, built alike from CLI flags, CSV rows, URLs or JSON."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from llmcap.catalog.loader import engine_ids
from llmcap.catalog.schema import Frozen, LoraSpec, SessionSpec

ENGINES = engine_ids()  # catalogs/engines.yaml, the only list of engines
MAX_TOKENS = 10_000_000
DEFAULT_REQUESTS = 10_000
MAX_RATE_RPS = 1e6
PriceBasis = Literal["cloud", "owned", "both"]
PRICE_BASES: tuple[str, ...] = ("cloud", "owned", "both")
MAX_DEVICES = 4096


class Scenario(Frozen):
    """A model served on hardware with a layout, formats, engine, request shape and load."""

    model: str = Field(min_length=1, max_length=200)
    hardware: str = Field(min_length=1, max_length=100)
    tp: int = Field(default=1, ge=1, le=MAX_DEVICES)
    pp: int = Field(default=1, ge=1, le=MAX_DEVICES)
    ep: int = Field(default=1, ge=1, le=MAX_DEVICES)
    dp: int = Field(
        default=1, ge=1, le=MAX_DEVICES, description="attention data-parallel degree inside the tp group (divides tp)"
    )
    replicas: int = Field(default=1, ge=1, le=100_000)
    weight_format: str = Field(default="bf16", max_length=40)
    kv_format: str | None = Field(default=None, max_length=40)
    engine: str = Field(default="generic", max_length=40, description="an engine id of catalogs/engines.yaml")
    input_len: int = Field(default=1024, ge=1, le=MAX_TOKENS)
    output_len: int = Field(default=256, ge=1, le=MAX_TOKENS)
    concurrency: int | Literal["max"] = 1

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, engine: str) -> str:
        if engine not in ENGINES:
            raise ValueError(f"unknown engine '{engine}'; known: {', '.join(ENGINES)}")
        return engine

    @model_validator(mode="after")
    def _layout(self) -> Scenario:
        if isinstance(self.concurrency, int) and not 1 <= self.concurrency <= 1_000_000:
            raise ValueError("concurrency must be between 1 and 1,000,000 or 'max'")
        if self.ep > self.tp or self.tp % self.ep:
            raise ValueError(
                f"ep={self.ep} must divide tp={self.tp} (experts are split inside the tensor-parallel group)"
            )
        if self.tp % self.dp:
            raise ValueError(f"dp={self.dp} must divide tp={self.tp} (attention data parallel splits the tp group)")
        if self.tp * self.pp > MAX_DEVICES:
            raise ValueError(f"tp*pp = {self.tp * self.pp} devices per replica exceeds {MAX_DEVICES}")
        return self

    @property
    def devices_per_replica(self) -> int:
        return self.tp * self.pp

    @property
    def devices(self) -> int:
        return self.tp * self.pp * self.replicas


class Traffic(Frozen):
    """Open-loop traffic and engine options. rate_rps None replays a trace at its own timestamps."""

    rate_rps: float | None = Field(default=None, gt=0, le=MAX_RATE_RPS)
    arrival: Literal["poisson", "gamma"] | None = Field(default=None, description="None: the preset's, or poisson")
    cv: float | None = Field(default=None, gt=0, le=20, description="gamma inter-arrival cv (None: preset's or 1)")
    workload: str | None = Field(default=None, max_length=80, description="workload preset id for the lengths")
    prefix_hit: float | None = Field(default=None, ge=0, lt=1, description="None: the preset's, or 0")
    spec_k: int = Field(default=0, ge=0, le=16)
    spec_alpha: float = Field(default=0.0, ge=0, le=1)
    draft_cost: float = Field(default=0.0, ge=0, le=10)
    on_full: Literal["preempt", "reject"] = "preempt"
    sessions: SessionSpec | None = Field(default=None, description="multi-turn sessions (None: the preset's)")
    prefix_cache: bool | None = Field(default=None, description="automatic prefix caching (None: the engine's)")
    samples: int | None = Field(default=None, ge=1, le=64, description="generations per prompt (None: preset's or 1)")
    max_output_tokens: int | None = Field(
        default=None, ge=1, le=10_000_000, description="token budget per sample (max_tokens; llmcap.load.budget)"
    )
    kv_offload_cpu_gb: float = Field(default=0.0, ge=0, le=100_000, description="CPU-memory KV tier per replica")
    kv_offload_ssd_gb: float = Field(default=0.0, ge=0, le=1_000_000, description="local-SSD KV tier per replica")
    lora: LoraSpec | None = Field(default=None, description="resident LoRA adapters per replica (llmcap.load.lora)")
    requests: int = Field(default=DEFAULT_REQUESTS, ge=100, le=1_000_000)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)


class Slo(Frozen):
    """Latency objectives and the share of requests (`pct`, a percentile) that must meet them (DistServe's
    goodput): TTFT and TPOT always, end-to-end latency when set."""

    ttft_ms: float = Field(default=2000.0, gt=0, le=1e7)
    tpot_ms: float = Field(default=100.0, gt=0, le=1e7)
    pct: float = Field(default=90.0, gt=0, le=100)
    e2e_ms: float | None = Field(default=None, gt=0, le=1e7)


class Pricing(Frozen):
    """How a deployment is paid for.

    `basis`: cloud (on-demand rental: the cheapest current offering, or `provider`'s, or one `offering`), owned
    (total cost of ownership: purchase over its life, power, hosting), or both (a rental where there is one,
    else ownership; each result says which). A `usd_per_gpu_hour` of the user's own overrides the basis.
    """

    basis: PriceBasis = "cloud"
    provider: str | None = Field(default=None, max_length=60, description="cloud provider (AWS, GCP, ...)")
    offering: str | None = Field(default=None, max_length=120, description="catalog cloud offering id")
    usd_per_gpu_hour: float | None = Field(default=None, gt=0, le=10_000)
    pue: float | None = Field(default=None, ge=1.0, le=3.0, description="facility PUE (default: catalog)")

    @model_validator(mode="after")
    def _one_basis(self) -> Pricing:
        cloud = self.provider is not None or self.offering is not None
        chosen = [cloud, self.usd_per_gpu_hour is not None, self.basis == "owned"]
        if sum(chosen) > 1:
            raise ValueError("choose one price basis: a cloud provider/offering, a $/GPU-hour, or owned hardware")
        return self

    @property
    def is_default(self) -> bool:
        return self.provider is None and self.offering is None and self.usd_per_gpu_hour is None and (
            self.basis == "cloud"
        )


def validation_text(exc: ValidationError, whole: str = "value") -> str:
    """A pydantic error as one line, `field: message` per error (`whole` names an error of the whole object)."""
    return "; ".join(f"{'.'.join(str(x) for x in e['loc']) or whole}: {e['msg']}" for e in exc.errors())
