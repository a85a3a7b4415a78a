"""`llmcap catalog list|show|validate`: argument parsing and printing over llmcap.catalog.tables."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llmcap.catalog.loader import Catalog, catalog_dir, check_catalog_file, load_catalog, validate_catalog
from llmcap.catalog.tables import TABLES, catalog_counts, catalog_rows, find_entries, flatten
from llmcap.io.output import FORMATS, render, to_json
from llmcap.load.day import PROFILES_FILE, parse_presets
from llmcap.load.lora_evidence import LORA_EVIDENCE_FILE, LoraEvidence
from llmcap.load.offload import OFFLOAD_FILE, OffloadCatalog
from llmcap.plan.autoscale import STARTUP_FILE, StartupCatalog
from llmcap.plan.price_options import OPTIONS_FILE, OptionsCatalog

# The catalog files read outside the main catalog (llmcap.catalog.loader.catalog_file), each with its validator:
# `catalog validate` checks them too, so a broken file is reported before a command trips on it.
SIDE_FILES = (
    (PROFILES_FILE, parse_presets),
    (OPTIONS_FILE, OptionsCatalog.model_validate),
    (STARTUP_FILE, StartupCatalog.model_validate),
    (OFFLOAD_FILE, OffloadCatalog.model_validate),
    (LORA_EVIDENCE_FILE, LoraEvidence.model_validate),
)

# -- commands --------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("catalog", help="list, show and validate the catalogs")
    commands = parser.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)

    root = argparse.ArgumentParser(add_help=False)
    root.add_argument("--root", type=Path, help="catalog folder (default: the shipped catalogs or $LLMCAP_CATALOGS)")
    fmt = argparse.ArgumentParser(add_help=False)
    fmt.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")

    p = commands.add_parser("list", parents=[root, fmt], help="one catalog as a table, CSV or JSON")
    p.add_argument("kind", choices=list(TABLES), help="which catalog")
    p.set_defaults(func=cmd_list)

    p = commands.add_parser("show", parents=[root, fmt], help="everything known about one id, with its sources")
    p.add_argument("id", help="hardware, model (or alias), format, KV format, workload, cloud price or carbon id")
    p.set_defaults(func=cmd_show)

    p = commands.add_parser("validate", parents=[root], help="check every catalog file; exit 1 on problems")
    p.set_defaults(func=cmd_validate)


def cmd_list(args: argparse.Namespace) -> int:
    rows = catalog_rows(_load(args), args.kind)
    sys.stdout.write(render(rows, args.format))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    entries = find_entries(_load(args), args.id)
    if args.format == "json":
        sys.stdout.write(to_json(entries[0] if len(entries) == 1 else entries))
        return 0
    blocks = [render(flatten(e), args.format) for e in entries]
    sys.stdout.write("\n".join(blocks))
    return 0


def _load(args: argparse.Namespace) -> Catalog:
    return load_catalog(args.root) if args.root else load_catalog()


def cmd_validate(args: argparse.Namespace) -> int:
    root = args.root or catalog_dir()
    problems = validate_catalog(root)
    for name, parse in SIDE_FILES:
        problems += check_catalog_file(root, name, parse)
    for p in problems:
        print(p)
    if problems:
        files = len({p.file for p in problems})
        print(f"{len(problems)} problem(s) in {files} file(s) under {root}", file=sys.stderr)
        return 1
    counts = catalog_counts(_load(args))
    print(f"catalog OK ({root}): " + ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items())
          + f"; {len(SIDE_FILES)} side files ({', '.join(name for name, _ in SIDE_FILES)})")  # fmt: skip
    return 0
