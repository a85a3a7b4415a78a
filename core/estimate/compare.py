"""Side-by-side scenarios and "vary one parameter" sweeps, as table rows from one `sweep()` call each.

The numbers are the estimator's own (`estimate.sweep.evaluate`, the function `estimate.single.estimate` runs on
arrays of length one); this module only lays them out, so a row equals `estimate()` for its scenario.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from llmcap.catalog.loader import Catalog
from llmcap.estimate.bands import SERVING_KEYS, serving_bands
from llmcap.estimate.single import estimate
from llmcap.estimate.sweep import SweepResult, sweep
from llmcap.perf.memory import GB
from llmcap.perf.timing import BOUNDS
from llmcap.scenario import MAX_TOKENS, Scenario, validation_text

MS = 1e3
MAX_POINTS = 64  # values per "vary one parameter" axis


@dataclass(frozen=True)
class Axis:
    """A parameter the Compare page can vary: its Scenario field, label and default values."""

    field: str
    label: str
    defaults: tuple[Any, ...]
    numeric: bool = True
    log_scale: bool = True


AXES = {
    "concurrency": Axis("concurrency", "concurrency (requests in flight)", (1, 2, 4, 8, 16, 32, 64, 128, 256)),
    "input_len": Axis("input_len", "context length (input tokens)", (256, 1024, 2048, 4096, 8192, 16384, 32768)),
    "tp": Axis("tp", "devices (tensor-parallel size)", (1, 2, 4, 8)),
    "weight_format": Axis("weight_format", "weight format", ("bf16", "fp8", "int8", "int4"), numeric=False),
}
# Columns of a result row, in order (metric columns are None where the scenario does not fit).
COLUMNS = (
    "status",
    "message",
    "devices",
    "capacity_gb_per_device",
    "weights_gb_per_device",
    "kv_gb_per_device",
    "activations_gb_per_device",
    "overhead_gb_per_device",
    "reserved_gb_per_device",
    "free_gb_per_device",
    "max_concurrency",
    "ttft_ms",
    "tpot_ms",
    "e2e_ms",
    "output_tokens_per_s",
    "output_tokens_per_s_per_device",
    "prefill_bound",
    "decode_bound",
    *(f"{m}_{end}" for m in SERVING_KEYS for end in ("low", "high")),
)


def label(i: int, scn: Scenario) -> str:
    """Short name of scenario i (1-based) for tables and legends."""
    model = scn.model.rsplit("/", 1)[-1]
    layout = f"tp{scn.tp}" + (f" pp{scn.pp}" if scn.pp > 1 else "") + (f" x{scn.replicas}" if scn.replicas > 1 else "")
    return f"S{i}: {model} · {scn.hardware} {layout} · {scn.weight_format}"


def _columns(scns: list[Scenario], res: SweepResult, catalog: Catalog) -> dict[str, np.ndarray]:
    """Every result column as an array over the resolved scenarios (vectorized; no loop over points), with the
    80% intervals of TTFT, TPOT, E2E and output tokens/s (llmcap.estimate.bands)."""
    fits = res.fits.astype(bool)
    devices = np.array([s.devices for s in scns], dtype=float)
    replicas = np.array([s.replicas for s in scns], dtype=float)
    out_len = np.array([s.output_len for s in scns], dtype=float)
    kv = np.where(res.max_concurrency >= 1, res.kv_bytes_per_seq * res.running, 0.0)

    def when_fits(x: np.ndarray) -> np.ndarray:
        return np.where(fits, x, np.nan)

    otps = res.requests_per_s * out_len
    return {
        "fits": fits,
        "devices": devices,
        "capacity_gb_per_device": res.capacity_bytes / GB,
        "weights_gb_per_device": res.weights_bytes / GB,
        "kv_gb_per_device": kv / GB,
        "activations_gb_per_device": res.activation_bytes / GB,
        "overhead_gb_per_device": res.overhead_bytes / GB,
        "reserved_gb_per_device": res.reserved_bytes / GB,
        "free_gb_per_device": np.maximum(res.kv_room_bytes - kv, 0.0) / GB,
        "max_concurrency": np.floor(res.max_concurrency * replicas),
        "ttft_ms": when_fits(res.ttft_s * MS),
        "tpot_ms": when_fits(res.tpot_s * MS),
        "e2e_ms": when_fits(res.e2e_s * MS),
        "output_tokens_per_s": when_fits(otps),
        "output_tokens_per_s_per_device": when_fits(otps / devices),
        "prefill_bound": np.asarray(BOUNDS)[res.prefill_bound],
        "decode_bound": np.asarray(BOUNDS)[res.decode_bound],
        **{
            f"{m}_{end}": when_fits(v)
            for m, (lo, hi) in serving_bands(
                res, [catalog.device(s.hardware).kind for s in scns], [s.engine for s in scns], out_len
            ).items()
            for end, v in (("low", lo), ("high", hi))
        },
    }


def _value(x: Any) -> Any:
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def evaluate_rows(scenarios: list[Scenario], catalog: Catalog, *, explain: bool = False) -> list[dict[str, Any]]:
    """One row per scenario (same order) with COLUMNS; a scenario that cannot be resolved gets status=error.

    explain=True asks `estimate()` what overflows for each scenario that does not fit (a few rows only).
    """
    if not scenarios:
        return []
    try:
        res, errors = sweep(scenarios, catalog)
    except ValueError as exc:  # none resolved
        if len(scenarios) == 1:
            return [{**dict.fromkeys(COLUMNS), "status": "error", "message": _unresolved(exc)}]
        return [evaluate_rows([s], catalog, explain=explain)[0] for s in scenarios]
    ok = [s for s, e in zip(scenarios, errors, strict=True) if e is None]
    cols = _columns(ok, res, catalog)
    rows: list[dict[str, Any]] = []
    j = 0
    for scn, err in zip(scenarios, errors, strict=True):
        if err is not None:
            rows.append({**dict.fromkeys(COLUMNS), "status": "error", "message": err})
            continue
        row = {c: _value(cols[c][j]) for c in COLUMNS if c in cols}
        fits = bool(cols["fits"][j])
        row["status"] = "ok" if fits else "does_not_fit"
        row["message"] = "fits" if fits else _not_fit(scn, catalog, explain)
        row["devices"] = scn.devices
        row["max_concurrency"] = int(row["max_concurrency"])
        rows.append({c: row.get(c) for c in COLUMNS})
        j += 1
    return rows


def _not_fit(scn: Scenario, catalog: Catalog, explain: bool) -> str:
    if explain:
        return estimate(scn, catalog).message
    return "does not fit in memory (or the layout cannot split the model)"


def _unresolved(exc: ValueError) -> str:
    return str(exc).removeprefix("no scenario could be resolved: ")


def parse_values(axis: str, text: str) -> list[Any]:
    """Comma-separated values for `axis`; ValueError says which value is bad."""
    if axis not in AXES:
        raise ValueError(f"unknown axis '{axis}'; choose one of {', '.join(AXES)}")
    spec = AXES[axis]
    items = [t.strip() for t in text.replace(";", ",").split(",") if t.strip()]
    if not items:
        raise ValueError(f"{spec.label}: give at least one value")
    if len(items) > MAX_POINTS:
        raise ValueError(f"{spec.label}: at most {MAX_POINTS} values")
    if not spec.numeric:
        return list(dict.fromkeys(items))
    out = []
    for t in items:
        try:
            v = int(t)
        except ValueError:
            raise ValueError(f"{spec.label}: '{t}' is not a whole number") from None
        if not 1 <= v <= MAX_TOKENS:
            raise ValueError(f"{spec.label}: {v} is out of range (1 to {MAX_TOKENS:,})")
        out.append(v)
    return sorted(set(out))


def vary(base: Scenario, axis: str, values: list[Any]) -> tuple[list[Scenario], list[Any], list[str]]:
    """`base` with `axis` set to each value: the valid scenarios, their values, and why others were left out."""
    field = AXES[axis].field
    scns, kept, problems = [], [], []
    for v in values:
        try:
            scns.append(Scenario.model_validate({**base.model_dump(), field: v}))
            kept.append(v)
        except ValidationError as exc:
            problems.append(f"{field}={v}: {validation_text(exc)}")
    return scns, kept, problems


def vary_rows(
    bases: list[Scenario], axis: str, values: list[Any], catalog: Catalog
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every base scenario at every value of `axis`, evaluated in one sweep: long-format rows and problems."""
    points: list[Scenario] = []
    meta: list[tuple[str, Any]] = []
    problems: list[str] = []
    for i, base in enumerate(bases, start=1):
        scns, kept, bad = vary(base, axis, values)
        points += scns
        meta += [(label(i, base), v) for v in kept]
        problems += [f"S{i}: {p}" for p in bad]  # invalid layouts, e.g. ep not dividing tp
    rows = []
    for (name, v), row in zip(meta, evaluate_rows(points, catalog), strict=True):
        if row["status"] == "error":
            problems.append(f"{name.split(':')[0]}: {row['message']}")
            continue
        rows.append({"scenario": name, AXES[axis].field: v, **row})
    return rows, list(dict.fromkeys(problems))
