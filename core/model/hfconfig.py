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

import math
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from llmcap.io.safejson import load_json
from llmcap.model.architecture import MLA, Architecture, MoE

__all__ = ["ConfigError", "ConfigJsonError", "check_architecture", "parse_config", "parse_config_bytes"]


class ConfigError(ValueError):
    """A config.json that cannot describe a decoder-only language model; the message names the field."""


class ConfigJsonError(ConfigError):
    """An uploaded config.json that is not usable JSON at all (too large, not UTF-8, malformed, hostile)."""


# -- limits: anything outside is a broken or hostile upload, not a model --------------------

MAX_LAYERS = 10_000
MAX_HIDDEN = 1_000_000
MAX_HEADS = 100_000
MAX_HEAD_DIM = 65_536
MAX_VOCAB = 50_000_000
MAX_INTERMEDIATE = 10_000_000
MAX_EXPERTS = 100_000
MAX_CONTEXT = 2**31
MAX_PARAMS = 10**15
MAX_CONFIG_BYTES = 5_000_000  # the largest Hub config.json seen is ~30 kB

_WRAPPER_KEYS = ("text_config", "llm_config", "language_config")
_SUBMODEL_KEYS = (*_WRAPPER_KEYS, "vision_config", "audio_config", "vision_tower_config", "speech_config")

# Model types whose transformers config class ties input and output embeddings by default.
_TIED_BY_DEFAULT = {"gemma", "gemma2", "gemma3", "gemma3_text", "gemma4", "gemma4_text", "gpt2", "opt", "bloom"}

# Defaults that published Hub files rely on (transformers' config class defaults).
_TYPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "gemma3_text": {"vocab_size": 262_208, "max_position_embeddings": 131_072, "sliding_window_pattern": 6},
}

# Model types whose MLP (and experts) is up/down only, no gate.
_NON_GATED_TYPES = {
    "gpt2", "gpt_neox", "gptj", "gpt_bigcode", "phi", "falcon", "starcoder2", "bloom", "opt", "nemotron", "nemotron_h",
}  # fmt: skip
_NON_GATED_ACTS = {"relu2", "squared_relu"}

# Model types whose q/k/v projections carry a bias although the config has no flag for it.
_QKV_BIAS_TYPES = {"qwen2", "qwen2_moe", "qwen2_vl", "qwen2_5_vl", "qwen2_vl_text", "qwen2_5_vl_text"}

_LAYER_KINDS = {
    "full_attention": "full",
    "attention": "full",
    "global": "full",
    "global_attention": "full",
    "sliding_attention": "sliding",
    "sliding_window_attention": "sliding",
    "local": "sliding",
    "local_attention": "sliding",
    "chunked_attention": "chunked",
    "linear_attention": "linear",
    "mamba": "linear",
}

_MISSING = object()


# -- reading fields --------------------------------------------------------------------------


