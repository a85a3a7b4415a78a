"""Per-answer trade-offs: seconds, dollars and joules per answer of several (model, hardware, samples N) candidates
serving one workload at one rate (the Compare page's "per answer" view, `llmcap compare-answers`).

The question is the one of Kinetics (Sadhukhan et al. 2025, "Kinetics: Rethinking Test-Time Scaling Laws",
arXiv 2506.05333): is a small model sampled N times cheaper per answer than a large model once? Their point is that
over long generations attention (KV reads, which grow with the context and the number of samples), not parameter
count, dominates the cost; this view measures it with llmcap's own serving model rather than FLOP counts.

Each candidate, by the analytic rate model (llmcap.load.rate, method "analytic"; samples as llmcap.load.samples,
a token budget as llmcap.load.budget):
1. one replica's maximum rate in answers/s, and $ per answer when the deployment is fully used
   (usd_per_answer_at_max_rate = $/hour / 3600 / max answers per second): the hardware efficiency of the answer;
2. replicas: the fewest (from the first stable count, at most MAX_REPLICAS) at which `slo.pct`% of samples meet the
   TTFT and TPOT objectives at the rate (objectives per sample, as an engine serves them): an exponential search up,
   then bisection (attainment rises with replicas, llmcap.plan.evaluate.fewest_replicas);
3. at that deployment and rate: seconds per answer (until the longest of the N samples ends), $ per answer
   ($/hour over answers per hour, every replica billed) and joules per answer (energy per output token x output
   tokens x N).
"""

from __future__ import annotations

import math

import polars as pl
from pydantic import Field, ValidationError

from llmcap.catalog.loader import Catalog, UnknownIdError, load_catalog
from llmcap.catalog.schema import Frozen
from llmcap.load.rate import LoadEstimate, estimate_load
from llmcap.load.rate_types import LoadError
from llmcap.scenario import ENGINES, Pricing, Scenario, Slo, Traffic

MAX_CANDIDATES = 6
MAX_REPLICAS = 256
REQUESTS = 2000  # drawn requests per candidate (the analytic model needs their mean and cv only)
COLUMNS = (
    "candidate", "model", "hardware", "tp", "weight_format", "samples", "status", "replicas", "devices",
    "seconds_per_answer", "usd_per_answer", "joules_per_answer", "usd_per_answer_at_max_rate",
    "max_answers_per_s_per_replica", "slo_attainment", "ttft_ms_p90", "tpot_ms_p90", "output_tokens_per_sample",
    "usd_per_hour", "note",
)  # fmt: skip


class AnswerCandidate(Frozen):
    """One way to produce an answer: a model on a device layout, sampled N times per prompt."""

    model: str = Field(min_length=1, max_length=200)
    hardware: str = Field(min_length=1, max_length=120)
    samples: int = Field(default=1, ge=1, le=64)
    tp: int = Field(default=1, ge=1, le=64)
    weight_format: str = Field(default="bf16", min_length=1, max_length=40)
    engine: str = Field(default="vllm")

    def label(self) -> str:
        short = self.model.rsplit("/", 1)[-1]
        layout = f" tp{self.tp}" if self.tp > 1 else ""
        return f"{short} ×{self.samples} · {self.hardware}{layout} · {self.weight_format}"

    def scenario(self, replicas: int = 1) -> Scenario:
        if self.engine not in ENGINES:
            raise ValueError(f"unknown engine {self.engine!r}")
        return Scenario(model=self.model, hardware=self.hardware, tp=self.tp, weight_format=self.weight_format,
                        engine=self.engine, replicas=replicas)  # fmt: skip


def _run(c: AnswerCandidate, replicas: int, traffic: Traffic, slo: Slo, pricing, catalog) -> LoadEstimate:
    return estimate_load(c.scenario(replicas), traffic, slo, pricing, method="analytic", catalog=catalog, strict=False)


def _meets(le: LoadEstimate, slo: Slo) -> bool:
    return (le.slo_attainment or 0.0) >= slo.pct / 100 - 1e-9


