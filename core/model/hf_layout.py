"""Which layer is which kind: full, sliding-window (or chunked) and linear-attention token mixers, dense and
MoE MLPs, from `layer_types`, the hybrid patterns and the MoE placement keys (llmcap.model.hfconfig)."""

from __future__ import annotations

from dataclasses import dataclass

from llmcap.model.hf_fields import _Fields
from llmcap.model.hf_limits import MAX_CONTEXT, MAX_LAYERS, ConfigError
from llmcap.model.hf_shape import _block_pattern, _Shape

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