class _Fields:
    """Typed, range-checked reads from one config dict; every error names the field."""

    def __init__(self, data: dict[str, Any], prefixes: dict[str, str] | None = None):
        self.data = data
        self.prefixes = prefixes or {}
        self.model_type = self.text("model_type", "")

    def name(self, key: str) -> str:
        """The field as the user wrote it (`text_config.hidden_size` for wrapped configs)."""
        return self.prefixes.get(key, "") + key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def first_key(self, keys: tuple[str, ...]) -> str | None:
        return next((k for k in keys if self.has(k)), None)

    def raw(self, key: str, default: Any = None) -> Any:
        value = self.data.get(key)
        return default if value is None else value

    def integer(
        self, keys: str | tuple[str, ...], default: Any = _MISSING, *, lo: int = 1, hi: int = MAX_HIDDEN
    ) -> int:
        """An integer from the first present key; integral floats are accepted, bools and strings are not."""
        keys = (keys,) if isinstance(keys, str) else keys
        key = self.first_key(keys)
        if key is None:
            if default is _MISSING:
                raise ConfigError(f"missing required field '{self.name(keys[0])}'")
            return default
        return self._check_int(key, self.data[key], lo, hi)

    def _check_int(self, key: str, value: Any, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"field '{self.name(key)}' must be an integer, got {type(value).__name__} {value!r:.40}")
        if isinstance(value, float):
            if not math.isfinite(value) or not value.is_integer():
                raise ConfigError(f"field '{self.name(key)}' must be an integer, got {value!r}")
            value = int(value)
        if not lo <= value <= hi:
            raise ConfigError(f"field '{self.name(key)}' = {value} is outside the plausible range [{lo}, {hi}]")
        return value

    def number(self, key: str, default: float, *, lo: float = 0.0, hi: float = 1e9) -> float:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"field '{self.name(key)}' must be a number, got {value!r:.40}")
        if not lo <= value <= hi:
            raise ConfigError(f"field '{self.name(key)}' = {value} is outside the plausible range [{lo}, {hi}]")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(f"field '{self.name(key)}' must be true or false, got {value!r:.40}")
        return value

    def text(self, key: str, default: str) -> str:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise ConfigError(f"field '{self.name(key)}' must be a string, got {type(value).__name__}")
        return value

    def items(self, key: str, length: int | None = None) -> list[Any] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise ConfigError(f"field '{self.name(key)}' must be a list, got {type(value).__name__}")
        if length is not None and len(value) != length:
            raise ConfigError(f"field '{self.name(key)}' has {len(value)} entries, expected {length} (one per layer)")
        return value

    def ints(self, key: str, *, lo: int = 0, hi: int = MAX_LAYERS, length: int | None = None) -> list[int] | None:
        items = self.items(key, length)
        if items is None:
            return None
        return [self._check_int(f"{key}[{i}]", v, lo, hi) for i, v in enumerate(items)]

    def obj(self, *keys: str) -> dict[str, Any]:
        """The first present sub-dict among `keys` (e.g. `rope_scaling`), or {}."""
        for key in keys:
            value = self.data.get(key)
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ConfigError(f"field '{self.name(key)}' must be an object, got {type(value).__name__}")
            return value
        return {}


def _language_fields(cfg: Any) -> _Fields:
    """The language-model part of a config: `text_config` (or similar) merged over the wrapper.

    Keys of the inner config win; wrapper keys (e.g. Qwen3.5's top-level
    `tie_word_embeddings`) fill what the inner config leaves out. Vision and audio
    sub-configs are dropped: only the language model is counted.
    """
    if not isinstance(cfg, dict):
        raise ConfigError(f"config must be a JSON object, got {type(cfg).__name__}")
    inner_key = next((k for k in _WRAPPER_KEYS if cfg.get(k) is not None), None)
    data = {k: v for k, v in cfg.items() if k not in _SUBMODEL_KEYS}
    prefixes: dict[str, str] = {}
    if inner_key is not None:
        inner = cfg[inner_key]
        if not isinstance(inner, dict):
            raise ConfigError(f"field '{inner_key}' must be an object, got {type(inner).__name__}")
        data.update(inner)
        prefixes = {k: f"{inner_key}." for k in inner}
    model_type = data.get("model_type")
    for key, value in _TYPE_DEFAULTS.get(model_type if isinstance(model_type, str) else "", {}).items():
        data.setdefault(key, value)
    return _Fields(data, prefixes)


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


# -- layer layout ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """How many layers of each kind. `layers` is the Architecture's num_layers."""

    layers: int
    full: int
    sliding: int
    linear: int
    sliding_window: int | None
    dense_mlp: int
    moe_mlp: int
    linear_kind: str | None  # "gated_deltanet" | "mamba2" | None
    blocks_with_own_norm: int = 0  # Nemotron-H MLP blocks (each has a pre-norm)


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


def _layout(f: _Fields, shape: _Shape, experts: int) -> _Layout:
    pattern = _block_pattern(f)
    if pattern is not None:
        return _hybrid_block_layout(f, shape, pattern, experts)
    kinds, window = _attention_kinds(f, shape)
    n = shape.num_layers
    moe_flags = _moe_layer_flags(f, n) if experts > 1 else [False] * n
    n_moe = sum(moe_flags)
    linear = kinds.count("linear")
    return _Layout(
        layers=n,
        full=kinds.count("full"),
        sliding=kinds.count("sliding"),
        linear=linear,
        sliding_window=window if kinds.count("sliding") else None,
        dense_mlp=n - n_moe,
        moe_mlp=n_moe,
        linear_kind="gated_deltanet" if linear else None,
    )


