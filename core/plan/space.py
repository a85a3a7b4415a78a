"""The planner's search space as sweep rows.

A family is one (device, weight format, KV format, engine) combination: it is resolved once through
the catalog, then tiled over every parallel layout the model's shapes allow and over concurrency caps
(the engine's max running sequences) with `sweep.expand`, so the whole space is a single SweepInput.

Layout rules (what serving engines accept):
- TP is a power of two up to the scale-up domain (at least 8 is offered on devices with no scale-up
  link, over PCIe), and must divide the attention heads (vLLM and SGLang shard heads evenly);
- PP is a power of two, at most the layer count, used only where TP is already at its largest;
- EP is 1 or TP for mixture-of-experts models (experts split inside the tensor-parallel group);
- CPUs, Apple SoCs and edge boards serve one device per replica (scale by replicas only).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from llmcap.catalog.loader import Catalog
from llmcap.catalog.support import GENERIC, supported_engines
from llmcap.estimate.resolve import Resolved, UnsupportedError, resolve
from llmcap.estimate.sweep import SweepInput, _concat_tree, expand, resolved_input
from llmcap.model.architecture import Architecture
from llmcap.perf.operators import Layout
from llmcap.plan.request import AUTO_ENGINES
from llmcap.scenario import Scenario

TP_OPTIONS = (1, 2, 4, 8, 16, 32, 64)
PP_OPTIONS = (1, 2, 4, 8)
CAP_OPTIONS = (8, 16, 32, 64, 128, 256, 512, 1024)
MULTI_DEVICE_KINDS = ("datacenter_gpu", "accelerator", "consumer_gpu")


@dataclass(frozen=True)
class Family:
    hardware: str
    weight_format: str
    kv_format: str
    engine: str
    resolved: Resolved


@dataclass(frozen=True)
class Space:
    """Sweep rows of the whole space, with the coordinates of each row."""

    inp: SweepInput
    families: list[Family]
    family: np.ndarray  # index into families, per row
    tp: np.ndarray
    pp: np.ndarray
    ep: np.ndarray
    max_seqs: np.ndarray

    @property
    def devices_per_replica(self) -> np.ndarray:
        return self.tp * self.pp

    def __len__(self) -> int:
        return len(self.tp)

    def take(self, rows: np.ndarray) -> Space:
        """The sub-space of the given rows."""
        return Space(
            inp=expand(self.inp, rows),
            families=self.families,
            family=self.family[rows],
            tp=self.tp[rows],
            pp=self.pp[rows],
            ep=self.ep[rows],
            max_seqs=self.max_seqs[rows],
        )


def layouts(arch: Architecture, domain: int, max_devices: int, multi_device: bool = True) -> list[tuple[int, int, int]]:
    """(tp, pp, ep) layouts of one replica the model allows, within max_devices."""
    if not multi_device:
        return [(1, 1, 1)] if max_devices >= 1 else []
    tp_top = max(domain, 8)
    tps = [t for t in TP_OPTIONS if t <= tp_top and t <= max_devices and arch.num_heads % t == 0]
    out = []
    for tp in tps:
        pps = [1] + ([p for p in PP_OPTIONS[1:] if p <= arch.num_layers] if tp == tps[-1] else [])
        eps = {1, tp} if arch.moe is not None and tp <= arch.moe.num_experts else {1}
        out += [(tp, pp, ep) for pp in pps for ep in sorted(eps) if tp * pp <= max_devices]
    return out


def family_engines(catalog: Catalog, hardware: str, engines: list[str]) -> list[str]:
    """The engines to try on a device: the given ones, with `auto` expanded to the real engines the support matrix
    runs there (never the generic what-if engine; a device without an arch, e.g. a custom one, gets generic)."""
    out: list[str] = []
    for eng in engines:
        if eng != AUTO_ENGINES:
            out.append(eng)
            continue
        device = catalog.device(hardware)
        if catalog.support is None or device.arch is None:
            out.append(GENERIC)
        else:
            out += [e for e in supported_engines(catalog.support, device) if e != GENERIC]
    return list(dict.fromkeys(out))


def resolve_families(
    catalog: Catalog, model: str, hardware: list[str], weights: list[str], kv: list[str | None], engines: list[str]
) -> tuple[list[Family], list[tuple[dict, str]]]:
    """Resolve every allowed combination once; the ones that cannot run come back with the reason
    ("unsupported: ..." where the engine does not run it there, "invalid: ..." otherwise). With `auto` engines a
    format the device's engines do not run is skipped silently: no engine was asked for by name."""
    families, rejected = [], []
    auto = AUTO_ENGINES in engines
    for hw in hardware:
        try:
            hw_engines = family_engines(catalog, hw, engines)
        except (KeyError, ValueError) as exc:
            rejected.append(({"hardware": hw, "weight_format": "", "kv_format": "", "engine": ""}, f"invalid: {exc}"))
            continue
        for w in weights:
            for k in kv:
                runs = False
                for eng in hw_engines:
                    label = {"hardware": hw, "weight_format": w, "kv_format": k or "", "engine": eng}
                    try:
                        scn = Scenario(model=model, hardware=hw, weight_format=w, kv_format=k, engine=eng)
                        r = resolve(scn, catalog)
                    except UnsupportedError as exc:
                        if not auto:
                            rejected.append((label, f"unsupported: {exc}"))
                        continue
                    except (KeyError, ValueError) as exc:
                        rejected.append((label, f"invalid: {exc}"))
                        continue
                    runs = True
                    families.append(Family(hw, r.fmt.id, r.kv.id, eng, r))
                if auto and not runs and hw_engines:
                    label = {"hardware": hw, "weight_format": w, "kv_format": k or "", "engine": AUTO_ENGINES}
                    rejected.append((label, f"unsupported: no engine runs {w} weights on {hw} (catalogs/support.yaml)"))
    return families, rejected


