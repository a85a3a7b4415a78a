"""Parse an uploaded request trace (CSV) into arrays, or say exactly what is wrong with it.

Accepted column names (case-insensitive; other columns are ignored):
  llmcap:    timestamp, input_tokens, output_tokens          (timestamp in seconds, any origin)
  BurstGPT:  Timestamp, Request tokens, Response tokens      (+ Model, Total tokens, Log Type)
             github.com/HPMLL/BurstGPT, data/BurstGPT_*.csv: Timestamp is seconds from the trace start
  Azure:     TIMESTAMP, ContextTokens, GeneratedTokens       (TIMESTAMP is a date-time)
             github.com/Azure/AzurePublicDataset, AzureLLMInferenceDataset2023.md

The whole upload is treated as hostile: its size and row count are capped before parsing, it must
be UTF-8, and every cell is checked as a number (a cell such as `=cmd|' /C calc'!A0` is simply not a
number). Any problem raises `TraceError` naming the problem, the line and the column. Rows with 0
input or 0 output tokens (BurstGPT's failed requests) are dropped and counted in `notes`.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

Cells = list[str] | pl.Series
MAX_TRACE_BYTES = 50 * 1024 * 1024  # matches the dashboard's 50 MB upload limit
MAX_TRACE_ROWS = 2_000_000
MAX_TOKENS = 10_000_000  # beyond any model context; a larger count is a broken trace

COLUMNS = {
    "timestamp": {"timestamp": "llmcap"},
    "input_tokens": {"input_tokens": "llmcap", "request tokens": "burstgpt", "contexttokens": "azure"},
    "output_tokens": {"output_tokens": "llmcap", "response tokens": "burstgpt", "generatedtokens": "azure"},
}
SHOWN_NAMES = {
    "timestamp": "timestamp (or Timestamp, TIMESTAMP)",
    "input_tokens": "input_tokens (or 'Request tokens', ContextTokens)",
    "output_tokens": "output_tokens (or 'Response tokens', GeneratedTokens)",
}


class TraceError(ValueError):
    """A trace that cannot be used; the message names the problem and where it is."""


@dataclass(frozen=True)
class Trace:
    """Requests of a trace in time order: seconds from the first request and token counts."""

    timestamp_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    format: str
    dropped_rows: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for arr in (self.timestamp_s, self.input_tokens, self.output_tokens):
            arr.flags.writeable = False

    @property
    def rows(self) -> int:
        return len(self.timestamp_s)

    @property
    def span_s(self) -> float:
        return float(self.timestamp_s[-1]) if self.rows else 0.0

    @property
    def rate_rps(self) -> float:
        """Mean arrival rate over the trace (0 when all requests share one timestamp)."""
        return self.rows / self.span_s if self.span_s > 0 else 0.0


def parse_trace(
    source: bytes | bytearray | memoryview | str | os.PathLike | Any,
    *,
    max_bytes: int = MAX_TRACE_BYTES,
    max_rows: int = MAX_TRACE_ROWS,
    max_tokens: int = MAX_TOKENS,
    model: str | None = None,
) -> Trace:
    """Parse a CSV trace from bytes, a path or a binary file object; raise `TraceError` if unusable.

    `model` keeps only rows whose Model column equals it (BurstGPT mixes ChatGPT and GPT-4).
    """
    data = _read_capped(source, max_bytes)
    text = _decode(data)
    if not text.strip():
        raise TraceError("the trace is empty")
    fast = _fast_cells(text, max_rows, model)
    if fast is not None:
        try:
            return _build(*fast, None, max_tokens, model)
        except TraceError:
            pass  # read it again row by row below, which names the line of the problem
    header, rows, lines = _split_rows(text, max_rows)
    cols = _locate(header)
    if model is not None:
        rows, lines = _filter_model(header, rows, lines, model)
    cells = {role: [r[i] for r in rows] for role, i in cols.items()}
    return _build(header, cols, cells, np.asarray(lines), max_tokens, model)


def _build(
    header: list[str],
    cols: dict[str, int],
    cells: dict[str, Cells],
    lines: np.ndarray | None,
    max_tokens: int,
    model: str | None,
) -> Trace:
    if len(cells["timestamp"]) == 0:
        raise TraceError("the trace has no data rows" + (f" for model '{model}'" if model is not None else ""))
    name = {role: header[i] for role, i in cols.items()}
    ts = _timestamps(cells["timestamp"], name["timestamp"], lines)
    ins = _tokens(cells["input_tokens"], name["input_tokens"], lines, max_tokens)
    outs = _tokens(cells["output_tokens"], name["output_tokens"], lines, max_tokens)
    return _assemble(ts, ins, outs, COLUMNS["input_tokens"][_norm(name["input_tokens"])])


def _fast_cells(
    text: str, max_rows: int, model: str | None
) -> tuple[list[str], dict[str, int], dict[str, pl.Series]] | None:
    """The three columns read by polars (fast); None when the file needs the exact row-by-row reader."""
    first = next(csv.reader(io.StringIO(text.split("\n", 1)[0])), [])
    try:
        cols = _locate(first)
    except TraceError:
        return None  # let the exact reader find the header and report on it
    try:
        df = pl.read_csv(text.encode(), infer_schema=False, n_rows=max_rows + 1)
    except Exception:  # noqa: BLE001 - any polars parse failure: fall back to the exact reader
        return None
    if df.width != len(first) or df.height > max_rows:
        return None
    if model is not None:
        idx = [i for i, h in enumerate(first) if _norm(h) == "model"]
        if not idx:
            return None
        df = df.filter(df.to_series(idx[0]).str.strip_chars().str.to_lowercase() == model.strip().lower())
    return first, cols, {role: df.to_series(i) for role, i in cols.items()}


# -- reading -----------------------------------------------------------------------------


def _read_capped(source: Any, max_bytes: int) -> bytes:
    too_big = f"the trace is larger than the limit of {_mb(max_bytes)}"
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            if path.stat().st_size > max_bytes:
                raise TraceError(f"{too_big} ({_mb(path.stat().st_size)})")
            with path.open("rb") as fh:
                data = fh.read(max_bytes + 1)
        except OSError as exc:
            raise TraceError(f"cannot read the trace file {path.name}: {exc.strerror or exc}") from None
    elif hasattr(source, "read"):
        data = source.read(max_bytes + 1)
        if not isinstance(data, bytes | bytearray):
            raise TraceError("the trace must be read as bytes (open the file in binary mode)")
        data = bytes(data)
    else:
        raise TraceError(f"cannot read a trace from a {type(source).__name__}; give bytes or a file path")
    if len(data) > max_bytes:
        raise TraceError(too_big)
    return data


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.3g} MB"


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TraceError(
            f"the trace is not UTF-8 text: byte 0x{data[exc.start]:02x} on line {line} (save it as UTF-8 CSV)"
        ) from None


def _split_rows(text: str, max_rows: int) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, data rows and the line each row ends on; blank lines are skipped."""
    if not text.strip():
        raise TraceError("the trace is empty")
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):  # blank line
                continue
            if header is None:
                header = row
                continue
            if len(row) != len(header):
                raise TraceError(
                    f"line {reader.line_num}: expected {len(header)} fields like the header, found {len(row)}"
                )
            if len(rows) >= max_rows:
                raise TraceError(f"the trace has more than {max_rows:,} data rows (the limit)")
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise TraceError(f"line {reader.line_num}: not valid CSV ({exc})") from None
    assert header is not None  # text was not blank, so at least one row was read
    return header, rows, lines


