"""Load benchmark: `llmcap serve --workers N` (HAProxy in front) under many sessions driven at the protocol level.

No browser per session: each session is tests/st_protocol.py's client, which speaks Streamlit's own WebSocket
protocol (BackMsg rerun requests with widget states, ForwardMsg deltas until script_finished) with the protobuf
classes the streamlit package ships, so the machine's cores go to the servers, not to 25 renderers.

- Starts `llmcap serve --workers N` (default 2) on a free port and waits for the proxy's /healthz.
- Each of `--sessions` sessions (default 25) opens a page from a shared link: the Estimate link, or (one session
  in `--plan-every`, default 5) the Plan link. Opening is the warm-up (timed and reported, not in the p95).
- Then, for `--seconds` (default 120), each session changes one widget at the moments of a Poisson process of
  mean gap `--gap-s` (default 5 s): exponential gaps, drawn per session from `--seed`. A session waits for its
  previous change's run to finish before it sends the next (a person waits for the page), and such a wait is
  counted. Estimate sessions change Concurrency, Input tokens or Output tokens (new random values; every value
  fits on one H100 for Llama 3.1 8B in fp8, so an error element is a real error); Plan sessions change one
  what-if (bandwidth, compute, prices, traffic), which reruns the what-ifs' fragment only, as in the browser.
- Latency of a change: from sending the rerun request to the script's finished message, on the client's clock.
  An error is a run that did not finish successfully, drew an exception element or an error alert, or broke
  the stream; the first few are printed.
- Three real Chromium sessions (Playwright + Debian chromium, /usr/bin/chromium, as tests/e2e) take part: before
  the timed phase each loads every page of the dashboard once (Estimate and Plan from the shared links; this
  warms the caches of the process its cookie names, as earlier users would have), and during it each loads every
  page again, one every `--seconds` / 5 seconds. Every load must render (the script finishes) with no exception
  element and no error alert.
- Memory: the resident set (VmRSS) of every dashboard process and of HAProxy, sampled every `--sample-s` seconds
  with the 1-minute load average. Growth = the processes' RSS at the end minus at the start of the timed phase
  (after every session opened its page); growth from before any session connected is printed too.

- CPU: the seconds each process used over the timed phase (/proc/<pid>/stat), per change (the dashboard
  processes' total over the number of changes: Chromium's page loads included, so an upper bound) and as cores,
  and how busy the whole machine was (/proc/stat): the figures the README's provisioning table is derived from.

This machine is shared (2 cores, other sessions' tests): the 1-minute load average is printed at the start and
the end, and each sample's. Prints `name=value` figures; the last line is `p95_ms=N` (bench/run_all.py).
A benchmark, not a test: it exits 0 when targets are missed (p95 under 1,000 ms, no error, growth under
100 MB) and non-zero only when it cannot run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
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
sys.path.insert(0, str(ROOT / "tests"))

from st_protocol import ProtocolError, Session  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
ESTIMATE_LINK = "/?model=meta-llama/Llama-3.1-8B-Instruct&hw=h100-sxm&tp=1&w=fp8&kv=fp8&isl=1024&osl=256&conc=16"
PLAN_LINK = "/plan?model=meta-llama/Llama-3.1-8B-Instruct&isl=1024&osl=256&rate=10"
# Widget key -> (low, high) of the random new values.
ESTIMATE_WIDGETS = {"est_concurrency": (1, 64), "est_input_len": (128, 4096), "est_output_len": (32, 1024)}
PLAN_WIDGETS = {"plan_whatif_bw_pct": (-50, 100), "plan_whatif_compute_pct": (-50, 100),
                "plan_whatif_price_pct": (-50, 50), "plan_whatif_traffic_x": (1, 8)}  # fmt: skip
# The pages a Chromium session visits, in turn (path and query).
BROWSER_PAGES = [ESTIMATE_LINK, "/catalog", "/compare", PLAN_LINK, "/accuracy"]
START_TIMEOUT_S = 120
RENDER_TIMEOUT_MS = 120_000
OPENING_AT_ONCE = 5  # sessions opening their page together during warm-up
SHOW_ERRORS = 5


@dataclass
class Tally:
    changes: list[tuple[str, float, float]] = field(default_factory=list)  # (page, end time, latency ms)
    opens: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    waited: int = 0  # changes sent late because the session's previous run had not finished
    browser_pages: int = 0
    browsers: int = 0
    browsers_ready: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per process over the timed phase
    machine: tuple[float, float] = (0.0, 0.0)  # the whole machine's busy and total CPU seconds over it
    wall: float = 0.0
    browser_errors: list[str] = field(default_factory=list)
    backends: dict[str, int] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.read().strip() == b"ok"
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command name) of the direct children of `pid`, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append((int(entry.name), name))
    return found


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (VmRSS is in kB), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


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


def start_serve(workers: int, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llmcap.cli.main", "serve", "--workers", str(workers), "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not healthy(f"{url}/healthz"):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_serve(proc)
            raise RuntimeError(f"llmcap serve did not come up:\n{log_path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)
    return proc, url


def stop_serve(proc: subprocess.Popen) -> None:
    """SIGTERM (which `llmcap serve` handles like Ctrl-C: a SIGINT can arrive ignored when this benchmark runs in a
    background job, and then the processes were left running), then, after 30 s, SIGKILL to its whole session."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session (start_new_session): the proxy and dashboards too
            proc.wait()


