"""The browser-less protocol client (tests/st_protocol.py, used by bench/load_sessions.py) against a real server:
it sees the numbers the page renders, widget changes reach the script, and errors on the page are caught."""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path

import pytest
from st_protocol import Session
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.testing.v1 import AppTest
from streamlit_server import running_dashboard

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app" / "streamlit_app.py"
SHARED = {"model": "meta-llama/Llama-3.1-8B-Instruct", "hw": "h100-sxm", "tp": "1", "w": "fp8", "kv": "fp8",
          "isl": "1024", "osl": "256", "conc": "16"}  # fmt: skip
LINK = "/?" + "&".join(f"{k}={v}" for k, v in SHARED.items())
START_S = 60


def _run(coro):
    """asyncio.run in a thread of its own: in a full test session the e2e tests' sync Playwright leaves an event loop
    running in the main thread, where asyncio.run refuses to start another."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_dashboard(tmp_path_factory.mktemp("st") / "server.log", START_S) as url:
        yield url


def _apptest_metrics(changes: dict[str, object]) -> dict[str, str]:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params.update(SHARED)
    at.run()
    for key, value in changes.items():
        at.number_input(key=key).set_value(value).run()
    assert not at.exception
    return {m.label: m.value for m in at.metric}


async def _protocol_session(url: str, changes: dict[str, object]):
    async with Session(url) as s:
        first = await s.open(LINK)
        opened = s.metrics()
        runs = [await s.change(key, value) for key, value in changes.items()]
        return first, opened, runs, s.metrics(), s.query_string


def test_the_protocol_client_sees_the_numbers_the_page_renders(server):
    changes = {"est_concurrency": 24, "est_input_len": 2048}
    first, opened, runs, after, query = _run(_protocol_session(server, changes))
    assert first.ok and all(r.ok for r in runs), (first, runs)
    # The same shared link in AppTest (the page's own script, no server): the same tiles, before and after.
    assert opened == _apptest_metrics({})
    assert after == _apptest_metrics(changes)
    assert set(opened) >= {"Fits", "TTFT", "TPOT", "Output tokens/s"} and opened["Fits"] == "yes"
    # The changes reached the script: the page wrote them back into the URL, and a longer prompt with more
    # requests in flight cannot have a shorter time to first token.
    assert "conc=24" in query and "isl=2048" in query and "w=fp8" in query
    assert float(after["TTFT"].split()[0]) > float(opened["TTFT"].split()[0])
    assert all(r.elapsed_ms > 0 and r.messages > 0 for r in runs)


async def _tp_too_large(url: str):
    async with Session(url) as s:
        await s.open(LINK)
        bad = await s.change("est_tp", 64)
        good = await s.change("est_tp", 1)
        return bad, good, s.metrics()


def test_an_error_on_the_page_is_caught_and_cleared(server):
    bad, good, metrics = _run(_tp_too_large(server))
    assert not bad.ok and any("Does not fit" in p and "tp=64" in p for p in bad.problems), bad.problems
    assert good.ok and metrics["Fits"] == "yes"


def test_an_unknown_widget_is_a_clear_error(server):
    async def go():
        async with Session(server) as s:
            await s.open(LINK)
            with pytest.raises(KeyError, match="no widget with key 'est_nope'"):
                await s.change("est_nope", 1)

    _run(go())


async def _toggle_operators(url: str):
    async with Session(url) as s:
        await s.open(LINK)
        full = await s.change("est_concurrency", 20)
        before = dict(s.elements)
        run = await s.change("est_show_ops", True)
        return s.widget("est_show_ops"), full, run, before, dict(s.elements), s.metrics()


def test_the_roofline_toggle_reruns_its_fragment_only(server):
    widget, full, run, before, after, metrics = _run(_toggle_operators(server))
    assert widget.fragment_id, "the roofline section is an st.fragment"
    assert run.ok and run.status == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY
    assert full.ok and full.status == ForwardMsg.FINISHED_SUCCESSFULLY
    assert 0 < run.deltas < full.deltas / 4, (run.deltas, full.deltas)  # a section, not the page
    changed = {p for p in after if p not in before or after[p] != before[p]}
    kinds = {after[p].WhichOneof("type") for p in changed}
    # Only the roofline's chart (now with one point per operator) and its toggle were redrawn; the tiles were not.
    assert "vega_lite_chart" in kinds and "metric" not in kinds, kinds
    assert metrics["Fits"] == "yes"


PLAN_LINK = "/plan?model=meta-llama/Llama-3.1-8B-Instruct&isl=1024&osl=256&rate=10&hw=l4,l40s,h100-sxm&w=fp8"


async def _plan_whatif(url: str):
    async with Session(url) as s:
        opened = await s.open(PLAN_LINK)
        run = await s.change("plan_whatif_bw_pct", 70.0)
        codes = [e.code.code_text for e in s.elements.values() if e.WhichOneof("type") == "code"]
        return s.widget("plan_whatif_bw_pct"), opened, run, s.query_string, codes


def test_a_plan_whatif_reruns_its_fragment_and_rewrites_the_link(server):
    """The what-ifs' fragment (llmcap.app.views.plan_whatifs) re-plans alone; the URL and the sidebar's share link
    (drawn outside the fragment, rewritten by it) take the new value."""
    widget, opened, run, query, codes = _run(_plan_whatif(server))
    assert opened.ok and run.ok, (opened.problems, run.problems)
    assert widget.fragment_id and run.status == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY
    assert 0 < run.deltas < opened.deltas / 2, (run.deltas, opened.deltas)
    assert "xbw=70" in query and "hw=l4%2Cl40s%2Ch100-sxm" in query.replace(",", "%2C")
    assert any("xbw=70" in c for c in codes), codes
