"""The package's shape, read from the source by syntax tree: the library never imports the dashboard, the
command line or streamlit; the dashboard never imports the command line; nothing imports a later stage of the
data flow; no import cycle; no module over 600 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORE, APP = REPO / "core", REPO / "app"
# The stages of core/ (installed as llmcap) in the order the data flows; a module may import its own stage and
# earlier ones. model comes before catalog because the catalog loader parses each model's config.json.
STAGES = ("model", "catalog", "scenario", "perf", "estimate", "economics", "load", "plan", "calibration", "io", "cli")
# Leaf modules every stage may use: the frozen pydantic base and catalog schema, hostile-JSON parsing, table output.
BASE = {"llmcap.catalog.schema", "llmcap.io.safejson", "llmcap.io.output"}
MAX_LINES = 600


def _module(path: Path, root: Path, prefix: str) -> str:
    parts = [prefix, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    out = {_module(p, CORE, "llmcap"): p for p in CORE.rglob("*.py")}
    out |= {_module(p, APP, "llmcap.app"): p for p in APP.rglob("*.py")}
    return out


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "llmcap" and parts[1] in STAGES else None


SOURCES = _sources()
LIBRARY = {m: p for m, p in SOURCES.items() if not m.startswith(("llmcap.app", "llmcap.cli"))}


@pytest.mark.parametrize("module", sorted(LIBRARY))
def test_the_library_never_imports_the_app_the_cli_or_streamlit(module):
    bad = {i for i in _imports(LIBRARY[module]) if i.split(".")[0] in {"streamlit", "altair", "app"}}
    bad |= {i for i in _imports(LIBRARY[module]) if i.startswith(("llmcap.app", "llmcap.cli"))}
    assert not bad, f"{module} imports {sorted(bad)}"


def test_the_dashboard_never_imports_the_cli():
    bad = {m: sorted(i for i in _imports(p) if i.startswith("llmcap.cli")) for m, p in SOURCES.items()}
    assert not {m: b for m, b in bad.items() if b and m.startswith("llmcap.app")}


def test_app_state_is_free_of_streamlit():
    for module, path in SOURCES.items():
        if module.startswith("llmcap.app.state"):
            assert not {i for i in _imports(path) if i.split(".")[0] in {"streamlit", "altair"}}, module


@pytest.mark.parametrize("module", sorted(m for m in LIBRARY if _stage(m)))
def test_nothing_imports_a_later_stage(module):
    own = STAGES.index(_stage(module))
    later = {
        i for i in _imports(LIBRARY[module]) if i not in BASE and _stage(i) and STAGES.index(_stage(i)) > own
    }
    assert not later, f"{module} ({STAGES[own]}) imports later stages: {sorted(later)}"


def test_base_modules_import_nothing_of_llmcap():
    for module in BASE:
        assert not {i for i in _imports(SOURCES[module]) if i.startswith("llmcap")}, module


def test_no_import_cycle():
    graph = {m: {i for i in _imports(p) if i in SOURCES} for m, p in SOURCES.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(n) :], n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_no_import_hidden_inside_a_function():
    """A function-local import of llmcap is how a cycle hides; imports live at the top of each module."""
    for module, path in SOURCES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("llmcap"):
                    raise AssertionError(f"{module}.{fn.name} imports {node.module} inside the function")


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_no_module_over_600_lines(module):
    lines = SOURCES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{module}: {lines} lines"


# Polars calls that run a Python function on polars' own thread pool: the pool's workers then need the GIL, and with
# several sessions in one dashboard process a worker waiting for the GIL while a session thread waits for the pool
# stalled the process for good (bench/load_sessions.py, runs 1 and 9: py-spy showed the sessions in polars and the
# workers in pyo3's GIL guard, one of them in app/views/compare.py's map_elements).
POLARS_PYTHON_UDFS = {"map_elements", "map_batches", "map_groups", "map_rows", "apply"}


@pytest.mark.parametrize("module", sorted(_sources()))
def test_no_python_functions_on_polars_threads(module):
    tree = ast.parse(_sources()[module].read_text(encoding="utf-8"))
    calls = [
        n.func.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in POLARS_PYTHON_UDFS
    ]
    assert not calls, f"{module} maps a Python function over a polars column: {calls}; use a native expression"
