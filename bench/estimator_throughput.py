"""Benchmark: scenario points per second through `llmcap.estimate.sweep.evaluate` on one core.

Resolves a few hundred (model, device, format, engine) combinations once, tiles them to N points
with random layouts, lengths and concurrencies, and times the vectorized evaluation: the best of
BENCH_REPEATS runs (3; as timeit does, so that other processes on a shared machine do not set the figure;
every run is printed, the first one included).
Also times `llmcap predict` on 3,000 CSV rows. Last line: points_per_s=N.
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from llmcap.catalog.loader import load_catalog  # noqa: E402
from llmcap.cli.main import main as cli_main  # noqa: E402
from llmcap.estimate.sweep import build_input, evaluate, expand  # noqa: E402
from llmcap.perf.operators import Layout  # noqa: E402
from llmcap.scenario import Scenario  # noqa: E402

N = int(os.environ.get("BENCH_POINTS", "1000000"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))


def main() -> None:
    cat = load_catalog()
    rng = np.random.default_rng(0)
    models = sorted(cat.models)[:12]
    devices = [d for d in sorted(cat.hardware) if cat.hardware[d].kind == "datacenter_gpu"][:10]
    base = [
        Scenario(model=m, hardware=d, weight_format=f, engine="vllm")
        for m in models
        for d in devices
        for f in ("bf16", "fp8", "int4")
    ]
    inp, errors = build_input(base, cat)
    assert not any(errors)
    idx = rng.integers(0, len(base), N)
    tp = rng.choice([1.0, 2.0, 4.0, 8.0], N)
    big = expand(
        inp,
        idx,
        layout=Layout(tp=tp, pp=np.ones(N), ep=np.ones(N), dp=np.ones(N)),
        input_len=rng.integers(64, 16_384, N).astype(float),
        output_len=rng.integers(16, 4_096, N).astype(float),
        concurrency=rng.choice([1.0, 4.0, 16.0, 64.0, 256.0, np.inf], N),
        replicas=np.ones(N),
    )
    evaluate(expand(inp, idx[:1000]))  # warm-up
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        res = evaluate(big)
        times.append(time.perf_counter() - t0)
    assert np.isfinite(res.tpot_s).all()
    dt = min(times)
    runs = ", ".join(f"{t:.3f}" for t in times)
    print(f"sweep: {N} points in {dt:.3f} s, best of {REPEATS} runs ({runs} s; {res.fits.mean():.0%} fit)")

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.csv", Path(tmp) / "out.csv"
        with src.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(
                ["id", "model", "hardware", "engine", "tp", "weight_format", "input_len", "output_len", "concurrency"]
            )
            for i in range(3000):
                w.writerow(
                    [
                        i,
                        models[i % len(models)],
                        devices[i % len(devices)],
                        "vllm",
                        2 ** (i % 4),
                        "fp8",
                        128 + i,
                        64 + i % 500,
                        "max" if i % 7 == 0 else 1 + i % 64,
                    ]
                )
        t1 = time.perf_counter()
        cli_main(["predict", "--in", str(src), "--out", str(dst)])
        print(f"predict: 3000 rows in {time.perf_counter() - t1:.3f} s")
    print(f"points_per_s={N / dt:.0f}")


if __name__ == "__main__":
    main()
