"""`llmcap serve --workers N`: N dashboard processes behind HAProxy, one address.

One streamlit process runs one rerun at a time, so a team needs several. Each process listens on its own free port
on 127.0.0.1; HAProxy listens on the address the user gave and keeps each browser session on one process with a
cookie (streamlit keeps a session's state in the process that serves its WebSocket). The proxy's configuration is
generated into a temporary folder from the template shipped beside this module (haproxy.cfg.template).

Start-up: the processes first, then (once every one answers /_stcore/health) the proxy, then (once the proxy's
/healthz answers) the line with the address. Ctrl-C, SIGTERM or SIGHUP stops the proxy and every process (SIGTERM,
then SIGKILL after STOP_TIMEOUT_S) and removes the folder; so does any of them exiting on its own (exit 1).
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TextIO

HAPROXY_ENV = "LLMCAP_HAPROXY"  # an explicit haproxy binary (path or name); else PATH, then the sbin folders
SBIN_DIRS: tuple[str, ...] = ("/usr/local/sbin", "/usr/sbin", "/sbin")  # Debian's PATH for users lacks them
TEMPLATE = "haproxy.cfg.template"
COOKIE = "LLMCAP_BACKEND"
BACKEND_HEADER = "X-Llmcap-Backend"
HEALTH_PATH = "/healthz"
LOCAL = "127.0.0.1"
START_TIMEOUT_S = 90.0
PROXY_START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.25
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)

# No proxy from the environment (http_proxy and the like) between this process and its own children.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _Stop(Exception):
    """SIGTERM or SIGHUP arrived: stop like Ctrl-C."""


class _StartFailed(Exception):
    """A process exited or did not become healthy during start-up."""


def find_haproxy(env: dict[str, str] | None = None) -> str | None:
    """The haproxy binary: $LLMCAP_HAPROXY when set, else `haproxy` on PATH or in SBIN_DIRS; None when missing."""
    env = dict(os.environ) if env is None else env
    explicit = env.get(HAPROXY_ENV)
    if explicit:
        return shutil.which(explicit, path=env.get("PATH", os.defpath))
    return shutil.which("haproxy", path=os.pathsep.join([env.get("PATH", os.defpath), *SBIN_DIRS]))


def missing_proxy_message(workers: int) -> str:
    explicit = os.environ.get(HAPROXY_ENV)
    what = (
        f"${HAPROXY_ENV}={explicit} is not an executable"
        if explicit
        else f"haproxy is not installed (not on PATH, nor in {', '.join(SBIN_DIRS)})"
    )
    return (
        f"--workers {workers} runs HAProxy in front of the dashboard processes, and {what}.\n"
        "Install it with `sudo apt-get install haproxy` (Debian, Ubuntu), or `make proxy` in a checkout (as root).\n"
        "`llmcap serve --workers 1` (the default) needs no proxy."
    )


def bind_address(host: str, port: int) -> str:
    """HAProxy's `bind` argument: HAProxy reads the port after the last colon, so IPv6 goes without brackets."""
    return f"{host.strip('[]')}:{port}"


def local_url(host: str, port: int, path: str) -> str:
    """A URL that reaches host:port from this machine (a wildcard address is reached on loopback)."""
    host = host.strip("[]")
    return display_url({"": LOCAL, "0.0.0.0": LOCAL, "::": "::1"}.get(host, host), port) + path


def display_url(host: str, port: int) -> str:
    host = host.strip("[]")
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def render_config(bind: str, backends: list[tuple[str, int]]) -> str:
    """The proxy's configuration: the shipped template with the bind address and one server line per process."""
    template = resources.files("llmcap.cli").joinpath(TEMPLATE).read_text(encoding="utf-8")
    servers = "\n".join(f"    server {name} {LOCAL}:{port} cookie {name}" for name, port in backends)
    return string.Template(template).substitute(bind=bind, cookie=COOKIE, servers=servers)


def free_ports(count: int, avoid: int) -> list[int]:
    """`count` distinct free ports on 127.0.0.1 (other than `avoid`), chosen by the kernel."""
    held: list[socket.socket] = []
    try:
        while len(held) < count:
            s = socket.socket()
            s.bind((LOCAL, 0))
            if s.getsockname()[1] == avoid:
                s.close()
                continue
            held.append(s)
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


def check_listen(host: str, port: int) -> None:
    """A ValueError (exit 2) when host:port cannot be listened on (in use, not a local address, privileged)."""
    address = host.strip("[]")
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError as exc:
            raise ValueError(f"cannot listen on {display_url(host, port)}: {exc.strerror or exc}") from None


