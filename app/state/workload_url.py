"""Sessions, prefix caching and KV offload on the Estimate and Plan pages <-> the URL (issue 15). Pure, like
llmcap.app.state.urlstate: `parse_workload_keys()` turns the raw texts of its keys into `WorkloadInputs`, warning
about (and dropping) what it cannot use; `workload_query()` is the inverse and writes only keys that differ from
the defaults.

Keys: turns (turns per session, `N` or `FAMILY:MEAN[:CV]`; present = sessions), think (seconds between turns),
newtok (tokens a turn adds), sysp (system prompt tokens), pcache (auto|on|off), kvcpu and kvssd (offload tiers, GB
per replica), maxout (token budget per sample, llmcap.load.budget), smp (samples per prompt).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from llmcap.catalog.schema import Frozen, LoraSpec, SessionSpec, Workload
from llmcap.load.budget import MAX_BUDGET_TOKENS, capped_moments
from llmcap.load.sessions import parse_turns, turns_text
from llmcap.plan.sessions import session_traffic

WORKLOAD_KEYS = ("turns", "think", "newtok", "sysp", "pcache", "kvcpu", "kvssd", "lora", "lrank", "ltgt", "maxout")
SAMPLE_KEYS = ("smp",)  # generations per prompt (Estimate and Plan pages)
MAX_SAMPLES = 64
MAX_BUDGET = MAX_BUDGET_TOKENS
MAX_ADAPTERS, MAX_RANK = 10_000, 1024
DEFAULT_TURNS = "exponential:6"
MAX_THINK_S = 86_400.0
MAX_NEW_TOKENS = 1_000_000
MAX_OFFLOAD_GB = 100_000.0
PCACHE = ("auto", "on", "off")


class WorkloadInputs(Frozen):
    """The page's session, prefix-cache and offload inputs (turns None: independent requests)."""

    turns: str | None = Field(default=None, max_length=40, description="turns per session, parse_turns text")
    think_s: float = Field(default=30.0, gt=0, le=MAX_THINK_S)
    new_tokens: int = Field(default=150, ge=1, le=MAX_NEW_TOKENS)
    system_prompt_tokens: int = Field(default=0, ge=0, le=MAX_NEW_TOKENS)
    prefix_cache: Literal["auto", "on", "off"] = "auto"
    kv_cpu_gb: float = Field(default=0.0, ge=0, le=MAX_OFFLOAD_GB, description="0: no CPU tier")
    kv_ssd_gb: float = Field(default=0.0, ge=0, le=MAX_OFFLOAD_GB, description="0: no SSD tier")
    samples: int = Field(default=1, ge=1, le=MAX_SAMPLES, description="generations per prompt")
    max_output_tokens: int = Field(default=0, ge=0, le=MAX_BUDGET, description="token budget per sample (0: none)")
    lora_adapters: int = Field(default=0, ge=0, le=MAX_ADAPTERS, description="resident LoRA adapters (0: none)")
    lora_rank: int = Field(default=16, ge=1, le=MAX_RANK)
    lora_targets: Literal["attn", "all"] = "attn"

    def sessions(self, preset: Workload | None = None) -> SessionSpec | None:
        """The sessions these inputs ask for: their own turns, else a session preset's (None: none)."""
        if self.turns is None:
            return preset.sessions if preset is not None else None
        return SessionSpec(turns=parse_turns(self.turns), think_s=self.think_s, new_tokens=self.new_tokens,
                           system_prompt_tokens=self.system_prompt_tokens)  # fmt: skip

    @property
    def offload(self) -> bool:
        return self.kv_cpu_gb + self.kv_ssd_gb > 0

    def traffic_fields(self) -> dict:
        """llmcap.scenario.Traffic fields (a preset's own sessions apply there when turns is None)."""
        out: dict = {"kv_offload_cpu_gb": self.kv_cpu_gb, "kv_offload_ssd_gb": self.kv_ssd_gb}
        if self.turns is not None:
            out["sessions"] = self.sessions()
        if self.prefix_cache != "auto":
            out["prefix_cache"] = self.prefix_cache == "on"
        if self.samples > 1:
            out["samples"] = self.samples
        if self.max_output_tokens > 0:
            out["max_output_tokens"] = self.max_output_tokens
        if self.lora_adapters > 0:
            out["lora"] = LoraSpec(adapters=self.lora_adapters, rank=self.lora_rank, targets=self.lora_targets)
        return out


