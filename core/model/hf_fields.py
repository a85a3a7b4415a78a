"""Typed, range-checked reads of config.json fields, and the language-model part of a wrapper config
(`text_config`, `llm_config`, `language_config`) with the model type's defaults (llmcap.model.hfconfig)."""

from __future__ import annotations

import math
from typing import Any

from llmcap.model.hf_limits import MAX_HIDDEN, MAX_LAYERS, ConfigError

_WRAPPER_KEYS = ("text_config", "llm_config", "language_config")
_SUBMODEL_KEYS = (*_WRAPPER_KEYS, "vision_config", "audio_config", "vision_tower_config", "speech_config")

# Defaults that published Hub files rely on (transformers' config class defaults).
_TYPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "gemma3_text": {"vocab_size": 262_208, "max_position_embeddings": 131_072, "sliding_window_pattern": 6},
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