def build_space(
    families: list[Family], input_len: float, output_len: float, max_devices: int, caps: tuple[int, ...] = CAP_OPTIONS
) -> Space:
    """Tile every family over its layouts and concurrency caps (caps above the engine default are dropped)."""
    blocks = []  # per family: (layouts x caps) rows of (family, tp, pp, ep, cap)
    for i, fam in enumerate(families):
        r = fam.resolved
        default_cap = r.engine.max_seqs
        fam_caps = np.array(sorted({c for c in caps if c < default_cap} | {default_cap}), dtype=float)
        lay = np.array(layouts(r.arch, int(r.system.dev.domain[0]), max_devices, r.device.kind in MULTI_DEVICE_KINDS))
        if lay.size:
            grid = np.repeat(lay, len(fam_caps), axis=0)
            blocks.append(np.column_stack([np.full(len(grid), i), grid, np.tile(fam_caps, len(lay))]))
    if not blocks:
        raise ValueError("no layout of the model fits the allowed devices")
    table = np.concatenate(blocks).astype(float)
    base = _concat_tree([resolved_input(f.resolved) for f in families])
    idx = table[:, 0].astype(int)
    arr = dict(zip(("tp", "pp", "ep", "seqs"), table[:, 1:].T, strict=True))
    n = len(idx)
    rows = expand(
        base,
        idx,
        layout=Layout(tp=arr["tp"], pp=arr["pp"], ep=arr["ep"], dp=np.ones_like(arr["tp"])),
        input_len=np.full(n, float(input_len)),
        output_len=np.full(n, float(output_len)),
        concurrency=np.full(n, np.inf),
        replicas=np.ones(n),
        layout_ok=np.ones(n, dtype=bool),
    )
    rows = replace(
        rows,
        engine=replace(rows.engine, max_seqs=arr["seqs"]),
    )
    return Space(
        inp=rows, families=families, family=idx, tp=arr["tp"], pp=arr["pp"], ep=arr["ep"], max_seqs=arr["seqs"]
    )
