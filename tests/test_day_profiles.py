"""Day profiles (llmcap.load.day): the presets are sourced catalog data, a mean rate scales them, uploads of rates
or request logs parse, and hostile day files get one clear message naming the line and column."""

from __future__ import annotations

import numpy as np
import pytest

from llmcap.load.day import (
    DAY_S,
    DayError,
    parse_day_file,
    parse_rates,
    preset_profile,
    presets,
    resolve_day,
)


def test_at_least_four_sourced_presets_including_the_issue_s_shapes():
    ps = presets()
    assert {"business-hours", "consumer-chat", "batch-night", "flat-api"} <= set(ps)
    for p in ps.values():
        assert len(p.shape) == 24 and min(p.shape) >= 0 and len(p.source) > 20
        assert "shape" in p.estimated  # read off no figure: each says how it was drawn


@pytest.mark.parametrize("preset", sorted(presets()))
def test_a_mean_rate_scales_a_preset(preset):
    prof = preset_profile(preset, 7.5)
    assert prof.intervals == 96 and prof.interval_s == 900 and prof.days == pytest.approx(1.0)
    assert prof.mean_rate_rps == pytest.approx(7.5)
    assert preset_profile(preset, 15.0).rate_rps == pytest.approx(2 * prof.rate_rps)


def test_shapes_peak_where_their_sources_say():
    hour = lambda name: int(np.argmax(preset_profile(name, 1.0).rate_rps)) * 900 / 3600  # noqa: E731
    assert 9 <= hour("business-hours") <= 16
    assert 18 <= hour("consumer-chat") <= 23
    assert hour("batch-night") <= 5 or hour("batch-night") >= 21
    assert np.ptp(preset_profile("flat-api", 3.0).rate_rps) == pytest.approx(0)


def test_hourly_clock_times_and_minute_seconds_parse():
    text = "time,rate_rps\n" + "".join(f"{h:02d}:00,{h + 1}\n" for h in range(24))
    prof = parse_rates(text, "hours.csv")
    assert prof.interval_s == 3600 and prof.intervals == 24 and prof.rate_rps[5] == 6
    minutes = "timestamp,rate_rps\n" + "".join(f"{60 * i},{1 + (i % 3)}\n" for i in range(1440 * 2))
    two_days = parse_rates(minutes)
    assert two_days.interval_s == 60 and two_days.days == pytest.approx(2.0)
    iso = "time,rate_rps\n" + "".join(f"2026-12-01T{h:02d}:30:00Z,2.5\n" for h in range(24))
    assert parse_rates(iso).mean_rate_rps == pytest.approx(2.5)


def test_a_request_log_is_counted_into_intervals():
    # BurstGPT columns; 2 requests in each 15-minute bin for a day, except 6 in the bin at 12:00
    rows = ["Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type"]
    for b in range(96):
        n = 6 if b == 48 else 2
        rows += [f"{b * 900 + 10 * k},ChatGPT,100,50,150,Conversation log" for k in range(n)]
    prof = parse_day_file("\n".join(rows).encode(), "burst.csv")
    assert prof.intervals == 96
    assert prof.rate_rps[48] == pytest.approx(6 / 900) and prof.rate_rps[0] == pytest.approx(2 / 900)


def test_resolve_day_presets_need_a_rate_and_files_may_be_rescaled(tmp_path):
    with pytest.raises(DayError, match="--rate"):
        resolve_day("consumer-chat", None)
    with pytest.raises(DayError, match="not a preset"):
        resolve_day("weekend-rush", 3.0)
    f = tmp_path / "day.csv"
    f.write_text("time,rate_rps\n" + "".join(f"{h * 3600},{2 if h < 12 else 4}\n" for h in range(24)))
    assert resolve_day(str(f), None).mean_rate_rps == pytest.approx(3.0)
    assert resolve_day(str(f), 6.0).peak_rate_rps == pytest.approx(8.0)


DAY = "".join(f"{h * 3600},1\n" for h in range(1, 24))
HOSTILE = [
    ("time,rate_rps\n0,=cmd|' /C calc'!A0\n" + DAY, "line 2, column 'rate_rps'"),
    ("time,rate_rps\n0,nan\n" + DAY, "line 2, column 'rate_rps'"),
    ("time,rate_rps\n0,-3\n" + DAY, "line 2, column 'rate_rps'"),
    ("time,rate_rps\n0,1e999\n" + DAY, "line 2, column 'rate_rps'"),
    ("time,rate_rps\nnoon,1\n" + DAY, "line 2, column 'time'"),
    ("time,rate_rps\n25:00,1\n" + DAY, "line 2, column 'time'"),
    ("time,rate_rps\n0,1\n0,1\n" + DAY, "line 3, column 'time'"),
    ("time,rate_rps\n0,1\n3600,1\n9000,1\n", "line 4, column 'time'"),
    ("time,rate_rps\n" + "".join(f"{30 * i},1\n" for i in range(3000)), "1 minute to 1 hour"),
    ("time,rate_rps\n0,1\n3600,1\n7200,1\n", "at least 24 hours"),
    ("time,rate_rps\n" + "".join(f"{h * 3600},0\n" for h in range(24)), "every rate is 0"),
    ("time,rate_rps\n0,1,2\n" + DAY, "line 2: expected 2 fields"),
    ("when,how_many\n0,1\n", "no 'timestamp' column|request log"),
    ("time,rate_rps\n", "at least two rows"),
    ("", "empty"),
    ('time,rate_rps\n0,1\n3600,"unterminated\n', "line"),
]


@pytest.mark.parametrize(("text", "message"), HOSTILE)
def test_hostile_day_files_name_the_line_and_column(text, message):
    with pytest.raises(DayError, match=message):
        parse_day_file(text.encode(), "bad.csv")


def test_hostile_bytes_and_sizes():
    with pytest.raises(DayError, match="not UTF-8 text.*line 2"):
        parse_day_file(b"time,rate_rps\n\xff\xfe,1\n", "bin.csv")
    big = b"time,rate_rps\n" + b"0,1\n" * (2 * 1024 * 1024)
    with pytest.raises(DayError, match="limited to"):
        parse_day_file(big, "big.csv")
    with pytest.raises(DayError, match="larger than the limit"):
        parse_day_file(b"x" * (50 * 1024 * 1024 + 1), "huge.csv")
    with pytest.raises(DayError, match="more than"):
        parse_rates("time,rate_rps\n" + "".join(f"{60 * i},1\n" for i in range(100_001)))


def test_a_short_log_is_refused():
    log = "timestamp,input_tokens,output_tokens\n" + "".join(f"{i * 60},10,10\n" for i in range(30))
    with pytest.raises(DayError, match="24 hours"):
        parse_day_file(log.encode(), "short.csv")
    assert DAY_S == 86400
