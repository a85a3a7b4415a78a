"""Fitting the estimator's error bands (llmcap.estimate.bands applies them): the percentiles of cross-validated
residuals per regime, the width factor that makes them cover 80% of held-out values, and the table's file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from llmcap.catalog.loader import catalog_dir
from llmcap.estimate.bands import ANY, FILE, KEYS, MIN_RESIDUALS, QUANTILES, forget_tables, level_codes, levels

TARGET_COVERAGE = 0.80
FACTOR_GRID = np.arange(0.5, 4.001, 0.05)  # width factors tried
MIN_FACTOR_RESIDUALS = 100  # a metric with fewer held-out residuals takes the "*" factor


def fit_bands(
    reg: np.ndarray, residuals: np.ndarray, min_n: int = MIN_RESIDUALS, codes: list[np.ndarray] | None = None
) -> list[dict]:
    """10th and 90th percentiles of the residuals of every regime, at every fallback level, with at least `min_n`
    residuals; the global band always. `codes`: level_codes(reg), if already computed. Entries sorted by level
    (finest first), then key: the same residuals give the same table."""
    r = np.asarray(residuals, dtype=float)
    ok = np.isfinite(r)
    r = r[ok]
    codes = [c[ok] for c in (codes if codes is not None else level_codes(reg))]
    out: list[dict] = []
    for kept, level in zip(levels(), codes, strict=True):
        uniq, inv = np.unique(level, return_inverse=True)
        order = np.argsort(inv, kind="stable")
        bounds = np.searchsorted(inv[order], np.arange(len(uniq) + 1))
        for i, code in enumerate(uniq):
            vals = r[order[bounds[i] : bounds[i + 1]]]
            if len(vals) < min_n and kept:
                continue
            q10, q90 = np.quantile(vals, QUANTILES)
            entry = dict(zip(KEYS, code.split("|"), strict=True))
            out.append({**entry, "n": int(len(vals)), "q10": round(float(q10), 4), "q90": round(float(q90), 4)})
    if not len(r):
        out.append({**dict.fromkeys(KEYS, ANY), "n": 0, "q10": 0.0, "q90": 0.0})
    return out


def choose_factors(
    residuals: np.ndarray, q10: np.ndarray, q90: np.ndarray, metrics: np.ndarray, min_n: int = MIN_FACTOR_RESIDUALS
) -> dict[str, float]:
    """The smallest width factor k (FACTOR_GRID) such that [k q10, k q90] covers TARGET_COVERAGE of `residuals`,
    which must not have been used to fit their q10, q90: per metric with at least `min_n` residuals, and "*" for
    all (the fallback). Sorted keys."""
    r = np.asarray(residuals, dtype=float)
    metrics = np.asarray(metrics, dtype=object)

    def k_for(sel: np.ndarray) -> float:
        for k in FACTOR_GRID:
            inside = (r[sel] >= np.minimum(k * q10[sel], 0.0)) & (r[sel] <= np.maximum(k * q90[sel], 0.0))
            if inside.mean() >= TARGET_COVERAGE:
                return float(round(k, 2))
        return float(round(FACTOR_GRID[-1], 2))

    if not len(r):
        return {ANY: 1.0}
    out = {ANY: k_for(np.ones(len(r), dtype=bool))}
    for m in sorted(set(metrics)):
        sel = metrics == m
        if sel.sum() >= min_n:
            out[m] = k_for(sel)
    return out


def write_table(doc: dict, path: Path | None = None) -> Path:
    path = path if path is not None else catalog_dir() / FILE
    header = (
        "# Error bands of the estimator (core/estimate/bands.py), fitted by `llmcap validate --cv --write`\n"
        "# from cross-validated residuals log(predicted/measured) on the measured data listed under `data` (copies of\n"
        "# ../shared/reference in catalogs/measured/). Do not edit by hand: re-run it.\n"
    )
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    forget_tables()
    return path
