"""Hostile uploads: every parser caps its input in bytes and answers bad files with a clear message; every page
that takes an upload shows that message instead of a traceback; CSV exports neutralize formula cells.

Parsers: llmcap.model.hfconfig.parse_config_bytes (config.json), llmcap.load.trace.parse_trace (trace CSV),
llmcap.io.scenario_io.load_scenario_file (scenario file). Streamlit's own cap: server.maxUploadSize.
"""

from __future__ import annotations

import ast
import json
import tomllib
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from llmcap.app.views.plan_day import UPLOAD_LABEL as DAY_UPLOAD_LABEL
from llmcap.catalog.loader import load_catalog
from llmcap.io.output import FORMULA_PREFIXES, csv_safe, render, to_frame
from llmcap.io.scenario_io import MAX_FILE_BYTES, load_scenario_file
from llmcap.load.day import DayError, parse_day_file
from llmcap.load.trace import MAX_TRACE_BYTES, TraceError, parse_trace
from llmcap.model.hf_limits import MAX_CONFIG_BYTES, ConfigError, ConfigJsonError
from llmcap.model.hfconfig import parse_config, parse_config_bytes

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app" / "streamlit_app.py"
LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"
CONFIG = load_catalog().model(LLAMA8).config_path.read_bytes()
CFG = json.loads(CONFIG)
HUNDRED_MB = 100 * 1024 * 1024
INJECTION = "=cmd|' /C calc'!A0"


def _config(**changes) -> bytes:
    return json.dumps({**CFG, **changes}).encode()


# -- Streamlit's cap and the parsers' caps ----------------------------------------------------------------------------
def test_streamlit_caps_uploads_and_the_parsers_caps_fit_inside():
    for path in (ROOT / ".streamlit" / "config.toml", ROOT / "app" / ".streamlit" / "config.toml"):
        limit_mb = tomllib.loads(path.read_text())["server"]["maxUploadSize"]
        assert 1 <= limit_mb <= 50, path  # Streamlit's default is 200 MB
        assert limit_mb * 1024 * 1024 < HUNDRED_MB  # a 100 MB file never reaches the app
    assert limit_mb * 1024 * 1024 >= MAX_TRACE_BYTES
    assert MAX_CONFIG_BYTES <= 5_000_000 and MAX_FILE_BYTES <= 5_000_000


@pytest.fixture(scope="module")
def hundred_mb() -> bytes:
    return b" " * HUNDRED_MB


def test_a_100_mb_file_is_refused_by_every_parser_before_it_is_read(hundred_mb):
    with pytest.raises(ConfigJsonError, match="config.json is larger than 5 MB"):
        parse_config_bytes(hundred_mb)
    with pytest.raises(TraceError, match="larger than"):
        parse_trace(hundred_mb)
    with pytest.raises(ValueError, match="larger than 5 MB"):
        load_scenario_file(hundred_mb)
    with pytest.raises(DayError, match="larger than"):
        parse_day_file(hundred_mb, "day.csv")


# -- config.json ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (CONFIG[: len(CONFIG) // 2], "is not valid JSON: "),
        (b"", "is not valid JSON: Expecting value"),
        (b"{nope", "is not valid JSON"),
        (b"\xff\xfe\x00{", "is not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested more than"),
        (b'{"num_hidden_layers": ' + b"9" * 5000 + b"}", "digits) is out of range"),
        (_config(hidden_size=float("nan")), "NaN is not a number"),
        (_config(hidden_size=1e999), "Infinity is not a number"),
    ],
)
def test_config_bytes_that_are_not_json_say_so(data, message):
    with pytest.raises(ConfigJsonError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_config_bytes(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[]", "config must be a JSON object, got list"),
        (b'"llama"', "config must be a JSON object, got str"),
        (b"null", "config must be a JSON object"),
        (_config(hidden_size="4096"), "field 'hidden_size' must be an integer, got str"),
        (_config(hidden_size=True), "field 'hidden_size' must be an integer, got bool"),
        (_config(hidden_size=4096.5), "field 'hidden_size' must be an integer"),
        (_config(num_hidden_layers=0), "field 'num_hidden_layers' = 0 is outside the plausible range"),
        (_config(num_hidden_layers=-32), "field 'num_hidden_layers' = -32 is outside the plausible range"),
        (_config(num_hidden_layers=1_000_000_000), "field 'num_hidden_layers' = 1000000000 is outside"),
        (_config(vocab_size=10**25), "field 'vocab_size'"),
        (_config(num_attention_heads=0), "field 'num_attention_heads' = 0"),
        (_config(intermediate_size=-1), "intermediate_size"),
        (_config(num_key_value_heads=64), "exceeds the 32 attention heads"),
        (_config(text_config=[]), "text_config"),
    ],
)
def test_config_with_wrong_types_or_absurd_dimensions_names_the_field(data, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as info:
        parse_config_bytes(data)
    assert not isinstance(info.value, ConfigJsonError)


def test_a_good_config_parses_the_same_from_bytes():
    assert parse_config_bytes(CONFIG) == parse_config(CFG)
    assert parse_config_bytes(b"\xef\xbb\xbf" + CONFIG) == parse_config(CFG)  # a BOM is fine


# -- trace CSV --------------------------------------------------------------------------------------------------------
TRACE_HEAD = "timestamp,input_tokens,output_tokens\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (TRACE_HEAD + f"0,100,20\n1,{INJECTION},5\n", "line 3"),
        (TRACE_HEAD + f"{INJECTION},100,20\n", "timestamp"),
        (TRACE_HEAD + "0,100,20\n1,-5,5\n", "input_tokens"),
        (TRACE_HEAD + "0,100,20\n1,100,99999999999\n", "output_tokens"),
        (TRACE_HEAD + "0,100,20\nnan,100,5\n", "timestamp"),
        (TRACE_HEAD + "0,100,20\ninf,100,5\n", "timestamp"),
        (TRACE_HEAD + "0,100,20\n1,10", "line 3"),
        ("a,b,c\n1,2,3\n", "timestamp"),
        ("", "empty"),
        (TRACE_HEAD, "no data rows"),
    ],
)
def test_bad_traces_name_the_problem_and_the_place(text, message):
    with pytest.raises(TraceError, match=message) as info:
        parse_trace(text.encode())
    assert len(str(info.value)) < 1_000


