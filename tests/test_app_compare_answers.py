"""The Compare page's per-answer view (llmcap.load.answers, llmcap.app.views.compare_answers): renders without an
error, shows the library's figures for the same inputs, round-trips its inputs in the URL, warns about bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from llmcap.app.state.answers_url import ANSWER_KEYS, AnswerInputs, answer_query, parse_answer_keys
from llmcap.catalog.loader import load_catalog
from llmcap.load.answers import AnswerCandidate, answer_row, answer_table, candidate_text, parse_candidate
from llmcap.scenario import Slo

APP = Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py"
CATALOG = load_catalog()
QWEN8, QWEN32 = "Qwen/Qwen3-8B", "Qwen/Qwen3-32B"


def open_compare(**params: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    at.switch_page("views/compare.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def answers_table(at: AppTest):
    return next(d.value for d in at.dataframe if "seconds_per_answer" in d.value.columns)


def test_default_view_renders_and_equals_the_library():
    at = open_compare()
    assert not at.error and not at.warning
    shown = answers_table(at)
    a = AnswerInputs()
    lib = answer_table(list(a.candidates), a.workload, a.rate_rps, slo=Slo(ttft_ms=a.ttft_ms, tpot_ms=a.tpot_ms))
    assert list(shown["candidate"]) == lib["candidate"].to_list()
    for col in ("seconds_per_answer", "usd_per_answer", "joules_per_answer", "usd_per_answer_at_max_rate"):
        assert list(shown[col]) == pytest.approx(lib[col].to_list())
    assert set(shown["status"]) == {"ok"}
    labels = [b.label for b in at.get("download_button")]
    assert labels.count("PNG") == 4 and labels.count("SVG") == 4  # the page's three charts and this one


def test_url_inputs_reach_the_widgets_and_the_table_and_round_trip():
    q = {"ans": f"{QWEN8}@h100-sxm:samples=4;{QWEN8}@h100-sxm", "answl": "chat", "ansrate": "2", "ansttft": "1500",
         "anstpot": "80", "ansmax": "300"}  # fmt: skip
    at = open_compare(**q)
    assert not at.warning, [w.value for w in at.warning]
    assert at.selectbox(key="ans_workload").value == "chat" and at.number_input(key="ans_rate").value == 2
    assert at.number_input(key="ans_budget").value == 300
    shown = answers_table(at)
    cands = [AnswerCandidate(model=QWEN8, hardware="h100-sxm", samples=4), AnswerCandidate(model=QWEN8,
                                                                                           hardware="h100-sxm")]
    lib = answer_table(cands, "chat", 2.0, slo=Slo(ttft_ms=1500, tpot_ms=80), max_output_tokens=300)
    assert list(shown["usd_per_answer"]) == pytest.approx(lib["usd_per_answer"].to_list())
    assert max(shown["output_tokens_per_sample"]) <= 300
    assert {k: at.query_params[k] for k in q} == q


@pytest.mark.parametrize("key,value", [("ans", "foo"), ("ans", "nah/x@h100-sxm"), ("answl", "nope"),
                                       ("ansrate", "-1"), ("ansttft", "nan"), ("anstpot", "0"), ("ansmax", "1.5"),
                                       ("ansmax", "0")])  # fmt: skip
def test_a_bad_url_value_is_a_warning_naming_its_key(key, value):
    at = open_compare(**{key: value})
    assert any(f"`{key}`" in w.value for w in at.warning), [w.value for w in at.warning]
    assert len(answers_table(at)) == 2  # the default candidates, or the ones that parse


def test_n_samples_cost_between_one_and_n_times_one_sample_per_answer():
    one = answer_row(AnswerCandidate(model=QWEN8, hardware="h100-sxm"), "reasoning", 0.5)
    eight = answer_row(AnswerCandidate(model=QWEN8, hardware="h100-sxm", samples=8), "reasoning", 0.5)
    for key in ("usd_per_answer_at_max_rate", "usd_per_answer"):
        assert one[key] < eight[key] <= 8 * one[key]
    assert one["joules_per_answer"] < eight["joules_per_answer"] <= 8 * one["joules_per_answer"] * 1.05
    # a replica's answers per second: at least 1/8 of one sample's (the prompt is prefilled once)
    assert eight["max_answers_per_s_per_replica"] >= one["max_answers_per_s_per_replica"] / 8


def test_candidates_that_do_not_fit_or_are_unknown_are_rows_with_a_reason():
    big = answer_row(AnswerCandidate(model="Qwen/Qwen3-235B-A22B", hardware="h100-sxm"), "reasoning", 0.5)
    assert big["status"] == "does_not_fit" and "GB" in big["note"] and big["usd_per_answer"] is None
    bad = answer_row(AnswerCandidate(model=QWEN8, hardware="nope"), "reasoning", 0.5)
    assert bad["status"] == "error" and "nope" in bad["note"]


@pytest.mark.parametrize("text", ["", "foo", "@h100", "m@", "m@h:samples=0", "m@h:samples=x", "m@h:zz=1",
                                  "m@h:tp=99999", "m@h:samples=65", "m@h:samples"])  # fmt: skip
def test_hostile_candidate_texts_are_clear_errors(text):
    with pytest.raises(ValueError):
        parse_candidate(text)


CAND = st.builds(AnswerCandidate, model=st.sampled_from(sorted(CATALOG.models)[:20]),
                 hardware=st.sampled_from(sorted(CATALOG.hardware)[:20]), samples=st.integers(1, 64),
                 tp=st.sampled_from([1, 2, 4, 8]), weight_format=st.sampled_from(sorted(CATALOG.formats)))  # fmt: skip
INPUTS = st.builds(AnswerInputs, candidates=st.lists(CAND, min_size=1, max_size=6).map(tuple),
                   workload=st.sampled_from(sorted(CATALOG.workloads)), rate_rps=st.floats(1e-3, 1e6),
                   ttft_ms=st.floats(0.1, 1e7), tpot_ms=st.floats(0.1, 1e7),
                   max_output_tokens=st.none() | st.integers(1, 10_000_000))  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(INPUTS)
def test_url_round_trip(a):
    warnings = []
    back = parse_answer_keys(answer_query(a), CATALOG, lambda *w: warnings.append(w))
    assert warnings == [] and back == a
    assert all(parse_candidate(candidate_text(c)) == c for c in a.candidates)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(ANSWER_KEYS), st.text(max_size=40)))
def test_any_query_gives_valid_inputs_and_warns_only_about_given_keys(raw):
    warned = []
    a = parse_answer_keys(raw, CATALOG, lambda key, *_: warned.append(key))
    assert isinstance(a, AnswerInputs) and set(warned) <= set(raw)


def test_cli_compare_answers_json_equals_the_library(capsys):
    import json

    from llmcap.cli.main import main

    args = ["compare-answers", "--workload", "reasoning", "--rate", "0.5", "--candidate",
            f"{QWEN8}@h100-sxm:samples=8", "--candidate", f"{QWEN8}@h100-sxm", "--format", "json"]  # fmt: skip
    assert main(args) == 0
    body = json.loads(capsys.readouterr().out)
    lib = answer_table([AnswerCandidate(model=QWEN8, hardware="h100-sxm", samples=8),
                        AnswerCandidate(model=QWEN8, hardware="h100-sxm")], "reasoning", 0.5)  # fmt: skip
    for row, want in zip(body["candidates"], lib.to_dicts(), strict=True):
        for key in ("seconds_per_answer", "usd_per_answer", "joules_per_answer", "replicas"):
            assert row[key] == pytest.approx(want[key])


HOSTILE_FLAGS = [(["--candidate", "foo"], "--candidate"), (["--rate", "0"], "--rate"), (["--rate", "nan"], "--rate"),
                 (["--max-output-tokens", "0"], "--max-output-tokens"), (["--workload", "nope"], "nope"),
                 (["--ttft-ms", "-1"], "--ttft-ms")]  # fmt: skip


@pytest.mark.parametrize("extra,flag", HOSTILE_FLAGS)
def test_cli_compare_answers_hostile_flags_exit_2_naming_them(capsys, extra, flag):
    from llmcap.cli.main import main

    base = {"--candidate": f"{QWEN8}@h100-sxm", "--rate": "1"}
    given = dict(zip(extra[::2], extra[1::2], strict=True))
    args = ["compare-answers"] + [x for k, v in (base | given).items() for x in (k, v)]
    assert main(args) == 2
    assert flag in capsys.readouterr().err


def test_replicas_are_the_fewest_that_meet_the_objectives():
    from llmcap.load.rate import estimate_load
    from llmcap.scenario import Traffic

    c = AnswerCandidate(model=QWEN8, hardware="h100-sxm", samples=8)
    slo = Slo(ttft_ms=500, tpot_ms=20)
    row = answer_row(c, "reasoning", 3.0, slo=slo)
    assert row["status"] == "ok" and row["replicas"] > 1
    traffic = Traffic(rate_rps=3.0, workload="reasoning", samples=8, requests=2000)
    fewer = estimate_load(c.scenario(row["replicas"] - 1), traffic, slo, method="analytic", strict=False)
    assert (fewer.slo_attainment or 0.0) < 0.9  # one replica fewer misses them
    assert row["slo_attainment"] >= 0.9
