"""The Estimate page's inputs <-> its URL query string.

Pure (no Streamlit) so it can be tested and fuzzed: `parse_query()` turns any mapping of query
parameters into valid `PageInputs` plus one `UrlWarning` per parameter it could not use (that parameter
falls back to its default; nothing here raises on user input). `to_query()` is the inverse for valid
inputs: `parse_query(to_query(x)) == (x, [])`.

Keys (short, documented in the README): model, hw, n, tp, pp, ep, dp, replicas, w, kv, engine, workload, isl,
osl, conc, rate, arr, cv, sim, ttft, tpot, pct, prov, usd, region. `n` (total devices) is derived from
tp*pp*replicas; in a URL it may stand in for `replicas` and is otherwise checked against it. `rate` present means
the open-loop (request rate) mode; `arr`/`cv` shape its arrivals and `sim=1` simulates each request instead of
the analytic queueing model (`sim=0`, the default). `prov` (a cloud provider, or `tco`) and `usd` ($/GPU-hour)
choose the price basis (neither: the cheapest current cloud offering); `region` the grid for carbon.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field

from llmcap.app.state.workload_url import (
    SAMPLE_KEYS,
    WORKLOAD_KEYS,
    WorkloadInputs,
    parse_workload_keys,
    workload_query,
)
from llmcap.catalog.loader import Catalog, normalize_id
from llmcap.catalog.schema import Frozen
from llmcap.economics.energy import DEFAULT_REGION
from llmcap.scenario import ENGINES, MAX_DEVICES, MAX_TOKENS, Scenario

DEFAULT_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
DEFAULT_HARDWARE = "h100-sxm"
PERCENTILES = (50, 90, 95, 99)
MAX_VALUE_CHARS = 200
MAX_CONCURRENCY = 1_000_000
MAX_RATE_RPS = 1e6
MIN_SLO_MS = 0.1
MAX_SLO_MS = 1e7
MAX_CV = 20.0
MAX_USD_PER_GPU_HOUR = 10_000.0
DEFAULT_GAMMA_CV = 1.41  # BurstGPT's generator default (gamma shape 0.5), as in catalogs/workloads.yaml
TCO = "tco"
KEYS = (
    "model", "hw", "n", "tp", "pp", "ep", "dp", "replicas", "w", "kv", "engine", "workload",
    "isl", "osl", "conc", "rate", "arr", "cv", "sim", "ttft", "tpot", "pct", "prov", "usd", "region",
    *WORKLOAD_KEYS, *SAMPLE_KEYS,
)  # fmt: skip
# Parameters other modules own (custom devices, `dev`, travel with every page): not parsed here, not warned about.
PASSTHROUGH_KEYS = ("dev",)


class PageInputs(Frozen):
    """Everything the Estimate page asks for. Defaults are the page's landing scenario.

    The SLO defaults are a judgement call, not a published spec: an interactive chat service that shows
    the first token within 2 s and streams at 10 tokens/s per user (100 ms per token) or faster.
    """

    model: str = Field(default=DEFAULT_MODEL, min_length=1, max_length=200)
    hardware: str = Field(default=DEFAULT_HARDWARE, min_length=1, max_length=100)
    tp: int = Field(default=1, ge=1, le=MAX_DEVICES)
    pp: int = Field(default=1, ge=1, le=MAX_DEVICES)
    ep: int = Field(default=1, ge=1, le=MAX_DEVICES)
    dp: int = Field(default=1, ge=1, le=MAX_DEVICES)
    replicas: int = Field(default=1, ge=1, le=100_000)
    weight_format: str = "bf16"
    kv_format: str | None = None
    engine: str = Field(default="generic", max_length=40, description="an engine id of catalogs/engines.yaml")
    workload: str | None = None
    input_len: int = Field(default=1024, ge=1, le=MAX_TOKENS)
    output_len: int = Field(default=256, ge=1, le=MAX_TOKENS)
    concurrency: int | Literal["max"] = 16
    rate_rps: float | None = Field(default=None, gt=0, le=MAX_RATE_RPS, description="set: open-loop mode")
    arrival: Literal["poisson", "gamma"] = "poisson"
    cv: float = Field(default=DEFAULT_GAMMA_CV, gt=0, le=MAX_CV, description="gamma inter-arrival cv")
    simulate: bool = Field(default=False, description="request rate: the simulator instead of the analytic model")
    provider: str | None = Field(default=None, max_length=60, description="cloud provider, or 'tco'")
    usd_per_gpu_hour: float | None = Field(default=None, gt=0, le=MAX_USD_PER_GPU_HOUR)
    region: str = DEFAULT_REGION
    ttft_ms: float = Field(default=2000.0, ge=MIN_SLO_MS, le=MAX_SLO_MS)
    tpot_ms: float = Field(default=100.0, ge=MIN_SLO_MS, le=MAX_SLO_MS)
    pct: int = 90
    extra: WorkloadInputs = Field(default_factory=WorkloadInputs, description="sessions, prefix cache, offload")

    @property
    def devices(self) -> int:
        return self.tp * self.pp * self.replicas

    def scenario(self, model: str | None = None) -> Scenario:
        """The estimator's Scenario (`model` replaces the id, e.g. for an uploaded config.json)."""
        return Scenario(
            model=model or self.model,
            hardware=self.hardware,
            tp=self.tp,
            pp=self.pp,
            ep=self.ep,
            dp=self.dp,
            replicas=self.replicas,
            weight_format=self.weight_format,
            kv_format=self.kv_format,
            engine=self.engine,
            input_len=self.input_len,
            output_len=self.output_len,
            concurrency=self.concurrency,
        )


