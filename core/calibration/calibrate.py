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

from llmcap.calibration.measured import DEFAULT_FILES, Measurement, metric_arrays, read_all
from llmcap.catalog.loader import Catalog, catalog_dir, load_catalog
from llmcap.estimate.sweep import SweepInput, SweepResult, build_input, evaluate, expand
from llmcap.perf.efficiency import PARAM_NAMES, Efficiency

# parameter: (prior, lower, upper, log-scale?)
PRIORS = {
    "gemm_eff_max": (0.7, 0.2, 0.98, False),
    "gemm_m_half": (64.0, 1.0, 2048.0, True),
    # no production attention kernel runs long prompts below ~15% of peak; a fit that wants less is compensating for
    # something else (with 1-3 points per non-datacenter class it reached the old 0.05 bound)
    "attn_eff_max": (0.45, 0.15, 0.95, False),
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
DEFAULT_DATA = DEFAULT_FILES


class Fit:
    """The parameter vector and its mapping onto per-row efficiency arrays.

    Slots come from the rows fitted: defaults, every engine seen, every device class with data. `index` maps
    rows (any rows, also ones the fit never saw) to the slot each parameter takes: device class over default,
    engine over both on datacenter GPUs, as efficiency.efficiency_params merges the written table.
    """

    def __init__(self, kinds: list[str], engines: list[str]):
        self.kinds, self.engines = kinds, engines
        self.slots: list[tuple[str, str, str]] = [("default", "", p) for p in PARAM_NAMES]
        self.slots += [("engine", e, p) for e in sorted(set(engines)) for p in ENGINE_PARAMS]
        classes = sorted({k for k in kinds if k != "datacenter_gpu"})
        self.slots += [("device_class", k, p) for k in classes for p in CLASS_PARAMS]
        self.row_slots = self.index(kinds, engines)

    def index(self, kinds: list[str], engines: list[str]) -> dict[str, np.ndarray]:
        """For each parameter, the slot each row takes (levels this fit lacks fall back to the default)."""
        where = {s: i for i, s in enumerate(self.slots)}
        out = {}
        for p in PARAM_NAMES:
            idx = []
            for kind, engine in zip(kinds, engines, strict=True):
                i = where[("default", "", p)]
                i = where.get(("device_class", kind, p), i)
                if kind == "datacenter_gpu":
                    i = where.get(("engine", engine, p), i)
                idx.append(i)
            out[p] = np.array(idx, dtype=np.intp)
        return out

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

    def efficiency(self, values: list[float], rows: dict[str, np.ndarray] | None = None) -> Efficiency:
        """Per-row arrays for the fitted rows, or for `rows` (an `index` of other rows)."""
        v = np.asarray(values, dtype=float)
        rows = self.row_slots if rows is None else rows
        return Efficiency(**{p: v[rows[p]] for p in PARAM_NAMES})

    def owners(self) -> list[np.ndarray]:
        """For each slot, the fitted rows whose prediction depends on it."""
        out = [np.zeros(len(self.kinds), dtype=bool) for _ in self.slots]
        for idx in self.row_slots.values():
            for i in np.unique(idx):
                out[i] |= idx == i
        return out

    def groups(self, owners: list[np.ndarray]) -> list[list[int]]:
        """Slots grouped (greedily, in order) so that no two of a group share a row: one evaluation then
        differentiates a whole group."""
        out: list[tuple[np.ndarray, list[int]]] = []
        for j, t in enumerate(owners):
            for rows, members in out:
                if not (rows & t).any():
                    rows |= t
                    members.append(j)
                    break
            else:
                out.append((t.copy(), [j]))
        return [members for _, members in out]

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


@dataclasses.dataclass(frozen=True)
class Rows:
    """Measured rows resolved once (build_input) for fitting and predicting: slice with `take`."""

    ms: list[Measurement]
    inp: SweepInput
    kinds: list[str]
    metrics: list[str]
    measured: np.ndarray

    @property
    def engines(self) -> list[str]:
        return [m.scenario.engine for m in self.ms]

    def take(self, idx: np.ndarray) -> Rows:
        idx = np.asarray(idx, dtype=np.intp)
        return Rows(
            [self.ms[i] for i in idx],
            expand(self.inp, idx),
            [self.kinds[i] for i in idx],
            [self.metrics[i] for i in idx],
            self.measured[idx],
        )


def load_measurements(paths: list[Path]) -> list[Measurement]:
    return read_all(paths)[0]


def resolve_rows(ms: list[Measurement], catalog: Catalog) -> tuple[Rows, list[str | None]]:
    """The rows that resolve, with their inputs built once; errors[i] for each measurement (None: resolved)."""
    inp, errors = build_input([m.scenario for m in ms], catalog)
    ok = [m for m, e in zip(ms, errors, strict=True) if e is None]
    kinds = [catalog.device(m.scenario.hardware).kind for m in ok]
    return Rows(ok, inp, kinds, [m.metric for m in ok], np.array([m.value for m in ok])), errors


def predict(
    rows: Rows, fit: Fit, values: list[float], slots: dict[str, np.ndarray] | None = None
) -> tuple[np.ndarray, SweepResult]:
    """Predicted measured metric of each row with fitted values (NaN where the scenario does not fit).

    `slots`: fit.index(rows.kinds, rows.engines), computed here when not given."""
    eff = fit.efficiency(values, fit.index(rows.kinds, rows.engines) if slots is None else slots)
    inp = dataclasses.replace(rows.inp, system=dataclasses.replace(rows.inp.system, eff=eff))
    res = evaluate(inp)
    pred = metric_arrays(res, inp, rows.metrics)
    return np.where(res.fits & np.isfinite(pred) & (pred > 0), pred, np.nan), res


def _jacobian(fun, fit: Fit, lo: np.ndarray, hi: np.ndarray):
    """Forward differences (scipy's 2-point step), one evaluation per group of slots that share no row."""
    owner = fit.owners()
    groups = fit.groups(owner)
    n_data = len(fit.kinds)

    def jac(x: np.ndarray) -> np.ndarray:
        f0 = fun(x)
        h = np.sqrt(np.finfo(float).eps) * np.maximum(1.0, np.abs(x))
        h = np.where(x + h > hi, -h, h)
        out = np.zeros((len(f0), len(x)))
        for members in groups:
            xs = x.copy()
            xs[members] += h[members]
            df = fun(xs) - f0
            for j in members:
                col = np.zeros(len(f0))
                col[:n_data] = np.where(owner[j], df[:n_data], 0.0)
                col[n_data + j] = df[n_data + j]
                out[:, j] = col / h[j]
        return out

    return jac


def fit_rows(rows: Rows, max_nfev: int = 400) -> tuple[Fit, list[float]]:
    """Least-squares fit of the efficiency parameters to `rows` (and nothing else)."""
    fit = Fit(rows.kinds, rows.engines)
    x0 = fit.to_x([PRIORS[p][0] for _, _, p in fit.slots])
    x_prior = x0.copy()
    lo, hi = fit.bounds()
    scale = hi - lo
    last: dict[bytes, np.ndarray] = {}

    def residuals(x: np.ndarray) -> np.ndarray:
        key = x.tobytes()
        if key not in last:
            pred, _ = predict(rows, fit, fit.values(x), fit.row_slots)
            r = np.where(np.isfinite(pred), np.log(pred / rows.measured), 0.0)
            last.clear()
            last[key] = np.concatenate([r, PRIOR_WEIGHT * (x - x_prior) / scale])
        return last[key]

    sol = least_squares(
        residuals,
        np.clip(x0, lo, hi),
        jac=_jacobian(residuals, fit, lo, hi),
        bounds=(lo, hi),
        loss="soft_l1",
        f_scale=0.2,
        max_nfev=max_nfev,
    )
    return fit, fit.values(sol.x)


def calibrate(paths: list[Path], catalog: Catalog | None = None, max_nfev: int = 400) -> dict:
    """Fit and return the new efficiency table (with fit metadata)."""
    catalog = catalog or load_catalog()
    rows, _ = resolve_rows(load_measurements(paths), catalog)
    fit, values = fit_rows(rows, max_nfev)
    table = fit.table(values)
    table["fitted"] = dt.date.today().isoformat()
    table["data"] = data_hashes(paths)
    table["rows_used"] = len(rows.ms)
    table["method"] = (
        "scipy least_squares, soft_l1 on log(predicted/measured), weak prior pull; see core/calibration/calibrate.py"
    )
    return table


def data_hashes(paths: list[Path]) -> list[dict]:
    return [{"file": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()[:16]} for p in paths]


def write_table(table: dict, path: Path | None = None) -> None:
    path = path if path is not None else catalog_dir() / "efficiency.yaml"
    header = (
        "# Efficiency parameters (core/perf/efficiency.py), fitted by `llmcap calibrate` to the measured data listed\n"
        "# under `data` (copies of ../shared/reference in catalogs/measured/). Do not edit by hand: re-run the fit.\n"
    )
    ordered = {k: table[k] for k in ("fitted", "method", "data", "rows_used", "default", "device_class", "engine")}
    path.write_text(header + yaml.safe_dump(ordered, sort_keys=False), encoding="utf-8")
