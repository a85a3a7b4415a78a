"""The operator table of one engine step: FLOPs and bytes by class for each operator, per device.

A `Step` says what one forward pass processes (new tokens, attention pairs, KV reads); the rows
follow the transformer layer by layer (projections, attention, MLP or experts, head) plus the
collectives of tensor and expert parallelism. Every later number (latency, bound, throughput)
comes from these rows. Formulas (per device, `tp` devices share a stage):

  linear layer        FLOPs = 2 * tokens * params / tp          bytes = params * bytes_per_weight / tp
  attention           FLOPs = 2 * pairs * heads/tp * (d_qk + d_v)   (MLA decode, absorbed:
                      2 * pairs * heads/tp * (2*kv_lora_rank + rope))   bytes = KV read + KV written
  MoE experts         FLOPs = 2 * tokens * top_k * params_expert / tp
                      bytes = E*(1-(1-k/E)^tokens) distinct experts * params_expert * bytes / tp  (MoE-Lens)
  TP all-reduce       2 per layer, message = tokens * hidden * 2 bytes (Megatron-LM, Shoeybi et al. 2019)
  EP all-to-all       dispatch + combine per MoE layer, tokens * top_k * hidden * 2 bytes * (ep-1)/ep
Causal prefill attention counts S(S+1)/2 pairs, not S^2 (FlashAttention skips masked blocks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.shapes import LINEAR_STATE_BYTES, FormatSpec, ModelShape


@dataclass(frozen=True)
class Layout:
    """Parallel layout of one replica (arrays)."""

    tp: np.ndarray
    pp: np.ndarray
    ep: np.ndarray


@dataclass(frozen=True)
class Step:
    """What one engine step of one replica processes (arrays, per replica)."""

    tokens: np.ndarray  # new tokens (prefill + decode)
    seqs: np.ndarray  # sequences in the step
    logit_rows: np.ndarray  # sequences that sample a token
    pairs_full: np.ndarray  # query-key pairs per full-attention layer
    pairs_sliding: np.ndarray  # per sliding-window layer
    decode_pairs_frac: np.ndarray  # share of pairs that come from decode (MLA absorbed path)

    def __add__(self, other: Step) -> Step:
        pf = self.pairs_full + self.pairs_sliding
        po = other.pairs_full + other.pairs_sliding
        tot = np.maximum(pf + po, 1e-30)
        return Step(
            tokens=self.tokens + other.tokens,
            seqs=self.seqs + other.seqs,
            logit_rows=self.logit_rows + other.logit_rows,
            pairs_full=self.pairs_full + other.pairs_full,
            pairs_sliding=self.pairs_sliding + other.pairs_sliding,
            decode_pairs_frac=(self.decode_pairs_frac * pf + other.decode_pairs_frac * po) / tot,
        )


def causal_pairs(s: np.ndarray, window: np.ndarray | float) -> np.ndarray:
    """Query-key pairs of causal attention over s tokens, each query seeing at most `window` keys.

    sum_{i=1..s} min(i, w) = s(s+1)/2 when s <= w, else w(w+1)/2 + (s-w)*w.
    """
    s = np.asarray(s, dtype=float)
    w = np.minimum(np.where(np.asarray(window) > 0, window, np.inf), s)
    return w * (w + 1) / 2 + (s - w) * w


def mean_window_context(first: np.ndarray, last: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Mean of min(L, window) for L running from `first` to `last` (decode integrated over its length)."""
    n = np.maximum(last - first + 1, 1.0)
    return (causal_pairs(last, window) - causal_pairs(first - 1, window)) / n


def prefill_step(n: np.ndarray, s: np.ndarray, shape: ModelShape, prefix: np.ndarray | float = 0.0) -> Step:
    """n sequences each adding s prompt tokens after `prefix` cached tokens (a chunk when prefix > 0)."""
    full = n * (causal_pairs(prefix + s, 0) - causal_pairs(prefix, 0))
    slide = n * (causal_pairs(prefix + s, shape.window) - causal_pairs(prefix, shape.window))
    return Step(
        tokens=n * s,
        seqs=n,
        logit_rows=n,
        pairs_full=full,
        pairs_sliding=slide,
        decode_pairs_frac=np.zeros_like(full),
    )


