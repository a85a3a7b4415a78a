"""The Scenario: everything one estimate needs, built alike from CLI flags, CSV rows, URLs or JSON."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from llmcap.catalog.loader import engine_ids
from llmcap.catalog.schema import Frozen

ENGINES = engine_ids()  # catalogs/engines.yaml, the only list of engines
MAX_TOKENS = 10_000_000
MAX_DEVICES = 4096


class Scenario(Frozen):
    """A model served on hardware with a layout, formats, engine, request shape and load."""

    model: str = Field(min_length=1, max_length=200)
    hardware: str = Field(min_length=1, max_length=100)
    tp: int = Field(default=1, ge=1, le=MAX_DEVICES)
    pp: int = Field(default=1, ge=1, le=MAX_DEVICES)
    ep: int = Field(default=1, ge=1, le=MAX_DEVICES)
    replicas: int = Field(default=1, ge=1, le=100_000)
    weight_format: str = Field(default="bf16", max_length=40)
    kv_format: str | None = Field(default=None, max_length=40)
    engine: str = Field(default="generic", max_length=40, description="an engine id of catalogs/engines.yaml")
    input_len: int = Field(default=1024, ge=1, le=MAX_TOKENS)
    output_len: int = Field(default=256, ge=1, le=MAX_TOKENS)
    concurrency: int | Literal["max"] = 1

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, engine: str) -> str:
        if engine not in ENGINES:
            raise ValueError(f"unknown engine '{engine}'; known: {', '.join(ENGINES)}")
        return engine

    @model_validator(mode="after")
    def _layout(self) -> Scenario:
        if isinstance(self.concurrency, int) and not 1 <= self.concurrency <= 1_000_000:
            raise ValueError("concurrency must be between 1 and 1,000,000 or 'max'")
        if self.ep > self.tp or self.tp % self.ep:
            raise ValueError(
                f"ep={self.ep} must divide tp={self.tp} (experts are split inside the tensor-parallel group)"
            )
        if self.tp * self.pp > MAX_DEVICES:
            raise ValueError(f"tp*pp = {self.tp * self.pp} devices per replica exceeds {MAX_DEVICES}")
        return self

    @property
    def devices_per_replica(self) -> int:
        return self.tp * self.pp

    @property
    def devices(self) -> int:
        return self.tp * self.pp * self.replicas


def validation_text(exc: ValidationError, whole: str = "value") -> str:
    """A pydantic error as one line, `field: message` per error (`whole` names an error of the whole object)."""
    return "; ".join(f"{'.'.join(str(x) for x in e['loc']) or whole}: {e['msg']}" for e in exc.errors())
