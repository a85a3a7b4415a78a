"""LoRA adapters on a base model (Hu et al. 2021, arXiv 2106.09685): their memory, what it takes from the KV cache,
and the per-step cost of batched adapter kernels (Punica, Chen et al. 2023, arXiv 2310.18547, SGMV; S-LoRA, Sheng
et al. 2023, arXiv 2311.03285, which pages adapter weights and KV in one memory pool).

Memory. A rank-r adapter on a linear layer d_in -> d_out adds A (r x d_in) and B (d_out x r): r (d_in + d_out)
parameters. Targets `attn`: the q, k, v and o projections of every softmax-attention layer,
  r [(h + H d) + 2 (h + H_kv d) + (H d_v + h)]   (v: H_kv d_v, taken equal to d here as the configs give it)
and `all` adds the dense MLP's gate, up and down projections, 3 r (h + I). Adapters are held in the base model's
16-bit dtype (2 bytes a parameter) and split like the layers they attach to (tensor and pipeline parallel): per
device, K resident adapters take K x bytes / (tp pp). That memory comes out of the KV cache (S-LoRA's unified pool):
the KV capacity in tokens falls by it over the KV bytes per token.

Per-step cost (a roofline formula and a lower bound: estimated). Batched kernels (SGMV, MBGMV) read each distinct
adapter of the batch once per step; with K adapters drawn uniformly by b requests, E[distinct] = K (1 - (1 - 1/K)^b).
Their weights' read time, E[distinct] x bytes per device / memory bandwidth, is added to each step: the simulator at
the step's own b (decodes plus one for prompt work), the analytic model at the engine's full batch b = max_seqs
(conservative at low load); the adapters' FLOPs, 2 r (d_in + d_out) per token and target, are left out (r << h).
Published with/without-LoRA measurements (catalogs/measured/lora_overhead.yaml, llmcap.load.lora_evidence) all lie
above what this cost can predict, by 2.8x to 168x: engines pay mostly for kernel launches and code paths, so the cost
is a lower bound and results say so. A candidate with a fixed cost per adapted projection
(llmcap.calibration.lora_fit) was fitted to the step-level measurements and is not used: too few of them were taken
with CUDA graphs to judge it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from llmcap.catalog.schema import LoraSpec
from llmcap.estimate.resolve import Resolved
from llmcap.load.rate_types import LoadError
from llmcap.model.architecture import Architecture

BYTES_PER_PARAM = 2  # 16-bit adapter weights
GB = 1e9


def adapter_params(r: Resolved, spec: LoraSpec) -> int:
    """Parameters of one adapter on the model (LoadError where the architecture's shapes are not modelled)."""
    return arch_adapter_params(r.arch, spec.rank, spec.targets)


def arch_adapter_params(a: Architecture, rank: int, targets: str) -> int:
    """Parameters of one rank-`rank` adapter on `targets` ("attn" or "all") of architecture `a`."""
    if a.mla is not None:
        raise LoadError("--lora-adapters: LoRA on MLA attention (DeepSeek-style latent projections) is not modelled")
    if targets == "all" and a.n_moe_layers > 0:
        raise LoadError("--lora-targets all: LoRA on MoE experts is not modelled; use --lora-targets attn")
    h, d, dv = a.hidden_size, a.head_dim, a.v_head_dim
    q, kv = a.num_heads * d, a.num_kv_heads * d
    attn = (h + q) + 2 * (h + kv) + (a.num_heads * dv + h)
    total = (a.n_full_attn_layers + a.n_sliding_layers) * rank * attn
    if targets == "all":
        total += a.n_dense_mlp_layers * rank * 3 * (h + a.dense_intermediate_size)
    return int(total)


def adapter_gb_per_device(r: Resolved, spec: LoraSpec) -> float:
    """GB of one adapter on one device (split over tp x pp)."""
    scn = r.scenario
    return adapter_params(r, spec) * BYTES_PER_PARAM / GB / (scn.tp * scn.pp)


def distinct_adapters(adapters: int, batch: float) -> float:
    """Expected distinct adapters among `batch` requests each drawing one of `adapters` uniformly."""
    k = float(adapters)
    return k * (1.0 - (1.0 - 1.0 / k) ** max(batch, 0.0))


def adapter_read_s(r: Resolved, spec: LoraSpec) -> float:
    """Seconds to read one adapter's weights on a device at its memory bandwidth."""
    bw = float(np.asarray(r.system.dev.mem_bw, dtype=float).ravel()[0])
    return adapter_gb_per_device(r, spec) * GB / bw


def step_overhead_s(r: Resolved, spec: LoraSpec) -> float:
    """Seconds added to every engine step by the analytic model: the distinct adapters of a full batch."""
    return distinct_adapters(spec.adapters, r.engine.max_seqs) * adapter_read_s(r, spec)


def adapted_projections(a: Architecture, targets: str, per_layer: int | None = None) -> int:
    """Linear projections one adapter adapts in a forward pass: 4 (q, k, v, o) per softmax-attention layer for `attn`,
    plus 3 (gate, up, down) per dense MLP layer for `all`; `per_layer` replaces the 4 where an adapter covers fewer
    attention projections (o_proj only: 1) and then counts no MLP projection."""
    if targets == "all" and a.n_moe_layers > 0 and per_layer is None:
        raise LoadError("--lora-targets all: LoRA on MoE experts is not modelled; use --lora-targets attn")
    n = (a.n_full_attn_layers + a.n_sliding_layers) * (per_layer or 4)
    if targets == "all" and per_layer is None:
        n += 3 * a.n_dense_mlp_layers
    return int(n)


def with_lora(r: Resolved, spec: LoraSpec) -> Resolved:
    """`r` with every step slower by the adapters' read time (step_overhead_s)."""
    eff = r.system.eff
    extra = step_overhead_s(r, spec)
    system = dataclasses.replace(r.system, eff=dataclasses.replace(eff, step_overhead_s=eff.step_overhead_s + extra))
    return dataclasses.replace(r, system=system)


def kv_tokens_left(kv_tokens: float, kv_bytes_per_token: float, r: Resolved, spec: LoraSpec) -> float:
    """KV capacity in tokens after K resident adapters take their memory (LoadError when nothing is left)."""
    taken = spec.adapters * adapter_gb_per_device(r, spec) * GB / kv_bytes_per_token
    left = kv_tokens - taken
    if left <= 0:
        raise LoadError(
            f"--lora-adapters: {spec.adapters} adapters take {spec.adapters * adapter_gb_per_device(r, spec):,.2f} GB "
            "per device, all the KV cache; use fewer or smaller adapters, or more devices"
        )
    return left
