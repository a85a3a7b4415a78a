"""Tests for llmcap.model.hfconfig: catalog models against published parameter counts, hand-checked shapes,
and rejection of bad uploads.

The published figures live in each catalogs/models/<org>/<name>/model.yaml (`params_total_b`,
`params_active_b`, with `source`); nothing here derives them from the parser.
"""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmcap.catalog.schema import ModelMeta
from llmcap.model.architecture import Architecture
from llmcap.model.hf_limits import ConfigError
from llmcap.model.hfconfig import parse_config

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "catalogs" / "models"
REFERENCE = ROOT.parent / "shared" / "reference" / "hf_configs"
if not REFERENCE.is_dir():
    REFERENCE = Path("/work/shared/reference/hf_configs")

TOLERANCE = 0.02

# Published active counts that leave out parts `Architecture.params_active` includes.
# model id -> (parts to subtract from params_active, why and where it is documented)
ACTIVE_EXCLUDES: dict[str, tuple[tuple[str, ...], str]] = {
    "openai/gpt-oss-20b": (
        ("embedding",),
        "gpt-oss model card (arXiv:2508.10925): active parameters count the unembedding but not the embedding "
        "table (a lookup): 3.6B = 4.19B - 0.58B embedding.",
    ),
    "openai/gpt-oss-120b": (
        ("embedding",),
        "gpt-oss model card (arXiv:2508.10925), same convention: 5.1B = 5.71B - 0.58B embedding.",
    ),
    "MiniMaxAI/MiniMax-M2.5": (
        ("embedding", "lm_head"),
        "MiniMax's 9.8B activated equals the computed 11.03B minus the embedding and output matrices "
        "(2 x 200064 x 3072 = 1.23B); MiniMax publishes no breakdown, the adjustment is inferred from the figure.",
    ),
    "zai-org/GLM-5": (
        ("embedding", "lm_head"),
        "GLM-5 report (arXiv:2602.15763) 40B activated equals the computed 41.79B minus the embedding and output "
        "matrices (2 x 154880 x 6144 = 1.90B); no breakdown is published, the adjustment is inferred from the figure.",
    ),
    "MiniMaxAI/MiniMax-M3": (
        ("embedding", "lm_head"),
        "MiniMax-M3 card '~23B activated' equals the computed 25.74B minus the embedding and output matrices "
        "(2 x 200064 x 6144 = 2.46B), as for MiniMax-M2.5; inferred from the figure, no breakdown published.",
    ),
    "nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-FP8": (
        ("embedding",),
        "NVIDIA's '12B active' equals the computed 12.77B minus the input embedding table (a lookup, "
        "131072 x 4096 = 0.54B), the gpt-oss convention; inferred from the figure, no breakdown published.",
    ),
    "Qwen/Qwen3-Next-80B-A3B-Thinking": (
        ("embedding", "lm_head"),
        "Qwen's '3B activated' (= 'A3B') is below the computed 3.87B by about the embedding and output matrices "
        "(2 x 151936 x 2048 = 0.62B): 3.25B without them; inferred, checked to the nominal figure (NOMINAL_ACTIVE).",
    ),
}

# Published activated counts that are only the nominal size in the model name (one significant digit
# or a round number); they are checked to half a unit of their last digit instead of 2%.
NOMINAL_ACTIVE: dict[str, tuple[float, str]] = {
    "Qwen/Qwen3.5-35B-A3B": (0.5, "model card: '3B activated' (= 'A3B'); computed 3.46B including embeddings"),
    "Qwen/Qwen3.5-122B-A10B": (0.5, "model card: '10B activated' (= 'A10B'); computed 9.77B"),
    "Qwen/Qwen3.5-397B-A17B": (0.5, "model card: '17B activated' (= 'A17B'); computed 17.35B"),
    "Qwen/Qwen3-Next-80B-A3B-Thinking": (
        0.5,
        "model card: '80B in total and 3B activated' (= 'A3B'); computed 3.25B without embedding and output matrices",
    ),
}


