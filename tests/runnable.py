"""Test helper: give a scenario an engine that runs it (catalogs/support.yaml), for tests that sweep the catalog.

Its own engine when the support matrix accepts the combination, else the first real engine that runs that
weight format on that device, else the generic engine (a what-if), else None (nothing runs it: e.g. a GGUF
format on a TPU).
"""

from __future__ import annotations

from llmcap.catalog.loader import Catalog
from llmcap.catalog.support import GENERIC, check_support, supported_engines
from llmcap.scenario import Scenario


def runnable_engine(cat: Catalog, hardware: str, weight_format: str, engine: str | None = None) -> str | None:
    device = cat.device(hardware)
    if cat.support is None or device.arch is None:
        return engine or GENERIC
    order = ([engine] if engine else []) + [e for e in supported_engines(cat.support, device) if e != GENERIC]
    for e in [*order, GENERIC]:
        if check_support(cat.support, e, device, weight_format, None).supported:
            return e
    return None


def runnable(cat: Catalog, scn: Scenario) -> Scenario | None:
    engine = runnable_engine(cat, scn.hardware, scn.weight_format, scn.engine)
    return None if engine is None else scn.model_copy(update={"engine": engine})
