"""Price options for a day of traffic: on-demand, spot, 1- and 3-year commitments, owned hardware and hosted APIs,
the cheapest of each class, and the crossover in tokens per day above which self-hosting beats each hosted API.

Prices are data (catalogs/prices/options.yaml, each with a page and a date; on-demand from catalogs/prices/cloud.yaml,
owned from llmcap.economics.cost.tco_cost). For a deployment and its replica schedule R_i over the day
(llmcap.plan.autoscale):
  on-demand   sum_i instances(R_i) x instance $/hour x dt / 3600 per day, the cheapest current offering;
  spot        the same at the spot price with R_i + k_i replicas, k_i the extra replicas that cover interruptions:
              an interrupted replica is replaced after the replica start time s, so with interruptions at
              f per instance-month (730 h) the replicas down at a time are Poisson with mean
                  mu_i = R_i x f / 730 x s / 3600
              and k_i is its 99th percentile (a higher f never needs fewer replicas);
  reserved    a commitment bills every hour of its term: the peak's replicas all day at the committed price;
  owned       the peak's devices all day at the total cost of ownership per device-hour (purchase over its life,
              power at TDP x PUE at the grid price: llmcap.economics.cost);
  hosted      input tokens/day x $/M input + output tokens/day x $/M output.
Crossover: scaling the day's mean rate by s scales tokens per day by s; self-hosting costs C(s) (the deployment's
autoscaled on-demand schedule at s x the profile, whole replicas), the API costs s x its day's bill. The crossover is
the lowest tokens/day from which C stays at or below the API's bill over the scanned range (1/1000 to 1000 x).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
from pydantic import Field
from scipy.stats import poisson

from llmcap.catalog.loader import Catalog, catalog_file
from llmcap.catalog.schema import CloudOffering, Frozen, Sourced
from llmcap.economics.cost import CostError, instances_needed, offerings_for, purchase_price, tco_cost
from llmcap.load.day import DayProfile
from llmcap.plan.autoscale import DayPlan, DayPolicy, autoscaled, needed_replicas

OPTIONS = ("on-demand", "spot", "reserved-1y", "reserved-3y", "owned", "hosted")
OPTIONS_FILE = "prices/options.yaml"
HOURS_PER_MONTH = 730.0
SPOT_COVER = 0.99


class PriceOptionError(ValueError):
    """A bad price-option request (unknown option, bad rate), with the reason."""


class SpotPrice(Sourced):
    offering: str
    usd_per_hour: float = Field(gt=0)
    interruptions_per_month: float | None = Field(default=None, ge=0, le=100)
    date_seen: dt.date


class SpotInterruptions(Sourced):
    default_per_month: float = Field(ge=0, le=100)


class Commitment(Sourced):
    offering: str
    term_years: int = Field(ge=1, le=3)
    usd_per_hour: float = Field(gt=0)
    date_seen: dt.date


class HostedPrice(Sourced):
    model: str
    provider: str
    api_model: str
    usd_per_million_input_tokens: float = Field(ge=0)
    usd_per_million_output_tokens: float = Field(gt=0)
    date_seen: dt.date


class OptionsCatalog(Frozen):
    spot: list[SpotPrice] = Field(default_factory=list)
    spot_interruptions: SpotInterruptions
    commitments: list[Commitment] = Field(default_factory=list)
    hosted: list[HostedPrice] = Field(default_factory=list)


def options_catalog() -> OptionsCatalog:
    return catalog_file(OPTIONS_FILE, OptionsCatalog.model_validate, PriceOptionError)


def parse_options(text: str | None) -> tuple[str, ...]:
    """`--pricing a,b,...` (default: all), each one of OPTIONS."""
    if text is None or not text.strip():
        return OPTIONS
    items = tuple(dict.fromkeys(t.strip().lower() for t in text.split(",") if t.strip()))
    bad = [t for t in items if t not in OPTIONS]
    if bad:
        raise PriceOptionError(f"--pricing: unknown option(s) {', '.join(bad)}; known: {', '.join(OPTIONS)}")
    return items


class PriceRow(Frozen):
    """One price option for the day (the JSON `pricing` rows)."""

    option: str
    provider: str
    usd_per_day: float
    date_seen: str | None
    crossover_tokens_per_day: float | None = None
    hardware: str | None = None
    instance: str | None = None
    replicas_peak: int | None = None
    cheapest_in_class: bool = False
    detail: str = ""
    source: str = ""


def spot_extra_replicas(replicas: np.ndarray, interruptions_per_month: float, replace_s: float) -> np.ndarray:
    """Extra replicas so that, with probability SPOT_COVER, the interrupted ones (Poisson) are covered."""
    mu = np.asarray(replicas, dtype=float) * interruptions_per_month / HOURS_PER_MONTH * max(replace_s, 0.0) / 3600.0
    return np.where(mu > 0, poisson.ppf(SPOT_COVER, np.maximum(mu, 1e-300)), 0.0).astype(np.int64)


def _day_cost(counts: np.ndarray, dpr: int, per_instance: int, usd_per_hour: float, interval_s: float, days: float):
    inst = instances_needed(np.asarray(counts, dtype=np.int64), dpr, per_instance)
    return float((inst * usd_per_hour * interval_s).sum() / 3600.0 / days)


def _date(d) -> str | None:
    return d.isoformat() if d else None


def _cloud_rows(row: DayPolicy, peak: DayPolicy, day: DayPlan, catalog: Catalog, wanted, interruptions: float | None):
    out: list[PriceRow] = []
    opts = options_catalog()
    try:
        offers = offerings_for(row.hardware, catalog=catalog)
    except CostError:
        offers = []
    by_id: dict[str, CloudOffering] = {o.id: o for o in offers}
    counts = np.asarray(row.replicas)
    dpr = row.devices_per_replica
    if "on-demand" in wanted:
        for o in offers:
            usd = _day_cost(counts, dpr, o.devices_per_instance, o.usd_per_hour, day.interval_s, day.days)
            out.append(
                PriceRow(
                    option="on-demand",
                    provider=o.provider,
                    usd_per_day=usd,
                    date_seen=_date(o.date_seen),
                    hardware=row.hardware,
                    instance=o.instance,
                    replicas_peak=int(counts.max()),
                    detail=f"autoscaled schedule, {o.region}",
                    source=o.source,
                )
            )
    if "spot" in wanted:
        for s in opts.spot:
            o = by_id.get(s.offering)
            if o is None:
                continue
            f = s.interruptions_per_month if s.interruptions_per_month is not None else interruptions
            if f is None:
                f = opts.spot_interruptions.default_per_month
            extra = spot_extra_replicas(counts, f, row.startup_s or (day.startup.total_s if day.startup else 0.0))
            usd = _day_cost(counts + extra, dpr, o.devices_per_instance, s.usd_per_hour, day.interval_s, day.days)
            out.append(
                PriceRow(
                    option="spot",
                    provider=o.provider,
                    usd_per_day=usd,
                    date_seen=_date(s.date_seen),
                    hardware=row.hardware,
                    instance=o.instance,
                    replicas_peak=int((counts + extra).max()),
                    detail=f"autoscaled + up to {int(extra.max())} extra replica(s) for {f:g} "
                    f"interruptions/instance-month",
                    source=s.source,
                )
            )
    for c in opts.commitments:
        name = f"reserved-{c.term_years}y"
        o = by_id.get(c.offering)
        if name not in wanted or o is None:
            continue
        usd = _day_cost(
            np.asarray(peak.replicas), dpr, o.devices_per_instance, c.usd_per_hour, day.interval_s, day.days
        )
        out.append(
            PriceRow(
                option=name,
                provider=o.provider,
                usd_per_day=usd,
                date_seen=_date(c.date_seen),
                hardware=row.hardware,
                instance=o.instance,
                replicas_peak=int(max(peak.replicas)),
                detail=f"{c.term_years}-year commitment: peak replicas all day",
                source=c.source,
            )
        )
    if "owned" in wanted:
        try:
            tco = tco_cost(row.hardware, 1, catalog=catalog)
            bought = purchase_price(row.hardware, catalog)[1][0].date_seen  # the purchase price's date
            devices = int(max(peak.replicas)) * dpr
            out.append(
                PriceRow(
                    option="owned",
                    provider="owned (TCO)",
                    usd_per_day=tco.usd_per_device_hour * devices * 24,
                    date_seen=_date(bought),
                    hardware=row.hardware,
                    replicas_peak=int(max(peak.replicas)),
                    detail=f"{devices} device(s) at ${tco.usd_per_device_hour:.3f}/device-hour "
                    f"({'; '.join(tco.notes)[:160]})",
                    source=tco.source or "",
                )
            )
        except CostError:
            pass
    return out


def hosted_usd_per_day(h: HostedPrice, input_tokens_per_day: float, output_tokens_per_day: float) -> float:
    return (
        input_tokens_per_day * h.usd_per_million_input_tokens + output_tokens_per_day * h.usd_per_million_output_tokens
    ) / 1e6


def crossover(tokens_per_day: np.ndarray, self_usd_per_day: np.ndarray, api_usd_per_day: np.ndarray) -> float | None:
    """The lowest tokens/day of the scan from which self-hosting costs no more than the API at every larger point;
    None when self-hosting is dearer at the top of the scan. Between the last dearer point and the next one the
    crossing is interpolated linearly."""
    cheaper = np.asarray(self_usd_per_day) <= np.asarray(api_usd_per_day) + 1e-12
    if not cheaper[-1]:
        return None
    if cheaper.all():
        return float(tokens_per_day[0])
    j = int(np.flatnonzero(~cheaper)[-1])  # last point where self-hosting is dearer
    t0, t1 = tokens_per_day[j], tokens_per_day[j + 1]
    gap0 = self_usd_per_day[j] - api_usd_per_day[j]
    gap1 = self_usd_per_day[j + 1] - api_usd_per_day[j + 1]
    w = gap0 / (gap0 - gap1) if gap0 != gap1 else 1.0
    return float(t0 + min(max(w, 0.0), 1.0) * (t1 - t0))


def self_host_curve(
    row: DayPolicy, profile: DayProfile, day: DayPlan, catalog: Catalog, output_len: float, scales: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(output tokens/day, on-demand $/day of the autoscaled schedule) as the day's mean rate is scaled by `scales`."""
    offers = offerings_for(row.hardware, catalog=catalog)
    base = profile.rate_rps
    rates = scales[:, None] * base[None, :]
    g = np.full(scales.size, row.per_replica_goodput_rps)
    need = np.vstack([needed_replicas(r, g[:1], np.zeros(1), day.min_replicas)[0] for r in rates])
    billed = autoscaled(need, profile.interval_s, day.scale_down_s)
    dpr = row.devices_per_replica
    cost = np.full(scales.size, np.inf)
    for o in offers:
        inst = instances_needed(billed.astype(np.int64), dpr, o.devices_per_instance)
        cost = np.minimum(cost, (inst * o.usd_per_hour * profile.interval_s).sum(axis=1) / 3600.0 / profile.days)
    tokens = scales * base.sum() * profile.interval_s * output_len / profile.days
    return tokens, cost