def server_pids(serve_pid: int) -> dict[str, int]:
    """The dashboard processes and the proxy under `llmcap serve`: name -> pid."""
    named, n = {}, 0
    for pid, name in sorted(children(serve_pid)):
        if name.startswith("haproxy"):
            named["haproxy"] = pid
        else:
            n += 1
            named[f"dashboard {n}"] = pid
    return named


async def open_session(url: str, idx: int, args, tally: Tally, gate: asyncio.Semaphore):
    link = PLAN_LINK if args.plan_every and idx % args.plan_every == args.plan_every - 1 else ESTIMATE_LINK
    session = Session(url, timeout_s=args.timeout_s)
    async with gate:
        run = await session.open(link)
    tally.opens.append(run.elapsed_ms)
    tally.backends[session.backend or "?"] = tally.backends.get(session.backend or "?", 0) + 1
    if not run.ok:
        tally.errors.append(f"session {idx} opening {link}: {run.problems or run.status}")
    return session, ("plan" if link == PLAN_LINK else "estimate")


async def drive(session: Session, page: str, idx: int, args, tally: Tally, t_end: float) -> None:
    rng = random.Random(args.seed * 1000 + idx)
    widgets = PLAN_WIDGETS if page == "plan" else ESTIMATE_WIDGETS
    due = time.monotonic() + rng.expovariate(1 / args.gap_s)
    while True:
        now = time.monotonic()
        if due > t_end:
            return
        if due > now:
            await asyncio.sleep(due - now)
        elif now - due > 0.01:
            tally.waited += 1
        key = rng.choice(list(widgets))
        value = float(rng.randint(*widgets[key]))
        try:
            run = await session.change(key, value)  # a what-if reruns its fragment only (plan_whatifs)
        except ProtocolError as exc:
            tally.errors.append(f"session {idx} {key}={value:g}: {exc}")
            return
        tally.changes.append((page, time.monotonic(), run.elapsed_ms))
        if not run.ok:
            tally.errors.append(f"session {idx} {key}={value:g}: {run.problems or f'finished with {run.status}'}")
        due += rng.expovariate(1 / args.gap_s)


async def visit(page, url: str, link: str, who: str, tally: Tally, count: bool) -> None:
    """Load one page in Chromium; it must render (script finished) with no exception element and no error alert."""
    try:
        await page.goto(url + link, timeout=RENDER_TIMEOUT_MS)
        await page.locator('[data-testid="stMain"] [data-testid="stHeading"]').first.wait_for(
            timeout=RENDER_TIMEOUT_MS
        )
        await page.wait_for_function(
            "() => document.querySelector('[data-testid=\"stApp\"]')"
            ".getAttribute('data-test-script-state') === 'notRunning'",
            timeout=RENDER_TIMEOUT_MS,
        )
        errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
        bad = await errors.count()
        text = (await errors.first.inner_text())[:200] if bad else ""
    except Exception as exc:  # a page that does not render is a failure to report, not a crash
        tally.browser_errors.append(f"{who} {link}: {type(exc).__name__}: {str(exc)[:200]}")
        return
    if count:
        tally.browser_pages += 1
    if bad:
        tally.browser_errors.append(f"{who} {link}: {bad} error element(s): {text}")


