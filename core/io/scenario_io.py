"""Scenarios and custom entries as text: a compact URL form and a JSON file the dashboard saves and loads back.

* `encode_scenarios` / `decode_scenarios`: up to MAX_SCENARIOS scenarios in one short query value (`cmp=`),
  positional fields joined by `,`, scenarios by `;`; an empty field takes the Scenario default.
* `encode_devices` / `decode_devices`: custom devices as URL-safe base64 of compressed JSON (`dev=`).
* `dump_scenario_file` / `load_scenario_file`: scenarios, custom devices and custom models (parsed
  architectures) in one JSON document, for what is too large for a URL.
Every decoder raises ValueError with a message naming what is wrong, never a bare pydantic traceback. Input is
treated as hostile: lengths are capped before decoding, decompression is bounded, JSON goes through
io.safejson (no NaN/Infinity, no deep nesting), and custom models meet model.hfconfig's plausibility limits.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import zlib
from typing import Literal

from pydantic import Field, ValidationError

from llmcap.catalog.schema import Device, Frozen
from llmcap.io.safejson import JsonError, load_json
from llmcap.model.architecture import Architecture
from llmcap.model.hf_limits import ConfigError, check_architecture
from llmcap.scenario import Scenario, validation_text

MAX_SCENARIOS = 6
MAX_FILE_BYTES = 5_000_000
MAX_URL_DEVICES_CHARS = 2_000  # beyond this, custom devices travel in the scenario file only
MAX_DEVICES_TEXT_CHARS = 20_000  # what decode_devices reads at all (10x what encode_devices puts in a URL)
MAX_DEVICES_JSON_BYTES = 1_000_000  # decompressed; zlib can expand 1000x, so this bounds a "zip bomb"
MAX_CMP_CHARS = 10_000  # a `cmp=` value; six scenarios need a few hundred characters
MAX_SHOWN_CHARS = 40  # of a bad value quoted back in a message
# Field order of one scenario in `cmp=`; the README documents the same order.
CMP_FIELDS = (
    "model",
    "hardware",
    "tp",
    "pp",
    "ep",
    "replicas",
    "weight_format",
    "kv_format",
    "engine",
    "input_len",
    "output_len",
    "concurrency",
)
INT_TEXT = re.compile(r"[+-]?[0-9]{1,12}")
CUSTOM_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/\-]{0,99}$")


# -- scenarios in a URL -------------------------------------------------------------------------------------------
def encode_scenario(scn: Scenario) -> str:
    """One scenario as positional fields; trailing defaults are dropped."""
    defaults = Scenario(model="x", hardware="x")
    values = []
    for name in CMP_FIELDS:
        v = getattr(scn, name)
        is_default = name not in ("model", "hardware") and v == getattr(defaults, name)
        values.append("" if v is None or is_default else str(v))
    while values and values[-1] == "":
        values.pop()
    return ",".join(values)


def encode_scenarios(scenarios: list[Scenario]) -> str:
    return ";".join(encode_scenario(s) for s in scenarios[:MAX_SCENARIOS])


def decode_scenario(text: str) -> Scenario:
    """Inverse of encode_scenario; ValueError names the bad field."""
    parts = text.split(",")
    if len(parts) > len(CMP_FIELDS):
        raise ValueError(f"{len(parts)} fields, at most {len(CMP_FIELDS)} ({', '.join(CMP_FIELDS)})")
    data: dict[str, object] = {}
    for name, raw in zip(CMP_FIELDS, parts, strict=False):
        raw = raw.strip()
        if raw:
            data[name] = raw if name != "concurrency" or raw == "max" else _int_text(raw, name)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ValueError(validation_text(exc)) from None


def _int_text(raw: str, name: str) -> int:
    if INT_TEXT.fullmatch(raw):
        return int(raw)
    raise ValueError(f"{name}: '{_clip(raw)}' is not an integer")


def _clip(text: str) -> str:
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 3] + "..."


def decode_scenarios(text: str) -> tuple[list[Scenario], list[str]]:
    """Scenarios from a `cmp=` value, and one message per part that could not be read (it is left out)."""
    out: list[Scenario] = []
    problems: list[str] = []
    if len(text) > MAX_CMP_CHARS:
        return out, [f"longer than {MAX_CMP_CHARS:,} characters; ignored"]
    parts = [p for p in text.split(";") if p.strip()]
    if len(parts) > MAX_SCENARIOS:
        problems.append(f"{len(parts)} scenarios given; only the first {MAX_SCENARIOS} are used")
    for i, part in enumerate(parts[:MAX_SCENARIOS], start=1):
        try:
            out.append(decode_scenario(part))
        except ValueError as exc:
            problems.append(f"scenario {i}: {exc}")
    return out, problems


# -- custom devices in a URL --------------------------------------------------------------------------------------
def encode_devices(devices: list[Device]) -> str:
    """Custom devices as URL-safe base64 of zlib-compressed JSON (fields left at their defaults are dropped)."""
    doc = [d.model_dump(mode="json", exclude_defaults=True) for d in devices]
    raw = zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 9)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_devices(text: str) -> list[Device]:
    """Inverse of encode_devices; ValueError says what is wrong."""
    if len(text) > MAX_DEVICES_TEXT_CHARS:
        raise ValueError(f"not an encoded device list (longer than {MAX_DEVICES_TEXT_CHARS:,} characters)")
    try:
        packed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        inflate = zlib.decompressobj()
        raw = inflate.decompress(packed, MAX_DEVICES_JSON_BYTES)
    except (binascii.Error, zlib.error, ValueError) as exc:
        raise ValueError(f"not an encoded device list ({exc.__class__.__name__})") from None
    if inflate.unconsumed_tail:
        raise ValueError(f"not an encoded device list (expands beyond {MAX_DEVICES_JSON_BYTES:,} bytes)")
    if not inflate.eof:  # cut short: the stream's end and checksum are missing
        raise ValueError("not an encoded device list (truncated)")
    try:
        doc = load_json(raw, max_bytes=MAX_DEVICES_JSON_BYTES, what="the list")
    except ValueError as exc:
        raise ValueError(f"not an encoded device list ({exc})") from None
    if not isinstance(doc, list):
        raise ValueError("not an encoded device list")
    out = []
    for i, d in enumerate(doc, start=1):
        try:
            out.append(check_device(Device.model_validate(d)))
        except ValidationError as exc:
            raise ValueError(f"device {i}: {validation_text(exc)}") from None
        except ValueError as exc:
            raise ValueError(f"device {i}: {exc}") from None
    return out


# -- the scenario file --------------------------------------------------------------------------------------------
class ScenarioFile(Frozen):
    """What the dashboard saves: scenarios to compare and the custom entries they use."""

    llmcap_scenarios: Literal[1] = 1
    scenarios: list[Scenario] = Field(default_factory=list, max_length=MAX_SCENARIOS)
    custom_devices: list[Device] = Field(default_factory=list)
    custom_models: dict[str, Architecture] = Field(default_factory=dict)


def dump_scenario_file(scenarios: list[Scenario], devices: dict[str, Device], models: dict[str, Architecture]) -> str:
    doc = ScenarioFile(scenarios=scenarios[:MAX_SCENARIOS], custom_devices=list(devices.values()), custom_models=models)
    return doc.model_dump_json(indent=2, exclude_defaults=False)


def load_scenario_file(data: bytes | str) -> ScenarioFile:
    """Parse a saved scenario file; ValueError with every problem, by field."""
    try:
        doc = load_json(data, max_bytes=MAX_FILE_BYTES, what="scenario file")
    except JsonError as exc:
        raise ValueError(f"not JSON: {exc.detail}" if exc.syntax else str(exc)) from None
    if not isinstance(doc, dict) or "llmcap_scenarios" not in doc:
        raise ValueError("not an llmcap scenario file (no 'llmcap_scenarios' key)")
    try:
        out = ScenarioFile.model_validate(doc)
    except ValidationError as exc:
        raise ValueError(validation_text(exc)) from None
    for i, d in enumerate(out.custom_devices, start=1):
        try:
            check_device(d)
        except ValueError as exc:
            raise ValueError(f"custom_devices.{i - 1}: {exc}") from None
    for name, arch in out.custom_models.items():
        check_model_name(name)
        try:
            check_architecture(arch)
        except ConfigError as exc:
            raise ValueError(f"custom model '{name}': {exc}") from None
    return out


def check_device(device: Device) -> Device:
    """A custom device whose figures are all finite (pydantic reads the text "inf" or "1e999" as infinity)."""
    numbers = {k: v for k, v in device.model_dump().items() if isinstance(v, float)}
    numbers |= {f"peak_tflops.{k}": v for k, v in device.peak_tflops.items()}
    if device.scaleup is not None and device.scaleup.gbps_per_direction is not None:
        numbers["scaleup.gbps_per_direction"] = device.scaleup.gbps_per_direction
    bad = [k for k, v in numbers.items() if not math.isfinite(v)]
    if bad:
        raise ValueError(f"{', '.join(bad)}: must be a finite number")
    return device


def check_model_name(name: str) -> str:
    """A custom model's name: letters, digits and . _ / - (it appears in URLs and in `cmp=`)."""
    if not CUSTOM_MODEL_NAME.match(name):
        raise ValueError(
            f"model name '{_clip(name)}': use 1-100 letters, digits and . _ / - (starting with a letter/digit)"
        )
    return name
