"""The catalog tables: which facts of each catalog entry are shown, under which column names.

One place decides this for every front end: `llmcap catalog list|show` prints these rows through
`llmcap.io.output.render`, and the dashboard's Catalog page shows them as DataFrames.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmcap.catalog.loader import (
    Catalog,
    CatalogModel,
    UnknownIdError,
    catalog_dir,
    normalize_id,
    suggest,
)
from llmcap.catalog.schema import MATH_TYPES, CloudOffering, Device, Format, Workload
from llmcap.model.architecture import Architecture

Row = dict[str, Any]


# -- tables ------------------------------------------------------------------------------


def attention_kind(arch: Architecture) -> str:
    """A short name for a model's attention: MLA, MHA, GQA, MQA, plus sliding or linear layers."""
    if arch.mla is not None:
        kind = "MLA"
    elif arch.num_kv_heads == arch.num_heads:
        kind = "MHA"
    elif arch.num_kv_heads == 1:
        kind = "MQA"
    else:
        kind = "GQA"
    if arch.n_sliding_layers:
        kind += " + sliding"
    if arch.n_linear_layers:
        kind += " + linear"
    return kind


def _peak_column(math: str) -> str:
    return f"{math}_tops" if math.startswith("int") else f"{math}_tflops"


def hardware_row(d: Device) -> Row:
    row: Row = {
        "id": d.id,
        "name": d.name,
        "vendor": d.vendor,
        "kind": d.kind,
        "memory_gb": d.memory_gb,
        "usable_memory_gb": d.usable_memory_gb,
        "mem_bw_gbps": d.mem_bw_gbps,
    }
    row |= {_peak_column(m): d.peak_tflops.get(m) for m in MATH_TYPES}
    row |= {
        "tdp_w": d.tdp_w,
        "scaleup": d.scaleup.name if d.scaleup else None,
        "scaleup_gbps_per_direction": d.scaleup.gbps_per_direction if d.scaleup else None,
        "scaleup_domain_devices": d.scaleup.domain_devices if d.scaleup else None,
        "scaleout_gbps": d.scaleout_gbps,
        "release_year": d.release_year,
        "list_price_usd": d.list_price_usd,
        "source": d.source,
    }
    return row


def model_row(m: CatalogModel) -> Row:
    meta, arch = m.meta, m.arch
    return {
        "id": meta.id,
        "display_name": meta.display_name,
        "family": meta.family,
        "release_date": meta.release_date.isoformat() if meta.release_date else None,
        "license": meta.license,
        "params_total_b": meta.params_total_b,
        "params_active_b": meta.params_active_b,
        "params_total_b_computed": round(arch.params_total / 1e9, 3),
        "params_active_b_computed": round(arch.params_active / 1e9, 3),
        "layers": arch.num_layers,
        "hidden": arch.hidden_size,
        "heads": arch.num_heads,
        "kv_heads": arch.num_kv_heads,
        "head_dim": arch.head_dim,
        "vocab": arch.vocab_size,
        "max_context": arch.max_context,
        "experts": arch.moe.num_experts if arch.moe else None,
        "top_k": arch.moe.top_k if arch.moe else None,
        "shared_experts": arch.moe.num_shared_experts if arch.moe else None,
        "attention": attention_kind(arch),
        "source": meta.source,
    }


def format_row(f: Format) -> Row:
    return {
        "id": f.id,
        "name": f.name,
        "weight_bits": f.weight_bits,
        "activation_bits": f.activation_bits,
        "math": f.math,
        "embedding_bits": f.embedding_bits,
        "applies_to": list(f.applies_to),
        "kv_default": f.kv_default,
        "engines": list(f.engines) if f.engines is not None else None,
        "source": f.source,
    }


def price_row(c: CloudOffering) -> Row:
    return {
        "id": c.id,
        "provider": c.provider,
        "instance": c.instance,
        "hardware": c.hardware,
        "devices_per_instance": c.devices_per_instance,
        "usd_per_hour": c.usd_per_hour,
        "usd_per_device_hour": c.usd_per_device_hour,
        "region": c.region,
        "date_seen": c.date_seen.isoformat() if c.date_seen else None,
        "superseded": c.superseded,
        "source": c.source,
    }


def workload_row(w: Workload) -> Row:
    return {
        "id": w.id,
        "name": w.name,
        "input_mean_tokens": w.input_tokens.mean,
        "input_family": w.input_tokens.family,
        "input_cv": w.input_tokens.cv,
        "output_mean_tokens": w.output_tokens.mean,
        "output_family": w.output_tokens.family,
        "output_cv": w.output_tokens.cv,
        "arrival": w.arrival.family,
        "arrival_cv": w.arrival.cv,
        "prefix_cache_hit": w.prefix_cache_hit,
        "description": w.description,
        "source": w.source,
    }


