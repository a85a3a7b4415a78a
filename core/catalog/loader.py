"""Load and validate every catalog file under `catalogs/`.

Layout (data files only):
  hardware/*.yaml            a list of devices per vendor
  models/<org>/<name>/       config.json (Hugging Face) + model.yaml (metadata)
  formats.yaml               weight formats, KV formats, math fallbacks
  prices/cloud.yaml          on-demand cloud offerings
  prices/purchase.yaml       purchase prices
  workloads.yaml             workload presets
  carbon.yaml                grid carbon intensity by region
  engines.yaml               serving-engine defaults
  efficiency.yaml            fitted efficiency parameters (written by `llmcap calibrate`)
  power.yaml                 power profiles by device kind, PUE / electricity / amortization defaults

`load_catalog()` returns an immutable `Catalog`; `validate_catalog()` returns every problem
found (file, field, reason) instead of stopping at the first.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from llmcap.catalog.schema import (
    CarbonIntensity,
    Checkpoint,
    CloudOffering,
    Device,
    Format,
    KVFormat,
    MathFallback,
    ModelMeta,
    PowerCatalog,
    PurchasePrice,
    Workload,
)
from llmcap.catalog.support import SupportMatrix, load_support, matrix_problems
from llmcap.model.architecture import Architecture
from llmcap.model.hf_limits import ConfigError
from llmcap.model.hfconfig import parse_config


def _shipped_catalog_dir() -> Path:
    """The catalogs that come with llmcap: package data `llmcap/catalogs` in an installed wheel, else the
    checkout's `catalogs/` beside `core/` (editable installs and a plain checkout)."""
    packaged = resources.files("llmcap") / "catalogs"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "catalogs"


CATALOG_DIR = _shipped_catalog_dir()
CATALOGS_ENV = "LLMCAP_CATALOGS"


def catalog_dir() -> Path:
    """The catalog folder in use: $LLMCAP_CATALOGS when set (`llmcap --catalogs DIR` sets it), else the shipped one."""
    chosen = os.environ.get(CATALOGS_ENV, "").strip()
    return Path(chosen).expanduser() if chosen else CATALOG_DIR
MAX_CATALOG_FILE_BYTES = 5_000_000

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a catalog file."""

    file: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.reason}"


class CatalogError(Exception):
    """Raised when the catalogs do not validate; carries every problem."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class UnknownIdError(KeyError):
    """An id that is not in a catalog, with close matches."""

    def __init__(self, kind: str, wanted: str, suggestions: list[str]):
        self.kind, self.wanted, self.suggestions = kind, wanted, suggestions
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown {kind} '{wanted}'{hint}")

    def __str__(self) -> str:
        return self.args[0]


@dataclass(frozen=True)
class CatalogModel:
    """A catalog model: its metadata and the architecture parsed from its config.json."""

    meta: ModelMeta
    arch: Architecture
    config_path: Path


@dataclass(frozen=True, eq=False)
class Catalog:
    """All catalogs, validated. Compared and hashed by identity (it is loaded once and cached)."""

    hardware: dict[str, Device]
    models: dict[str, CatalogModel]
    formats: dict[str, Format]
    kv_formats: dict[str, KVFormat]
    math_fallback: dict[str, MathFallback]
    cloud_prices: dict[str, CloudOffering]
    purchase_prices: tuple[PurchasePrice, ...]
    workloads: dict[str, Workload]
    carbon: dict[str, CarbonIntensity]
    engines: dict[str, dict[str, Any]]
    efficiency: dict[str, Any]
    model_aliases: dict[str, str] = field(default_factory=dict)
    power: PowerCatalog | None = None
    support: SupportMatrix | None = None
    checkpoints: dict[str, Checkpoint] = field(default_factory=dict)  # lower-case checkpoint id -> checkpoint

    # -- look-ups -----------------------------------------------------------------
    def device(self, wanted: str) -> Device:
        """Device by id; case-insensitive, `_` accepted for `-`."""
        key = normalize_id(wanted)
        if key in self.hardware:
            return self.hardware[key]
        raise UnknownIdError("hardware", wanted, suggest(key, self.hardware))

    def model(self, wanted: str) -> CatalogModel:
        """Model by Hugging Face id or alias, case-insensitive."""
        key = self.model_aliases.get(wanted.strip().lower())
        if key is not None:
            return self.models[key]
        raise UnknownIdError("model", wanted, suggest(wanted.strip().lower(), self.model_aliases, self.models))

    def checkpoint(self, wanted: str) -> Checkpoint | None:
        """The published checkpoint a model name denotes (its format preselected), or None for a base id or alias."""
        return self.checkpoints.get(wanted.strip().lower())

    def default_weights(self, model: str) -> str:
        """The weight format a model name implies: its checkpoint's format, else bf16."""
        ckpt = self.checkpoint(model)
        return ckpt.weights if ckpt is not None else "bf16"

    def default_kv(self, model: str) -> str | None:
        """The KV format a checkpoint declares (e.g. ModelOpt FP8 KV), else None (the format's and engine's)."""
        ckpt = self.checkpoint(model)
        return ckpt.kv if ckpt is not None else None

    def format(self, wanted: str) -> Format:
        key = normalize_id(wanted)
        if key in self.formats:
            return self.formats[key]
        raise UnknownIdError("weight format", wanted, suggest(key, self.formats))

    def kv_format(self, wanted: str) -> KVFormat:
        key = normalize_id(wanted)
        if key in self.kv_formats:
            return self.kv_formats[key]
        raise UnknownIdError("KV format", wanted, suggest(key, self.kv_formats))

    def workload(self, wanted: str) -> Workload:
        key = normalize_id(wanted)
        if key in self.workloads:
            return self.workloads[key]
        raise UnknownIdError("workload", wanted, suggest(key, self.workloads))


