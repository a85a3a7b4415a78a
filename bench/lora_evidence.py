"""LoRA per-step cost against published measurements (issue 15): for each entry of
catalogs/measured/lora_overhead.yaml, the measured slowdown with LoRA on, the largest slowdown the weight-read model
of llmcap.load.lora can give on any device, and how many times the measurement exceeds it. Not a speed target: the
figures say how far the roofline is from what engines pay (docs/method.md "LoRA adapters")."""

from __future__ import annotations

from llmcap.catalog.loader import load_catalog
from llmcap.load.lora_evidence import evidence_table

rows = evidence_table(load_catalog())
for row in rows:
    print("# " + "  ".join(f"{k}={v}" for k, v in row.items()))
ratios = [float(r["underestimate_x"]) for r in rows]
print(f"lora_observations={len(rows)}")
print(f"lora_roofline_underestimate_min_x={min(ratios)}")
print(f"lora_roofline_underestimate_max_x={max(ratios)}")
