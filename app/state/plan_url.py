"""The Plan page's inputs <-> its URL query string, and the planner request they make.

Pure (no Streamlit), like llmcap.app.state.urlstate for the Estimate page: `parse_plan_query()` turns any mapping of
query parameters into valid `PlanInputs` plus one `UrlWarning` per parameter (or list item) it could not use;
that parameter falls back to its default and nothing here raises on user input. `plan_query()` is the inverse:
`parse_plan_query(plan_query(x)) == (x, [])`. `plan_request()` turns the inputs into the planner's
`PlanRequest`; `estimate_query()` gives the Estimate page's link for one planned deployment.

Keys (documented in the README): model, workload, isl, osl, rate, ttft, tpot, pct, e2e, hw, prov,
usd, maxdev, maxusd, w, kv, engine, disagg, mixed, top, and for the what-ifs xbw, xflops, xprice (percent
changes), xrate (traffic multiplier), sens (sensitivity table), and for the day view (llmcap.plan.autoscale)
day (a day preset or none), pricing (price options or all), scaleup (replica start seconds or auto), minrep (minimum
replicas), budget (SLO-miss budget, % of requests). List values are comma-separated.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field, field_validator

from llmcap.app.state.urlstate import (
    DEFAULT_GAMMA_CV,
    DEFAULT_MODEL,
    MAX_RATE_RPS,
    MAX_SLO_MS,
    MAX_USD_PER_GPU_HOUR,
    MIN_SLO_MS,
    PERCENTILES,
    TCO,
    BadValue,
    Choices,
    PageInputs,
    UrlWarning,
    apply_parsers,
    lower_text,
    number_text,
    parse_choice,
    parse_float,
    parse_int,
    parse_percentile,
    parse_workload,
    query_texts,
    to_query,
)
from llmcap.app.state.workload_url import (
    SAMPLE_KEYS,
    WORKLOAD_KEYS,
    WorkloadInputs,
    parse_workload_keys,
    plan_fields,
    workload_query,
)
from llmcap.catalog.loader import Catalog, normalize_id
from llmcap.catalog.schema import Frozen
from llmcap.load.day import presets
from llmcap.plan.price_options import OPTIONS
from llmcap.plan.request import (
    AUTO_ENGINES,
    DEFAULT_WEIGHTS,
    Candidate,
    PlanRequest,
    workload_traffic,
)
from llmcap.scenario import ENGINES, MAX_TOKENS, PRICE_BASES, Pricing, Slo

AUTO_KV = "auto"  # the weight format's own KV-cache format
ALL = "all"
MAX_PLAN_DEVICES = 4096  # PlanRequest.max_devices' bound
MAX_TOP = 100
MIN_WHATIF_PCT, MAX_WHATIF_PCT = -90.0, 1000.0  # a device at 10% to 11x of its catalogued figure
MAX_TRAFFIC_X = 1000.0
MAX_HW_CHARS = 4000  # a list of every device id fits
MAX_USD_PER_HOUR = 1e7
KEYS = (
    "model", "workload", "isl", "osl", "rate", "ttft", "tpot", "pct", "e2e", "hw", "prov", "usd",
    "maxdev", "maxusd", "w", "kv", "engine", "basis", "robust", "disagg", "mixed", "top", "xbw", "xflops", "xprice",
    "xrate", "sens", "day", "pricing", "scaleup", "minrep", "budget", *WORKLOAD_KEYS, *SAMPLE_KEYS,
)  # fmt: skip
MAX_SCALE_UP_S = 86_400.0
MAX_MIN_REPLICAS = 1000
MAX_MISS_BUDGET_PCT = 50.0
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class PlanInputs(Frozen):
    """Everything the Plan page asks for. Defaults are the page's landing request.

    Rate 10 req/s and the SLOs (2 s TTFT, 100 ms TPOT at p90, as on the Estimate page) are a judgement call
    for a small interactive chat service, not a published figure.
    """

    model: str = Field(default=DEFAULT_MODEL, min_length=1, max_length=200)
    workload: str | None = None  # a preset sets the lengths, their spread and the arrival burstiness
    input_len: int = Field(default=1024, ge=1, le=MAX_TOKENS)
    output_len: int = Field(default=256, ge=1, le=MAX_TOKENS)
    rate_rps: float = Field(default=10.0, gt=0, le=MAX_RATE_RPS)
    ttft_ms: float = Field(default=2000.0, ge=MIN_SLO_MS, le=MAX_SLO_MS)
    tpot_ms: float = Field(default=100.0, ge=MIN_SLO_MS, le=MAX_SLO_MS)
    pct: int = 90
    e2e_ms: float | None = Field(default=None, ge=MIN_SLO_MS, le=MAX_SLO_MS)
    hardware: tuple[str, ...] | None = None  # None: every device
    provider: str | None = None  # None: any provider (or purchase price)
    usd_per_gpu_hour: float | None = Field(default=None, gt=0, le=MAX_USD_PER_GPU_HOUR)
    max_devices: int = Field(default=64, ge=1, le=MAX_PLAN_DEVICES)
    max_usd_per_hour: float | None = Field(default=None, gt=0, le=MAX_USD_PER_HOUR)
    weights: tuple[str, ...] = Field(default=DEFAULT_WEIGHTS, min_length=1)
    kv: tuple[str, ...] = Field(default=(AUTO_KV,), min_length=1)
    engines: tuple[str, ...] = Field(default=(AUTO_ENGINES,), min_length=1)
    price_basis: str = Field(default="cloud", description="cloud | owned | both (llmcap.plan.request.PRICE_BASES)")
    robust: bool = False
    allow_disagg: bool = False
    allow_mixed: bool = False
    top: int = Field(default=10, ge=1, le=MAX_TOP)
    # what-ifs (llmcap.plan.whatif): percent changes of every device's memory bandwidth, compute and price, and a
    # traffic multiplier; `sensitivity` asks for the (slower) cost sensitivity table
    whatif_bw_pct: float = Field(default=20.0, ge=MIN_WHATIF_PCT, le=MAX_WHATIF_PCT)
    whatif_compute_pct: float = Field(default=20.0, ge=MIN_WHATIF_PCT, le=MAX_WHATIF_PCT)
    whatif_price_pct: float = Field(default=-20.0, ge=MIN_WHATIF_PCT, le=MAX_WHATIF_PCT)
    whatif_traffic_x: float = Field(default=2.0, gt=0, le=MAX_TRAFFIC_X)
    sensitivity: bool = False
    # the day view: a day preset (None: no day view), the price options, replica start time (None: computed),
    # minimum replicas, and the SLO-miss budget in % of requests
    day: str | None = None
    pricing: tuple[str, ...] = Field(default=OPTIONS, min_length=1)
    scale_up_s: float | None = Field(default=None, gt=0, le=MAX_SCALE_UP_S)
    min_replicas: int = Field(default=1, ge=0, le=MAX_MIN_REPLICAS)
    slo_miss_budget_pct: float = Field(default=1.0, ge=0, le=MAX_MISS_BUDGET_PCT)
    extra: WorkloadInputs = Field(default_factory=WorkloadInputs, description="sessions, prefix cache, offload")

    @field_validator("pct")
    @classmethod
    def _pct(cls, v: int) -> int:
        if v not in PERCENTILES:
            raise ValueError(f"pct (the objectives' percentile) must be one of {PERCENTILES}")
        return v

    @field_validator("hardware")
    @classmethod
    def _hw(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return v or None  # an empty selection means every device


def plan_defaults(choices: Choices) -> PlanInputs:
    """The landing inputs, with the catalog's first entries standing in for default ids it lacks."""
    base = choices.defaults()
    weights = tuple(w for w in DEFAULT_WEIGHTS if w in choices.weight_formats) or (base.weight_format,)
    return PlanInputs(model=base.model, weights=weights)


