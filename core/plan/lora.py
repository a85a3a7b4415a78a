"""LoRA adapters in the planner (llmcap.plan.planner): every row's adapter memory taken from its KV cache and the
per-step read cost of batched adapter kernels, by llmcap.load.lora's formulas, vectorized over the space.

Per row: adapter GB per device = K x 2 x params / 1e9 / (tp pp); the KV capacity in tokens falls by K x that over
the KV bytes per token, so the in-flight limit falls in proportion (a row whose adapters take the whole KV cache
does not fit); every step takes E[distinct adapters at the row's max_seqs] x adapter bytes / memory bandwidth more.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from llmcap.estimate.sweep import evaluate, expand
from llmcap.load.lora import BYTES_PER_PARAM, GB, adapter_params, distinct_adapters
from llmcap.plan.request import Candidate, PlanRequest
from llmcap.plan.space import Space


def with_lora(space: Space, req: PlanRequest) -> tuple[Space, np.ndarray]:
    """The space with the adapters' memory and step cost, and each row's adapter GB per device."""
    spec = req.lora
    rows = len(space)
    params = adapter_params(space.families[0].resolved, spec)  # the same model in every family
    gb = spec.adapters * params * BYTES_PER_PARAM / GB / space.devices_per_replica
    inp = space.inp
    idx = np.arange(rows)
    one = evaluate(expand(inp, idx, concurrency=np.ones(rows) * inp.replicas))
    per_token = one.kv_bytes_per_seq / np.maximum(inp.input_len + inp.output_len, 1.0)
    kv_tokens = one.kv_room_bytes / np.maximum(per_token, 1e-30)
    left = np.where(kv_tokens > 0, 1.0 - gb * GB / np.maximum(per_token, 1e-30) / np.maximum(kv_tokens, 1e-30), 0.0)
    n_max = np.maximum(evaluate(expand(inp, idx, concurrency=np.full(rows, np.inf))).running, 1.0)
    cap = np.maximum(np.floor(n_max * np.clip(left, 0.0, 1.0)), 1.0)
    eng = dataclasses.replace(inp.engine, max_seqs=np.minimum(inp.engine.max_seqs, cap))
    per_adapter = gb / spec.adapters * GB
    extra = np.array([distinct_adapters(spec.adapters, b) for b in eng.max_seqs]) * per_adapter / inp.system.dev.mem_bw
    eff = inp.system.eff
    system = dataclasses.replace(inp.system, eff=dataclasses.replace(eff, step_overhead_s=eff.step_overhead_s + extra))
    new = dataclasses.replace(inp, engine=eng, system=system, layout_ok=inp.layout_ok & (left > 0))
    return dataclasses.replace(space, inp=new), gb


def annotate_lora(candidates: list[Candidate], space: Space, req: PlanRequest) -> list[Candidate]:
    """Each candidate with its adapters' GB per device (K x 2 x params / 1e9 / (tp pp))."""
    total = req.lora.adapters * adapter_params(space.families[0].resolved, req.lora) * BYTES_PER_PARAM / GB
    return [c.model_copy(update={"lora_memory_gb_per_device": total / (c.tp * c.pp)}) for c in candidates]