def _hybrid_block_layout(f: _Fields, shape: _Shape, pattern: str, experts: int) -> _Layout:
    """Nemotron-H: mixer blocks are the layers; MLP blocks are counted as their MLPs (see module doc)."""
    if len(pattern) != shape.num_layers:
        raise ConfigError(
            f"field '{f.name('hybrid_override_pattern')}' has {len(pattern)} blocks but "
            f"'{f.name('num_hidden_layers')}' is {shape.num_layers}"
        )
    mamba, attn, dense, moe = (pattern.count(c) for c in "M*-E")
    if moe and experts < 1:
        raise ConfigError(f"field '{f.name('hybrid_override_pattern')}' has MoE blocks (E) but no 'n_routed_experts'")
    if mamba + attn == 0:
        raise ConfigError(f"field '{f.name('hybrid_override_pattern')}' has no Mamba (M) or attention (*) block")
    if dense + moe > mamba + attn:
        raise ConfigError(
            f"field '{f.name('hybrid_override_pattern')}' has more MLP blocks ({dense + moe}) than token-mixer "
            f"blocks ({mamba + attn}); the Architecture model cannot express that layout"
        )
    return _Layout(
        layers=mamba + attn,
        full=attn,
        sliding=0,
        linear=mamba,
        sliding_window=None,
        dense_mlp=dense,
        moe_mlp=moe,
        linear_kind="mamba2" if mamba else None,
        blocks_with_own_norm=dense + moe,
    )


def _attention_kinds(f: _Fields, shape: _Shape) -> tuple[list[str], int | None]:
    """Per-layer token-mixer kind ('full', 'sliding', 'linear') and the sliding window."""
    n = shape.num_layers
    window = f.integer(("sliding_window", "sliding_window_size"), 0, lo=0, hi=MAX_CONTEXT)  # 0 = none
    chunk = f.integer("attention_chunk_size", 0, lo=0, hi=MAX_CONTEXT)
    types = f.items("layer_types", n)
    if types is not None:
        kinds = []
        for i, t in enumerate(types):
            if not isinstance(t, str) or t not in _LAYER_KINDS:
                raise ConfigError(f"field '{f.name('layer_types')}[{i}]' = {t!r:.40} is not a known layer type")
            kinds.append(_LAYER_KINDS[t])
        if "chunked" in kinds:
            if not chunk:
                raise ConfigError(f"chunked_attention layers need '{f.name('attention_chunk_size')}'")
            window = max(window, chunk)
            kinds = ["sliding" if k == "chunked" else k for k in kinds]
        if "sliding" in kinds and not window:
            raise ConfigError(f"sliding_attention layers need '{f.name('sliding_window')}'")
        return kinds, window or None
    pattern = f.ints("hybrid_layer_pattern", lo=0, hi=1, length=n)  # MiMo-V2: 1 = sliding-window layer
    if pattern is not None:
        if any(pattern) and not window:
            raise ConfigError(f"sliding layers in 'hybrid_layer_pattern' need '{f.name('sliding_window')}'")
        return ["sliding" if p else "full" for p in pattern], window or None
    if f.model_type.startswith("llama4") and chunk:
        return _llama4_kinds(f, n), chunk
    if f.has("full_attention_interval") and f.has("linear_num_value_heads"):
        every = f.integer("full_attention_interval", hi=MAX_LAYERS)
        return ["full" if (i + 1) % every == 0 else "linear" for i in range(n)], None
    if not window or window >= shape.max_context:
        return ["full"] * n, None
    if f.model_type.startswith("gemma2"):
        return ["sliding" if i % 2 == 0 else "full" for i in range(n)], window
    if f.has("sliding_window_pattern") or f.has("_sliding_window_pattern"):  # Gemma 3: every Nth layer is global
        every = f.integer(("sliding_window_pattern", "_sliding_window_pattern"), hi=MAX_LAYERS)
        return ["full" if (i + 1) % every == 0 else "sliding" for i in range(n)], window
    if not f.flag("use_sliding_window", True):
        return ["full"] * n, None
    if f.has("max_window_layers"):  # Qwen2: layers from max_window_layers on use the window
        first = f.integer("max_window_layers", lo=0, hi=MAX_LAYERS)
        return ["sliding" if i >= first else "full" for i in range(n)], window
    return ["sliding"] * n, window