class UrlWarning(Frozen):
    """A query parameter that could not be used, and what was used instead."""

    key: str
    value: str
    reason: str
    fallback: str

    def __str__(self) -> str:
        shown = self.value if len(self.value) <= 40 else self.value[:37] + "..."
        tail = f"; using {self.fallback}" if self.fallback else ", ignored"
        return f"URL parameter `{self.key}={shown}`: {self.reason}{tail}."


@dataclass(frozen=True)
class Choices:
    """What the ids in a URL may name: lookup key -> canonical id, plus facts the checks need."""

    models: dict[str, str]  # lower-case id or alias -> id
    hardware: dict[str, str]  # normalized id -> id
    weight_formats: dict[str, str]
    kv_formats: dict[str, str]
    workloads: dict[str, tuple[int, int]]  # id -> (input, output) tokens, the preset's mean lengths
    format_engines: dict[str, tuple[str, ...] | None] = field(default_factory=dict)
    providers: dict[str, str] = field(default_factory=dict)  # lower-case name -> the catalog's spelling
    regions: dict[str, str] = field(default_factory=dict)  # normalized id -> carbon region id

    def defaults(self) -> PageInputs:
        """The landing inputs, with the first catalog entry standing in for a default id that is missing."""
        base = PageInputs()
        model = base.model if base.model.lower() in self.models else _first(self.models.values(), base.model)
        hw = base.hardware if base.hardware in self.hardware else _first(self.hardware.values(), base.hardware)
        fmt = base.weight_format if base.weight_format in self.weight_formats else None
        fmt = fmt or _first(self.weight_formats.values(), base.weight_format)
        return base.model_copy(update={"model": model, "hardware": hw, "weight_format": fmt})

    def lengths(self, workload: str) -> tuple[int, int]:
        return self.workloads[workload]


def _first(values, fallback: str) -> str:
    return sorted(values)[0] if values else fallback


def choices_from_catalog(
    catalog: Catalog,
    extra_hardware: Mapping[str, object] | None = None,
    extra_models: Mapping[str, object] | None = None,
) -> Choices:
    """Choices from the catalog plus custom device ids and model names (e.g. defined in the session)."""
    hardware = {normalize_id(k): k for k in catalog.hardware}
    hardware.update({normalize_id(k): k for k in (extra_hardware or {})})
    models = {alias: catalog.models[mid].meta.id for alias, mid in catalog.model_aliases.items()}
    models |= {m.lower(): m for m in catalog.models}
    models |= {m.strip().lower(): m for m in (extra_models or {})}
    return Choices(
        models=models,
        hardware=hardware,
        weight_formats={k: k for k in catalog.formats},
        kv_formats={k: k for k in catalog.kv_formats},
        workloads={
            w.id: (max(1, round(w.input_tokens.mean)), max(1, round(w.output_tokens.mean)))
            for w in catalog.workloads.values()
        },
        format_engines={k: (tuple(f.engines) if f.engines is not None else None) for k, f in catalog.formats.items()},
        providers={o.provider.lower(): o.provider for o in catalog.cloud_prices.values()},
        regions={normalize_id(k): k for k in catalog.carbon},
    )


# -- parsing one value (shared with llmcap.app.state.plan_url) -------------------------------------------------


class BadValue(ValueError):
    """A value that cannot be used; its text is the reason shown to the user."""


