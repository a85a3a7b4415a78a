"""`llmcap plan`: the cheapest deployments that serve a rate within TTFT/TPOT objectives."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from llmcap.catalog.loader import load_catalog
from llmcap.cli import plan_day, workload_flags
from llmcap.io.output import FORMATS, render, to_json
from llmcap.load.budget import capped_moments
from llmcap.load.trace import TraceError, parse_trace
from llmcap.load.traffic import replay_trace, summarize
from llmcap.plan.launch import export, targets
from llmcap.plan.planner import plan
from llmcap.plan.request import AUTO_ENGINES, DEFAULT_WEIGHTS, Plan, PlanRequest, workload_traffic
from llmcap.plan.sessions import session_traffic
from llmcap.plan.whatif import sensitivity, what_ifs
from llmcap.scenario import ENGINES, PRICE_BASES, Pricing, Slo

TABLE_COLUMNS = (
    "hardware",
    "devices",
    "tp",
    "pp",
    "ep",
    "replicas",
    "weight_format",
    "engine",
    "mode",
    "ttft_ms_p90",
    "tpot_ms_p90",
    "goodput_rps",
    "usd_per_hour",
    "usd_per_million_output_tokens",
    "joules_per_output_token",
    "slo_margin_pct",
    "price_basis",
)


def _csv_list(text: str) -> tuple[str, ...]:
    items = tuple(t.strip() for t in text.split(",") if t.strip())
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="rank the cheapest deployments that meet latency objectives at a request rate")
    p.add_argument("--model", required=True, help="catalog model id")
    shape = p.add_argument_group("traffic (one of: --workload, --input-len/--output-len, --trace)")
    shape.add_argument("--workload", help="workload preset id (llmcap catalog list workloads)")
    shape.add_argument("--input-len", type=float, help="mean prompt tokens")
    shape.add_argument("--output-len", type=float, help="mean output tokens")
    shape.add_argument("--trace", type=Path, help="trace CSV (timestamp,input_tokens,output_tokens or BurstGPT's)")
    p.add_argument("--rate", type=float, help="requests per second (default with --trace: the trace's mean rate)")
    p.add_argument("--arrival-cv", type=float, help="inter-arrival cv (1 = Poisson; default: workload's or 1)")
    p.add_argument("--ttft-ms", type=float, required=True)
    p.add_argument("--tpot-ms", type=float, required=True)
    p.add_argument("--e2e-ms", type=float, help="optional end-to-end objective at the same percentile")
    p.add_argument("--slo-pct", type=float, default=90.0, help="share of requests that must meet both objectives")
    p.add_argument("--min-output-tokens-per-s", type=float)
    p.add_argument("--hardware", type=_csv_list, help="device ids, comma-separated (default: every device)")
    p.add_argument("--provider", help="cloud provider whose prices to use (default: cheapest of any)")
    p.add_argument("--usd-per-gpu-hour", type=float, help="your own price per device-hour instead of the catalog's")
    p.add_argument("--max-devices", type=int, default=64)
    p.add_argument("--max-usd-per-hour", type=float)
    p.add_argument("--weights", type=_csv_list, default=DEFAULT_WEIGHTS, help="weight formats, comma-separated")
    p.add_argument("--kv", type=_csv_list, help="KV-cache formats, comma-separated (default: each format's)")
    p.add_argument(
        "--engines",
        type=_csv_list,
        default=(AUTO_ENGINES,),
        help=f"engines among {', '.join(ENGINES)}, or {AUTO_ENGINES} (default): each device's engines from the "
        "support matrix",
    )
    p.add_argument(
        "--price-basis",
        choices=PRICE_BASES,
        default="cloud",
        help="cloud (default): on-demand rental prices; owned: total cost of ownership; both: either, each row "
        "says which",
    )
    p.add_argument(
        "--robust",
        action="store_true",
        help="require the objectives at the pessimistic end of each deployment's 80%% error band",
    )
    p.add_argument("--allow-disagg", action="store_true", help="also consider disaggregated prefill/decode pools")
    p.add_argument("--allow-mixed", action="store_true", help="also consider a mix of device types (Mélange)")
    p.add_argument("--what-if", action="store_true", help="add what-ifs and a cost sensitivity table")
    p.add_argument("--top", type=int, default=10)
    workload_flags.register(p)
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument(
        "--export",
        type=int,
        metavar="RANK",
        help="print a launch for the RANK-th candidate (1 = cheapest) instead of the table; needs --target",
    )
    p.add_argument(
        "--target",
        choices=targets(),
        help="with --export: the row's engine (its launch command) or k8s (Deployment, Service, HPA as YAML)",
    )
    plan_day.add_arguments(p)
    p.set_defaults(func=cmd_plan)


def request_from_args(args: argparse.Namespace) -> PlanRequest:
    """A PlanRequest from the flags; traffic from a workload preset, fixed lengths or a trace."""
    given = [
        args.workload is not None,
        args.input_len is not None or args.output_len is not None,
        args.trace is not None,
    ]
    if getattr(args, "turns", None) is not None and args.input_len is None and args.output_len is not None:
        given[1] = True  # sessions draw the prompts: --output-len alone is the reply
    if sum(given) != 1:
        raise ValueError("give exactly one of --workload, --input-len/--output-len, or --trace")
    fields: dict = {}
    wl = load_catalog().workload(args.workload) if args.workload else None
    if args.workload:
        fields = workload_traffic(wl)
    elif args.trace:
        try:
            stats = summarize(replay_trace(parse_trace(args.trace)))
        except (TraceError, OSError) as exc:
            raise ValueError(f"trace {args.trace}: {exc}") from None
        fields = dict(
            workload=f"trace {args.trace.name}",
            input_len=stats.input_tokens.mean,
            output_len=stats.output_tokens.mean,
            input_cv=stats.input_tokens.cv,
            output_cv=stats.output_tokens.cv,
            arrival_cv=max(stats.interarrival_cv, 0.05),
        )
        if args.rate is None:
            fields["rate_rps"] = stats.rate_rps
    elif getattr(args, "turns", None) is not None and args.input_len is None:
        fields = dict(input_len=1.0, output_len=args.output_len)  # input_len: the sessions' mean prompt, below
    else:
        if args.input_len is None or args.output_len is None:
            raise ValueError("--input-len and --output-len go together")
        fields = dict(input_len=args.input_len, output_len=args.output_len)
    fields |= plan_session_fields(args, wl, fields)
    if args.rate is not None:
        fields["rate_rps"] = args.rate
    if "rate_rps" not in fields:
        raise ValueError("--rate is required (requests per second)")
    if args.arrival_cv is not None:
        fields["arrival_cv"] = args.arrival_cv
    try:
        return PlanRequest(
            model=args.model,
            slo=Slo(ttft_ms=args.ttft_ms, tpot_ms=args.tpot_ms, e2e_ms=args.e2e_ms, pct=args.slo_pct),
            min_output_tokens_per_s=args.min_output_tokens_per_s,
            hardware=args.hardware,
            pricing=Pricing(basis=args.price_basis, provider=args.provider, usd_per_gpu_hour=args.usd_per_gpu_hour),
            max_devices=args.max_devices,
            max_usd_per_hour=args.max_usd_per_hour,
            weights=args.weights,
            kv=args.kv or (None,),
            engines=args.engines,
            robust=args.robust,
            allow_disagg=args.allow_disagg,
            allow_mixed=args.allow_mixed,
            top=args.top,
            **fields,
        )
    except ValidationError as exc:
        raise ValueError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None


def plan_session_fields(args: argparse.Namespace, wl, fields: dict) -> dict:
    """PlanRequest fields of --turns & co. (or a session preset): sessions, prefix cache, offload, and the mean
    prompt and its cv from the drawn sessions."""
    if args.trace is not None and (getattr(args, "turns", None) or getattr(args, "kv_offload", None)):
        raise ValueError("--turns and --kv-offload describe sessions: give them without --trace")
    got = workload_flags.traffic_fields(args, wl)
    out: dict = {k: got[k] for k in ("samples", "max_output_tokens") if k in got}
    if "samples" not in out and wl is not None and wl.samples > 1:
        out["samples"] = wl.samples
    if got.get("sessions") is not None:
        out["sessions"] = got["sessions"]
        reply, reply_cv, _ = capped_moments(fields["output_len"], fields.get("output_cv", 0.0),
                                            got.get("max_output_tokens"))  # fmt: skip
        out |= session_traffic(got["sessions"], reply, reply_cv)
    elif got.get("kv_offload_cpu_gb") or got.get("kv_offload_ssd_gb"):
        raise ValueError("--kv-offload holds session histories: give sessions (--turns, or a session workload preset)")
    if got.get("lora") is not None:
        out["lora"] = got["lora"]
    if "prefix_cache" in got:
        out["prefix_cache"] = got["prefix_cache"]
    for k in ("kv_offload_cpu_gb", "kv_offload_ssd_gb"):
        if k in got:
            out[k] = got[k]
    return out


def plan_json(p: Plan, extra: dict | None = None) -> str:
    body = {
        "candidates": [c.model_dump() for c in p.candidates],
        "rejected": [r.model_dump() for r in p.rejected],
        "pareto": [pt.model_dump() for pt in p.pareto],
        "elapsed_s": p.elapsed_s,
        "evaluated": p.evaluated,
        "request": p.request.model_dump(mode="json"),
        "notes": p.notes,
        **(extra or {}),
    }
    return to_json(body)


def cmd_plan(args: argparse.Namespace) -> int:
    day_inputs = plan_day.prepare(args)  # with --day: the plan runs at the day's peak rate
    req = request_from_args(args)
    catalog = load_catalog()
    catalog.model(req.model)  # unknown model: a clear error with suggestions, before any work
    p = plan(req, catalog)
    day = plan_day.compute(args, day_inputs, p, catalog) if day_inputs else None
    if args.export is not None or args.target is not None:
        if args.export is None or args.target is None:
            raise ValueError("--export RANK and --target go together")
        if not 1 <= args.export <= len(p.candidates):
            raise ValueError(
                f"--export {args.export}: there are {len(p.candidates)} candidates (ranks 1 to {len(p.candidates)})"
            )
        cand = p.candidates[args.export - 1]
        bounds = plan_day.bounds(day[0], cand) if day else None
        sys.stdout.write(export(cand, req, catalog, args.target, replica_bounds=bounds))
        return 0
    extra = {}
    if args.what_if and p.candidates:
        extra = {
            "what_ifs": [w.model_dump() for w in what_ifs(p, catalog)],
            "sensitivity": [s.model_dump() for s in sensitivity(p, catalog)],
        }
    if day:
        extra |= plan_day.extra(*day)
    if args.format == "json":
        print(plan_json(p, extra))
        return 0
    rows = [c.model_dump() for c in p.candidates]
    if args.format == "csv":
        sys.stdout.write(render(rows, "csv"))
        return 0
    print(f"{p.evaluated:,} configurations in {p.elapsed_s:.2f} s; {len(p.candidates)} shown, cheapest first")
    columns = TABLE_COLUMNS + (("prefix_hit_rate",) if req.sessions is not None else ()) + (
        ("seconds_per_answer", "usd_per_answer", "joules_per_answer") if req.samples > 1 else ())
    narrow = [{k: r[k] for k in columns} for r in rows]
    print(render(narrow, "table") if rows else "no deployment meets the objectives (see the reasons below)")
    for note in p.notes:
        print(f"note: {note}")
    if p.rejected:
        print("\nrejected:")
        print(render([r.model_dump() for r in p.rejected], "table"))
    for key, title in (("what_ifs", "what-ifs"), ("sensitivity", "sensitivity of $/hour")):
        if extra.get(key):
            print(f"\n{title}:")
            print(render(extra[key], "table"))
    if day:
        plan_day.print_text(*day)
    return 0
