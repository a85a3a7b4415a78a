"""Resolve a Scenario's ids into the numeric arrays the formulas use (cached per combination)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from llmcap.catalog.loader import Catalog, load_catalog
from llmcap.catalog.schema import Device, Format, KVFormat
from llmcap.catalog.support import Verdict, check_support
from llmcap.estimate.serving import MIXED, PREFILL_FIRST, Engine, System
from llmcap.model.architecture import Architecture
from llmcap.perf.efficiency import efficiency
from llmcap.perf.operators import Layout
from llmcap.perf.shapes import ModelShape, device_spec, effective_math, format_spec
from llmcap.scenario import Scenario


@dataclass(frozen=True)
class EngineConfig:
    """An engine's defaults from catalogs/engines.yaml."""

    id: str
    scheduler: str
    max_batch_tokens: int
    max_seqs: int
    memory_fraction: float
    memory_fraction_of: str
    overhead_gb: float
    kv_reserve: float = 0.0  # admission.kv_reserve_output_fraction
    preempts: bool = True  # admission.preempts

    def arrays(self) -> Engine:
        return Engine(
            mixed=np.array([MIXED if self.scheduler == "mixed" else PREFILL_FIRST]),
            max_batch_tokens=np.array([float(self.max_batch_tokens)]),
            max_seqs=np.array([float(self.max_seqs)]),
            kv_reserve=np.array([float(self.kv_reserve)]),
            preempts=np.array([1.0 if self.preempts else 0.0]),
        )


def engine_config(catalog: Catalog, engine: str) -> EngineConfig:
    raw = catalog.engines.get(engine)
    if raw is None:
        raise ValueError(f"unknown engine '{engine}'; known: {', '.join(catalog.engines)}")
    return EngineConfig(
        id=engine,
        scheduler=raw["scheduler"],
        max_batch_tokens=int(raw["max_batch_tokens"]),
        max_seqs=int(raw["max_seqs"]),
        memory_fraction=float(raw["memory_fraction"]),
        memory_fraction_of=raw.get("memory_fraction_of", "total"),
        overhead_gb=float(raw["overhead_gb"]),
        kv_reserve=float(raw.get("admission", {}).get("kv_reserve_output_fraction", 0.0)),
        preempts=bool(raw.get("admission", {}).get("preempts", True)),
    )


def scenario_layout(scn: Scenario) -> Layout:
    """The scenario's parallel layout as length-one arrays."""
    return Layout(*(np.array([float(v)]) for v in (scn.tp, scn.pp, scn.ep, scn.dp)))


class UnsupportedError(ValueError):
    """The engine does not run this combination (catalogs/support.yaml); the message says why and what would."""


def support_verdict(catalog: Catalog, engine: str, device: Device, weights: str, kv: str | None) -> Verdict | None:
    """The support matrix's verdict on a combination; raises UnsupportedError with its reason and suggestion.

    None when it cannot be checked: no matrix, or a device without an `arch` (a user's custom device), which
    then runs the format's own math as before.
    """
    if catalog.support is None or device.arch is None:
        return None
    verdict = check_support(catalog.support, engine, device, weights, kv)
    if not verdict.supported:
        raise UnsupportedError(f"{verdict.reason}; {verdict.suggestion}" if verdict.suggestion else verdict.reason)
    return verdict


@dataclass(frozen=True)
class Resolved:
    """A scenario with its catalog objects and numeric arrays."""

    scenario: Scenario
    model_id: str
    arch: Architecture
    device: Device
    fmt: Format
    kv: KVFormat
    math: str  # math precision after fallback
    engine: EngineConfig
    system: System
    engine_math: str = ""  # math path the engine's kernels take for the weights (support matrix), before fallback
    notes: tuple[str, ...] = ()  # what the user should know: a generic what-if, an unchecked custom device


@functools.lru_cache(maxsize=4096)
def _shape(arch: Architecture) -> ModelShape:
    return ModelShape.from_arch(arch)


@functools.lru_cache(maxsize=4096)
def _parts(catalog: Catalog, device_json: str, fmt_id: str, kv_id: str, engine: str, math: str):
    device = Device.model_validate_json(device_json)
    fmt, kv = catalog.format(fmt_id), catalog.kv_format(kv_id)
    dev = device_spec(device, fmt, catalog.math_fallback, math)
    eff = efficiency(catalog.efficiency, device.kind, engine)
    return fmt, kv, dev, format_spec(fmt, kv), eff, effective_math(device, math, catalog.math_fallback)


def resolve(scn: Scenario, catalog: Catalog | None = None) -> Resolved:
    """Look up the scenario's ids in `catalog` (the user's own devices and models reach it one way:
    llmcap.catalog.custom.with_custom)."""
    catalog = catalog or load_catalog()
    entry = catalog.model(scn.model)
    arch, model_id = entry.arch, entry.meta.id
    device = catalog.device(scn.hardware)
    fmt = catalog.format(scn.weight_format)
    if fmt.engines is not None and scn.engine not in fmt.engines and scn.engine != "generic":
        raise ValueError(f"format '{fmt.id}' runs on {', '.join(fmt.engines)}, not {scn.engine}")
    verdict = support_verdict(catalog, scn.engine, device, fmt.id, scn.kv_format)
    engine_math = verdict.math if verdict is not None and verdict.math else fmt.math
    kv_id = scn.kv_format or (verdict.kv_auto if verdict is not None else None) or fmt.kv_default
    notes: list[str] = []
    if verdict is not None and verdict.warning:
        notes.append(verdict.warning)
    if verdict is None and catalog.support is not None and device.arch is None:
        notes.append(f"{device.name} names no architecture (arch): engine support was not checked")
    fmt, kv, dev, fspec, eff, math = _parts(catalog, device.model_dump_json(), fmt.id, kv_id, scn.engine, engine_math)
    shape = _shape(arch)
    layout = scenario_layout(scn)
    return Resolved(
        scenario=scn,
        model_id=model_id,
        arch=arch,
        device=device,
        fmt=fmt,
        kv=kv,
        math=math,
        engine=engine_config(catalog, scn.engine),
        system=System(shape=shape, dev=dev, fmt=fspec, layout=layout, eff=eff),
        engine_math=engine_math,
        notes=tuple(notes),
    )


def layer_check(arch: Architecture, scn: Scenario) -> str | None:
    """Why a layout cannot split this model (or serve this request), or None.

    Tensor parallelism splits attention by heads, so tp cannot exceed them (vLLM and SGLang refuse a tp that
    does not divide the head count; here only the impossible tp > heads is refused). A request longer than the
    model's context window cannot be served at all: vLLM refuses a prompt beyond max_model_len and stops
    generating at it, so input + output - 1 positions (the last token is never fed back) must fit.
    """
    if scn.tp // scn.dp > arch.num_heads:
        group = f"tp={scn.tp}" if scn.dp == 1 else f"tp/dp={scn.tp // scn.dp}"
        return f"{group} exceeds the model's {arch.num_heads} attention heads"
    if scn.input_len + scn.output_len - 1 > arch.max_context:
        return (
            f"input+output = {scn.input_len + scn.output_len:,} tokens exceeds the model's context window "
            f"of {arch.max_context:,}"
        )
    if scn.pp > arch.num_layers:
        return f"pp={scn.pp} exceeds the model's {arch.num_layers} layers"
    if arch.moe is not None and scn.ep > arch.moe.num_experts:
        return f"ep={scn.ep} exceeds the model's {arch.moe.num_experts} experts"
    if arch.moe is None and scn.ep > 1:
        return f"ep={scn.ep} needs a mixture-of-experts model"
    return None
