"""The package as a user installs it: build the wheel, install it into a fresh virtual environment, and use
it from a temporary directory, far from the checkout (issue 11).

The fresh environment gets llmcap from the wheel alone; its third-party dependencies (numpy, pydantic, ...) come
from the test's own environment through a .pth path line, so the test needs no download beyond the build
backend pinned in requirements.lock. A path line does not run the editable install's import hook, so the
checkout's sources cannot leak in: the test asserts llmcap is imported from the fresh environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"
SCRIPT = (
    "import json, llmcap; "
    "scn = llmcap.Scenario(model='meta-llama/Llama-3.1-8B-Instruct', hardware='h100-sxm', input_len=1000, "
    "output_len=200, concurrency=4); "
    "est = llmcap.estimate(scn); "
    "print(json.dumps({'file': llmcap.__file__, 'all': llmcap.__all__, 'fits': est.fits, "
    "'tpot_ms': est.serving.tpot_ms, 'devices': len(llmcap.load_catalog().hardware)}))"
)


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{' '.join(cmd)}\nstdout: {out.stdout[-2000:]}\nstderr: {out.stderr[-4000:]}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(wheel, the fresh environment's bin folder, an empty working directory)."""
    root = tmp_path_factory.mktemp("install")
    wheels = root / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)]
    _run([*build, "--build-constraint", str(LOCK)], cwd=root)
    wheel = next(wheels.glob("llmcap-*.whl"))
    fresh = root / "fresh"
    _run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], cwd=root)
    _run([sys.executable, "-m", "pip", "--python", str(fresh / "bin" / "python"), "install", "-q", "--no-deps",
          str(wheel)], cwd=root)  # fmt: skip
    site = Path(
        subprocess.run(
            [str(fresh / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    (site / "llmcap_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    work = root / "elsewhere"
    work.mkdir()
    return wheel, fresh / "bin", work


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "LLMCAP_CATALOGS"}}
    return env


def test_the_wheel_holds_one_package_named_llmcap_with_its_catalogs(installed):
    wheel, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"llmcap"}, tops
    assert "llmcap/catalogs/formats.yaml" in names
    assert "llmcap/catalogs/support.yaml" in names
    assert any(n.startswith("llmcap/catalogs/hardware/") for n in names)
    assert any(n.startswith("llmcap/catalogs/models/") and n.endswith("config.json") for n in names)
    assert "llmcap/app/streamlit_app.py" in names and "llmcap/app/.streamlit/config.toml" in names


def test_catalog_list_from_another_directory(installed):
    _, bin_dir, work = installed
    out = _run([str(bin_dir / "llmcap"), "catalog", "list", "hardware", "--format", "csv"], cwd=work, env=_env())
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("id,") and len(lines) > 100
    assert any(line.startswith("h100-sxm,") for line in lines)


def test_estimate_json_from_another_directory(installed):
    _, bin_dir, work = installed
    cmd = [str(bin_dir / "llmcap"), "estimate", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--hardware",
           "h100-sxm", "--engine", "vllm", "--input-len", "1000", "--output-len", "200", "--format", "json"]
    out = json.loads(_run(cmd, cwd=work, env=_env()).stdout)
    assert out["fits"] is True and out["serving"]["tpot_ms"] > 0


def test_the_public_api_from_another_directory(installed):
    _, bin_dir, work = installed
    out = json.loads(_run([str(bin_dir / "python"), "-c", SCRIPT], cwd=work, env=_env()).stdout)
    assert Path(out["file"]).resolve().is_relative_to(bin_dir.parent.resolve()), out["file"]
    assert {"Scenario", "estimate", "estimate_load", "plan", "load_catalog"} <= set(out["all"])
    assert out["fits"] is True and out["tpot_ms"] > 0 and out["devices"] > 100


def test_serve_says_how_to_get_the_dashboard_when_the_app_extra_is_missing(installed, tmp_path):
    """A fresh environment whose dependencies lack streamlit: `llmcap serve` names the extra to install."""
    _, bin_dir, work = installed
    # hide streamlit: a site dir placed first with a streamlit that cannot be imported
    shadow = tmp_path / "shadow"
    (shadow / "streamlit").mkdir(parents=True)
    (shadow / "streamlit" / "__init__.py").write_text("raise ImportError('hidden for the test')\n")
    env = _env() | {"PYTHONPATH": str(shadow)}
    out = subprocess.run([str(bin_dir / "llmcap"), "serve", "--port", "8599"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode != 0
    assert "pip install 'llmcap[app]'" in out.stderr
