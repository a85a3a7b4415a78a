"""The engine support matrix: which engine runs which weight and KV format on which device (catalogs/support.yaml).

A combination (engine, device, weight format, KV format) is supported when some rule matches the engine and the
device (vendor or "*", optional arch ids, optional device kinds) and lists both formats. Rules are tried in file
order; the first rule that lists both formats gives the math path the engine's kernels use for the weights there
(before the device-level math fallback of formats.yaml).

Everything a verdict says (the reason, the suggestion) is computed from the matrix, so adding a rule changes the
explanations with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import yaml
from pydantic import Field, model_validator

from llmcap.catalog.schema import Device, DeviceKind, Frozen, MathType

SUPPORT_FILE = "support.yaml"
GENERIC = "generic"
AUTO_KV = "auto"
ANY_VENDOR = "*"



class SupportRule(Frozen):
    """One rule: an engine, the devices it covers, and the formats it runs there with their math path."""

    engine: str = Field(min_length=1)
    vendor: str = Field(min_length=1, description='device vendor, or "*" for any')
    archs: tuple[str, ...] | None = Field(default=None, min_length=1, description="arch ids; None = any arch")
    kinds: tuple[DeviceKind, ...] | None = Field(default=None, min_length=1, description="device kinds; None = any")
    weights: dict[str, MathType] = Field(min_length=1, description="weight format id -> math path of its GEMMs")
    kv: tuple[str, ...] = Field(min_length=1, description="KV format ids accepted")
    kv_auto: dict[str, str] = Field(
        default_factory=dict, description="weight format -> KV format picked when none is given ('auto')"
    )
    source: str = Field(min_length=3, description="docs page / file @commit / release note stating these facts")
    estimated: dict[str, str] = Field(default_factory=dict, description="field -> reasoning for an estimate")
    notes: str = ""

    @model_validator(mode="after")
    def _kv_auto_consistent(self) -> SupportRule:
        for wf, kv in self.kv_auto.items():
            if wf not in self.weights:
                raise ValueError(f"kv_auto names weight format '{wf}' that the rule does not list")
            if kv not in self.kv:
                raise ValueError(f"kv_auto picks KV format '{kv}' that the rule does not list")
        return self

    def matches(self, device: Device) -> bool:
        """Whether this rule covers `device` (vendor, arch and kind)."""
        if self.vendor != ANY_VENDOR and self.vendor.casefold() != device.vendor.casefold():
            return False
        if self.archs is not None and device.arch not in self.archs:
            return False
        return self.kinds is None or device.kind in self.kinds


class SupportMatrix(Frozen):
    """catalogs/support.yaml: the rules, in file order."""

    rules: tuple[SupportRule, ...] = Field(min_length=1)
    labels: dict[str, str] = Field(
        default_factory=dict, description="engine id -> how it reads in a sentence (catalogs/engines.yaml `label`)"
    )

    def engines(self) -> list[str]:
        """Engine ids named by the rules, in first-appearance order."""
        return list(dict.fromkeys(r.engine for r in self.rules))


class Verdict(Frozen):
    """Whether an engine runs a weight/KV format on a device, the math path it takes, and why not."""

    supported: bool
    math: MathType | None = Field(default=None, description="math path of the weight format (None if unsupported)")
    kv_auto: str | None = Field(default=None, description="KV format the engine picks for these weights on 'auto'")
    reason: str = Field(default="", description="one line naming what is wrong (empty when supported)")
    suggestion: str = Field(default="", description="what would work instead, from the matrix")
    warning: str = Field(default="", description="caveat on a supported combination (the generic engine)")
    source: str = Field(default="", description="source of the rule that decided")


def load_support(root: Path, labels: Mapping[str, str] | None = None) -> SupportMatrix:
    """Read and validate `root`/support.yaml (`root` is the catalogs folder); `labels`: the engines' names."""
    with open(Path(root) / SUPPORT_FILE, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return SupportMatrix.model_validate({**(data or {}), "labels": dict(labels or {})})


# -- queries ------------------------------------------------------------------------------------------


def label(matrix: SupportMatrix, engine: str) -> str:
    """How an engine id reads in a sentence (its `label` in catalogs/engines.yaml, else the id)."""
    return matrix.labels.get(engine, engine)


def describe_device(device: Device) -> str:
    """'h100-sxm is NVIDIA hopper (datacenter_gpu)'; 'no arch id' when the device carries none."""
    what = f"{device.arch} ({device.kind})" if device.arch else f"{device.kind} (no arch id)"
    return f"{device.id} is {device.vendor} {what}"


def _rules(matrix: SupportMatrix, engine: str, device: Device) -> list[SupportRule]:
    return [r for r in matrix.rules if r.engine == engine and r.matches(device)]


def supported_engines(matrix: SupportMatrix, device: Device) -> list[str]:
    """Engines with at least one rule covering `device`, in matrix order (the generic engine included)."""
    return list(dict.fromkeys(r.engine for r in matrix.rules if r.matches(device)))


def supported_formats(matrix: SupportMatrix, engine: str, device: Device) -> list[str]:
    """Weight formats `engine` runs on `device`, in matrix order."""
    return list(dict.fromkeys(wf for r in _rules(matrix, engine, device) for wf in r.weights))


def supported_kv_formats(matrix: SupportMatrix, engine: str, device: Device, weight_format: str) -> list[str]:
    """KV formats `engine` accepts with `weight_format` weights on `device`, in matrix order."""
    rules = [r for r in _rules(matrix, engine, device) if weight_format in r.weights]
    return list(dict.fromkeys(kv for r in rules for kv in r.kv))


def _real_engines(engines: Iterable[str], exclude: str = "") -> list[str]:
    return [e for e in engines if e not in (GENERIC, exclude)]


def _join(items: Sequence[str], limit: int = 12) -> str:
    shown = list(items[:limit])
    more = len(items) - len(shown)
    return ", ".join(shown) + (f" (+{more} more)" if more > 0 else "")


def _where(matrix: SupportMatrix, engine: str, vendor: str | None = None) -> str:
    """Where an engine runs, from its rules: 'NVIDIA ampere, ada, hopper; AMD cdna3' (kinds for arch-less rules).

    With `vendor`, only that vendor's rules (when the engine has any for it).
    """
    rules = [r for r in matrix.rules if r.engine == engine]
    own = [r for r in rules if vendor is not None and r.vendor.casefold() == vendor.casefold()]
    rules = own or rules
    covered: dict[str, list[str]] = {}
    for r in rules:
        items = list(r.kinds or ("any device",)) if r.archs is None else list(r.archs)
        covered.setdefault(r.vendor, []).extend(items)
    return "; ".join(
        f"{'any vendor' if vendor == ANY_VENDOR else vendor} {', '.join(dict.fromkeys(items))}"
        for vendor, items in covered.items()
    )


def _engines_suggestion(matrix: SupportMatrix, device: Device, exclude: str) -> str:
    engines = _real_engines(supported_engines(matrix, device), exclude)
    where = device.arch or device.kind
    if engines:
        return f"use {' or '.join(engines)} on {device.vendor} {where}"
    return (
        f"no engine in the support matrix runs on {device.vendor} {where}; "
        f"the {GENERIC} engine gives a what-if estimate only"
    )


def _generic_warning(matrix: SupportMatrix, device: Device, weight_format: str) -> str:
    real = [
        e
        for e in _real_engines(supported_engines(matrix, device))
        if weight_format in supported_formats(matrix, e, device)
    ]
    runs = f"{' and '.join(real)} run it there" if real else "no real engine in the matrix runs it there"
    return f"generic engine: {weight_format} on {device.id} is a what-if, not a real engine's support ({runs})"


def check_support(
    matrix: SupportMatrix, engine: str, device: Device, weight_format: str, kv_format: str | None
) -> Verdict:
    """Whether `engine` runs `weight_format` weights with a `kv_format` KV cache on `device`.

    `kv_format` None or "auto" means the engine's own choice: then any KV format the rule lists will do and
    `kv_auto` says which one the engine picks for checkpoints of that weight format (None = the model dtype).
    """
    name = label(matrix, engine)
    engine_rules = [r for r in matrix.rules if r.engine == engine]
    if not engine_rules:
        return Verdict(
            supported=False,
            reason=f"engine '{engine}' is not in the support matrix (known: {', '.join(matrix.engines())})",
            suggestion=_engines_suggestion(matrix, device, engine),
        )
    device_rules = [r for r in engine_rules if r.matches(device)]
    if not device_rules:
        return Verdict(
            supported=False,
            reason=f"{name} runs only on {_where(matrix, engine, device.vendor)}; {describe_device(device)}",
            suggestion=_engines_suggestion(matrix, device, engine),
        )
    weight_rules = [r for r in device_rules if weight_format in r.weights]
    if not weight_rules:
        others = [
            e
            for e in _real_engines(supported_engines(matrix, device), engine)
            if weight_format in supported_formats(matrix, e, device)
        ]
        formats = supported_formats(matrix, engine, device)
        suggestion = f"{name} runs {_join(formats)} there"
        if others:
            suggestion += f"; {weight_format} runs on {' or '.join(others)} there"
        return Verdict(
            supported=False,
            reason=f"{name} does not run {weight_format} weights on {device.id} "
            f"({device.vendor} {device.arch or device.kind})",
            suggestion=suggestion,
        )
    if kv_format is None or kv_format == AUTO_KV:
        rule = weight_rules[0]
    else:
        kv_rules = [r for r in weight_rules if kv_format in r.kv]
        if not kv_rules:
            kvs = supported_kv_formats(matrix, engine, device, weight_format)
            return Verdict(
                supported=False,
                reason=f"{name} does not take a {kv_format} KV cache with {weight_format} weights on {device.id}",
                suggestion=f"KV formats {name} takes there: {_join(kvs)}",
            )
        rule = kv_rules[0]
    return Verdict(
        supported=True,
        math=rule.weights[weight_format],
        kv_auto=rule.kv_auto.get(weight_format),
        warning=_generic_warning(matrix, device, weight_format) if engine == GENERIC else "",
        source=rule.source,
    )


# -- validation ---------------------------------------------------------------------------------------


def matrix_problems(
    matrix: SupportMatrix,
    engine_ids: Iterable[str],
    format_ids: Iterable[str],
    kv_ids: Iterable[str],
    format_engines: Mapping[str, Sequence[str] | None] | None = None,
) -> list[str]:
    """Every engine, weight format and KV format a rule names must exist in the catalogs.

    With `format_engines` (format id -> the `engines` field of formats.yaml), a rule may not give a format to an
    engine that formats.yaml excludes (GGUF is llama.cpp-only) unless it is the generic engine.
    """
    engines, formats, kvs = set(engine_ids), set(format_ids), set(kv_ids)
    problems: list[str] = []
    for i, r in enumerate(matrix.rules):
        where = f"rules[{i}] ({r.engine}, {r.vendor}{' ' + ','.join(r.archs) if r.archs else ''})"
        if r.engine not in engines:
            problems.append(f"{where}: unknown engine '{r.engine}'")
        for wf in r.weights:
            if wf not in formats:
                problems.append(f"{where}: unknown weight format '{wf}'")
            elif format_engines is not None and r.engine != GENERIC:
                allowed = format_engines.get(wf)
                if allowed is not None and r.engine not in allowed:
                    problems.append(f"{where}: formats.yaml runs '{wf}' only on {', '.join(allowed)}")
        for kv in r.kv:
            if kv not in kvs:
                problems.append(f"{where}: unknown KV format '{kv}'")
    return problems
