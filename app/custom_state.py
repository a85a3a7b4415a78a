"""The user's custom devices and models in st.session_state, their URL form, and the scenario file.

Session keys (read by every page that estimates): `custom_devices` (id -> llmcap.catalog.schema.Device) and
`custom_models` (name -> llmcap.model.architecture.Architecture). Small entries (devices) also travel in the URL
as `dev=`; everything, models included, travels in the downloadable scenario file.
"""

from __future__ import annotations

import streamlit as st

from llmcap.app.ui import get_catalog
from llmcap.catalog.custom import with_custom
from llmcap.catalog.loader import Catalog
from llmcap.catalog.schema import Device
from llmcap.io.scenario_io import (
    MAX_URL_DEVICES_CHARS,
    ScenarioFile,
    decode_devices,
    dump_scenario_file,
    encode_devices,
    load_scenario_file,
)
from llmcap.model.architecture import Architecture
from llmcap.scenario import Scenario

DEVICES_KEY = "custom_devices"
MODELS_KEY = "custom_models"


def custom_devices() -> dict[str, Device]:
    return st.session_state.setdefault(DEVICES_KEY, {})


def custom_models() -> dict[str, Architecture]:
    return st.session_state.setdefault(MODELS_KEY, {})


def add_devices(devices: list[Device]) -> list[str]:
    """Add devices to the session; a message for each one whose id is taken by the catalog (left out)."""
    problems = []
    for d in devices:
        if d.id in get_catalog().hardware:
            problems.append(f"device id '{d.id}' is already a catalog device; choose another id")
        else:
            custom_devices()[d.id] = d
    return problems


def add_model(name: str, arch: Architecture) -> str | None:
    """Add a model to the session; a message if its name is taken by the catalog."""
    if name.strip().lower() in get_catalog().model_aliases:
        return f"model name '{name}' is already a catalog model; choose another name"
    custom_models()[name] = arch
    return None


def extended_catalog() -> Catalog:
    """The catalog plus this session's custom entries (rebuilt only when they change)."""
    devs, models = custom_devices(), custom_models()
    key = (encode_devices(list(devs.values())), tuple((n, id(a)) for n, a in models.items()))
    cached = st.session_state.get("_custom_catalog")
    if cached is None or cached[0] != key:
        cached = (key, with_custom(get_catalog(), devs, models))
        st.session_state["_custom_catalog"] = cached
    return cached[1]


def read_devices_from_url() -> None:
    """Load `dev=` from the URL once per session; a bad value is a warning naming the parameter."""
    text = st.query_params.get("dev")
    if not text or st.session_state.get("_dev_url_read") == text:
        return
    st.session_state["_dev_url_read"] = text
    try:
        problems = add_devices(decode_devices(text))
    except ValueError as exc:
        problems = [str(exc)]
    for p in problems:
        st.warning(f"URL parameter `dev` ignored: {p}", icon=":material/warning:")


def write_devices_to_url() -> None:
    """Put the custom devices in the URL while the value is short; otherwise only the scenario file holds them."""
    text = encode_devices(list(custom_devices().values())) if custom_devices() else ""
    if text and len(text) <= MAX_URL_DEVICES_CHARS:
        st.query_params["dev"] = text
        st.session_state["_dev_url_read"] = text
    elif "dev" in st.query_params:
        del st.query_params["dev"]


def scenario_file_text(scenarios: list[Scenario]) -> str:
    return dump_scenario_file(scenarios, dict(custom_devices()), dict(custom_models()))


def apply_scenario_file(data: bytes) -> tuple[ScenarioFile | None, list[str]]:
    """Load a saved scenario file into the session: its custom entries now, its scenarios for the caller."""
    try:
        doc = load_scenario_file(data)
    except ValueError as exc:
        return None, [f"scenario file not loaded: {exc}"]
    problems = add_devices(doc.custom_devices)
    for name, arch in doc.custom_models.items():
        msg = add_model(name, arch)
        if msg:
            problems.append(msg)
    return doc, problems


def scenario_file_uploader(key: str) -> ScenarioFile | None:
    """An uploader for a saved scenario file, applied once per uploaded file; shows its problems."""
    up = st.file_uploader(
        "Load a scenario file",
        type=["json"],
        key=key,
        help="A file saved with 'Save scenario file': scenarios to compare, custom devices and models.",
    )
    if up is None or st.session_state.get(f"{key}_applied") == up.file_id:
        return None
    st.session_state[f"{key}_applied"] = up.file_id
    doc, problems = apply_scenario_file(up.getvalue())
    for p in problems:
        st.warning(p, icon=":material/warning:")
    if doc is not None:
        st.toast(
            f"Loaded {len(doc.scenarios)} scenario(s), {len(doc.custom_devices)} device(s), "
            f"{len(doc.custom_models)} model(s)"
        )
    return doc
