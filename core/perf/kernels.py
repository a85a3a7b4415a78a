"""Measured kernel latencies (catalogs/kernels/, NVIDIA aiconfigurator data) interpolated for any shape.

Every function takes a catalog device id, numpy-broadcastable shapes and scalar dtypes, and returns seconds per
kernel call as a float array; NaN where the device, engine or dtype has no table (callers then fall back to the
efficiency model) or where a shape is not positive. How values between and beyond the measured points come
about: see llmcap.perf.kernel_tables (multilinear in log-log space, exact on measured points, lower monotone
envelope along the token axes unless monotone=False, work-ratio extrapolation from the nearest edge or measured shape).

`roofline_s` gives the same operators' roofline time at the device's catalog peak and bandwidth (the work measure
used for extrapolation) and `achieved_efficiency` the measured fraction of it, to fit efficiency curves from.
Dtypes: GEMM bf16, fp8 (per-tensor), fp8_block, nvfp4 (B200); MoE also w4a16_mxfp4, int4_wo, w4a8_mxfp4_mxfp8;
KV cache bf16 or fp8; all-reduce bf16 (fp16 NCCL rows count as bf16: same bytes) or int8 (NCCL only).
"""

from __future__ import annotations

import functools

import numpy as np

from llmcap.catalog.loader import catalog_dir, load_catalog
from llmcap.perf.kernel_tables import Op, family, lookup, read_table

ENGINES = ("trtllm", "vllm", "sglang")
MAX_ALLREDUCE_GPUS = 8  # measured inside one NVLink domain (2, 4, 8 GPUs); beyond, NaN

GEMM = Op("gemm.parquet", ("dtype",), (), ("m", "n", "k"), ("m",))
CONTEXT = Op(
    "context_attention.parquet",
    ("attn_dtype", "kv_dtype"),
    ("head_dim", "window", "num_heads", "num_kv_heads"),
    ("batch", "isl"),
    ("batch", "isl"),
    exact_soft=("window",),
)
GENERATION = Op(
    "generation_attention.parquet",
    ("kv_dtype",),
    ("head_dim", "window", "num_heads", "num_kv_heads"),
    ("batch", "ctx"),
    ("batch", "ctx"),
    exact_soft=("window",),
)
MOE = Op(
    "moe.parquet",
    ("dtype", "distribution"),
    ("hidden", "inter", "topk", "num_experts", "tp", "ep"),
    ("num_tokens",),
    ("num_tokens",),
)
ALLREDUCE = Op("allreduce.parquet", ("dtype",), (), ("num_gpus", "message_size"), ("message_size",))
OPS = {
    "gemm": GEMM,
    "context_attention": CONTEXT,
    "generation_attention": GENERATION,
    "moe": MOE,
    "allreduce": ALLREDUCE,
}

DTYPE_ALIASES = {"bfloat16": "bf16", "float16": "bf16", "fp16": "bf16", "half": "bf16", "fp4": "nvfp4"}
# bytes per element of weights / activations, and the catalog math type the product runs in
WEIGHT_BYTES = {
    "bf16": 2.0, "fp8": 1.0, "fp8_block": 1.0, "nvfp4": 0.5625, "w4a16_mxfp4": 0.53125,
    "int4_wo": 0.53125, "w4a8_mxfp4_mxfp8": 0.53125, "int8": 1.0,
}  # fmt: skip
ACT_BYTES = {"bf16": 2.0, "fp8": 1.0, "fp8_block": 1.0, "nvfp4": 0.5625}
MATH = {"bf16": "bf16", "fp8": "fp8", "fp8_block": "fp8", "nvfp4": "fp4", "w4a8_mxfp4_mxfp8": "fp8"}


def _dt(dtype: str) -> str:
    return DTYPE_ALIASES.get(dtype, dtype)


@functools.lru_cache(maxsize=32)
def _device(root: str, device: str) -> tuple[dict[str, float], float, float] | None:
    """(peak FLOP/s per math type, memory bytes/s, scale-up bytes/s per direction) from the catalog."""
    try:
        d = load_catalog(root).device(device)
    except Exception:  # noqa: BLE001 - an unknown device just has no roofline
        return None
    link = d.scaleup.gbps_per_direction if d.scaleup and d.scaleup.gbps_per_direction else 32.0
    return {k: v * 1e12 for k, v in d.peak_tflops.items()}, d.mem_bw_gbps * 1e9, link * 1e9


def _peak(peaks: dict[str, float], math: str) -> float:
    for m in (math, "fp8", "bf16"):
        if m in peaks:
            return peaks[m]
    return max(peaks.values())


