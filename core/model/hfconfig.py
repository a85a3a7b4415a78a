"""Turn a Hugging Face `config.json` (already loaded as a dict) into an `Architecture`.

The estimator needs shapes and parameter counts, not the model's code, so this module
re-derives them from the config keys the `transformers` modelling files read. It knows:

* dense decoders (Llama, Mistral, Qwen2/2.5/3, Phi-3/4, Gemma 2/3, TinyLlama, ...), with
  GQA/MQA/MHA, explicit `head_dim` or hidden/heads, tied or untied embeddings, Qwen2's
  q/k/v bias, `attention_bias`, `mlp_bias`, QK-norms and attention-output gates;
* sliding-window and hybrid layer patterns: `layer_types`, Gemma 2's alternating
  local/global layers, Gemma 3's `sliding_window_pattern`, Qwen2's `max_window_layers`,
  a window on every layer (Mistral v0.1; a window at least as long as the context, as in
  Phi-3.5, is full attention), MiMo-V2's `hybrid_layer_pattern`, Llama 4 chunked attention
  (`attention_chunk_size` on the RoPE layers; the NoPE layers every 4th are global),
  counted as sliding layers whose window is the chunk size;
* mixture of experts: routed experts, top-k, shared experts (DeepSeek `n_shared_experts`,
  Qwen `shared_expert_intermediate_size`, Llama 4's one shared expert, Nemotron-H
  `moe_shared_expert_intermediate_size`), and which layers are dense
  (`first_k_dense_replace` + `moe_layer_freq` or a per-layer `moe_layer_freq` list,
  `interleave_moe_layer_step`/`moe_layers`, `mlp_only_layers` + `decoder_sparse_step`), and
  Nemotron 3's latent MoE (`moe_latent_size`);
* multi-head latent attention (DeepSeek-V2/V3, Kimi K2, GLM-5) and the DSA indexer of
  DeepSeek-V3.2 / GLM-5;
* linear-attention layers with a constant state per sequence: Gated DeltaNet
  (Qwen3-Next, Qwen3.5 `linear_attention` layers) and Mamba-2 (Nemotron-H);
* multimodal wrappers: only the language model in `text_config` (or `llm_config`,
  `language_config`) is counted; vision/audio towers are not.

Conventions (where a choice had to be made):

* Multi-token-prediction layers (`num_nextn_predict_layers`, `mtp_num_hidden_layers`,
  `num_mtp_modules`) are not decoder layers: they are left out of `num_layers` and of every
  parameter count. `num_hidden_layers` never includes them in the configs seen.
* `params_attention` holds the attention projections, their biases, QK-norms, sinks and the
  layer's pre-attention norm (Gemma: also its post-attention norm). MLP-side norms and the
  final norm go to `params_other`. Linear-attention/Mamba layers, with their norms, go to
  `params_linear_attention`.
* MoE routers count their weight plus any expert-score bias (DeepSeek `noaux_tc`, MiniMax
  routing bias, Nemotron-H) or router bias (gpt-oss). Qwen's shared-expert gate counts as
  shared-expert parameters.
* MLPs are gated (SwiGLU/GeGLU: gate, up, down) unless the model's MLP is a plain two-matrix
  one (`relu2` activation, or a model type known to use up/down only, e.g. Nemotron-H).
* K/V cache per token per softmax layer: `num_kv_heads * (head_dim + v_head_dim)`; MLA:
  `kv_lora_rank + qk_rope_head_dim`, plus `index_head_dim` when a DSA indexer is present
  (its key cache is one `index_head_dim` vector per token per layer; DeepSeek stores it in
  FP8 with a scale, here it is simply more cached elements, like the latent).
* Linear-layer state per sequence: Gated DeltaNet keeps `v_heads * k_dim * v_dim`
  recurrent elements plus a causal-conv window of `conv_dim * (kernel - 1)`; Mamba-2 keeps
  `heads * head_dim * ssm_state_size` plus `conv_dim * (conv_kernel - 1)` where
  `conv_dim = heads * head_dim + 2 * n_groups * ssm_state_size` (the layout vLLM/SGLang
  allocate). Both engines keep the recurrent state in fp32 by default
  (`mamba_ssm_dtype`); `Architecture` carries element counts only and the estimator
  picks the width.
* Nemotron-H numbers every block of `hybrid_override_pattern` as a layer: `M` (Mamba-2),
  `*` (attention), `-` (MLP) and `E` (MoE); each block has its own pre-norm. Here a *layer*
  is a token-mixer block: `num_layers` = count of `M` + `*`, `n_linear_layers` = `M`,
  `n_full_attn_layers` = `*`, and the MLP blocks become `n_dense_mlp_layers` (`-`) and
  `n_moe_layers` (`E`), so the usual "one mixer + one MLP per layer" reading holds (the
  patterns interleave them that way). A pattern with more MLP than mixer blocks cannot be
  expressed and raises `ConfigError`. `layers_block_type` lists are read the same way.
* Maximum context: `max_position_embeddings`, raised to
  `original_max_position_embeddings * factor` when a YaRN or dynamic RoPE-scaling block
  gives both.
* When a config leaves a key out, the `transformers` default for that model type is used
  only where the published Hub file relies on it (Gemma 3's text config has no
  `vocab_size`/`max_position_embeddings`; Gemma models tie embeddings by default; a
  missing `num_key_value_heads` means multi-head attention). Anything else missing is an
  error, never a guess.

Not supported (ConfigError): encoder-decoder models, Kimi Delta Attention (`kimi_linear`),
per-layer heterogeneous configs without the usual size keys (Nemotron-NAS `block_configs`).
Not expressible in `Architecture`, so approximated: different KV-head counts for sliding and
full layers (MiMo-V2 `swa_num_key_value_heads`: the full-attention value is used for all).

Norms are counted as weights only (LayerNorm biases and learned position embeddings of
older GPT-style models are not modelled; they are far below 0.1% of any model here).

Every problem with the input raises `ConfigError` naming the field; no other exception
escapes `parse_config` for any JSON-like input.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from llmcap.io.safejson import load_json
from llmcap.model.architecture import Architecture
from llmcap.model.hf_attention import _attention
from llmcap.model.hf_fields import _language_fields
from llmcap.model.hf_layout import _layout
from llmcap.model.hf_limits import MAX_CONFIG_BYTES, MAX_PARAMS, ConfigError, ConfigJsonError
from llmcap.model.hf_linear import _gated_deltanet, _mamba2
from llmcap.model.hf_mlp import _dense_intermediate, _is_gated, _mlp_norms, _mlp_params, _moe, _num_experts
from llmcap.model.hf_shape import _shape

__all__ = ["parse_config", "parse_config_bytes"]


# -- assembly ------------------------------------------------------------------------------------------


def parse_config(cfg: Any) -> Architecture:
    """Architecture of the language model described by a Hugging Face config dict.

    Raises ConfigError (a ValueError) naming the offending field for any input that does not
    describe a plausible decoder-only model.
    """
    try:
        return _parse(cfg)
    except ConfigError:
        raise
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "config"
        raise ConfigError(f"config gives an inconsistent architecture: {loc}: {first['msg']}") from None
    except (KeyError, TypeError, ValueError, ZeroDivisionError, OverflowError, AttributeError) as exc:
        raise ConfigError(f"config could not be read: {type(exc).__name__}: {exc}") from None


def parse_config_bytes(data: bytes | str, max_bytes: int = MAX_CONFIG_BYTES, name: str = "config.json") -> Architecture:
    """parse_config of an uploaded file's bytes: size-capped, UTF-8, safe JSON (llmcap.io.safejson).

    ConfigJsonError when the bytes are not usable JSON (the message starts with `name`), else ConfigError.
    """
    try:
        cfg = load_json(data, max_bytes=max_bytes, what=name)
    except ValueError as exc:
        raise ConfigJsonError(str(exc)) from None
    return parse_config(cfg)


def _parse(cfg: Any) -> Architecture:
    f = _language_fields(cfg)
    s = _shape(f)
    experts = _num_experts(f)
    layout = _layout(f, s, experts)
    gated = _is_gated(f)
    attn = _attention(f, s)

    linear_params = linear_state = 0
    if layout.linear_kind == "gated_deltanet":
        linear_params, linear_state = _gated_deltanet(f, s)
    elif layout.linear_kind == "mamba2":
        linear_params, linear_state = _mamba2(f, s)

    moe = _moe(f, s, experts, gated) if layout.moe_mlp else None
    dense_inter = _dense_intermediate(f, experts > 1) if layout.dense_mlp else 0
    dense_mlp = _mlp_params(s.hidden, dense_inter, gated, f.flag("mlp_bias", False)) if dense_inter else 0

    embedding = s.vocab * s.hidden
    if layout.blocks_with_own_norm:  # Nemotron-H: each MLP block has one pre-norm
        other = s.hidden * (1 + layout.blocks_with_own_norm)
    else:
        other = s.hidden * (1 + _mlp_norms(f) * s.num_layers)  # final norm + MLP-side norms

    arch = Architecture(
        model_type=f.model_type or "unknown",
        num_layers=layout.layers,
        hidden_size=s.hidden,
        vocab_size=s.vocab,
        tie_embeddings=s.tie,
        max_context=s.max_context,
        num_heads=s.heads,
        num_kv_heads=s.kv_heads,
        head_dim=attn.head_dim,
        v_head_dim=attn.v_head_dim,
        n_full_attn_layers=layout.full,
        n_sliding_layers=layout.sliding,
        sliding_window=layout.sliding_window,
        kv_elems_per_token_per_layer=attn.kv_elems,
        mla=attn.mla,
        n_linear_layers=layout.linear,
        linear_state_elems_per_layer=linear_state,
        params_attention=attn.params_per_layer * (layout.full + layout.sliding),
        params_linear_attention=linear_params * layout.linear,
        n_dense_mlp_layers=layout.dense_mlp,
        dense_intermediate_size=dense_inter,
        params_dense_mlp=dense_mlp * layout.dense_mlp,
        n_moe_layers=layout.moe_mlp,
        moe=moe,
        params_embedding=embedding,
        params_lm_head=0 if s.tie else embedding,
        params_other=other,
    )
    if arch.params_total > MAX_PARAMS:
        raise ConfigError(f"config describes {arch.params_total:.3g} parameters, beyond any plausible model")
    return arch