def _norm(name: str) -> str:
    return name.strip().lower()


def _locate(header: list[str]) -> dict[str, int]:
    """Column index of timestamp, input_tokens and output_tokens under any accepted name."""
    found: dict[str, int] = {}
    for i, name in enumerate(header):
        for role, names in COLUMNS.items():
            if _norm(name) in names:
                if role in found:
                    raise TraceError(f"the header has two {role} columns: '{header[found[role]]}' and '{name}'")
                found[role] = i
    missing = [role for role in COLUMNS if role not in found]
    if missing:
        shown = ", ".join(_clip(h) for h in header[:12]) + (", ..." if len(header) > 12 else "")
        raise TraceError(
            "missing column"
            + ("s " if len(missing) > 1 else " ")
            + "; ".join(SHOWN_NAMES[m] for m in missing)
            + f" in the header (line 1 has: {shown})"
        )
    return found


def _clip(text: str, n: int = 40) -> str:
    """Printable, shortened form of a cell for a message."""
    shown = text if len(text) <= n else text[:n] + "..."
    return repr(shown)


def _filter_model(
    header: list[str], rows: list[list[str]], lines: list[int], model: str
) -> tuple[list[list[str]], list[int]]:
    idx = [i for i, h in enumerate(header) if _norm(h) == "model"]
    if not idx:
        raise TraceError("cannot filter by model: the trace has no Model column")
    want = model.strip().lower()
    keep = [k for k, r in enumerate(rows) if r[idx[0]].strip().lower() == want]
    return [rows[k] for k in keep], [lines[k] for k in keep]


