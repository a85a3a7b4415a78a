"""What-ifs and sensitivity: how the recommendation and its cost move when an input changes.

Each what-if re-plans with one input changed (device memory bandwidth or compute scaled, prices
scaled, traffic multiplied) and reports the new cheapest deployment. The sensitivity table moves each
input down and up by the same step and gives the cost elasticity by central difference,
    elasticity = ((cost_up - cost_down) / cost_base) / (2 * step),
so +1 means the cost moves one for one with the input. To stay interactive both re-plan only over the
device types of the base plan's leading candidates.
"""

from __future__ import annotations

from llmcap.catalog.loader import Catalog, load_catalog
from llmcap.catalog.schema import Frozen
from llmcap.plan.planner import cheapest
from llmcap.plan.request import Candidate, Plan, PlanRequest

LEADERS = 3
DEFAULT_WHATIFS = (
    ("memory bandwidth +20%", {"mem_bw_scale": 1.2}),
    ("compute +20%", {"compute_scale": 1.2}),
    ("prices -20%", {"price_scale": 0.8}),
    ("traffic x2", {"rate_rps": 2.0}),
)
# input -> (PlanRequest field, multiplies the base value?)
SENSITIVITY_INPUTS = (
    ("memory bandwidth", "mem_bw_scale"),
    ("compute", "compute_scale"),
    ("price", "price_scale"),
    ("request rate", "rate_rps"),
    ("prompt length", "input_len"),
    ("output length", "output_len"),
    ("TTFT objective", "slo.ttft_ms"),
    ("TPOT objective", "slo.tpot_ms"),
)


class WhatIf(Frozen):
    name: str
    feasible: bool
    hardware: str
    devices: int
    mode: str
    usd_per_hour: float | None
    change_pct: float | None  # vs the base recommendation's $/hour


class Sensitivity(Frozen):
    input: str
    step_pct: float
    usd_per_hour_down: float | None
    usd_per_hour_up: float | None
    elasticity: float | None


def _focus(base: Plan) -> PlanRequest:
    """The base request restricted to the device types of its leading candidates (catalog ids only)."""
    req = base.request
    hw = []
    for c in base.candidates[:LEADERS]:
        if c.mode != "mixed" and " (prefill) + " not in c.hardware and c.hardware not in hw:
            hw.append(c.hardware)
    return req.model_copy(update={"hardware": tuple(hw) or req.hardware, "allow_mixed": False, "top": 1})


def _cheapest(req: PlanRequest, catalog: Catalog) -> tuple[float | None, Candidate | None]:
    c = cheapest(req, catalog)
    return (c.usd_per_hour if c else None), c


def what_ifs(base: Plan, catalog: Catalog | None = None, changes=DEFAULT_WHATIFS) -> list[WhatIf]:
    """The cheapest deployment under each change, against the base recommendation."""
    catalog = catalog or load_catalog()
    focus = _focus(base)
    ref = base.candidates[0].usd_per_hour if base.candidates else None
    out = []
    for name, update in changes:
        upd = {k: (getattr(focus, k) * v if k == "rate_rps" else v) for k, v in update.items()}
        usd, c = _cheapest(focus.model_copy(update=upd), catalog)
        out.append(
            WhatIf(
                name=name,
                feasible=c is not None,
                hardware=c.hardware if c else "",
                devices=c.devices if c else 0,
                mode=c.mode if c else "",
                usd_per_hour=usd,
                change_pct=(usd / ref - 1) * 100 if usd is not None and ref else None,
            )
        )
    return out


def _scaled(req: PlanRequest, field: str, factor: float) -> PlanRequest:
    """`req` with one input multiplied: a PlanRequest field, or an objective (`slo.ttft_ms`)."""
    if field.startswith("slo."):
        name = field.removeprefix("slo.")
        return req.model_copy(update={"slo": req.slo.model_copy(update={name: getattr(req.slo, name) * factor})})
    return req.model_copy(update={field: getattr(req, field) * factor})


def sensitivity(base: Plan, catalog: Catalog | None = None, step: float = 0.1) -> list[Sensitivity]:
    """Cost elasticity of the recommendation to each input (moved by -step and +step)."""
    catalog = catalog or load_catalog()
    focus = _focus(base)
    ref, _ = _cheapest(focus, catalog)
    out = []
    for name, field in SENSITIVITY_INPUTS:
        down, _ = _cheapest(_scaled(focus, field, 1 - step), catalog)
        up, _ = _cheapest(_scaled(focus, field, 1 + step), catalog)
        el = (up - down) / ref / (2 * step) if None not in (up, down) and ref else None
        out.append(
            Sensitivity(input=name, step_pct=step * 100, usd_per_hour_down=down, usd_per_hour_up=up, elasticity=el)
        )
    return out
