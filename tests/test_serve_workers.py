"""`llmcap serve --workers N` (issue 16): N streamlit processes behind HAProxy on one address.

The live tests start the real command (`llmcap serve --workers 2` on a free port, 127.0.0.1 only) and talk to it
over HTTP: the proxy's /healthz, the app's page and /_stcore/health through the proxy, the affinity cookie (the
proxy names the process that answered in the X-Llmcap-Backend header; a request carrying the cookie always lands
on the process the cookie names, the WebSocket upgrade included, while requests without it are spread), and a
clean stop on SIGINT and on SIGTERM (exit 0, every child process gone, every port free).

They need haproxy. Outside CI a missing haproxy skips them; under CI=true (where `make test` installs it with
`make proxy`) it is a failure. The missing-proxy message is tested without haproxy in sight either way.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from llmcap.cli import main as cli_main
from llmcap.cli import serve as serve_mod
from llmcap.cli import workers

IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
HAPROXY = workers.find_haproxy()
LLMCAP = Path(sys.executable).with_name("llmcap")
HOST = "127.0.0.1"
START_S = 150  # two streamlit processes starting at once on a 2-core machine, then the proxy
STOP_S = 30
HTTP_S = 10
RENDER_MS = 90_000
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip

needs_haproxy = pytest.mark.skipif(
    HAPROXY is None and not IN_CI,
    reason="no haproxy: apt-get install -y haproxy (make test does, through `make proxy`)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Served:
    proc: subprocess.Popen
    port: int
    backends: dict[str, int]  # process name (the cookie's value) -> its port on 127.0.0.1
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def _start(folder: Path) -> Served:
    if HAPROXY is None:
        pytest.fail("CI=true but no haproxy on PATH or in /usr/sbin; `make test` installs it (`make proxy`)")
    port = _free_port()
    log = folder / "serve.log"
    (folder / "tmp").mkdir()
    env = os.environ | {"TMPDIR": str(folder / "tmp")}  # where the proxy's configuration folder goes
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(LLMCAP), "serve", "--workers", "2", "--host", HOST, "--port", str(port)],
            cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    served = Served(proc, port, {}, log)
    deadline = time.monotonic() + START_S
    while "llmcap dashboard on" not in served.text():
        if proc.poll() is not None or time.monotonic() > deadline:
            _kill(served)
            pytest.fail(f"`llmcap serve --workers 2` did not start (exit {proc.poll()}):\n{served.text()[-4000:]}")
        time.sleep(0.2)
    served.backends = {n: int(p) for n, p in re.findall(r"\b(w\d+) 127\.0\.0\.1:(\d+)", served.text())}
    assert sorted(served.backends) == ["w1", "w2"], served.text()
    return served


def _kill(served: Served) -> None:
    """Last resort after a failed test: the whole process group this test started."""
    if served.proc.poll() is None:
        os.killpg(served.proc.pid, signal.SIGKILL)
        served.proc.wait(timeout=STOP_S)


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return True
        return False


def _get(port: int, path: str, cookie: str | None = None, headers: dict[str, str] | None = None):
    """(status, headers as a dict of lists with lower-case names, body) of one request on a fresh connection."""
    conn = http.client.HTTPConnection(HOST, port, timeout=HTTP_S)
    try:
        conn.request("GET", path, headers=(headers or {}) | ({"Cookie": cookie} if cookie else {}))
        resp = conn.getresponse()
        heads: dict[str, list[str]] = {}
        for name, value in resp.getheaders():
            heads.setdefault(name.lower(), []).append(value)
        return resp.status, heads, resp.read()
    finally:
        conn.close()


def _backend(heads: dict[str, list[str]]) -> str:
    return heads[workers.BACKEND_HEADER.lower()][0]


def _affinity_cookie(heads: dict[str, list[str]]) -> str | None:
    for value in heads.get("set-cookie", []):
        name, _, rest = value.partition("=")
        if name.strip() == workers.COOKIE:
            return rest.split(";")[0]
    return None


def _stop_and_check(served: Served, sig: signal.Signals) -> None:
    children = _descendants(served.proc.pid)
    assert len(children) >= 3, f"expected 2 streamlit processes and haproxy under llmcap, found {children}"
    served.proc.send_signal(sig)
    try:
        code = served.proc.wait(timeout=STOP_S)
    except subprocess.TimeoutExpired:
        _kill(served)
        pytest.fail(f"`llmcap serve --workers 2` still running {STOP_S} s after {sig.name}:\n{served.text()}")
    assert code == 0, served.text()
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in children if _alive(p)], f"left behind after {sig.name}: {children}"
    for port in [served.port, *served.backends.values()]:
        assert not _listening(port), f"port {port} still in use after {sig.name}"
    assert not list((served.log.parent / "tmp").glob("llmcap-haproxy-*")), "the proxy's folder was left behind"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if HAPROXY is None and not IN_CI:
        pytest.skip("no haproxy")
    s = _start(tmp_path_factory.mktemp("serve-workers"))
    try:
        yield s
    finally:
        _kill(s)


@needs_haproxy
def test_the_proxy_health_endpoint_answers_ok(served):
    status, _, body = _get(served.port, workers.HEALTH_PATH)
    assert (status, body) == (200, b"ok")


@needs_haproxy
def test_the_dashboard_processes_run_with_two_malloc_arenas(served):
    """Each streamlit process behind the proxy gets MALLOC_ARENA_MAX=2 (one thread per session; see serve.py)."""
    found = 0
    for pid in _descendants(served.proc.pid):
        if "streamlit" not in _cmdline(pid):
            continue
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert b"MALLOC_ARENA_MAX=2" in environ, pid
        found += 1
    assert found == 2


@needs_haproxy
def test_a_request_through_the_proxy_reaches_streamlit(served):
    status, heads, body = _get(served.port, "/")
    assert status == 200 and heads["content-type"][0].startswith("text/html")
    assert b'<div id="root">' in body and b"<title>Streamlit</title>" in body
    status, _, body = _get(served.port, "/_stcore/health")
    assert (status, body) == (200, b"ok")


@needs_haproxy
def test_the_proxy_keeps_a_session_on_one_process(served):
    # A first visit gets the affinity cookie naming the process that answered it.
    _, heads, _ = _get(served.port, "/")
    first, cookie = _backend(heads), _affinity_cookie(heads)
    assert cookie == first and cookie in served.backends, heads
    # Every later request with the cookie lands there (pages, assets, health), for either process's cookie.
    for name in served.backends:
        seen = {_backend(_get(served.port, path, cookie=f"{workers.COOKIE}={name}")[1])
                for path in ("/", "/_stcore/health", "/_stcore/host-config", "/", "/_stcore/health", "/")}  # fmt: skip
        assert seen == {name}
    # Without the cookie the proxy spreads requests over both processes: the cookie is what keeps a session.
    assert {_backend(_get(served.port, "/_stcore/health")[1]) for _ in range(6)} == set(served.backends)


@needs_haproxy
def test_the_websocket_upgrade_goes_through_to_the_cookies_process(served):
    """Streamlit's session lives on the WebSocket /_stcore/stream: the upgrade passes the proxy, to the process the
    cookie names."""
    for name in served.backends:
        with socket.create_connection((HOST, served.port), timeout=HTTP_S) as s:
            key = base64.b64encode(os.urandom(16)).decode()
            s.sendall(
                f"GET /_stcore/stream HTTP/1.1\r\nHost: {HOST}:{served.port}\r\nOrigin: http://{HOST}:{served.port}\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nCookie: {workers.COOKIE}={name}\r\n\r\n".encode()
            )
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                assert chunk, head
                head += chunk
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 101"), lines
        assert f"{workers.BACKEND_HEADER.lower()}: {name}" in [line.lower() for line in lines]


@needs_haproxy
def test_the_generated_configuration_is_valid_haproxy(tmp_path):
    if HAPROXY is None:
        pytest.fail("CI=true but no haproxy")
    config = tmp_path / "haproxy.cfg"
    config.write_text(workers.render_config(workers.bind_address(HOST, 8501), [("w1", 40001), ("w2", 40002)]))
    text = config.read_text()
    assert "server w1 127.0.0.1:40001 cookie w1" in text and f"cookie {workers.COOKIE} insert" in text
    assert "$" not in text
    out = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True, timeout=HTTP_S)
    assert out.returncode == 0, out.stdout + out.stderr


# Two visits (the second a reload: a new streamlit session with the same cookie) through the proxy in Chromium;
# prints the backend of every response, the WebSocket URLs and the affinity cookie as one JSON line.
BROWSER_SESSION = """
import json, sys
from playwright.sync_api import expect, sync_playwright
base, chromium, header, cookie_name, render_ms, *args = sys.argv[1:]
render_ms = int(float(render_ms))
answered, sockets = [], []
with sync_playwright() as pw:
    browser = pw.chromium.launch(executable_path=chromium, args=args, timeout=render_ms)
    try:
        page = browser.new_page()
        page.on("response", lambda r: answered.append(r.headers.get(header.lower(), "")))
        page.on("websocket", lambda ws: sockets.append(ws.url))
        for _ in range(2):
            page.goto(base + "/", timeout=render_ms)
            app = page.get_by_test_id("stApp")
            expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=render_ms)
            expect(page.get_by_test_id("stMain").locator("h1, h2").first).to_be_visible()
            expect(page.get_by_test_id("stException")).to_have_count(0)
        cookie = {c["name"]: c["value"] for c in page.context.cookies()}[cookie_name]
    finally:
        browser.close()
