"""Measured kernel tables (catalogs/kernels/) and their interpolation (llmcap.perf.kernels)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from llmcap.catalog.loader import catalog_dir
from llmcap.perf import kernels as K

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO.parent / "shared" / "reference" / "kernels"
DEVICES = ("h100-sxm", "h200-sxm", "b200-sxm")
SYSTEM = {"h100-sxm": "h100_sxm", "h200-sxm": "h200_sxm", "b200-sxm": "b200_sxm"}


def _table(device: str, op: str) -> pl.DataFrame:
    return pl.read_parquet(catalog_dir() / "kernels" / device / f"{op}.parquet")


def _call(op: str, device: str, row: dict, monotone: bool) -> float:
    """The interpolated latency (s) at one shipped row."""
    e = row["engine"]
    if op == "gemm":
        out = K.gemm_latency(device, row["m"], row["n"], row["k"], row["dtype"], engine=e, monotone=monotone)
    elif op == "context_attention":
        out = K.context_attention_latency(
            device, row["batch"], row["isl"], row["num_heads"], row["num_kv_heads"], row["head_dim"],
            row["kv_dtype"], window=row["window"], attn_dtype=row["attn_dtype"], engine=e, monotone=monotone,
        )  # fmt: skip
    elif op == "generation_attention":
        out = K.generation_attention_latency(
            device, row["batch"], row["ctx"], row["num_heads"], row["num_kv_heads"], row["head_dim"],
            row["kv_dtype"], window=row["window"], engine=e, monotone=monotone,
        )  # fmt: skip
    elif op == "moe":
        out = K.moe_latency(
            device, row["num_tokens"], row["hidden"], row["inter"], row["topk"], row["num_experts"], row["tp"],
            row["ep"], row["dtype"], distribution=row["distribution"], engine=e, monotone=monotone,
        )  # fmt: skip
    else:
        # one table at a time: allreduce_latency takes the faster of custom and NCCL, so read the family
        from llmcap.perf.kernel_tables import family, lookup

        work = K._work(str(catalog_dir()), device, "allreduce")
        fam = family(device, K.ALLREDUCE, e, {"dtype": row["dtype"]}, work)
        q = {"num_gpus": np.array([row["num_gpus"]]), "message_size": np.array([row["message_size"]])}
        out = lookup(fam, q, {"dtype": row["dtype"]}, work, monotone)
    return float(np.asarray(out).ravel()[0])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", list(K.OPS))
def test_exact_on_measured_points(device, op):
    df = _table(device, op).sample(25, seed=1)
    ratios = []
    for row in df.iter_rows(named=True):
        want = row["latency"] * 1e-3
        assert _call(op, device, row, monotone=False) == pytest.approx(want, rel=1e-9)
        got = _call(op, device, row, monotone=True)
        assert got <= want * (1 + 1e-9)  # the monotone envelope only lowers noisy points
        ratios.append(got / want)
    assert np.median(ratios) > 0.97


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="../shared/reference not present")
@pytest.mark.parametrize("device", DEVICES)
def test_shipped_rows_match_reference(device):
    """Shipped gemm and decode-attention rows are the raw measurements (fastest kernel per shape)."""
    sys = SYSTEM[device]
    for op, raw_file, cols in (
        ("gemm", "gemm/trtllm/1.3.0rc20/gemm_perf.parquet", {"m": "m", "n": "n", "k": "k"}),
        ("generation_attention", "attention/trtllm/1.3.0rc20/generation_attention_perf.parquet",
         {"batch": "batch_size", "num_heads": "num_heads", "num_kv_heads": "num_key_value_heads",
          "head_dim": "head_dim", "window": "window_size"}),
    ):  # fmt: skip
        raw = pl.read_parquet(REFERENCE / sys / raw_file)
        shipped = _table(device, op).filter(pl.col("engine") == "trtllm").sample(10, seed=2)
        for row in shipped.iter_rows(named=True):
            cond = pl.lit(True)
            for mine, theirs in cols.items():
                cond = cond & (pl.col(theirs) == row[mine])
            if op == "generation_attention":
                cond = cond & ((pl.col("isl") + pl.col("step")) == row["ctx"])
                dt = "bfloat16" if row["kv_dtype"] == "bf16" else row["kv_dtype"]
                cond = cond & (pl.col("kv_cache_dtype") == dt)
            else:
                dt = "bfloat16" if row["dtype"] == "bf16" else row["dtype"]
                cond = cond & (pl.col("gemm_dtype") == dt)
            lat = raw.filter(cond)["latency"].min()
            assert row["latency"] == pytest.approx(lat, rel=1e-6)


def _nondecreasing(t: np.ndarray) -> bool:
    """Never falls (up to floating-point rounding in flat stretches)."""
    return bool(np.all(t[1:] >= t[:-1] * (1 - 1e-12)))


@pytest.mark.parametrize("device", DEVICES)
def test_gemm_monotone_in_m(device):
    m = np.unique(np.geomspace(1, 200_000, 300).round())
    for dtype in ("bf16", "fp8"):
        for n, k in ((4096, 4096), (1536, 7168), (3000, 5000)):
            t = K.gemm_latency(device, m, n, k, dtype)
            assert np.all(np.isfinite(t))
            assert _nondecreasing(t)


@pytest.mark.parametrize("device", DEVICES)
def test_decode_attention_monotone_in_context(device):
    ctx = np.unique(np.geomspace(2, 500_000, 200).round())
    for batch in (1, 24, 256):
        for heads, kv in ((32, 8), (64, 8), (40, 40)):
            t = K.generation_attention_latency(device, batch, ctx, heads, kv, 128, "bf16")
            assert np.all(np.isfinite(t)) and _nondecreasing(t)
    tokens = np.unique(np.geomspace(1, 100_000, 100).round())
    t = K.moe_latency(device, tokens, 7168, 2048, 8, 256, 1, 8, "fp8_block")
    assert np.all(np.isfinite(t)) and _nondecreasing(t)


def test_between_neighbours():
    d = "h100-sxm"
    lo, hi = K.gemm_latency(d, [1024, 2048], 4096, 4096)
    mid = K.gemm_latency(d, 1500, 4096, 4096)
    assert lo <= mid <= hi
    lo, hi = K.gemm_latency(d, 4096, 4096, [4096, 5120])
    assert min(lo, hi) <= K.gemm_latency(d, 4096, 4096, 4500) <= max(lo, hi)
    a, b = K.generation_attention_latency(d, 32, [4096, 8192], 32, 8, 128)
    assert a <= K.generation_attention_latency(d, 32, 6000, 32, 8, 128) <= b
    a, b = K.context_attention_latency(d, 4, [2048, 3072], 32, 8, 128)
    assert a <= K.context_attention_latency(d, 4, 2500, 32, 8, 128) <= b
    a, b = K.moe_latency(d, [1024, 1536], 7168, 2048, 8, 256, 1, 8, "fp8_block")
    assert a <= K.moe_latency(d, 1200, 7168, 2048, 8, 256, 1, 8, "fp8_block") <= b


@pytest.mark.parametrize("device", DEVICES)
def test_out_of_grid_finite_and_ordered(device):
    edge = K.gemm_latency(device, 32768, 8192, 8192)
    far = K.gemm_latency(device, [65536, 131072], 8192, 8192)
    assert np.all(np.isfinite(far)) and edge <= far[0] <= far[1]
    assert far[1] == pytest.approx(2 * far[0], rel=0.05)  # compute-bound: linear in m
    big = K.gemm_latency(device, 64, [65536, 131072], 8192)
    assert np.all(np.isfinite(big)) and big[0] <= big[1]
    dec = K.generation_attention_latency(device, 8, [131072, 262144, 1_000_000], 32, 8, 128)
    assert np.all(np.isfinite(dec)) and np.all(np.diff(dec) > 0)
    ctx = K.context_attention_latency(device, [1, 256, 1024], 16384, 32, 8, 128)
    assert np.all(np.isfinite(ctx)) and np.all(np.diff(ctx) > 0)
    ctx = K.context_attention_latency(device, 1, [16384, 65536], 32, 8, 128)
    assert ctx[1] > 8 * ctx[0]  # quadratic in the prompt
    # unmeasured shapes: nearest measured group scaled by work, still ordered
    heads = K.generation_attention_latency(device, 64, 4096, [28, 56, 112], [4, 8, 16], 128)
    assert np.all(np.isfinite(heads)) and np.all(np.diff(heads) > 0)
    moe = K.moe_latency(device, 512, [3000, 6000, 12000], 1536, 8, 128, 1, 1, "bf16")
    assert np.all(np.isfinite(moe)) and np.all(np.diff(moe) > 0)
    ar = K.allreduce_latency(device, [2, 4, 8], 2**31)
    assert np.all(np.isfinite(ar))
    assert np.all(np.diff(K.allreduce_latency(device, 8, [1, 2**20, 2**31])) > 0)


def test_missing_tables_give_nan():
    assert np.isnan(K.gemm_latency("no-such-device", 64, 4096, 4096))
    assert np.isnan(K.gemm_latency("mi300x", 64, 4096, 4096))
    assert np.isnan(K.gemm_latency("h100-sxm", 64, 4096, 4096, "nvfp4"))  # no FP4 on Hopper
    assert np.isnan(K.gemm_latency("h100-sxm", 64, 4096, 4096, engine="llama.cpp"))
    assert np.isnan(K.moe_latency("h100-sxm", 64, 4096, 1024, 8, 64, dtype="no-such-dtype"))
    assert np.isnan(K.allreduce_latency("h100-sxm", 16, 2**20))
    assert K.allreduce_latency("h100-sxm", 1, 2**20) == 0.0
    assert np.isnan(K.allreduce_latency("mi300x", 1, 2**20))
    assert np.isnan(K.gemm_latency("h100-sxm", 0, 4096, 4096))
    assert K.available("b200-sxm") and not K.available("mi300x")
    assert K.kernel_devices() == sorted(DEVICES)


def test_vectorized_shapes():
    m = np.arange(1, 13).reshape(3, 4) * 100
    t = K.gemm_latency("h200-sxm", m, 4096, [[4096], [8192], [2048]])
    assert t.shape == (3, 4) and np.all(np.isfinite(t))
    one = np.array([K.gemm_latency("h200-sxm", x, 4096, 8192) for x in m[1]])
    assert np.allclose(t[1], one, rtol=1e-12)


def test_achieved_efficiency():
    d = "h100-sxm"
    big = K.achieved_efficiency("gemm", d, m=8192, n=8192, k=8192)
    small = K.achieved_efficiency("gemm", d, m=1, n=8192, k=8192)
    assert 0.4 < big < 1.05 and 0.2 < small < 1.05
    dec = K.achieved_efficiency("generation_attention", d, batch=64, ctx=8192, num_heads=32, num_kv_heads=8,
                                head_dim=128)  # fmt: skip
    assert 0.2 < dec < 1.05
    assert np.isnan(K.achieved_efficiency("gemm", "mi300x", m=64, n=64, k=64))
    r = K.roofline_s("gemm", d, m=8192, n=8192, k=8192)
    assert r == pytest.approx(2 * 8192**3 / 989e12)


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="../shared/reference not present")
def test_tables_reproduce_from_script(tmp_path):
    spec = importlib.util.spec_from_file_location("build_kernel_tables", REPO / "scripts" / "build_kernel_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    index = mod.build(REFERENCE, tmp_path)
    shipped = REPO / "catalogs" / "kernels"
    assert (tmp_path / "index.yaml").read_text() == (shipped / "index.yaml").read_text()
    for entry in index:
        new, old = pl.read_parquet(tmp_path / entry["file"]), pl.read_parquet(shipped / entry["file"])
        assert new.height == old.height == entry["rows"]
        assert new["latency"].cast(pl.Float64).sum() == old["latency"].cast(pl.Float64).sum()
        assert new.equals(old)
    assert (shipped / "LICENSE-aiconfigurator").read_bytes() == (REFERENCE / "LICENSE-aiconfigurator").read_bytes()
