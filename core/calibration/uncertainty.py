"""Error bands of the estimator: how far measured values fall from a prediction, by regime.

`llmcap validate --cv --write` fits them (core/calibration/crossval.py) from cross-validated residuals
`r = log(predicted / measured)`, each predicted by parameters fitted without the row's model (or device), and
writes catalogs/uncertainty.yaml. For each regime the table holds the 10th and 90th percentiles q10, q90 of r. As
`measured = predicted * exp(-r)`, the measured value lies in

    [predicted * exp(-k q90), predicted * exp(-k q10)]

for 80% of the residuals of that regime when k = 1. But errors are shared within a model or a device (each has its
own bias), so percentiles fitted without a group cover fewer than 80% of that group's values (about 62% on the
shipped data). The width factor k (`width_factor`, per metric with enough data, "*" for the rest) is chosen by
leave-one-group-out so that they cover 80% again. `bands()` returns that interval, widened where needed so that it
always contains the prediction (low <= predicted <= high).

A regime is (device class, engine group, metric, load band, phase bound):
  * engine group: vllm, sglang, trtllm, or other
  * load band: requests in flight per replica / the most that fit in KV memory at full context:
    <0.25, 0.25-0.75, >0.75 (also KV-limited and `concurrency=max` runs, whose ratio is >= 1)
  * phase bound: what bounds the phase the metric measures (prefill for TTFT and prefill throughput, decode for
    the others): compute, memory, or other (interconnect, fixed overhead)
A regime with fewer than MIN_RESIDUALS residuals falls back to a coarser one, dropping keys in DROP_ORDER (bound,
then load, then engine, then device class, then metric: the global band). Unknown keys ('?': a NaN load ratio, an
unknown bound) fall back the same way.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import yaml

from llmcap.catalog.loader import catalog_dir
from llmcap.perf.timing import BOUNDS

KEYS = ("device_class", "engine", "metric", "load", "bound")
DROP_ORDER = ("bound", "load", "engine", "device_class", "metric")
MIN_RESIDUALS = 30
QUANTILES = (0.10, 0.90)
TARGET_COVERAGE = 0.80
FACTOR_GRID = np.arange(0.5, 4.001, 0.05)  # width factors tried
MIN_FACTOR_RESIDUALS = 100  # a metric with fewer held-out residuals takes the "*" factor
ENGINE_GROUPS = ("vllm", "sglang", "trtllm")  # every other engine is "other"
LOAD_BANDS = ("<0.25", "0.25-0.75", ">0.75")
BOUND_GROUPS = ("compute", "memory", "other")
# which phase's bound a metric follows
PREFILL_METRICS = ("ttft_ms", "prefill_tokens_per_s")
ANY = "*"  # a key dropped by the fallback
UNKNOWN = "?"
FILE = "uncertainty.yaml"


def levels() -> list[tuple[str, ...]]:
    """The keys kept at each fallback level, finest first, down to () (global)."""
    out = []
    kept = list(KEYS)
    out.append(tuple(kept))
    for k in DROP_ORDER:
        kept.remove(k)
        out.append(tuple(kept))
    return out


def engine_group(engine) -> np.ndarray:
    e = np.asarray(engine, dtype=object)
    return np.where(np.isin(e, ENGINE_GROUPS), e, "other").astype(object)


def load_band(load_ratio) -> np.ndarray:
    r = np.asarray(load_ratio, dtype=float)
    out = np.where(r < 0.25, LOAD_BANDS[0], np.where(r <= 0.75, LOAD_BANDS[1], LOAD_BANDS[2])).astype(object)
    return np.where(np.isnan(r), UNKNOWN, out).astype(object)


def bound_group(bound) -> np.ndarray:
    """'compute', 'memory' or 'other' from a bound name or an index into timing.BOUNDS."""
    b = np.asarray(bound, dtype=object)
    names = np.array(
        [BOUNDS[int(x)] if isinstance(x, int | np.integer) and 0 <= int(x) < len(BOUNDS) else x for x in b.ravel()],
        dtype=object,
    ).reshape(b.shape)
    known = np.isin(names, BOUNDS + ("other",))
    grouped = np.where(np.isin(names, ("compute", "memory")), names, "other")
    return np.where(known, grouped, UNKNOWN).astype(object)


def regimes(metric, device_class, engine, load_ratio, bound) -> np.ndarray:
    """(n, 5) object array of regime keys, in KEYS order; the inputs broadcast against each other."""
    m, d, e, r, b = np.broadcast_arrays(
        np.asarray(metric, dtype=object),
        np.asarray(device_class, dtype=object),
        np.asarray(engine, dtype=object),
        np.asarray(load_ratio, dtype=float),
        np.asarray(bound, dtype=object),
    )
    cols = [d.ravel(), engine_group(e.ravel()), m.ravel(), load_band(r.ravel()), bound_group(b.ravel())]
    return np.stack([np.asarray(c, dtype=object) for c in cols], axis=1)


def _codes(reg: np.ndarray, kept: tuple[str, ...]) -> np.ndarray:
    cols = [reg[:, KEYS.index(k)] if k in kept else np.full(len(reg), ANY, dtype=object) for k in KEYS]
    return np.array(["|".join(str(c) for c in row) for row in zip(*cols, strict=True)], dtype=str)


def level_codes(reg: np.ndarray) -> list[np.ndarray]:
    """The regime of each row at each fallback level, as one string (compute once, slice for many fits)."""
    return [_codes(reg, kept) for kept in levels()]


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


class BandTable:
    """Fitted bands, looked up by regime with the fallback of `levels()`; edges widened by the width factor of the
    row's metric (else the "*" factor; 1 without factors)."""

    def __init__(self, entries: list[dict], factors: dict[str, float] | None = None):
        self.entries = entries
        self.factors = dict(factors or {})
        self._q = {tuple(str(e[k]) for k in KEYS): (float(e["q10"]), float(e["q90"])) for e in entries}
        if (ANY,) * len(KEYS) not in self._q:
            raise ValueError("band table lacks the global band")

    def quantiles(self, reg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """q10 and q90 of each row of a regimes() array (each distinct regime looked up once)."""
        codes = _codes(reg, KEYS)
        uniq, inv = np.unique(codes, return_inverse=True)
        q = np.empty((len(uniq), 2))
        for i, code in enumerate(uniq):
            full = code.split("|")
            for kept in levels():
                key = tuple(v if k in kept else ANY for k, v in zip(KEYS, full, strict=True))
                if key in self._q:
                    q[i] = self._q[key]
                    break
        return q[inv, 0], q[inv, 1]

    def edges(self, reg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The band's log edges (k q10, k q90) of each row of a regimes() array."""
        q10, q90 = self.quantiles(reg)
        default = self.factors.get(ANY, 1.0)
        k = np.array([self.factors.get(m, default) for m in reg[:, KEYS.index("metric")]], dtype=float)
        return k * q10, k * q90


def interval(predicted, q10, q90) -> tuple[np.ndarray, np.ndarray]:
    """[predicted * exp(-q90), predicted * exp(-q10)], widened to contain the prediction."""
    p = np.asarray(predicted, dtype=float)
    return p * np.exp(-np.maximum(q90, 0.0)), p * np.exp(-np.minimum(q10, 0.0))


@functools.cache
def _load(path: Path) -> BandTable:
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return BandTable(doc.get("bands") or [], doc.get("width_factor") or {})


def load_table(path: Path | None = None) -> BandTable:
    """catalogs/uncertainty.yaml (read once per path)."""
    return _load(Path(path) if path is not None else catalog_dir() / FILE)


def bands(
    metric, device_class, engine, load_ratio, bound, predicted, table: BandTable | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """80% interval (low, high) for the measured value of each prediction; the arguments broadcast.

    metric: a measured-metric name (ttft_ms, tpot_ms, output_tokens_per_s, ...); device_class: catalog device kind;
    engine: engine id; load_ratio: requests in flight per replica / SweepResult.max_concurrency (inf or >= 1 when
    KV-limited, NaN: unknown); bound: the metric's phase bound, a name or an index into timing.BOUNDS
    (SweepResult.prefill_bound for ttft_ms and prefill_tokens_per_s, decode_bound for the others).
    Always low <= predicted <= high."""
    table = table or load_table()
    m, d, e, b = (np.asarray(x, dtype=object) for x in (metric, device_class, engine, bound))
    m, d, e, b, r, p = np.broadcast_arrays(
        m, d, e, b, np.asarray(load_ratio, dtype=float), np.asarray(predicted, float)
    )
    q10, q90 = table.edges(regimes(m, d, e, r, b))
    low, high = interval(p.ravel(), q10, q90)
    return low.reshape(p.shape), high.reshape(p.shape)


def write_table(doc: dict, path: Path | None = None) -> Path:
    path = path if path is not None else catalog_dir() / FILE
    header = (
        "# Error bands of the estimator (core/calibration/uncertainty.py), fitted by `llmcap validate --cv --write`\n"
        "# from cross-validated residuals log(predicted/measured) on the measured data listed under `data` (copies of\n"
        "# ../shared/reference in catalogs/measured/). Do not edit by hand: re-run it.\n"
    )
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    _load.cache_clear()
    return path
