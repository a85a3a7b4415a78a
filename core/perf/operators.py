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

from llmcap.perf.shapes import LINEAR_STATE_BYTES, FormatSpec, ModelShape


@dataclass(frozen=True)
class Layout:
    """Parallel layout of one replica (arrays). `dp` is the attention data-parallel degree inside the tp group
    (SGLang's --enable-dp-attention, vLLM's data-parallel attention with expert parallel MoE): attention runs as dp
    groups of tp/dp devices, each on its own share of the sequences, while the MLP / experts stay split over tp."""

    tp: np.ndarray
    pp: np.ndarray
    ep: np.ndarray
    dp: np.ndarray

    @property
    def attn_tp(self) -> np.ndarray:
        """Devices that split one sequence's attention heads."""
        return self.tp / self.dp


@dataclass(frozen=True)
class Step:
    """What one engine step of one replica processes (arrays, per replica)."""

    tokens: np.ndarray  # new tokens (prefill + decode)
    seqs: np.ndarray  # sequences in the step
    logit_rows: np.ndarray  # sequences that sample a token
    pairs_full: np.ndarray  # query-key pairs per full-attention layer
    pairs_sliding: np.ndarray  # per sliding-window layer
    decode_pairs_frac: np.ndarray  # share of pairs that come from decode (MLA absorbed path)

    def times(self, k: np.ndarray) -> Step:
        """k copies of this step's sequences in one step (same lengths, k times the work)."""
        return Step(
            tokens=k * self.tokens,
            seqs=k * self.seqs,
            logit_rows=k * self.logit_rows,
            pairs_full=k * self.pairs_full,
            pairs_sliding=k * self.pairs_sliding,
            decode_pairs_frac=self.decode_pairs_frac,
        )

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
    if isinstance(prefix, float) and prefix == 0.0:  # no cached prefix: causal_pairs(0, .) = 0
        full = n * causal_pairs(s, 0)
        slide = n * causal_pairs(s, shape.window)
    else:
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


@dataclass(frozen=True)
class OpTerms:
    """One operator's step-independent terms (summed over its layers, per device).

    A step's row is linear in the step's quantities, so the terms are computed once per scenario and
    every step (prefill, decode, mixed) only scales them (`at`):
      flops  = flops_x * x + pairs * (flops_pair_decode * f + flops_pair_prefill * (1 - f))
      weight = weight + weight_expert * distinct experts(tokens)
      act    = act_x * x          kv = kv_seq * seqs + kv_token * (f * pairs + (2 - f) * tokens)
      comm   = comm_x * x         hops
    x is the row's driver (new tokens, or the sampled rows for the head), f the decode share of the
    attention pairs. Terms that an operator lacks are the scalar 0.0 (skipped when timing).
    """

    name: str
    kind: str  # gemm | attention | memory | comm
    count: np.ndarray
    driver: str = "tokens"  # tokens | logit_rows
    pairs: str = ""  # attention: "full" or "sliding"
    moe: bool = False  # routed experts: weights read for the distinct experts the tokens touch
    flops_x: np.ndarray | float = 0.0
    flops_pair_decode: np.ndarray | float = 0.0
    flops_pair_prefill: np.ndarray | float = 0.0
    weight: np.ndarray | float = 0.0
    weight_expert: np.ndarray | float = 0.0  # MoE: bytes of one expert's slice (times distinct experts)
    experts: np.ndarray | float = 0.0
    top_k: np.ndarray | float = 0.0
    log_untouched: np.ndarray | float = 0.0  # MoE: log(1 - k/E), a token's chance to miss one expert
    act_x: np.ndarray | float = 0.0
    kv_seq: np.ndarray | float = 0.0
    kv_token: np.ndarray | float = 0.0
    comm_x: np.ndarray | float = 0.0
    hops: np.ndarray | float = 0.0

    def driver_of(self, step: Step) -> np.ndarray:
        return step.logit_rows if self.driver == "logit_rows" else step.tokens

    def pairs_of(self, step: Step) -> np.ndarray:
        return step.pairs_sliding if self.pairs == "sliding" else step.pairs_full

    def distinct_experts(self, tokens: np.ndarray) -> np.ndarray:
        """Expected distinct experts a batch of `tokens` touches per layer, E(1 - (1 - k/E)^tokens) (MoE-Lens)."""
        return self.experts * -np.expm1(tokens * self.log_untouched)  # 0 without experts (E = 0)

    def expert_rows(self, tokens: np.ndarray, distinct: np.ndarray) -> np.ndarray:
        """Token rows each touched expert multiplies: tokens * k / distinct (0 without experts)."""
        return tokens * self.top_k / np.maximum(distinct, 1.0)

    def at(self, step: Step) -> OpRow:
        """This operator's row for `step`."""
        x = self.driver_of(step)
        t = step.tokens
        z = np.zeros(np.broadcast(x, self.count).shape)
        flops = self.flops_x * x
        kv = self.kv_seq * step.seqs
        rows = x
        weight = self.weight + z
        if self.pairs:
            f, pairs = step.decode_pairs_frac, self.pairs_of(step)
            flops = flops + pairs * (self.flops_pair_decode * f + self.flops_pair_prefill * (1 - f))
            kv = kv + self.kv_token * (f * pairs + (2 - f) * t)
        if self.moe:
            distinct = self.distinct_experts(t)
            weight = weight + self.weight_expert * distinct
            rows = self.expert_rows(t, distinct)
        return OpRow(
            self.name,
            self.kind,
            self.count + z,
            flops + z,
            weight,
            self.act_x * x + z,
            kv + z,
            self.comm_x * x + z,
            rows + z,
            self.hops + z,
        )


