"""The Compare page's per-answer view (llmcap.load.answers) <-> the URL. Pure: `parse_answer_keys()` turns the raw
texts of its keys into `AnswerInputs`, warning about (and dropping) what it cannot use; `answer_query()` is the
inverse and writes only keys that differ from the defaults.

Keys: ans (candidates, `;`-separated, each `MODEL@HARDWARE[:samples=N][:tp=T][:weights=F]`), answl (workload
preset), ansrate (answers per second), ansttft and anstpot (objectives per sample, ms), ansmax (token budget per
sample; absent: none).
"""

from __future__ import annotations

import math

from pydantic import Field

from llmcap.catalog.loader import Catalog, normalize_id
from llmcap.catalog.schema import Frozen
from llmcap.load.answers import MAX_CANDIDATES, AnswerCandidate, candidate_text, parse_candidate
from llmcap.load.budget import MAX_BUDGET_TOKENS

ANSWER_KEYS = ("ans", "answl", "ansrate", "ansttft", "anstpot", "ansmax")
MAX_RATE = 1e6
MAX_SLO_MS = 1e7
MAX_ANS_CHARS = 2000
DEFAULT_CANDIDATES = (
    AnswerCandidate(model="Qwen/Qwen3-8B", hardware="h100-sxm", samples=8),
    AnswerCandidate(model="Qwen/Qwen3-32B", hardware="h100-sxm", weight_format="fp8"),
)


class AnswerInputs(Frozen):
    candidates: tuple[AnswerCandidate, ...] = Field(default=DEFAULT_CANDIDATES, min_length=1,
                                                    max_length=MAX_CANDIDATES)  # fmt: skip
    workload: str = "reasoning"
    rate_rps: float = Field(default=0.5, gt=0, le=MAX_RATE)
    ttft_ms: float = Field(default=2000.0, gt=0, le=MAX_SLO_MS)
    tpot_ms: float = Field(default=100.0, gt=0, le=MAX_SLO_MS)
    max_output_tokens: int | None = Field(default=None, ge=1, le=MAX_BUDGET_TOKENS)


def _candidates(text: str, catalog: Catalog) -> tuple[list[AnswerCandidate], list[str]]:
    """The candidates of an `ans` value that name catalog entries; a reason for each one left out."""
    out, bad = [], []
    for item in [t for t in text.split(";") if t.strip()]:
        try:
            c = parse_candidate(item)
            ids = {"model": catalog.model(c.model).meta.id, "hardware": catalog.device(c.hardware).id}
            c = c.model_copy(update=ids)
            if normalize_id(c.weight_format) not in catalog.formats:
                raise ValueError(f"unknown weight format {c.weight_format!r}")
        except (ValueError, KeyError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            bad.append(f"{item.strip()[:60]!r}: {str(msg).splitlines()[0]}")
            continue
        out.append(c)
    if len(out) > MAX_CANDIDATES:
        bad.append(f"only the first {MAX_CANDIDATES} candidates are kept")
        out = out[:MAX_CANDIDATES]
    return out, bad


def parse_answer_keys(raw: dict[str, str], catalog: Catalog, warn) -> AnswerInputs:
    """AnswerInputs from the raw texts of ANSWER_KEYS; warn(key, text, reason, fallback) for each bad one."""
    base = AnswerInputs()
    got: dict = {}
    if "ans" in raw:
        text = raw["ans"]
        if len(text) > MAX_ANS_CHARS:
            warn("ans", text, f"longer than {MAX_ANS_CHARS} characters", "the default candidates")
        else:
            cands, bad = _candidates(text, catalog)
            if bad:
                warn("ans", text, "; ".join(bad), "the candidates that parse" if cands else "the default candidates")
            if cands:
                got["candidates"] = tuple(cands)
    if "answl" in raw:
        wl = normalize_id(raw["answl"])
        if wl in catalog.workloads:
            got["workload"] = wl
        else:
            warn("answl", raw["answl"], "unknown workload preset", base.workload)

    def number(key: str, name: str, hi: float, whole: bool = False) -> None:
        text = raw.get(key)
        if text is None:
            return
        t = text.strip()
        if whole:
            ok = t.isascii() and t.removeprefix("+").isdigit() and len(t) <= 12 and 1 <= int(t) <= hi
            value: float = int(t) if ok else 0
            reason = f"must be a whole number from 1 to {hi:g}"
        else:
            try:
                value = float(t) if t.isascii() and len(t) <= 32 else math.nan
            except ValueError:
                value = math.nan
            ok = math.isfinite(value) and 0 < value <= hi
            reason = f"must be above 0 and at most {hi:g}"
        if ok:
            got[name] = value
        else:
            warn(key, text, reason, getattr(base, name))

    number("ansrate", "rate_rps", MAX_RATE)
    number("ansttft", "ttft_ms", MAX_SLO_MS)
    number("anstpot", "tpot_ms", MAX_SLO_MS)
    number("ansmax", "max_output_tokens", MAX_BUDGET_TOKENS, whole=True)
    return AnswerInputs(**got)


def answer_query(a: AnswerInputs) -> dict[str, str]:
    """The keys of `a` that differ from the defaults."""
    base = AnswerInputs()
    q: dict[str, str] = {}
    if a.candidates != base.candidates:
        q["ans"] = ";".join(candidate_text(c) for c in a.candidates)
    if a.workload != base.workload:
        q["answl"] = a.workload
    for key, name in (("ansrate", "rate_rps"), ("ansttft", "ttft_ms"), ("anstpot", "tpot_ms"),
                      ("ansmax", "max_output_tokens")):  # fmt: skip
        v = getattr(a, name)
        if v != getattr(base, name):
            q[key] = str(int(v)) if isinstance(v, float) and v.is_integer() else (repr(v) if isinstance(v, float)
                                                                                 else str(v))  # fmt: skip
    return q
