"""310 hostile URLs across every page, under Streamlit's AppTest: no exception reaches the page, and every bad
value (and every parameter a page does not read) is named in a warning.

URLs are drawn from a seeded generator (the same 310 every run): random keys and values, huge numbers,
negative and zero sizes, NaN and infinity, unicode, over-long text, repeated keys, junk keys. One AppTest per
page is reused where a page re-reads a changed URL (Estimate, Catalog, Accuracy, Plan); Compare reads its URL
once per session, so each Compare URL gets a fresh session.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from url_oracle import CHOICE_SETS, FLAG_KEYS, FLOAT_RANGES, HOSTILE, INT_RANGES, KNOWN_KEYS, is_good

from llmcap.app.state.urlstate import KEYS, MAX_VALUE_CHARS
from llmcap.estimate.compare import AXES, MAX_POINTS
from llmcap.io.scenario_io import encode_devices, encode_scenarios
from llmcap.scenario import Scenario

APP = Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py"
SEED = 20_261_122
COUNTS = {"estimate": 150, "compare": 70, "catalog": 40, "accuracy": 25, "plan": 25}
LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"
JUDGED = [k for k in KEYS if k in KNOWN_KEYS]  # a key the oracle does not know fails test_fuzz_urls
JUNK_KEYS = ["foo", "TP", "tp ", "<b>x</b>", "é", "🦙", "k" * 100, "model;drop", "x=y", "%00", "__proto__", "1"]
EXTREME = {  # valid but extreme values: the page must compute or explain, not crash
    "tp": ["4096", "64"], "pp": ["4096", "8"], "ep": ["1", "8"], "dp": ["1", "8"], "replicas": ["100000", "3"],
    "isl": ["1", "10000000"], "osl": ["1", "10000000"], "conc": ["1", "1000000", "max"], "n": ["1", "409600000"],
    "rate": ["1e-06", "1000000", "0.5"], "ttft": ["0.1", "10000000"], "tpot": ["0.1", "10000000"],
    "cv": ["0.01", "20"], "usd": ["0.0001", "10000"],
    "turns": ["1", "exponential:6", "10000", "gamma:10000:20"], "think": ["0.001", "86400"],
    "newtok": ["1", "1000000"], "sysp": ["0", "1000000"], "kvcpu": ["0.5", "100000"], "kvssd": ["1", "100000"],
    "smp": ["1", "64"], "maxout": ["1", "10000000"], "lora": ["1", "10000"], "lrank": ["1", "1024"],
}  # fmt: skip


def _good(rng: random.Random, key: str) -> str:
    if key in EXTREME:
        return rng.choice(EXTREME[key])
    if key == "pct":
        return rng.choice(["50", "p99", "95"])
    if key in FLAG_KEYS:
        return rng.choice(["0", "1"])
    names, _ = CHOICE_SETS[key]
    return rng.choice(sorted(names))


def _bad(rng: random.Random, key: str) -> str:
    while True:
        kind = rng.randrange(6)
        if kind == 0:
            text = rng.choice(HOSTILE)
        elif kind == 1:
            text = rng.choice("xé🦙9") * (MAX_VALUE_CHARS + rng.randrange(1, 5000))
        elif kind == 2 and (key in INT_RANGES or key == "n"):
            text = str(rng.choice([0, -1, -(10**30), 10**12, 10**40, INT_RANGES.get(key, (1, 409_600_000))[1] + 1]))
        elif kind == 3 and key in FLOAT_RANGES:
            text = rng.choice(["0", "-0.0", "-5", "1e308", "1e-400", "nan", "inf", str(FLOAT_RANGES[key][1] * 10)])
        else:
            text = "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(160, 0x2FFF)])) for _ in range(6))
        if not is_good(key, text):
            return text


def _maybe_repeat(rng: random.Random, value: str) -> str | list[str]:
    """A repeated key one time in six: Streamlit hands the page every value; the last one counts."""
    return [rng.choice(HOSTILE), value] if rng.randrange(6) == 0 else value


def _unknown(rng: random.Random, params: dict, bad: set[str], allowed: set[str]) -> None:
    for _ in range(rng.choice([0, 0, 1, 2])):
        key = rng.choice(JUNK_KEYS)
        if key not in allowed:
            params[key] = rng.choice(HOSTILE)
            bad.add(key[:37])


def estimate_urls(n: int, rng: random.Random, counter: list[int]) -> list[tuple[dict, set[str]]]:
    out = []
    for _ in range(n):
        params: dict = {}
        bad: set[str] = set()
        for key in rng.sample(JUDGED, rng.randrange(1, 7)):
            if rng.random() < 0.5:
                params[key] = _maybe_repeat(rng, _bad(rng, key))
                bad.add(key)
            else:
                params[key] = _good(rng, key)
        _unknown(rng, params, bad, set(KEYS) | {"dev"})
        if rng.random() < 0.1:
            params["dev"] = _bad_dev(rng, counter)
            bad.add("dev")
        out.append((params, bad))
    return out


def _bad_dev(rng: random.Random, counter: list[int]) -> str:
    """A bad `dev` value never seen before in the session (a session reads each `dev` value once)."""
    counter[0] += 1
    return rng.choice(["junk", "eJw", "A" * 30_000, "🦙", "=cmd"]) + str(counter[0])


def _good_dev(rng: random.Random, counter: list[int]) -> str:
    from llmcap.catalog.loader import load_catalog

    counter[0] += 1
    dev = load_catalog().device(rng.choice(["l4", "h100-sxm"]))
    return encode_devices([dev.model_copy(update={"id": f"my-dev-{counter[0]}"})])


def _cmp_value(rng: random.Random) -> tuple[str, bool]:
    """A `cmp=` value and whether it is bad (some scenario cannot be used)."""
    good = [
        Scenario(model=LLAMA8, hardware=rng.choice(["h100-sxm", "a100-sxm-80gb", "l4"]), tp=rng.choice([1, 2, 8]),
                 input_len=rng.choice([1, 1024, 10_000_000]), output_len=rng.choice([1, 256, 10_000_000]),
                 concurrency=rng.choice([1, 64, 1_000_000, "max"]), replicas=rng.choice([1, 100_000]))
        for _ in range(rng.randrange(1, 4))
    ]  # fmt: skip
    text = encode_scenarios(good)
    if rng.random() < 0.4:
        return text, False
    broken = rng.choice(
        [
            f"{LLAMA8},h100-sxm,0",
            f"{LLAMA8},h100-sxm,-4",
            f"{LLAMA8},h100-sxm,1,1,1,1,,,,nan",
            f"{LLAMA8},h100-sxm,,,,,,,,,,lots",
            f"{LLAMA8},no-such-gpu",
            "no/such-model,h100-sxm",
            f"{LLAMA8},h100-sxm,,,,,fp7",
            f"{LLAMA8},h100-sxm,1,2,3,4,5,6,7,8,9,10,11,12",
            rng.choice(HOSTILE),
            "x" * 20_000,
            ";".join([f"{LLAMA8},h100-sxm"] * 8),
        ]
    )
    return f"{text};{broken}" if rng.random() < 0.5 and len(broken) < 1000 else broken, True


NUMBER_BAD = ["0", "-1", "nan", "inf", "1e999", "abc", "🦙", "\x00", "=cmd|' /C calc'!A0", "x" * 300]
ANS_BAD = {
    "ans": ["foo", "nah/x@h100-sxm", "Qwen/Qwen3-8B@h100-sxm:samples=0", "Qwen/Qwen3-8B@h100-sxm:zz=1",
            "Qwen/Qwen3-8B@nope", "Qwen/Qwen3-8B@h100-sxm:tp=1e9", "🦙", "x" * 3000, "<script>alert(1)</script>"],
    "answl": ["nope", "🦙", "../../etc/passwd", "x" * 300],
    "ansrate": NUMBER_BAD + ["1e7"], "ansttft": NUMBER_BAD, "anstpot": NUMBER_BAD,
    "ansmax": ["0", "-5", "1.5", "10000001", "nan", "🦙", "１"],
}  # fmt: skip


def compare_urls(n: int, rng: random.Random, counter: list[int]) -> list[tuple[dict, set[str]]]:
    out = []
    for _ in range(n):
        params: dict = {}
        bad: set[str] = set()
        if rng.random() < 0.8:
            params["cmp"], is_bad = _cmp_value(rng)
            if is_bad:
                bad.add("cmp")
        axis = "concurrency"
        if rng.random() < 0.5:
            if rng.random() < 0.5:
                params["vary"] = _bad(rng, "model")  # text that is not an axis
                bad.add("vary")
            else:
                params["vary"] = axis = rng.choice(list(AXES))
        if rng.random() < 0.5:
            if AXES[axis].numeric and rng.random() < 0.6:
                params["vals"] = rng.choice(
                    ["0", "-1", "1.5", "nan", "abc", "99999999999", "1e999", ",".join(["1"] * (MAX_POINTS + 1)),
                     "🦙", "x" * 300]
                )  # fmt: skip
                bad.add("vals")
            else:
                params["vals"] = "1,2,4" if AXES[axis].numeric else "bf16,fp8"
        if rng.random() < 0.2:
            if rng.random() < 0.5:
                params["dev"] = _bad_dev(rng, counter)
                bad.add("dev")
            else:
                params["dev"] = _good_dev(rng, counter)
        if rng.random() < 0.4:  # the per-answer view's keys (llmcap.app.state.answers_url)
            key = rng.choice(sorted(ANS_BAD))
            params[key] = _maybe_repeat(rng, rng.choice(ANS_BAD[key]))
            bad.add(key)
        _unknown(rng, params, bad, {"cmp", "vary", "vals", "dev"})
        for key in rng.sample(JUDGED, rng.randrange(0, 3)):  # Estimate's keys are not read here
            params[key] = _good(rng, key)
            bad.add(key)
        out.append((params, bad))
    return out


def reader_urls(n: int, rng: random.Random, counter: list[int], page_keys: set[str]) -> list[tuple[dict, set[str]]]:
    """For pages that read only `dev` (Catalog, Accuracy): everything else must be named as unused."""
    out = []
    for _ in range(n):
        params: dict = {}
        bad: set[str] = set()
        for key in rng.sample(JUDGED, rng.randrange(0, 4)):
            params[key] = _maybe_repeat(rng, rng.choice([_good(rng, key), _bad(rng, key)]))
            bad.add(key)
        _unknown(rng, params, bad, page_keys)
        if rng.random() < 0.3:
            is_bad = rng.random() < 0.6  # judged by how it was made, not by its first bytes (they vary with the data)
            params["dev"] = _bad_dev(rng, counter) if is_bad else _good_dev(rng, counter)
            if is_bad:
                bad.add("dev")
        out.append((params, bad))
    return out


PLAN_KEYS = ["model", "workload", "isl", "osl", "rate", "ttft", "tpot", "pct", "e2e", "hw", "maxdev", "maxusd", "w",
             "kv", "engine", "top", "xbw", "xflops", "xprice", "xrate", "day", "pricing", "scaleup", "minrep",
             "budget", "smp", "maxout"]  # fmt: skip
PLAN_BAD = ["nan", "🦙", "=cmd|' /C calc'!A0", "1e999", "\x00", "<script>alert(1)</script>", "-inf", "x" * 300]


def plan_urls(n: int, rng: random.Random) -> list[tuple[dict, set[str]]]:
    """Bad values only (a valid new request would start a planner search each time), plus junk keys."""
    out = []
    for _ in range(n):
        params: dict = {}
        bad: set[str] = set()
        for key in rng.sample(PLAN_KEYS, rng.randrange(1, 5)):
            params[key] = _maybe_repeat(rng, rng.choice(PLAN_BAD))
            bad.add(key)
        _unknown(rng, params, bad, set(PLAN_KEYS) | {"dev"})
        out.append((params, bad))
    return out


def _cases() -> dict[str, list[tuple[dict, set[str]]]]:
    rng = random.Random(SEED)
    counter = [0]
    return {
        "estimate": estimate_urls(COUNTS["estimate"], rng, counter),
        "compare": compare_urls(COUNTS["compare"], rng, counter),
        "catalog": reader_urls(COUNTS["catalog"], rng, counter, {"dev"}),
        "accuracy": reader_urls(COUNTS["accuracy"], rng, counter, {"dev"}),
        "plan": plan_urls(COUNTS["plan"], rng),
    }


CASES = _cases()
PAGES = {"compare": "views/compare.py", "catalog": "views/catalog.py", "accuracy": "views/accuracy.py"}
PAGES["plan"] = "views/plan.py"


def _run(at: AppTest, params: dict) -> AppTest:
    at.query_params.clear()
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    return at


def _check(at: AppTest, params: dict, bad: set[str]) -> list[str]:
    """Problems with one page run: exceptions, and bad keys no warning names."""
    url = repr(params)[:300]
    if at.exception:
        return [f"{url}: exception {at.exception[0].message[:300]}"]
    shown = "\n".join(w.value for w in at.warning)
    return [f"{url}: no warning names `{key}`" for key in sorted(bad) if f"`{key}" not in shown]


def test_there_are_at_least_300_hostile_urls_on_every_page():
    assert sum(len(c) for c in CASES.values()) >= 300
    assert set(CASES) == {"estimate", *PAGES}
    source = APP.read_text()
    assert all(path in source for path in PAGES.values())


@pytest.mark.parametrize("page", ["estimate", "catalog", "accuracy", "plan"])
def test_hostile_urls_on_a_reused_session(page):
    at = AppTest.from_file(str(APP), default_timeout=120)
    if page != "estimate":
        at.switch_page(PAGES[page])
    at.run()
    assert not at.exception
    problems = []
    for params, bad in CASES[page]:
        problems += _check(_run(at, params), params, bad)
    assert not problems, "\n".join(problems[:20])


def test_hostile_urls_on_compare():
    problems = []
    for params, bad in CASES["compare"]:
        at = AppTest.from_file(str(APP), default_timeout=120)
        at.switch_page(PAGES["compare"])
        problems += _check(_run(at, params), params, bad)
    assert not problems, "\n".join(problems[:20])
