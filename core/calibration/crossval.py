"""Out-of-sample error of the estimator (`llmcap validate --cv`): grouped cross-validation and error bands.

Schemes: leave one model out, leave one device out. For each held-out group the efficiency parameters are refitted
(calibrate.fit_rows, the fit `llmcap calibrate` runs) on the other rows only and the held-out rows are predicted
with them; parameters the reduced fit lacks (an engine or device class only the held-out group had) fall back to
the default level, as the estimator does for a class the table does not list. `in_sample` is the same fit on every
row, predicting the rows it was fitted on. Rows are resolved once (build_input) and sliced for each fold.

Per row: the signed log residual log(predicted/measured) and the relative error predicted/measured - 1. Summaries:
MAPE, median absolute error and share within 25% per metric, per device class, per engine and per concurrency band,
for each scheme beside in-sample.

Error bands (uncertainty.py): the 10th/90th percentiles of the residuals of both schemes pooled, by regime. Their
coverage is checked nested: the rows of each held-out group are judged by bands fitted without any residual of that
group's rows (neither scheme's), so the coverage is out of sample too. Deterministic throughout.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np

from llmcap.calibration import uncertainty as unc
from llmcap.calibration.calibrate import (
    Fit,
    Rows,
    data_hashes,
    fit_rows,
    predict,
    resolve_rows,
)
from llmcap.calibration.measured import read_all, skip_reasons
from llmcap.catalog.loader import Catalog, load_catalog
from llmcap.estimate import bands

SCHEMES = {"leave_model_out": "model", "leave_device_out": "hardware"}
SHORT = {"in_sample": "in", "leave_model_out": "lomo", "leave_device_out": "lodo"}
CONCURRENCY_BANDS = ("1", "2-16", "17-128", ">128", "max")
SLICES = ("metric", "device_class", "engine", "concurrency")

Fitter = Callable[[Rows], tuple[Fit, list[float]]]


@dataclasses.dataclass(frozen=True)
class Scheme:
    """Predictions of every row under one scheme (NaN: the scenario does not fit in memory)."""

    name: str
    group: np.ndarray  # the held-out group each row was predicted in ("" in sample)
    predicted: np.ndarray
    load_ratio: np.ndarray  # running requests per replica / max_concurrency, from that fold's evaluation
    bound: np.ndarray  # the metric's phase bound (index into timing.BOUNDS)

    def residuals(self, measured: np.ndarray) -> np.ndarray:
        return np.log(self.predicted / measured)


@dataclasses.dataclass(frozen=True)
class CrossVal:
    rows: Rows
    schemes: dict[str, Scheme]  # in_sample, leave_model_out, leave_device_out
    seconds: float = 0.0

    def group_of(self, scheme: str) -> np.ndarray:
        """The group key of each row under a cross-validation scheme (model or hardware id)."""
        attr = SCHEMES[scheme]
        return np.array([getattr(m.scenario, attr) for m in self.rows.ms], dtype=object)


def concurrency_band(concurrency) -> str:
    if concurrency == "max":
        return "max"
    c = int(concurrency)
    return "1" if c <= 1 else "2-16" if c <= 16 else "17-128" if c <= 128 else ">128"


def _regime_inputs(rows: Rows, res) -> tuple[np.ndarray, np.ndarray]:
    """Load ratio and the bound of the phase each row's metric measures, from a SweepResult."""
    ratio = res.concurrency / np.maximum(res.max_concurrency, 1e-9)
    prefill = np.array([m in bands.PREFILL_METRICS for m in rows.metrics])
    return ratio, np.where(prefill, res.prefill_bound, res.decode_bound)


def _predict_into(scheme: Scheme, rows: Rows, idx: np.ndarray, fit: Fit, values: list[float]) -> None:
    part = rows.take(idx)
    pred, res = predict(part, fit, values)
    ratio, bound = _regime_inputs(part, res)
    scheme.predicted[idx], scheme.load_ratio[idx], scheme.bound[idx] = pred, ratio, bound


def _empty(name: str, n: int) -> Scheme:
    return Scheme(name, np.full(n, "", dtype=object), np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, int))


