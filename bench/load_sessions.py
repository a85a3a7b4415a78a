"""Load benchmark: one Streamlit server, many concurrent browser sessions on the Estimate page.

Starts `streamlit run app/streamlit_app.py` once (free port, headless, local address, like tests/e2e/conftest.py),
opens `--sessions` pages (default 25) in one Debian chromium (one browser context each, so each is its own
Streamlit session), and for `--seconds` (default 120) has every session repeatedly change one sidebar number
input (Concurrency, Input tokens or Output tokens, found by label) to a new random value, wait for the page to
show the new result, pause for a think time, and go again.

What counts as "the result updated" (the signal, measured inside the page with the browser's own clock):
Streamlit's frontend mirrors its script-run state on the `stApp` element as `data-test-script-state`
(`notRunning`, `rerunRequested`, `running`). A MutationObserver installed in each page timestamps every change
of that attribute, and a capturing keydown listener timestamps the Enter that commits the number input
(`event.timeStamp`, so time the renderer was too busy to handle the key is included). The latency of one
interaction is from that Enter to the first `notRunning` that follows a non-idle state after it: the moment
the rerun's output is committed to the page (stale elements are cleared then). After each interaction the
script also checks that the KPI tiles' text changed (else it counts as `unchanged`) and that no
`stException` or error alert is on the page (else it counts as an error).

The server is `streamlit run` with a timer around each script run (ScriptRunner._run_script, as in
bench/page_rerun.py), so the report can say how much of a latency the server itself spent: on a small machine
the 25 browsers compete with the server for the same cores, which a real user's browser does not. Warm-up
(opening the pages, a few at a time) is not timed, but a first page showing an exception counts as a warm-up
error, with the server log's traceback summary.

Memory is the server process's resident set (VmRSS from /proc/<pid>/status), sampled every `--sample-s`
seconds with the 1-minute load average (this is a benchmark on a shared 2-core machine: the browsers, the
server and whatever else runs share the cores). Growth = RSS at the end minus RSS once every session has
rendered its first page (the start of the timed phase); the peak is printed too.

Think time: a person reads the tiles before changing the next input; each pause is uniform in
[0.5, 1.5] x `--think-s` (default 5 s). `--think-s 0` gives a closed loop with no pauses, which measures
the server's saturation rather than what a user sees.

Prints a table over time, then `name=value` figures; the last line is `load_p95_ms=N` (bench/run_all.py).
A benchmark, not a test: it exits 0 when targets are missed (p95 under 1 s, growth under 100 MB) and
non-zero only when it cannot run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
APP_DIR = ROOT / "app"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
START_URL = "/?model=meta-llama/Llama-3.1-8B-Instruct&hw=h100-sxm&tp=1&w=fp8&kv=fp8&isl=1024&osl=256&conc=16"
# Sidebar number inputs (by label) and the range new values are drawn from; every value fits on one H100
# for Llama 3.1 8B in fp8, so no run legitimately shows a "does not fit" error.
WIDGETS = {
    "Concurrency (requests in flight)": (1, 64),
    "Input tokens": (128, 4096),
    "Output tokens": (32, 1024),
}
SERVER_START_S = 60
# The server is `streamlit run` with one addition: each script run (a session's rerun) appends its start time and
# duration to the file named by LLMCAP_LOAD_RUNLOG, timed around ScriptRunner._run_script as bench/page_rerun.py
# does. That separates the server's share of a latency from the browsers' on a machine they share.
SERVER_BOOT = """
import os, sys, threading, time
from streamlit.runtime.scriptrunner import script_runner
from streamlit.web.cli import main
log, lock = open(os.environ["LLMCAP_LOAD_RUNLOG"], "a"), threading.Lock()
original = script_runner.ScriptRunner._run_script
def timed(self, *args, **kwargs):
    t0 = time.time()
    try:
        return original(self, *args, **kwargs)
    finally:
        with lock:
            log.write(f"{t0:.6f} {time.time() - t0:.6f}\\n")
            log.flush()
