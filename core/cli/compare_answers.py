"""`llmcap compare-answers`: seconds, $ and joules per answer of several (model, hardware, samples) candidates serving
one workload at one rate (llmcap.load.answers; the Kinetics trade-off: a small model sampled N times or a large one
once)."""

from __future__ import annotations

import argparse
import sys

from llmcap.io.output import FORMATS, render, to_json
from llmcap.load.answers import MAX_CANDIDATES, answer_table, parse_candidate
from llmcap.load.budget import MAX_BUDGET_TOKENS
from llmcap.scenario import PRICE_BASES, Pricing, Slo

TABLE = ("candidate", "status", "replicas", "devices", "seconds_per_answer", "usd_per_answer", "joules_per_answer",
         "usd_per_answer_at_max_rate", "ttft_ms_p90", "tpot_ms_p90")  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare-answers",
        help="seconds, $ and joules per answer of (model, hardware, samples) candidates at one workload and rate",
    )
    p.add_argument(
        "--candidate", action="append", required=True, metavar="MODEL@HARDWARE[:samples=N][:tp=T][:weights=F]",
        help=f"a candidate (repeat, 1 to {MAX_CANDIDATES}), e.g. Qwen/Qwen3-8B@h100-sxm:samples=8",
    )  # fmt: skip
    p.add_argument("--workload", default="reasoning", help="workload preset id (default reasoning)")
    p.add_argument("--rate", type=float, required=True, help="answers (prompts) per second")
    p.add_argument("--ttft-ms", type=float, default=Slo().ttft_ms, help="TTFT objective per sample")
    p.add_argument("--tpot-ms", type=float, default=Slo().tpot_ms, help="TPOT objective per sample")
    p.add_argument("--slo-pct", type=float, default=90.0, help="share of samples that must meet both")
    p.add_argument("--max-output-tokens", type=int, help="token budget per sample (cuts the output lengths)")
    p.add_argument("--price-basis", choices=PRICE_BASES, default="cloud")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=cmd_compare_answers)


def cmd_compare_answers(args: argparse.Namespace) -> int:
    if not 1 <= len(args.candidate) <= MAX_CANDIDATES:
        raise ValueError(f"--candidate: give 1 to {MAX_CANDIDATES} (got {len(args.candidate)})")
    cands = []
    for text in args.candidate:
        try:
            cands.append(parse_candidate(text))
        except ValueError as exc:
            raise ValueError(f"--candidate {text[:80]!r}: {exc}") from None
    if args.max_output_tokens is not None and not 1 <= args.max_output_tokens <= MAX_BUDGET_TOKENS:
        raise ValueError(f"--max-output-tokens: must be 1 to {MAX_BUDGET_TOKENS:,} (got {args.max_output_tokens})")
    if not (args.rate > 0 and args.rate <= 1e6):
        raise ValueError(f"--rate: must be above 0 and at most 1e6 (got {args.rate})")
    try:
        slo = Slo(ttft_ms=args.ttft_ms, tpot_ms=args.tpot_ms, pct=args.slo_pct)
    except ValueError as exc:
        raise ValueError(f"--ttft-ms/--tpot-ms/--slo-pct: {str(exc).splitlines()[-1].strip()}") from None
    df = answer_table(cands, args.workload, args.rate, slo=slo, pricing=Pricing(basis=args.price_basis),
                      max_output_tokens=args.max_output_tokens)  # fmt: skip
    rows = df.to_dicts()
    if args.format == "json":
        print(to_json({"workload": args.workload, "rate_rps": args.rate, "slo": slo.model_dump(),
                       "max_output_tokens": args.max_output_tokens, "candidates": rows}))  # fmt: skip
    elif args.format == "csv":
        sys.stdout.write(render(rows, "csv"))
    else:
        print(render([{k: r[k] for k in TABLE} for r in rows], "table"))
        for r in rows:
            if r["note"]:
                print(f"{r['candidate']}: {r['note']}")
    return 0
