"""MLPs and experts: gated or plain MLPs, routed and shared experts, routers, latent MoE, and the dense
layers' intermediate size (llmcap.model.hfconfig)."""

from __future__ import annotations

from llmcap.model.architecture import MoE
from llmcap.model.hf_fields import _Fields
from llmcap.model.hf_limits import MAX_EXPERTS, MAX_HIDDEN, MAX_INTERMEDIATE, ConfigError
from llmcap.model.hf_shape import _Shape

# Model types whose MLP (and experts) is up/down only, no gate.
_NON_GATED_TYPES = {
    "gpt2", "gpt_neox", "gptj", "gpt_bigcode", "phi", "falcon", "starcoder2", "bloom", "opt", "nemotron", "nemotron_h",
}  # fmt: skip
_NON_GATED_ACTS = {"relu2", "squared_relu"}


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
