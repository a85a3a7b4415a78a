"""Benchmark: how far today's per-operator time model is from the measured kernel tables (catalogs/kernels/).

For every measured row of every shipped table (device, op, engine), the estimator's operator time for the same
shape is computed with the formulas of core/perf/timing.py (StepTimer, one operator, one layer) and the fitted
efficiency parameters of catalogs/efficiency.yaml for that device class and engine:
  gemm                 max(2mnk / (peak_math gemm_eff_max) (m + gemm_m_half)/m,
                           (weights + activations) / (bw mem_eff_max) + kernel_lat_s)
  context attention    max(pairs 2 heads 2d / (peak_bf16 attn_eff_max), (activations + 2 x new KV) / (bw mem_eff_max)
                           + kernel_lat_s), pairs = batch causal_pairs(isl, window)
  decode attention     the same with pairs = batch min(ctx, window), KV read = pairs x KV bytes per token
  moe                  the experts row on tp x ep GPUs: distinct experts E(1 - (1 - k/E)^tokens) read, rows factor
                       at tokens k / distinct rows per expert
  all-reduce           2(n-1)/n bytes / (link comm_eff) + comm_alpha_s 2(n-1)
and compared with the measured latency: median and p90 of |ln(model / measured)| in %, and the median ratio
(model / measured: > 1 means the model is slower than the kernel). Per device and op, all engines pooled;
one line per engine follows each op. Last line: kernel_ops_compared=N.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from llmcap.catalog.loader import catalog_dir, load_catalog  # noqa: E402
from llmcap.perf.efficiency import efficiency  # noqa: E402
from llmcap.perf.kernels import MATH, WEIGHT_BYTES, _causal_pairs, _peak, kernel_devices  # noqa: E402

ACT = 2.0  # activations between kernels stay 16-bit (shapes.format_spec)


def _col(df: pl.DataFrame, name: str) -> np.ndarray:
    return df[name].to_numpy().astype(float)


def model_times(op: str, df: pl.DataFrame, dev, eff) -> np.ndarray:
    """The efficiency model's seconds for each row of one engine's table."""
    peaks = {k: v * 1e12 for k, v in dev.peak_tflops.items()}
    bw = dev.mem_bw_gbps * 1e9 * eff.mem_eff_max[0]
    lat = eff.kernel_lat_s[0]
    half = _peak(peaks, "bf16")
    if op == "gemm":
        m, n, k = _col(df, "m"), _col(df, "n"), _col(df, "k")
        dt = df["dtype"].to_numpy()
        peak = np.array([_peak(peaks, MATH.get(d, "bf16")) for d in dt])
        wb = np.array([WEIGHT_BYTES.get(d, 2.0) for d in dt])
        compute = 2 * m * n * k / (peak * eff.gemm_eff_max[0]) * (m + eff.gemm_m_half[0]) / m
        memory = (n * k * wb + m * (k + n) * ACT) / bw + lat
        return np.maximum(compute, memory)
    if op in ("context_attention", "generation_attention"):
        b, h, kvh, d = _col(df, "batch"), _col(df, "num_heads"), _col(df, "num_kv_heads"), _col(df, "head_dim")
        window = _col(df, "window")
        kvb = np.where(df["kv_dtype"].to_numpy() == "fp8", 1.0, 2.0)
        if op == "context_attention":
            isl = _col(df, "isl")
            pairs, new = b * _causal_pairs(isl, window), b * isl
            kv_rows = 2 * new  # timing.py: kv_token (f pairs + (2 - f) tokens), f = 0 in prefill
        else:
            ctx = _col(df, "ctx")
            pairs = b * np.minimum(ctx, np.where(window > 0, window, np.inf))
            new = b
            kv_rows = pairs + new  # f = 1 in decode
        kv_tok = 2 * kvh * d * kvb
        compute = pairs * 2 * h * 2 * d / (half * eff.attn_eff_max[0])
        memory = (new * 2 * h * 2 * d * ACT + kv_tok * kv_rows) / bw
        return np.maximum(compute, memory + lat)
    if op == "moe":
        t, hid, inter = _col(df, "num_tokens"), _col(df, "hidden"), _col(df, "inter")
        k, e, gpus = _col(df, "topk"), _col(df, "num_experts"), _col(df, "tp") * _col(df, "ep")
        dt = df["dtype"].to_numpy()
        peak = np.array([_peak(peaks, MATH.get(x, "bf16")) for x in dt])
        wb = np.array([WEIGHT_BYTES.get(x, 2.0) for x in dt])
        p_expert = 3 * hid * inter
        distinct = e * -np.expm1(t * np.log1p(-np.minimum(k / e, 1 - 1e-12)))
        rows = np.maximum(t * k / np.maximum(distinct, 1.0), 1.0)
        compute = 2 * k * p_expert * t / gpus / (peak * eff.gemm_eff_max[0]) * (rows + eff.gemm_m_half[0]) / rows
        memory = (distinct * p_expert * wb / gpus + k * 2 * hid * ACT * t / gpus) / bw + lat
        return np.maximum(compute, memory)
    n, size = _col(df, "num_gpus"), _col(df, "message_size")
    eb = np.where(df["dtype"].to_numpy() == "int8", 1.0, 2.0)
    link = dev.scaleup.gbps_per_direction * 1e9 * eff.comm_eff[0]
    return 2 * (n - 1) / n * size * eb / link + eff.comm_alpha_s[0] * 2 * (n - 1)


def _stats(ratio: np.ndarray) -> str:
    err = 100 * np.abs(np.log(ratio))
    return f"median {np.median(err):7.1f}%  p90 {np.quantile(err, 0.9):7.1f}%  model/measured {np.median(ratio):6.2f}"


def main() -> None:
    cat = load_catalog()
    total = 0
    print(f"{'device':9} {'op':21} {'engine':7} {'rows':>7}  |ln(model/measured)|")
    for device in kernel_devices():
        dev = cat.device(device)
        for op in ("gemm", "context_attention", "generation_attention", "moe", "allreduce"):
            table = pl.read_parquet(catalog_dir() / "kernels" / device / f"{op}.parquet")
            ratios = []
            lines = []
            for engine in sorted(table["engine"].unique()):
                df = table.filter(pl.col("engine") == engine)
                eff = efficiency(cat.efficiency, dev.kind, "trtllm" if engine == "nccl" else engine)
                r = model_times(op, df, dev, eff) / (df["latency"].to_numpy().astype(float) * 1e-3)
                r = r[np.isfinite(r) & (r > 0)]
                ratios.append(r)
                lines.append(f"{'':9} {'':21} {engine:7} {r.size:7d}  {_stats(r)}")
            r = np.concatenate(ratios)
            total += r.size
            print(f"{device:9} {op:21} {'all':7} {r.size:7d}  {_stats(r)}")
            print("\n".join(lines))
    print(f"kernel_ops_compared={total}")


if __name__ == "__main__":
    main()