def _causal_pairs(s: np.ndarray, window: np.ndarray) -> np.ndarray:
    w = np.minimum(np.where(window > 0, window, np.inf), s)
    return w * (w + 1) / 2 + (s - w) * w


def _roofline(kind: str, peaks: dict[str, float], bw: float, link: float):
    """Roofline seconds of one kernel call of `kind`, as a function of named shapes (the work measure)."""

    def gemm(dtype, m, n, k, **_):
        flops = 2.0 * m * n * k
        a = ACT_BYTES.get(dtype, 2.0)
        byt = m * k * a + n * k * WEIGHT_BYTES.get(dtype, 2.0) + m * n * 2.0
        return np.maximum(flops / _peak(peaks, MATH.get(dtype, "bf16")), byt / bw)

    def context(attn_dtype, kv_dtype, head_dim, window, num_heads, num_kv_heads, batch, isl, **_):
        flops = 4.0 * num_heads * head_dim * batch * _causal_pairs(np.asarray(isl, float), np.asarray(window))
        byt = batch * isl * head_dim * (4.0 * num_heads + 2.0 * num_kv_heads * WEIGHT_BYTES.get(kv_dtype, 2.0))
        return np.maximum(flops / _peak(peaks, MATH.get(attn_dtype, "bf16")), byt / bw)

    def generation(kv_dtype, head_dim, window, num_heads, num_kv_heads, batch, ctx, **_):
        length = np.minimum(ctx, np.where(np.asarray(window) > 0, window, np.inf))
        flops = 4.0 * num_heads * head_dim * batch * length
        byt = batch * head_dim * (length * 2.0 * num_kv_heads * WEIGHT_BYTES.get(kv_dtype, 2.0) + 4.0 * num_heads)
        return np.maximum(flops / _peak(peaks, "bf16"), byt / bw)

    def moe(dtype, hidden, inter, topk, num_experts, tp, ep, num_tokens, **_):
        per_expert = 3.0 * hidden * inter / tp  # gate, up and down projections, this GPU's slice
        flops = 2.0 * per_expert * num_tokens * topk / ep
        touched = num_experts / ep * -np.expm1(num_tokens * np.log1p(-np.minimum(topk / num_experts, 1 - 1e-12)))
        byt = touched * per_expert * WEIGHT_BYTES.get(dtype, 2.0) + num_tokens * hidden * 4.0
        return np.maximum(flops / _peak(peaks, MATH.get(dtype, "bf16")), byt / bw)

    def allreduce(dtype, num_gpus, message_size, **_):
        return 2.0 * (num_gpus - 1) / num_gpus * message_size * WEIGHT_BYTES.get(dtype, 2.0) / link

    return {"gemm": gemm, "context_attention": context, "generation_attention": generation, "moe": moe,
            "allreduce": allreduce}[kind]  # fmt: skip


@functools.lru_cache(maxsize=64)
def _work(root: str, device: str, kind: str):
    spec = _device(root, device)
    return None if spec is None else _roofline(kind, *spec)


def _measured(device: str, kind: str, engine: str, hard: dict[str, str], q: dict, monotone: bool) -> np.ndarray:
    shape = np.broadcast(*[np.asarray(v) for v in q.values()]).shape
    work = _work(str(catalog_dir()), device, kind)
    fam = None if work is None else family(device, OPS[kind], engine, hard, work)
    if fam is None:
        return np.full(shape, np.nan)
    return lookup(fam, q, hard, work, monotone).reshape(shape)


def gemm_latency(device: str, m, n, k, dtype: str = "bf16", *, engine: str = "trtllm", monotone: bool = True):
    """Seconds of one (m x k) @ (k x n) product in `dtype` (bf16, fp8, fp8_block, nvfp4)."""
    return _measured(device, "gemm", engine, {"dtype": _dt(dtype)}, dict(m=m, n=n, k=k), monotone)


def context_attention_latency(
    device: str, batch, isl, num_heads, num_kv_heads, head_dim, kv_dtype: str = "bf16", *,
    window=0, attn_dtype: str = "bf16", engine: str = "trtllm", monotone: bool = True,
):  # fmt: skip
    """Seconds of causal prefill attention of `batch` prompts of `isl` tokens (heads per GPU)."""
    hard = {"attn_dtype": _dt(attn_dtype), "kv_dtype": _dt(kv_dtype)}
    q = dict(head_dim=head_dim, window=window, num_heads=num_heads, num_kv_heads=num_kv_heads, batch=batch, isl=isl)
    return _measured(device, "context_attention", engine, hard, q, monotone)


