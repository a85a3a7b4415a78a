"""Trace parsing: the three accepted layouts, and a clear TraceError for every kind of bad file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from llmcap.load.trace import TraceError, parse_trace

TRACES = Path(__file__).parent / "data" / "traces"


def test_llmcap_columns():
    t = parse_trace(TRACES / "good_llmcap.csv")
    assert t.format == "llmcap"
    assert t.timestamp_s.tolist() == [0.0, 0.5, 0.75, 2.0]
    assert t.input_tokens.tolist() == [512, 1024, 300, 4096]
    assert t.output_tokens.tolist() == [128, 64, 20, 512]
    assert t.rate_rps == pytest.approx(4 / 2.0)
    assert t.notes == ()


def test_burstgpt_columns_drop_failed_rows_and_rebase_time():
    t = parse_trace(TRACES / "good_burstgpt.csv")
    assert t.format == "burstgpt"
    # first request at 5 s becomes 0; the 0-response row (a failed request) is dropped and counted
    assert t.timestamp_s.tolist() == [0.0, 40.0, 113.0]
    assert t.input_tokens.tolist() == [472, 1087, 417]
    assert t.output_tokens.tolist() == [18, 230, 276]
    assert t.dropped_rows == 1
    assert "dropped 1 row" in t.notes[0]


def test_burstgpt_model_filter():
    t = parse_trace(TRACES / "good_burstgpt.csv", model="gpt-4")
    assert t.input_tokens.tolist() == [417]
    with pytest.raises(TraceError, match="no Model column"):
        parse_trace(TRACES / "good_llmcap.csv", model="gpt-4")
    with pytest.raises(TraceError, match="no data rows for model 'llama'"):
        parse_trace(TRACES / "good_burstgpt.csv", model="llama")


def test_azure_datetimes_become_seconds_from_first():
    t = parse_trace(TRACES / "good_azure.csv")
    assert t.format == "azure"
    # 18:15:50.995169 - 18:15:46.680590 (7-digit fractions are read to the microsecond)
    assert t.timestamp_s.tolist() == pytest.approx([0.0, 4.314579, 60.0])
    assert t.input_tokens.tolist() == [374, 396, 2000]


def test_bytes_file_objects_and_paths_agree():
    path = TRACES / "good_llmcap.csv"
    data = path.read_bytes()
    for source in (data, str(path), io.BytesIO(data)):
        t = parse_trace(source)
        assert t.input_tokens.tolist() == [512, 1024, 300, 4096]


def test_unsorted_rows_are_sorted_with_a_note():
    t = parse_trace(b"timestamp,input_tokens,output_tokens\n3,30,3\n1,10,1\n2,20,2\n")
    assert t.input_tokens.tolist() == [10, 20, 30]
    assert t.timestamp_s.tolist() == [0.0, 1.0, 2.0]
    assert any("sorted" in n for n in t.notes)


def test_result_arrays_are_read_only():
    t = parse_trace(TRACES / "good_llmcap.csv")
    with pytest.raises(ValueError):
        t.input_tokens[0] = 1


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bad_missing_column.csv", "missing column input_tokens"),
        ("bad_negative.csv", "line 3, column 'input_tokens': '-3' is negative"),
        ("bad_formula.csv", "line 3, column 'input_tokens': \"=cmd|' /C calc'!A0\" is not a number"),
        ("bad_ragged.csv", "line 3: expected 3 fields like the header, found 2"),
        ("bad_absurd.csv", "line 4, column 'input_tokens': '99999999999' is over 10,000,000 tokens"),
        ("bad_fraction.csv", "line 3, column 'input_tokens': '10.5' is not a whole number"),
        ("bad_not_utf8.csv", "not UTF-8 text: byte 0xe9 on line 3"),
        ("bad_datetime.csv", "line 4, column 'TIMESTAMP': 'yesterday' is not a date-time"),
        ("bad_negative_time.csv", "line 3, column 'timestamp': '-2' is a negative timestamp"),
        ("header_only.csv", "no data rows"),
        ("empty.csv", "the trace is empty"),
    ],
)
def test_bad_files_name_the_problem_and_line(name, message):
    with pytest.raises(TraceError) as err:
        parse_trace(TRACES / name)
    assert message in str(err.value)


def test_word_in_a_number_column_names_the_line():
    with pytest.raises(TraceError, match="line 2, column 'output_tokens': 'many' is not a number"):
        parse_trace(b"timestamp,input_tokens,output_tokens\n0,10,many\n")


def test_all_rows_failed():
    with pytest.raises(TraceError, match="no usable rows"):
        parse_trace(b"timestamp,input_tokens,output_tokens\n0,10,0\n1,0,5\n")


def test_over_the_byte_cap_is_refused_before_parsing(tmp_path):
    body = b"timestamp,input_tokens,output_tokens\n" + b"0,10,5\n" * 200
    with pytest.raises(TraceError, match="larger than the limit of"):
        parse_trace(body, max_bytes=1000)
    path = tmp_path / "big.csv"
    path.write_bytes(body)
    with pytest.raises(TraceError, match="larger than the limit of"):
        parse_trace(path, max_bytes=1000)
    with pytest.raises(TraceError, match="larger than the limit of"):
        parse_trace(io.BytesIO(body), max_bytes=1000)


def test_default_cap_is_50_mb():
    body = b"timestamp,input_tokens,output_tokens\n" + b"0,10,5\n" * (50 * 1024 * 1024 // 7 + 1)
    with pytest.raises(TraceError, match="larger than the limit of 50 MB"):
        parse_trace(body)


def test_row_cap():
    body = b"timestamp,input_tokens,output_tokens\n" + b"0,10,5\n" * 11
    with pytest.raises(TraceError, match="more than 10 data rows"):
        parse_trace(body, max_rows=10)
    assert parse_trace(body, max_rows=11).rows == 11


def test_duplicate_role_columns_are_ambiguous():
    with pytest.raises(TraceError, match="two input_tokens columns"):
        parse_trace(b"timestamp,input_tokens,Request tokens,output_tokens\n0,1,2,3\n")


def test_unreadable_source_types():
    with pytest.raises(TraceError, match="cannot read the trace file"):
        parse_trace(TRACES / "no_such_file.csv")
    with pytest.raises(TraceError, match="cannot read a trace from a int"):
        parse_trace(12)
    with pytest.raises(TraceError, match="binary mode"):
        parse_trace(io.StringIO("timestamp,input_tokens,output_tokens\n"))


def test_nan_and_inf_cells_are_not_numbers():
    for cell in ("nan", "inf", ""):
        with pytest.raises(TraceError, match="is not a number"):
            parse_trace(f"timestamp,input_tokens,output_tokens\n0,{cell},5\n".encode())


def test_large_trace_parses_exactly():
    n = 50_000
    rng = np.random.default_rng(1)
    ins, outs = rng.integers(1, 5000, n), rng.integers(1, 900, n)
    ts = np.cumsum(rng.exponential(0.1, n))
    body = "timestamp,input_tokens,output_tokens\n" + "".join(
        f"{t!r},{i},{o}\n" for t, i, o in zip(ts.tolist(), ins.tolist(), outs.tolist(), strict=True)
    )
    t = parse_trace(body.encode())
    assert t.rows == n
    assert np.array_equal(t.input_tokens, ins) and np.array_equal(t.output_tokens, outs)
    assert np.allclose(t.timestamp_s, ts - ts[0])


def test_blank_lines_and_quotes_are_read_and_counted():
    body = b'timestamp,input_tokens,output_tokens\n\n0,10,5\n\n1,"20",6\n'
    assert parse_trace(body).input_tokens.tolist() == [10, 20]
    with pytest.raises(TraceError, match="line 5, column 'input_tokens': 'x' is not a number"):
        parse_trace(body.replace(b'"20"', b"x"))
