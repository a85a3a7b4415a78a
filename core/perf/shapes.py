"""Numeric views of a model, a device and a format as numpy arrays.

The estimator's formulas take these and broadcast: one scenario is arrays of length one,
a sweep stacks many. Building them is the only place that walks pydantic objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmcap.catalog.schema import Device, Format, KVFormat, MathFallback
from llmcap.model.architecture import Architecture

LINEAR_STATE_BYTES = 4.0  # Mamba / Gated-DeltaNet state is kept in fp32 (configs' mamba_ssm_cache_dtype)


@dataclass(frozen=True)
class ModelShape:
    """Per-layer parameter counts and attention shapes (scalars or arrays)."""

    layers: np.ndarray
    hidden: np.ndarray
    vocab: np.ndarray
    heads: np.ndarray
    kv_heads: np.ndarray
    head_dim: np.ndarray
    v_head_dim: np.ndarray
    n_full: np.ndarray
    n_sliding: np.ndarray
    window: np.ndarray  # 0 where no sliding layers
    kv_elems: np.ndarray  # per token per softmax layer
    is_mla: np.ndarray  # 1.0 / 0.0
    mla_latent: np.ndarray  # kv_lora_rank (0 if not MLA)
    mla_rope: np.ndarray
    n_linear: np.ndarray
    linear_state: np.ndarray  # elements per sequence per linear layer
    p_qkv: np.ndarray  # per softmax-attention layer, all but the output projection
    p_o: np.ndarray  # output projection per softmax-attention layer
    p_linear: np.ndarray  # per linear-attention layer
    n_dense: np.ndarray
    p_dense: np.ndarray  # per dense MLP layer
    n_moe: np.ndarray
    experts: np.ndarray
    top_k: np.ndarray
    p_expert: np.ndarray  # one routed expert
    p_shared: np.ndarray  # shared experts of one MoE layer
    p_router: np.ndarray
    p_embed: np.ndarray
    p_head: np.ndarray  # 0 when tied (the embedding matrix is then read for the head)
    p_other: np.ndarray

    @classmethod
    def from_arch(cls, a: Architecture) -> ModelShape:
        n_attn = a.n_full_attn_layers + a.n_sliding_layers
        p_o = a.num_heads * a.v_head_dim * a.hidden_size if n_attn else 0
        p_qkv = a.params_attention / n_attn - p_o if n_attn else 0.0
        m = a.moe
        vals = dict(
            layers=a.num_layers,
            hidden=a.hidden_size,
            vocab=a.vocab_size,
            heads=a.num_heads,
            kv_heads=a.num_kv_heads,
            head_dim=a.head_dim,
            v_head_dim=a.v_head_dim,
            n_full=a.n_full_attn_layers,
            n_sliding=a.n_sliding_layers,
            window=a.sliding_window or 0,
            kv_elems=a.kv_elems_per_token_per_layer,
            is_mla=1.0 if a.mla else 0.0,
            mla_latent=a.mla.kv_lora_rank if a.mla else 0,
            mla_rope=a.mla.qk_rope_head_dim if a.mla else 0,
            n_linear=a.n_linear_layers,
            linear_state=a.linear_state_elems_per_layer,
            p_qkv=max(p_qkv, 0.0),
            p_o=p_o,
            p_linear=a.params_linear_attention / a.n_linear_layers if a.n_linear_layers else 0.0,
            n_dense=a.n_dense_mlp_layers,
            p_dense=a.params_dense_mlp / a.n_dense_mlp_layers if a.n_dense_mlp_layers else 0.0,
            n_moe=a.n_moe_layers,
            experts=m.num_experts if m else 0,
            top_k=m.top_k if m else 0,
            p_expert=m.params_per_expert if m else 0,
            p_shared=m.params_shared_per_layer if m else 0,
            p_router=m.params_router_per_layer if m else 0,
            p_embed=a.params_embedding,
            p_head=a.params_lm_head,
            p_other=a.params_other,
        )
        return cls(**{k: np.array([float(v)]) for k, v in vals.items()})

    @property
    def head_params(self) -> np.ndarray:
        """Parameters read by the output head (the embedding when tied)."""
        return np.where(self.p_head > 0, self.p_head, self.p_embed)


@dataclass(frozen=True)
class DeviceSpec:
    """Device numbers the formulas use. Peaks are in FLOP/s, bandwidths in bytes/s."""

    memory_bytes: np.ndarray
    mem_bw: np.ndarray
    peak_math: np.ndarray  # at the format's (possibly fallen-back) math precision
    peak_bf16: np.ndarray  # attention and activations run in 16-bit (or the best below)
    link_bw: np.ndarray  # scale-up, per direction per device
    domain: np.ndarray  # devices per scale-up domain
    scaleout_bw: np.ndarray
    tdp_w: np.ndarray


# Defaults where a device entry has no link figure: PCIe Gen4 x16 per direction, and one device per domain.
PCIE4_X16_BPS = 32e9


def effective_math(device: Device, math: str, fallbacks: dict[str, MathFallback]) -> str:
    """The math precision a format's products actually run in on this device (see formats.yaml)."""
    if math in device.peak_tflops:
        return math
    rule = fallbacks.get(math)
    for alt in rule.then if rule else ["bf16", "fp32"]:
        if alt in device.peak_tflops:
            return alt
    return max(device.peak_tflops, key=device.peak_tflops.get)