script_runner.ScriptRunner._run_script = timed
sys.argv = ["streamlit", *sys.argv[1:]]
sys.exit(main())
"""
PAGE_LOAD_TIMEOUT_MS = 120_000
OPENING_AT_ONCE = 5  # pages opened together during warm-up (not timed)

# Installed in each page once it has rendered: timestamps of script-state changes and of Enter presses.
OBSERVER_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const log = {events: [], enter: null};
  window.__llmcapLoad = log;
  new MutationObserver(() => log.events.push([performance.now(), app.getAttribute('data-test-script-state')]))
    .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
  document.addEventListener('keydown', e => { if (e.key === 'Enter') log.enter = e.timeStamp; }, true);
}"""
# True once the page went busy after the Enter and then back to notRunning; returns the latency in ms.
DONE_JS = """() => {
  const log = window.__llmcapLoad;
  if (log.enter === null) return false;
  let busy = false;
  for (const [t, s] of log.events) {
    if (t < log.enter) continue;
    if (s !== 'notRunning') busy = true;
    else if (busy) return t - log.enter;
  }
  return false;
}"""
RESET_JS = "() => { window.__llmcapLoad.events = []; window.__llmcapLoad.enter = null; }"
KPI_JS = """() => Array.from(document.querySelectorAll('[data-testid="stMetricValue"]'))
  .map(e => e.innerText).join('|')"""
ERRORS_JS = """() => document.querySelectorAll(
  '[data-testid="stException"], [data-testid="stAlertContentError"]').length"""


