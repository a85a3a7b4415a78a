"""Run every benchmark in bench/ and print one table of their figures against the targets.

Each benchmark prints its figures as `name=value` lines (its headline figure last). This script runs
them one by one in fresh interpreters, collects those lines and compares the known ones with the
targets the issues set. It exits non-zero only when a benchmark crashes, not when a target is missed:
benchmarks report, tests decide.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
FIGURE = re.compile(r"^([a-z][a-z0-9_]*)=(-?[0-9.]+(?:e[+-]?[0-9]+)?)$")
# figure name -> (what it measures, comparison, target)
TARGETS = {
    "points_per_s": ("estimator sweep points/s", ">=", 1_000_000),
    "predict_rows_per_s": ("llmcap predict rows/s (3,000 rows < 5 s)", ">=", 600),
    "requests_per_s": ("simulator requests/s (100k < 2 s)", ">=", 50_000),
    "planner_full_catalog_s": ("planner, whole catalog, s", "<=", 2.0),
    "day_plan_s": ("day plan, whole catalog, 96 intervals, s", "<=", 5.0),
    "page_rerun_ms": ("Estimate and Plan page rerun, worst median ms", "<=", 100),
    "p95_ms": ("25 protocol sessions, 2 workers, p95 ms", "<=", 1000),
    "memory_growth_mb": ("25 protocol sessions, memory growth MB", "<=", 100),
    "errors": ("25 protocol sessions, errors", "<=", 0),
    "browser_errors": ("3 Chromium sessions during the load, errors", "<=", 0),
    "page_rerun_estimate_worst_ms": ("Estimate page rerun, worst ms", "<=", 300),
    "page_rerun_plan_worst_ms": ("Plan page rerun (what-ifs), worst ms", "<=", 300),
}


def run(script: Path) -> tuple[dict[str, float], float, int]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    figures = {}
    for line in proc.stdout.splitlines():
        m = FIGURE.match(line.strip())
        if m:
            figures[m.group(1)] = float(m.group(2))
    return figures, elapsed, proc.returncode


def verdict(name: str, value: float) -> str:
    if name not in TARGETS:
        return ""
    _, op, target = TARGETS[name]
    ok = value >= target if op == ">=" else value <= target
    return f"{'met' if ok else 'MISSED'} ({op} {target:g})"


def main(argv: list[str]) -> int:
    scripts = [Path(a) for a in argv] or sorted(p for p in BENCH_DIR.glob("*.py") if p.name != Path(__file__).name)
    rows, failed = [], []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        figures, elapsed, rc = run(script)
        if rc:
            failed.append(script.name)
        for name, value in figures.items():
            rows.append((script.name, TARGETS.get(name, (name,))[0], name, value, verdict(name, value)))
        print(f"   ({elapsed:.1f} s, exit {rc})", flush=True)
    width = max([len(r[1]) for r in rows] + [10])
    print(f"\n{'benchmark':<28} {'figure':<{width}} {'value':>14}  target")
    for script, label, _, value, check in rows:
        print(f"{script:<28} {label:<{width}} {value:>14,.1f}  {check}")
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
