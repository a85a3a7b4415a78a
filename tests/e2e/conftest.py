"""Browser tests: pytest-playwright driving Debian's chromium against a real `streamlit run`.

Playwright cannot download its own browser here, so the session fixtures point it at
/usr/bin/chromium (CHROMIUM_PATH overrides). Outside CI a missing chromium skips these
tests; under CI=true (where `make test` installs it) it is a failure.
"""

from __future__ import annotations

import os
import shutil

import pytest
from streamlit_server import running_dashboard

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
SERVER_START_S = 60


def pytest_collection_modifyitems(config, items):
    if shutil.which(CHROMIUM) or IN_CI:
        return
    skip = pytest.mark.skip(reason=f"no chromium at {CHROMIUM}: apt-get install -y chromium (make test does)")
    for item in items:
        if "e2e" in item.path.parts:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not shutil.which(CHROMIUM):
        pytest.fail(f"CI=true but no chromium at {CHROMIUM}; `make test` installs it with apt-get")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "accept_downloads": True, "viewport": {"width": 1280, "height": 900}}


@pytest.fixture(scope="session")
def streamlit_server(tmp_path_factory):
    """`streamlit run` on a free port (from app/, like the docs' recipe); yields its URL."""
    with running_dashboard(tmp_path_factory.mktemp("streamlit") / "server.log", SERVER_START_S) as url:
        yield url


@pytest.fixture(scope="session")
def base_url(streamlit_server):
    return streamlit_server
