"""The session, prefix-cache and KV-offload flags of `llmcap estimate --rate` (issue 15): registration and parsing
into llmcap.scenario.Traffic fields, each error naming its flag."""

from __future__ import annotations

import argparse
import math

from pydantic import ValidationError

from llmcap.catalog.schema import LengthDistribution, LoraSpec, SessionSpec, Workload
from llmcap.load.budget import MAX_BUDGET_TOKENS
from llmcap.load.sessions import TURN_FAMILIES as FAMILIES
from llmcap.load.sessions import parse_turns

SESSION_FLAGS = ("think_s", "new_tokens", "system_prompt_tokens")
DEFAULT_THINK_S, DEFAULT_NEW_TOKENS = 30.0, 150


def register(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sessions, prefix caching and KV offload (open loop)")
    g.add_argument(
        "--turns",
        help="multi-turn sessions: turns per session, N (fixed) or FAMILY:MEAN[:CV] with FAMILY one of "
        f"{', '.join(FAMILIES)} (e.g. exponential:6); each turn resends the history",
    )
    g.add_argument("--think-s", type=float, help=f"mean seconds between two turns (default {DEFAULT_THINK_S:g})")
    g.add_argument("--new-tokens", type=int, help=f"tokens each turn adds (default {DEFAULT_NEW_TOKENS})")
    g.add_argument("--system-prompt-tokens", type=int, help="system prompt shared by every session (default 0)")
    g.add_argument("--prefix-cache", choices=("on", "off"), help="automatic prefix caching (default: the engine's)")
    g.add_argument("--kv-offload", help="KV offload tiers per replica: cpu:GB[,ssd:GB] (extend the prefix cache)")
    g.add_argument("--lora-adapters", type=int, help="resident LoRA adapters per replica (1 to 10000)")
    g.add_argument("--lora-rank", type=int, help="LoRA rank (default 16)")
    g.add_argument("--lora-targets", choices=("attn", "all"), help="attention projections (default) or also the MLP")
    g.add_argument(
        "--samples", type=int,
        help="generations per prompt (best-of-N, self-consistency; 1 to 64): the prompt is prefilled once; "
        "--rate counts prompts, and s/$/J are reported per answer",
    )  # fmt: skip
    g.add_argument(
        "--max-output-tokens", type=int,
        help="token budget per sample (the engine's max_tokens, a thinking budget; 1 to 10000000): output lengths "
        "are cut at it",
    )  # fmt: skip


def workload_lines(le) -> list[str]:
    """Text lines of `estimate --rate` for the prefix cache and the per-answer figures."""
    lines = []
    c = le.prefix_cache
    if c is not None:
        lines.append(
            f"prefix cache ({'on' if c.prefix_cache else 'off'}): {c.prefix_hit_rate:.1%} of prompt tokens cached"
            + (f" ({c.offload_hit_rate:.1%} reloaded from the offload tier, mean {c.reload_ms_mean:.1f} ms)"
               if c.offload_hit_rate else "")
            + f"; {c.prefill_tokens_per_request:,.0f} of {c.prompt_tokens_per_request:,.0f} prompt tokens computed "
            f"per request; {_g(c.kv_resident_sessions)} idle sessions resident; offload {c.kv_offload_gb:g} GB"
        )  # fmt: skip
    if le.seconds_per_answer is not None or le.usd_per_answer is not None:
        lines.append(
            f"per answer ({le.samples} sample{'s' if le.samples > 1 else ''}): {_g(le.seconds_per_answer)} s, "
            f"${_g(le.usd_per_answer)} (${_g(le.usd_per_answer_at_max_rate)} at the max rate), "
            f"{_g(le.joules_per_answer)} J"
        )
    return lines


def _g(x) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _lora(args: argparse.Namespace) -> dict:
    k, rank, targets = (getattr(args, f"lora_{x}", None) for x in ("adapters", "rank", "targets"))
    if k is None:
        if rank is not None or targets is not None:
            raise ValueError(f"--lora-{'rank' if rank is not None else 'targets'} needs --lora-adapters")
        return {}
    parts = {"adapters": k} | ({"rank": rank} if rank is not None else {}) | ({"targets": targets} if targets else {})
    try:
        return {"lora": LoraSpec(**parts)}
    except ValidationError as exc:
        e = exc.errors()[0]
        name = {"adapters": "--lora-adapters", "rank": "--lora-rank"}.get(str(e["loc"][0]), "--lora-targets")
        raise ValueError(f"{name}: {e['msg']} (got {e.get('input')!r})") from None


def turns_dist(text: str) -> LengthDistribution:
    """`N` or `FAMILY:MEAN[:CV]` as a length distribution of turns (ValueError naming --turns)."""
    try:
        return parse_turns(text)
    except ValueError as exc:
        raise ValueError(f"--turns: {exc}") from None


def kv_offload(text: str | None) -> tuple[float, float]:
    """`cpu:GB[,ssd:GB]` as (cpu GB, ssd GB) (ValueError naming --kv-offload)."""
    if text is None:
        return 0.0, 0.0
    sizes = {"cpu": 0.0, "ssd": 0.0}
    bad = ValueError(f"--kv-offload: expected cpu:GB[,ssd:GB] with sizes 0 to 100000 GB (got {text!r})")
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise bad
    for item in items:
        tier, _, size = item.partition(":")
        try:
            gb = float(size)
        except ValueError:
            raise bad from None
        if tier.strip() not in sizes or not (math.isfinite(gb) and 0 <= gb <= 100_000):
            raise bad
        sizes[tier.strip()] = gb
    return sizes["cpu"], sizes["ssd"]


def traffic_fields(args: argparse.Namespace, workload: Workload | None) -> dict:
    """Traffic fields from the flags: sessions (the preset's, with any flag overriding its part), the prefix
    cache and the offload tiers."""
    given = {k: getattr(args, k, None) for k in SESSION_FLAGS}
    base = workload.sessions if workload is not None else None
    turns = getattr(args, "turns", None)
    fields: dict = {}
    if turns is None and base is None:
        extra = [k for k, v in given.items() if v is not None]
        if extra:
            raise ValueError(f"--{extra[0].replace('_', '-')} describes sessions: give --turns too")
    else:
        parts = {
            "turns": turns_dist(turns) if turns is not None else base.turns,
            "think_s": base.think_s if base else DEFAULT_THINK_S,
            "new_tokens": base.new_tokens if base else DEFAULT_NEW_TOKENS,
            "system_prompt_tokens": base.system_prompt_tokens if base else 0,
        } | {k: v for k, v in given.items() if v is not None}
        try:
            fields["sessions"] = SessionSpec(**parts)
        except ValidationError as exc:
            e = exc.errors()[0]
            name = str(e["loc"][0]) if e["loc"] else "turns"
            raise ValueError(f"--{name.replace('_', '-')}: {e['msg']} (got {e.get('input')!r})") from None
    pc = getattr(args, "prefix_cache", None)
    if pc is not None:
        fields["prefix_cache"] = pc == "on"
    samples = getattr(args, "samples", None)
    if samples is not None:
        if not 1 <= samples <= 64:
            raise ValueError(f"--samples: must be 1 to 64 (got {samples})")
        fields["samples"] = samples
    cap = getattr(args, "max_output_tokens", None)
    if cap is not None:
        if not 1 <= cap <= MAX_BUDGET_TOKENS:
            raise ValueError(f"--max-output-tokens: must be 1 to {MAX_BUDGET_TOKENS:,} (got {cap})")
        fields["max_output_tokens"] = cap
    fields |= _lora(args)
    cpu, ssd = kv_offload(getattr(args, "kv_offload", None))
    if cpu or ssd:
        fields["kv_offload_cpu_gb"], fields["kv_offload_ssd_gb"] = cpu, ssd
    return fields