def decode_step(b: np.ndarray, ctx_full: np.ndarray, ctx_sliding: np.ndarray) -> Step:
    """b sequences each generating one token at a mean context (full layers) / capped context (sliding)."""
    b = np.asarray(b, dtype=float)
    return Step(
        tokens=b,
        seqs=b,
        logit_rows=b,
        pairs_full=b * ctx_full,
        pairs_sliding=b * ctx_sliding,
        decode_pairs_frac=np.ones_like(b),
    )


@dataclass(frozen=True)
class OpRow:
    """One operator summed over the layers it appears in, per device."""

    name: str
    kind: str  # gemm | attention | memory | comm
    count: np.ndarray  # layers it appears in
    flops: np.ndarray
    weight_bytes: np.ndarray
    act_bytes: np.ndarray
    kv_bytes: np.ndarray
    comm_bytes: np.ndarray
    rows: np.ndarray  # token rows of the product (sets GEMM efficiency)
    hops: np.ndarray  # collective latency terms


def _row(name, kind, count, flops=0.0, w=0.0, a=0.0, kv=0.0, comm=0.0, rows=1.0, hops=0.0) -> OpRow:
    z = np.zeros_like(np.asarray(count, dtype=float))
    return OpRow(
        name,
        kind,
        count + z,
        flops * count + z,
        w * count + z,
        a * count + z,
        kv * count + z,
        comm * count + z,
        rows + z,
        hops * count + z,
    )


def kv_shard(shape: ModelShape, layout: Layout) -> np.ndarray:
    """How many ways one layer's KV cache is split across the tp devices (MLA latents are replicated)."""
    return np.where(shape.is_mla > 0, 1.0, np.minimum(layout.tp, shape.kv_heads))