async def browse(browser, url: str, idx: int, tally: Tally, go: asyncio.Event, t_end: list[float]) -> None:
    """A real Chromium session (its own cookie, so its own server process): every page once before the timed phase
    (warming that process's caches, as earlier users would have), then every page again, one every
    seconds / pages, during it."""
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await ctx.new_page()
    who = f"chromium {idx + 1}"
    try:
        for link in BROWSER_PAGES:
            await visit(page, url, link, who + " (warm-up)", tally, count=False)
        tally.browsers_ready += 1
        await go.wait()
        start = time.monotonic()
        spacing = (t_end[0] - start) / len(BROWSER_PAGES)
        for k in range(len(BROWSER_PAGES)):
            due = start + (k + idx / max(1, tally.browsers)) * spacing
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await visit(page, url, BROWSER_PAGES[(k + idx) % len(BROWSER_PAGES)], who, tally, count=True)
    finally:
        await ctx.close()


async def sample(pids: dict[str, int], every_s: float, stop: asyncio.Event, rows: list) -> None:
    t0 = time.monotonic()
    while True:
        rows.append((time.monotonic() - t0, load_average_1min(), {n: rss_mb(p) for n, p in pids.items()}))
        try:
            await asyncio.wait_for(stop.wait(), timeout=every_s)
            rows.append((time.monotonic() - t0, load_average_1min(), {n: rss_mb(p) for n, p in pids.items()}))
            return
        except TimeoutError:
            pass


async def run(args, url: str, pids: dict[str, int]) -> Tally:
    from playwright.async_api import async_playwright

    tally = Tally()
    idle_rss = {n: rss_mb(p) for n, p in pids.items()}
    gate = asyncio.Semaphore(OPENING_AT_ONCE)
    t0 = time.monotonic()
    opened = await asyncio.gather(*(open_session(url, i, args, tally, gate) for i in range(args.sessions)))
    print(f"warm-up: {args.sessions} sessions opened their page in {time.monotonic() - t0:.1f} s "
          f"(open median {pct(tally.opens, 50):.0f} ms, max {max(tally.opens):.0f} ms); "
          f"sessions per process: {tally.backends}", flush=True)  # fmt: skip
    rows: list = []
    stop, go = asyncio.Event(), asyncio.Event()
    tally.browsers = args.browsers
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        t_end = [0.0]
        browsers = [asyncio.create_task(browse(browser, url, i, tally, go, t_end)) for i in range(args.browsers)]
        t0 = time.monotonic()
        while tally.browsers_ready < args.browsers and not any(b.done() for b in browsers):
            await asyncio.sleep(0.2)
        print(f"warm-up: {args.browsers} Chromium sessions loaded every page once in {time.monotonic() - t0:.1f} s",
              flush=True)  # fmt: skip
        await asyncio.sleep(args.settle_s)  # let the warm-up's work drain before the clock starts
        load_start = load_average_1min()
        cpu_start = {n: cpu_s(p) for n, p in pids.items()}
        machine_start = machine_busy_s()
        t_start = time.monotonic()
        t_end[0] = t_start + args.seconds
        go.set()
        sampler = asyncio.create_task(sample(pids, args.sample_s, stop, rows))
        await asyncio.gather(*(drive(s, page, i, args, tally, t_end[0]) for i, (s, page) in enumerate(opened)))
        tally.cpu = {n: cpu_s(p) - cpu_start[n] for n, p in pids.items()}
        busy, total = machine_busy_s()
        tally.machine = ((busy - machine_start[0]), (total - machine_start[1]))
        tally.wall = time.monotonic() - t_start
        await asyncio.gather(*browsers)
        stop.set()
        await sampler
        await browser.close()
    for s, _ in opened:
        await s.close()
    report(args, tally, rows, idle_rss, load_start, t_start)
    return tally