@dataclass
class Tally:
    """Shared results: one row per interaction (time it ended, page latency, driver latency)."""

    start: float = 0.0
    start_epoch: float = 0.0
    done: list[tuple[float, float, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unchanged: int = 0
    exception_elements: int = 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log_path: Path, runlog_path: Path) -> tuple[subprocess.Popen, str]:
    """`streamlit run` from app/ on a free port (script runs timed into runlog_path); returns the process once
    /_stcore/health answers ok."""
    port = free_port()
    env = {**os.environ, "LLMCAP_LOAD_RUNLOG": str(runlog_path)}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER_BOOT, "run", "streamlit_app.py",
             "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=APP_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log_path.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.read().strip() == b"ok":
                    return proc, url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            stop_server(proc)
            raise RuntimeError(
                f"streamlit not healthy after {SERVER_START_S} s:\n{log_path.read_text('utf-8', 'replace')}"
            )
        time.sleep(0.2)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (VmRSS is in kB), from /proc: psutil is not a dependency."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc/<pid>/stat (fields 14 and 15, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from the first line of /proc/stat."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK"), sum(ticks) / os.sysconf("SC_CLK_TCK")


def load_average_1min() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def open_session(browser, url: str, gate: asyncio.Semaphore):
    """A fresh browser context on the start link, rendered, with the observer installed."""
    async with gate:
        ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await ctx.new_page()
        await page.goto(url + START_URL, timeout=PAGE_LOAD_TIMEOUT_MS)
        await page.get_by_role("heading", name="Estimate").wait_for(timeout=PAGE_LOAD_TIMEOUT_MS)
        await page.wait_for_function(
            "() => document.querySelector('[data-testid=\"stApp\"]')"
            ".getAttribute('data-test-script-state') === 'notRunning'",
            timeout=PAGE_LOAD_TIMEOUT_MS,
        )
        for label in WIDGETS:  # fail early, with the label, if the page no longer has a widget we drive
            await page.get_by_role("spinbutton", name=label).wait_for(timeout=PAGE_LOAD_TIMEOUT_MS)
        await page.evaluate(OBSERVER_JS)
        return ctx, page, await page.evaluate(ERRORS_JS)


async def drive(page, idx: int, args, tally: Tally, go: asyncio.Event, deadline: list[float]) -> None:
    """One user: change a widget, wait for the rerun to land, check the tiles, think, repeat."""
    rng = random.Random(args.seed * 1000 + idx)
    current = {"Concurrency (requests in flight)": 16, "Input tokens": 1024, "Output tokens": 256}
    await go.wait()
    await asyncio.sleep(rng.uniform(0, max(args.think_s, 0.5)))  # users do not all click in the same instant
    while time.monotonic() < deadline[0]:
        label = rng.choice(list(WIDGETS))
        lo, hi = WIDGETS[label]
        value = current[label]
        while value == current[label]:
            value = rng.randint(lo, hi)
        try:
            before = await page.evaluate(KPI_JS)
            await page.evaluate(RESET_JS)
            box = page.get_by_role("spinbutton", name=label)
            await box.fill(str(value))
            t0 = time.monotonic()
            await box.press("Enter")
            handle = await page.wait_for_function(DONE_JS, timeout=args.timeout_s * 1000, polling=50)
            page_ms = float(await handle.json_value())
            driver_ms = (time.monotonic() - t0) * 1e3
            current[label] = value
            if await page.evaluate(KPI_JS) == before:
                tally.unchanged += 1
            if await page.evaluate(ERRORS_JS):
                tally.exception_elements += 1
            tally.done.append((time.monotonic() - tally.start, page_ms, driver_ms))
        except Exception as exc:  # a benchmark counts failures; it does not stop at the first
            tally.errors.append(f"session {idx}: {label}={value}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            await asyncio.sleep(1.0)
        if args.think_s > 0:
            await asyncio.sleep(rng.uniform(0.5, 1.5) * args.think_s)


async def sample(pid: int, args, tally: Tally, stop: asyncio.Event, rows: list[tuple]) -> None:
    """At the start, every sample_s and at the end: server RSS, load average, the server's CPU use (100% = one
    core, which its Python threads share under the GIL), the whole machine's busy share, and the interactions
    that ended in the window with their latency percentiles."""
    seen, last = 0, (time.monotonic(), cpu_s(pid), *machine_busy_s())
    print(f"{'t_s':>6} {'rss_mb':>8} {'load1':>6} {'srv_cpu%':>8} {'all_cpu%':>8} {'done':>6} {'in_window':>9} "
          f"{'p50_ms':>8} {'p95_ms':>8} {'errors':>6}", flush=True)  # fmt: skip
    while True:
        now = (time.monotonic(), cpu_s(pid), *machine_busy_s())
        wall = max(now[0] - last[0], 1e-9)
        server_pct = 100 * (now[1] - last[1]) / wall
        machine_pct = 100 * (now[2] - last[2]) / max(now[3] - last[3], 1e-9)
        last = now
        window = [ms for _, ms, _ in tally.done[seen:]]
        seen = len(tally.done)
        errors = len(tally.errors) + tally.exception_elements
        row = (now[0] - tally.start, rss_mb(pid), load_average_1min(), server_pct, machine_pct, seen, errors)
        rows.append(row)
        print(f"{row[0]:6.1f} {row[1]:8.1f} {row[2]:6.2f} {server_pct:8.0f} {machine_pct:8.0f} {seen:6d} "
              f"{len(window):9d} {pct(window, 50):8.0f} {pct(window, 95):8.0f} {errors:6d}", flush=True)  # fmt: skip
        if stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=args.sample_s)


async def run(args) -> int:
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory(prefix="llmcap-load-") as tmp:
        log_path, runlog_path = Path(tmp) / "server.log", Path(tmp) / "runs.log"
        proc, url = start_server(log_path, runlog_path)
        try:
            rss_idle = rss_mb(proc.pid)
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    return await measure(browser, url, proc.pid, rss_idle, runlog_path, log_path, args)
                finally:
                    await browser.close()
        finally:
            stop_server(proc)


async def measure(browser, url: str, pid: int, rss_idle: float, runlog: Path, server_log: Path, args) -> int:
    t_open = time.monotonic()
    gate = asyncio.Semaphore(OPENING_AT_ONCE)
    opened = await asyncio.gather(*(open_session(browser, url, gate) for _ in range(args.sessions)),
                                  return_exceptions=True)  # fmt: skip
    failed = [r for r in opened if isinstance(r, BaseException)]
    sessions = [r for r in opened if not isinstance(r, BaseException)]
    warmup_errors = sum(1 for r in sessions if r[2])
    print(f"{len(sessions)} of {args.sessions} sessions rendered in {time.monotonic() - t_open:.1f} s "
          f"({OPENING_AT_ONCE} opening at a time, not timed); {warmup_errors} of them showed an exception or error "
          f"on their first page; server RSS idle {rss_idle:.1f} MB, with every session open {rss_mb(pid):.1f} MB; "
          f"think time {args.think_s:g} s (uniform x0.5-1.5); timed phase {args.seconds:g} s", flush=True)  # fmt: skip
    for exc in failed[:5]:
        print(f"error: a session did not open: {type(exc).__name__}: {str(exc).splitlines()[0]}", file=sys.stderr)
    if warmup_errors:
        print(f"server log ({server_log}) tracebacks during warm-up:", file=sys.stderr)
        print(tail_tracebacks(server_log.read_text(errors="replace")), file=sys.stderr)
    if not sessions:
        raise RuntimeError("no session opened")

    tally, go, stop, rows = Tally(), asyncio.Event(), asyncio.Event(), []
    tally.start, tally.start_epoch, cpu_start = time.monotonic(), time.time(), cpu_s(pid)
    deadline = [tally.start + args.seconds]
    sampler = asyncio.create_task(sample(pid, args, tally, stop, rows))
    drivers = [asyncio.create_task(drive(s[1], i, args, tally, go, deadline)) for i, s in enumerate(sessions)]
    go.set()
    await asyncio.gather(*drivers)
    stop.set()
    await sampler
    server_cpu_s = cpu_s(pid) - cpu_start
    for ctx, _, _ in sessions:
        await ctx.close()
    runs = [line.split() for line in runlog.read_text().splitlines()]
    server_ms = [float(d) * 1e3 for t, d in runs if float(t) >= tally.start_epoch]
    return report(tally, rows, server_ms, server_cpu_s, warmup_errors + len(failed), len(sessions), args)


def tail_tracebacks(log: str) -> str:
    """The last line of each traceback in a server log (the exception and its message), counted."""
    lines, found = log.splitlines(), {}
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            j = i + 1
            while j < len(lines) and (lines[j].startswith(" ") or not lines[j].strip()):
                j += 1
            if j < len(lines):
                found[lines[j]] = found.get(lines[j], 0) + 1
    return "\n".join(f"  {n} x {msg}" for msg, n in found.items())


def report(
    tally: Tally, rows: list[tuple], server_ms: list[float], server_cpu_s: float, warmup_errors: int, opened: int, args
) -> int:
    page_ms = [ms for _, ms, _ in tally.done]
    driver_ms = [ms for _, _, ms in tally.done]
    rss = [r[1] for r in rows]
    baseline = rss[0]  # taken when every session had rendered its first page, before any timed change
    loads = [r[2] for r in rows]
    server_cpu = [r[3] for r in rows[1:]] or [float("nan")]
    machine_cpu = [r[4] for r in rows[1:]] or [float("nan")]
    elapsed = time.monotonic() - tally.start
    errors = len(tally.errors) + tally.exception_elements
    for line in tally.errors[:10]:
        print("error:", line, file=sys.stderr)
    if len(tally.errors) > 10:
        print(f"... and {len(tally.errors) - 10} more errors", file=sys.stderr)
    print(f"\n{len(page_ms)} interactions by {opened} sessions in {elapsed:.0f} s "
          f"({len(page_ms) / max(elapsed, 1e-9):.2f} per s, think time {args.think_s:g} s)")  # fmt: skip
    print(f"widget change -> result in the page: p50 {pct(page_ms, 50):.0f} ms, p95 {pct(page_ms, 95):.0f} ms, "
          f"max {max(page_ms, default=float('nan')):.0f} ms; as the Python driver saw it: "
          f"p50 {pct(driver_ms, 50):.0f} ms, p95 {pct(driver_ms, 95):.0f} ms")  # fmt: skip
    print(f"server script runs in the timed phase: {len(server_ms)}, p50 {pct(server_ms, 50):.0f} ms, "
          f"p95 {pct(server_ms, 95):.0f} ms, max {max(server_ms, default=float('nan')):.0f} ms "
          f"(the server's share of the latency above; the rest is transport and the browser)")  # fmt: skip
    cpu_ms_per_run = server_cpu_s * 1e3 / max(len(server_ms), 1)
    print(f"server CPU {server_cpu_s:.1f} s in the timed phase = {cpu_ms_per_run:.0f} ms per script run: one server "
          f"process (one core's worth under the GIL) can sustain about {1e3 / max(cpu_ms_per_run, 1e-9):.1f} "
          f"reruns/s")  # fmt: skip
    print(f"errors {errors}: {len(tally.errors)} failed interactions, {tally.exception_elements} with an exception "
          f"or error element on the page; KPI tiles unchanged after {tally.unchanged} changes; "
          f"warm-up: {warmup_errors} sessions failed to open or showed an exception")  # fmt: skip
    print(f"server RSS {baseline:.1f} MB at the start of the timed phase, {rss[-1]:.1f} MB at the end, "
          f"peak {max(rss):.1f} MB; load average (1 min) mean {np.mean(loads):.2f}, max {max(loads):.2f} "
          f"on {os.cpu_count()} cores")  # fmt: skip
    print(f"server CPU mean {np.mean(server_cpu):.0f}% of one core (max {max(server_cpu):.0f}%); whole machine busy "
          f"{np.mean(machine_cpu):.0f}% (browsers, server, driver and anything else running)")  # fmt: skip
    print(f"load_sessions={args.sessions}")
    print(f"load_interactions={len(page_ms)}")
    print(f"load_errors={errors}")
    print(f"load_warmup_errors={warmup_errors}")
    print(f"load_server_run_p95_ms={pct(server_ms, 95):.0f}")
    print(f"load_server_cpu_ms_per_run={cpu_ms_per_run:.0f}")
    print(f"load_loadavg_mean={np.mean(loads):.2f}")
    print(f"load_memory_peak_growth_mb={max(rss) - baseline:.1f}")
    print(f"load_p50_ms={pct(page_ms, 50):.0f}")
    print(f"load_memory_growth_mb={rss[-1] - baseline:.1f}")
    print(f"load_p95_ms={pct(page_ms, 95):.0f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=25, help="concurrent browser sessions (25)")
    parser.add_argument("--seconds", type=float, default=120, help="length of the timed phase (120)")
    parser.add_argument(
        "--think-s", type=float, default=5.0, help="mean pause between a result and the next change (5)"
    )
    parser.add_argument("--sample-s", type=float, default=5.0, help="memory/load sampling interval (5)")
    parser.add_argument("--timeout-s", type=float, default=60.0, help="give up on one interaction after this (60)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the values and pauses (0)")
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.seconds <= 0 or args.think_s < 0 or args.sample_s <= 0 or args.timeout_s <= 0:
        parser.error("--sessions must be >= 1; --seconds, --sample-s and --timeout-s > 0; --think-s >= 0")
    if not shutil.which(CHROMIUM):
        print(f"load_sessions: no chromium at {CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        return asyncio.run(run(args))
    except RuntimeError as exc:
        print(f"load_sessions: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
