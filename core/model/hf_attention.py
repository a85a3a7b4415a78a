"""Softmax attention per layer: projections, biases, QK-norms, sinks and norms, and its K/V cache per token;
multi-head latent attention with the DSA indexer (llmcap.model.hfconfig)."""

from __future__ import annotations

from dataclasses import dataclass

from llmcap.model.architecture import MLA
from llmcap.model.hf_fields import _Fields
from llmcap.model.hf_limits import MAX_HEAD_DIM, MAX_HEADS, MAX_HIDDEN, ConfigError
from llmcap.model.hf_shape import _Shape

# Model types whose q/k/v projections carry a bias although the config has no flag for it.
_QKV_BIAS_TYPES = {"qwen2", "qwen2_moe", "qwen2_vl", "qwen2_5_vl", "qwen2_vl_text", "qwen2_5_vl_text"}


# -- attention ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Attention:
    params_per_layer: int  # projections, biases, qk-norms, sinks, and the layer's attention-side norms
    kv_elems: int
    head_dim: int
    v_head_dim: int
    mla: MLA | None


def _attention(f: _Fields, s: _Shape) -> _Attention:
    if f.has("kv_lora_rank"):
        return _mla_attention(f, s)
    h, hd, vd = s.heads, s.head_dim, s.v_head_dim
    gate = f.flag("attn_output_gate", f.model_type == "qwen3_next")
    q_out = h * hd * (2 if gate else 1)
    kv_out = s.kv_heads * (hd + vd)
    params = s.hidden * (q_out + kv_out) + h * vd * s.hidden
    if f.flag("attention_bias", False) or f.flag("bias", False):
        params += q_out + kv_out + s.hidden
    elif f.model_type in _QKV_BIAS_TYPES:
        params += q_out + kv_out
    params += _qk_norm_params(f, s)
    if f.model_type == "gpt_oss":
        params += h  # attention sinks: one learned logit per head
    params += s.hidden * _attention_norms(f)
    return _Attention(params, s.kv_heads * (hd + vd), hd, vd, None)


def _qk_norm_params(f: _Fields, s: _Shape) -> int:
    """RMSNorm weights on queries and keys (per head, or over all heads for MiniMax's 'per_layer')."""
    per_head = f.model_type.startswith(("qwen3", "gemma3", "olmo")) or f.flag("use_qk_norm", False)
    if not per_head or f.model_type.startswith("llama4"):  # Llama 4's QK-norm is a weightless L2 norm
        return 0
    if f.text("qk_norm_type", "per_head") == "per_layer":
        return (s.heads + s.kv_heads) * s.head_dim
    return 2 * s.head_dim


def _attention_norms(f: _Fields) -> int:
    """Norm weight vectors per layer on the attention side (Gemma 2/3 add a post-attention norm)."""
    return 2 if f.model_type.startswith(("gemma2", "gemma3")) else 1


def _mla_attention(f: _Fields, s: _Shape) -> _Attention:
    """Multi-head latent attention (DeepSeek-V2/V3 layout), plus the DSA indexer when configured."""
    kv_rank = f.integer("kv_lora_rank", hi=MAX_HIDDEN)
    q_rank = f.integer("q_lora_rank", None, hi=MAX_HIDDEN)
    rope = f.integer("qk_rope_head_dim", lo=0, hi=MAX_HEAD_DIM)
    nope = f.integer("qk_nope_head_dim", lo=0, hi=MAX_HEAD_DIM)
    if rope + nope == 0:
        raise ConfigError(f"fields '{f.name('qk_rope_head_dim')}' and '{f.name('qk_nope_head_dim')}' are both 0")
    v = f.integer("v_head_dim", hi=MAX_HEAD_DIM)
    h, hidden, qk = s.heads, s.hidden, rope + nope
    # q_a_proj, q_a_layernorm, q_b_proj; or one q_proj without a query latent
    q = hidden * q_rank + q_rank + q_rank * h * qk if q_rank else hidden * h * qk
    kv = hidden * (kv_rank + rope) + kv_rank + kv_rank * h * (nope + v)  # kv_a_proj_with_mqa, norm, kv_b_proj
    params = q + kv + h * v * hidden + hidden  # o_proj, input_layernorm
    kv_elems = kv_rank + rope
    if f.has("index_n_heads"):
        idx_heads = f.integer("index_n_heads", hi=MAX_HEADS)
        idx_dim = f.integer("index_head_dim", hi=MAX_HEAD_DIM)
        # wq_b (from the q latent, or hidden without one), wk, k_norm (LayerNorm w+b), weights_proj
        params += (q_rank or hidden) * idx_heads * idx_dim + hidden * idx_dim + 2 * idx_dim + hidden * idx_heads
        kv_elems += idx_dim
    mla = MLA(kv_lora_rank=kv_rank, q_lora_rank=q_rank, qk_rope_head_dim=rope, qk_nope_head_dim=nope, v_head_dim=v)
    return _Attention(params, kv_elems, qk, v, mla)