# -- parsing ----------------------------------------------------------------------------------------


def _bool(text: str) -> bool:
    t = text.strip().lower()
    if t in TRUE:
        return True
    if t in FALSE:
        return False
    raise BadValue("must be 1 or 0")


def _items(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _list(key: str, text: str, lookup, what: str, warn_item) -> tuple[str, ...]:
    """Each comma-separated item through `lookup` (None = unknown); duplicates dropped. Unknown items are
    warned about one by one, unless none is known: then the whole value is bad."""
    out: list[str] = []
    unknown: list[str] = []
    for item in _items(text):
        hit = lookup(item)
        if hit is None:
            unknown.append(item)
        elif hit not in out:
            out.append(hit)
    if not out:
        raise BadValue(f"no known {what}")
    for item in unknown:
        warn_item(key, item, f"unknown {what}")
    return tuple(out)


def parse_plan_query(params: Mapping[str, object], choices: Choices) -> tuple[PlanInputs, list[UrlWarning]]:
    """Inputs from URL query parameters; a bad value gets a warning and its default. Never raises."""
    base = plan_defaults(choices)
    c = choices
    warnings: list[UrlWarning] = []

    def warn(key: str, value: str, reason: str, fallback: object) -> None:
        warnings.append(UrlWarning(key=key, value=value, reason=reason, fallback=f"the default ({_show(fallback)})"))

    def warn_item(key: str, value: str, reason: str) -> None:
        warnings.append(UrlWarning(key=key, value=value, reason=reason, fallback=""))

    raw = query_texts(params, KEYS, warnings, lambda key, text, why: warn(key, text, why, getattr(base, _FIELD[key])
                                                                          if key in _FIELD else None),
                      limits={"hw": MAX_HW_CHARS})  # fmt: skip

    def one(options: Mapping[str, str], key_of, what: str, none_word: str | None = None):
        def parse(t: str) -> str | None:
            if none_word is not None and t.strip().lower() == none_word:
                return None
            return parse_choice(t, options, key_of, what)

        return parse

    def many(key: str, options: Mapping[str, str], key_of, what: str, all_word: str | None = None):
        def parse(t: str) -> tuple[str, ...] | None:
            if all_word is not None and t.strip().lower() == all_word:
                return None
            return _list(key, t, lambda s: options.get(key_of(s)), what, warn_item)

        return parse

    def number(lo: float, hi: float, none_word: str | None = None):
        return lambda t: None if none_word and t.strip().lower() == none_word else parse_float(t, lo, hi)

    engines = {e: e for e in (AUTO_ENGINES, *ENGINES)}
    parsers = {
        "model": one(c.models, lower_text, "model"),
        "workload": lambda t: parse_workload(t, c),
        "isl": lambda t: parse_int(t, 1, MAX_TOKENS),
        "osl": lambda t: parse_int(t, 1, MAX_TOKENS),
        "rate": number(0, MAX_RATE_RPS),
        "ttft": number(MIN_SLO_MS, MAX_SLO_MS),
        "tpot": number(MIN_SLO_MS, MAX_SLO_MS),
        "pct": parse_percentile,
        "e2e": number(MIN_SLO_MS, MAX_SLO_MS, "none"),
        "hw": many("hw", c.hardware, normalize_id, "hardware id", ALL),
        "prov": one(c.providers, lower_text, "cloud provider", "any"),
        "usd": number(0, MAX_USD_PER_GPU_HOUR, "none"),
        "maxdev": lambda t: parse_int(t, 1, MAX_PLAN_DEVICES),
        "maxusd": number(0, MAX_USD_PER_HOUR, "none"),
        "w": many("w", c.weight_formats, normalize_id, "weight format"),
        "kv": many("kv", {**c.kv_formats, AUTO_KV: AUTO_KV}, normalize_id, "KV-cache format"),
        "engine": many("engine", engines, lower_text, "engine"),
        "basis": one({b: b for b in PRICE_BASES}, lower_text, "price basis"),
        "robust": _bool,
        "disagg": _bool,
        "mixed": _bool,
        "top": lambda t: parse_int(t, 1, MAX_TOP),
        "xbw": _pct_change,
        "xflops": _pct_change,
        "xprice": _pct_change,
        "xrate": number(0, MAX_TRAFFIC_X),
        "sens": _bool,
        "day": one({p: p for p in presets()}, lower_text, "day preset", "none"),
        "pricing": lambda t: (
            OPTIONS
            if t.strip().lower() == ALL
            else _list(
                "pricing",
                t,
                lambda s: s.strip().lower() if s.strip().lower() in OPTIONS else None,
                "price option",
                warn_item,
            )
        ),
        "scaleup": number(0, MAX_SCALE_UP_S, "auto"),
        "minrep": lambda t: parse_int(t, 0, MAX_MIN_REPLICAS),
        "budget": _share_pct,
    }
    got = apply_parsers(raw, {key: (_FIELD[key], parse) for key, parse in parsers.items()}, base, warn)
    got["extra"] = parse_workload_keys(raw, warn, samples=True)
    if got.get("workload"):
        got["input_len"], got["output_len"] = c.lengths(got["workload"])
    return base.model_copy(update=got), warnings


_FIELD = {
    "model": "model", "workload": "workload", "isl": "input_len", "osl": "output_len", "rate": "rate_rps",
    "ttft": "ttft_ms", "tpot": "tpot_ms", "pct": "pct", "e2e": "e2e_ms", "hw": "hardware",
    "prov": "provider", "usd": "usd_per_gpu_hour", "maxdev": "max_devices", "maxusd": "max_usd_per_hour",
    "w": "weights", "kv": "kv", "engine": "engines", "basis": "price_basis", "robust": "robust",
    "disagg": "allow_disagg", "mixed": "allow_mixed", "top": "top",
    "xbw": "whatif_bw_pct", "xflops": "whatif_compute_pct", "xprice": "whatif_price_pct", "xrate": "whatif_traffic_x",
    "sens": "sensitivity", "day": "day", "pricing": "pricing", "scaleup": "scale_up_s", "minrep": "min_replicas",
    "budget": "slo_miss_budget_pct",
}  # fmt: skip


def _share_pct(text: str) -> float:
    """A percent of requests in [0, MAX_MISS_BUDGET_PCT] (0 allowed: no miss tolerated)."""
    t = text.strip().removesuffix("%")
    if t in ("0", "0.0", "+0"):
        return 0.0
    return parse_float(t, 0, MAX_MISS_BUDGET_PCT)


def _pct_change(text: str) -> float:
    """A percent change such as `20`, `+20`, `-15` or `20%`."""
    t = text.strip().removesuffix("%")
    try:
        v = float(t) if t.isascii() and len(t) <= 32 else float("nan")
    except ValueError:
        v = float("nan")
    if v != v or v in (float("inf"), float("-inf")):
        raise BadValue("not a percent change")
    if not MIN_WHATIF_PCT <= v <= MAX_WHATIF_PCT:
        raise BadValue(f"must be between {MIN_WHATIF_PCT:g}% and +{MAX_WHATIF_PCT:g}%")
    return v


def _show(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def plan_query(inputs: PlanInputs) -> dict[str, str]:
    """Query parameters for `inputs`, in a fixed order; optional limits only when set, lengths only without
    a preset, `hw=all` for every device."""
    q = {"model": inputs.model}
    if inputs.workload:
        q["workload"] = inputs.workload
    else:
        q["isl"], q["osl"] = str(inputs.input_len), str(inputs.output_len)
    q.update(rate=number_text(inputs.rate_rps), ttft=number_text(inputs.ttft_ms), tpot=number_text(inputs.tpot_ms))
    q["pct"] = str(inputs.pct)
    if inputs.e2e_ms is not None:
        q["e2e"] = number_text(inputs.e2e_ms)
    q["hw"] = ",".join(inputs.hardware) if inputs.hardware else ALL
    for key in ("prov", "usd"):
        value = getattr(inputs, _FIELD[key])
        if value is not None:
            q[key] = _show(value)
    q["maxdev"] = str(inputs.max_devices)
    if inputs.max_usd_per_hour is not None:
        q["maxusd"] = number_text(inputs.max_usd_per_hour)
    q.update(w=",".join(inputs.weights), kv=",".join(inputs.kv), engine=",".join(inputs.engines))
    q["basis"] = inputs.price_basis
    q["robust"] = _show(inputs.robust)
    q.update(disagg=_show(inputs.allow_disagg), mixed=_show(inputs.allow_mixed), top=str(inputs.top))
    q.update(xbw=number_text(inputs.whatif_bw_pct), xflops=number_text(inputs.whatif_compute_pct))
    q.update(xprice=number_text(inputs.whatif_price_pct), xrate=number_text(inputs.whatif_traffic_x))
    q["sens"] = _show(inputs.sensitivity)
    if inputs.day is not None:
        q["day"] = inputs.day
    if inputs.pricing != OPTIONS:
        q["pricing"] = ",".join(inputs.pricing)
    if inputs.scale_up_s is not None:
        q["scaleup"] = number_text(inputs.scale_up_s)
    if inputs.min_replicas != 1:
        q["minrep"] = str(inputs.min_replicas)
    if inputs.slo_miss_budget_pct != 1.0:
        q["budget"] = number_text(inputs.slo_miss_budget_pct)
    return q | workload_query(inputs.extra)


def whatif_changes(inputs: PlanInputs) -> tuple[tuple[str, dict[str, float]], ...]:
    """The page's what-ifs in plan.whatif's form: (label, PlanRequest fields to change); a rate is a multiplier."""

    def signed(pct: float) -> str:
        return f"{pct:+g}%"

    return (
        (f"memory bandwidth {signed(inputs.whatif_bw_pct)}", {"mem_bw_scale": 1 + inputs.whatif_bw_pct / 100}),
        (f"compute {signed(inputs.whatif_compute_pct)}", {"compute_scale": 1 + inputs.whatif_compute_pct / 100}),
        (f"prices {signed(inputs.whatif_price_pct)}", {"price_scale": 1 + inputs.whatif_price_pct / 100}),
        (f"traffic x{inputs.whatif_traffic_x:g}", {"rate_rps": inputs.whatif_traffic_x}),
    )


# -- the planner's request and the Estimate link ----------------------------------------------------------


def plan_request(inputs: PlanInputs, catalog: Catalog) -> PlanRequest:
    """The planner's request. A workload preset gives its mean lengths, their coefficients of variation and
    its arrival burstiness (catalogs/workloads.yaml); fixed lengths have no spread and Poisson arrivals.
    Raises ValueError (pydantic's ValidationError) for a request the planner cannot take."""
    traffic: dict[str, object] = {"input_len": inputs.input_len, "output_len": inputs.output_len}
    preset = catalog.workload(inputs.workload) if inputs.workload else None
    if preset is not None:
        traffic = workload_traffic(preset)
    traffic |= plan_fields(inputs.extra, preset, float(traffic["output_len"]), float(traffic.get("output_cv", 0.0)))
    return PlanRequest(
        model=inputs.model,
        rate_rps=inputs.rate_rps,
        **traffic,
        slo=Slo(ttft_ms=inputs.ttft_ms, tpot_ms=inputs.tpot_ms, pct=float(inputs.pct), e2e_ms=inputs.e2e_ms),
        hardware=inputs.hardware,
        pricing=Pricing(basis=inputs.price_basis, provider=inputs.provider, usd_per_gpu_hour=inputs.usd_per_gpu_hour),
        max_devices=inputs.max_devices,
        max_usd_per_hour=inputs.max_usd_per_hour,
        weights=inputs.weights,
        kv=tuple(None if k == AUTO_KV else k for k in inputs.kv),
        engines=inputs.engines,
        robust=inputs.robust,
        allow_disagg=inputs.allow_disagg,
        allow_mixed=inputs.allow_mixed,
        top=inputs.top,
    )


def estimate_query(
    c: Candidate, inputs: PlanInputs, req: PlanRequest, hardware_ids: Mapping[str, str]
) -> dict[str, str] | None:
    """The Estimate page's query (llmcap.app.state.urlstate.to_query) for one planned deployment: its device, layout,
    replicas, formats and engine; the request's rate, lengths or preset, arrival burstiness, objectives and
    price basis; as concurrency the deployment's cap (max_seqs per replica x replicas), which only the
    closed-loop view uses. None where the row is not one device type in one layout over all its devices (a
    mix, a cross-device disaggregated pair, pools of different layouts): the Estimate page has no such
    scenario."""
    hw = hardware_ids.get(normalize_id(c.hardware))
    if hw is None or c.tp * c.pp * c.replicas != c.devices:
        return None
    gamma = abs(req.arrival_cv - 1.0) > 1e-9
    provider = req.pricing.provider
    if req.pricing.usd_per_gpu_hour is None and c.price_basis.startswith("owned"):
        provider = TCO
    try:
        page = PageInputs(
            model=inputs.model,
            hardware=hw,
            tp=c.tp,
            pp=c.pp,
            ep=c.ep,
            replicas=c.replicas,
            weight_format=c.weight_format,
            kv_format=c.kv_format,
            engine=c.engine,
            workload=inputs.workload,
            input_len=inputs.input_len,
            output_len=inputs.output_len,
            concurrency=max(1, c.max_seqs * c.replicas),
            rate_rps=req.rate_rps,
            arrival="gamma" if gamma else "poisson",
            cv=req.arrival_cv if gamma else DEFAULT_GAMMA_CV,
            provider=provider,
            usd_per_gpu_hour=req.pricing.usd_per_gpu_hour,
            ttft_ms=inputs.ttft_ms,
            tpot_ms=inputs.tpot_ms,
            pct=inputs.pct,
            extra=inputs.extra,
        )
    except ValueError:
        return None
    return to_query(page)