def cross_validate(
    rows: Rows, schemes: tuple[str, ...] = tuple(SCHEMES), fitter: Fitter | None = None, max_nfev: int = 400
) -> CrossVal:
    """In-sample fit plus one refit per held-out group of each scheme (groups in sorted order)."""
    fitter = fitter or (lambda r: fit_rows(r, max_nfev))
    n = len(rows.ms)
    all_idx = np.arange(n)
    t0 = dt.datetime.now()
    out = {"in_sample": _empty("in_sample", n)}
    fit, values = fitter(rows)
    _predict_into(out["in_sample"], rows, all_idx, fit, values)
    cv = CrossVal(rows, out)
    for name in schemes:
        scheme = out[name] = _empty(name, n)
        groups = cv.group_of(name)
        for g in sorted(set(groups)):
            test = all_idx[groups == g]
            train = all_idx[groups != g]
            scheme.group[test] = g
            if len(train) == 0:  # nothing left to fit on: the rows stay unpredicted
                continue
            fit, values = fitter(rows.take(train))
            _predict_into(scheme, rows, test, fit, values)
    return dataclasses.replace(cv, seconds=(dt.datetime.now() - t0).total_seconds())


def slice_keys(cv: CrossVal, by: str) -> np.ndarray:
    rows = cv.rows
    if by == "metric":
        return np.full(len(rows.ms), "all", dtype=object)
    if by == "device_class":
        return np.array(rows.kinds, dtype=object)
    if by == "engine":
        return np.array(rows.engines, dtype=object)
    if by == "concurrency":
        return np.array([concurrency_band(m.scenario.concurrency) for m in rows.ms], dtype=object)
    raise ValueError(f"unknown slice {by}")


def _figures(err: np.ndarray) -> tuple[float, float, float]:
    a = np.abs(err)
    return (
        round(100 * float(np.mean(a)), 1),
        round(100 * float(np.median(a)), 1),
        round(100 * float(np.mean(a <= 0.25)), 1),
    )


def summarize(cv: CrossVal, by: str) -> list[dict]:
    """MAPE, median absolute error and share within 25% of each scheme, per (slice key, metric).

    Only rows every scheme predicted count, so the columns compare the same rows. A scheme that predicted nothing
    (one group only: nothing left to fit on) shows None."""
    names = list(cv.schemes)
    measured = cv.rows.measured
    rel = {s: cv.schemes[s].predicted / measured - 1.0 for s in names}
    active = [s for s in names if np.isfinite(rel[s]).any()]
    ok = np.logical_and.reduce([np.isfinite(rel[s]) for s in active])
    keys = slice_keys(cv, by)
    metrics = np.array(cv.rows.metrics, dtype=object)
    out = []
    order = {b: i for i, b in enumerate(CONCURRENCY_BANDS)}
    pairs = sorted(
        {(k, m) for k, m, o in zip(keys, metrics, ok, strict=True) if o},
        key=lambda km: (order.get(km[0], -1), km[0], km[1]),
    )
    for key, metric in pairs:
        sel = ok & (keys == key) & (metrics == metric)
        row: dict = {"slice": by, "key": key, "metric": metric, "rows": int(sel.sum())}
        figs = {s: _figures(rel[s][sel]) if s in active else (None, None, None) for s in names}
        for i, label in enumerate(("mape", "mdape", "w25")):
            for s in names:
                row[f"{label}_{SHORT[s]}"] = figs[s][i]
        out.append(row)
    return out


def per_row(cv: CrossVal) -> list[dict]:
    """Each row's measured value, and its prediction and log residual log(predicted/measured) per scheme."""
    out = []
    for i, m in enumerate(cv.rows.ms):
        row = {
            "id": m.id,
            "metric": m.metric,
            "model": m.scenario.model,
            "hardware": m.scenario.hardware,
            "engine": m.scenario.engine,
            "concurrency": m.scenario.concurrency,
            "measured": m.value,
        }
        for s, sch in cv.schemes.items():
            p = sch.predicted[i]
            row[f"predicted_{SHORT[s]}"] = round(float(p), 4) if np.isfinite(p) else None
            row[f"log_residual_{SHORT[s]}"] = round(float(np.log(p / m.value)), 4) if np.isfinite(p) else None
        out.append(row)
    return out


@dataclasses.dataclass(frozen=True)
class Pooled:
    """Cross-validated residuals of both schemes, one entry per (scheme, row)."""

    scheme: np.ndarray
    row: np.ndarray  # index into cv.rows
    regime: np.ndarray  # (n, 5) uncertainty.regimes
    residual: np.ndarray