class PriceOptions(Frozen):
    rows: list[PriceRow]
    tokens_per_day: list[float]  # the crossover scan (output tokens/day)
    self_host_usd_per_day: list[float]
    hosted_usd_per_day: dict[str, list[float]]  # provider/model -> $/day at each scan point
    output_tokens_per_day: float
    input_tokens_per_day: float
    notes: list[str] = Field(default_factory=list)


def price_options(
    day: DayPlan,
    profile: DayProfile,
    model: str,
    input_len: float,
    output_len: float,
    catalog: Catalog,
    wanted: tuple[str, ...] = OPTIONS,
    spot_interruptions_per_month: float | None = None,
) -> PriceOptions:
    """Price rows for every deployment of the day plan (autoscaled schedule; peak for commitments and ownership)."""
    if spot_interruptions_per_month is not None and not (
        math.isfinite(spot_interruptions_per_month) and 0 <= spot_interruptions_per_month <= 100
    ):
        raise PriceOptionError(
            f"--spot-interruptions must be in [0, 100] per month, got {spot_interruptions_per_month!r}"
        )
    notes: list[str] = []
    by_dep: dict[tuple, dict[str, DayPolicy]] = {}
    for r in day.rows:
        by_dep.setdefault((r.hardware, r.weight_format, r.engine, r.tp, r.pp), {})[r.policy] = r
    rows: list[PriceRow] = []
    for pols in by_dep.values():
        auto, peak = pols.get("autoscaled"), pols.get("static-peak")
        if auto is None or peak is None or auto.slo_miss_request_share > day.slo_miss_budget + 1e-12:
            continue
        rows += _cloud_rows(auto, peak, day, catalog, wanted, spot_interruptions_per_month)
    requests_per_day = float(np.sum(profile.rate_rps) * profile.interval_s / profile.days)
    out_tpd, in_tpd = requests_per_day * output_len, requests_per_day * input_len
    opts = options_catalog()
    hosted = [h for h in opts.hosted if h.model == catalog.model(model).meta.id] if "hosted" in wanted else []
    scan: np.ndarray = np.geomspace(1e-3, 1e3, 121)
    tokens, self_cost, api_curves = np.array([]), np.array([]), {}
    best = day.best()
    auto_best = next((r for r in best if r.policy == "autoscaled"), None)
    if auto_best is not None:
        try:
            tokens, self_cost = self_host_curve(auto_best, profile, day, catalog, output_len, scan)
        except CostError:
            notes.append(f"no on-demand price for {auto_best.hardware}: no crossover")
    for h in hosted:
        key = f"{h.provider} {h.api_model}"
        api = scan * hosted_usd_per_day(h, in_tpd, out_tpd)
        api_curves[key] = [float(x) for x in api]
        cross = crossover(tokens, self_cost, api) if tokens.size else None
        rows.append(
            PriceRow(
                option="hosted",
                provider=h.provider,
                usd_per_day=hosted_usd_per_day(h, in_tpd, out_tpd),
                date_seen=_date(h.date_seen),
                crossover_tokens_per_day=cross,
                instance=h.api_model,
                detail=f"${h.usd_per_million_input_tokens:g}/M input, ${h.usd_per_million_output_tokens:g}/M output",
                source=h.source,
            )
        )
    if "hosted" in wanted and not hosted:
        notes.append(f"no hosted API price for {model} in catalogs/{OPTIONS_FILE}")
    for name in ("reserved-1y", "reserved-3y"):
        if name in wanted and not any(r.option == name for r in rows):
            notes.append(
                f"{name}: no commitment price with a page and a date in catalogs/{OPTIONS_FILE} for these devices"
            )
    if "spot" in wanted and not any(r.option == "spot" for r in rows):
        notes.append("spot: no sourced spot price for these devices")
    unique: dict[tuple, PriceRow] = {}  # the cheapest deployment for each option, provider and instance
    for r in rows:
        key = (r.option, r.provider, r.instance, r.hardware if r.option == "owned" else None)
        if key not in unique or r.usd_per_day < unique[key].usd_per_day:
            unique[key] = r
    rows = list(unique.values())
    cheapest: dict[str, float] = {}
    for r in rows:
        cheapest[r.option] = min(cheapest.get(r.option, math.inf), r.usd_per_day)
    rows = sorted(
        (r.model_copy(update={"cheapest_in_class": r.usd_per_day == cheapest[r.option]}) for r in rows),
        key=lambda r: (OPTIONS.index(r.option), r.usd_per_day),
    )
    return PriceOptions(
        rows=rows,
        tokens_per_day=[float(x) for x in tokens],
        self_host_usd_per_day=[float(x) for x in self_cost],
        hosted_usd_per_day=api_curves,
        output_tokens_per_day=out_tpd,
        input_tokens_per_day=in_tpd,
        notes=notes,
    )


def cheapest_rows(po: PriceOptions) -> list[PriceRow]:
    """The cheapest row of each option class (ties: the first)."""
    seen: set[str] = set()
    out = []
    for r in po.rows:
        if r.cheapest_in_class and r.option not in seen:
            seen.add(r.option)
            out.append(r)
    return out
