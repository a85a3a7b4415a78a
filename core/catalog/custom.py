"""A catalog extended with the user's own devices and models, so sweeps and estimates can use them by id."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from llmcap.catalog.loader import Catalog, CatalogModel, normalize_id
from llmcap.catalog.schema import Device, ModelMeta
from llmcap.model.architecture import Architecture

CUSTOM_SOURCE = "user input in the dashboard (not from the catalogs)"


def custom_model_entry(name: str, arch: Architecture) -> CatalogModel:
    """A catalog entry for an uploaded config.json: its parameter count is the one counted from the config."""
    meta = ModelMeta(
        id=name,
        display_name=name,
        family="custom",
        license="unknown",
        params_total_b=max(arch.params_total, 1) / 1e9,
        params_active_b=max(arch.params_active, 1) / 1e9 if arch.moe is not None else None,
        source=CUSTOM_SOURCE,
        config_source="uploaded config.json",
    )
    return CatalogModel(meta=meta, arch=arch, config_path=Path("<uploaded>"))


def with_custom(
    catalog: Catalog,
    devices: Mapping[str, Device] | None = None,
    models: Mapping[str, Architecture] | None = None,
    *,
    replace: bool = False,
) -> Catalog:
    """`catalog` plus custom entries: the one way the user's own devices and models (an uploaded config.json, a
    device form, `llmcap estimate --model-config`) reach the library. ValueError where a custom id already names a
    catalog entry, unless `replace` (a what-if copy of a catalog device under its own id)."""
    devices, models = devices or {}, models or {}
    if not devices and not models:
        return catalog
    taken_hw = [d.id for d in devices.values() if normalize_id(d.id) in catalog.hardware]
    taken_models = [n for n in models if n.strip().lower() in catalog.model_aliases]
    if (taken_hw or taken_models) and not replace:
        raise ValueError(f"custom entries reuse catalog ids: {', '.join(taken_hw + taken_models)}; rename them")
    entries = {name: custom_model_entry(name, arch) for name, arch in models.items()}
    return dataclasses.replace(
        catalog,
        hardware={**catalog.hardware, **{normalize_id(d.id): d for d in devices.values()}},
        models={**catalog.models, **entries},
        model_aliases={**catalog.model_aliases, **{n.lower(): n for n in entries}},
    )
