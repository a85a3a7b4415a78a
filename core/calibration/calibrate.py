"""Fit the efficiency parameters to measured data (`llmcap calibrate`).

Only ../shared/reference is used (the copy shipped in catalogs/measured/). The fit minimizes the
robust (soft-L1) sum of log errors of every measured metric, plus a weak pull of each parameter
toward its prior so that parameters with little data stay physical. Levels: `default` (all devices),
per engine (`engine.<id>.all`), and per device class where that class has data. Deterministic:
same data, same result.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import yaml
from scipy.optimize import least_squares

from llmcap.calibration.measured import Measurement, metric_arrays, read_measurements
from llmcap.catalog.loader import Catalog, catalog_dir, load_catalog
from llmcap.estimate.sweep import build_input, evaluate
from llmcap.perf.efficiency import PARAM_NAMES, Efficiency

# parameter: (prior, lower, upper, log-scale?)
PRIORS = {
    "gemm_eff_max": (0.7, 0.2, 0.98, False),
    "gemm_m_half": (64.0, 1.0, 2048.0, True),
    "attn_eff_max": (0.45, 0.05, 0.95, False),
    "mem_eff_max": (0.8, 0.2, 0.98, False),
    "kernel_lat_s": (4e-6, 1e-7, 1e-4, True),
    "step_overhead_s": (3e-3, 5e-5, 0.1, True),
    "seq_overhead_s": (2e-5, 1e-7, 1e-3, True),
    "comm_alpha_s": (8e-6, 1e-7, 1e-4, True),
    "comm_eff": (0.7, 0.2, 0.98, False),
    "wave_weight": (0.5, 0.0, 1.0, False),
    "request_overhead_s": (0.02, 1e-4, 0.5, True),
}
ENGINE_PARAMS = (
    "step_overhead_s",
    "seq_overhead_s",
    "wave_weight",
    "request_overhead_s",
    "gemm_eff_max",
    "mem_eff_max",
    "attn_eff_max",
)
CLASS_PARAMS = ("mem_eff_max", "gemm_eff_max", "step_overhead_s")
PRIOR_WEIGHT = 0.05
DEFAULT_DATA = ("measured_serving_hopper.csv", "measured_web_calibration.csv")


class Fit:
    """The parameter vector and its mapping onto per-row efficiency arrays."""

    def __init__(self, kinds: list[str], engines: list[str]):
        self.kinds, self.engines = kinds, engines
        self.slots: list[tuple[str, str, str]] = [("default", "", p) for p in PARAM_NAMES]
        self.slots += [("engine", e, p) for e in sorted(set(engines)) for p in ENGINE_PARAMS]
        classes = sorted({k for k in kinds if k != "datacenter_gpu"})
        self.slots += [("device_class", k, p) for k in classes for p in CLASS_PARAMS]

    def to_x(self, values: list[float]) -> np.ndarray:
        return np.array([self._fwd(p, v) for (_, _, p), v in zip(self.slots, values, strict=True)])

    def values(self, x: np.ndarray) -> list[float]:
        return [self._inv(p, xi) for (_, _, p), xi in zip(self.slots, x, strict=True)]

    @staticmethod
    def _fwd(p: str, v: float) -> float:
        _, lo, hi, log = PRIORS[p]
        v = min(max(v, lo), hi)
        return float(np.log(v)) if log else float(v)

    @staticmethod
    def _inv(p: str, x: float) -> float:
        return float(np.exp(x)) if PRIORS[p][3] else float(x)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = [np.log(PRIORS[p][1]) if PRIORS[p][3] else PRIORS[p][1] for _, _, p in self.slots]
        hi = [np.log(PRIORS[p][2]) if PRIORS[p][3] else PRIORS[p][2] for _, _, p in self.slots]
        return np.array(lo), np.array(hi)

    def efficiency(self, values: list[float]) -> Efficiency:
        """Per-row arrays: default, overridden by device class, then by engine."""
        n = len(self.kinds)
        cols = {p: np.full(n, np.nan) for p in PARAM_NAMES}
        kinds, engines = np.array(self.kinds), np.array(self.engines)
        for (level, _key, p), v in zip(self.slots, values, strict=True):
            if level == "default":
                cols[p] = np.where(np.isnan(cols[p]), v, cols[p])
        for (level, key, p), v in zip(self.slots, values, strict=True):
            if level == "device_class":
                cols[p] = np.where(kinds == key, v, cols[p])
        for (level, key, p), v in zip(self.slots, values, strict=True):
            if level == "engine":
                cols[p] = np.where((engines == key) & (kinds == "datacenter_gpu"), v, cols[p])
        return Efficiency(**cols)

    def table(self, values: list[float]) -> dict:
        out: dict = {"default": {}, "device_class": {}, "engine": {}}
        for (level, key, p), v in zip(self.slots, values, strict=True):
            v = float(f"{v:.4g}")
            if level == "default":
                out["default"][p] = v
            elif level == "device_class":
                out["device_class"].setdefault(key, {})[p] = v
            else:
                out["engine"].setdefault(key, {}).setdefault("datacenter_gpu", {})[p] = v
        return out


def load_measurements(paths: list[Path]) -> list[Measurement]:
    out: list[Measurement] = []
    for p in paths:
        rows, _ = read_measurements(p)
        out += rows
    return out


def calibrate(paths: list[Path], catalog: Catalog | None = None, max_nfev: int = 400) -> dict:
    """Fit and return the new efficiency table (with fit metadata)."""
    catalog = catalog or load_catalog()
    ms = load_measurements(paths)
    inp, errors = build_input([m.scenario for m in ms], catalog)
    ok = [m for m, e in zip(ms, errors, strict=True) if e is None]
    kinds = [catalog.device(m.scenario.hardware).kind for m in ok]
    engines = [m.scenario.engine for m in ok]
    metrics = [m.metric for m in ok]
    measured = np.array([m.value for m in ok])
    fit = Fit(kinds, engines)
    prior_vals = []
    for _, _, p in fit.slots:
        prior_vals.append(PRIORS[p][0])
    x0 = fit.to_x(prior_vals)
    x_prior = x0.copy()
    scale = np.array([abs(b - a) for a, b in zip(*fit.bounds(), strict=True)])

    def residuals(x: np.ndarray) -> np.ndarray:
        eff = fit.efficiency(fit.values(x))
        res = evaluate(dataclasses.replace(inp, system=dataclasses.replace(inp.system, eff=eff)))
        pred = metric_arrays(res, inp, metrics)
        r = np.where(res.fits & np.isfinite(pred) & (pred > 0), np.log(np.maximum(pred, 1e-12) / measured), 0.0)
        return np.concatenate([r, PRIOR_WEIGHT * (x - x_prior) / scale])

    lo, hi = fit.bounds()
    sol = least_squares(residuals, np.clip(x0, lo, hi), bounds=(lo, hi), loss="soft_l1", f_scale=0.2, max_nfev=max_nfev)
    values = fit.values(sol.x)
    table = fit.table(values)
    table["fitted"] = dt.date.today().isoformat()
    table["data"] = [{"file": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()[:16]} for p in paths]
    table["rows_used"] = len(ok)
    table["method"] = (
        "scipy least_squares, soft_l1 on log(predicted/measured), weak prior pull; see core/calibration/calibrate.py"
    )
    return table


def write_table(table: dict, path: Path | None = None) -> None:
    path = path if path is not None else catalog_dir() / "efficiency.yaml"
    header = (
        "# Efficiency parameters (core/perf/efficiency.py), fitted by `llmcap calibrate` to the measured data listed\n"
        "# under `data` (copies of ../shared/reference in catalogs/measured/). Do not edit by hand: re-run the fit.\n"
    )
    ordered = {k: table[k] for k in ("fitted", "method", "data", "rows_used", "default", "device_class", "engine")}
    path.write_text(header + yaml.safe_dump(ordered, sort_keys=False), encoding="utf-8")
