"""Plausibility limits of a parsed config (anything outside is a broken or hostile upload, not a model),
the errors config parsing raises, and the same limits for an Architecture read some other way."""

from __future__ import annotations

from llmcap.model.architecture import Architecture


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