def answer_row(c: AnswerCandidate, workload: str, rate_rps: float, *, slo: Slo | None = None,
               pricing: Pricing | None = None, max_output_tokens: int | None = None,
               catalog: Catalog | None = None) -> dict:  # fmt: skip
    """One candidate's per-answer figures (module docstring); status ok, does_not_fit, misses_slo or error."""
    catalog = catalog or load_catalog()
    slo = slo or Slo()
    row: dict = dict.fromkeys(COLUMNS) | {
        "candidate": c.label(), "model": c.model, "hardware": c.hardware, "tp": c.tp,
        "weight_format": c.weight_format, "samples": c.samples,
    }  # fmt: skip
    traffic = Traffic(rate_rps=rate_rps, workload=workload, samples=c.samples, max_output_tokens=max_output_tokens,
                      requests=REQUESTS)  # fmt: skip
    try:
        one = _run(c, 1, traffic, slo, pricing, catalog)
        if not one.fits:
            return row | {"status": "does_not_fit", "note": one.message}
        top = one.max_rate_rps or 0.0
        if top <= 0:
            return row | {"status": "does_not_fit", "note": "no rate is sustainable"}
        replicas = max(1, math.floor(rate_rps / top) + 1)
        le = _run(c, replicas, traffic, slo, pricing, catalog)
        miss = replicas - 1  # fewer replicas are unstable
        while not _meets(le, slo) and replicas < MAX_REPLICAS:  # exponential search up
            miss, replicas = replicas, min(replicas * 2, MAX_REPLICAS)
            le = _run(c, replicas, traffic, slo, pricing, catalog)
        while _meets(le, slo) and replicas - miss > 1:  # bisection down to the fewest that meet the objectives
            mid = (miss + replicas) // 2
            at = _run(c, mid, traffic, slo, pricing, catalog)
            if _meets(at, slo):
                replicas, le = mid, at
            else:
                miss = mid
    except (LoadError, ValueError) as exc:
        return row | {"status": "error", "note": str(exc).splitlines()[0]}
    except UnknownIdError as exc:
        return row | {"status": "error", "note": str(exc.args[0] if exc.args else exc)}
    met = _meets(le, slo)
    note = "" if met else f"misses the objectives even with {replicas} replicas (figures at {replicas})"
    if le.cost is None:
        note = "; ".join(x for x in (note, "no price for this device") if x)
    return row | {
        "status": "ok" if met else "misses_slo",
        "replicas": replicas,
        "devices": le.devices,
        "seconds_per_answer": le.seconds_per_answer,
        "usd_per_answer": le.usd_per_answer,
        "joules_per_answer": le.joules_per_answer,
        "usd_per_answer_at_max_rate": one.usd_per_answer_at_max_rate,
        "max_answers_per_s_per_replica": top,
        "slo_attainment": le.slo_attainment,
        "ttft_ms_p90": le.ttft_ms.p90 if le.ttft_ms else None,
        "tpot_ms_p90": le.tpot_ms.p90 if le.tpot_ms else None,
        "output_tokens_per_sample": le.traffic.mean_output_tokens if le.traffic else None,
        "usd_per_hour": le.cost.usd_per_hour if le.cost else None,
        "note": note,
    }


def answer_table(candidates: list[AnswerCandidate], workload: str, rate_rps: float, *, slo: Slo | None = None,
                 pricing: Pricing | None = None, max_output_tokens: int | None = None,
                 catalog: Catalog | None = None) -> pl.DataFrame:  # fmt: skip
    """Every candidate's per-answer figures as a table (COLUMNS), in the order given."""
    if not 1 <= len(candidates) <= MAX_CANDIDATES:
        raise ValueError(f"give 1 to {MAX_CANDIDATES} candidates (got {len(candidates)})")
    catalog = catalog or load_catalog()
    catalog.workload(workload)  # an unknown preset: a clear error with suggestions
    rows = [answer_row(c, workload, rate_rps, slo=slo, pricing=pricing, max_output_tokens=max_output_tokens,
                       catalog=catalog) for c in candidates]  # fmt: skip
    schema = {k: pl.Float64 for k in COLUMNS} | {k: pl.Utf8 for k in
              ("candidate", "model", "hardware", "weight_format", "status", "note")} | {
              k: pl.Int64 for k in ("tp", "samples", "replicas", "devices")}  # fmt: skip
    return pl.DataFrame(rows, schema=schema).select(COLUMNS)


CANDIDATE_KEYS = {"samples": "samples", "tp": "tp", "weights": "weight_format", "engine": "engine"}


def parse_candidate(text: str) -> AnswerCandidate:
    """`MODEL@HARDWARE[:samples=N][:tp=T][:weights=F][:engine=E]`, e.g. `Qwen/Qwen3-8B@h100-sxm:samples=8`
    (ValueError naming what is wrong)."""
    t = str(text).strip()
    model, at, rest = t.partition("@")
    if not at or not model.strip() or not rest.strip():
        raise ValueError(f"expected MODEL@HARDWARE[:samples=N][:tp=T][:weights=F] (got {text[:80]!r})")
    hw, *opts = rest.split(":")
    fields: dict = {"model": model.strip(), "hardware": hw.strip()}
    for opt in opts:
        key, eq, value = opt.partition("=")
        name = CANDIDATE_KEYS.get(key.strip().lower())
        if not eq or name is None:
            raise ValueError(f"unknown option {opt[:40]!r}: use {', '.join(k + '=' for k in CANDIDATE_KEYS)}")
        v = value.strip()
        if name in ("samples", "tp"):
            if not (v.isascii() and v.isdigit() and len(v) <= 4):
                raise ValueError(f"{key.strip()}: expected a whole number (got {v[:20]!r})")
            fields[name] = int(v)
        else:
            fields[name] = v.lower()
    try:
        return AnswerCandidate(**fields)
    except ValidationError as exc:
        e = exc.errors()[0]
        raise ValueError(f"{e['loc'][0] if e['loc'] else 'candidate'}: {e['msg']} (got {text[:80]!r})") from None


def candidate_text(c: AnswerCandidate) -> str:
    """The inverse of parse_candidate (defaults left out)."""
    out = f"{c.model}@{c.hardware}"
    base = AnswerCandidate(model=c.model, hardware=c.hardware)
    for key, name in CANDIDATE_KEYS.items():
        if getattr(c, name) != getattr(base, name):
            out += f":{key}={getattr(c, name)}"
    return out
