"""How long the Estimate and Plan pages take to re-render after a widget change (targets: median server time under
100 ms and worst under 300 ms on each page).

Runs the app under Streamlit's AppTest (no browser) over a fixed sequence of changes, each to a value not seen
before (so the caches miss, as for a user's new input):
- Estimate, concurrency mode: the shared-link scenario at concurrency 16; concurrency, prompt length, TP, the TTFT
  objective and the output length.
- Estimate, rate mode: the same scenario at 8 req/s (the analytic model the page uses by default); the rate, the
  prompt length, TP, the objectives, the output length and the replicas.
- Plan, what-ifs: the shared Plan link (its plan computed once, not timed), then new values for the bandwidth,
  compute, price and traffic what-ifs. Their inputs sit in a fragment (llmcap.app.views.plan_whatifs), so a change
  reruns that fragment only: the bench sends the fragment's id with the rerun, as the browser does for a widget
  inside a fragment (Streamlit's AppSession passes the client's fragment_id into RerunData).

"Server time" is the script run in Streamlit's script thread, timed around ScriptRunner._run_script; the AppTest
wall time adds the test harness's polling and element-tree parsing on top. Prints each change, each sequence's
median and worst, each page's, and a last line `page_rerun_ms=N`: the worst page median.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from streamlit.runtime.scriptrunner import script_runner
from streamlit.runtime.scriptrunner_utils.script_requests import RerunData
from streamlit.testing.v1 import AppTest, local_script_runner

APP = Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py"
URL = {"model": "meta-llama/Llama-3.1-8B-Instruct", "hw": "h100-sxm", "tp": "1", "w": "fp8", "kv": "fp8",
       "isl": "1024", "osl": "256", "conc": "16"}  # fmt: skip
RATE_URL = {**URL, "rate": "8", "sim": "0"}
PLAN_URL = {"model": "meta-llama/Llama-3.1-8B-Instruct", "isl": "1024", "osl": "256", "rate": "10"}
WHATIF_FRAGMENT = "whatif_section"  # the function of the fragment the what-if inputs sit in
CONC_CHANGES = [("est_concurrency", 17 + i) for i in range(8)]
CONC_CHANGES += [("est_input_len", 900 + 10 * i) for i in range(4)]
CONC_CHANGES += [("est_tp", 2), ("est_tp", 4), ("est_ttft_ms", 1500.0), ("est_output_len", 300)]
RATE_CHANGES = [("est_rate_rps", 9.0 + i) for i in range(6)]
RATE_CHANGES += [("est_input_len", 900 + 10 * i) for i in range(3)]
RATE_CHANGES += [("est_tp", 2), ("est_ttft_ms", 1500.0), ("est_tpot_ms", 40.0), ("est_tpot_ms", 25.0),
                 ("est_output_len", 300), ("est_rate_rps", 30.0), ("est_replicas", 2)]  # fmt: skip
PLAN_CHANGES = [("plan_whatif_bw_pct", 30.0 + 10 * i) for i in range(4)]
PLAN_CHANGES += [("plan_whatif_compute_pct", 10.0 * i) for i in range(3)]
PLAN_CHANGES += [("plan_whatif_price_pct", -30.0 - 10 * i) for i in range(3)]
PLAN_CHANGES += [("plan_whatif_traffic_x", 3.0 + i) for i in range(3)]
PLAN_CHANGES += [("plan_whatif_bw_pct", 30.0), ("plan_whatif_traffic_x", 2.0)]  # back to values seen before
RUNS: list[float] = []
FRAGMENT: list[str] = []  # while set: the fragment id the next rerun carries


def _rerun_data(*args, **kwargs) -> RerunData:
    """RerunData as AppTest makes it, with the fragment id a browser sends for a widget inside a fragment."""
    if FRAGMENT:
        kwargs.setdefault("fragment_id", FRAGMENT[0])
    return RerunData(*args, **kwargs)


def _fragment_id(at: AppTest, function_name: str) -> str:
    """The id of the page's fragment that wraps the function named `function_name`."""
    for fid, wrapper in at._fragment_storage._fragments.items():
        cells = (c.cell_contents for c in wrapper.__closure__ or ())
        if any(getattr(v, "__name__", None) == function_name for v in cells):
            return fid
    raise LookupError(f"no fragment runs {function_name}")


def _timed(original):
    def run(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            RUNS.append(time.perf_counter() - t0)

    return run


def _change(at: AppTest, key: str, value) -> None:
    if key.startswith("plan_whatif_"):  # inside the what-ifs' fragment: the change reruns that fragment
        FRAGMENT[:] = [_fragment_id(at, WHATIF_FRAGMENT)]
        try:
            at.number_input(key=key).set_value(value).run()
        finally:
            FRAGMENT.clear()
    else:
        at.number_input(key=key).set_value(value).run()


def measure(name: str, page: str | None, url: dict[str, str], changes: list) -> list[float] | None:
    """Server ms of each change in `changes` on a page opened at `url` (None when the page raised)."""
    at = AppTest.from_file(str(APP), default_timeout=300)
    if page:
        at.switch_page(page)
    at.query_params.update(url)
    t0 = time.perf_counter()
    at.run()
    print(f"[{name}] first load: {(time.perf_counter() - t0) * 1e3:.0f} ms (not counted)")
    if at.exception:
        print("page raised:", [e.message for e in at.exception], file=sys.stderr)
        return None
    server_ms, wall_ms = [], []
    for key, value in changes:
        before = len(RUNS)
        t0 = time.perf_counter()
        _change(at, key, value)
        wall = (time.perf_counter() - t0) * 1e3
        server = sum(RUNS[before:]) * 1e3
        if at.exception:
            print(f"{key}={value}: page raised {[e.message for e in at.exception]}", file=sys.stderr)
            return None
        server_ms.append(server)
        wall_ms.append(wall)
        print(f"[{name}] {key:>24} = {value!s:<7} server {server:7.1f} ms   AppTest wall {wall:7.1f} ms")
    print(f"[{name}] server time over {len(server_ms)} changes: median {statistics.median(server_ms):.0f} ms, "
          f"worst {max(server_ms):.0f} ms; AppTest wall median {statistics.median(wall_ms):.0f} ms")  # fmt: skip
    return server_ms


def main() -> int:
    script_runner.ScriptRunner._run_script = _timed(script_runner.ScriptRunner._run_script)
    local_script_runner.RerunData = _rerun_data
    pages: dict[str, list[float]] = {"Estimate": [], "Plan": []}
    for name, page, url, changes, page_name in (
        ("concurrency", None, URL, CONC_CHANGES, "Estimate"),
        ("rate, analytic", None, RATE_URL, RATE_CHANGES, "Estimate"),
        ("plan what-ifs", "views/plan.py", PLAN_URL, PLAN_CHANGES, "Plan"),
    ):
        ms = measure(name, page, url, changes)
        if ms is None:
            return 1
        pages[page_name] += ms
    for page_name, ms in pages.items():
        print(f"{page_name}: {len(ms)} changes, median {statistics.median(ms):.0f} ms, worst {max(ms):.0f} ms "
              "(targets: median < 100 ms, worst < 300 ms)")  # fmt: skip
    print(f"page_rerun_estimate_median_ms={statistics.median(pages['Estimate']):.0f}")
    print(f"page_rerun_estimate_worst_ms={max(pages['Estimate']):.0f}")
    print(f"page_rerun_plan_median_ms={statistics.median(pages['Plan']):.0f}")
    print(f"page_rerun_plan_worst_ms={max(pages['Plan']):.0f}")
    print(f"page_rerun_ms={max(statistics.median(ms) for ms in pages.values()):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
