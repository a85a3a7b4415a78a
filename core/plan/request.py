"""What the planner is asked (PlanRequest, a workload preset's traffic fields) and what it answers: ranked
candidates, rejected families with the reason, Pareto points (llmcap.plan.planner)."""

from __future__ import annotations

from pydantic import Field, model_validator

from llmcap.catalog.schema import Frozen, LoraSpec, SessionSpec, Workload
from llmcap.scenario import ENGINES, Pricing, Slo

DEFAULT_WEIGHTS = ("bf16", "fp8", "int4")
AUTO_ENGINES = "auto"  # each device's engines from the support matrix (catalogs/support.yaml)


class PlanRequest(Frozen):
    """What must be served, within which objectives and constraints."""

    model: str = Field(min_length=1)
    rate_rps: float = Field(gt=0, le=1e6)
    input_len: float = Field(ge=1, le=10_000_000, description="mean prompt tokens")
    output_len: float = Field(ge=1, le=10_000_000, description="mean output tokens")
    input_cv: float = Field(default=0.0, ge=0, le=20)
    output_cv: float = Field(default=0.0, ge=0, le=20)
    arrival_cv: float = Field(default=1.0, gt=0, le=50, description="1 = Poisson")
    workload: str | None = None
    slo: Slo = Field(description="latency objectives at a percentile (pct below 100)")
    min_output_tokens_per_s: float | None = Field(default=None, ge=0)
    hardware: tuple[str, ...] | None = None  # None: every device in the catalog
    pricing: Pricing = Field(default_factory=Pricing, description="price basis: cloud (default), owned or both")
    max_devices: int = Field(default=64, ge=1, le=4096)
    max_usd_per_hour: float | None = Field(default=None, gt=0)
    weights: tuple[str, ...] = DEFAULT_WEIGHTS
    kv: tuple[str | None, ...] = (None,)
    engines: tuple[str, ...] = (AUTO_ENGINES,)
    robust: bool = Field(
        default=False,
        description="require the objectives at the pessimistic end of each deployment's 80% error band "
        "(llmcap.estimate.bands), not at the point estimate",
    )
    allow_disagg: bool = False
    allow_mixed: bool = False
    sessions: SessionSpec | None = Field(
        default=None, description="multi-turn sessions: input_len is then their mean prompt (llmcap.plan.sessions)"
    )
    prefix_cache: bool = Field(default=True, description="with sessions: automatic prefix caching")
    kv_offload_cpu_gb: float = Field(default=0.0, ge=0, le=100_000, description="CPU KV tier per replica")
    kv_offload_ssd_gb: float = Field(default=0.0, ge=0, le=1_000_000, description="SSD KV tier per replica")
    lora: LoraSpec | None = Field(default=None, description="resident LoRA adapters per replica (llmcap.plan.lora)")
    samples: int = Field(default=1, ge=1, le=64, description="generations per prompt; rate_rps counts prompts "
                         "(answers) and the objectives apply to each sample (llmcap.plan.samples)")
    max_output_tokens: int | None = Field(default=None, ge=1, le=10_000_000,
                                          description="token budget per sample: output_len/cv are cut at it")
    top: int = Field(default=10, ge=1, le=1000)
    region: str = "us-east-virginia"
    # what-if knobs (1.0 = as catalogued)
    mem_bw_scale: float = Field(default=1.0, gt=0, le=100)
    compute_scale: float = Field(default=1.0, gt=0, le=100)
    price_scale: float = Field(default=1.0, gt=0, le=100)

    @model_validator(mode="after")
    def _engines(self) -> PlanRequest:
        if self.slo.pct >= 100:
            raise ValueError("slo.pct must be below 100: the planner sizes for a percentile, not the maximum")
        if self.pricing.offering is not None:
            raise ValueError("the planner prices every device: give a provider, not one offering")
        bad = [e for e in self.engines if e not in ENGINES and e != AUTO_ENGINES]
        if bad:
            raise ValueError(f"unknown engine(s) {', '.join(bad)}; known: {AUTO_ENGINES}, {', '.join(ENGINES)}")
        return self


def workload_traffic(wl: Workload) -> dict[str, float | str]:
    """PlanRequest traffic fields of a workload preset: mean lengths, their cvs, arrival burstiness."""
    return dict(
        workload=wl.id,
        input_len=wl.input_tokens.mean,
        output_len=wl.output_tokens.mean,
        input_cv=wl.input_tokens.cv,
        output_cv=wl.output_tokens.cv,
        arrival_cv=wl.arrival.cv,
    )


class Candidate(Frozen):
    hardware: str
    devices: int
    tp: int
    pp: int
    ep: int
    replicas: int
    weight_format: str
    kv_format: str
    engine: str
    max_seqs: int
    mode: str  # "aggregated", "disaggregated xP:yD" or "mixed"
    ttft_ms_p50: float
    ttft_ms_p90: float
    tpot_ms_p50: float
    tpot_ms_p90: float
    e2e_ms_p90: float
    slo_attainment: float
    goodput_rps: float
    max_rate_rps: float
    utilization: float
    usd_per_hour: float
    usd_per_million_output_tokens: float
    joules_per_output_token: float | None
    output_tokens_per_s_per_device: float
    price_basis: str
    # how far under its objectives the deployment stays at the SLO percentile (the tighter of TTFT and TPOT, % of the
    # objective): at the point estimate, and at the pessimistic end of its 80% error band
    slo_margin_pct: float | None = None
    slo_margin_pessimistic_pct: float | None = None
    prefix_hit_rate: float | None = Field(default=None, description="sessions: prompt tokens served from the cache")
    prefill_tokens_per_request: float | None = None
    lora_memory_gb_per_device: float | None = None
    e2e_ms_mean: float | None = Field(default=None, description="mean end-to-end latency of a sample")
    tpot_ms_mean: float | None = Field(default=None, description="mean time per output token of a sample")
    seconds_per_answer: float | None = Field(default=None, description="mean time until an answer's N samples end")
    usd_per_answer: float | None = Field(default=None, description="$/hour / 3600 / answers per second")
    joules_per_answer: float | None = Field(default=None, description="watts / answers per second")
    detail: str = ""


class Rejected(Frozen):
    hardware: str
    weight_format: str
    kv_format: str
    engine: str
    reason: str  # does not fit | TTFT | TPOT | devices | budget | e2e | throughput | no price | unsupported | invalid
    detail: str


class ParetoPoint(Frozen):
    front: str  # "throughput" (tokens/s per device vs per user) or "cost" ($/M tokens vs p90 e2e)
    hardware: str
    tp: int
    pp: int
    ep: int
    weight_format: str
    max_seqs: int
    x: float
    y: float
    x_label: str
    y_label: str


class Plan(Frozen):
    request: PlanRequest
    candidates: list[Candidate]
    rejected: list[Rejected]
    pareto: list[ParetoPoint]
    evaluated: int
    elapsed_s: float
    notes: list[str] = Field(default_factory=list)