def _llama4_kinds(f: _Fields, n: int) -> list[str]:
    """Llama 4: RoPE layers use chunked attention (counted as sliding); NoPE layers are global."""
    flags = f.ints("no_rope_layers", lo=0, hi=1)
    if flags is None or len(flags) != n:
        every = f.integer("no_rope_layer_interval", 4, hi=MAX_LAYERS)
        flags = [int((i + 1) % every != 0) for i in range(n)]  # 1 = uses RoPE (transformers' meaning)
    return ["sliding" if uses_rope else "full" for uses_rope in flags]


def _moe_layer_flags(f: _Fields, n: int) -> list[bool]:
    """Which decoder layers have a MoE block (the rest are dense)."""
    if f.has("moe_layers"):
        idx = set(f.ints("moe_layers", hi=n - 1) or [])
        return [i in idx for i in range(n)]
    if isinstance(f.raw("moe_layer_freq"), list):  # one 0/1 flag per layer (MiniMax-M3, MiMo-V2)
        return [bool(v) for v in f.ints("moe_layer_freq", lo=0, hi=1, length=n) or []]
    if f.has("first_k_dense_replace") or f.has("moe_layer_freq"):
        first = f.integer("first_k_dense_replace", 0, lo=0, hi=MAX_LAYERS)
        freq = f.integer("moe_layer_freq", 1, hi=MAX_LAYERS)
        return [i >= first and i % freq == 0 for i in range(n)]
    if f.has("interleave_moe_layer_step"):
        step = f.integer("interleave_moe_layer_step", hi=MAX_LAYERS)
        return [(i + 1) % step == 0 for i in range(n)]
    dense = set(f.ints("mlp_only_layers", hi=MAX_LAYERS) or [])
    step = f.integer("decoder_sparse_step", 1, hi=MAX_LAYERS)
    return [i not in dense and (i + 1) % step == 0 for i in range(n)]


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


# -- linear attention / Mamba ----------------------------------------------------------------------


def _gated_deltanet(f: _Fields, s: _Shape) -> tuple[int, int]:
    """(params per layer, state elements per sequence) of a Qwen3-Next / Qwen3.5 Gated DeltaNet layer."""
    k_heads = f.integer("linear_num_key_heads", hi=MAX_HEADS)
    v_heads = f.integer("linear_num_value_heads", hi=MAX_HEADS)
    k_dim = f.integer("linear_key_head_dim", hi=MAX_HEAD_DIM)
    v_dim = f.integer("linear_value_head_dim", hi=MAX_HEAD_DIM)
    kernel = f.integer("linear_conv_kernel_dim", 4, hi=1024)
    key, value = k_heads * k_dim, v_heads * v_dim
    conv_dim = 2 * key + value
    params = (
        s.hidden * (2 * key + 2 * value)  # q, k, v and the output gate z
        + s.hidden * 2 * v_heads  # beta and alpha (decay) projections
        + conv_dim * kernel  # depthwise causal conv, no bias
        + 2 * v_heads  # dt_bias, A_log
        + v_dim  # gated RMSNorm on the output
        + value * s.hidden  # out_proj
        + s.hidden  # the layer's input norm
    )
    state = v_heads * k_dim * v_dim + conv_dim * (kernel - 1)
    return params, state


