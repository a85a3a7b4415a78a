"""`llmcap estimate`, `predict`, `validate` and `calibrate`."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import yaml
from pydantic import ValidationError

from llmcap.calibration import crossval
from llmcap.calibration.calibrate import calibrate, write_table
from llmcap.calibration.measured import default_data, skip_reasons
from llmcap.calibration.uncertainty import write_table as write_bands
from llmcap.calibration.validate import compare, summarize, worst
from llmcap.catalog.custom import with_custom
from llmcap.catalog.loader import catalog_dir, load_catalog
from llmcap.cli import workload_flags
from llmcap.economics.energy import DEFAULT_REGION
from llmcap.economics.operating_point import PointCosts, closed_loop_costs
from llmcap.estimate.predict import predict_rows
from llmcap.estimate.resolve import UnsupportedError
from llmcap.estimate.single import Estimate, estimate
from llmcap.io.output import FORMATS, render
from llmcap.load.rate import LoadEstimate, estimate_load
from llmcap.load.rate_types import METHODS
from llmcap.load.trace import parse_trace
from llmcap.model.hf_limits import ConfigError
from llmcap.model.hfconfig import parse_config
from llmcap.scenario import DEFAULT_REQUESTS, ENGINES, PRICE_BASES, Pricing, Scenario, Slo, Traffic, validation_text

MAX_PREDICT_BYTES = 50_000_000


def _concurrency(text: str) -> int | str:
    if text.strip().lower() == "max":
        return "max"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"concurrency must be an integer or 'max', not '{text}'") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("estimate", help="memory, latency and throughput of one scenario")
    p.add_argument("--model", help="catalog model id (Hugging Face id or alias)")
    p.add_argument("--model-config", type=Path, help="a Hugging Face config.json instead of a catalog id")
    p.add_argument("--hardware", required=True)
    helps = {
        "tp": "tensor-parallel devices per replica",
        "pp": "pipeline stages per replica",
        "ep": "expert-parallel degree inside tp (MoE)",
        "dp": "attention data-parallel degree inside tp (divides tp; MLA models keep 1/dp of the KV per device)",
        "replicas": "independent copies of the deployment",
    }
    for name, text in helps.items():
        p.add_argument(f"--{name}", type=int, default=1, help=f"{text} (default 1)")
    p.add_argument(
        "--weights",
        default=None,
        help="weight format id (llmcap catalog list formats; default: the checkpoint's format, e.g. nvfp4 for "
        "nvidia/...-FP4, else bf16)",
    )
    p.add_argument("--kv", default=None, help="KV-cache format id (default: the checkpoint's, else the engine's)")
    p.add_argument("--engine", default="generic", choices=ENGINES)
    p.add_argument("--input-len", type=int, help="prompt tokens (not needed with --workload or --trace)")
    p.add_argument("--output-len", type=int, help="generated tokens (not needed with --workload or --trace)")
    p.add_argument("--concurrency", type=_concurrency, help="closed loop: requests in flight, or 'max' (default 1)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    _register_load(p)
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("predict", help="estimate every row of a scenarios CSV")
    p.add_argument("--in", dest="inp", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("validate", help="compare predictions with measured CSVs")
    p.add_argument("--data", type=Path, nargs="+", help="measured CSVs (default: catalogs/measured/*.csv)")
    p.add_argument("--worst", type=int, default=10)
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument(
        "--cv",
        action="store_true",
        help="out of sample: refit leaving out each model, then each device, and predict the rows left out",
    )
    p.add_argument("--write", action="store_true", help="with --cv: write the error bands to catalogs/uncertainty.yaml")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("calibrate", help="fit efficiency parameters to the measured reference data")
    p.add_argument("--data", type=Path, nargs="+", help="measured CSVs (default: catalogs/measured/*.csv)")
    p.add_argument("--write", action="store_true", help="write catalogs/efficiency.yaml (else print it)")
    p.set_defaults(func=cmd_calibrate)


def _register_load(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("open loop (request rate), SLO, cost and energy")
    g.add_argument("--rate", type=float, help="open loop: requests per second (instead of --concurrency)")
    g.add_argument(
        "--method",
        choices=METHODS,
        default="simulate",
        help="open loop: simulate each request (default) or the analytic queueing model (milliseconds; "
        "narrower TTFT percentiles, max rate 10-15%% high: docs/method.md)",
    )
    g.add_argument("--arrival", choices=("poisson", "gamma"), help="arrival process (default: the preset's or poisson)")
    g.add_argument("--cv", type=float, help="coefficient of variation of gamma inter-arrival gaps (burstiness)")
    g.add_argument("--workload", help="workload preset for the lengths (llmcap catalog list workloads)")
    g.add_argument("--trace", type=Path, help="trace CSV: lengths drawn from it at --rate, or replayed without it")
    g.add_argument("--prefix-hit", type=float, help="share of each prompt found in the prefix cache, [0, 1)")
    g.add_argument("--spec-k", type=int, default=0, help="speculative decoding: draft tokens per step")
    g.add_argument("--spec-alpha", type=float, default=0.0, help="speculative decoding: acceptance rate")
    g.add_argument("--draft-cost", type=float, default=0.0, help="draft step time / target decode step time")
    g.add_argument("--on-full", choices=("preempt", "reject"), default="preempt", help="when the KV cache is full")
    g.add_argument("--requests", type=int, default=DEFAULT_REQUESTS, help="requests simulated at the rate")
    g.add_argument("--seed", type=int, default=0, help="seed of the simulated requests")
    g.add_argument("--ttft-ms", type=float, default=Slo().ttft_ms, help="time-to-first-token objective")
    g.add_argument("--tpot-ms", type=float, default=Slo().tpot_ms, help="time-per-output-token objective")
    g.add_argument("--slo-pct", type=float, default=Slo().pct, help="share of requests that must meet both (%%)")
    g.add_argument("--provider", help="price: cheapest current offering of this cloud provider")
    g.add_argument("--offering", help="price: a catalog cloud offering id (llmcap catalog list prices)")
    g.add_argument("--usd-per-gpu-hour", type=float, help="price: your own $ per device-hour")
    g.add_argument(
        "--price-basis",
        choices=PRICE_BASES,
        default="cloud",
        help="price: cloud (on-demand rental, default), owned (total cost of ownership: purchase + electricity), "
        "or both (rental where offered, else owned)",
    )
    g.add_argument("--pue", type=float, help="facility power usage effectiveness (default: catalogs/power.yaml)")
    g.add_argument("--region", default=DEFAULT_REGION, help="grid region for carbon (catalogs/carbon.yaml)")
    workload_flags.register(p)


OPEN_LOOP_ONLY = (
    "method", "arrival", "cv", "prefix_hit", "spec_k", "spec_alpha", "draft_cost", "on_full", "requests", "seed",
    "turns", "think_s", "new_tokens", "system_prompt_tokens", "prefix_cache", "kv_offload", "samples",
    "max_output_tokens", "lora_adapters", "lora_rank", "lora_targets",
)  # fmt: skip


def _catalog_default(model: str, which: str) -> str | None:
    """The format a catalog checkpoint id implies (bf16 weights and no KV choice for anything else)."""
    cat = load_catalog()
    return cat.default_weights(model) if which == "weights" else cat.default_kv(model)


def _scenario_from_args(args) -> Scenario:
    model = args.model or (str(args.model_config) if args.model_config else None)
    if not model:
        raise ValueError("give --model ID or --model-config PATH")
    lengths = (args.input_len, args.output_len)
    workload, trace = getattr(args, "workload", None), getattr(args, "trace", None)
    if workload is not None or trace is not None:
        if lengths != (None, None):
            raise ValueError(f"--{'workload' if workload else 'trace'} sets the lengths: drop --input-len/--output-len")
        if workload is not None:  # its mean lengths (the simulator draws the whole distribution)
            wl = load_catalog().workload(workload)
            args.input_len, args.output_len = max(1, round(wl.input_tokens.mean)), max(1, round(wl.output_tokens.mean))
        else:  # replaced by the trace's mean lengths in estimate_load
            args.input_len, args.output_len = 1, 1
    elif getattr(args, "turns", None) is not None and args.output_len is not None:
        args.input_len = args.input_len or 1  # sessions draw the prompts; replaced by their mean in estimate_load
    elif None in lengths:
        raise ValueError("give --input-len and --output-len (or --workload NAME or --trace FILE)")
    try:
        return Scenario(
            model=model,
            hardware=args.hardware,
            tp=args.tp,
            pp=args.pp,
            ep=args.ep,
            dp=args.dp,
            replicas=args.replicas,
            weight_format=args.weights or _catalog_default(model, "weights"),
            kv_format=args.kv or _catalog_default(model, "kv"),
            engine=args.engine,
            input_len=args.input_len,
            output_len=args.output_len,
            concurrency=args.concurrency if args.concurrency is not None else 1,
        )
    except ValidationError as exc:
        raise ValueError(validation_text(exc, "scenario")) from None


def load_config_file(path: Path):
    """Architecture from a user's config.json, with a clear error."""
    try:
        if path.stat().st_size > 5_000_000:
            raise ValueError(f"{path}: config.json larger than 5 MB")
        return parse_config(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read config.json: {exc}") from None
    except ConfigError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _options(args) -> tuple[Slo, Pricing]:
    """The SLO and price basis from the flags (ValueError with the flag's name when a value is bad)."""
    try:
        slo = Slo(ttft_ms=args.ttft_ms, tpot_ms=args.tpot_ms, pct=args.slo_pct)
    except ValidationError as exc:
        raise ValueError(
            _flag_text(exc, {"ttft_ms": "--ttft-ms", "tpot_ms": "--tpot-ms", "pct": "--slo-pct"})
        ) from None
    try:
        pricing = Pricing(
            provider=args.provider,
            offering=args.offering,
            usd_per_gpu_hour=args.usd_per_gpu_hour,
            basis=args.price_basis,
            pue=args.pue,
        )
    except ValidationError as exc:
        raise ValueError(_flag_text(exc, {"usd_per_gpu_hour": "--usd-per-gpu-hour", "pue": "--pue"})) from None
    return slo, pricing


def _load_spec(args) -> Traffic:
    fields = dict(
        rate_rps=args.rate,
        arrival=args.arrival,
        cv=args.cv,
        workload=args.workload if args.trace is None else None,
        prefix_hit=args.prefix_hit,
        spec_k=args.spec_k,
        spec_alpha=args.spec_alpha,
        draft_cost=args.draft_cost,
        on_full=args.on_full,
        requests=args.requests,
        seed=args.seed,
    )
    if args.trace is not None and args.workload is not None:
        raise ValueError("give --workload or --trace, not both")
    wl = load_catalog().workload(args.workload) if args.workload is not None and args.trace is None else None
    fields |= workload_flags.traffic_fields(args, wl)
    try:
        return Traffic(**fields)
    except ValidationError as exc:
        flags = {k: "--" + k.replace("_", "-") for k in fields} | {"rate_rps": "--rate"}
        raise ValueError(_flag_text(exc, flags)) from None


def _flag_text(exc: ValidationError, flags: dict[str, str]) -> str:
    parts = []
    for e in exc.errors():
        name = str(e["loc"][0]) if e["loc"] else ""
        parts.append(f"{flags.get(name, name or 'value')}: {e['msg']} (got {e.get('input')!r})")
    return "; ".join(parts)


def cmd_estimate(args) -> int:
    """Exit 0 when the scenario fits, 1 when it does not fit or the engine does not run it (2: bad input)."""
    try:
        return _estimate(args)
    except UnsupportedError as exc:
        if args.format == "json":
            print(json.dumps({"fits": False, "status": "unsupported", "message": str(exc)}, indent=2))
        else:
            print(f"unsupported: {exc}")
        return 1


def _estimate(args) -> int:
    open_loop = args.rate is not None or args.trace is not None
    if open_loop and args.concurrency is not None:
        raise ValueError("give --rate (open loop) or --concurrency (closed loop), not both")
    if not open_loop:
        extra = [k for k in OPEN_LOOP_ONLY if getattr(args, k) != _DEFAULTS[k]]
        if extra:
            raise ValueError(f"--{extra[0].replace('_', '-')} needs --rate (or --trace): it shapes open-loop traffic")
    slo, pricing = _options(args)
    scn = _scenario_from_args(args)
    catalog = load_catalog()
    if args.model_config:  # the uploaded model joins the catalog under its path, as the scenario names it
        catalog = with_custom(catalog, models={scn.model: load_config_file(args.model_config)})
    if open_loop:
        traffic = _load_spec(args)
        trace = parse_trace(args.trace) if args.trace is not None else None
        le = estimate_load(scn, traffic, slo, pricing, args.region, method=args.method, trace=trace, catalog=catalog)
        if args.format == "json":
            print(json.dumps(load_json(le), indent=2))
        else:
            print(load_text(le))
        return 0 if le.fits else 1
    est = estimate(scn, catalog)
    costs = closed_loop_costs(est, pricing, args.region, catalog=catalog) if est.fits else None
    if args.format == "json":
        print(json.dumps(estimate_json(est, costs), indent=2))
    else:
        print(estimate_text(est, costs))
    return 0 if est.fits else 1


_DEFAULTS = {k: None for k in ("arrival", "cv", "prefix_hit", *workload_flags.SESSION_FLAGS)} | {
    "turns": None,
    "prefix_cache": None,
    "kv_offload": None,
    "samples": None,
    "max_output_tokens": None,
    "lora_adapters": None,
    "lora_rank": None,
    "lora_targets": None,
    "method": "simulate",
    "spec_k": 0,
    "spec_alpha": 0.0,
    "draft_cost": 0.0,
    "on_full": "preempt",
    "requests": DEFAULT_REQUESTS,
    "seed": 0,
}
COST_KEYS = ("usd_per_hour", "usd_per_million_input_tokens", "usd_per_million_output_tokens", "usd_per_request")
ENERGY_KEYS = ("watts", "joules_per_output_token", "kwh_per_day", "gco2e_per_million_output_tokens")


def finite_json(value, path: str = "", found: list[str] | None = None):
    """`value` with every non-finite float replaced by None; the dotted paths replaced go into `found`."""
    found = found if found is not None else []
    if isinstance(value, float) and not math.isfinite(value):
        found.append(path)
        return None
    if isinstance(value, dict):
        return {k: finite_json(v, f"{path}.{k}" if path else str(k), found) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    return value


def _with_null_note(d: dict) -> dict:
    found: list[str] = []
    out = finite_json(d, found=found)
    if found:
        shown = ", ".join(found[:8]) + (f" and {len(found) - 8} more" if len(found) > 8 else "")
        out.setdefault("notes", []).append(f"not finite, shown as null: {shown}")
    return out


def _cost_energy(costs: PointCosts | None) -> dict:
    """The `cost` and `energy` blocks (every documented key present; null where there is no figure)."""
    cost = costs.cost.model_dump(mode="python") if costs and costs.cost else dict.fromkeys(COST_KEYS)
    energy = costs.energy.model_dump(mode="python") if costs else dict.fromkeys(ENERGY_KEYS)
    return {"cost": cost, "energy": energy}


def estimate_json(est: Estimate, costs: PointCosts | None = None) -> dict:
    """The closed-loop estimate as JSON, with cost and energy at its throughput."""
    d = est.model_dump(mode="json")
    d["fits"] = est.fits
    d.update(_cost_energy(costs))
    if costs:
        d["notes"] = d.get("notes", []) + list(costs.notes)
    return _with_null_note(d)


def load_json(le: LoadEstimate) -> dict:
    """The open-loop estimate as JSON: the keys of issue 4's interface plus detail."""
    d = le.model_dump(mode="python")
    d["mode"] = "rate"
    for key in ("cost", "energy"):
        if d.get(key) is None:
            d[key] = dict.fromkeys(COST_KEYS if key == "cost" else ENERGY_KEYS)
    for key in ("ttft_ms", "tpot_ms", "e2e_ms", "queue_ms"):
        if d.get(key) is None:
            d[key] = dict.fromkeys(("mean", "p50", "p90", "p95", "p99"))
    if d.get("throughput") is None:
        d["throughput"] = dict.fromkeys(("requests_per_s", "input_tokens_per_s", "output_tokens_per_s"))
    return _with_null_note(json.loads(json.dumps(d, default=str, allow_nan=True)))


def estimate_text(est: Estimate, costs: PointCosts | None = None) -> str:
    scn, m = est.scenario, est.memory
    lines = [
        f"{est.model_id} on {scn.devices} x {est.hardware_name} (tp={scn.tp} pp={scn.pp} ep={scn.ep} "
        f"replicas={scn.replicas}), weights {scn.weight_format}, math {est.math}, engine {scn.engine}",
        f"fits: {'yes' if est.fits else 'NO'} - {est.message}",
        f"memory per device: weights {m.weights_gb:.2f} GB, KV {m.kv_gb:.2f} GB ({m.kv_gb_per_sequence:.3f} GB/seq), "
        f"activations {m.activations_gb:.2f} GB, runtime {m.overhead_gb:.2f} GB, reserved {m.reserved_gb:.2f} GB, "
        f"free {m.free_gb:.2f} GB of {m.capacity_gb:.1f} GB; max concurrency {m.max_concurrency}",
    ]
    for note in est.notes:
        lines.append(f"note: {note}")
    if est.serving and est.prefill and est.decode:
        s, p, d = est.serving, est.prefill, est.decode
        lines += [
            f"prefill ({scn.input_len} tokens): {p.time_ms:.2f} ms = compute {p.compute_ms:.2f} + memory "
            f"{p.memory_ms:.2f} + comm {p.comm_ms:.2f} + overhead {p.overhead_ms:.2f} ms -> {p.bound}-bound",
            f"decode step (batch {d.batch:.0f}): {d.time_ms:.2f} ms = compute {d.compute_ms:.2f} + memory "
            f"{d.memory_ms:.2f} + comm {d.comm_ms:.2f} + overhead {d.overhead_ms:.2f} ms -> {d.bound}-bound",
            f"concurrency {s.concurrency}: TTFT {s.ttft_ms:.1f} ms, TPOT {s.tpot_ms:.2f} ms, E2E {s.e2e_ms:.0f} ms, "
            f"{s.requests_per_s:.2f} req/s, {s.output_tokens_per_s:.0f} output tok/s "
            f"({s.output_tokens_per_s_per_device:.0f} per device)",
            *_cost_energy_lines(costs),
            "",
        ]
        rows = [
            {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.model_dump().items()} for r in est.operators
        ]
        lines.append(render(rows, "table"))
    return "\n".join(lines)


def _cost_energy_lines(costs: PointCosts | None) -> list[str]:
    if costs is None:
        return []
    lines = []
    c, e = costs.cost, costs.energy
    if c is not None:
        where = f"{c.provider} {c.instance}" if c.provider else c.basis
        lines.append(
            f"cost: ${c.usd_per_hour:,.2f}/h ({where}, {c.devices_billed} devices billed): "
            f"${_n(c.usd_per_million_input_tokens)}/M input, ${_n(c.usd_per_million_output_tokens)}/M output "
            f"(${_n(c.usd_per_million_output_tokens_all_in)} all-in), ${_n(c.usd_per_request)}/request, "
            f"{c.idle_share:.0%} idle"
        )
    if e.watts is not None:
        lines.append(
            f"energy: {e.watts:,.0f} W boards, {_n(e.joules_per_output_token)} J/output token, "
            f"{e.kwh_per_day:,.1f} kWh/day at PUE {e.pue:g}, {_n(e.gco2e_per_million_output_tokens)} gCO2e/M output "
            f"tokens ({e.region}, {e.gco2e_per_kwh:g} g/kWh)"
        )
    return lines + [f"note: {n}" for n in costs.notes + e.notes + (c.notes if c else [])]


def _n(x: float | None) -> str:
    """4 significant digits; 'n/a' when missing or infinite."""
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.4g}"


def load_text(le: LoadEstimate) -> str:
    """The open-loop estimate as text: the set-up, latency percentiles, capacity, SLO, cost and energy."""
    scn, m, t = le.scenario, le.memory, le.traffic
    lines = [
        f"{le.model_id} on {scn.devices} x {le.hardware_name} (tp={scn.tp} pp={scn.pp} ep={scn.ep} "
        f"replicas={scn.replicas}), weights {scn.weight_format}, engine {scn.engine}",
        f"traffic: {t.source}; {t.requests:,} requests, mean {t.mean_input_tokens:,.0f} in / "
        f"{t.mean_output_tokens:,.0f} out tokens" + (f", prefix-cache hit {t.prefix_hit:.0%}" if t.prefix_hit else ""),
        f"fits: {'yes' if le.fits else 'NO'} - {le.message}",
        f"memory per device: weights {m.weights_gb_per_device:.2f} GB, KV {m.kv_gb_per_device:.2f} GB at the mean "
        f"batch, capacity {m.capacity_gb:.1f} GB; max concurrency {m.max_concurrency}",
    ]
    if le.fits:
        lines.append(f"at {le.rate_rps:g} req/s ({'stable' if le.stable else 'OVERLOADED'}):")
        for name in ("ttft_ms", "tpot_ms", "e2e_ms", "queue_ms"):
            v = getattr(le, name)
            lines.append(
                f"  {name[:-3].upper():<5} mean {_n(v.mean)}  p50 {_n(v.p50)}  p90 {_n(v.p90)}  p99 {_n(v.p99)} ms"
            )
        tp = le.throughput
        lines += [
            f"throughput: {tp.requests_per_s:.2f} req/s, {tp.output_tokens_per_s:,.0f} output tok/s; "
            f"mean decode batch {le.mean_batch:.1f}, engine busy {le.utilization:.0%}, "
            f"preempted {le.preempted_fraction:.1%}, rejected {le.rejected_fraction:.1%}",
            f"max sustainable rate {le.max_rate_rps:.3g} req/s; goodput {le.goodput_rps:.3g} req/s "
            f"(p{le.slo.pct:g} TTFT <= {le.slo.ttft_ms:g} ms and TPOT <= {le.slo.tpot_ms:g} ms)",
            f"SLO attainment at this rate: {le.slo_attainment:.1%} of requests meet both "
            f"(p{le.slo.pct:g} TTFT {_n(le.slo_ttft_ms)} ms, TPOT {_n(le.slo_tpot_ms)} ms)",
            f"bound: prefill {le.bound.prefill}, decode {le.bound.decode}",
            *workload_flags.workload_lines(le),
            *_cost_energy_lines(
                PointCosts(cost=le.cost, energy=le.energy, notes=[]) if le.energy is not None else None
            ),
            f"method: {le.method}",
        ]
    lines += [f"note: {n}" for n in le.notes + (t.notes if t else [])]
    return "\n".join(lines)


def cmd_predict(args) -> int:
    path: Path = args.inp
    try:
        if path.stat().st_size > MAX_PREDICT_BYTES:
            raise ValueError(f"{path}: larger than {MAX_PREDICT_BYTES} bytes")
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: cannot read CSV: {exc}") from None
    if not rows:
        raise ValueError(f"{path}: no rows")
    missing = {"model", "hardware", "input_len", "output_len", "concurrency"} - set(rows[0])
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    out = predict_rows(rows)
    args.out.write_text(render(out, "csv"), encoding="utf-8")
    bad = sum(r["status"] != "ok" for r in out)
    print(f"wrote {len(out)} rows to {args.out} ({bad} not ok)", file=sys.stderr)
    return 0


def cmd_validate(args) -> int:
    paths = args.data or default_data()
    if args.write and not args.cv:
        raise ValueError("--write needs --cv (the error bands come from the cross-validated residuals)")
    if args.cv:
        return _validate_cv(args, paths)
    rows, skipped = compare(paths)
    used = [r for r in rows if r.error is not None]
    report = {
        "files": [str(p) for p in paths],
        "rows": len(rows),
        "compared": len(used),
        "not_fit_or_error": len(rows) - len(used),
        "overall": summarize(rows, "metric"),
        "by_device_class": summarize(rows, "device_class"),
        "by_hardware": summarize(rows, "hardware"),
        "by_engine": summarize(rows, "engine"),
        "worst": worst(rows, args.worst),
        "skipped": skipped,
        "skipped_by_reason": skip_reasons(skipped),
    }
    if args.format == "json":
        print(json.dumps(report, indent=2))
        return 0
    if args.format == "csv":
        print(
            render(report["overall"] + report["by_device_class"] + report["by_hardware"] + report["by_engine"], "csv")
        )
        return 0
    print(f"{report['compared']} of {report['rows']} measured values compared ({report['not_fit_or_error']} not)")
    _print_skipped(skipped)
    for title in ("overall", "by_device_class", "by_hardware", "by_engine", "worst"):
        print(f"\n{title.replace('_', ' ')}:")
        print(render(report[title], "table"))
    return 0


def _print_skipped(skipped: list[str]) -> None:
    for reason, count in skip_reasons(skipped).items():
        print(f"skipped {count} rows: {reason}")


def _validate_cv(args, paths: list[Path]) -> int:
    report = crossval.run(paths, load_catalog())
    if args.write:
        report["wrote"] = str(write_bands(report["uncertainty"]))
    if args.format == "json":
        print(json.dumps(report, indent=2))
        return 0
    if args.format == "csv":
        print(render(report["summary"], "csv"))
        return 0
    print(
        f"{report['compared']} of {report['rows']} measured values compared out of sample: "
        f"{report['groups']['leave_model_out']} models and {report['groups']['leave_device_out']} devices left out "
        f"in turn, each refitted ({report['seconds']} s; a scheme with one group has nothing to fit on). "
        "Columns: in = in sample, lomo = leave one model out, "
        "lodo = leave one device out; mape = mean, mdape = median absolute error (%), w25 = share within 25% (%)."
    )
    for reason, count in report["skipped_by_reason"].items():
        print(f"skipped {count} rows: {reason}")
    for by in crossval.SLICES:
        print(f"\nby {by.replace('_', ' ')}:")
        print(render([r for r in report["summary"] if r["slice"] == by], "table"))
    print("\n80% error bands, nested coverage (each group judged by bands fitted without its rows):")
    print(render(report["coverage"], "table"))
    print(f"coverage of the written bands on their own residuals: {report['coverage_in_sample_pct']}%")
    if args.write:
        print(f"wrote {report['wrote']} ({len(report['uncertainty']['bands'])} bands)")
    return 0


def cmd_calibrate(args) -> int:
    paths = args.data or default_data()
    table = calibrate(paths, load_catalog())
    if args.write:
        write_table(table)
        print(f"wrote {catalog_dir() / 'efficiency.yaml'} from {len(paths)} files, {table['rows_used']} values")
    else:
        print(yaml.safe_dump(table, sort_keys=False))
    return 0
