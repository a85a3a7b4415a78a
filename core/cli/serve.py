"""`llmcap serve`: start the dashboard from the installed package, from any directory.

`--workers N` (N > 1) starts N such processes behind HAProxy on the one address (llmcap.cli.workers).

The dashboard is the `app` extra (streamlit, altair, vl-convert); without it the command says how to install
it. Streamlit replaces this process (exec) on the entry script shipped inside the package (llmcap/app), with the
project's server settings (.streamlit/config.toml beside the script) and the address and port given here.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from pathlib import Path

from llmcap.catalog.loader import CATALOGS_ENV
from llmcap.cli import workers as workers_mod

MAX_WORKERS = 64
APP_EXTRA_HINT = "the dashboard needs the app extra: pip install 'llmcap[app]'"


def entry_script() -> Path | None:
    """The dashboard's entry script inside the installed package, or None when llmcap.app is not installed."""
    spec = importlib.util.find_spec("llmcap.app")
    if spec is None or not spec.submodule_search_locations:
        return None
    script = Path(next(iter(spec.submodule_search_locations))) / "streamlit_app.py"
    return script if script.is_file() else None


def streamlit_command(script: Path, host: str, port: int) -> list[str]:
    """The command line that serves `script` on host:port with this interpreter's streamlit."""
    return [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.address", host, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip


# glibc gives each thread that allocates its own malloc arena (up to 8 per core) and rarely returns their memory;
# streamlit runs each session's script in its own thread, so a process serving many sessions grows by arenas rather
# than by what it holds. Two arenas keep the resident set near the live data (bench/load_sessions.py, memory).
MALLOC_ENV = {"MALLOC_ARENA_MAX": "2"}


def dashboard_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a dashboard process: this one's, with MALLOC_ENV where the user has not set it."""
    env = dict(os.environ) if env is None else dict(env)
    return {**MALLOC_ENV, **env}


def _streamlit_importable() -> bool:
    try:
        importlib.import_module("streamlit")
    except ImportError:
        return False
    return True


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="start the dashboard (needs the app extra)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, local only)")
    p.add_argument("--port", type=int, default=8501, help="port (default: 8501)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="dashboard processes (default: 1); N > 1 runs N behind HAProxy on --host:--port, sessions kept on "
        "one process by a cookie, health at /healthz (needs haproxy: apt-get install haproxy)",
    )
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise ValueError(f"--port {args.port}: choose a port between 1 and 65535")
    if not 1 <= args.workers <= MAX_WORKERS:
        raise ValueError(f"--workers {args.workers}: choose between 1 and {MAX_WORKERS} processes")
    script = entry_script()
    if script is None or not _streamlit_importable():
        raise ValueError(APP_EXTRA_HINT)
    if args.workers > 1:
        if os.environ.get(CATALOGS_ENV):
            print(f"catalogs: {os.environ[CATALOGS_ENV]}", file=sys.stderr)
        return workers_mod.serve_workers(
            args.workers, args.host, args.port, lambda port: streamlit_command(script, workers_mod.LOCAL, port),
            env=dashboard_env(),
        )  # fmt: skip
    print(f"llmcap dashboard on http://{args.host}:{args.port} (Ctrl-C stops it)", file=sys.stderr)
    if os.environ.get(CATALOGS_ENV):
        print(f"catalogs: {os.environ[CATALOGS_ENV]}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    # streamlit takes this process's place, so a supervisor's SIGTERM (or Ctrl-C) reaches the server itself and no
    # child is left behind when this process is stopped
    os.execve(sys.executable, streamlit_command(script, args.host, args.port), dashboard_env())
    return 0  # not reached, but where execve is replaced (tests)
