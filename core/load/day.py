"""A day of traffic: the request rate per interval over one or more days (llmcap.plan.autoscale sizes replicas
for it).

Three ways to get one:
  preset   a shape from catalogs/day_profiles.yaml (24 hourly values, each with its source), interpolated linearly
           and periodically onto `interval_s` intervals and scaled so that the day's mean rate is the one asked for;
  rates    a CSV of `time,rate_rps` at one interval from 1 minute to 1 hour covering at least one day; `time` is
           seconds, HH:MM[:SS] or an ISO date-time; each row is the mean rate from its time to the next row's;
  log      a request log (llmcap, BurstGPT or Azure columns, llmcap.load.trace) counted into `interval_s` bins.

Uploads are hostile until checked: size and row caps, UTF-8, and every cell a number or a time; a problem raises
`DayError` naming the line and the column.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, TypeAdapter

from llmcap.catalog.loader import catalog_file
from llmcap.catalog.schema import Sourced
from llmcap.load.trace import TraceError, parse_trace

DAY_S = 86_400.0
DEFAULT_INTERVAL_S = 900.0  # 96 intervals a day
MIN_INTERVAL_S, MAX_INTERVAL_S = 60.0, 3_600.0
MAX_RATE_BYTES = 5 * 1024 * 1024
MAX_RATE_ROWS = 100_000  # 69 days at 1 minute
MAX_RATE_RPS = 1e6
PROFILES_FILE = "day_profiles.yaml"
TIME_COLUMNS = ("time", "timestamp", "time_s")
RATE_COLUMNS = ("rate_rps", "rate", "requests_per_s")


class DayError(ValueError):
    """A day profile that cannot be used; the message says what is wrong and where (line, column, flag)."""


class DayPreset(Sourced):
    """A day shape of catalogs/day_profiles.yaml: 24 hourly relative rates, hour 0 first."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")
    name: str
    shape: tuple[float, ...] = Field(min_length=24, max_length=24)


@dataclasses.dataclass(frozen=True)
class DayProfile:
    """Mean request rate per interval, first interval at time 0; the series repeats (the next day starts alike)."""

    name: str
    interval_s: float
    rate_rps: np.ndarray
    source: str = ""
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        rate = np.asarray(self.rate_rps, dtype=float).copy()
        rate.flags.writeable = False
        object.__setattr__(self, "rate_rps", rate)

    @property
    def intervals(self) -> int:
        return int(self.rate_rps.size)

    @property
    def days(self) -> float:
        return self.intervals * self.interval_s / DAY_S

    @property
    def mean_rate_rps(self) -> float:
        return float(self.rate_rps.mean())

    @property
    def peak_rate_rps(self) -> float:
        return float(self.rate_rps.max())

    def scaled(self, mean_rate_rps: float) -> DayProfile:
        """The same shape with the given mean rate."""
        _check_mean(mean_rate_rps)
        return dataclasses.replace(self, rate_rps=self.rate_rps * (mean_rate_rps / self.mean_rate_rps))

    def hours(self) -> np.ndarray:
        """Start of each interval, hours from the first."""
        return np.arange(self.intervals) * self.interval_s / 3600.0


def _check_mean(mean_rate_rps: float) -> None:
    if not (
        isinstance(mean_rate_rps, int | float) and math.isfinite(mean_rate_rps) and 0 < mean_rate_rps <= MAX_RATE_RPS
    ):
        raise DayError(f"the mean rate must be a number of requests/s in (0, {MAX_RATE_RPS:g}], got {mean_rate_rps!r}")


def parse_presets(data) -> dict[str, DayPreset]:
    """The presets of a day_profiles.yaml document (a list), by id; a pydantic ValidationError names the entry."""
    return {p.id: p for p in TypeAdapter(list[DayPreset]).validate_python(data or [])}


def presets() -> dict[str, DayPreset]:
    """The day presets of catalogs/day_profiles.yaml, by id."""
    return catalog_file(PROFILES_FILE, parse_presets, DayError)


