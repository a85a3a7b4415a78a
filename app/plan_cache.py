"""The Plan page's what-ifs, cached one change at a time: a new value for one what-if re-plans that one only."""

from __future__ import annotations

import json

import streamlit as st

from llmcap.catalog.loader import Catalog
from llmcap.plan.request import Plan
from llmcap.plan.whatif import Sensitivity, WhatIf, sensitivity, what_ifs


@st.cache_data(show_spinner=False, max_entries=256)
def cached_whatif(request_json: str, custom_key: str, change_json: str, _base: Plan, _catalog: Catalog) -> WhatIf:
    """llmcap.plan.whatif.what_ifs for the base plan of `request_json` (the key) under one change [name, update]."""
    name, update = json.loads(change_json)
    return what_ifs(_base, _catalog, ((name, update),))[0]


def cached_whatifs(
    request_json: str, custom_key: str, changes_json: str, _base: Plan, _catalog: Catalog
) -> list[WhatIf]:
    """The what-ifs of the base plan of `request_json` under the changes (JSON [[name, update], ...]), in order.

    Each what-if re-plans independently (llmcap.plan.whatif), so each is cached on its own key: changing the
    bandwidth what-if leaves the compute, price and traffic ones as they were, and the rerun re-plans once, not
    four times (bench/page_rerun.py, plan what-ifs)."""
    return [
        cached_whatif(request_json, custom_key, json.dumps(change), _base, _catalog)
        for change in json.loads(changes_json)
    ]


@st.cache_data(show_spinner=False, max_entries=16)
def cached_sensitivity(request_json: str, custom_key: str, _base: Plan, _catalog: Catalog) -> list[Sensitivity]:
    """llmcap.plan.whatif.sensitivity for the base plan of `request_json` (the key)."""
    return sensitivity(_base, _catalog)
