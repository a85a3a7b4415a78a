"""Source scan of core/ and app/ (by syntax tree, so comments and docstrings do not count):

* no eval/exec/compile, no os.system, no subprocess with shell=True;
* no pickle (or marshal, shelve, dill, joblib, np.load(allow_pickle=True), read_pickle);
* YAML through yaml.safe_load only (no yaml.load, unsafe_load, full_load, or a yaml Loader class);
* unsafe_allow_html=True (and st.html / components.html) only with constant HTML, never with text a user can set.

Each rule is also run on a small bad snippet, so a broken scanner cannot pass silently.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = [p for d in ("core", "app") for p in sorted((ROOT / d).rglob("*.py"))]
BANNED_CALLS = {"eval", "exec", "compile", "__import__"}
BANNED_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "joblib", "cloudpickle"}
BANNED_ATTR_CALLS = {
    ("os", "system"): "os.system runs a shell",
    ("os", "popen"): "os.popen runs a shell",
    ("yaml", "load"): "yaml.load can build arbitrary objects; use yaml.safe_load",
    ("yaml", "unsafe_load"): "use yaml.safe_load",
    ("yaml", "full_load"): "use yaml.safe_load",
    ("yaml", "load_all"): "use yaml.safe_load",
    ("pd", "read_pickle"): "pickle",
    ("pandas", "read_pickle"): "pickle",
}
YAML_LOADERS = {"Loader", "UnsafeLoader", "FullLoader", "CLoader", "CUnsafeLoader", "CFullLoader"}
HTML_CALLS = {"html"}  # st.html(...), components.html(...): raw HTML by design


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _constant_names(tree: ast.Module) -> set[str]:
    """Module-level names assigned a string literal once (e.g. STYLE = "<style>...</style>")."""
    counts: dict[str, int] = {}
    literal: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    counts[t.id] = counts.get(t.id, 0) + 1
    for node in tree.body:
        single = isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        if single and _is_constant_text(node.value, set()):
            literal.add(node.targets[0].id)
    return {n for n in literal if counts.get(n) == 1}


def _is_constant_text(node: ast.AST, constants: set[str]) -> bool:
    """A string literal, a module constant, or literals joined with + (no f-string, no call, no variable)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.Name):
        return node.id in constants
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_constant_text(node.left, constants) and _is_constant_text(node.right, constants)
    return False


def problems_in(source: str, where: str = "<snippet>") -> list[str]:
    """Every rule broken in `source`, as 'where:line: what'."""
    tree = ast.parse(source)
    constants = _constant_names(tree)
    out: list[str] = []

    def bad(node: ast.AST, what: str) -> None:
        out.append(f"{where}:{getattr(node, 'lineno', 0)}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in BANNED_MODULES:
                    bad(node, f"imports {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in BANNED_MODULES:
                bad(node, f"imports from {node.module}")
            if (node.module or "").split(".")[0] == "yaml":
                for alias in node.names:
                    if alias.name in {"load", "unsafe_load", "full_load", "load_all"} | YAML_LOADERS:
                        bad(node, f"imports yaml.{alias.name}")
        elif isinstance(node, ast.Attribute) and node.attr in YAML_LOADERS and _name(node.value) == "yaml":
            bad(node, f"uses yaml.{node.attr}")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in BANNED_CALLS:
                bad(node, f"calls {func.id}()")
            if isinstance(func, ast.Attribute):
                owner = _name(func.value)
                if func.attr in BANNED_CALLS and owner == "builtins":
                    bad(node, f"calls builtins.{func.attr}()")
                if (owner, func.attr) in BANNED_ATTR_CALLS:
                    bad(node, f"calls {owner}.{func.attr}(): {BANNED_ATTR_CALLS[owner, func.attr]}")
                raw_html = func.attr in HTML_CALLS and owner in {"st", "components", "streamlit"}
                if raw_html and (not node.args or not _is_constant_text(node.args[0], constants)):
                    bad(node, f"{owner}.html() with HTML that is not a constant")
            kwargs = {k.arg: k.value for k in node.keywords if k.arg}
            if "shell" in kwargs and not (isinstance(kwargs["shell"], ast.Constant) and not kwargs["shell"].value):
                bad(node, "subprocess with shell=True")
            if "allow_pickle" in kwargs and not (
                isinstance(kwargs["allow_pickle"], ast.Constant) and kwargs["allow_pickle"].value is False
            ):
                bad(node, "allow_pickle")
            html = kwargs.get("unsafe_allow_html")
            if html is not None and not (isinstance(html, ast.Constant) and html.value is False):
                body = node.args[0] if node.args else kwargs.get("body")
                if body is None or not _is_constant_text(body, constants):
                    bad(node, "unsafe_allow_html with HTML that is not a constant (user text could reach it)")
    return out


def test_the_scan_covers_the_code():
    names = {p.relative_to(ROOT).as_posix() for p in SCANNED}
    assert {"core/catalog/loader.py", "app/state/urlstate.py", "app/streamlit_app.py", "app/views/estimate.py"} <= names


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_source_has_no_dangerous_calls(path):
    assert problems_in(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix()) == []


@pytest.mark.parametrize(
    ("snippet", "what"),
    [
        ("x = eval(s)", "calls eval()"),
        ("exec(code)", "calls exec()"),
        ("import builtins\nbuiltins.eval('1')", "calls builtins.eval()"),
        ("import pickle", "imports pickle"),
        ("from joblib import load", "imports from joblib"),
        ("import numpy as np\nnp.load(f, allow_pickle=True)", "allow_pickle"),
        ("import yaml\nyaml.load(text)", "calls yaml.load()"),
        ("import yaml\nyaml.load(text, Loader=yaml.FullLoader)", "uses yaml.FullLoader"),
        ("from yaml import unsafe_load", "imports yaml.unsafe_load"),
        ("import os\nos.system(cmd)", "calls os.system()"),
        ("import subprocess\nsubprocess.run(cmd, shell=True)", "shell=True"),
        ("st.markdown(f'<b>{name}</b>', unsafe_allow_html=True)", "unsafe_allow_html"),
        ("st.markdown(user_text, unsafe_allow_html=True)", "unsafe_allow_html"),
        ("st.markdown('<b>' + name + '</b>', unsafe_allow_html=True)", "unsafe_allow_html"),
        ("CSS = '<style>'\nCSS = user\nst.markdown(CSS, unsafe_allow_html=True)", "unsafe_allow_html"),
        ("st.html(page)", "st.html()"),
    ],
)
def test_the_scanner_catches_each_rule(snippet, what):
    found = problems_in(snippet)
    assert any(what in p for p in found), found


@pytest.mark.parametrize(
    "snippet",
    [
        "import yaml\nyaml.safe_load(text)\nyaml.safe_dump(d)",
        "st.markdown('<hr>', unsafe_allow_html=True)",
        "STYLE = '<style>a{}</style>'\nst.markdown(STYLE, unsafe_allow_html=True)",
        "st.markdown(user_text)",
        "st.markdown(user_text, unsafe_allow_html=False)",
        "subprocess.run(['ls'], shell=False)",
        "st.html('<p>constant</p>')",
        "# eval(x) in a comment\n'''exec(y) in a docstring'''",
    ],
)
def test_the_scanner_allows_safe_code(snippet):
    assert problems_in(snippet) == []