def normalize_id(text: str) -> str:
    return text.strip().lower().replace("_", "-")


def suggest(key: str, names: dict[str, Any], display: dict[str, Any] | None = None, n: int = 3) -> list[str]:
    """Close matches for an unknown id (by edit similarity and by substring)."""
    pool = list(names)
    hits = [p for p in pool if key and (key in p or p in key)]
    hits += difflib.get_close_matches(key, pool, n=n, cutoff=0.5)
    out: list[str] = []
    for h in hits:
        shown = names[h] if display is not None and isinstance(names[h], str) else h
        if shown not in out:
            out.append(shown)
    return out[:n]


# -- reading files ---------------------------------------------------------------------


def _read_yaml(path: Path, problems: list[Problem], root: Path) -> Any:
    rel = _rel(path, root)
    try:
        if path.stat().st_size > MAX_CATALOG_FILE_BYTES:
            problems.append(Problem(rel, "-", f"file larger than {MAX_CATALOG_FILE_BYTES} bytes"))
            return None
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        problems.append(Problem(rel, "-", f"cannot read YAML: {exc}".replace("\n", " ")))
        return None


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


def _validate_list(model: type[M], data: Any, rel: str, problems: list[Problem], key: str = "") -> list[M]:
    """Validate a YAML list of entries; one problem per bad field, naming the entry."""
    if data is None:
        return []
    if not isinstance(data, list):
        problems.append(Problem(rel, key or "-", f"expected a list of entries, got {type(data).__name__}"))
        return []
    out = []
    for i, item in enumerate(data):
        label = item.get("id", f"#{i}") if isinstance(item, dict) else f"#{i}"
        prefix = f"{key}[{label}]" if key else f"[{label}]"
        try:
            out.append(model.model_validate(item))
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(x) for x in err["loc"]) or "-"
                problems.append(Problem(rel, f"{prefix}.{loc}", err["msg"]))
    return out


def _index(entries: list[M], rel: str, problems: list[Problem], attr: str = "id") -> dict[str, M]:
    out: dict[str, M] = {}
    for e in entries:
        key = getattr(e, attr)
        if key in out:
            problems.append(Problem(rel, f"[{key}]", "duplicate id"))
        out[key] = e
    return out


