"""`llmcap` command line: a small dispatcher over command modules.

Each module in COMMAND_MODULES has `register(subparsers)`, which adds its sub-command(s) and
sets `func(args) -> int` as the handler. Adding a command is one line here.

User errors (an unknown id, a catalog that does not validate, a bad value) end with a short
message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from llmcap.catalog.loader import CATALOGS_ENV, CatalogError, UnknownIdError

PROG = "llmcap"
COMMAND_MODULES = (
    "llmcap.cli.catalog", "llmcap.cli.estimate", "llmcap.cli.plan", "llmcap.cli.compare_answers", "llmcap.cli.serve",
)
EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="LLM-inference capacity planner: memory, latency, throughput, cost and deployment plans.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument(
        "--catalogs",
        metavar="DIR",
        type=Path,
        help=f"read the catalogs from DIR instead of the shipped ones (also ${CATALOGS_ENV})",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse already reported
        return exc.code if isinstance(exc.code, int) else EXIT_USER_ERROR
    if args.catalogs is not None:
        if not (args.catalogs / "formats.yaml").is_file():
            return _fail([f"--catalogs {args.catalogs}: not a catalog folder (no formats.yaml there)"])
        os.environ[CATALOGS_ENV] = str(args.catalogs.resolve())
    try:
        return int(args.func(args) or 0)
    except UnknownIdError as exc:
        return _fail([str(exc)])
    except CatalogError as exc:
        return _fail([f"catalog problem: {p}" for p in exc.problems])
    except ValueError as exc:
        return _fail(str(exc).splitlines() or [type(exc).__name__])
    except BrokenPipeError:  # output piped into `head` and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _fail(lines: list[str]) -> int:
    for line in lines:
        if line.strip():
            print(f"{PROG}: error: {line.strip()}", file=sys.stderr)
    return EXIT_USER_ERROR


def _version() -> str:
    try:
        return version("llmcap")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