def generation_attention_latency(
    device: str, batch, ctx, num_heads, num_kv_heads, head_dim, kv_dtype: str = "bf16", *,
    window=0, engine: str = "trtllm", monotone: bool = True,
):  # fmt: skip
    """Seconds of one decode attention step of `batch` sequences at KV length `ctx` (heads per GPU)."""
    q = dict(head_dim=head_dim, window=window, num_heads=num_heads, num_kv_heads=num_kv_heads, batch=batch, ctx=ctx)
    return _measured(device, "generation_attention", engine, {"kv_dtype": _dt(kv_dtype)}, q, monotone)


def moe_latency(
    device: str, num_tokens, hidden, inter, topk, num_experts, tp=1, ep=1, dtype: str = "bf16", *,
    distribution: str = "balanced", engine: str = "trtllm", monotone: bool = True,
):  # fmt: skip
    """Seconds of one gated MoE layer's experts on one GPU of a (tp, ep) MoE layout.

    distribution: token routing, "balanced" or "power_law_1.01" (the source's skewed routing)."""
    hard = {"dtype": _dt(dtype), "distribution": distribution}
    q = dict(hidden=hidden, inter=inter, topk=topk, num_experts=num_experts, tp=tp, ep=ep, num_tokens=num_tokens)
    return _measured(device, "moe", engine, hard, q, monotone)


def allreduce_latency(
    device: str, num_gpus, message_size, dtype: str = "bf16", *, engine: str = "trtllm", monotone: bool = True
):
    """Seconds of one all-reduce of `message_size` elements over `num_gpus` GPUs of one NVLink domain.

    The faster of the engine's custom all-reduce and NCCL (engines switch to NCCL for large messages);
    0 for one GPU, NaN beyond MAX_ALLREDUCE_GPUS (not measured: crosses the scale-up domain)."""
    g = np.asarray(num_gpus, dtype=float)
    dt = _dt(dtype)
    q = dict(num_gpus=np.maximum(g, 2.0), message_size=message_size)
    nccl = _measured(device, "allreduce", "nccl", {"dtype": "fp16" if dt == "bf16" else dt}, q, monotone)
    custom = _measured(device, "allreduce", engine, {"dtype": dt}, q, monotone)
    best = np.fmin(nccl, custom)
    best = np.where(g <= 1, 0.0 if available(device) else np.nan, best)
    return np.where(g > MAX_ALLREDUCE_GPUS, np.nan, best)


LATENCY = {
    "gemm": gemm_latency,
    "context_attention": context_attention_latency,
    "generation_attention": generation_attention_latency,
    "moe": moe_latency,
    "allreduce": allreduce_latency,
}


def available(device: str) -> bool:
    """Whether the catalog has kernel tables for `device`."""
    return read_table(device, GEMM) is not None


def kernel_devices() -> list[str]:
    """Catalog device ids with kernel tables."""
    root = catalog_dir() / "kernels"
    return sorted(p.name for p in root.iterdir() if (p / GEMM.file).is_file()) if root.is_dir() else []


def roofline_s(kind: str, device: str, dtype: str = "bf16", **shape) -> np.ndarray:
    """Roofline seconds (catalog peak and bandwidth, no efficiency) of the operator `kind` with `shape`
    (the keyword names of the matching *_latency function); NaN for a device not in the catalog.
    `dtype` is the weight dtype (gemm, moe, allreduce) or the KV dtype (attention)."""
    work = _work(str(catalog_dir()), device, kind)
    if work is None:
        nums = [np.asarray(v) for v in shape.values() if not isinstance(v, str)]
        return np.full(np.broadcast(*nums).shape, np.nan)
    shape = {k: v if isinstance(v, str) else np.asarray(v, dtype=float) for k, v in shape.items()}
    defaults = {"window": 0.0, "tp": 1.0, "ep": 1.0, "attn_dtype": "bf16"}
    args = {**defaults, **shape, "dtype": _dt(dtype), "kv_dtype": _dt(dtype)}
    return np.asarray(work(**args), dtype=float)


def achieved_efficiency(kind: str, device: str, dtype: str = "bf16", *, engine: str = "trtllm", **shape) -> np.ndarray:
    """Measured fraction of the roofline: roofline_s / measured latency (NaN where unmeasured).

    `shape` as for the matching *_latency function (e.g. m=, n=, k= for "gemm")."""
    dkey = "kv_dtype" if "attention" in kind else "dtype"
    measured = LATENCY[kind](device, **shape, **{dkey: dtype}, engine=engine)
    return roofline_s(kind, device, dtype, **shape) / measured