def answers_ok(url: str, timeout: float = 2.0) -> bool:
    """True when GET url answers 200 with the body "ok" (streamlit's /_stcore/health, the proxy's /healthz)."""
    try:
        with _OPENER.open(url, timeout=timeout) as resp:
            return resp.status == 200 and resp.read(64).strip() == b"ok"
    except (OSError, ValueError, http.client.HTTPException):
        return False


class _Group:
    """The child processes, in start order; stop() ends them all, latest first, within STOP_TIMEOUT_S."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, cmd: list[str], **kwargs) -> None:
        self.procs.append((name, subprocess.Popen(cmd, stdin=subprocess.DEVNULL, **kwargs)))

    def exited(self) -> tuple[str, int] | None:
        for name, proc in self.procs:
            code = proc.poll()
            if code is not None:
                return name, code
        return None

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for _, proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_S)


def _wait_until(ready: Callable[[], bool], group: _Group, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        ended = group.exited()
        if ended is not None:
            raise _StartFailed(f"{ended[0]} exited with {ended[1]} while waiting for {what}")
        if time.monotonic() > deadline:
            raise _StartFailed(f"no answer after {timeout_s:g} s while waiting for {what}")
        time.sleep(POLL_S)


def _raise_stop(signum, frame) -> None:
    raise _Stop(signal.Signals(signum).name)


def serve_workers(
    workers: int, host: str, port: int, worker_command: Callable[[int], list[str]], out: TextIO | None = None,
    env: dict[str, str] | None = None,
) -> int:  # fmt: skip
    """Run `workers` processes (worker_command(port) each) behind HAProxy on host:port until stopped.

    `env` is the dashboard processes' environment (None: this process's).
    A missing haproxy or an address it cannot listen on is a ValueError (the command line's exit 2) before anything
    starts. Returns 0 when stopped by Ctrl-C or a stop signal, 1 when start-up fails or a process exits on its own.
    """
    out = sys.stderr if out is None else out
    haproxy = find_haproxy()
    if haproxy is None:
        raise ValueError(missing_proxy_message(workers))
    check_listen(host, port)
    backends = [(f"w{i}", p) for i, p in enumerate(free_ports(workers, avoid=port), start=1)]
    folder = Path(tempfile.mkdtemp(prefix="llmcap-haproxy-"))
    group = _Group()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _raise_stop) for sig in STOP_SIGNALS} if main_thread else {}
    try:
        config = folder / "haproxy.cfg"
        config.write_text(render_config(bind_address(host, port), backends), encoding="utf-8")
        check = subprocess.run(
            [haproxy, "-c", "-q", "-f", str(config)], capture_output=True, text=True, timeout=30, check=False
        )
        if check.returncode != 0:
            problems = (check.stdout + check.stderr)[-2000:]
            raise _StartFailed(f"haproxy rejected the generated configuration:\n{problems}")
        for name, backend_port in backends:
            group.start(name, worker_command(backend_port), stdout=subprocess.DEVNULL, env=env)
        listed = ", ".join(f"{name} {LOCAL}:{backend_port}" for name, backend_port in backends)
        print(f"starting {workers} dashboard processes: {listed}", file=out, flush=True)
        _wait_until(
            lambda: all(answers_ok(f"http://{LOCAL}:{p}/_stcore/health") for _, p in backends),
            group, "every dashboard process to answer /_stcore/health", START_TIMEOUT_S,
        )  # fmt: skip
        group.start("haproxy", [haproxy, "-db", "-f", str(config)])
        health = local_url(host, port, HEALTH_PATH)
        _wait_until(lambda: answers_ok(health), group, f"HAProxy to answer {health}", PROXY_START_TIMEOUT_S)
        print(
            f"llmcap dashboard on {display_url(host, port)} "
            f"({workers} processes behind HAProxy, sessions kept by the cookie {COOKIE}; health: {HEALTH_PATH}). "
            "Ctrl-C stops them all.",
            file=out, flush=True,
        )  # fmt: skip
        while (ended := group.exited()) is None:
            time.sleep(POLL_S * 2)
        print(f"llmcap: {ended[0]} exited with {ended[1]}; stopping the others", file=out, flush=True)
        return 1
    except _StartFailed as exc:
        print(f"llmcap: error: {exc}", file=out, flush=True)
        return 1
    except (KeyboardInterrupt, _Stop):
        print("llmcap: stopping the proxy and the dashboard processes", file=out, flush=True)
        return 0
    finally:
        quiet = (signal.SIGINT, *STOP_SIGNALS) if main_thread else ()
        ignored = {sig: signal.signal(sig, signal.SIG_IGN) for sig in quiet}
        try:
            group.stop()
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            for sig, handler in (ignored | previous).items():
                signal.signal(sig, handler)