def _mamba2(f: _Fields, s: _Shape) -> tuple[int, int]:
    """(params per layer, state elements per sequence) of a Mamba-2 mixer block (Nemotron-H)."""
    heads = f.integer("mamba_num_heads", hi=MAX_HEADS)
    head_dim = f.integer("mamba_head_dim", hi=MAX_HEAD_DIM)
    groups = f.integer(("n_groups", "mamba_n_groups"), 1, hi=MAX_HEADS)
    state_size = f.integer("ssm_state_size", hi=MAX_HEAD_DIM)
    kernel = f.integer(("conv_kernel", "mamba_d_conv"), 4, hi=1024)
    inner = heads * head_dim
    conv_dim = inner + 2 * groups * state_size
    proj_bias = f.flag("mamba_proj_bias", f.flag("use_bias", False))
    in_proj = s.hidden * (inner + conv_dim + heads) + (inner + conv_dim + heads if proj_bias else 0)
    conv = conv_dim * kernel + (conv_dim if f.flag("use_conv_bias", True) else 0)
    out_proj = inner * s.hidden + (s.hidden if proj_bias else 0)
    params = in_proj + conv + 3 * heads + inner + out_proj + s.hidden  # dt_bias, A_log, D; gated norm; block norm
    state = inner * state_size + conv_dim * (kernel - 1)
    return params, state


# -- MLP and experts -----------------------------------------------------------------------------------


def _is_gated(f: _Fields) -> bool:
    act = f.text("mlp_hidden_act", f.text("hidden_act", f.text("hidden_activation", "silu")))
    return f.model_type not in _NON_GATED_TYPES and act not in _NON_GATED_ACTS


def _mlp_params(hidden: int, inter: int, gated: bool, bias: bool) -> int:
    """One MLP: gate/up/down (gated) or up/down, with optional biases."""
    matrices = 3 if gated else 2
    params = matrices * hidden * inter
    if bias:
        params += (2 if gated else 1) * inter + hidden
    return params


def _num_experts(f: _Fields) -> int:
    return f.integer(
        ("n_routed_experts", "num_local_experts", "num_experts", "moe_num_experts", "n_experts"),
        0,
        lo=0,
        hi=MAX_EXPERTS,
    )


def _moe(f: _Fields, s: _Shape, experts: int, gated: bool) -> MoE:
    """Routed experts, shared experts and router of one MoE layer."""
    top_k = f.integer(
        ("num_experts_per_tok", "experts_per_token", "num_experts_per_token", "moe_top_k", "top_k_experts", "moe_k"),
        hi=MAX_EXPERTS,
    )
    if top_k > experts:
        raise ConfigError(f"field '{f.name('num_experts_per_tok')}' = {top_k} exceeds the {experts} experts")
    inter = f.integer(("moe_intermediate_size", "expert_intermediate_size", "intermediate_size"), hi=MAX_INTERMEDIATE)
    expert_bias = f.model_type == "gpt_oss" or f.flag("mlp_bias", False)
    latent = f.integer("moe_latent_size", 0, lo=0, hi=MAX_HIDDEN)
    # Latent MoE (Nemotron 3 Super/Ultra): routed experts work in a smaller latent width, entered
    # and left through two projections every token uses (counted with the shared parameters).
    per_expert = _mlp_params(latent or s.hidden, inter, gated, expert_bias)
    n_shared, shared = _shared_experts(f, s, inter, gated)
    shared += 2 * s.hidden * latent
    router = s.hidden * experts
    if (
        f.model_type in ("gpt_oss", "nemotron_h")
        or f.text("topk_method", "") == "noaux_tc"
        or f.flag("use_routing_bias", False)
        or f.flag("use_moe_router_bias", False)
    ):
        router += experts  # router bias or expert-score correction bias
    return MoE(
        num_experts=experts,
        top_k=top_k,
        num_shared_experts=n_shared,
        expert_intermediate_size=inter,
        params_per_expert=per_expert,
        params_shared_per_layer=shared,
        params_router_per_layer=router,
    )