def driver_memory_gb(device: Device) -> float:
    """Memory an engine sees (GB = 1e9 bytes): the driver's reported total when it belongs to this memory_gb.

    A datasheet's HBM "80 GB" reads as 81,559 MiB (85.5e9 bytes) in nvidia-smi: vendors' GB are close to
    GiB. The reported figure is used only while it lies between memory_gb GB and memory_gb GiB (+2%), so
    a device edited to another size (a custom copy) falls back to its memory_gb.
    """
    if device.reported_memory_mib:
        reported = device.reported_memory_mib * 2**20 / 1e9
        if device.memory_gb * 0.98 <= reported <= device.memory_gb * 2**30 / 1e9 * 1.02:
            return reported
    return device.memory_gb


def device_spec(
    device: Device, fmt: Format, fallbacks: dict[str, MathFallback], math: str | None = None
) -> DeviceSpec:
    """DeviceSpec for running `fmt` on `device` with `math` (default: the format's own math), peak after fallback.

    `math` is the path the engine's kernels take for these weights (the support matrix), e.g. bf16 for a
    weight-only format or for llama.cpp's int8 MMQ kernels on mxfp4."""
    math = effective_math(device, math or fmt.math, fallbacks)
    half = effective_math(device, "bf16", fallbacks)
    mem_gb = device.usable_memory_gb or driver_memory_gb(device)
    link = device.scaleup.gbps_per_direction * 1e9 if device.scaleup and device.scaleup.gbps_per_direction else None
    domain = device.scaleup.domain_devices if device.scaleup and device.scaleup.domain_devices else 1
    scaleout = device.scaleout_gbps * 1e9 if device.scaleout_gbps else None
    vals = dict(
        memory_bytes=mem_gb * 1e9,
        mem_bw=device.mem_bw_gbps * 1e9,
        peak_math=device.peak_tflops[math] * 1e12,
        peak_bf16=device.peak_tflops[half] * 1e12,
        link_bw=link or PCIE4_X16_BPS,
        domain=domain,
        scaleout_bw=scaleout or link or PCIE4_X16_BPS,
        tdp_w=device.tdp_w or 0.0,
    )
    return DeviceSpec(**{k: np.array([float(v)]) for k, v in vals.items()})


@dataclass(frozen=True)
class FormatSpec:
    """Bytes per element of weights (by tensor class), activations and KV cache."""

    w_bytes: np.ndarray  # linear layers
    expert_bytes: np.ndarray  # routed and shared experts
    embed_bytes: np.ndarray  # embedding and output head
    act_bytes: np.ndarray
    kv_bytes: np.ndarray


def format_spec(fmt: Format, kv: KVFormat) -> FormatSpec:
    """Bytes per element for a weight format and a KV format (scale overhead included in weight_bits)."""
    linear = fmt.weight_bits / 8 if "linear" in fmt.applies_to else 2.0
    experts = fmt.weight_bits / 8 if ("experts" in fmt.applies_to or "linear" in fmt.applies_to) else 2.0
    vals = dict(
        w_bytes=linear,
        expert_bytes=experts,
        embed_bytes=fmt.embedding_bits / 8,
        act_bytes=4.0 if fmt.activation_bits >= 32 else 2.0,  # activations between kernels stay 16-bit
        kv_bytes=kv.bits / 8,
    )
    return FormatSpec(**{k: np.array([float(v)]) for k, v in vals.items()})
