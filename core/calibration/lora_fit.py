"""A candidate per-step cost of batched LoRA kernels, fitted to the step-level published measurements of
catalogs/measured/lora_overhead.yaml and judged leave-one-source-out against the roofline of llmcap.load.lora.

Candidate: every adapted projection runs two small GEMMs a step, shrink (x A^T, r outputs) then expand (. B^T)
(Punica's SGMV/BGMV, Chen et al. 2023, arXiv 2310.18547; vLLM's lora_shrink/lora_expand), and at decode their time is
taken as a fixed k seconds per projection (launch, gather, a tiny GEMM) rather than bytes: n k per step, n the adapted
projections (llmcap.load.lora.adapted_projections), on top of the roofline's weight reads.

For a step-level observation with a measured base step time t (base_step_ms), both models predict the LoRA/base
step-time ratio:
    roofline:   R = 1 + c              c = d a / W, the adapters' read time over the least time a base step can take
                                       (lora_evidence.roofline_slowdown_bound: its largest value on any device)
    candidate:  R = 1 + c + k n / t    n adapted projections a step (adapted_projections), k seconds each
k is fitted by least squares on ln R over the training points (one unknown, k >= 0; with a single point it is exactly
k = (R - 1 - c) t / n). An observation enters only with its base step time and its adapted projections known (targets or
projections_per_layer), so MoE-expert adapters and unstated targets are left out. The error of a prediction is
|ln(R_pred / R_meas)|; leave-one-source-out predicts each source's points (a source: one thread or result file) with k
fitted on the other sources' points only. The constant is wired into the model only if, on the points measured with
CUDA graphs, there are at least MIN_POINTS from MIN_SOURCES sources and the fit's mean error is below CLEAR_MARGIN
times the roofline's (docs/method.md "LoRA adapters").
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
from scipy.optimize import minimize_scalar

from llmcap.catalog.loader import Catalog
from llmcap.load.lora import adapted_projections
from llmcap.load.lora_evidence import LoraObservation, lora_evidence, roofline_slowdown_bound
from llmcap.load.rate_types import LoadError

MIN_POINTS = 3
MIN_SOURCES = 2
CLEAR_MARGIN = 0.5  # the fit must at least halve the roofline's mean leave-one-source-out error
K_MAX_S = 0.01  # search bound for k: 10 ms a projection, far above any measurement
_SOURCE = re.compile(r"github\.com/[^/\s]+/[^/\s]+(?:/(?:issues|pull)/\d+)?")


@dataclasses.dataclass(frozen=True)
class FitPoint:
    """One step-level observation as the fit sees it."""

    id: str
    source: str
    cuda_graphs: bool | None
    ratio: float  # measured LoRA / base step time
    roofline: float  # c: the roofline's largest slowdown
    projections_per_s: float  # n / t: adapted projections over the measured base step time


def source_key(o: LoraObservation) -> str:
    """The thread or repository an observation comes from (one source in leave-one-source-out)."""
    m = _SOURCE.search(o.source)
    return m.group(0) if m else o.source.split()[0]


def fit_points(
    catalog: Catalog, cuda_graphs_only: bool = False, observations: tuple[LoraObservation, ...] | None = None
) -> tuple[FitPoint, ...]:
    """The step-level observations with a base step time and known adapted projections (optionally CUDA graphs only)."""
    out = []
    for o in lora_evidence() if observations is None else observations:
        if o.level != "step" or o.base_step_ms is None or (o.targets is None and o.projections_per_layer is None):
            continue
        if cuda_graphs_only and o.cuda_graphs is not True:
            continue
        n = adapted_projections(catalog.model(o.model).arch, o.targets or "attn", o.projections_per_layer)
        out.append(FitPoint(o.id, source_key(o), o.cuda_graphs, 1.0 / o.lora_over_base,
                            roofline_slowdown_bound(o, catalog), n / (o.base_step_ms / 1e3)))  # fmt: skip
    return tuple(out)


def predicted_ratio(p: FitPoint, k_launch_s: float) -> float:
    """LoRA/base step-time ratio the candidate predicts, 1 + c + k n / t (k_launch_s = 0: the roofline's, 1 + c)."""
    return 1.0 + p.roofline + k_launch_s * p.projections_per_s


def fit_k_launch_s(points: tuple[FitPoint, ...]) -> float:
    """k (seconds per adapted projection a step) minimising sum (ln R_pred - ln R_meas)^2 over `points`, k >= 0."""
    if not points:
        raise LoadError("LoRA fit: no step-level observation to fit")
    c = np.array([p.roofline for p in points])
    x = np.array([p.projections_per_s for p in points])
    y = np.log([p.ratio for p in points])

    def sse(k: float) -> float:
        return float(np.sum((np.log1p(c + k * x) - y) ** 2))

    res = minimize_scalar(sse, bounds=(0.0, K_MAX_S), method="bounded", options={"xatol": 1e-12})
    return float(res.x)


def log_error(pred: float, meas: float) -> float:
    """|ln(pred / meas)|."""
    return abs(math.log(pred / meas))


def leave_one_source_out(points: tuple[FitPoint, ...]) -> list[dict[str, object]]:
    """Per point: k fitted without its source, and the roofline's and the candidate's predictions and errors (points
    whose source is the only one are left out: nothing to fit on)."""
    rows: list[dict[str, object]] = []
    for p in points:
        train = tuple(q for q in points if q.source != p.source)
        if not train:
            continue
        k = fit_k_launch_s(train)
        roof, cand = predicted_ratio(p, 0.0), predicted_ratio(p, k)
        rows.append({"id": p.id, "source": p.source, "measured_ratio": p.ratio, "k_launch_s": k,
                     "roofline_ratio": roof, "fit_ratio": cand, "roofline_error": log_error(roof, p.ratio),
                     "fit_error": log_error(cand, p.ratio)})  # fmt: skip
    return rows


def acceptance(catalog: Catalog) -> dict[str, object]:
    """Whether the fitted constant may replace the roofline: points and sources with CUDA graphs, the LOSO mean errors
    of both models on them, and the verdict with its reason."""
    pts = fit_points(catalog, cuda_graphs_only=True)
    sources = {p.source for p in pts}
    rows = leave_one_source_out(pts)
    roof = float(np.mean([r["roofline_error"] for r in rows])) if rows else None
    fit = float(np.mean([r["fit_error"] for r in rows])) if rows else None
    if len(pts) < MIN_POINTS or len(sources) < MIN_SOURCES:
        reason = (f"{len(pts)} CUDA-graph step-level point(s) from {len(sources)} source(s); "
                  f"at least {MIN_POINTS} from {MIN_SOURCES} are needed")  # fmt: skip
        ok = False
    else:
        ok = fit is not None and roof is not None and fit < CLEAR_MARGIN * roof
        reason = f"leave-one-source-out mean error {fit:.3f} (fit) vs {roof:.3f} (roofline)"
    return {"points": len(pts), "sources": len(sources), "roofline_error": roof, "fit_error": fit, "accepted": ok,
            "reason": reason}  # fmt: skip
