"""What makes an Estimate-page URL value good or bad, written from the README's rules (not from the parser), so
tests of llmcap.app.state.urlstate and of the pages can tell which parameters must be named in a warning."""

from __future__ import annotations

import math
import re

from llmcap.app.state.urlstate import (
    MAX_CONCURRENCY,
    MAX_CV,
    MAX_RATE_RPS,
    MAX_SLO_MS,
    MAX_USD_PER_GPU_HOUR,
    MAX_VALUE_CHARS,
    MIN_SLO_MS,
    PERCENTILES,
    choices_from_catalog,
)
from llmcap.catalog.loader import load_catalog, normalize_id
from llmcap.scenario import ENGINES, MAX_DEVICES, MAX_TOKENS

CATALOG = load_catalog()
CHOICES = choices_from_catalog(CATALOG)
# Keys whose warning may come from another key's value (ep must divide tp, a format needs an engine, ...).
CROSS_FIELD = {"ep", "dp", "pp", "n", "engine", "w", "prov", "kvcpu", "kvssd"}  # offload needs pcache on
INT_RANGES = {
    "tp": (1, MAX_DEVICES),
    "pp": (1, MAX_DEVICES),
    "ep": (1, MAX_DEVICES),
    "dp": (1, MAX_DEVICES),
    "replicas": (1, 100_000),
    "isl": (1, MAX_TOKENS),
    "osl": (1, MAX_TOKENS),
    "conc": (1, MAX_CONCURRENCY),
    "newtok": (1, 1_000_000),  # sessions (issue 15): tokens a turn adds, system prompt tokens
    "sysp": (0, 1_000_000),
    "smp": (1, 64),  # samples per prompt
    "maxout": (1, 10_000_000),  # token budget per sample
    "lora": (1, 10_000),  # LoRA adapters, rank
    "lrank": (1, 1024),
}
FLOAT_RANGES = {"rate": (0.0, MAX_RATE_RPS), "ttft": (MIN_SLO_MS, MAX_SLO_MS), "tpot": (MIN_SLO_MS, MAX_SLO_MS)}
FLOAT_RANGES |= {"cv": (0.0, MAX_CV), "usd": (0.0, MAX_USD_PER_GPU_HOUR)}
FLOAT_RANGES |= {"think": (0.0, 86_400.0), "kvcpu": (0.0, 100_000.0), "kvssd": (0.0, 100_000.0)}
CHOICE_SETS = {
    "model": (set(CHOICES.models), lambda t: t.strip().lower()),
    "hw": (set(CHOICES.hardware), normalize_id),
    "w": (set(CHOICES.weight_formats), normalize_id),
    "kv": (set(CHOICES.kv_formats) | {"auto"}, normalize_id),
    "engine": (set(ENGINES), lambda t: t.strip().lower()),
    "workload": (set(CHOICES.workloads) | {"fixed", "none"}, normalize_id),
    "arr": ({"poisson", "gamma"}, lambda t: t.strip().lower()),
    "prov": (set(CHOICES.providers) | {"tco"}, lambda t: t.strip().lower()),
    "region": (set(CHOICES.regions), normalize_id),
    "sim": ({"0", "1"}, str.strip),
    "pcache": ({"auto", "on", "off"}, lambda t: t.strip().lower()),
    "ltgt": ({"attn", "all"}, lambda t: t.strip().lower()),
}
FLAG_KEYS = {"sim"}  # 0 or 1
TURN_FAMILIES = {"fixed", "exponential", "lognormal", "gamma", "uniform"}
KNOWN_KEYS = {*INT_RANGES, "n", *FLOAT_RANGES, "pct", *CHOICE_SETS, *FLAG_KEYS, "turns"}  # keys this oracle can judge
DIGITS = re.compile(r"\s*\+?[0-9]+\s*")
HOSTILE = ["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1", "-0", "0x10", "1e3", "1.5", "++5", "+-1", "٣",
           "１", "²", "\x00", "🦙", "'; DROP TABLE x; --", "<script>alert(1)</script>", "=cmd|' /C calc'!A0",
           "../../etc/passwd", "%00", "None", "null", "true", "[]", "{}"]  # fmt: skip


def float_or_nan(text: str) -> float:
    try:
        return float(text.strip()) if text.isascii() and len(text.strip()) <= 32 else math.nan
    except ValueError:
        return math.nan


def is_good(key: str, text: str) -> bool:
    """Whether `text` is a usable value for `key`, by the rules the README states (not by calling the parser)."""
    t = text.strip()
    if not t or len(text) > MAX_VALUE_CHARS:
        return not t and len(text) <= MAX_VALUE_CHARS  # blank = absent; over-long = bad
    if key == "conc" and t.lower() == "max":
        return True
    if key in INT_RANGES or key == "n":
        lo, hi = INT_RANGES.get(key, (1, MAX_DEVICES * 100_000))
        return t.isascii() and bool(DIGITS.fullmatch(t)) and len(t) <= 12 and lo <= int(t) <= hi
    if key in FLOAT_RANGES:
        lo, hi = FLOAT_RANGES[key]
        v = float_or_nan(t)
        return math.isfinite(v) and (v > lo if lo == 0 else v >= lo) and v <= hi
    if key in FLAG_KEYS:
        return t in ("0", "1")
    if key == "pct":
        p = t.lower().removeprefix("p").removesuffix(".0")
        return p in {str(x) for x in PERCENTILES}
    if key == "turns":  # N (1 to 10000) or FAMILY:MEAN[:CV], MEAN 1 to 10000, CV 0 to 20
        parts = [x.strip() for x in t.split(":")]
        if len(parts) == 1:
            v = float_or_nan(parts[0])
            return math.isfinite(v) and v == int(v) and 1 <= v <= 10_000
        if len(parts) > 3 or parts[0] not in TURN_FAMILIES:
            return False
        mean = float_or_nan(parts[1])
        cv = float_or_nan(parts[2]) if len(parts) == 3 else 0.0
        return math.isfinite(mean) and 1 <= mean <= 10_000 and math.isfinite(cv) and 0 <= cv <= 20
    names, key_of = CHOICE_SETS[key]
    return key_of(text) in names