def _model_dirs() -> list[Path]:
    return sorted(p.parent for p in MODELS.glob("*/*/model.yaml"))


def _load(model_dir: Path) -> tuple[ModelMeta, Architecture]:
    meta = ModelMeta.model_validate(yaml.safe_load((model_dir / "model.yaml").read_text(encoding="utf-8")))
    arch = parse_config(json.loads((model_dir / "config.json").read_text(encoding="utf-8")))
    return meta, arch


def _catalog_config(model_id: str) -> dict:
    return json.loads((MODELS / model_id / "config.json").read_text(encoding="utf-8"))


def _close(computed: float, published: float, tolerance: float = TOLERANCE) -> bool:
    return abs(computed / published - 1) <= tolerance


# -- every catalog model against its published counts ------------------------------------------------


def test_catalog_has_the_required_models():
    required = [
        "meta-llama/Llama-2-7b-hf",
        "meta-llama/Llama-2-70b-hf",
        "meta-llama/Meta-Llama-3-8B",
        "meta-llama/Meta-Llama-3-70B",
        "meta-llama/Llama-3.1-8B-Instruct",
        "meta-llama/Llama-3.1-70B-Instruct",
        "meta-llama/Llama-3.1-405B-Instruct",
        "meta-llama/Llama-3.3-70B-Instruct",
        "meta-llama/Llama-3.2-1B-Instruct",
        "meta-llama/Llama-3.2-3B-Instruct",
        "meta-llama/Llama-4-Scout-17B-16E-Instruct",
        "meta-llama/Llama-4-Maverick-17B-128E-Instruct",
        "Qwen/Qwen2.5-7B-Instruct",
        "Qwen/Qwen2.5-72B-Instruct",
        "Qwen/Qwen3-0.6B",
        "Qwen/Qwen3-1.7B",
        "Qwen/Qwen3-4B",
        "Qwen/Qwen3-8B",
        "Qwen/Qwen3-14B",
        "Qwen/Qwen3-32B",
        "Qwen/Qwen3-30B-A3B",
        "Qwen/Qwen3-235B-A22B",
        "Qwen/Qwen3.5-35B-A3B",
        "Qwen/Qwen3.5-397B-A17B",
        "mistralai/Mistral-7B-Instruct-v0.3",
        "mistralai/Mixtral-8x7B-v0.1",
        "mistralai/Mixtral-8x22B-v0.1",
        "deepseek-ai/DeepSeek-V3",
        "deepseek-ai/DeepSeek-V3.1",
        "deepseek-ai/DeepSeek-R1",
        "google/gemma-2-9b-it",
        "google/gemma-2-27b-it",
        "google/gemma-3-27b-it",
        "microsoft/phi-4",
        "microsoft/Phi-3.5-mini-instruct",
        "openai/gpt-oss-20b",
        "openai/gpt-oss-120b",
        "moonshotai/Kimi-K2-Instruct",
        "moonshotai/Kimi-K2.5",
        "MiniMaxAI/MiniMax-M2.5",
        "zai-org/GLM-5",
        "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
        "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16",
    ]
    present = {f"{d.parent.name}/{d.name}" for d in _model_dirs()}
    assert not set(required) - present


def test_catalog_has_at_least_100_architectures():
    """Issue 13 item 4: at least 100 catalog architectures (checkpoints and aliases do not count)."""
    assert len(_model_dirs()) >= 100


