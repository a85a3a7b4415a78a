"""Measured serving results in the formats of ../shared/reference (and their copy in catalogs/measured/).

Two layouts are read:
  * one row per run with `ttft_ms` and `tpot_ms` columns (measured_serving_hopper.csv, measured_serving_more.csv)
  * one row per metric with `metric` and `value` columns (measured_web_calibration.csv)
Each becomes `Measurement`s: a Scenario, a metric name and the measured value. measured_serving_more.csv also
records the run's own layout (`source_attention_dp_size`, `source_moe_tp_size`, `source_moe_ep_size`); those are
kept on the Measurement, and a row whose layout the Scenario cannot express yet (attention data parallel > 1) is
skipped with the reason ATTENTION_DP_SKIP.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from llmcap.catalog.loader import catalog_dir
from llmcap.estimate.sweep import SweepInput, SweepResult
from llmcap.scenario import ENGINES, Scenario

METRICS = (
    "ttft_ms",
    "tpot_ms",
    "e2e_ms",
    "output_tokens_per_s",
    "total_tokens_per_s",
    "prefill_tokens_per_s",
    "decode_tokens_per_s_per_seq",
)
MAX_MEASURED_BYTES = 50_000_000
# the files `llmcap validate` and `llmcap calibrate` read by default (sorted: the fit records their hashes in order)
DEFAULT_FILES = ("measured_serving_hopper.csv", "measured_serving_more.csv", "measured_web_calibration.csv")
ATTENTION_DP_SKIP = "attention data parallel > 1 (the Scenario has no dp field yet)"
# ../shared/reference beside a checkout (core/calibration/measured.py -> the folder above the repository)
REFERENCE_DIR = Path(__file__).resolve().parents[3] / "shared" / "reference"


def default_data() -> list[Path]:
    """The measured CSVs `llmcap validate` and `calibrate` read by default (DEFAULT_FILES): the copies shipped in
    catalogs/measured/, else those in ../shared/reference."""
    shipped = [catalog_dir() / "measured" / name for name in DEFAULT_FILES]
    if all(p.is_file() for p in shipped):
        return shipped
    return [p for p in (REFERENCE_DIR / name for name in DEFAULT_FILES) if p.is_file()]


@dataclass(frozen=True)
class Measurement:
    id: str
    source: str
    scenario: Scenario
    metric: str
    value: float
    # the run's own layout where the source records it (measured_serving_more.csv), else None
    attention_dp: int | None = None
    moe_tp: int | None = None
    moe_ep: int | None = None


def _opt_int(row: dict, key: str) -> int | None:
    """A layout field the source may leave empty; 0 (older dumps) also means not recorded."""
    raw = (row.get(key) or "").strip()
    value = int(float(raw)) if raw else 0
    return value if value > 0 else None


def _int(row: dict, key: str, default: int = 1) -> int:
    raw = (row.get(key) or "").strip()
    return int(float(raw)) if raw else default


def _scenario(row: dict) -> Scenario:
    engine = (row.get("engine") or "generic").strip()
    conc = (row.get("concurrency") or "1").strip()
    return Scenario(
        model=row["model"].strip(),
        hardware=row["hardware"].strip(),
        tp=_int(row, "tp"),
        pp=_int(row, "pp"),
        ep=_int(row, "ep"),
        replicas=_int(row, "replicas"),
        weight_format=row["weight_format"].strip(),
        kv_format=(row.get("kv_format") or "").strip() or None,
        engine=engine if engine in ENGINES else "generic",
        input_len=_int(row, "input_len"),
        output_len=_int(row, "output_len"),
        concurrency="max" if conc == "max" else int(float(conc)),
    )


def read_measurements(path: Path | str) -> tuple[list[Measurement], list[str]]:
    """Measurements in one CSV, and a message for each row that could not be read."""
    path = Path(path)
    if path.stat().st_size > MAX_MEASURED_BYTES:
        raise ValueError(f"{path}: larger than {MAX_MEASURED_BYTES} bytes")
    out: list[Measurement] = []
    skipped: list[str] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols = set(reader.fieldnames or [])
        if not {"model", "hardware", "weight_format", "input_len", "output_len"} <= cols:
            raise ValueError(f"{path}: not a measured-results CSV (columns: {sorted(cols)})")
        for line, row in enumerate(reader, start=2):
            rid = row.get("id") or f"{path.name}:{line}"
            try:
                layout = {k: _opt_int(row, f"source_{k}_size") for k in ("attention_dp", "moe_tp", "moe_ep")}
                if (layout["attention_dp"] or 1) > 1:
                    skipped.append(f"{rid}: {ATTENTION_DP_SKIP}")
                    continue
                scn = _scenario(row)
                if "metric" in cols:
                    pairs = [(row["metric"].strip(), float(row["value"]))]
                else:
                    pairs = [(m, float(row[m])) for m in ("ttft_ms", "tpot_ms") if (row.get(m) or "").strip()]
            except (ValueError, KeyError, ValidationError) as exc:
                skipped.append(f"{rid}: {str(exc).splitlines()[0]}")
                continue
            for metric, value in pairs:
                if metric not in METRICS:
                    skipped.append(f"{rid}: unknown metric {metric}")
                elif value > 0:
                    out.append(Measurement(rid, row.get("source", ""), scn, metric, value, **layout))
    return out, skipped


def read_all(paths: list[Path | str]) -> tuple[list[Measurement], list[str]]:
    """Measurements of every file, in order, and the skipped-row messages."""
    out: list[Measurement] = []
    skipped: list[str] = []
    for p in paths:
        rows, bad = read_measurements(p)
        out += rows
        skipped += bad
    return out, skipped


def skip_reasons(skipped: list[str]) -> dict[str, int]:
    """Skipped-row messages ("id: reason") counted by reason."""
    out: dict[str, int] = {}
    for msg in skipped:
        reason = msg.split(": ", 1)[-1]
        out[reason] = out.get(reason, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def metric_arrays(res: SweepResult, inp: SweepInput, metrics: list[str]) -> np.ndarray:
    """Predicted value of each row's measured metric, from sweep arrays (the one definition of each)."""
    s, o = inp.input_len, inp.output_len
    rps = res.requests_per_s
    table = {
        "ttft_ms": res.ttft_s * 1e3,
        "tpot_ms": res.tpot_s * 1e3,
        "e2e_ms": res.e2e_s * 1e3,
        "output_tokens_per_s": rps * o,
        "total_tokens_per_s": rps * (s + o),
        # aggregate prompt tokens per second over the requests in flight (llama-bench pp: one request)
        "prefill_tokens_per_s": res.running * s / np.maximum(res.ttft_s, 1e-12) * inp.replicas,
        "decode_tokens_per_s_per_seq": 1.0 / np.maximum(res.tpot_s, 1e-12),
    }
    out = np.full(len(metrics), np.nan)
    for name in set(metrics):
        sel = np.array([m == name for m in metrics])
        out[sel] = table[name][sel]
    return out
