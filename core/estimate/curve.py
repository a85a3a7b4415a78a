"""Latency and throughput of one scenario over concurrency: the points of its latency-throughput curve.

The scenario is resolved once and its arrays tiled over the concurrency levels (`sweep.expand`), so the
whole curve is one vectorized `evaluate` call through the same formulas as `estimate()`, also for an
uploaded config.json or a custom device, which `sweep()` (catalog ids only) cannot take.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from llmcap.catalog.loader import Catalog
from llmcap.estimate.resolve import resolve
from llmcap.estimate.sweep import evaluate, expand, resolved_input
from llmcap.scenario import Scenario

MS = 1e3
CURVE_POINTS = 24


def concurrency_levels(max_concurrency: int, current: int | None = None, points: int = CURVE_POINTS) -> np.ndarray:
    """About `points` whole concurrencies from 1 to `max_concurrency`, log-spaced, with `current` included."""
    top = max(int(max_concurrency), 1)
    levels = np.unique(np.round(np.geomspace(1, top, num=min(points, top))))
    if current is not None and current >= 1:
        levels = np.union1d(levels, [float(current)])
    return levels.astype(float)


def concurrency_curve(
    scn: Scenario,
    levels: np.ndarray,
    catalog: Catalog | None = None,
) -> pl.DataFrame:
    """One row per concurrency level (requests in flight over all replicas): latency and throughput.

    Rows where the scenario does not fit are left out.
    """
    inp = resolved_input(resolve(scn, catalog))
    conc = np.asarray(levels, dtype=float)
    res = evaluate(expand(inp, np.zeros(len(conc), dtype=int), concurrency=conc))
    df = pl.DataFrame(
        {
            "concurrency": conc.astype(np.int64),
            "ttft_ms": res.ttft_s * MS,
            "tpot_ms": res.tpot_s * MS,
            "e2e_ms": res.e2e_s * MS,
            "requests_per_s": res.requests_per_s,
            "output_tokens_per_s": res.output_tokens_per_s,
            "output_tokens_per_s_per_device": res.output_tokens_per_s / scn.devices,
            "fits": res.fits,
        }
    )
    return df.filter(pl.col("fits")).drop("fits")