def _shared_experts(f: _Fields, s: _Shape, expert_inter: int, gated: bool) -> tuple[int, int]:
    """(number of shared experts, their parameters in one layer)."""
    bias = f.flag("mlp_bias", False)
    if f.has("shared_expert_intermediate_size"):  # Qwen2-MoE / Qwen3-Next / Qwen3.5: one expert + sigmoid gate
        inter = f.integer("shared_expert_intermediate_size", lo=0, hi=MAX_INTERMEDIATE)
        return (1, _mlp_params(s.hidden, inter, gated, bias) + s.hidden) if inter else (0, 0)
    if f.has("moe_shared_expert_intermediate_size"):  # Nemotron-H: one MLP of this size
        inter = f.integer("moe_shared_expert_intermediate_size", lo=0, hi=MAX_INTERMEDIATE)
        count = f.integer("n_shared_experts", 1, lo=0, hi=MAX_EXPERTS)
        return (count, _mlp_params(s.hidden, inter, gated, bias)) if inter and count else (0, 0)
    if f.model_type.startswith("llama4"):  # one shared expert of the experts' size
        return 1, _mlp_params(s.hidden, expert_inter, gated, bias)
    count = f.integer(("n_shared_experts", "num_shared_experts"), 0, lo=0, hi=MAX_EXPERTS)
    if not count:
        return 0, 0
    inter = f.integer(("shared_intermediate_size", "share_expert_dim"), expert_inter, lo=0, hi=MAX_INTERMEDIATE)
    if not inter:
        return 0, 0
    return count, count * _mlp_params(s.hidden, inter, gated, bias)  # DeepSeek: one MLP of count x size


def _dense_intermediate(f: _Fields, has_moe: bool) -> int:
    """Intermediate size of the dense MLP layers (Llama 4 and MiniMax-M3 give it its own key)."""
    if has_moe and f.has("intermediate_size_mlp"):
        return f.integer("intermediate_size_mlp", hi=MAX_INTERMEDIATE)
    if has_moe and f.has("dense_intermediate_size"):
        return f.integer("dense_intermediate_size", hi=MAX_INTERMEDIATE)
    return f.integer(("intermediate_size", "ffn_dim", "n_inner", "ffn_hidden_size"), hi=MAX_INTERMEDIATE)


def _mlp_norms(f: _Fields) -> int:
    """Norm weight vectors per layer on the MLP side (Gemma 2/3: pre- and post-feedforward)."""
    return 2 if f.model_type.startswith(("gemma2", "gemma3")) else 1


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


# Upper limits of Architecture fields that did not come through parse_config (a scenario file's custom model).
_ARCH_LIMITS = {
    "num_layers": MAX_LAYERS,
    "hidden_size": MAX_HIDDEN,
    "vocab_size": MAX_VOCAB,
    "max_context": MAX_CONTEXT,
    "num_heads": MAX_HEADS,
    "num_kv_heads": MAX_HEADS,
    "head_dim": MAX_HEAD_DIM,
    "v_head_dim": MAX_HEAD_DIM,
    "sliding_window": MAX_CONTEXT,
    "dense_intermediate_size": MAX_INTERMEDIATE,
}
_MOE_LIMITS = {"num_experts": MAX_EXPERTS, "top_k": MAX_EXPERTS, "num_shared_experts": MAX_EXPERTS}


def check_architecture(arch: Architecture) -> Architecture:
    """The same plausibility limits parse_config applies, for an Architecture read some other way; ConfigError."""
    checks = [(k, getattr(arch, k), hi) for k, hi in _ARCH_LIMITS.items()]
    if arch.moe is not None:
        checks += [(f"moe.{k}", getattr(arch.moe, k), hi) for k, hi in _MOE_LIMITS.items()]
        checks.append(("moe.expert_intermediate_size", arch.moe.expert_intermediate_size, MAX_INTERMEDIATE))
    for name, value, hi in checks:
        if value is not None and value > hi:
            raise ConfigError(f"field '{name}' = {value:.4g} is outside the plausible range [1, {hi:,}]")
    counts = {k: v for k, v in arch.model_dump(exclude={"mla", "moe"}).items() if isinstance(v, int)}
    for part in ("moe", "mla"):
        sub = getattr(arch, part)
        if sub is not None:
            counts |= {f"{part}.{k}": v for k, v in sub.model_dump().items() if isinstance(v, int)}
    for name, value in counts.items():
        if value > MAX_PARAMS:
            raise ConfigError(f"field '{name}' = {value:.4g} is beyond any plausible model")
    if arch.params_total > MAX_PARAMS:
        raise ConfigError(f"the model has {arch.params_total:.3g} parameters, beyond any plausible model")
    return arch


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