print(json.dumps({"answered": answered, "sockets": sockets, "cookie": cookie}))
"""


@needs_haproxy
def test_a_page_works_through_the_proxy_in_chromium(served):
    """A real browser session through the proxy: the page's script runs over the WebSocket and renders without an
    error, and every response of the session, a reload included, comes from the process the browser's cookie names.
    Needs Debian's chromium (`make test` installs it); skipped without it outside CI, like tests/e2e."""
    chromium = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not shutil.which(chromium):
        if IN_CI:
            pytest.fail(f"CI=true but no chromium at {chromium}; `make test` installs it with apt-get")
        pytest.skip(f"no chromium at {chromium}: apt-get install -y chromium (make test does)")
    pytest.importorskip("playwright.sync_api")
    # in a child process: pytest-playwright's fixtures (tests/e2e) keep an asyncio loop running in this one, and
    # Playwright's sync API refuses to start inside it
    out = subprocess.run(
        [sys.executable, "-c", BROWSER_SESSION, f"http://{HOST}:{served.port}", chromium, workers.BACKEND_HEADER,
         workers.COOKIE, str(RENDER_MS), *CHROMIUM_ARGS],
        capture_output=True, text=True, timeout=4 * RENDER_MS / 1000 + 30,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    answered, sockets, cookie = seen["answered"], seen["sockets"], seen["cookie"]
    assert cookie in served.backends
    assert answered and set(answered) == {cookie}, answered
    assert len([u for u in sockets if u.endswith("/_stcore/stream")]) == 2, sockets


@needs_haproxy
def test_sigint_stops_the_proxy_and_every_process(tmp_path):
    served = _start(tmp_path)
    try:
        assert _get(served.port, workers.HEALTH_PATH)[2] == b"ok"
        _stop_and_check(served, signal.SIGINT)
    finally:
        _kill(served)


@needs_haproxy
def test_a_process_that_dies_stops_the_rest(tmp_path):
    """A dashboard process exiting on its own ends the command with 1 (for a supervisor), stopping the others."""
    served = _start(tmp_path)
    try:
        children = _descendants(served.proc.pid)
        w1 = next(p for p in children if f"--server.port\0{served.backends['w1']}\0" in _cmdline(p))
        os.kill(w1, signal.SIGKILL)
        assert served.proc.wait(timeout=STOP_S) == 1, served.text()
        assert "w1 exited with -9; stopping the others" in served.text()
        deadline = time.monotonic() + 5
        while any(_alive(p) for p in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in children if _alive(p)]
        assert not any(_listening(p) for p in [served.port, *served.backends.values()])
    finally:
        _kill(served)


@needs_haproxy
def test_sigterm_stops_the_proxy_and_every_process(served):
    """Last in the module: stops the shared server."""
    _stop_and_check(served, signal.SIGTERM)


def test_a_missing_proxy_is_reported_with_how_to_install_it(tmp_path, monkeypatch, capsys):
    """PATH without haproxy (and no sbin fallback): exit 2 before anything starts, naming apt-get and make."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(workers.HAPROXY_ENV, raising=False)
    monkeypatch.setattr(workers, "SBIN_DIRS", ())
    monkeypatch.setattr(workers, "free_ports", lambda *a, **k: pytest.fail("started something without a proxy"))
    assert cli_main.main(["serve", "--workers", "2", "--port", str(_free_port())]) == 2
    err = capsys.readouterr().err
    assert "haproxy is not installed" in err
    assert "apt-get install haproxy" in err and "make proxy" in err


def test_a_missing_proxy_is_reported_by_the_command(tmp_path):
    """The real command with a PATH that has no haproxy, looked up on PATH alone ($LLMCAP_HAPROXY=haproxy)."""
    env = os.environ | {"PATH": str(tmp_path), workers.HAPROXY_ENV: "haproxy"}
    out = subprocess.run([str(LLMCAP), "serve", "--workers", "2", "--port", str(_free_port())], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert "LLMCAP_HAPROXY=haproxy is not an executable" in out.stderr
    assert "apt-get install haproxy" in out.stderr and "make proxy" in out.stderr
    assert "Traceback" not in out.stderr


def test_one_worker_keeps_todays_single_process(monkeypatch):
    """--workers 1 (the default) runs one streamlit on --host:--port and never looks for a proxy."""
    calls: list[list[str]] = []
    envs: list[dict] = []
    monkeypatch.setattr(serve_mod.os, "execve", lambda exe, cmd, env: calls.append(cmd) or envs.append(env))
    monkeypatch.setattr(workers, "find_haproxy", lambda *a, **k: pytest.fail("looked for a proxy"))
    assert cli_main.main(["serve", "--port", "8642"]) == 0
    assert cli_main.main(["serve", "--workers", "1", "--host", "0.0.0.0", "--port", "8643"]) == 0
    assert [c[c.index("--server.port") + 1] for c in calls] == ["8642", "8643"]
    assert calls[1][calls[1].index("--server.address") + 1] == "0.0.0.0"
    assert all(e["MALLOC_ARENA_MAX"] == "2" for e in envs)


def test_a_users_malloc_setting_wins(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert serve_mod.dashboard_env()["MALLOC_ARENA_MAX"] == "8"
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    env = serve_mod.dashboard_env()
    assert env["MALLOC_ARENA_MAX"] == "2" and env["PATH"] == os.environ["PATH"]


@needs_haproxy
def test_a_port_in_use_is_a_user_error_before_anything_starts(monkeypatch, capsys):
    monkeypatch.setattr(workers, "free_ports", lambda *a, **k: pytest.fail("started processes on a busy port"))
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli_main.main(["serve", "--workers", "2", "--port", str(port)]) == 2
    assert f"cannot listen on http://{HOST}:{port}" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["0", "-1", "65"])
def test_a_worker_count_out_of_range_is_a_user_error(bad, capsys):
    assert cli_main.main(["serve", "--workers", bad]) == 2
    assert "--workers" in capsys.readouterr().err


def test_sigterm_leaves_no_process_behind_with_one_worker(tmp_path):
    """`llmcap serve` (one process) becomes streamlit itself, so a supervisor's SIGTERM stops the server and nothing
    is left listening (it used to run streamlit as a child that outlived a terminated parent)."""
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(LLMCAP), "serve", "--host", HOST, "--port", str(port)],
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    served = Served(proc, port, {}, log)
    try:
        deadline = time.monotonic() + START_S
        while not _listening(port):
            assert proc.poll() is None and time.monotonic() < deadline, served.text()[-4000:]
            time.sleep(0.2)
        assert "streamlit" in _cmdline(proc.pid) and not _descendants(proc.pid), _cmdline(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=STOP_S)
        assert not _listening(port), f"port {port} still in use after SIGTERM"
    finally:
        _kill(served)