def report(args, tally: Tally, rows: list, idle_rss: dict, load_start: float, t_start: float) -> None:
    print(f"\n{'t (s)':>6} {'load1':>6} " + " ".join(f"{n + ' MB':>14}" for n in rows[0][2]))
    for t, load, rss in rows:
        print(f"{t:6.0f} {load:6.2f} " + " ".join(f"{v:14.0f}" for v in rss.values()))
    lat = [ms for _, _, ms in tally.changes]
    print(f"\n{len(lat)} changes in {args.seconds:g} s from {args.sessions} sessions "
          f"({len(lat) / args.seconds:.2f}/s; {tally.waited} sent late behind the session's previous run)")  # fmt: skip
    for page in ("estimate", "plan"):
        v = [ms for pg, _, ms in tally.changes if pg == page]
        if v:
            print(f"  {page:<9} n={len(v):4d}  median {pct(v, 50):6.0f} ms  p95 {pct(v, 95):6.0f} ms  "
                  f"p99 {pct(v, 99):6.0f} ms  max {max(v):6.0f} ms")  # fmt: skip
    for e in tally.errors[:SHOW_ERRORS]:
        print("  error:", e[:300])
    print(f"chromium: {args.browsers} sessions rendered {tally.browser_pages} pages, "
          f"{len(tally.browser_errors)} failed")  # fmt: skip
    for e in tally.browser_errors[:SHOW_ERRORS]:
        print("  chromium error:", e[:300])
    dash = [n for n in rows[0][2] if n.startswith("dashboard")]
    start_rss = sum(rows[0][2][n] for n in dash)
    end_rss = sum(rows[-1][2][n] for n in dash)
    peak_rss = max(sum(r[2][n] for n in dash) for r in rows)
    idle = sum(idle_rss[n] for n in dash)
    load_end = load_average_1min()
    print(f"dashboard processes' RSS: {idle:.0f} MB before the sessions, {start_rss:.0f} MB at the start of the "
          f"timed phase, {end_rss:.0f} MB at the end (peak {peak_rss:.0f} MB)")  # fmt: skip
    print(f"load average (1 min): {load_start:.2f} at the start, {load_end:.2f} at the end, "
          f"mean of samples {np.mean([r[1] for r in rows]):.2f}")  # fmt: skip
    dash_cpu = sum(v for n, v in tally.cpu.items() if n.startswith("dashboard"))
    per_change = dash_cpu / max(1, len(lat))
    busy, total = tally.machine
    print(f"CPU over the timed phase ({tally.wall:.0f} s): "
          + ", ".join(f"{n} {v:.1f} s ({v / tally.wall:.0%} of a core)" for n, v in tally.cpu.items())
          + f"; dashboard processes {per_change * 1e3:.0f} ms of CPU per change (Chromium's page loads included); "
          f"the whole machine was {busy / max(total, 1e-9):.0%} busy, {busy / max(tally.wall, 1e-9):.2f} of "
          f"{os.cpu_count()} cores")  # fmt: skip
    print(f"workers={args.workers}")
    print(f"sessions={args.sessions}")
    print(f"changes={len(lat)}")
    print(f"median_ms={pct(lat, 50):.0f}")
    print(f"errors={len(tally.errors)}")
    print(f"browser_errors={len(tally.browser_errors)}")
    print(f"cpu_ms_per_change={per_change * 1e3:.0f}")
    print(f"dashboard_cores={dash_cpu / max(tally.wall, 1e-9):.2f}")
    print(f"machine_busy_cores={busy / max(tally.wall, 1e-9):.2f}")
    print(f"memory_growth_mb={end_rss - start_rss:.0f}")
    print(f"memory_growth_from_idle_mb={end_rss - idle:.0f}")
    print(f"load1_start={load_start:.2f}")
    print(f"load1_end={load_end:.2f}")
    print(f"p95_ms={pct(lat, 95):.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="dashboard processes behind the proxy (2)")
    parser.add_argument("--sessions", type=int, default=25, help="protocol-level sessions (25)")
    parser.add_argument("--seconds", type=float, default=120, help="length of the timed phase (120)")
    parser.add_argument("--gap-s", type=float, default=5.0, help="mean gap between a session's changes (5)")
    parser.add_argument("--plan-every", type=int, default=5, help="one session in N opens the Plan link (5)")
    parser.add_argument("--browsers", type=int, default=3, help="real Chromium sessions during the load (3)")
    parser.add_argument("--settle-s", type=float, default=10.0, help="pause after the warm-up (10)")
    parser.add_argument("--sample-s", type=float, default=5.0, help="memory/load sampling interval (5)")
    parser.add_argument("--timeout-s", type=float, default=120.0, help="give up on one run after this (120)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the values and gaps (0)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="llmcap-load-") as tmp:
        log = Path(tmp) / "serve.log"
        proc, url = start_serve(args.workers, log)
        try:
            pids = server_pids(proc.pid)
            print(f"llmcap serve --workers {args.workers} at {url}: {pids}; load average (1 min) "
                  f"{load_average_1min():.2f}", flush=True)  # fmt: skip
            asyncio.run(run(args, url, pids))
        finally:
            stop_serve(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
