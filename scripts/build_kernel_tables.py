"""Build catalogs/kernels/ from the measured kernel timings in ../shared/reference/kernels.

    .venv/bin/python scripts/build_kernel_tables.py [--src ../shared/reference/kernels] [--out catalogs/kernels]

Source: NVIDIA's aiconfigurator (ai-dynamo/aiconfigurator @095f58a, aic-core/src/aiconfigurator_core/systems/data/),
Apache-2.0. For each system (h100_sxm, h200_sxm, b200_sxm) and op it writes one parquet file holding only what
llmcap.perf.kernels reads: the engine, the dtype columns, the shape columns and `latency` (ms, one kernel call).
What is dropped and why:
  - constant or descriptive columns (framework, version, device, op_name, beam_width, kernel_source, backend);
  - duplicate shapes (several kernels, or eager and CUDA-graph all-reduce, timed for one shape): the fastest is kept;
  - MoE: the non-gated kernels (a different MLP, 2 matrices instead of 3; they would undercut the gated rows) and
    the power_law_1.2 routing (kept: balanced and power_law_1.01), to keep the catalog near 8 MB;
  - NCCL: only all_reduce (the collective the estimator times).
Generation attention keeps ctx = isl + step (the KV length the decode query attends to).
The output is deterministic (sorted rows, fixed compression), so running this twice gives the same files.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import polars as pl
import yaml

ROOT = Path(__file__).resolve().parents[1]
SYSTEMS = {"h100_sxm": "h100-sxm", "h200_sxm": "h200-sxm", "b200_sxm": "b200-sxm"}
ENGINES = {"trtllm": "trtllm", "vllm": "vllm", "sglang": "sglang", "nccl": "nccl"}
DTYPE = {"bfloat16": "bf16", "half": "fp16", "float16": "fp16"}
SOURCE = "NVIDIA aiconfigurator, ai-dynamo/aiconfigurator @095f58a, aic-core/src/aiconfigurator_core/systems/data/"


def _dtype(col: str) -> pl.Expr:
    return pl.col(col).replace(DTYPE)


# op -> (source file, output file, {output column: expression}, key columns)
OPS = {
    "gemm": (
        "gemm/*/*/gemm_perf.parquet",
        {"dtype": _dtype("gemm_dtype"), "m": "m", "n": "n", "k": "k"},
    ),
    "context_attention": (
        "attention/*/*/context_attention_perf.parquet",
        {
            "attn_dtype": _dtype("attn_dtype"),
            "kv_dtype": _dtype("kv_cache_dtype"),
            "head_dim": "head_dim",
            "window": "window_size",
            "num_heads": "num_heads",
            "num_kv_heads": "num_key_value_heads",
            "batch": "batch_size",
            "isl": "isl",
        },
    ),
    "generation_attention": (
        "attention/*/*/generation_attention_perf.parquet",
        {
            "kv_dtype": _dtype("kv_cache_dtype"),
            "head_dim": "head_dim",
            "window": "window_size",
            "num_heads": "num_heads",
            "num_kv_heads": "num_key_value_heads",
            "batch": "batch_size",
            "ctx": pl.col("isl") + pl.col("step"),
        },
    ),
    "moe": (
        "moe/*/*/moe_perf.parquet",
        {
            "dtype": _dtype("moe_dtype"),
            "distribution": "distribution",
            "hidden": "hidden_size",
            "inter": "inter_size",
            "topk": "topk",
            "num_experts": "num_experts",
            "tp": "moe_tp_size",
            "ep": "moe_ep_size",
            "num_tokens": "num_tokens",
        },
    ),
    "allreduce": (
        "comm/*/*/*allreduce_perf.parquet|comm/nccl/*/nccl_perf.parquet",
        {"dtype": None, "num_gpus": "num_gpus", "message_size": "message_size"},
    ),
}


def _frame(path: Path, op: str, cols: dict) -> pl.DataFrame:
    engine = ENGINES[path.parts[-3]]
    version = path.parts[-2]
    df = pl.read_parquet(path)
    if op == "moe":
        df = df.filter(~pl.col("kernel_source").str.contains("nongated") & (pl.col("distribution") != "power_law_1.2"))
    if op == "allreduce":
        if "nccl_dtype" in df.columns:
            df = df.filter(pl.col("op_name") == "all_reduce").with_columns(_dtype("nccl_dtype").alias("_dt"))
        else:
            df = df.with_columns(_dtype("allreduce_dtype").alias("_dt"))
        cols = dict(cols, dtype=pl.col("_dt"))
    exprs = [pl.lit(engine).alias("engine"), pl.lit(version).alias("version")]
    for name, e in cols.items():
        e = pl.col(e) if isinstance(e, str) else e
        exprs.append(
            e.alias(name).cast(pl.Int32 if name not in ("dtype", "attn_dtype", "kv_dtype", "distribution") else pl.Utf8)
        )
    exprs.append(pl.col("latency").cast(pl.Float32))
    return df.select(exprs)


def build(src: Path, out: Path) -> list[dict]:
    """Write the tables under `out`; return the index entries."""
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for system, device in SYSTEMS.items():
        (out / device).mkdir(exist_ok=True)
        for op, (pattern, cols) in OPS.items():
            paths = sorted(p for pat in pattern.split("|") for p in (src / system).glob(pat))
            if not paths:
                continue
            df = pl.concat([_frame(p, op, cols) for p in paths])
            keys = ["engine", "version", *cols]
            df = (
                df.filter(pl.col("latency").is_finite() & (pl.col("latency") > 0))
                .group_by(keys)
                .agg(pl.col("latency").min())
                .sort(keys)
            )
            rel = f"{device}/{op}.parquet"
            df.write_parquet(out / rel, compression="zstd", compression_level=19, statistics=False)
            engines = df.select("engine", "version").unique().sort("engine")
            index.append(
                {
                    "file": rel,
                    "device": device,
                    "source_system": system,
                    "op": op,
                    "engines": {r["engine"]: r["version"] for r in engines.iter_rows(named=True)},
                    "dtype_columns": [c for c in cols if c in ("dtype", "attn_dtype", "kv_dtype")],
                    "shape_columns": [c for c in cols if c not in ("dtype", "attn_dtype", "kv_dtype", "distribution")],
                    "rows": df.height,
                    "source": [str(p.relative_to(src)) for p in paths],
                }
            )
    doc = {
        "source": SOURCE,
        "license": "Apache-2.0 (LICENSE-aiconfigurator)",
        "latency_unit": "ms per kernel call",
        "tables": index,
    }
    (out / "index.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, width=120))
    lic = src / "LICENSE-aiconfigurator"
    if lic.exists():
        shutil.copyfile(lic, out / "LICENSE-aiconfigurator")
    return index


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=ROOT.parent / "shared" / "reference" / "kernels")
    ap.add_argument("--out", type=Path, default=ROOT / "catalogs" / "kernels")
    a = ap.parse_args()
    for e in build(a.src, a.out):
        print(f"{e['file']}: {e['rows']} rows")
    total = sum(p.stat().st_size for p in a.out.rglob("*") if p.is_file())
    print(f"total {total / 1e6:.2f} MB in {a.out}")


if __name__ == "__main__":
    main()
