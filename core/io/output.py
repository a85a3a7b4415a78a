"""Render rows (a list of flat dicts) as an aligned text table, CSV or JSON.

Shared by every CLI command and by the dashboard's CSV downloads, so a table looks and
exports the same everywhere. CSV cells that a spreadsheet would read as a formula are
neutralized (see `csv_safe`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable
from typing import Any

import polars as pl

FORMATS = ("table", "csv", "json")
# A spreadsheet treats a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def render(rows: list[dict[str, Any]], fmt: str) -> str:
    """`rows` as `fmt` ("table", "csv" or "json"); columns in order of first appearance."""
    if fmt == "json":
        return to_json(rows)
    if fmt == "csv":
        return csv_safe(to_frame(rows)).write_csv()
    if fmt == "table":
        return render_table(rows)
    raise ValueError(f"unknown output format '{fmt}'; choose one of {', '.join(FORMATS)}")


def to_json(value: Any) -> str:
    """Indented JSON; dates as ISO strings."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=_json_default) + "\n"


def to_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """A polars DataFrame with one typed column per key (lists joined, dicts as JSON)."""
    columns = _columns(rows)
    return pl.DataFrame([_series(c, [_scalar(r.get(c)) for r in rows]) for c in columns])


def csv_safe(df: pl.DataFrame) -> pl.DataFrame:
    """Prefix `'` to text cells a spreadsheet would run as a formula; numbers such as "-1.5" stay."""
    exprs = []
    for name, dtype in df.schema.items():
        if dtype != pl.String:
            continue
        col = pl.col(name)
        risky = col.str.starts_with(FORMULA_PREFIXES[0])
        for prefix in FORMULA_PREFIXES[1:]:
            risky = risky | col.str.starts_with(prefix)
        is_number = col.cast(pl.Float64, strict=False).is_not_null()
        exprs.append(pl.when(risky & ~is_number).then(pl.lit("'") + col).otherwise(col).alias(name))
    return df.with_columns(exprs) if exprs else df


def render_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text columns: numbers right-aligned, text left-aligned, missing values as '-'."""
    if not rows:
        return "(no rows)\n"
    columns = _columns(rows)
    cells = [[format_value(r.get(c)) for c in columns] for r in rows]
    numeric = [all(_is_number(r.get(c)) or r.get(c) is None for r in rows) for c in columns]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]

    def line(values: Iterable[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(columns), line("-" * w for w in widths)]
    out += [line(row) for row in cells]
    return "\n".join(out) + "\n"


def format_value(value: Any) -> str:
    """A value as table text: thousands separators from 10,000 on (years stay 2024), else 4 significant digits."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value.is_integer() and abs(value) < 1e15:
            return format_value(int(value))
        if abs(value) >= 10_000:
            return f"{value:,.0f}"
        if abs(value) >= 1000:
            return f"{value:.1f}"
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(format_value(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for r in rows for k in r))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scalar(value: Any) -> Any:
    """A cell value polars can hold in a flat column."""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _series(name: str, values: list[Any]) -> pl.Series:
    """One column; a column that mixes text with numbers becomes text."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pl.Series(name, values, dtype=pl.Boolean)
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pl.Series(name, values, dtype=pl.Int64)
    if present and all(_is_number(v) for v in present):
        return pl.Series(name, [None if v is None else float(v) for v in values], dtype=pl.Float64)
    return pl.Series(name, [None if v is None else str(v) for v in values], dtype=pl.String)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"cannot serialize {type(value).__name__}")
