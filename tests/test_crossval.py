"""Grouped cross-validation (calibration/crossval.py) and error bands (calibration/bands.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from llmcap.calibration import crossval, uncertainty
from llmcap.calibration.calibrate import data_hashes, fit_rows, resolve_rows
from llmcap.calibration.measured import ATTENTION_DP_SKIP, DEFAULT_FILES, default_data, read_all, read_measurements
from llmcap.catalog.loader import CATALOG_DIR, load_catalog
from llmcap.cli.main import main
from llmcap.estimate import bands

MEASURED = CATALOG_DIR / "measured"
# two models on two devices, three runs each: 2 x 2 groups, each fold fits in well under a second
COMBOS = {
    ("meta-llama/Llama-3.1-8B-Instruct", "h100-sxm"),
    ("meta-llama/Llama-3.1-8B-Instruct", "h200-sxm"),
    ("meta-llama/Llama-3.1-70B-Instruct", "h100-sxm"),
    ("meta-llama/Llama-3.1-70B-Instruct", "h200-sxm"),
}


@pytest.fixture(scope="module")
def subset(tmp_path_factory) -> Path:
    with (MEASURED / "measured_serving_hopper.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    taken: dict[tuple, int] = {}
    keep = []
    for r in rows:
        key = (r["model"], r["hardware"])
        if key in COMBOS and taken.get(key, 0) < 3:
            taken[key] = taken.get(key, 0) + 1
            keep.append(r)
    assert set(taken) == COMBOS
    path = tmp_path_factory.mktemp("cv") / "subset.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(keep)
    return path


@pytest.fixture(scope="module")
def rows(subset):
    ms, _ = read_all([subset])
    out, errors = resolve_rows(ms, load_catalog())
    assert not any(errors)
    return out


def quick_fit(r):
    return fit_rows(r, max_nfev=8)


def test_default_data_is_all_three_shipped_files():
    assert [p.name for p in default_data()] == list(DEFAULT_FILES)
    assert tuple(sorted(p.name for p in MEASURED.glob("*.csv"))) == DEFAULT_FILES


def test_more_rows_keep_their_layout_and_attention_dp_is_skipped_with_a_reason(tmp_path):
    src = MEASURED / "measured_serving_more.csv"
    with src.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields, first = reader.fieldnames, [next(reader), next(reader)]
    first[1] = {**first[1], "id": "dp2", "source_attention_dp_size": "2"}
    path = tmp_path / "more.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(first)
    ms, skipped = read_measurements(path)
    assert {m.id for m in ms} == {first[0]["id"]}
    assert ms[0].moe_tp == int(first[0]["source_moe_tp_size"]) and ms[0].attention_dp == 1
    assert skipped == [f"dp2: {ATTENTION_DP_SKIP}"]


def test_leave_one_group_out_never_fits_on_the_held_out_group(rows):
    seen: list[set[str]] = []

    def spy(r):
        seen.append({(m.id, m.metric) for m in r.ms})
        return quick_fit(r)

    cv = crossval.cross_validate(rows, fitter=spy)
    every = {(m.id, m.metric) for m in rows.ms}
    assert seen[0] == every  # in sample
    folds = [
        (scheme, g) for scheme in crossval.SCHEMES for g in sorted(set(cv.group_of(scheme)))
    ]  # the order the folds run in
    assert len(seen) == 1 + len(folds) == 1 + 2 + 2
    for (scheme, g), fitted in zip(folds, seen[1:], strict=True):
        attr = crossval.SCHEMES[scheme]
        held = {(m.id, m.metric) for m in rows.ms if getattr(m.scenario, attr) == g}
        assert held and not (fitted & held)
        assert fitted == every - held
        # and each held-out row was predicted in its own fold
        assert set(cv.schemes[scheme].group[[getattr(m.scenario, attr) == g for m in rows.ms]]) == {g}


def test_cross_validation_is_reproducible(rows):
    a = crossval.cross_validate(rows, fitter=quick_fit)
    b = crossval.cross_validate(rows, fitter=quick_fit)
    for name in a.schemes:
        np.testing.assert_array_equal(a.schemes[name].predicted, b.schemes[name].predicted)
    assert crossval.summarize(a, "engine") == crossval.summarize(b, "engine")
    pa, pb = crossval.pooled(a), crossval.pooled(b)
    assert uncertainty.fit_bands(pa.regime, pa.residual) == uncertainty.fit_bands(pb.regime, pb.residual)


def _synthetic(rng, n, sigma_vllm=0.1, sigma_other=0.5, shift=0.2):
    engine = np.where(rng.random(n) < 0.5, "vllm", "trtllm")
    reg = bands.regimes("ttft_ms", "datacenter_gpu", engine, 0.5, "compute")
    sigma = np.where(engine == "vllm", sigma_vllm, sigma_other)
    return reg, shift + sigma * rng.standard_normal(n), engine


def test_bands_contain_the_point_estimate():
    # every residual positive: the raw band would lie wholly below the prediction
    reg = bands.regimes(["tpot_ms"] * 50, "datacenter_gpu", "vllm", 0.1, "memory")
    table = bands.BandTable(uncertainty.fit_bands(reg, np.linspace(0.2, 0.6, 50)), {"*": 1.3})
    pred = np.array([1.0, 10.0, 250.0])
    low, high = bands.bands("tpot_ms", "datacenter_gpu", "vllm", 0.1, 1, pred, table=table)
    assert low.shape == high.shape == pred.shape
    assert np.all(low <= pred) and np.all(pred <= high)
    assert np.all(low < pred)  # the band still says: measured lies below
    # unseen regimes fall back (to the global band) and still contain the prediction
    low, high = bands.bands(["e2e_ms", "ttft_ms"], "edge", "llama.cpp", np.nan, "?", 5.0, table=table)
    assert np.all(low <= 5.0) and np.all(high >= 5.0)


def test_bands_widen_where_residuals_are_larger():
    rng = np.random.default_rng(0)
    reg, r, _ = _synthetic(rng, 4000)
    table = bands.BandTable(uncertainty.fit_bands(reg, r))
    low, high = bands.bands("ttft_ms", "datacenter_gpu", ["vllm", "trtllm"], 0.5, 0, 100.0, table=table)
    width = np.log(high / low)
    assert width[1] > 3 * width[0]


def test_sign_convention_and_coverage_on_a_lognormal_set():
    """Over-prediction (residuals > 0) puts the band below the prediction, and it covers ~80% of new draws."""
    rng = np.random.default_rng(1)
    reg, r_fit, _ = _synthetic(rng, 6000, sigma_vllm=0.2, shift=0.1)  # q10 < 0 < q90: no clipping
    table = bands.BandTable(uncertainty.fit_bands(reg, r_fit))
    reg_new, r_new, _ = _synthetic(rng, 6000, sigma_vllm=0.2, shift=0.1)
    measured = np.full(len(r_new), 100.0)
    predicted = measured * np.exp(r_new)  # r = log(predicted / measured)
    low, high = bands.interval(predicted, *table.edges(reg_new))
    inside = (low <= measured) & (measured <= high)
    assert 0.77 <= inside.mean() <= 0.83
    assert np.all(np.log(predicted / low) > np.log(high / predicted))  # biased high: measured mostly lies below


def test_width_factor_restores_coverage_for_a_biased_group():
    rng = np.random.default_rng(2)
    r = 0.2 * rng.standard_normal(2000)
    q10, q90 = np.quantile(r, [0.1, 0.9])
    shifted = r + 0.3  # a held-out group with its own bias
    factors = uncertainty.choose_factors(shifted, np.full(2000, q10), np.full(2000, q90), np.full(2000, "tpot_ms"))
    k = factors["tpot_ms"]
    assert k > 1
    assert abs(np.mean((shifted >= k * q10) & (shifted <= k * q90)) - 0.8) < 0.02


def test_fallback_drops_keys_in_order():
    rng = np.random.default_rng(3)
    reg, r, _ = _synthetic(rng, 40)  # ~20 per engine: below MIN_RESIDUALS, so engine (and finer) is dropped
    entries = uncertainty.fit_bands(reg, r)
    kept = [tuple(k for k in bands.KEYS if e[k] != bands.ANY) for e in entries]
    assert ("device_class", "metric") in kept and all("engine" not in k for k in kept)
    assert kept[-1] == ()


def test_validate_cv_prints_the_table(subset, capsys, tmp_path, monkeypatch):
    assert main(["validate", "--cv", "--data", str(subset)]) == 0
    out = capsys.readouterr().out
    assert "leave one model out" in out and "mape_lomo" in out and "coverage_pct" in out
    monkeypatch.setattr(uncertainty, "catalog_dir", lambda: tmp_path)
    assert main(["validate", "--cv", "--write", "--format", "json", "--data", str(subset)]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["groups"] == {"leave_model_out": 2, "leave_device_out": 2}
    assert {r["slice"] for r in rep["summary"]} == set(crossval.SLICES)
    doc = yaml.safe_load((tmp_path / bands.FILE).read_text())
    assert doc["data"][0]["file"] == subset.name and doc["bands"][-1]["metric"] == bands.ANY
    low, high = bands.bands("ttft_ms", "datacenter_gpu", "vllm", 0.3, 0, 50.0, table=bands.load_table())
    assert low <= 50.0 <= high


def test_shipped_band_table_loads():
    doc = yaml.safe_load((CATALOG_DIR / bands.FILE).read_text())
    assert doc["data"] == data_hashes(default_data()), "measured data changed: re-run llmcap validate --cv --write"
    table = bands.load_table(CATALOG_DIR / bands.FILE)
    pred = np.array([[10.0, 20.0], [30.0, 40.0]])
    low, high = bands.bands(
        "tpot_ms", "datacenter_gpu", [["vllm", "sglang"], ["trtllm", "x"]], [[0.1], [0.9]], "memory", pred, table=table
    )
    assert low.shape == (2, 2) and np.all(low <= pred) and np.all(pred <= high) and np.all(high > low)
