"""Memory per device: weights, KV cache, activations, runtime overhead, and what fits.

  weights   = layer params * bytes / (tp * pp) + embedding and head / tp (the first and last
              pipeline stages hold one each; with pp = 1 one device holds both shards)
  KV / seq  = (full layers * L + sliding layers * min(L, window)) * kv elems * kv bytes / (kv shard * pp)
              + linear layers * state elems * 4 bytes / (tp * pp)     (domain.md "Memory")
  KV room   = usable * memory fraction - weights - activations - overhead   (vLLM's gpu_memory_utilization)
Activations: the engine's peak for one step of `max_batch_tokens` tokens: hidden states, the widest
MLP or expert slice, and fp32 logits of the sampled rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmcap.perf.operators import Layout, kv_shard
from llmcap.perf.shapes import LINEAR_STATE_BYTES, DeviceSpec, FormatSpec, ModelShape

GB = 1e9


def weight_bytes_per_device(shape: ModelShape, fmt: FormatSpec, layout: Layout) -> np.ndarray:
    n_attn = shape.n_full + shape.n_sliding
    attn = n_attn * (shape.p_qkv + shape.p_o) * fmt.w_bytes  # replicated over the dp attention groups
    dense = (shape.n_linear * shape.p_linear + shape.n_dense * shape.p_dense) * fmt.w_bytes
    moe = shape.n_moe * ((shape.experts * shape.p_expert + shape.p_shared) * fmt.expert_bytes + shape.p_router * 2.0)
    other = shape.p_other * 2.0
    embed = shape.p_embed * fmt.embed_bytes
    head = shape.p_head * fmt.embed_bytes
    ends = np.where(layout.pp > 1, np.maximum(embed, head), embed + head)
    return attn / (layout.attn_tp * layout.pp) + (dense + moe + other) / (layout.tp * layout.pp) + ends / layout.tp


def kv_bytes_per_token(shape: ModelShape, fmt: FormatSpec, layout: Layout) -> np.ndarray:
    """KV bytes per cached token per device in a full-attention layer, times full layers."""
    return shape.kv_elems * fmt.kv_bytes / kv_shard(shape, layout) / layout.pp


def kv_bytes_per_sequence(shape: ModelShape, fmt: FormatSpec, layout: Layout, ctx: np.ndarray) -> np.ndarray:
    """KV cache (and recurrent state) one sequence of `ctx` tokens holds on one device."""
    per_layer_tok = kv_bytes_per_token(shape, fmt, layout)
    sliding_ctx = np.where(shape.window > 0, np.minimum(ctx, np.maximum(shape.window, 1)), ctx)
    state = shape.n_linear * shape.linear_state * LINEAR_STATE_BYTES / (layout.tp * layout.pp)
    return per_layer_tok * (shape.n_full * ctx + shape.n_sliding * sliding_ctx) + state


def activation_bytes(shape: ModelShape, fmt: FormatSpec, layout: Layout, max_batch_tokens, max_seqs) -> np.ndarray:
    """Peak activation workspace of one step (what an engine's memory profiling run reserves)."""
    h = shape.hidden
    ffn = np.maximum(shape.p_dense / (3 * h), shape.top_k * shape.p_expert / (3 * h))
    qkv = shape.p_qkv / h
    widest = np.maximum(2 * ffn, qkv) / layout.tp
    hidden_states = 4 * h
    logits = np.minimum(max_seqs, max_batch_tokens) * shape.vocab / layout.tp * 4.0
    return max_batch_tokens * (hidden_states + widest) * fmt.act_bytes + logits


@dataclass(frozen=True)
class MemoryBudget:
    """Bytes per device (arrays)."""

    capacity: np.ndarray  # usable memory
    reserved: np.ndarray  # capacity * (1 - memory fraction): left to the OS / other processes
    weights: np.ndarray
    activations: np.ndarray
    overhead: np.ndarray
    kv_room: np.ndarray  # what is left for the KV cache (negative: weights do not fit)


def memory_budget(
    shape: ModelShape,
    fmt: FormatSpec,
    layout: Layout,
    dev: DeviceSpec,
    memory_fraction,
    fraction_of_free: bool,
    overhead_gb,
    max_batch_tokens,
    max_seqs,
) -> MemoryBudget:
    weights = weight_bytes_per_device(shape, fmt, layout)
    acts = activation_bytes(shape, fmt, layout, max_batch_tokens, max_seqs)
    overhead = np.asarray(overhead_gb, dtype=float) * GB
    frac = np.asarray(memory_fraction, dtype=float)
    # vLLM/SGLang take a fraction of the whole device; TensorRT-LLM a fraction of what is free after loading
    free_after_load = dev.memory_bytes - weights - acts - overhead
    reserved = np.where(fraction_of_free, np.maximum(free_after_load, 0.0), dev.memory_bytes) * (1 - frac)
    room = dev.memory_bytes - reserved - weights - acts - overhead
    z = np.zeros_like(room)
    return MemoryBudget(dev.memory_bytes + z, reserved + z, weights + z, acts + z, overhead + z, room)


def max_concurrency(budget: MemoryBudget, kv_per_seq: np.ndarray) -> np.ndarray:
    """Largest number of sequences whose KV fits (0 when nothing fits)."""
    return np.floor(np.maximum(budget.kv_room, 0.0) / np.maximum(kv_per_seq, 1e-9))