def preset_profile(preset_id: str, mean_rate_rps: float, interval_s: float = DEFAULT_INTERVAL_S) -> DayProfile:
    """A preset's shape on `interval_s` intervals (linear, periodic interpolation between hours), scaled to a mean
    of `mean_rate_rps`."""
    known = presets()
    if preset_id not in known:
        raise DayError(f"unknown day preset '{preset_id}'; presets: {', '.join(known)} (or a CSV file)")
    if not MIN_INTERVAL_S <= interval_s <= MAX_INTERVAL_S or DAY_S % interval_s:
        raise DayError(f"interval must divide a day and lie in [{MIN_INTERVAL_S:g}, {MAX_INTERVAL_S:g}] s")
    p = known[preset_id]
    shape = np.asarray(p.shape, dtype=float)
    if (shape < 0).any() or shape.sum() <= 0:
        raise DayError(f"day preset '{preset_id}': the shape needs non-negative values, not all 0")
    mids = (np.arange(int(DAY_S / interval_s)) + 0.5) * interval_s / 3600.0  # interval midpoints, hours
    hours = np.arange(25, dtype=float)
    values = np.interp(mids, hours, np.append(shape, shape[0]))
    prof = DayProfile(
        name=p.name,
        interval_s=float(interval_s),
        rate_rps=values,
        source=p.source,
        notes=tuple(f"{k}: {v}" for k, v in p.estimated.items()),
    )
    return prof.scaled(mean_rate_rps)


def flat_profile(rate_rps: float, interval_s: float = DEFAULT_INTERVAL_S) -> DayProfile:
    _check_mean(rate_rps)
    return DayProfile(name="flat", interval_s=interval_s, rate_rps=np.full(int(DAY_S / interval_s), float(rate_rps)))


# -- uploads -----------------------------------------------------------------------------------------------------


def _read(source: Any, max_bytes: int) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif isinstance(source, str | Path):
        path = Path(source)
        try:
            if path.stat().st_size > max_bytes:
                raise DayError(f"{path.name} is larger than the limit of {max_bytes / 2**20:.3g} MB")
            data = path.read_bytes()
        except OSError as exc:
            raise DayError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    else:
        raise DayError(f"cannot read a day profile from a {type(source).__name__}")
    if len(data) > max_bytes:
        raise DayError(f"the file is larger than the limit of {max_bytes / 2**20:.3g} MB")
    return data


def _header(text: str) -> list[str]:
    for line in text.splitlines():
        if line.strip():
            return [c.strip().strip('"').lower() for c in line.split(",")]
    return []


def parse_day_file(source: Any, name: str = "upload", interval_s: float = DEFAULT_INTERVAL_S) -> DayProfile:
    """A day profile from a rates CSV (`time,rate_rps`) or a request log, told apart by the header."""
    data = _read(source, 50 * 1024 * 1024)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DayError(f"{name}: not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})") from None
    if not text.strip():
        raise DayError(f"{name}: the file is empty")
    if any(c in RATE_COLUMNS for c in _header(text)):
        if len(data) > MAX_RATE_BYTES:
            raise DayError(f"{name}: a rates CSV is limited to {MAX_RATE_BYTES / 2**20:.3g} MB")
        return parse_rates(text, name)
    try:
        return profile_from_log(parse_trace(data), name, interval_s)
    except TraceError as exc:
        raise DayError(
            f"{name}: {exc} (a day file is either `time,rate_rps` or a request log with timestamps)"
        ) from None


_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?$")


def _seconds(cell: str) -> float | None:
    """Seconds from a number, HH:MM[:SS] (of one day) or an ISO date-time (since the epoch); None if none fits."""
    text = cell.strip()
    try:
        value = float(text)
        return value if math.isfinite(value) else None
    except ValueError:
        pass
    m = _CLOCK.match(text)
    if m:
        h, mi, s = int(m[1]), int(m[2]), float(m[3] or 0)
        return h * 3600 + mi * 60 + s if h < 24 and mi < 60 and s < 60 else None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _clip(text: str, n: int = 30) -> str:
    text = text.replace("\n", " ")
    return repr(text if len(text) <= n else text[:n] + "...")


