"""The shapes of a transformer that the estimator needs, parsed from a Hugging Face config.json.

Parameter counts are scalars (not bytes): the estimator multiplies them by a format's bits.
Layers are grouped by kind rather than listed one by one, so the operator table has one row
per kind of layer, multiplied by the number of such layers.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from llmcap.catalog.schema import Frozen


class MLA(Frozen):
    """Multi-head latent attention (DeepSeek-V2/V3): K and V stored as one compressed latent."""

    kv_lora_rank: int = Field(gt=0)
    q_lora_rank: int | None = Field(default=None, gt=0)
    qk_rope_head_dim: int = Field(ge=0)
    qk_nope_head_dim: int = Field(ge=0)
    v_head_dim: int = Field(gt=0)


class MoE(Frozen):
    """Mixture of experts in the MoE layers (same in every MoE layer)."""

    num_experts: int = Field(ge=1)
    top_k: int = Field(ge=1)
    num_shared_experts: int = Field(default=0, ge=0)
    expert_intermediate_size: int = Field(gt=0)
    params_per_expert: int = Field(gt=0, description="one routed expert of one layer")
    params_shared_per_layer: int = Field(default=0, ge=0, description="all shared experts of one layer")
    params_router_per_layer: int = Field(ge=0)

    @model_validator(mode="after")
    def _topk_within_experts(self) -> MoE:
        if self.top_k > self.num_experts:
            raise ValueError("top_k exceeds num_experts")
        return self


class Architecture(Frozen):
    """A decoder-only language model's shapes and parameter counts."""

    model_type: str
    num_layers: int = Field(ge=1, description="decoder layers (MTP/draft layers excluded)")
    hidden_size: int = Field(ge=1)
    vocab_size: int = Field(ge=1)
    tie_embeddings: bool
    max_context: int = Field(ge=1)

    # softmax attention
    num_heads: int = Field(ge=1)
    num_kv_heads: int = Field(ge=1)
    head_dim: int = Field(ge=1, description="query/key head dim (MLA: nope + rope)")
    v_head_dim: int = Field(ge=1)
    n_full_attn_layers: int = Field(ge=0)
    n_sliding_layers: int = Field(ge=0, description="layers whose attention is capped at sliding_window")
    sliding_window: int | None = Field(default=None, ge=1)
    kv_elems_per_token_per_layer: int = Field(
        ge=0, description="cached elements per token per softmax-attention layer (K+V, or MLA latent+rope)"
    )
    mla: MLA | None = None

    # linear attention / state-space layers: constant state per sequence
    n_linear_layers: int = Field(default=0, ge=0)
    linear_state_elems_per_layer: int = Field(default=0, ge=0, description="recurrent + conv state per sequence")

    # parameters, whole model, by component
    params_attention: int = Field(ge=0, description="all softmax-attention layers (projections, their norms)")
    params_linear_attention: int = Field(default=0, ge=0, description="all linear-attention / Mamba layers")
    n_dense_mlp_layers: int = Field(ge=0)
    dense_intermediate_size: int = Field(ge=0)
    params_dense_mlp: int = Field(ge=0, description="all dense MLP layers")
    n_moe_layers: int = Field(default=0, ge=0)
    moe: MoE | None = None
    params_embedding: int = Field(ge=0)
    params_lm_head: int = Field(ge=0, description="0 when tied to the embedding")
    params_other: int = Field(default=0, ge=0, description="norms and anything not above")

    @model_validator(mode="after")
    def _consistent(self) -> Architecture:
        attn_layers = self.n_full_attn_layers + self.n_sliding_layers + self.n_linear_layers
        if attn_layers != self.num_layers:
            raise ValueError(f"attention layer kinds add to {attn_layers}, not num_layers={self.num_layers}")
        if self.n_dense_mlp_layers + self.n_moe_layers > self.num_layers:
            raise ValueError("more MLP layers than layers")
        if self.n_moe_layers and self.moe is None:
            raise ValueError("n_moe_layers > 0 needs moe")
        if self.n_sliding_layers and not self.sliding_window:
            raise ValueError("sliding layers need sliding_window")
        return self

    @property
    def params_moe(self) -> int:
        """All MoE-layer parameters: routed and shared experts and routers."""
        if self.moe is None:
            return 0
        m = self.moe
        per_layer = m.num_experts * m.params_per_expert + m.params_shared_per_layer + m.params_router_per_layer
        return self.n_moe_layers * per_layer

    @property
    def params_total(self) -> int:
        return (
            self.params_attention
            + self.params_linear_attention
            + self.params_dense_mlp
            + self.params_moe
            + self.params_embedding
            + self.params_lm_head
            + self.params_other
        )

    @property
    def params_active(self) -> int:
        """Parameters used per token: routed experts count top_k of num_experts."""
        if self.moe is None:
            return self.params_total
        m = self.moe
        idle = self.n_moe_layers * (m.num_experts - m.top_k) * m.params_per_expert
        return self.params_total - idle