@pytest.mark.parametrize("model_dir", _model_dirs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_total_params_match_published(model_dir: Path):
    meta, arch = _load(model_dir)
    assert meta.id == f"{model_dir.parent.name}/{model_dir.name}"
    computed = arch.params_total / 1e9
    assert _close(computed, meta.params_total_b), (
        f"{meta.id}: computed {computed:.3f}B vs published {meta.params_total_b}B ({meta.source})"
    )


@pytest.mark.parametrize("model_dir", _model_dirs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_active_params_match_published(model_dir: Path):
    meta, arch = _load(model_dir)
    if arch.moe is not None:
        assert meta.params_active_b is not None, f"{meta.id}: MoE model without a published active count"
    if meta.params_active_b is None:
        return
    active = arch.params_active
    excluded, _why = ACTIVE_EXCLUDES.get(meta.id, ((), ""))
    if "embedding" in excluded:
        active -= arch.params_embedding
    if "lm_head" in excluded:
        active -= arch.params_lm_head or arch.params_embedding
    computed = active / 1e9
    if meta.id in NOMINAL_ACTIVE:
        half_unit, _why = NOMINAL_ACTIVE[meta.id]
        assert abs(computed - meta.params_active_b) <= half_unit, f"{meta.id}: computed active {computed:.3f}B"
    else:
        assert _close(computed, meta.params_active_b), (
            f"{meta.id}: computed active {computed:.3f}B vs published {meta.params_active_b}B ({meta.source})"
        )


def test_adjusted_models_say_so_in_their_notes():
    for model_id in [*ACTIVE_EXCLUDES, *NOMINAL_ACTIVE]:
        meta, _ = _load(MODELS / model_id)
        assert "test_hfconfig" in meta.notes, model_id


# "owner/repo path/to/file ... @<commit> (verbatim ...)": where a config outside shared/reference was copied from
# (a JSON file, a Python dict or JSON string in code, or a JSON block quoted in a Markdown file)
REPOSITORY_COPY = re.compile(r"^[\w.-]+/[\w.-]+ \S+\.(json|py|md)\b.* @[0-9a-f]{40}\s+\(verbatim\b", re.S)


@pytest.mark.parametrize("model_dir", _model_dirs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_catalog_config_is_a_verbatim_reference_copy(model_dir: Path):
    meta = ModelMeta.model_validate(yaml.safe_load((model_dir / "model.yaml").read_text(encoding="utf-8")))
    if meta.config_source.startswith("RECONSTRUCTED"):
        assert meta.estimated, "a reconstructed config must list the values it chose"
        return
    if REPOSITORY_COPY.match(meta.config_source):
        return  # a verbatim copy from a named public repository at a pinned commit (no local copy to compare)
    assert meta.config_source.startswith("shared/reference/hf_configs/")
    if not REFERENCE.is_dir():
        pytest.skip("shared reference folder not available")
    name = meta.config_source.split()[0].rsplit("/", 1)[1]
    assert (model_dir / "config.json").read_bytes() == (REFERENCE / name).read_bytes()


def test_aliases_name_one_entry_each():
    owner: dict[str, str] = {}
    for model_dir in _model_dirs():
        meta, _ = _load(model_dir)
        for name in [meta.id, *meta.aliases]:
            assert owner.setdefault(name.lower(), meta.id) == meta.id, (
                f"{name} names {owner[name.lower()]} and {meta.id}"
            )


# -- hand-checked shapes --------------------------------------------------------------------------------------


def test_llama_31_8b_by_hand():
    a = parse_config(_catalog_config("meta-llama/Llama-3.1-8B-Instruct"))
    assert (a.num_layers, a.num_heads, a.num_kv_heads, a.head_dim, a.v_head_dim) == (32, 32, 8, 128, 128)
    assert a.kv_elems_per_token_per_layer == 8 * (128 + 128) == 2048
    assert a.params_embedding == a.params_lm_head == 128256 * 4096
    assert not a.tie_embeddings and a.max_context == 131072
    assert (a.n_full_attn_layers, a.n_sliding_layers, a.n_linear_layers) == (32, 0, 0)
    assert a.moe is None and a.n_dense_mlp_layers == 32 and a.dense_intermediate_size == 14336
    attention = 4096 * (4096 + 1024 + 1024) + 4096 * 4096 + 4096  # q, k, v, o and the input norm
    mlp = 3 * 4096 * 14336
    assert a.params_attention == 32 * attention
    assert a.params_dense_mlp == 32 * mlp
    assert a.params_other == 4096 * (1 + 32)  # final norm + post-attention norms
    assert a.params_total == 8_030_261_248  # the Hub's exact safetensors count


@pytest.mark.parametrize(
    ("model_id", "exact"),
    [
        ("meta-llama/Llama-2-7b-hf", 6_738_415_616),
        ("mistralai/Mistral-7B-Instruct-v0.3", 7_248_023_552),
        ("mistralai/Mixtral-8x7B-v0.1", 46_702_792_704),
        ("Qwen/Qwen2.5-7B-Instruct", 7_615_616_512),  # includes the q/k/v biases
        ("google/gemma-2-9b-it", 917_504_000 + 8_324_201_984),  # report's non-embedding + 256000 x 3584 tied
    ],
)
def test_exact_counts_of_dense_and_simple_moe_models(model_id: str, exact: int):
    """Exact safetensors counts (Hub model pages / Gemma 2 report Table 2) pin biases and norms down."""
    assert parse_config(_catalog_config(model_id)).params_total == exact


def test_deepseek_v3_by_hand():
    a = parse_config(_catalog_config("deepseek-ai/DeepSeek-V3"))
    assert a.num_layers == 61  # the MTP layer is not a decoder layer
    assert a.mla is not None
    assert (a.mla.kv_lora_rank, a.mla.qk_rope_head_dim, a.mla.q_lora_rank) == (512, 64, 1536)
    assert (a.mla.qk_nope_head_dim, a.mla.v_head_dim, a.head_dim) == (128, 128, 192)
    assert a.kv_elems_per_token_per_layer == 512 + 64
    assert (a.n_dense_mlp_layers, a.n_moe_layers, a.dense_intermediate_size) == (3, 58, 18432)
    m = a.moe
    assert m is not None
    assert (m.num_experts, m.top_k, m.num_shared_experts, m.expert_intermediate_size) == (256, 8, 1, 2048)
    assert m.params_per_expert == 3 * 7168 * 2048
    assert m.params_shared_per_layer == 3 * 7168 * 2048
    assert m.params_router_per_layer == 256 * 7168 + 256  # gate + e_score_correction_bias
    mla = (7168 * 1536 + 1536 + 1536 * 128 * 192) + (7168 * 576 + 512 + 512 * 128 * 256) + 128 * 128 * 7168 + 7168
    assert a.params_attention == 61 * mla


def test_mtp_layers_are_not_counted():
    cfg = _catalog_config("deepseek-ai/DeepSeek-V3")
    more_mtp = {**cfg, "num_nextn_predict_layers": 3}
    assert parse_config(more_mtp) == parse_config(cfg)
    qwen = _catalog_config("Qwen/Qwen3.5-35B-A3B")
    qwen_more = copy.deepcopy(qwen)
    qwen_more["text_config"]["mtp_num_hidden_layers"] = 4
    assert parse_config(qwen_more) == parse_config(qwen)


def test_gemma2_alternates_sliding_and_global():
    a = parse_config(_catalog_config("google/gemma-2-9b-it"))
    assert (a.n_sliding_layers, a.n_full_attn_layers, a.sliding_window) == (21, 21, 4096)
    assert a.head_dim == 256 and a.kv_elems_per_token_per_layer == 8 * 512
    assert a.tie_embeddings and a.params_lm_head == 0


def test_gemma3_five_local_one_global():
    a = parse_config(_catalog_config("google/gemma-3-27b-it"))
    assert (a.num_layers, a.n_sliding_layers, a.n_full_attn_layers, a.sliding_window) == (62, 52, 10, 1024)
    assert a.max_context == 131072 and a.tie_embeddings


def test_gemma3_published_layout_relies_on_transformers_defaults():
    cfg = _catalog_config("google/gemma-3-27b-it")
    for key in ("vocab_size", "max_position_embeddings", "sliding_window_pattern"):
        del cfg["text_config"][key]  # the Hub file leaves these out
    assert parse_config(cfg) == parse_config(_catalog_config("google/gemma-3-27b-it"))


def test_qwen35_hybrid_linear_attention():
    a = parse_config(_catalog_config("Qwen/Qwen3.5-35B-A3B"))
    assert (a.num_layers, a.n_linear_layers, a.n_full_attn_layers, a.n_sliding_layers) == (40, 30, 10, 0)
    # recurrent state v_heads x k_dim x v_dim + conv window (2 x 16 x 128 + 32 x 128) x (4 - 1)
    assert a.linear_state_elems_per_layer == 32 * 128 * 128 + 8192 * 3
    assert a.kv_elems_per_token_per_layer == 2 * (256 + 256)
    assert not a.tie_embeddings  # from the wrapper's tie_word_embeddings
    m = a.moe
    assert m is not None and (m.num_experts, m.top_k, m.num_shared_experts) == (256, 8, 1)
    assert a.n_moe_layers == 40 and a.n_dense_mlp_layers == 0
    full = 2048 * (16 * 256 * 2 + 2 * 2 * 256) + 16 * 256 * 2048 + 2 * 256 + 2048  # gated q, k, v, o, qk-norm, norm
    assert a.params_attention == 10 * full


def test_nemotron_h_blocks_map_to_layers():
    a = parse_config(_catalog_config("nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16"))
    # 52 blocks: 23 M + 6 * + 23 E -> 29 mixer layers; the 23 MoE blocks are their MLPs
    assert (a.num_layers, a.n_linear_layers, a.n_full_attn_layers) == (29, 23, 6)
    assert (a.n_moe_layers, a.n_dense_mlp_layers) == (23, 0)
    assert a.linear_state_elems_per_layer == 64 * 64 * 128 + (4096 + 2 * 8 * 128) * 3
    assert a.kv_elems_per_token_per_layer == 2 * 256
    m = a.moe
    assert m is not None and (m.num_experts, m.top_k) == (128, 6)
    assert m.params_per_expert == 2 * 2688 * 1856  # relu2: up and down only
    dense = parse_config(_catalog_config("nvidia/Nemotron-H-56B-Base-8K"))
    assert (dense.num_layers, dense.n_linear_layers, dense.n_full_attn_layers) == (64, 54, 10)
    assert (dense.n_dense_mlp_layers, dense.dense_intermediate_size) == (54, 32768)


def test_qwen3_next_hybrid_layout_by_hand():
    a = parse_config(_catalog_config("Qwen/Qwen3-Next-80B-A3B-Thinking"))
    # full_attention_interval 4: every 4th of 48 layers is gated softmax attention, the other 36 Gated DeltaNet
    assert (a.num_layers, a.n_linear_layers, a.n_full_attn_layers, a.n_sliding_layers) == (48, 36, 12, 0)
    assert a.kv_elems_per_token_per_layer == 2 * (256 + 256)
    # recurrent state 32 v-heads x 128 x 128 + conv window (2 x 16 x 128 + 32 x 128) x (4 - 1)
    assert a.linear_state_elems_per_layer == 32 * 128 * 128 + (2 * 16 * 128 + 32 * 128) * 3
    m = a.moe
    assert m is not None and (m.num_experts, m.top_k, m.num_shared_experts) == (512, 10, 1)
    assert m.expert_intermediate_size == 512 and a.n_moe_layers == 48


def test_phi3_window_shorter_than_the_context_is_sliding():
    short = parse_config(_catalog_config("microsoft/Phi-3-mini-4k-instruct"))
    assert (short.n_sliding_layers, short.sliding_window, short.max_context) == (32, 2047, 4096)
    long = parse_config(_catalog_config("microsoft/Phi-3-mini-128k-instruct"))
    assert (long.n_sliding_layers, long.n_full_attn_layers, long.max_context) == (0, 32, 131072)
    assert long.params_total == short.params_total  # same weights; only RoPE scaling and the window differ


def test_llama4_chunked_attention_and_interleaved_moe():
    scout = parse_config(_catalog_config("meta-llama/Llama-4-Scout-17B-16E-Instruct"))
    assert (scout.n_sliding_layers, scout.n_full_attn_layers, scout.sliding_window) == (36, 12, 8192)
    assert (scout.n_moe_layers, scout.n_dense_mlp_layers) == (48, 0)
    assert scout.moe is not None and scout.moe.num_shared_experts == 1 and scout.moe.top_k == 1
    maverick = parse_config(_catalog_config("meta-llama/Llama-4-Maverick-17B-128E-Instruct"))
    assert (maverick.n_moe_layers, maverick.n_dense_mlp_layers, maverick.dense_intermediate_size) == (24, 24, 16384)


def test_gpt_oss_layer_types_and_biases():
    a = parse_config(_catalog_config("openai/gpt-oss-20b"))
    assert (a.n_sliding_layers, a.n_full_attn_layers, a.sliding_window) == (12, 12, 128)
    assert a.moe is not None
    assert a.moe.params_per_expert == 2880 * 5760 + 5760 + 2880 * 2880 + 2880  # gate_up and down, with biases
    assert a.params_total == 20_914_757_184


def test_glm5_dsa_indexer_keys_join_the_cache():
    a = parse_config(_catalog_config("zai-org/GLM-5"))
    assert a.kv_elems_per_token_per_layer == 512 + 64 + 128
    assert (a.num_layers, a.n_dense_mlp_layers, a.n_moe_layers) == (78, 3, 75)


def test_mha_gqa_mqa():
    base = _catalog_config("TinyLlama/TinyLlama-1.1B-Chat-v1.0")
    assert parse_config(base).num_kv_heads == 4
    mha = {k: v for k, v in base.items() if k != "num_key_value_heads"}
    assert parse_config(mha).num_kv_heads == 32
    assert parse_config({**base, "num_key_value_heads": 1}).kv_elems_per_token_per_layer == 2 * 64


def test_yarn_rope_scaling_raises_the_context():
    cfg = _catalog_config("Qwen/Qwen3-8B")
    assert parse_config(cfg).max_context == 40960
    yarn = {**cfg, "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}}
    assert parse_config(yarn).max_context == 131072


def test_text_config_wrapper_parses_like_its_inner_config():
    inner = _catalog_config("meta-llama/Llama-3.1-8B-Instruct")
    wrapped = {
        "architectures": ["LlavaForConditionalGeneration"],
        "model_type": "llava",
        "text_config": inner,
        "vision_config": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16},
    }
    assert parse_config(wrapped) == parse_config(inner)
    qwen = _catalog_config("Qwen/Qwen3.5-35B-A3B")
    unwrapped = {**qwen["text_config"], "tie_word_embeddings": qwen["tie_word_embeddings"]}
    assert parse_config(unwrapped) == parse_config(qwen)


# -- bad input ------------------------------------------------------------------------------------------------


def _llama() -> dict:
    return _catalog_config("meta-llama/Llama-3.1-8B-Instruct")


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda c: c.pop("hidden_size"), "hidden_size"),
        (lambda c: c.pop("num_hidden_layers"), "num_hidden_layers"),
        (lambda c: c.pop("vocab_size"), "vocab_size"),
        (lambda c: c.update(num_hidden_layers=-4), "num_hidden_layers"),
        (lambda c: c.update(num_hidden_layers=0), "num_hidden_layers"),
        (lambda c: c.update(num_hidden_layers=1_000_000_000), "num_hidden_layers"),
        (lambda c: c.update(hidden_size=2_000_000), "hidden_size"),
        (lambda c: c.update(hidden_size="4096"), "hidden_size"),
        (lambda c: c.update(num_attention_heads=True), "num_attention_heads"),
        (lambda c: c.update(intermediate_size=14336.5), "intermediate_size"),
        (lambda c: c.update(intermediate_size=float("nan")), "intermediate_size"),
        (lambda c: c.update(vocab_size=[128256]), "vocab_size"),
        (lambda c: c.update(num_key_value_heads=64), "num_key_value_heads"),
        (lambda c: c.update(tie_word_embeddings="false"), "tie_word_embeddings"),
        (lambda c: c.update(max_position_embeddings=0), "max_position_embeddings"),
        (lambda c: c.update(rope_scaling="yarn"), "rope_scaling"),
        (lambda c: (c.pop("head_dim", None), c.update(hidden_size=4097)), "head_dim"),
        (lambda c: c.update(layer_types=["full_attention"] * 3), "layer_types"),
        (lambda c: c.update(layer_types=["weird_attention"] * 32), "layer_types"),
        (lambda c: c.update(layer_types=["sliding_attention"] * 32), "sliding_window"),
        (lambda c: c.update(num_local_experts=8, num_experts_per_tok=9), "num_experts_per_tok"),
        (lambda c: c.update(num_local_experts=8), "num_experts_per_tok"),
        (lambda c: c.update(text_config=[1, 2]), "text_config"),
        (lambda c: c.update(hybrid_override_pattern="MX*"), "hybrid_override_pattern"),
        (lambda c: c.update(hybrid_override_pattern="M--" * 10 + "M-"), "hybrid_override_pattern"),
        (lambda c: c.update(is_encoder_decoder=True), "is_encoder_decoder"),
    ],
)
def test_bad_fields_raise_config_error_naming_the_field(mutate, field: str):
    cfg = _llama()
    mutate(cfg)
    with pytest.raises(ConfigError, match=field):
        parse_config(cfg)