# kind -> (label, entries of a catalog, one row per entry)
TABLES: dict[str, tuple[str, Callable[[Catalog], list[Row]]]] = {
    "hardware": ("Hardware", lambda c: [hardware_row(d) for d in c.hardware.values()]),
    "models": ("Models", lambda c: [model_row(m) for m in c.models.values()]),
    "formats": ("Formats", lambda c: [format_row(f) for f in c.formats.values()]),
    "prices": ("Cloud prices", lambda c: [price_row(p) for p in c.cloud_prices.values()]),
    "workloads": ("Workloads", lambda c: [workload_row(w) for w in c.workloads.values()]),
}


def catalog_rows(catalog: Catalog, kind: str) -> list[Row]:
    """The rows of one catalog table ("hardware", "models", "formats", "prices", "workloads")."""
    if kind not in TABLES:
        raise ValueError(f"unknown catalog '{kind}'; choose one of {', '.join(TABLES)}")
    return TABLES[kind][1](catalog)


def catalog_counts(catalog: Catalog) -> dict[str, int]:
    """Entries per catalog, keyed by the table kinds plus KV formats, purchase prices and carbon regions."""
    return {
        "hardware": len(catalog.hardware),
        "models": len(catalog.models),
        "formats": len(catalog.formats),
        "kv_formats": len(catalog.kv_formats),
        "prices": len(catalog.cloud_prices),
        "purchase_prices": len(catalog.purchase_prices),
        "workloads": len(catalog.workloads),
        "carbon_regions": len(catalog.carbon),
    }


# -- show: one entry, everything known ----------------------------------------------------------


def find_entries(catalog: Catalog, wanted: str) -> list[Row]:
    """Every catalog entry whose id is `wanted` (hardware ids case-insensitive with `_` for `-`,
    models through their aliases); raises UnknownIdError with suggestions from all catalogs."""
    found: list[Row] = []
    suggestions: list[str] = []
    lookups: list[tuple[str, Callable[[str], Any]]] = [
        ("hardware", catalog.device),
        ("model", catalog.model),
        ("format", catalog.format),
        ("kv_format", catalog.kv_format),
        ("workload", catalog.workload),
        ("cloud_price", lambda w: _by_id(catalog.cloud_prices, "cloud price", w)),
        ("carbon", lambda w: _by_id(catalog.carbon, "carbon region", w)),
    ]
    for kind, lookup in lookups:
        try:
            entry = lookup(wanted)
        except UnknownIdError as exc:
            suggestions += [s for s in exc.suggestions if s not in suggestions]
            continue
        found.append(_describe(catalog, kind, entry))
    if not found:
        raise UnknownIdError("catalog id", wanted, suggestions[:5])
    return found


def _by_id(entries: dict[str, Any], kind: str, wanted: str) -> Any:
    key = normalize_id(wanted)
    if key in entries:
        return entries[key]
    raise UnknownIdError(kind, wanted, suggest(key, entries))


SOURCE_FIELDS = ("source", "field_sources", "estimated", "notes", "config_source")


def _describe(catalog: Catalog, kind: str, entry: Any) -> Row:
    """Every field of an entry (and, for a device, its prices), its sources last."""
    row = _describe_fields(catalog, kind, entry)
    return {k: v for k, v in row.items() if k not in SOURCE_FIELDS} | {k: row[k] for k in SOURCE_FIELDS if k in row}


def _describe_fields(catalog: Catalog, kind: str, entry: Any) -> Row:
    if isinstance(entry, CatalogModel):
        return {
            "catalog": kind,
            **entry.meta.model_dump(mode="json"),
            "params_total_computed": entry.arch.params_total,
            "params_active_computed": entry.arch.params_active,
            "attention": attention_kind(entry.arch),
            "config_path": _shown_path(entry.config_path),
            "architecture": entry.arch.model_dump(mode="json"),
        }
    row: Row = {"catalog": kind, **entry.model_dump(mode="json")}
    if isinstance(entry, Device):
        row["cloud_prices"] = [
            {"id": p.id, "usd_per_device_hour": p.usd_per_device_hour, "date_seen": p.date_seen}
            for p in catalog.cloud_prices.values()
            if p.hardware == entry.id
        ]
        row["purchase_prices"] = [
            {"kind": p.kind, "usd": p.usd, "date_seen": p.date_seen, "source": p.source}
            for p in catalog.purchase_prices
            if p.hardware == entry.id
        ]
    return row


def _shown_path(path: Path) -> str:
    try:
        return str(path.relative_to(catalog_dir().parent))
    except ValueError:
        return str(path)


def flatten(entry: Row, prefix: str = "") -> list[Row]:
    """Nested fields as `field` / `value` rows with dotted names (`peak_tflops.bf16`); empty ones left out."""
    rows: list[Row] = []
    for key, value in entry.items():
        name = f"{prefix}{key}"
        if value in ("", [], {}):
            continue
        if isinstance(value, dict):
            rows += flatten(value, f"{name}.")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                rows += flatten(item, f"{name}[{i}].")
        else:
            rows.append({"field": name, "value": value})
    return rows
