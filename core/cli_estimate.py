"""`llmcap estimate`, `predict`, `validate` and `calibrate`."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from core.catalog import CATALOG_DIR, load_catalog
from core.estimate import Estimate, estimate
from core.hfconfig import ConfigError, parse_config
from core.output import FORMATS, render
from core.scenario import ENGINES, Scenario
from core.sweep import build_input, evaluate
from core.timing import BOUNDS

REFERENCE_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "reference"
MAX_PREDICT_BYTES = 50_000_000
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
)


def _concurrency(text: str) -> int | str:
    if text.strip().lower() == "max":
        return "max"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"concurrency must be an integer or 'max', not '{text}'") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("estimate", help="memory, latency and throughput of one scenario")
    p.add_argument("--model", help="catalog model id (Hugging Face id or alias)")
    p.add_argument("--model-config", type=Path, help="a Hugging Face config.json instead of a catalog id")
    p.add_argument("--hardware", required=True)
    for name in ("tp", "pp", "ep", "replicas"):
        p.add_argument(f"--{name}", type=int, default=1)
    p.add_argument("--weights", default="bf16", help="weight format id (llmcap catalog list formats)")
    p.add_argument("--kv", default=None, help="KV-cache format id (default: the weight format's)")
    p.add_argument("--engine", default="generic", choices=ENGINES)
    p.add_argument("--input-len", type=int, required=True)
    p.add_argument("--output-len", type=int, required=True)
    p.add_argument("--concurrency", type=_concurrency, default=1, help="requests in flight, or 'max'")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("predict", help="estimate every row of a scenarios CSV")
    p.add_argument("--in", dest="inp", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("validate", help="compare predictions with measured CSVs")
    p.add_argument("--data", type=Path, nargs="+", help="measured CSVs (default: catalogs/measured/*.csv)")
    p.add_argument("--worst", type=int, default=10)
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("calibrate", help="fit efficiency parameters to the measured reference data")
    p.add_argument("--data", type=Path, nargs="+", help="measured CSVs (default: catalogs/measured/*.csv)")
    p.add_argument("--write", action="store_true", help="write catalogs/efficiency.yaml (else print it)")
    p.set_defaults(func=cmd_calibrate)


def _scenario_from_args(args) -> Scenario:
    model = args.model or (str(args.model_config) if args.model_config else None)
    if not model:
        raise ValueError("give --model ID or --model-config PATH")
    try:
        return Scenario(
            model=model,
            hardware=args.hardware,
            tp=args.tp,
            pp=args.pp,
            ep=args.ep,
            replicas=args.replicas,
            weight_format=args.weights,
            kv_format=args.kv,
            engine=args.engine,
            input_len=args.input_len,
            output_len=args.output_len,
            concurrency=args.concurrency,
        )
    except ValidationError as exc:
        raise ValueError(_validation_text(exc)) from None


def _validation_text(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'scenario'}: {e['msg']}" for e in exc.errors())


def load_config_file(path: Path):
    """Architecture from a user's config.json, with a clear error."""
    try:
        if path.stat().st_size > 5_000_000:
            raise ValueError(f"{path}: config.json larger than 5 MB")
        return parse_config(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read config.json: {exc}") from None
    except ConfigError as exc:
        raise ValueError(f"{path}: {exc}") from None


def cmd_estimate(args) -> int:
    scn = _scenario_from_args(args)
    arch = load_config_file(args.model_config) if args.model_config else None
    est = estimate(scn, arch=arch)
    if args.format == "json":
        print(json.dumps(estimate_json(est), indent=2))
    else:
        print(estimate_text(est))
    return 0 if est.fits else 1


def estimate_json(est: Estimate) -> dict:
    d = est.model_dump(mode="json")
    d["fits"] = est.fits
    return d


def estimate_text(est: Estimate) -> str:
    scn, m = est.scenario, est.memory
    lines = [
        f"{est.model_id} on {scn.devices} x {est.hardware_name} (tp={scn.tp} pp={scn.pp} ep={scn.ep} "
        f"replicas={scn.replicas}), weights {scn.weight_format}, math {est.math}, engine {scn.engine}",
        f"fits: {'yes' if est.fits else 'NO'} - {est.message}",
        f"memory per device: weights {m.weights_gb:.2f} GB, KV {m.kv_gb:.2f} GB ({m.kv_gb_per_sequence:.3f} GB/seq), "
        f"activations {m.activations_gb:.2f} GB, runtime {m.overhead_gb:.2f} GB, reserved {m.reserved_gb:.2f} GB, "
        f"free {m.free_gb:.2f} GB of {m.capacity_gb:.1f} GB; max concurrency {m.max_concurrency}",
    ]
    for note in est.notes:
        lines.append(f"note: {note}")
    if est.serving and est.prefill and est.decode:
        s, p, d = est.serving, est.prefill, est.decode
        lines += [
            f"prefill ({scn.input_len} tokens): {p.time_ms:.2f} ms = compute {p.compute_ms:.2f} + memory "
            f"{p.memory_ms:.2f} + comm {p.comm_ms:.2f} + overhead {p.overhead_ms:.2f} ms -> {p.bound}-bound",
            f"decode step (batch {d.batch:.0f}): {d.time_ms:.2f} ms = compute {d.compute_ms:.2f} + memory "
            f"{d.memory_ms:.2f} + comm {d.comm_ms:.2f} + overhead {d.overhead_ms:.2f} ms -> {d.bound}-bound",
            f"concurrency {s.concurrency}: TTFT {s.ttft_ms:.1f} ms, TPOT {s.tpot_ms:.2f} ms, E2E {s.e2e_ms:.0f} ms, "
            f"{s.requests_per_s:.2f} req/s, {s.output_tokens_per_s:.0f} output tok/s "
            f"({s.output_tokens_per_s_per_device:.0f} per device)",
            "",
        ]
        rows = [
            {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.model_dump().items()} for r in est.operators
        ]
        lines.append(render(rows, "table"))
    return "\n".join(lines)


def _row_scenario(row: dict) -> Scenario:
    def get(key: str, default: str | None = None) -> str | None:
        v = (row.get(key) or "").strip()
        return v or default

    conc = get("concurrency", "1")
    return Scenario(
        model=get("model") or "",
        hardware=get("hardware") or "",
        engine=get("engine", "generic"),
        tp=int(get("tp", "1")),
        pp=int(get("pp", "1")),
        ep=int(get("ep", "1")),
        replicas=int(get("replicas", "1")),
        weight_format=get("weight_format", "bf16"),
        kv_format=get("kv_format"),
        input_len=int(get("input_len") or "0"),
        output_len=int(get("output_len") or "0"),
        concurrency="max" if conc.lower() == "max" else int(conc),
    )


def predict_rows(rows: list[dict]) -> list[dict]:
    """Predictions for scenario rows; a bad row gets status `error` and a message, the rest go on."""
    results: list[dict] = [dict(r) for r in rows]
    scenarios: list[Scenario] = []
    index: list[int] = []
    for i, row in enumerate(rows):
        try:
            scenarios.append(_row_scenario(row))
            index.append(i)
        except (ValidationError, ValueError) as exc:
            text = _validation_text(exc) if isinstance(exc, ValidationError) else str(exc)
            results[i].update(status="error", message=text)
    if scenarios:
        inp, errors = build_input(scenarios)
        res = evaluate(inp)
        j = 0
        for i, scn, err in zip(index, scenarios, errors, strict=True):
            if err is not None:
                results[i].update(status="error", message=err)
                continue
            results[i].update(_prediction(res, j, scn))
            j += 1
    return [{**r, **{c: r.get(c, "") for c in PREDICT_COLUMNS}} for r in results]


def _prediction(res, j: int, scn: Scenario) -> dict:
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
        room = float(res.kv_room_bytes[j]) / gb
        need = float(res.kv_bytes_per_seq[j]) / gb
        out["message"] = (
            f"weights and runtime exceed usable memory by {-room:.1f} GB per device"
            if room <= 0
            else f"one {scn.input_len + scn.output_len}-token sequence needs {need:.2f} GB KV; {room:.2f} GB left"
        )
        return out
    out.update(
        message="",
        ttft_ms=round(float(res.ttft_s[j]) * 1e3, 3),
        tpot_ms=round(float(res.tpot_s[j]) * 1e3, 4),
        e2e_ms=round(float(res.e2e_s[j]) * 1e3, 2),
        output_tokens_per_s=round(float(res.output_tokens_per_s[j]), 2),
        prefill_tokens_per_s=round(scn.input_len / float(res.prefill_s[j]), 1),
    )
    return out


def cmd_predict(args) -> int:
    path: Path = args.inp
    try:
        if path.stat().st_size > MAX_PREDICT_BYTES:
            raise ValueError(f"{path}: larger than {MAX_PREDICT_BYTES} bytes")
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: cannot read CSV: {exc}") from None
    if not rows:
        raise ValueError(f"{path}: no rows")
    missing = {"model", "hardware", "input_len", "output_len", "concurrency"} - set(rows[0])
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    out = predict_rows(rows)
    args.out.write_text(render(out, "csv"), encoding="utf-8")
    bad = sum(r["status"] != "ok" for r in out)
    print(f"wrote {len(out)} rows to {args.out} ({bad} not ok)", file=sys.stderr)
    return 0


def default_data() -> list[Path]:
    shipped = sorted((CATALOG_DIR / "measured").glob("*.csv"))
    return shipped or sorted(REFERENCE_DIR.glob("measured_*.csv"))


def cmd_validate(args) -> int:
    from core.validate import compare, summarize, worst

    paths = args.data or default_data()
    rows, skipped = compare(paths)
    used = [r for r in rows if r.error is not None]
    report = {
        "files": [str(p) for p in paths],
        "rows": len(rows),
        "compared": len(used),
        "not_fit_or_error": len(rows) - len(used),
        "overall": summarize(rows, "metric"),
        "by_device_class": summarize(rows, "device_class"),
        "by_hardware": summarize(rows, "hardware"),
        "by_engine": summarize(rows, "engine"),
        "worst": worst(rows, args.worst),
        "skipped": skipped,
    }
    if args.format == "json":
        print(json.dumps(report, indent=2))
        return 0
    if args.format == "csv":
        print(
            render(report["overall"] + report["by_device_class"] + report["by_hardware"] + report["by_engine"], "csv")
        )
        return 0
    print(f"{report['compared']} of {report['rows']} measured values compared ({report['not_fit_or_error']} not)")
    for title in ("overall", "by_device_class", "by_hardware", "by_engine", "worst"):
        print(f"\n{title.replace('_', ' ')}:")
        print(render(report[title], "table"))
    return 0


def cmd_calibrate(args) -> int:
    from core.calibrate import calibrate, write_table

    paths = args.data or default_data()
    table = calibrate(paths, load_catalog())
    if args.write:
        write_table(table)
        print(f"wrote {CATALOG_DIR / 'efficiency.yaml'} from {len(paths)} files, {table['rows_used']} values")
    else:
        import yaml

        print(yaml.safe_dump(table, sort_keys=False))
    return 0