@pytest.mark.parametrize("value", [None, [], "config", 42, 3.5, ["hidden_size", 4096], b"{}"])
def test_not_a_dict_raises_config_error(value):
    with pytest.raises(ConfigError, match="JSON object"):
        parse_config(value)


def test_wrapped_errors_name_the_text_config_field():
    cfg = {"model_type": "gemma3", "text_config": {**_llama(), "hidden_size": -1}}
    with pytest.raises(ConfigError, match=r"text_config\.hidden_size"):
        parse_config(cfg)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(min_value=-3, max_value=300), max_size=4),
    st.dictionaries(st.text(max_size=6), st.integers(), max_size=3),
)
_FUZZ_BASES = [
    "meta-llama/Llama-3.1-8B-Instruct",
    "deepseek-ai/DeepSeek-V3",
    "Qwen/Qwen3.5-35B-A3B",
    "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16",
    "openai/gpt-oss-20b",
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct",
    "google/gemma-3-27b-it",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(_FUZZ_BASES), data=st.data())
def test_mangled_configs_parse_or_raise_config_error(base: str, data):
    cfg = _catalog_config(base)
    target = cfg.get("text_config", cfg)
    keys = sorted(target)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        key = data.draw(st.sampled_from(keys))
        if data.draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = data.draw(_JUNK)
    try:
        arch = parse_config(cfg)
    except ConfigError:
        return
    assert isinstance(arch, Architecture) and arch.params_total > 0


def test_every_reference_config_parses_or_raises_config_error():
    if not REFERENCE.is_dir():
        pytest.skip("shared reference folder not available")
    for path in sorted(REFERENCE.glob("*.json")):
        try:
            arch = parse_config(json.loads(path.read_text(encoding="utf-8")))
        except ConfigError:
            continue
        assert arch.params_total > 0 and math.isfinite(arch.params_active), path.name
