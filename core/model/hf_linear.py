"""Linear-attention layers with a constant state per sequence: Gated DeltaNet (Qwen3-Next, Qwen3.5) and
Mamba-2 (Nemotron-H); parameters per layer and state elements per sequence (llmcap.model.hfconfig)."""

from __future__ import annotations

from llmcap.model.hf_fields import _Fields
from llmcap.model.hf_limits import MAX_HEAD_DIM, MAX_HEADS
from llmcap.model.hf_shape import _Shape

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