def parse_int(text: str, lo: int, hi: int) -> int:
    """A whole number in [lo, hi] (digits and at most one leading +)."""
    t = text.strip()
    if not t.isascii() or not t.removeprefix("+").isdigit():  # one sign at most: int("++5") raises
        raise BadValue("not a whole number")
    if len(t) > 12:
        raise BadValue(f"must be between {lo} and {hi:,}")
    v = int(t)
    if not lo <= v <= hi:
        raise BadValue(f"must be between {lo} and {hi:,}")
    return v


def parse_float(text: str, lo: float, hi: float) -> float:
    """A finite number in (lo, hi] when lo is 0, else in [lo, hi]."""
    t = text.strip()
    try:
        v = float(t) if t.isascii() and len(t) <= 32 else math.nan
    except ValueError:
        v = math.nan
    if not math.isfinite(v):
        raise BadValue("not a number")
    if not (lo < v if lo == 0 else lo <= v) or v > hi:
        low = "above 0" if lo == 0 else f"at least {lo:g}"
        raise BadValue(f"must be {low} and at most {hi:g}")
    return v


def parse_choice(text: str, options: Mapping[str, str], key_of, what: str) -> str:
    """The option whose lookup key is key_of(text); BadValue("unknown <what>") when there is none."""
    hit = options.get(key_of(text))
    if hit is None:
        raise BadValue(f"unknown {what}")
    return hit


def _concurrency(text: str) -> int | Literal["max"]:
    if text.strip().lower() == "max":
        return "max"
    try:
        return parse_int(text, 1, MAX_CONCURRENCY)
    except BadValue as exc:
        raise BadValue(f"{exc} (or 'max')") from None


def _flag(text: str) -> bool:
    t = text.strip()
    if t not in ("0", "1"):
        raise BadValue("must be 0 or 1")
    return t == "1"


def parse_percentile(text: str) -> int:
    """One of PERCENTILES, written `90`, `p90` or `90.0`."""
    t = text.strip().lower().removeprefix("p")
    if t.endswith(".0"):
        t = t[:-2]
    if t not in {str(p) for p in PERCENTILES}:
        raise BadValue(f"must be one of {', '.join(map(str, PERCENTILES))}")
    return int(t)


