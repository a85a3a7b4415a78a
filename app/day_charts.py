"""Altair charts of the Plan page's day view: rate and capacity over the day, replicas as steps, and the self-hosting
vs hosted-API cost over tokens per day (numbers from llmcap.plan.autoscale and llmcap.plan.price_options)."""

from __future__ import annotations

import altair as alt
import polars as pl

from llmcap.app.vega import FIT_WIDTH
from llmcap.plan.autoscale import DayPlan, DayPolicy
from llmcap.plan.price_options import PriceOptions

LEGEND = alt.Legend(orient="bottom", title=None, columns=2, labelLimit=260)
PALETTE = {"request rate": "#222222", "autoscaled": "#4c78a8", "static-peak": "#e45756"}
OTHER = "#f58518"  # the static-percentile policy


def _colors(names: list[str]) -> alt.Scale:
    """Fixed colours: the rate black, autoscaled blue, static at peak red, static at a percentile orange."""

    def pick(n: str) -> str:
        key = n.replace("capacity, ", "")
        return PALETTE.get(key, OTHER)

    return alt.Scale(domain=names, range=[pick(n) for n in names])


def day_frame(day: DayPlan, rows: list[DayPolicy]) -> pl.DataFrame:
    """Long table: hour, series (rate or a policy's capacity), requests/s, replicas (policies only)."""
    hours = [i * day.interval_s / 3600.0 for i in range(len(day.rate_rps))]
    parts = [pl.DataFrame({"hour": hours, "series": "request rate", "rate_rps": day.rate_rps, "replicas": None})]
    for r in rows:
        parts.append(
            pl.DataFrame(
                {
                    "hour": hours,
                    "series": f"capacity, {r.policy}",
                    "rate_rps": r.capacity_rps,
                    "replicas": [float(x) for x in r.replicas],
                }
            )
        )
    return pl.concat(parts, how="vertical_relaxed")


def rate_chart(frame: pl.DataFrame) -> alt.Chart:
    """The request rate and each policy's capacity (replicas billed x per-replica goodput) over the day."""
    x = alt.X("hour:Q", title="hour of the day", scale=alt.Scale(nice=False))
    names = list(dict.fromkeys(frame["series"].to_list()))
    return (
        alt.Chart(frame)
        .mark_line(interpolate="step-after")
        .encode(
            x=x,
            y=alt.Y("rate_rps:Q", title="requests/s"),
            color=alt.Color("series:N", legend=LEGEND, scale=_colors(names), sort=names),
            strokeDash=alt.StrokeDash("series:N", legend=None, sort=names),
            strokeWidth=alt.condition(alt.datum.series == "request rate", alt.value(2.5), alt.value(1.6)),
            tooltip=[
                alt.Tooltip("hour:Q", format=".2f"),
                alt.Tooltip("series:N"),
                alt.Tooltip("rate_rps:Q", title="requests/s", format=",.3~g"),
            ],
        )
        .properties(height=280, title="Request rate and capacity over the day", autosize=FIT_WIDTH)
    )


def replicas_chart(frame: pl.DataFrame) -> alt.Chart:
    """Replicas billed per interval for each policy, as steps."""
    reps = frame.filter(pl.col("replicas").is_not_null()).with_columns(
        pl.col("series").str.replace("capacity, ", "").alias("policy")
    )
    names = list(dict.fromkeys(reps["policy"].to_list()))
    return (
        alt.Chart(reps)
        .mark_line(interpolate="step-after")
        .encode(
            x=alt.X("hour:Q", title="hour of the day", scale=alt.Scale(nice=False)),
            y=alt.Y("replicas:Q", title="replicas", axis=alt.Axis(tickMinStep=1)),
            color=alt.Color("policy:N", legend=LEGEND, scale=_colors(names), sort=names),
            strokeDash=alt.StrokeDash("policy:N", legend=None, sort=names),
            tooltip=[alt.Tooltip("hour:Q", format=".2f"), alt.Tooltip("policy:N"), alt.Tooltip("replicas:Q")],
        )
        .properties(height=240, title="Replicas per policy", autosize=FIT_WIDTH)
    )


def crossover_frame(po: PriceOptions) -> pl.DataFrame:
    parts = [
        pl.DataFrame(
            {"tokens_per_day": po.tokens_per_day, "usd_per_day": po.self_host_usd_per_day, "option": "self-hosted"}
        )
    ]
    for name, usd in po.hosted_usd_per_day.items():
        parts.append(pl.DataFrame({"tokens_per_day": po.tokens_per_day, "usd_per_day": usd, "option": name}))
    return pl.concat(parts).filter(pl.col("usd_per_day").is_finite() & (pl.col("usd_per_day") > 0))


def crossover_chart(frame: pl.DataFrame, po: PriceOptions) -> alt.LayerChart:
    """$/day of self-hosting (autoscaled, on-demand) and of each hosted API over output tokens per day, log-log;
    a rule at today's traffic and at each crossover."""
    log = alt.Scale(type="log")
    names = list(dict.fromkeys(frame["option"].to_list()))
    hosted = ["#4c78a8", "#f58518", "#54a24b", "#b279a2", "#9d755d"]
    colors = alt.Scale(
        domain=names, range=["#222222" if n == "self-hosted" else hosted[i % 5] for i, n in enumerate(names)]
    )
    lines = (
        alt.Chart(frame)
        .mark_line()
        .encode(
            x=alt.X("tokens_per_day:Q", title="output tokens per day", scale=log, axis=alt.Axis(format="~s")),
            y=alt.Y("usd_per_day:Q", title="$ per day", scale=log, axis=alt.Axis(format="$~s")),
            color=alt.Color("option:N", legend=LEGEND, scale=colors, sort=names),
            tooltip=[
                alt.Tooltip("option:N"),
                alt.Tooltip("tokens_per_day:Q", format=",.3~s"),
                alt.Tooltip("usd_per_day:Q", format="$,.2f"),
            ],
        )
    )
    marks = [{"tokens_per_day": po.output_tokens_per_day, "label": "this traffic"}]
    marks += [
        {"tokens_per_day": r.crossover_tokens_per_day, "label": f"crossover {r.provider}"}
        for r in po.rows
        if r.option == "hosted" and r.crossover_tokens_per_day
    ]
    rules = alt.Chart(pl.DataFrame(marks)).mark_rule(strokeDash=[4, 3], color="#777").encode(x="tokens_per_day:Q")
    text = (
        alt.Chart(pl.DataFrame(marks))
        .mark_text(align="left", dx=3, y=10, fontSize=10, color="#555")
        .encode(x="tokens_per_day:Q", text="label:N")
    )
    return alt.layer(lines, rules, text).properties(
        height=300, title="Self-hosting vs hosted APIs, by traffic", autosize=FIT_WIDTH
    )
