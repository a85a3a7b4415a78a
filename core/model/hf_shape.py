"""Global sizes of a config: layers, hidden, vocabulary, heads and head dims, maximum context, tying;
and Nemotron-H's block pattern, which can stand for the layer count (llmcap.model.hfconfig)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from llmcap.model.hf_fields import _Fields
from llmcap.model.hf_limits import MAX_CONTEXT, MAX_HEAD_DIM, MAX_HEADS, MAX_HIDDEN, MAX_LAYERS, MAX_VOCAB, ConfigError

# Model types whose transformers config class ties input and output embeddings by default.
_TIED_BY_DEFAULT = {"gemma", "gemma2", "gemma3", "gemma3_text", "gemma4", "gemma4_text", "gpt2", "opt", "bloom"}


# -- shapes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    num_layers: int  # decoder layers as the config numbers them (Nemotron-H: every block)
    hidden: int
    vocab: int
    heads: int
    kv_heads: int
    head_dim: int
    v_head_dim: int
    max_context: int
    tie: bool


def _shape(f: _Fields) -> _Shape:
    """Global sizes: layers, hidden, vocabulary, heads and head dims, context, tying."""
    if f.has("linear_attn_config"):
        raise ConfigError(
            f"field '{f.name('linear_attn_config')}': Kimi Delta Attention (kimi_linear) layers are not supported"
        )
    if f.flag("is_encoder_decoder", False):
        raise ConfigError("field 'is_encoder_decoder' is true: only decoder-only language models are supported")
    pattern = _block_pattern(f)
    if pattern is not None and not f.has("num_hidden_layers"):
        num_layers = len(pattern)
    else:
        num_layers = f.integer(("num_hidden_layers", "n_layer", "num_layers", "n_layers"), hi=MAX_LAYERS)
    hidden = f.integer(("hidden_size", "d_model", "n_embd", "model_dim"), hi=MAX_HIDDEN)
    vocab = f.integer(("vocab_size", "padded_vocab_size", "n_vocab"), hi=MAX_VOCAB)
    heads = f.integer(("num_attention_heads", "n_head", "num_heads", "n_heads"), hi=MAX_HEADS)
    if f.flag("multi_query", False):
        kv_heads = 1
    else:
        kv_heads = f.integer(
            ("num_key_value_heads", "num_kv_heads", "n_head_kv", "multi_query_group_num"), heads, hi=MAX_HEADS
        )
    if kv_heads > heads:
        raise ConfigError(f"field '{f.name('num_key_value_heads')}' = {kv_heads} exceeds the {heads} attention heads")
    head_dim = _head_dim(f, hidden, heads)
    v_head_dim = f.integer("v_head_dim", head_dim, hi=MAX_HEAD_DIM)
    tie = f.flag("tie_word_embeddings", f.model_type in _TIED_BY_DEFAULT)
    return _Shape(num_layers, hidden, vocab, heads, kv_heads, head_dim, v_head_dim, _max_context(f), tie)


def _head_dim(f: _Fields, hidden: int, heads: int) -> int:
    """Query/key head size: `head_dim` when given (Gemma, Qwen3 differ from hidden/heads), else hidden/heads."""
    head_dim = f.integer(("head_dim", "attention_head_dim"), 0, hi=MAX_HEAD_DIM)
    if head_dim:
        return head_dim
    if f.has("kv_lora_rank"):  # MLA: nope + rope parts
        nope = f.integer("qk_nope_head_dim", 0, lo=0, hi=MAX_HEAD_DIM)
        return nope + f.integer("qk_rope_head_dim", 0, lo=0, hi=MAX_HEAD_DIM) or hidden // heads
    if hidden % heads:
        raise ConfigError(
            f"no 'head_dim' and hidden size {hidden} is not divisible by {heads} heads: cannot infer the head size"
        )
    return hidden // heads


def _max_context(f: _Fields) -> int:
    """`max_position_embeddings` (or an alias), raised by YaRN/dynamic RoPE scaling when it says so.

    Qwen's model cards enable YaRN by adding `rope_scaling` (factor 4, original 32768) while
    leaving `max_position_embeddings` at 32768/40960; the usable context is then
    original x factor. Llama 3's `llama3` scaling instead already reports the scaled context.
    """
    context = f.integer(
        ("max_position_embeddings", "max_sequence_length", "seq_length", "n_positions", "max_seq_len"), hi=MAX_CONTEXT
    )
    scaling = f.obj("rope_scaling", "rope_parameters")
    if scaling.get("rope_type", scaling.get("type")) not in ("yarn", "dynamic"):
        return context  # llama3/longrope/linear: max_position_embeddings already is the scaled context
    factor, original = scaling.get("factor"), scaling.get("original_max_position_embeddings")
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (factor, original))
    if numbers and math.isfinite(factor) and 1 <= factor <= 1e4 and 1 <= original <= MAX_CONTEXT:
        context = max(context, int(original * factor))
    return min(context, MAX_CONTEXT)


def _block_pattern(f: _Fields) -> str | None:
    """Nemotron-H block string (`M`, `*`, `-`, `E`) from `hybrid_override_pattern` or `layers_block_type`."""
    if f.has("hybrid_override_pattern"):
        pattern = f.text("hybrid_override_pattern", "")
        bad = sorted(set(pattern) - set("M*-E"))
        if not pattern or bad or len(pattern) > MAX_LAYERS:
            raise ConfigError(
                f"field '{f.name('hybrid_override_pattern')}' must be 1 to {MAX_LAYERS} of M * - E, found {bad}"
            )
        return pattern
    types = f.items("layers_block_type")
    if types is None:
        return None
    codes = {"mamba": "M", "attention": "*", "mlp": "-", "moe": "E"}
    bad = sorted({str(t)[:20] for t in types if not isinstance(t, str) or t not in codes})
    if not types or bad or len(types) > MAX_LAYERS:
        raise ConfigError(f"field '{f.name('layers_block_type')}' has unknown block types {bad}")
    return "".join(codes[t] for t in types)
