"""Batch prediction: every row of a scenarios table through one vectorized evaluation (`llmcap predict`).

Rows are dicts of strings (a CSV's columns); each becomes a Scenario, all are evaluated together by
llmcap.estimate.sweep, and each row gets PREDICT_COLUMNS (with each latency's and the throughput's 80% interval,
llmcap.estimate.bands): status ok / does_not_fit / unsupported (the engine does
not run it: catalogs/support.yaml) / error, with a message.
"""

from __future__ import annotations

from pydantic import ValidationError

from llmcap.catalog.loader import Catalog, load_catalog
from llmcap.estimate.bands import SERVING_KEYS, serving_bands
from llmcap.estimate.fit import not_fit_message
from llmcap.estimate.sweep import UNSUPPORTED, SweepResult, build_input, evaluate
from llmcap.perf.timing import BOUNDS
from llmcap.scenario import Scenario, validation_text

PREDICT_COLUMNS = (
    "status",
    "message",
    "ttft_ms",
    "tpot_ms",
    "e2e_ms",
    "output_tokens_per_s",
    "prefill_tokens_per_s",
    "prefill_bound",
    "decode_bound",
    "weights_gb_per_device",
    "kv_gb_per_device",
    "max_concurrency",
    *(f"{m}_{end}" for m in SERVING_KEYS for end in ("low", "high")),
)


def _row_scenario(row: dict, catalog: Catalog) -> Scenario:
    """One CSV row as a Scenario; an empty weight_format / kv_format takes the checkpoint's (else bf16 / auto)."""

    def get(key: str, default: str | None = None) -> str | None:
        v = (row.get(key) or "").strip()
        return v or default

    conc = get("concurrency", "1")
    model = get("model") or ""
    return Scenario(
        model=model,
        hardware=get("hardware") or "",
        engine=get("engine", "generic"),
        tp=int(get("tp", "1")),
        pp=int(get("pp", "1")),
        ep=int(get("ep", "1")),
        dp=int(get("dp", "1")),
        replicas=int(get("replicas", "1")),
        weight_format=get("weight_format") or catalog.default_weights(model),
        kv_format=get("kv_format") or catalog.default_kv(model),
        input_len=int(get("input_len") or "0"),
        output_len=int(get("output_len") or "0"),
        concurrency="max" if conc.lower() == "max" else int(conc),
    )


def predict_rows(rows: list[dict], catalog: Catalog | None = None) -> list[dict]:
    """Predictions for scenario rows (CSV columns as strings); a bad row gets status `error` and a message,
    a row that does not fit gets `does_not_fit` and llmcap.estimate.fit's reason; the rest go on."""
    catalog = catalog or load_catalog()
    results: list[dict] = [dict(r) for r in rows]
    scenarios: list[Scenario] = []
    index: list[int] = []
    for i, row in enumerate(rows):
        try:
            scenarios.append(_row_scenario(row, catalog))
            index.append(i)
        except (ValidationError, ValueError) as exc:
            text = validation_text(exc, "scenario") if isinstance(exc, ValidationError) else str(exc)
            results[i].update(status="error", message=text)
    if scenarios:
        inp, errors = build_input(scenarios, catalog)
        res = evaluate(inp)
        ok = [s for s, e in zip(scenarios, errors, strict=True) if e is None]
        kinds = [catalog.device(s.hardware).kind for s in ok]
        intervals = serving_bands(res, kinds, [s.engine for s in ok], [s.output_len for s in ok])
        j = 0
        for i, scn, err in zip(index, scenarios, errors, strict=True):
            if err is not None and err.startswith(UNSUPPORTED):
                results[i].update(status="unsupported", message=err.removeprefix(UNSUPPORTED))
                continue
            if err is not None:
                results[i].update(status="error", message=err)
                continue
            results[i].update(_prediction(res, j, scn, catalog, intervals))
            j += 1
    return [{**r, **{c: r.get(c, "") for c in PREDICT_COLUMNS}} for r in results]


def _prediction(res: SweepResult, j: int, scn: Scenario, catalog: Catalog, intervals: dict) -> dict:
    gb = 1e9
    fits = bool(res.fits[j])
    out = {
        "status": "ok" if fits else "does_not_fit",
        "weights_gb_per_device": round(float(res.weights_bytes[j]) / gb, 3),
        "kv_gb_per_device": round(float(res.kv_bytes_per_seq[j] * res.running[j]) / gb, 3) if fits else 0.0,
        "max_concurrency": int(res.max_concurrency[j] * scn.replicas),
        "prefill_bound": BOUNDS[int(res.prefill_bound[j])],
        "decode_bound": BOUNDS[int(res.decode_bound[j])],
    }
    if not fits:
        out["message"] = not_fit_message(scn, catalog.model(scn.model).arch, res, j)
        return out
    out.update(
        message="",
        ttft_ms=round(float(res.ttft_s[j]) * 1e3, 3),
        tpot_ms=round(float(res.tpot_s[j]) * 1e3, 4),
        e2e_ms=round(float(res.e2e_s[j]) * 1e3, 2),
        output_tokens_per_s=round(float(res.output_tokens_per_s[j]), 2),
        prefill_tokens_per_s=round(scn.input_len / float(res.prefill_s[j]), 1),
    )
    digits = {"ttft_ms": 3, "tpot_ms": 4, "e2e_ms": 2, "output_tokens_per_s": 2}
    for m, (lo, hi) in intervals.items():
        out[f"{m}_low"], out[f"{m}_high"] = round(float(lo[j]), digits[m]), round(float(hi[j]), digits[m])
    return out