def parse_rates(text: str, name: str = "upload") -> DayProfile:
    """`time,rate_rps` rows at one interval (1 min to 1 h), at least a day; DayError names line and column."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    cols: dict[str, int] = {}
    times: list[float] = []
    rates: list[float] = []
    lines: list[int] = []
    try:
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if header is None:
                header = [c.strip().lower() for c in row]
                for role, names in (("time", TIME_COLUMNS), ("rate", RATE_COLUMNS)):
                    found = [i for i, c in enumerate(header) if c in names]
                    if not found:
                        raise DayError(f"{name}: line {reader.line_num}: no '{names[0]}' column in the header")
                    cols[role] = found[0]
                continue
            if len(row) != len(header):
                raise DayError(
                    f"{name}: line {reader.line_num}: expected {len(header)} fields like the header, found {len(row)}"
                )
            if len(times) >= MAX_RATE_ROWS:
                raise DayError(f"{name}: more than {MAX_RATE_ROWS:,} rows (the limit)")
            t = _seconds(row[cols["time"]])
            if t is None:
                raise DayError(
                    f"{name}: line {reader.line_num}, column '{header[cols['time']]}': "
                    f"{_clip(row[cols['time']])} is not seconds, HH:MM or an ISO date-time"
                )
            try:
                r = float(row[cols["rate"]].strip())
            except ValueError:
                r = math.nan
            if not (math.isfinite(r) and 0 <= r <= MAX_RATE_RPS):
                raise DayError(
                    f"{name}: line {reader.line_num}, column '{header[cols['rate']]}': "
                    f"{_clip(row[cols['rate']])} is not a rate in [0, {MAX_RATE_RPS:g}] requests/s"
                )
            times.append(t)
            rates.append(r)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise DayError(f"{name}: line {reader.line_num}: not valid CSV ({exc})") from None
    if len(times) < 2:
        raise DayError(f"{name}: needs at least two rows of time,rate_rps")
    return _uniform(name, np.asarray(times), np.asarray(rates), lines, header[cols["time"]] if header else "time")


def _uniform(name: str, t: np.ndarray, rate: np.ndarray, lines: list[int], tcol: str) -> DayProfile:
    step = np.diff(t)
    if (step <= 0).any():
        i = int(np.argmax(step <= 0)) + 1
        raise DayError(f"{name}: line {lines[i]}, column '{tcol}': time does not increase from the row before")
    interval = float(step[0])
    off = np.abs(step - interval) > max(1.0, 0.001 * interval)
    if off.any():
        i = int(np.argmax(off)) + 1
        raise DayError(
            f"{name}: line {lines[i]}, column '{tcol}': a step of {step[i - 1]:g} s where the first step is "
            f"{interval:g} s (rows must be evenly spaced)"
        )
    if not MIN_INTERVAL_S - 1 <= interval <= MAX_INTERVAL_S + 1:
        raise DayError(
            f"{name}: line {lines[1]}, column '{tcol}': rows are {interval:g} s apart; use 1 minute to 1 hour"
        )
    span = rate.size * interval
    if span < DAY_S - 0.5 * interval:
        raise DayError(f"{name}: covers {span / 3600:.3g} hours; a day profile needs at least 24 hours of rows")
    if rate.sum() <= 0:
        raise DayError(f"{name}: every rate is 0")
    return DayProfile(name=name, interval_s=interval, rate_rps=rate, source=f"upload {name}")


def profile_from_log(trace, name: str = "log", interval_s: float = DEFAULT_INTERVAL_S) -> DayProfile:
    """Requests of a log (llmcap.load.trace.Trace) counted per `interval_s` bin from the first request."""
    if not MIN_INTERVAL_S <= interval_s <= MAX_INTERVAL_S:
        raise DayError(f"interval must be in [{MIN_INTERVAL_S:g}, {MAX_INTERVAL_S:g}] s")
    ts = np.asarray(trace.timestamp_s, dtype=float)
    bins = int(math.floor(float(ts[-1]) / interval_s)) + 1
    if bins * interval_s < DAY_S - 0.5 * interval_s:
        raise DayError(
            f"{name}: the log spans {float(ts[-1]) / 3600:.3g} hours; a day profile needs at least 24 hours of requests"
        )
    if bins > MAX_RATE_ROWS:
        raise DayError(f"{name}: the log spans more than {MAX_RATE_ROWS:,} intervals of {interval_s:g} s")
    counts = np.bincount((ts // interval_s).astype(np.int64), minlength=bins)
    return DayProfile(
        name=name,
        interval_s=float(interval_s),
        rate_rps=counts / interval_s,
        source=f"request log {name} ({trace.format}, {trace.rows:,} requests)",
        notes=tuple(trace.notes),
    )


def resolve_day(spec: str, mean_rate_rps: float | None, interval_s: float = DEFAULT_INTERVAL_S) -> DayProfile:
    """`--day PRESET|FILE`: a preset scaled to `mean_rate_rps` (required), or a file (rescaled when a rate is given)."""
    spec = (spec or "").strip()
    if not spec:
        raise DayError("--day needs a preset id or a CSV file")
    if spec in presets():
        if mean_rate_rps is None:
            raise DayError(f"--day {spec} is a shape: give the day's mean rate with --rate")
        return preset_profile(spec, mean_rate_rps, interval_s)
    path = Path(spec)
    if not path.exists():
        raise DayError(f"--day {spec}: not a preset ({', '.join(presets())}) and no such file")
    prof = parse_day_file(path, path.name, interval_s)
    return prof.scaled(mean_rate_rps) if mean_rate_rps is not None else prof
