"""`llmcap plan ... --day PRESET|FILE`: the day plan (autoscaling policies) and the price options of a plan.

Kept apart from core/cli/plan.py, which only calls `add_arguments`, `prepare`, `extra` and `print_text`."""

from __future__ import annotations

import argparse
import dataclasses

from llmcap.catalog.loader import Catalog
from llmcap.io.output import render
from llmcap.load.day import DayProfile, presets, resolve_day
from llmcap.plan.autoscale import DEFAULT_SLO_MISS_BUDGET, DEFAULT_STATIC_PCT, DayPlan, day_plan, replica_bounds
from llmcap.plan.price_options import OPTIONS, PriceOptions, parse_options, price_options
from llmcap.plan.request import Plan

DAY_COLUMNS = (
    "policy",
    "hardware",
    "tp",
    "weight_format",
    "engine",
    "replicas_min",
    "replicas_max",
    "gpu_hours",
    "usd_per_day",
    "usd_per_million_output_tokens",
    "slo_miss_minutes",
    "slo_miss_request_share",
    "utilization",
)
DAY_FLAGS = ("scale_up_s", "scale_down_s", "min_replicas", "slo_miss_budget", "static_pct", "storage_tier", "pricing",
             "spot_interruptions")  # fmt: skip
PRICE_COLUMNS = ("option", "provider", "hardware", "instance", "usd_per_day", "date_seen", "crossover_tokens_per_day")


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("a day of traffic (with --day)")
    g.add_argument(
        "--day",
        metavar="PRESET|FILE",
        help="day profile: a preset of catalogs/day_profiles.yaml scaled to --rate (the day's mean), or a CSV of "
        "time,rate_rps or a request log; plans at the day's peak and sizes replicas per interval",
    )
    g.add_argument("--scale-up-s", type=float, help="replica start time in seconds (default: computed)")
    g.add_argument("--scale-down-s", type=float, help="scale-down delay in seconds (default: HPA's 300)")
    g.add_argument("--min-replicas", type=int, help="replicas kept at the quietest time (default 1)")
    g.add_argument(
        "--slo-miss-budget",
        type=float,
        help=f"largest share of requests allowed outside the SLO by a shortage of replicas "
        f"(default {DEFAULT_SLO_MISS_BUDGET:g})",
    )
    g.add_argument("--static-pct", type=float, help=f"percentile of the static policy (default {DEFAULT_STATIC_PCT:g})")
    g.add_argument("--storage-tier", help="where weights load from (catalogs/startup.yaml; default its default)")
    g.add_argument(
        "--pricing",
        metavar="LIST",
        help=f"price options, comma-separated among {','.join(OPTIONS)} (default: all)",
    )
    g.add_argument("--spot-interruptions", type=float, help="spot interruptions per instance-month (a share)")


@dataclasses.dataclass(frozen=True)
class DayInputs:
    profile: DayProfile
    options: tuple[str, ...]


def prepare(args: argparse.Namespace) -> DayInputs | None:
    """Resolve --day before the request is built: the plan runs at the day's peak rate (args.rate is set to it)."""
    if not getattr(args, "day", None):
        for flag in DAY_FLAGS:
            if getattr(args, flag, None) is not None:
                raise ValueError(
                    f"--{flag.replace('_', '-')} needs --day PRESET|FILE (presets: {', '.join(presets())})"
                )
        return None
    profile = resolve_day(args.day, args.rate)
    args.rate = profile.peak_rate_rps
    return DayInputs(profile=profile, options=parse_options(args.pricing))


def compute(args: argparse.Namespace, inputs: DayInputs, p: Plan, catalog: Catalog) -> tuple[DayPlan, PriceOptions]:
    day = day_plan(
        p,
        inputs.profile,
        catalog,
        scale_up_s=args.scale_up_s,
        scale_down_s=args.scale_down_s,
        min_replicas=1 if args.min_replicas is None else args.min_replicas,
        slo_miss_budget=DEFAULT_SLO_MISS_BUDGET if args.slo_miss_budget is None else args.slo_miss_budget,
        static_pct=DEFAULT_STATIC_PCT if args.static_pct is None else args.static_pct,
        tier=args.storage_tier,
    )
    req = p.request
    po = price_options(
        day, inputs.profile, req.model, req.input_len, req.output_len, catalog, inputs.options, args.spot_interruptions
    )
    return day, po


def extra(day: DayPlan, po: PriceOptions) -> dict:
    """JSON fields: `day` (the recommended deployment, one object per policy), `pricing` rows, and the context."""
    return {
        "day": [r.model_dump() for r in day.best()],
        "day_ranking": [
            {k: v for k, v in r.model_dump().items() if k not in ("rate_rps", "capacity_rps")} for r in day.rows
        ],
        "day_profile": {
            "name": day.profile,
            "interval_s": day.interval_s,
            "days": day.days,
            "mean_rate_rps": day.mean_rate_rps,
            "peak_rate_rps": day.peak_rate_rps,
            "scale_down_s": day.scale_down_s,
            "min_replicas": day.min_replicas,
            "slo_miss_budget": day.slo_miss_budget,
            "startup": day.startup.model_dump() if day.startup else None,
            "notes": day.notes,
        },
        "pricing": [r.model_dump() for r in po.rows],
        "pricing_notes": po.notes,
        "crossover_scan": {
            "output_tokens_per_day": po.tokens_per_day,
            "self_host_usd_per_day": po.self_host_usd_per_day,
            "hosted_usd_per_day": po.hosted_usd_per_day,
        },
    }


def bounds(day: DayPlan, cand) -> tuple[int, int] | None:
    """The exported row's autoscaler bounds from its autoscaled day schedule (None: not in the day plan)."""
    return replica_bounds(day, cand)


def _row(r) -> dict:
    d = r.model_dump()
    d["replicas_min"], d["replicas_max"] = min(r.replicas), max(r.replicas)
    return {k: d[k] for k in DAY_COLUMNS}


def print_text(day: DayPlan, po: PriceOptions) -> None:
    s = day.startup
    print(
        f"\nday: {day.profile}, {len(day.rate_rps)} intervals of {day.interval_s:g} s, mean {day.mean_rate_rps:.3g} "
        f"req/s, peak {day.peak_rate_rps:.3g} req/s"
    )
    if s:
        how = (
            "given (--scale-up-s)"
            if s.overridden
            else (
                f"image pull {s.image_pull_s:.0f} s + {s.checkpoint_gb:.1f} GB from {s.tier} "
                f"at {s.tier_gb_per_s:.2f} GB/s ({s.weight_load_s:.0f} s) + warm-up {s.warmup_s:.0f} s"
            )
        )
        print(f"replica start {s.total_s:.0f} s: {how}; scale-down after {day.scale_down_s:g} s")
    best = day.best()
    if best:
        print("\nrecommended deployment, each policy:")
        print(render([_row(r) for r in best], "table"))
    else:
        print(f"\nno deployment keeps SLO misses within {day.slo_miss_budget:.2%} of requests")
    ranked = [r for r in day.rows if r.rank is not None][:10]
    if ranked:
        print(f"\nranked by $/day within an SLO-miss budget of {day.slo_miss_budget:.2%}:")
        print(render([_row(r) for r in ranked], "table"))
    if po.rows:
        print("\nprice options (cheapest of each class marked *):")
        rows = [
            {**{k: getattr(r, k) for k in PRICE_COLUMNS}, "cheapest": "*" if r.cheapest_in_class else ""}
            for r in po.rows
        ]
        print(render(rows, "table"))
    for n in po.notes:
        print(f"note: {n}")