def operator_rows(shape: ModelShape, fmt: FormatSpec, layout: Layout, step: Step) -> list[OpRow]:
    """The operator table of `step` on one device of `layout` (all pipeline stages, i.e. latency view)."""
    tp, ep = layout.tp, layout.ep
    t = step.tokens
    act = fmt.act_bytes
    h = shape.hidden
    n_attn = shape.n_full + shape.n_sliding

    rows_out: list[OpRow] = []
    add = rows_out.append
    add(_row("embedding", "memory", 1.0, a=t * h * act))

    # softmax attention layers
    qkv_out = np.where(h > 0, shape.p_qkv / h, 0.0)
    add(
        _row(
            "qkv_proj",
            "gemm",
            n_attn,
            flops=2 * t * shape.p_qkv / tp,
            w=shape.p_qkv * fmt.w_bytes / tp,
            a=t * (h + qkv_out / tp) * act,
            rows=t,
        )
    )
    kv_tok = shape.kv_elems * fmt.kv_bytes / kv_shard(shape, layout)  # per layer per token per device
    heads = shape.heads / tp
    d_prefill = shape.head_dim + shape.v_head_dim
    d_decode = np.where(shape.is_mla > 0, 2 * shape.mla_latent + shape.mla_rope, d_prefill)
    d_eff = step.decode_pairs_frac * d_decode + (1 - step.decode_pairs_frac) * d_prefill
    for name, n_layers, pairs in (
        ("attention", shape.n_full, step.pairs_full),
        ("attention_sliding", shape.n_sliding, step.pairs_sliding),
    ):
        # decode reads every cached token once per sequence; prefill reads its keys once per query tile
        kv_read = step.decode_pairs_frac * pairs + (1 - step.decode_pairs_frac) * t
        add(
            _row(
                name,
                "attention",
                n_layers,
                flops=2 * pairs * heads * d_eff,
                a=2 * t * heads * (shape.head_dim + shape.v_head_dim) * act,
                kv=(kv_read + t) * kv_tok,
                rows=t,
            )
        )
    add(
        _row(
            "o_proj",
            "gemm",
            n_attn,
            flops=2 * t * shape.p_o / tp,
            w=shape.p_o * fmt.w_bytes / tp,
            a=t * (h + shape.heads * shape.v_head_dim / tp) * act,
            rows=t,
        )
    )
    # linear attention / state-space layers: projections plus a constant-size state per sequence
    add(
        _row(
            "linear_attention",
            "gemm",
            shape.n_linear,
            flops=2 * t * shape.p_linear / tp + 4 * t * shape.linear_state / tp,
            w=shape.p_linear * fmt.w_bytes / tp,
            a=2 * t * h * act,
            kv=2 * step.seqs * shape.linear_state * LINEAR_STATE_BYTES / tp,
            rows=t,
        )
    )
    # dense MLP layers
    ffn = np.where(h > 0, shape.p_dense / (3 * h), 0.0)
    add(
        _row(
            "mlp",
            "gemm",
            shape.n_dense,
            flops=2 * t * shape.p_dense / tp,
            w=shape.p_dense * fmt.w_bytes / tp,
            a=t * (2 * h + 3 * ffn / tp) * act,
            rows=t,
        )
    )
    # MoE layers
    has_moe = shape.n_moe > 0
    e = np.maximum(shape.experts, 1.0)
    k = shape.top_k
    distinct = np.where(has_moe, e * (1 - np.power(np.clip(1 - k / e, 0, 1), t)), 0.0)
    add(
        _row(
            "moe_router",
            "gemm",
            shape.n_moe,
            flops=2 * t * shape.p_router,
            w=shape.p_router * 2.0,
            a=t * h * act,
            rows=t,
        )
    )
    expert_rows = np.where(distinct > 0, t * k / np.maximum(distinct, 1.0), 1.0)
    add(
        _row(
            "moe_experts",
            "gemm",
            shape.n_moe,
            flops=2 * t * k * shape.p_expert / tp,
            w=distinct * shape.p_expert * fmt.expert_bytes / tp,
            a=t * k * 2 * h * act / tp,
            rows=expert_rows,
        )
    )
    add(
        _row(
            "moe_shared_experts",
            "gemm",
            np.where(shape.p_shared > 0, shape.n_moe, 0.0),
            flops=2 * t * shape.p_shared / tp,
            w=shape.p_shared * fmt.expert_bytes / tp,
            a=2 * t * h * act,
            rows=t,
        )
    )
    add(
        _row(
            "lm_head",
            "gemm",
            1.0,
            flops=2 * step.logit_rows * shape.vocab * h / tp,
            w=shape.head_params * fmt.embed_bytes / tp,
            a=step.logit_rows * shape.vocab / tp * 4.0,
            rows=step.logit_rows,
        )
    )
    # collectives: TP all-reduce after attention and after the MLP of every layer (MoE layers under EP
    # exchange tokens with all-to-all instead of reducing)
    msg = t * h * act
    tp_layers = np.where(tp > 1, shape.layers + shape.n_dense + np.where(ep > 1, 0.0, shape.n_moe), 0.0)
    add(_row("tp_allreduce", "comm", tp_layers, comm=2 * (tp - 1) / tp * msg, hops=2 * (tp - 1)))
    a2a = np.where(ep > 1, shape.n_moe, 0.0)
    add(_row("ep_all_to_all", "comm", a2a, comm=2 * t / ep * k * h * act * (ep - 1) / ep, hops=2 * (ep - 1)))
    return rows_out


def pp_handoff_bytes(shape: ModelShape, fmt: FormatSpec, layout: Layout, step: Step) -> np.ndarray:
    """Activations sent between pipeline stages in one step (pp-1 hand-offs)."""
    return (layout.pp - 1) * step.tokens * shape.hidden * fmt.act_bytes / layout.tp