# -- cell checks (vectorized; the first bad cell is reported) ------------------------------


def _strings(cells: Cells) -> pl.Series:
    return (cells if isinstance(cells, pl.Series) else pl.Series(cells, dtype=pl.String)).str.strip_chars()


def _numbers(cells: Cells) -> np.ndarray:
    """Cells as float64; NaN where a cell is not a plain number."""
    series = _strings(cells).cast(pl.Float64, strict=False)
    return series.fill_null(float("nan")).to_numpy()


def _tokens(cells: Cells, column: str, lines: np.ndarray | None, max_tokens: int) -> np.ndarray:
    values = _numbers(cells)
    _raise_first(~np.isfinite(values), "is not a number", cells, column, lines)
    _raise_first(values < 0, "is negative", cells, column, lines)
    _raise_first(values != np.floor(values), "is not a whole number of tokens", cells, column, lines)
    _raise_first(
        values > max_tokens, f"is over {max_tokens:,} tokens, more than any model context", cells, column, lines
    )
    return values.astype(np.int64)


def _raise_first(bad: np.ndarray, what: str, cells: Cells, column: str, lines: np.ndarray | None) -> None:
    if bad.any():
        i = int(np.argmax(bad))
        where = f"line {lines[i]}" if lines is not None else f"data row {i + 1}"
        raise TraceError(f"{where}, column '{column}': {_clip(str(cells[i]))} {what}")


def _timestamps(cells: Cells, column: str, lines: np.ndarray | None) -> np.ndarray:
    """Seconds: plain numbers as given, or date-times as seconds since the epoch."""
    values = _numbers(cells)
    numeric_bad = ~np.isfinite(values)
    if numeric_bad.any():
        dts = _datetimes(cells)
        dt_bad = dts.is_null().to_numpy() if dts is not None else numeric_bad
        if (
            dts is not None and dt_bad.sum() < numeric_bad.sum()
        ):  # mostly date-times (Azure): report the first that is not one
            _raise_first(dt_bad, "is not a date-time", cells, column, lines)
            return dts.dt.epoch(time_unit="us").to_numpy().astype(np.float64) / 1e6
        _raise_first(numeric_bad, "is not a number of seconds", cells, column, lines)
    _raise_first(values < 0, "is a negative timestamp", cells, column, lines)
    return values


def _datetimes(cells: Cells) -> pl.Series | None:
    """Cells as date-times (null where not one), or None when no date-time format fits them."""
    try:
        return _strings(cells).str.to_datetime(strict=False, time_unit="us")
    except pl.exceptions.PolarsError:
        return None


def _assemble(ts: np.ndarray, ins: np.ndarray, outs: np.ndarray, fmt: str) -> Trace:
    notes: list[str] = []
    keep = (ins > 0) & (outs > 0)
    dropped = int((~keep).sum())
    if dropped:
        notes.append(f"dropped {dropped:,} row(s) with 0 input or 0 output tokens (failed or empty requests)")
        ts, ins, outs = ts[keep], ins[keep], outs[keep]
    if ts.size == 0:
        raise TraceError("no usable rows: every row has 0 input or 0 output tokens")
    if np.any(np.diff(ts) < 0):
        order = np.argsort(ts, kind="stable")
        ts, ins, outs = ts[order], ins[order], outs[order]
        notes.append("rows were not in time order; sorted by timestamp")
    span = float(ts[-1] - ts[0])
    if not math.isfinite(span):
        raise TraceError("the timestamps span an infinite time")
    return Trace(ts - ts[0], ins, outs, fmt, dropped, tuple(notes))
