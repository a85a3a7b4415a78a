"""LoRA per-step cost against published measurements (issue 15). Part 1: for each entry of
catalogs/measured/lora_overhead.yaml, the measured slowdown with LoRA on, the largest slowdown the weight-read model
of llmcap.load.lora can give on any device, and how many times the measurement exceeds it. Part 2: the candidate with
a fixed cost per adapted projection (llmcap.calibration.lora_fit), fitted on the step-level entries with a measured
base step time and known targets, and the leave-one-source-out error |ln(R_pred / R_meas)| of the roofline and of the
fit on the LoRA/base step-time ratio R; then whether the fit may replace the roofline (docs/method.md "LoRA
adapters"). Not a speed target: the figures say how far each model is from what engines pay."""

from __future__ import annotations

import numpy as np

from llmcap.calibration.lora_fit import acceptance, fit_k_launch_s, fit_points, leave_one_source_out
from llmcap.catalog.loader import load_catalog
from llmcap.load.lora_evidence import evidence_table, kernel_timings

cat = load_catalog()
rows = evidence_table(cat)
for row in rows:
    print("# " + "  ".join(f"{k}={v}" for k, v in row.items()))
ratios = [float(r["underestimate_x"]) for r in rows]
print(f"lora_observations={len(rows)}")
print(f"lora_roofline_underestimate_min_x={min(ratios)}")
print(f"lora_roofline_underestimate_max_x={max(ratios)}")

for label, cuda_only in (("step", False), ("step_cuda_graphs", True)):
    pts = fit_points(cat, cuda_graphs_only=cuda_only)
    print(f"lora_fit_{label}_points={len(pts)}")
    print(f"lora_fit_{label}_sources={len({p.source for p in pts})}")
    if not pts:
        continue
    print(f"lora_fit_{label}_k_launch_us={fit_k_launch_s(pts) * 1e6:.1f}")
    loso = leave_one_source_out(pts)
    for r in loso:
        print(f"# loso {label}: id={r['id']} measured_ratio={r['measured_ratio']:.4f} "
              f"roofline_ratio={r['roofline_ratio']:.4f} fit_ratio={r['fit_ratio']:.4f} "
              f"k_launch_us={float(r['k_launch_s']) * 1e6:.1f}")  # fmt: skip
    if loso:
        print(f"lora_fit_{label}_loso_roofline_mean_abs_log_error={np.mean([r['roofline_error'] for r in loso]):.4f}")
        print(f"lora_fit_{label}_loso_fit_mean_abs_log_error={np.mean([r['fit_error'] for r in loso]):.4f}")
for kt in kernel_timings():
    print(f"# kernel: id={kt.id} op={kt.op} tokens={kt.tokens} in={kt.in_features} out={kt.out_features} "
          f"time_us={kt.time_us}")  # fmt: skip
pair = {kt.op: kt.time_us for kt in kernel_timings() if kt.id.startswith("xpu-kernels-31-")}
print(f"lora_kernel_shrink_plus_expand_us_xpu_2048_r16={pair['shrink'] + pair['expand']:.1f}")
verdict = acceptance(cat)
print(f"lora_fit_accepted={verdict['accepted']}")
print(f"# lora_fit_verdict: {verdict['reason']}")