def test_trace_that_is_not_utf8_or_has_too_many_rows_is_refused():
    with pytest.raises(TraceError, match="UTF-8"):
        parse_trace(b"timestamp,input_tokens,output_tokens\n\xff\xfe,1,1\n")
    with pytest.raises(TraceError, match="larger than"):
        parse_trace((TRACE_HEAD + "0,1,1\n" * 100).encode(), max_bytes=200)
    with pytest.raises(TraceError, match="rows"):
        parse_trace((TRACE_HEAD + "0,1,1\n" * 100).encode(), max_rows=10)


# -- pages that take uploads ------------------------------------------------------------------------------------------
HOSTILE_JSON = [
    ("truncated.json", CONFIG[: len(CONFIG) // 2]),
    ("deep.json", b"[" * 50_000 + b"]" * 50_000),
    ("digits.json", b'{"hidden_size": ' + b"9" * 5000 + b"}"),
    ("nan.json", _config(hidden_size=float("nan"))),
    ("list.json", b"[1, 2, 3]"),
    ("billion.json", _config(num_hidden_layers=1_000_000_000)),
    ("negative.json", _config(hidden_size=-4096)),
    ("binary.json", bytes(range(256)) * 4),
]
HOSTILE_CSV = [
    ("inject.csv", (TRACE_HEAD + f"0,100,20\n1,{INJECTION},5\n").encode()),
    ("truncated.csv", (TRACE_HEAD + "0,100,20\n1,1").encode()),
    ("binary.csv", bytes(range(256)) * 4),
    ("negative.csv", (TRACE_HEAD + "0,-100,20\n").encode()),
]


def _uploader(at: AppTest, label: str):
    return next(u for u in at.get("file_uploader") if u.label == label)


def _page(path: str | None = None, **query: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.query_params.update(query)
    at.run()
    if path:
        at.switch_page(path).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _errors(at: AppTest) -> str:
    return " | ".join(e.value for e in [*at.error, *at.warning])


@pytest.mark.parametrize(("name", "data"), HOSTILE_JSON, ids=[n for n, _ in HOSTILE_JSON])
def test_estimate_config_upload_shows_a_message_not_a_traceback(name, data):
    at = _page()
    _uploader(at, "Or upload a config.json").set_value((name, data, "application/json")).run()
    assert not at.exception, [e.message[:300] for e in at.exception]
    assert name in _errors(at)
    assert not at.session_state["custom_models"]


@pytest.mark.parametrize(("name", "data"), HOSTILE_CSV, ids=[n for n, _ in HOSTILE_CSV])
def test_estimate_trace_upload_shows_a_message_not_a_traceback(name, data):
    at = _page(rate="2", osl="16")  # the trace upload is offered in request-rate mode
    _uploader(at, "Trace CSV (lengths)").set_value((name, data, "text/csv")).run()
    assert not at.exception, [e.message[:300] for e in at.exception]
    assert f"{name} cannot be used" in _errors(at)


@pytest.mark.parametrize(("name", "data"), HOSTILE_JSON, ids=[n for n, _ in HOSTILE_JSON])
def test_catalog_uploads_show_a_message_not_a_traceback(name, data):
    at = _page("views/catalog.py")
    _uploader(at, "A model's config.json").set_value((name, data, "application/json"))
    next(b for b in at.button if b.label == "Add model").click().run()
    assert not at.exception, [e.message[:300] for e in at.exception]
    assert name in _errors(at)
    _uploader(at, "Load a scenario file").set_value((name, data, "application/json")).run()
    assert not at.exception, [e.message[:300] for e in at.exception]
    assert "scenario file not loaded" in _errors(at)
    assert not at.session_state["custom_models"] and not at.session_state["custom_devices"]


@pytest.mark.parametrize(("name", "data"), HOSTILE_CSV, ids=[n for n, _ in HOSTILE_CSV])
def test_catalog_trace_upload_shows_a_message_not_a_traceback(name, data):
    at = _page("views/catalog.py")
    _uploader(at, "A request trace (CSV)").set_value((name, data, "text/csv")).run()
    assert not at.exception, [e.message[:300] for e in at.exception]
    assert f"{name} cannot be used" in _errors(at)


@pytest.mark.parametrize(("name", "data"), HOSTILE_JSON[:4], ids=[n for n, _ in HOSTILE_JSON[:4]])
def test_compare_scenario_file_upload_shows_a_message_not_a_traceback(name, data):
    at = _page("views/compare.py")
    _uploader(at, "Load a scenario file").set_value((name, data, "application/json")).run()
    assert not at.exception, [e.message[:300] for e in at.exception]
    assert "scenario file not loaded" in _errors(at)


HOSTILE_DAY = [
    *HOSTILE_CSV,
    ("rates-inject.csv", f"time,rate_rps\n00:00,{INJECTION}\n01:00,2\n".encode()),
    ("rates-short.csv", b"time,rate_rps\n00:00,1\n01:00,2\n"),
    ("rates-uneven.csv", b"time,rate_rps\n0,1\n60,1\n180,1\n"),
]


@pytest.mark.parametrize(("name", "data"), HOSTILE_DAY, ids=[n for n, _ in HOSTILE_DAY])
def test_plan_day_upload_shows_a_message_not_a_traceback(name, data):
    at = _page("views/plan.py", hw="l4", rate="2", w="fp8")
    _uploader(at, DAY_UPLOAD_LABEL).set_value((name, data, "text/csv")).run()
    assert not at.exception, [e.message[:300] for e in at.exception]
    errors = _errors(at)
    assert "day file cannot be used" in errors and name in errors


def test_plan_day_upload_of_good_rates_draws_the_day_view():
    at = _page("views/plan.py", hw="l4", rate="2", w="fp8")
    rates = "time,rate_rps\n" + "".join(f"{h:02d}:00,{1 + (h > 8)}\n" for h in range(24))
    _uploader(at, DAY_UPLOAD_LABEL).set_value(("day.csv", rates.encode(), "text/csv")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("policy" in d.value.columns for d in at.dataframe)


# -- CSV exports ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("prefix", FORMULA_PREFIXES)
def test_csv_exports_neutralize_formula_cells(prefix):
    rows = [
        {"name": f"{prefix}cmd|' /C calc'!A0", "n": -3, "x": -1.5, "text_number": "-2.5", "plain": "h100"},
        {"name": f'{prefix}HYPERLINK("http://x")', "n": 4, "x": 2.0, "text_number": "+7", "plain": "@home"},
    ]
    for text in (render(rows, "csv"), csv_safe(to_frame(rows)).write_csv()):
        back = pl.read_csv(text.encode(), infer_schema=False)
        for cell in back["name"].to_list():
            assert cell.startswith("'" + prefix), cell
        assert back["plain"].to_list() == ["h100", "'@home"]
        assert back["text_number"].to_list() == ["-2.5", "+7"]  # numbers stay numbers
        assert back["n"].to_list() == ["-3", "4"] and back["x"].to_list() == ["-1.5", "2.0"]


def _calls(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]


def test_every_csv_written_in_core_and_app_goes_through_csv_safe():
    """write_csv() only on csv_safe(...)'s result, and every text/csv download is ui.csv_download's."""
    writers = []
    for path in [*sorted((ROOT / "core").rglob("*.py")), *sorted((ROOT / "app").rglob("*.py"))]:
        for call in _calls(path):
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            if call.func.attr == "write_csv":
                receiver = call.func.value
                safe = isinstance(receiver, ast.Call) and getattr(receiver.func, "id", None) == "csv_safe"
                assert safe, f"{where}: write_csv() on a frame that did not go through csv_safe"
                writers.append(where)
            if call.func.attr == "download_button":
                mime = next((k.value for k in call.keywords if k.arg == "mime"), None)
                if isinstance(mime, ast.Constant) and mime.value == "text/csv":
                    assert path.name == "ui.py", f"{where}: a CSV download outside ui.csv_download"
    assert writers, "no CSV writer found: the scan is broken"
