"""Compare the estimator with measured results: MAPE, median error and share within 25%,
per metric, per hardware, per engine and per device class, plus the worst rows (`llmcap validate`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmcap.calibration.measured import Measurement, metric_arrays, read_all
from llmcap.catalog.loader import Catalog, load_catalog
from llmcap.estimate.sweep import build_input, evaluate


@dataclass(frozen=True)
class Compared:
    m: Measurement
    device_class: str
    predicted: float | None  # None: did not resolve or did not fit
    note: str

    @property
    def error(self) -> float | None:
        """Signed relative error (predicted - measured) / measured."""
        return None if self.predicted is None else (self.predicted - self.m.value) / self.m.value


def compare(paths: list[Path | str], catalog: Catalog | None = None) -> tuple[list[Compared], list[str]]:
    """Predict every measured row; skipped rows come back as messages."""
    catalog = catalog or load_catalog()
    ms, skipped = read_all(paths)
    if not ms:
        return [], skipped
    inp, errors = build_input([m.scenario for m in ms], catalog)
    ok = [m for m, e in zip(ms, errors, strict=True) if e is None]
    res = evaluate(inp)
    pred = metric_arrays(res, inp, [m.metric for m in ok])
    out: list[Compared] = []
    j = 0
    for m, err in zip(ms, errors, strict=True):
        if err is not None:
            out.append(Compared(m, "?", None, err))
            continue
        kind = catalog.device(m.scenario.hardware).kind
        fits = bool(res.fits[j])
        value = float(pred[j]) if fits and np.isfinite(pred[j]) else None
        out.append(Compared(m, kind, value, "" if fits else "does not fit"))
        j += 1
    return out, skipped


def summarize(rows: list[Compared], by: str) -> list[dict]:
    """Error figures grouped by `by` (metric, hardware, engine or device_class) and metric."""
    groups: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if r.error is None:
            continue
        key = {
            "metric": "all",
            "hardware": r.m.scenario.hardware,
            "engine": r.m.scenario.engine,
            "device_class": r.device_class,
        }[by]
        groups.setdefault((key, r.m.metric), []).append(r.error)
    out = []
    for (key, metric), errs in sorted(groups.items()):
        e = np.array(errs)
        out.append(
            {
                by: key,
                "metric": metric,
                "rows": len(e),
                "mape_pct": round(100 * float(np.mean(np.abs(e))), 1),
                "median_error_pct": round(100 * float(np.median(e)), 1),
                "within_25_pct": round(100 * float(np.mean(np.abs(e) <= 0.25)), 1),
            }
        )
    return out


def worst(rows: list[Compared], n: int = 10) -> list[dict]:
    scored = sorted((r for r in rows if r.error is not None), key=lambda r: -abs(r.error or 0))
    return [
        {
            "id": r.m.id,
            "metric": r.m.metric,
            "model": r.m.scenario.model,
            "hardware": r.m.scenario.hardware,
            "engine": r.m.scenario.engine,
            "measured": round(r.m.value, 2),
            "predicted": round(r.predicted or 0.0, 2),
            "error_pct": round(100 * (r.error or 0.0), 1),
        }
        for r in scored[:n]
    ]
