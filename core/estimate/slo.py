"""Service-level objectives: does an estimate meet a TTFT and a TPOT target?

The closed-loop estimator gives mean latencies, so today the check compares the mean with the objective
whatever percentile the objective names; `statistic` says which was compared.
"""

from __future__ import annotations

from typing import Literal

from llmcap.catalog.schema import Frozen
from llmcap.estimate.single import ServingResult


class SloCheck(Frozen):
    metric: Literal["TTFT", "TPOT"]
    objective_ms: float
    percentile: int
    estimate_ms: float
    statistic: str
    met: bool


def slo_checks(serving: ServingResult, ttft_ms: float, tpot_ms: float, percentile: int) -> list[SloCheck]:
    """One row per objective: the estimate, the target, and whether estimate <= target."""
    return [
        SloCheck(
            metric=metric,
            objective_ms=target,
            percentile=percentile,
            estimate_ms=value,
            statistic="mean",
            met=value <= target,
        )
        for metric, value, target in (("TTFT", serving.ttft_ms, ttft_ms), ("TPOT", serving.tpot_ms, tpot_ms))
    ]