def plan_fields(w: WorkloadInputs, preset: Workload | None, output_len: float, output_cv: float) -> dict:
    """PlanRequest fields: sessions (with the mean prompt and its cv they make), prefix cache, offload tiers, samples
    (the inputs', else the preset's) and the token budget."""
    spec = w.sessions(preset)
    out: dict = {"kv_offload_cpu_gb": w.kv_cpu_gb, "kv_offload_ssd_gb": w.kv_ssd_gb}
    samples = w.samples if w.samples > 1 else (preset.samples if preset is not None else 1)
    if samples > 1:
        out["samples"] = samples
    budget = w.max_output_tokens or None
    if budget is not None:
        out["max_output_tokens"] = budget
        output_len, output_cv, _ = capped_moments(output_len, output_cv, budget)  # the replies the sessions carry
    if w.prefix_cache != "auto":
        out["prefix_cache"] = w.prefix_cache == "on"
    if spec is not None:
        out["sessions"] = spec
        out |= session_traffic(spec, output_len, output_cv)
    if w.lora_adapters > 0:
        out["lora"] = LoraSpec(adapters=w.lora_adapters, rank=w.lora_rank, targets=w.lora_targets)
    return out


def parse_workload_keys(raw: dict[str, str], warn, samples: bool = False) -> WorkloadInputs:
    """WorkloadInputs from the raw texts of WORKLOAD_KEYS; warn(key, text, reason, fallback) for each bad one."""
    base = WorkloadInputs()
    got: dict = {}

    def number(key: str, name: str, lo: float, hi: float, whole: bool) -> None:
        """Whole numbers: digits (one leading + at most) in [lo, hi]; numbers: finite, in (lo, hi] (lo is 0)."""
        text = raw.get(key)
        if text is None:
            return
        t = text.strip()
        if whole:
            ok = t.isascii() and t.removeprefix("+").isdigit() and len(t) <= 12 and lo <= int(t) <= hi
            reason = f"must be a whole number from {lo:g} to {hi:g}"
            value: float = int(t) if ok else 0
        else:
            try:
                value = float(t) if t.isascii() and len(t) <= 32 else math.nan
            except ValueError:
                value = math.nan
            ok = math.isfinite(value) and lo < value <= hi
            reason = f"must be above {lo:g} and at most {hi:g}"
        if ok:
            got[name] = value
        else:
            warn(key, text, reason, getattr(base, name))

    if "turns" in raw:
        try:
            got["turns"] = turns_text(parse_turns(raw["turns"]))
        except ValueError as exc:
            warn("turns", raw["turns"], str(exc).split(" (got")[0], "none (independent requests)")
    number("think", "think_s", 0.0, MAX_THINK_S, False)
    number("newtok", "new_tokens", 1, MAX_NEW_TOKENS, True)
    number("sysp", "system_prompt_tokens", 0, MAX_NEW_TOKENS, True)
    number("kvcpu", "kv_cpu_gb", 0.0, MAX_OFFLOAD_GB, False)
    number("kvssd", "kv_ssd_gb", 0.0, MAX_OFFLOAD_GB, False)
    if samples:
        number("smp", "samples", 1, MAX_SAMPLES, True)
    number("maxout", "max_output_tokens", 1, MAX_BUDGET, True)
    number("lora", "lora_adapters", 1, MAX_ADAPTERS, True)
    number("lrank", "lora_rank", 1, MAX_RANK, True)
    if "ltgt" in raw:
        t = raw["ltgt"].strip().lower()
        if t in ("attn", "all"):
            got["lora_targets"] = t
        else:
            warn("ltgt", raw["ltgt"], "must be attn or all", base.lora_targets)
    if "pcache" in raw:
        t = raw["pcache"].strip().lower()
        if t in PCACHE:
            got["prefix_cache"] = t
        else:
            warn("pcache", raw["pcache"], "must be auto, on or off", base.prefix_cache)
    if got.get("prefix_cache") == "off":
        for key, name in (("kvcpu", "kv_cpu_gb"), ("kvssd", "kv_ssd_gb")):
            if got.pop(name, 0.0):
                warn(key, raw[key], "an offload tier extends the prefix cache, which pcache=off turns off", 0.0)
    return WorkloadInputs(**got)


def workload_query(w: WorkloadInputs) -> dict[str, str]:
    """The keys of `w` that differ from the defaults (turns first)."""
    base = WorkloadInputs()
    q: dict[str, str] = {}
    if w.turns is not None:
        q["turns"] = w.turns
    for key, name in (("think", "think_s"), ("newtok", "new_tokens"), ("sysp", "system_prompt_tokens"),
                      ("pcache", "prefix_cache"), ("kvcpu", "kv_cpu_gb"), ("kvssd", "kv_ssd_gb"),
                      ("smp", "samples"), ("lora", "lora_adapters"), ("lrank", "lora_rank"),
                      ("ltgt", "lora_targets"), ("maxout", "max_output_tokens")):  # fmt: skip
        v = getattr(w, name)
        if v != getattr(base, name):
            q[key] = _text(v)
    return q


def _text(v) -> str:
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    return str(v)
