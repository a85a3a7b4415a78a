"""How long the Estimate page takes to re-render after a widget change (target: under 300 ms of server time).

Runs the app under Streamlit's AppTest (no browser) in both load modes: the shared-link scenario at
concurrency 16, and the same scenario at 8 req/s (request-rate mode, the analytic model the page uses by
default). In each it changes one widget at a time to values not seen before (so the caches miss, as for a
user's new input): in rate mode the rate, the scenario and the objectives.
"Server time" is the script run in Streamlit's script thread, timed around ScriptRunner._run_script;
the AppTest wall time adds the test harness's polling and element-tree parsing on top.
Prints each change, each mode's median, and a last line `page_rerun_ms=N`: the worse of the two medians.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from streamlit.runtime.scriptrunner import script_runner
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py"
URL = {"model": "meta-llama/Llama-3.1-8B-Instruct", "hw": "h100-sxm", "tp": "1", "w": "fp8", "kv": "fp8",
       "isl": "1024", "osl": "256", "conc": "16"}  # fmt: skip
RATE_URL = {**URL, "rate": "8", "sim": "0"}
CONC_CHANGES = [("est_concurrency", 17 + i) for i in range(8)]
CONC_CHANGES += [("est_input_len", 900 + 10 * i) for i in range(4)]
CONC_CHANGES += [("est_tp", 2), ("est_tp", 4), ("est_ttft_ms", 1500.0), ("est_output_len", 300)]
RATE_CHANGES = [("est_rate_rps", 9.0 + i) for i in range(6)]
RATE_CHANGES += [("est_input_len", 900 + 10 * i) for i in range(3)]
RATE_CHANGES += [("est_tp", 2), ("est_ttft_ms", 1500.0), ("est_tpot_ms", 40.0), ("est_tpot_ms", 25.0),
                 ("est_output_len", 300), ("est_rate_rps", 30.0), ("est_replicas", 2)]  # fmt: skip
RUNS: list[float] = []


def _timed(original):
    def run(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            RUNS.append(time.perf_counter() - t0)

    return run


def measure(name: str, url: dict[str, str], changes: list[tuple[str, object]]) -> float | None:
    """Median server ms over `changes` on a page opened at `url` (None when the page raised)."""
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params.update(url)
    t0 = time.perf_counter()
    at.run()
    print(f"[{name}] first load: {(time.perf_counter() - t0) * 1e3:.0f} ms")
    if at.exception:
        print("page raised:", [e.message for e in at.exception], file=sys.stderr)
        return None
    server_ms, wall_ms = [], []
    for key, value in changes:
        before = len(RUNS)
        t0 = time.perf_counter()
        at.number_input(key=key).set_value(value).run()
        wall = (time.perf_counter() - t0) * 1e3
        server = sum(RUNS[before:]) * 1e3
        if at.exception:
            print(f"{key}={value}: page raised {[e.message for e in at.exception]}", file=sys.stderr)
            return None
        server_ms.append(server)
        wall_ms.append(wall)
        print(f"[{name}] {key:>18} = {value!s:<7} server {server:6.1f} ms   AppTest wall {wall:6.1f} ms")
    med = statistics.median(server_ms)
    print(f"[{name}] server time over {len(server_ms)} changes: median {med:.0f} ms, max {max(server_ms):.0f} ms; "
          f"AppTest wall median {statistics.median(wall_ms):.0f} ms (target: server < 300 ms)")  # fmt: skip
    return med


def main() -> int:
    script_runner.ScriptRunner._run_script = _timed(script_runner.ScriptRunner._run_script)
    medians = {}
    for name, url, changes in (("concurrency", URL, CONC_CHANGES), ("rate, analytic", RATE_URL, RATE_CHANGES)):
        med = measure(name, url, changes)
        if med is None:
            return 1
        medians[name] = med
    print("medians: " + ", ".join(f"{k} {v:.0f} ms" for k, v in medians.items()))
    print(f"page_rerun_ms={max(medians.values()):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