def last_value(value) -> str:
    """The value of a parameter; for a repeated key the last one (as Streamlit does)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and value:
        return str(value[-1])
    return ""


# -- the whole query --------------------------------------------------------------------------------


def query_texts(
    params: Mapping[str, object],
    keys: tuple[str, ...],
    warnings: list[UrlWarning],
    too_long,
    limits: Mapping[str, int] | None = None,
) -> dict[str, str]:
    """The non-blank text of each known key (PASSTHROUGH_KEYS and blank keys skipped). An unknown key adds a
    warning; a value over its length limit (MAX_VALUE_CHARS unless `limits` says) calls too_long(key, text, why)."""
    raw: dict[str, str] = {}
    for key, value in params.items():
        text = last_value(value)
        if key in PASSTHROUGH_KEYS or not str(key).strip():
            continue
        limit = (limits or {}).get(key, MAX_VALUE_CHARS)
        if key not in keys:
            warnings.append(UrlWarning(key=str(key)[:40], value=text, reason="unknown parameter", fallback=""))
        elif len(text) > limit:
            too_long(key, text, f"longer than {limit} characters")
        elif text.strip():
            raw[key] = text
    return raw


def apply_parsers(raw: Mapping[str, str], parsers: Mapping[str, tuple], base, warn) -> dict[str, object]:
    """Each key's text through its (field, parser); a BadValue calls warn(key, text, reason, the field's default)."""
    got: dict[str, object] = {}
    for key, (name, parse) in parsers.items():
        if key in raw:
            try:
                got[name] = parse(raw[key])
            except BadValue as exc:
                warn(key, raw[key], str(exc), getattr(base, name))
    return got


ARRIVALS = {"poisson": "poisson", "gamma": "gamma"}  # `arr` values


def parse_query(params: Mapping[str, object], choices: Choices) -> tuple[PageInputs, list[UrlWarning]]:
    """Inputs from URL query parameters; a bad value gets a warning and its default. Never raises."""
    base = choices.defaults()
    warnings: list[UrlWarning] = []

    def warn(key: str, value: str, reason: str, fallback: object) -> None:
        if isinstance(fallback, bool):
            shown = "1" if fallback else "0"
        else:
            shown = number_text(fallback) if isinstance(fallback, float) else (fallback or "none")
        warnings.append(UrlWarning(key=key, value=value, reason=reason, fallback=f"the default ({shown})"))

    raw = query_texts(params, KEYS, warnings, lambda key, text, why: warn(key, text, why, _default_text(base, key)))

    parsers = {
        "model": ("model", lambda t: parse_choice(t, choices.models, lower_text, "model")),
        "hw": ("hardware", lambda t: parse_choice(t, choices.hardware, normalize_id, "hardware id")),
        "tp": ("tp", lambda t: parse_int(t, 1, MAX_DEVICES)),
        "pp": ("pp", lambda t: parse_int(t, 1, MAX_DEVICES)),
        "ep": ("ep", lambda t: parse_int(t, 1, MAX_DEVICES)),
        "dp": ("dp", lambda t: parse_int(t, 1, MAX_DEVICES)),
        "replicas": ("replicas", lambda t: parse_int(t, 1, 100_000)),
        "w": ("weight_format", lambda t: parse_choice(t, choices.weight_formats, normalize_id, "weight format")),
        "kv": ("kv_format", lambda t: None if t.strip().lower() == "auto" else _kv(t, choices)),
        "engine": ("engine", lambda t: parse_choice(t, {e: e for e in ENGINES}, lower_text, "engine")),
        "workload": ("workload", lambda t: parse_workload(t, choices)),
        "isl": ("input_len", lambda t: parse_int(t, 1, MAX_TOKENS)),
        "osl": ("output_len", lambda t: parse_int(t, 1, MAX_TOKENS)),
        "conc": ("concurrency", _concurrency),
        "rate": ("rate_rps", lambda t: parse_float(t, 0, MAX_RATE_RPS)),
        "arr": ("arrival", lambda t: parse_choice(t, ARRIVALS, lower_text, "arrival process")),
        "cv": ("cv", lambda t: parse_float(t, 0, MAX_CV)),
        "sim": ("simulate", _flag),
        "prov": ("provider", lambda t: _provider(t, choices)),
        "usd": ("usd_per_gpu_hour", lambda t: parse_float(t, 0, MAX_USD_PER_GPU_HOUR)),
        "region": ("region", lambda t: parse_choice(t, choices.regions, normalize_id, "carbon region")),
        "ttft": ("ttft_ms", lambda t: parse_float(t, MIN_SLO_MS, MAX_SLO_MS)),
        "tpot": ("tpot_ms", lambda t: parse_float(t, MIN_SLO_MS, MAX_SLO_MS)),
        "pct": ("pct", parse_percentile),
    }
    got = apply_parsers(raw, parsers, base, warn)
    got["extra"] = parse_workload_keys(raw, warn, samples=True)
    _check_layout(got, raw, base, warn)
    _check_devices(got, raw, base, warn)
    _check_format_engine(got, raw, base, choices, warn)
    if got.get("provider") is not None and got.get("usd_per_gpu_hour") is not None:
        got.pop("provider")
        warnings.append(UrlWarning(key="prov", value=raw["prov"], reason="`usd` sets the price", fallback=""))
    if got.get("workload"):
        got["input_len"], got["output_len"] = choices.lengths(got["workload"])
    return base.model_copy(update=got), warnings


def lower_text(text: str) -> str:
    """The text as ids are looked up case-insensitively."""
    return text.strip().lower()


def _provider(text: str, choices: Choices) -> str:
    if lower_text(text) == TCO:
        return TCO
    return parse_choice(text, choices.providers, lower_text, "cloud provider (or 'tco')")


def _kv(text: str, choices: Choices) -> str:
    return parse_choice(text, choices.kv_formats, normalize_id, "KV-cache format")


def parse_workload(text: str, choices: Choices) -> str | None:
    """A workload preset id; None for `fixed` or `none` (lengths given directly)."""
    key = normalize_id(text)
    if key in ("fixed", "none"):
        return None
    if key not in choices.workloads:
        raise BadValue("unknown workload preset")
    return key


def _default_text(base: PageInputs, key: str) -> object:
    names = {"hw": "hardware", "w": "weight_format", "kv": "kv_format", "isl": "input_len", "osl": "output_len"}
    names |= {"conc": "concurrency", "rate": "rate_rps", "ttft": "ttft_ms", "tpot": "tpot_ms", "pct": "pct"}
    names |= {"arr": "arrival", "prov": "provider", "usd": "usd_per_gpu_hour", "sim": "simulate"}
    if key == "n":
        return base.devices
    if key in WORKLOAD_KEYS or key in SAMPLE_KEYS:
        return "none"
    return getattr(base, names.get(key, key))


def _check_layout(got: dict, raw: dict, base: PageInputs, warn) -> None:
    """ep and dp must divide tp; tp*pp devices per replica at most MAX_DEVICES."""
    tp, pp, ep, dp = (got.get(k, getattr(base, k)) for k in ("tp", "pp", "ep", "dp"))
    if ep > tp or tp % ep:
        got.pop("ep", None)
        warn("ep", raw.get("ep", str(ep)), f"must divide tp={tp}", base.ep)
    if dp > tp or tp % dp:
        got.pop("dp", None)
        warn("dp", raw.get("dp", str(dp)), f"must divide tp={tp}", base.dp)
    if tp * pp > MAX_DEVICES:
        got.pop("pp", None)
        warn("pp", raw.get("pp", str(pp)), f"tp*pp exceeds {MAX_DEVICES} devices", base.pp)


def _check_devices(got: dict, raw: dict, base: PageInputs, warn) -> None:
    """`n` (total devices) sets replicas when `replicas` is absent, else it must agree with tp*pp*replicas."""
    if "n" not in raw:
        return
    text = raw["n"]
    try:
        n = parse_int(text, 1, MAX_DEVICES * 100_000)
    except BadValue as exc:
        warn("n", text, str(exc), "tp*pp*replicas")
        return
    per_replica = got.get("tp", base.tp) * got.get("pp", base.pp)
    replicas = got.get("replicas")
    if replicas is None and "replicas" not in raw:
        if n % per_replica or n // per_replica > 100_000:
            warn("n", text, f"not a whole number of replicas of tp*pp={per_replica} devices", "replicas=1")
        else:
            got["replicas"] = n // per_replica
    elif replicas is not None and n != per_replica * replicas:
        warn("n", text, f"disagrees with tp*pp*replicas={per_replica * replicas}", "tp*pp*replicas")


def _check_format_engine(got: dict, raw: dict, base: PageInputs, choices: Choices, warn) -> None:
    """A format that only some engines run (GGUF on llama.cpp) needs one of them, or the generic engine."""
    fmt = got.get("weight_format", base.weight_format)
    engine = got.get("engine", base.engine)
    engines = choices.format_engines.get(fmt)
    if engines is not None and engine != "generic" and engine not in engines:
        if "engine" in got:
            got.pop("engine")
            warn("engine", raw["engine"], f"does not run weight format {fmt}", base.engine)
        else:
            got.pop("weight_format", None)
            warn("w", raw.get("w", fmt), f"runs on {', '.join(engines)}, not {engine}", base.weight_format)


def number_text(x: float) -> str:
    """The shortest text that reads back as `x` (`5` rather than `5.0`)."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def to_query(inputs: PageInputs) -> dict[str, str]:
    """Query parameters for `inputs`: every input, in a fixed order; lengths only without a preset."""
    q = {
        "model": inputs.model,
        "hw": inputs.hardware,
        "n": str(inputs.devices),
        "tp": str(inputs.tp),
        "pp": str(inputs.pp),
        "ep": str(inputs.ep),
        "dp": str(inputs.dp),
        "replicas": str(inputs.replicas),
        "w": inputs.weight_format,
        "kv": inputs.kv_format or "auto",
        "engine": inputs.engine,
    }
    if inputs.workload:
        q["workload"] = inputs.workload
    else:
        q["isl"], q["osl"] = str(inputs.input_len), str(inputs.output_len)
    q["conc"] = str(inputs.concurrency)
    if inputs.rate_rps is not None:
        q["rate"] = number_text(inputs.rate_rps)
    if inputs.rate_rps is not None or inputs.arrival != "poisson":
        q["arr"] = inputs.arrival
    if inputs.arrival == "gamma" or inputs.cv != DEFAULT_GAMMA_CV:
        q["cv"] = number_text(inputs.cv)
    if inputs.rate_rps is not None or inputs.simulate:
        q["sim"] = "1" if inputs.simulate else "0"
    q.update(ttft=number_text(inputs.ttft_ms), tpot=number_text(inputs.tpot_ms), pct=str(inputs.pct))
    if inputs.usd_per_gpu_hour is not None:
        q["usd"] = number_text(inputs.usd_per_gpu_hour)
    elif inputs.provider is not None:
        q["prov"] = inputs.provider
    q["region"] = inputs.region
    return q | workload_query(inputs.extra)