def kv_shard(shape: ModelShape, layout: Layout) -> np.ndarray:
    """How many ways one layer's KV cache is split across the tp devices, averaged per sequence: heads split over
    the attention group of tp/dp devices (MLA latents are replicated there), times the dp groups that each hold only
    their own sequences. With dp = 1: min(tp, kv heads), 1 for MLA; MLA with dp = 2 halves the KV per device."""
    return np.where(shape.is_mla > 0, 1.0, np.minimum(layout.attn_tp, shape.kv_heads)) * layout.dp


def operator_terms(shape: ModelShape, fmt: FormatSpec, layout: Layout) -> list[OpTerms]:
    """The operator table's terms on one device of `layout` (all pipeline stages, i.e. latency view).

    Every FLOP and byte formula of the table is here, per layer and per unit of the step's quantities,
    multiplied by the layers the operator appears in.
    """
    tp, ep = layout.tp, layout.ep
    act = fmt.act_bytes
    h = shape.hidden
    n_attn = shape.n_full + shape.n_sliding
    out: list[OpTerms] = [OpTerms("embedding", "memory", np.ones_like(h), act_x=h * act)]

    # softmax attention layers
    qkv_out = np.where(h > 0, shape.p_qkv / h, 0.0)
    out.append(
        OpTerms(
            "qkv_proj",
            "gemm",
            n_attn,
            flops_x=n_attn * 2 * shape.p_qkv / tp,
            weight=n_attn * shape.p_qkv * fmt.w_bytes / layout.attn_tp,
            act_x=n_attn * (h + qkv_out / tp) * act,
        )
    )
    kv_tok = shape.kv_elems * fmt.kv_bytes / kv_shard(shape, layout)  # per layer per token per device
    heads = shape.heads / tp
    d_prefill = shape.head_dim + shape.v_head_dim
    d_decode = np.where(shape.is_mla > 0, 2 * shape.mla_latent + shape.mla_rope, d_prefill)
    for name, n_layers, pairs in (
        ("attention", shape.n_full, "full"),
        ("attention_sliding", shape.n_sliding, "sliding"),
    ):
        # decode reads every cached token once per sequence; prefill reads its keys once per query tile;
        # both write the new tokens' KV
        out.append(
            OpTerms(
                name,
                "attention",
                n_layers,
                pairs=pairs,
                flops_pair_decode=n_layers * 2 * heads * d_decode,
                flops_pair_prefill=n_layers * 2 * heads * d_prefill,
                act_x=n_layers * 2 * heads * d_prefill * act,
                kv_token=n_layers * kv_tok,
            )
        )
    out.append(
        OpTerms(
            "o_proj",
            "gemm",
            n_attn,
            flops_x=n_attn * 2 * shape.p_o / tp,
            weight=n_attn * shape.p_o * fmt.w_bytes / layout.attn_tp,
            act_x=n_attn * (h + shape.heads * shape.v_head_dim / tp) * act,
        )
    )
    # linear attention / state-space layers: projections plus a constant-size state per sequence
    nl = shape.n_linear
    out.append(
        OpTerms(
            "linear_attention",
            "gemm",
            nl,
            flops_x=nl * (2 * shape.p_linear / tp + 4 * shape.linear_state / tp),
            weight=nl * shape.p_linear * fmt.w_bytes / tp,
            act_x=nl * 2 * h * act,
            kv_seq=nl * 2 * shape.linear_state * LINEAR_STATE_BYTES / tp,
        )
    )
    # dense MLP layers
    nd = shape.n_dense
    ffn = np.where(h > 0, shape.p_dense / (3 * h), 0.0)
    out.append(
        OpTerms(
            "mlp",
            "gemm",
            nd,
            flops_x=nd * 2 * shape.p_dense / tp,
            weight=nd * shape.p_dense * fmt.w_bytes / tp,
            act_x=nd * (2 * h + 3 * ffn / tp) * act,
        )
    )
    # MoE layers
    nm = shape.n_moe
    has_moe = nm > 0
    e = np.where(has_moe, np.maximum(shape.experts, 1.0), 0.0)
    k = np.where(has_moe, shape.top_k, 0.0)
    untouched = np.clip(1 - k / np.maximum(e, 1.0), 1e-300, 1.0)
    out.append(
        OpTerms(
            "moe_router",
            "gemm",
            nm,
            flops_x=nm * 2 * shape.p_router,
            weight=nm * shape.p_router * 2.0,
            act_x=nm * h * act,
        )
    )
    out.append(
        OpTerms(
            "moe_experts",
            "gemm",
            nm,
            moe=True,
            flops_x=nm * 2 * k * shape.p_expert / tp,
            weight_expert=nm * shape.p_expert * fmt.expert_bytes / tp,
            experts=e,
            top_k=k,
            log_untouched=np.log(untouched),
            act_x=nm * k * 2 * h * act / tp,
        )
    )
    ns = np.where(shape.p_shared > 0, nm, 0.0)
    out.append(
        OpTerms(
            "moe_shared_experts",
            "gemm",
            ns,
            flops_x=ns * 2 * shape.p_shared / tp,
            weight=ns * shape.p_shared * fmt.expert_bytes / tp,
            act_x=ns * 2 * h * act,
        )
    )
    out.append(
        OpTerms(
            "lm_head",
            "gemm",
            np.ones_like(h),
            driver="logit_rows",
            flops_x=2 * shape.vocab * h / tp,
            weight=shape.head_params * fmt.embed_bytes / tp,
            act_x=shape.vocab / tp * 4.0,
        )
    )
    # collectives: TP all-reduce after attention and after the MLP of every layer (MoE layers under EP
    # exchange tokens with all-to-all instead of reducing)
    tp_layers = np.where(tp > 1, shape.layers + shape.n_dense + np.where(ep > 1, 0.0, nm), 0.0)
    out.append(
        OpTerms(
            "tp_allreduce",
            "comm",
            tp_layers,
            comm_x=tp_layers * 2 * (tp - 1) / tp * h * act,
            hops=tp_layers * 2 * (tp - 1),
        )
    )
    a2a = np.where(ep > 1, nm, 0.0)
    out.append(
        OpTerms(
            "ep_all_to_all",
            "comm",
            a2a,
            comm_x=a2a * 2 / ep * shape.top_k * h * act * (ep - 1) / ep,
            hops=a2a * 2 * (ep - 1),
        )
    )
    return out


def operator_rows(shape: ModelShape, fmt: FormatSpec, layout: Layout, step: Step) -> list[OpRow]:
    """The operator table of `step` on one device of `layout` (all pipeline stages, i.e. latency view)."""
    return [terms.at(step) for terms in operator_terms(shape, fmt, layout)]


def pp_handoff_bytes(shape: ModelShape, fmt: FormatSpec, layout: Layout, step: Step) -> np.ndarray:
    """Activations sent between pipeline stages in one step (pp-1 hand-offs)."""
    return (layout.pp - 1) * step.tokens * shape.hidden * fmt.act_bytes / layout.tp