def _load_models(root: Path, problems: list[Problem]) -> dict[str, CatalogModel]:
    models: dict[str, CatalogModel] = {}
    for meta_path in sorted((root / "models").glob("*/*/model.yaml")):
        rel = _rel(meta_path, root)
        metas = _validate_list(ModelMeta, [_read_yaml(meta_path, problems, root)], rel, problems)
        if not metas:
            continue
        meta = metas[0]
        expected = f"{meta_path.parent.parent.name}/{meta_path.parent.name}"
        if meta.id != expected:
            problems.append(Problem(rel, "id", f"'{meta.id}' does not match its folder '{expected}'"))
        cfg_path = meta_path.parent / "config.json"
        try:
            arch = parse_config(json.loads(cfg_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, ConfigError) as exc:
            problems.append(Problem(_rel(cfg_path, root), "-", str(exc)))
            continue
        models[meta.id] = CatalogModel(meta=meta, arch=arch, config_path=cfg_path)
    return models


def _aliases(models: dict[str, CatalogModel], rel: str, problems: list[Problem]) -> dict[str, str]:
    out: dict[str, str] = {}
    for mid, m in models.items():
        for name in [mid, *m.meta.aliases, *(c.id for c in m.meta.checkpoints)]:
            key = name.lower()
            if key in out and out[key] != mid:
                problems.append(Problem(rel, f"{mid}.aliases", f"'{name}' already names {out[key]}"))
            out[key] = mid
    return out


def _read_catalog(root: Path) -> tuple[Catalog, list[Problem]]:
    problems: list[Problem] = []
    hardware: list[Device] = []
    for path in sorted((root / "hardware").glob("*.yaml")):
        hardware += _validate_list(Device, _read_yaml(path, problems, root), _rel(path, root), problems)
    hw = _index(hardware, "hardware/", problems)

    fmt_doc = _read_yaml(root / "formats.yaml", problems, root) or {}
    fmt_rel = "catalogs/formats.yaml"
    formats = _index(_validate_list(Format, fmt_doc.get("formats"), fmt_rel, problems, "formats"), fmt_rel, problems)
    kv = _index(_validate_list(KVFormat, fmt_doc.get("kv_formats"), fmt_rel, problems, "kv_formats"), fmt_rel, problems)
    fallback = _index(
        _validate_list(MathFallback, fmt_doc.get("math_fallback"), fmt_rel, problems, "math_fallback"),
        fmt_rel,
        problems,
        attr="math",
    )
    for f in formats.values():
        if f.kv_default not in kv:
            problems.append(Problem(fmt_rel, f"formats[{f.id}].kv_default", f"unknown KV format '{f.kv_default}'"))

    cloud_rel = "catalogs/prices/cloud.yaml"
    cloud = _index(
        _validate_list(CloudOffering, _read_yaml(root / "prices" / "cloud.yaml", problems, root), cloud_rel, problems),
        cloud_rel,
        problems,
    )
    for c in cloud.values():
        if c.hardware not in hw:
            problems.append(Problem(cloud_rel, f"[{c.id}].hardware", f"unknown hardware '{c.hardware}'"))
    buy_rel = "catalogs/prices/purchase.yaml"
    purchase = _validate_list(
        PurchasePrice, _read_yaml(root / "prices" / "purchase.yaml", problems, root), buy_rel, problems
    )
    for p in purchase:
        if p.hardware not in hw:
            problems.append(Problem(buy_rel, f"[{p.hardware}].hardware", f"unknown hardware '{p.hardware}'"))

    wl_rel = "catalogs/workloads.yaml"
    workloads = _index(
        _validate_list(Workload, _read_yaml(root / "workloads.yaml", problems, root), wl_rel, problems),
        wl_rel,
        problems,
    )
    carbon_rel = "catalogs/carbon.yaml"
    carbon = _index(
        _validate_list(CarbonIntensity, _read_yaml(root / "carbon.yaml", problems, root), carbon_rel, problems),
        carbon_rel,
        problems,
    )
    power = _load_power(root, problems)
    engines = _read_yaml(root / "engines.yaml", problems, root) or {}
    efficiency = _read_yaml(root / "efficiency.yaml", problems, root) or {}

    models = _load_models(root, problems)
    aliases = _aliases(models, "catalogs/models", problems)
    support = _load_support_matrix(root, engines, formats, kv, problems)
    for mid, m in models.items():
        for c in m.meta.checkpoints:
            where = f"{mid}.checkpoints[{c.id}]"
            if c.weights not in formats:
                problems.append(Problem("catalogs/models", where, f"unknown format '{c.weights}'"))
            if c.kv is not None and c.kv not in kv:
                problems.append(Problem("catalogs/models", where, f"unknown KV format '{c.kv}'"))
    catalog = Catalog(
        hardware=hw,
        models=models,
        formats=formats,
        kv_formats=kv,
        math_fallback=fallback,
        cloud_prices=cloud,
        purchase_prices=tuple(purchase),
        workloads=workloads,
        carbon=carbon,
        engines=engines.get("engines", {}) if isinstance(engines, dict) else {},
        efficiency=efficiency if isinstance(efficiency, dict) else {},
        model_aliases=aliases,
        power=power,
        support=support,
        checkpoints={c.id.lower(): c for m in models.values() for c in m.meta.checkpoints},
    )
    return catalog, problems


def _load_support_matrix(
    root: Path, engines: Any, formats: dict[str, Format], kv: dict[str, KVFormat], problems: list[Problem]
) -> SupportMatrix | None:
    """catalogs/support.yaml, checked against the engines and formats it names (None, with problems, if invalid)."""
    rel = "catalogs/support.yaml"
    try:
        engine_doc = engines.get("engines", {}) if isinstance(engines, dict) else {}
        labels = {e: str(v.get("label", e)) for e, v in engine_doc.items() if isinstance(v, dict)}
        matrix = load_support(root, labels)
    except FileNotFoundError:
        problems.append(Problem(rel, "-", "file missing"))
        return None
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        problems.append(Problem(rel, "-", str(exc).splitlines()[0]))
        return None
    engine_ids = engines.get("engines", {}) if isinstance(engines, dict) else {}
    format_engines = {k: f.engines for k, f in formats.items()}
    for text in matrix_problems(matrix, engine_ids, formats, kv, format_engines):
        problems.append(Problem(rel, "rules", text))
    return matrix


def _load_power(root: Path, problems: list[Problem]) -> PowerCatalog | None:
    """catalogs/power.yaml, or None (with a problem) when it is missing or invalid."""
    rel = "catalogs/power.yaml"
    if not (root / "power.yaml").exists():
        problems.append(Problem(rel, "-", "file missing"))
        return None
    data = _read_yaml(root / "power.yaml", problems, root)
    try:
        power = PowerCatalog.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            problems.append(Problem(rel, ".".join(str(x) for x in err["loc"]) or "-", err["msg"]))
        return None
    kinds = [p.kind for p in power.profiles]
    for kind in {k for k in kinds if kinds.count(k) > 1}:
        problems.append(Problem(rel, f"profiles[{kind}]", "duplicate kind"))
    if "default" not in kinds:
        problems.append(Problem(rel, "profiles", "a 'default' profile is required"))
    return power


def engine_ids(root: Path | str | None = None) -> tuple[str, ...]:
    """Engine ids of catalogs/engines.yaml, in file order: the one list every front end offers."""
    return _engine_ids(Path(root) if root is not None else catalog_dir())


@functools.cache
def _engine_ids(root: Path) -> tuple[str, ...]:
    try:
        doc = yaml.safe_load((root / "engines.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError([Problem("catalogs/engines.yaml", "-", f"cannot read: {exc}")]) from None
    engines = doc.get("engines") if isinstance(doc, dict) else None
    if not isinstance(engines, dict) or not engines:
        raise CatalogError([Problem("catalogs/engines.yaml", "engines", "no engines listed")])
    return tuple(str(e) for e in engines)


def validate_catalog(root: Path | str | None = None) -> list[Problem]:
    """Every problem in the catalogs under `root` (default: catalog_dir()); empty when all is well."""
    return _read_catalog(Path(root) if root is not None else catalog_dir())[1]


def load_catalog(root: Path | str | None = None) -> Catalog:
    """The validated catalog under `root` (default: catalog_dir()), loaded once per folder; raises CatalogError
    listing every problem."""
    return _load_cached(Path(root) if root is not None else catalog_dir())


@functools.cache
def _load_cached(root: Path) -> Catalog:
    catalog, problems = _read_catalog(root)
    if problems:
        raise CatalogError(problems)
    return catalog


def catalog_file(name: str, parse: Callable[[Any], T], error: type[Exception]) -> T:
    """A catalog file outside the main catalog (day profiles, price options, start-up times, offload tiers): the YAML
    of catalog_dir() / `name` through `parse` (a pydantic validator), read once per catalog folder. An unreadable or
    invalid file raises `error` naming the file and the first problem."""
    return _catalog_file(str(catalog_dir()), name, parse, error)


def check_catalog_file(root: Path | str, name: str, parse: Callable[[Any], Any]) -> list[Problem]:
    """Every problem of one catalog file outside the main catalog (`name` under `root`, checked by `parse`, a
    pydantic validator): a missing or unreadable file, a YAML syntax error at its line and column, or each invalid
    field with its path and line. Empty when the file is usable."""
    path, rel = Path(root) / name, f"catalogs/{name}"
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except FileNotFoundError:
        return [Problem(rel, "-", "file missing")]
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem(rel, "-", f"cannot read: {exc}")]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark is not None else "-"
        return [Problem(rel, where, f"YAML syntax: {getattr(exc, 'problem', None) or exc}")]
    try:
        parse(data)
    except ValidationError as exc:
        node = yaml.compose(text)
        return [Problem(rel, _field_where(node, err["loc"]), err["msg"]) for err in exc.errors()]
    except (TypeError, ValueError, AttributeError) as exc:
        return [Problem(rel, "-", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)]
    return []


def _field_where(node: Any, loc: tuple) -> str:
    """A validation error's field path and the line of the deepest YAML node it reaches ("ssd.read_gbps (line 12)")."""
    line = None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(key)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
            node = node.value[key]
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    path = ".".join(str(k) for k in loc) or "-"
    return f"{path} (line {line})" if line is not None else path


@functools.lru_cache(maxsize=32)
def _catalog_file(root: str, name: str, parse: Callable[[Any], T], error: type[Exception]) -> T:
    try:
        return parse(yaml.safe_load((Path(root) / name).read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError, TypeError) as exc:
        raise error(f"catalogs/{name} is unusable: {str(exc).splitlines()[0]}") from None
