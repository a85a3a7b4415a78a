"""Measured serving results in the formats of ../shared/reference (and their copy in catalogs/measured/).

Two layouts are read:
  * one row per run with `ttft_ms` and `tpot_ms` columns (measured_serving_hopper.csv)
  * one row per metric with `metric` and `value` columns (measured_web_calibration.csv)
Each becomes `Measurement`s: a Scenario, a metric name and the measured value.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from core.estimate import Estimate
from core.scenario import ENGINES, Scenario

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


@dataclass(frozen=True)
class Measurement:
    id: str
    source: str
    scenario: Scenario
    metric: str
    value: float


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
                    out.append(Measurement(rid, row.get("source", ""), scn, metric, value))
    return out, skipped


def predicted(est: Estimate, metric: str) -> float | None:
    """The estimate's value of a measured metric (None when it did not fit)."""
    s = est.serving
    if s is None:
        return None
    scn = est.scenario
    return {
        "ttft_ms": s.ttft_ms,
        "tpot_ms": s.tpot_ms,
        "e2e_ms": s.e2e_ms,
        "output_tokens_per_s": s.output_tokens_per_s,
        "total_tokens_per_s": s.output_tokens_per_s + s.input_tokens_per_s,
        "prefill_tokens_per_s": s.concurrency_per_replica * scn.input_len / (s.ttft_ms / 1e3) * scn.replicas,
        "decode_tokens_per_s_per_seq": 1e3 / s.tpot_ms if s.tpot_ms > 0 else None,
    }[metric]
