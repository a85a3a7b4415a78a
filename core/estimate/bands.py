"""Error bands of the estimator: how far measured values fall from a prediction, by regime.

`llmcap validate --cv --write` fits them (llmcap.calibration.crossval and .uncertainty) from cross-validated residuals
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
def _document(path: Path) -> dict:
    """catalogs/uncertainty.yaml, read once per path (the bands and the cross-validated figures beside them)."""
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


@functools.cache
def _load(path: Path) -> BandTable:
    doc = _document(path)
    return BandTable(doc.get("bands") or [], doc.get("width_factor") or {})


def forget_tables() -> None:
    """Drop what was read, so a table just written (`llmcap validate --cv --write`) is read anew."""
    _document.cache_clear()
    _load.cache_clear()


def cross_validation(path: Path | None = None) -> dict:
    """The cross-validated figures written beside the bands (`summary` rows: slice, key, metric, rows, mape_in,
    mape_lomo, mape_lodo, ...; `coverage`): what the Accuracy page shows out of sample. Empty when absent."""
    doc = _document(Path(path) if path is not None else catalog_dir() / FILE)
    return doc.get("cross_validation") or {}


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


SERVING_KEYS = ("ttft_ms", "tpot_ms", "e2e_ms", "output_tokens_per_s")


def serving_bands(
    res, kinds, engines, output_len, table: BandTable | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """80% intervals of a sweep result's closed-loop TTFT, TPOT, E2E (ms) and output tokens/s, per row.

    TTFT and TPOT take their own regime's band (load = clients per replica over what fits at full context; the
    prefill bound for TTFT, the decode bound for TPOT). E2E = TTFT + (O - 1) TPOT takes both ends together (errors
    of the two phases share their cause), and throughput = requests x O / E2E the inverse of E2E's band.
    `kinds`, `engines`: device kind and engine id per row."""
    load = np.asarray(res.concurrency, dtype=float) / np.maximum(np.asarray(res.max_concurrency, dtype=float), 1e-12)
    ttft, tpot = np.asarray(res.ttft_s, dtype=float) * 1e3, np.asarray(res.tpot_s, dtype=float) * 1e3
    pre = np.asarray(res.prefill_bound).astype(int)
    dec = np.asarray(res.decode_bound).astype(int)
    t_lo, t_hi = bands("ttft_ms", kinds, engines, load, pre, ttft, table)
    p_lo, p_hi = bands("tpot_ms", kinds, engines, load, dec, tpot, table)
    steps = np.maximum(np.asarray(output_len, dtype=float) - 1, 0.0)
    e2e, e_lo, e_hi = ttft + steps * tpot, t_lo + steps * p_lo, t_hi + steps * p_hi
    out = np.asarray(res.output_tokens_per_s, dtype=float)
    safe = np.maximum(e2e, 1e-12)
    return {
        "ttft_ms": (t_lo, t_hi),
        "tpot_ms": (p_lo, p_hi),
        "e2e_ms": (e_lo, e_hi),
        "output_tokens_per_s": (
            out * e2e / np.maximum(e_hi, 1e-12),
            out * e2e / np.maximum(np.minimum(e_lo, safe), 1e-12),
        ),
    }