def pooled(cv: CrossVal) -> Pooled:
    names = [s for s in cv.schemes if s != "in_sample"]
    rows = cv.rows
    parts = []
    for s in names:
        sch = cv.schemes[s]
        r = sch.residuals(rows.measured)
        ok = np.flatnonzero(np.isfinite(r))
        reg = bands.regimes(
            np.array(rows.metrics, dtype=object)[ok],
            np.array(rows.kinds, dtype=object)[ok],
            np.array(rows.engines, dtype=object)[ok],
            sch.load_ratio[ok],
            sch.bound[ok],
        )
        parts.append((np.full(len(ok), s, dtype=object), ok, reg, r[ok]))
    if not parts:
        return Pooled(np.array([], dtype=object), np.array([], int), np.empty((0, 5), dtype=object), np.array([]))
    return Pooled(*(np.concatenate([p[i] for p in parts]) for i in range(4)))


def _cv_schemes(cv: CrossVal) -> list[str]:
    return [s for s in cv.schemes if s != "in_sample"]


def _partitions(cv: CrossVal, pool: Pooled, keep: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(judged, fitted) masks over the pooled residuals with `keep`: for each group of each scheme, that scheme's
    residuals of the group's rows, and every residual (either scheme) of the other rows."""
    out = []
    for s in _cv_schemes(cv):
        entry_group = cv.group_of(s)[pool.row]
        for h in sorted(set(entry_group[keep])):
            out.append((keep & (pool.scheme == s) & (entry_group == h), keep & (entry_group != h)))
    return out


def fit_table(cv: CrossVal, pool: Pooled, keep: np.ndarray, codes: list[np.ndarray]) -> bands.BandTable:
    """Bands from the pooled residuals with `keep`: percentiles of all of them per regime, and width factors
    chosen so that percentiles fitted without a group cover 80% of that group (leave one group out among them)."""
    metrics = np.array(cv.rows.metrics, dtype=object)[pool.row]
    judged_r, q10s, q90s, judged_m = [], [], [], []
    for judged, fitted in _partitions(cv, pool, keep):
        if not judged.any():
            continue
        inner = bands.BandTable(unc.fit_bands(pool.regime[fitted], pool.residual[fitted], codes=_sub(codes, fitted)))
        q10, q90 = inner.quantiles(pool.regime[judged])
        judged_r.append(pool.residual[judged])
        q10s.append(q10)
        q90s.append(q90)
        judged_m.append(metrics[judged])
    factors = unc.choose_factors(*(np.concatenate(x) for x in (judged_r, q10s, q90s, judged_m))) if judged_r else {}
    return bands.BandTable(unc.fit_bands(pool.regime[keep], pool.residual[keep], codes=_sub(codes, keep)), factors)


def _sub(codes: list[np.ndarray], sel: np.ndarray) -> list[np.ndarray]:
    return [c[sel] for c in codes]


def coverage(cv: CrossVal, pool: Pooled) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Nested check of the bands: each held-out group's residuals judged by bands fitted (percentiles and width
    factors) without any residual of that group's rows. Returns `inside` with the width factors and `inside_raw`
    with the plain percentiles (bool per pooled entry), and figures per device class and metric."""
    inside = np.zeros(len(pool.residual), dtype=bool)
    inside_raw = np.zeros(len(pool.residual), dtype=bool)
    codes = bands.level_codes(pool.regime)
    measured = cv.rows.measured[pool.row]
    for s in _cv_schemes(cv):
        entry_group = cv.group_of(s)[pool.row]
        for g in sorted(set(entry_group)):
            judged = (pool.scheme == s) & (entry_group == g)
            table = fit_table(cv, pool, entry_group != g, codes)
            pred = measured[judged] * np.exp(pool.residual[judged])
            for out, edges in ((inside, table.edges), (inside_raw, table.quantiles)):
                low, high = bands.interval(pred, *edges(pool.regime[judged]))
                out[judged] = (low <= measured[judged]) & (measured[judged] <= high)
    return inside, inside_raw, coverage_rows(cv, pool, inside, inside_raw)


def coverage_rows(cv: CrossVal, pool: Pooled, inside: np.ndarray, inside_raw: np.ndarray) -> list[dict]:
    """Share of measured values inside their band (%) per device class and metric ("all": pooled), per scheme."""
    kinds = np.array(cv.rows.kinds, dtype=object)[pool.row]
    metrics = np.array(cv.rows.metrics, dtype=object)[pool.row]
    names = _cv_schemes(cv)
    keys = [("all", "all")] + sorted({(k, "all") for k in kinds}) + sorted({("all", m) for m in metrics})
    keys += sorted(set(zip(kinds, metrics, strict=True)))
    out = []
    for kind, metric in keys:
        sel = ((kinds == kind) | (kind == "all")) & ((metrics == metric) | (metric == "all"))
        row: dict = {"device_class": kind, "metric": metric, "residuals": int(sel.sum())}
        for s in names:
            part = sel & (pool.scheme == s)
            row[f"coverage_{SHORT[s]}_pct"] = round(100 * float(inside[part].mean()), 1) if part.any() else None
        row["coverage_pct"] = round(100 * float(inside[sel].mean()), 1)
        row["plain_percentiles_pct"] = round(100 * float(inside_raw[sel].mean()), 1)
        out.append(row)
    return out


def band_document(cv: CrossVal, pool: Pooled, paths: list[Path], table: bands.BandTable, inside: np.ndarray) -> dict:
    """catalogs/uncertainty.yaml: bands fitted on every pooled residual, with their provenance."""
    return {
        "fitted": dt.date.today().isoformat(),
        "method": (
            "10th/90th percentiles of log(predicted/measured), pooled over leave-one-model-out and "
            "leave-one-device-out refits (calibrate.fit_rows on the other rows); regime = "
            f"({', '.join(bands.KEYS)}); regimes with fewer than {bands.MIN_RESIDUALS} residuals fall back by "
            f"dropping {', then '.join(bands.DROP_ORDER)}; band edges = width_factor x percentiles, the factor "
            "(per metric, '*' otherwise) chosen by leave-one-group-out to cover 80%; see core/calibration/crossval.py"
        ),
        "data": data_hashes(paths),
        "rows": len(cv.rows.ms),
        "residuals": len(pool.residual),
        "coverage_nested_pct": round(100 * float(inside.mean()), 1) if len(inside) else None,
        "min_residuals": bands.MIN_RESIDUALS,
        "keys": list(bands.KEYS),
        "drop_order": list(bands.DROP_ORDER),
        "load_bands": list(bands.LOAD_BANDS),
        "width_factor": table.factors,
        "bands": table.entries,
    }


def run(paths: list[Path], catalog: Catalog | None = None, max_nfev: int = 400) -> dict:
    """The whole `llmcap validate --cv` report (and the band document, under "uncertainty")."""
    catalog = catalog or load_catalog()
    ms, skipped = read_all(paths)
    rows, errors = resolve_rows(ms, catalog)
    cv = cross_validate(rows, max_nfev=max_nfev)
    pool = pooled(cv)
    inside, _, cov = coverage(cv, pool)
    table = fit_table(cv, pool, np.ones(len(pool.residual), dtype=bool), bands.level_codes(pool.regime))
    measured = rows.measured[pool.row]
    low, high = bands.interval(measured * np.exp(pool.residual), *table.edges(pool.regime))
    summary = [r for by in SLICES for r in summarize(cv, by)]
    document = band_document(cv, pool, paths, table, inside)
    # the figures the Accuracy page shows beside its in-sample ones (a full run is too slow per page view)
    document["cross_validation"] = {"seconds": round(cv.seconds, 1), "summary": summary, "coverage": cov}
    return {
        "files": [str(p) for p in paths],
        "rows": len(rows.ms),
        "not_resolved": sum(e is not None for e in errors),
        "skipped_by_reason": skip_reasons(skipped),
        "compared": int(np.isfinite(cv.schemes["in_sample"].predicted).sum()),
        "groups": {s: len(set(cv.group_of(s))) for s in SCHEMES},
        "seconds": round(cv.seconds, 1),
        "summary": summary,
        "coverage": cov,
        "coverage_in_sample_pct": round(100 * float(np.mean((low <= measured) & (measured <= high))), 1)
        if len(measured)
        else None,
        "per_row": per_row(cv),
        "uncertainty": document,
    }
