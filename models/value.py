"""From churn probabilities and retention experiments to money a finance director can check.

Three views of the same arithmetic:

* the *naive* figure of CX practice: every contact is a save
  (saves x annual value);
* the *expected* value before acting: probability x save rate x annual revenue
  minus the contact's cost;
* the *measured* value after acting: saved customers = (control churn rate -
  treatment churn rate) x treated customers, valued at the treated customers'
  annual revenue, with bootstrap intervals.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from models.adjustment import PROGNOSTIC, adjusted_saved, control_slope
from models.errors import ModelInputError

MONTHS = 12


# --- the naive arithmetic of the worked examples -------------------------------------------
def naive_annual_revenue_saved(
    saves_per_unit_per_month: float, units: int, annual_value_per_customer: float
) -> tuple[float, float]:
    """(customers kept a year, annual revenue) when every contact is a save.

    Retailer: one save per store per month across 1,000 stores at $210 a year
    -> 12,000 customers, $2,520,000.
    """
    customers = saves_per_unit_per_month * units * MONTHS
    return customers, customers * annual_value_per_customer


def naive_callback_recovery(
    monthly_callback_requests: float, monthly_revenue_per_customer: float
) -> tuple[float, float]:
    """(recovery opportunities a year, annual revenue if every one is kept).

    Telecom: about 1,000 callback requests a month at $160 a month
    -> 12,000 opportunities, $23.04M.
    """
    opportunities = monthly_callback_requests * MONTHS
    return opportunities, opportunities * monthly_revenue_per_customer * MONTHS


# --- expected value before acting -----------------------------------------------------------
def annual_revenue_at_risk(probability: np.ndarray, monthly_revenue: np.ndarray) -> np.ndarray:
    return np.asarray(probability) * MONTHS * np.asarray(monthly_revenue)


def expected_net_value(
    probability: np.ndarray,
    monthly_revenue: np.ndarray,
    save_rate: float,
    contact_cost: float,
    value_months: float = MONTHS,
) -> np.ndarray:
    """Probability x save rate x the revenue a save keeps (``value_months`` of monthly revenue) - contact cost."""
    return np.asarray(probability) * save_rate * value_months * np.asarray(monthly_revenue) - contact_cost


@dataclass(frozen=True)
class PlanFigures:
    """What contacting a set of customers is expected to give: saves, the revenue they keep, the contacts' cost."""

    customers: int
    expected_customers_saved: float
    expected_revenue_recovered: float  # over the save value's horizon (12 months)
    cost: float

    @property
    def net_value(self) -> float:
        return self.expected_revenue_recovered - self.cost


def plan_figures(rows: pd.DataFrame, save_rate: float, contact_cost: float, value_months: float) -> PlanFigures:
    """:class:`PlanFigures` of contacting ``rows``: each expected to save its ``expected_saves`` (an uplift
    model's) or churn probability x ``save_rate`` customers, keeping ``value_months`` of its monthly revenue."""
    saved = rows["expected_saves"] if "expected_saves" in rows else rows["churn_probability"] * save_rate
    revenue = float((saved * value_months * rows["monthly_revenue"]).sum())
    return PlanFigures(len(rows), float(saved.sum()), revenue, contact_cost * len(rows))


@dataclass(frozen=True)
class TargetingPlan:
    selected: pd.DataFrame  # the customers to contact, in priority order
    profit_curve: pd.DataFrame  # number contacted -> cumulative expected net value
    expected_customers_saved: float
    expected_revenue_recovered: float  # over the save value's horizon (12 months)
    cost: float
    net_value: float
    save_rate: float
    save_rate_source: str
    contact_cost: float  # of one contact
    value_months: float = MONTHS  # months of revenue a save keeps

    def without(self, customer_ids) -> PlanFigures:
        """The figures of the list less ``customer_ids`` (its random holdout: listed, not contacted)."""
        kept = self.selected[~self.selected["customer_id"].astype(str).isin(pd.Index(customer_ids).astype(str))]
        return plan_figures(kept, self.save_rate, self.contact_cost, self.value_months)


def targeting_plan(
    scores: pd.DataFrame,
    save_rate: float,
    contact_cost: float,
    capacity_per_location: int | None,
    budget: float | None,
    save_rate_source: str = "config",
    value_months: float = MONTHS,
) -> TargetingPlan:
    """Whom to contact: ranked by expected net value, positive only, within per-location capacity and budget.

    ``scores`` needs ``customer_id``, ``churn_probability``, ``monthly_revenue``,
    ``expected_net_value_of_contact`` and optionally ``location_id``. With an
    ``expected_saves`` column (an uplift model's reduction in churn probability)
    a contact is expected to save that many customers, and ``do_not_contact``
    rows never enter the plan; otherwise probability x ``save_rate``.
    """
    ranked = scores.sort_values(
        ["expected_net_value_of_contact", "customer_id"], ascending=[False, True], kind="stable"
    )
    # The profit curve covers everyone, so it shows where contacting more stops paying.
    curve_values = ranked["expected_net_value_of_contact"].to_numpy()
    curve = pd.DataFrame({"contacted": np.arange(1, len(ranked) + 1), "expected_net_value": np.cumsum(curve_values)})
    pick = ranked[ranked["expected_net_value_of_contact"] > 0]
    if "do_not_contact" in pick:
        pick = pick[~pick["do_not_contact"].to_numpy(dtype=bool)]
    if capacity_per_location is not None and "location_id" in pick:
        pick = pick[
            pick.groupby(pick["location_id"].astype(object).fillna("__none__")).cumcount() < capacity_per_location
        ]
    if budget is not None and contact_cost > 0:
        pick = pick.head(int(budget // contact_cost))
    figures = plan_figures(pick, save_rate, contact_cost, value_months)
    return TargetingPlan(
        pick.reset_index(drop=True),
        curve,
        figures.expected_customers_saved,
        figures.expected_revenue_recovered,
        figures.cost,
        figures.net_value,
        save_rate,
        save_rate_source,
        contact_cost,
        value_months,
    )


# --- revenue-weighted NPS ------------------------------------------------------------------
def nps_category(score: pd.Series) -> pd.Series:
    return pd.Series(np.select([score <= 6, score <= 8], ["detractor", "passive"], "promoter"), index=score.index)


def revenue_weighted_nps(answers: pd.DataFrame) -> dict:
    """Plain and revenue-weighted NPS of one answer per customer (``score``, ``monthly_revenue``)."""
    if answers.empty:
        return {"respondents": 0, "nps": float("nan"), "revenue_weighted_nps": float("nan"), "revenue_share": {}}
    cat = nps_category(answers["score"])
    rev = answers["monthly_revenue"].astype(float)
    share_customers = cat.value_counts(normalize=True)
    share_revenue = rev.groupby(cat).sum() / max(rev.sum(), 1e-12)
    return {
        "respondents": int(len(answers)),
        "nps": float(100 * (share_customers.get("promoter", 0) - share_customers.get("detractor", 0))),
        "revenue_weighted_nps": float(100 * (share_revenue.get("promoter", 0) - share_revenue.get("detractor", 0))),
        "revenue_share": {k: float(share_revenue.get(k, 0.0)) for k in ("promoter", "passive", "detractor")},
    }


# --- what a save is worth: survival after the outcome window --------------------------------
DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class SaveValue:
    """What keeping a customer through a campaign's outcome window is worth, in months of revenue, from how long
    past campaigns' customers who stayed through it went on paying (re-churn after a save counted).

    ``retained_months``: expected paying months in the next ``months`` of a treated customer alive at the window's
    end (Kaplan-Meier; the naive view counts ``months``); ``lifetime_months``: the same over ``lifetime_months``
    months, discounted at ``discount_rate`` a year; ``control_retained_months``: the control group's, for
    comparison (a contact that only delays churn shows as treated survivors leaving sooner). Beyond the longest
    follow-up, ``observed_days``, each curve goes on at its observed average hazard (an exponential tail).
    """

    months: int
    retained_months: float
    lifetime_horizon_months: int
    lifetime_months: float
    discount_rate: float
    control_retained_months: float
    followed: int  # treated customers alive at the window's end, followed up
    rechurned: int  # of whom churned later
    observed_days: int

    def sentence(self) -> str:
        return (
            f"a save is worth {self.retained_months:.1f} months of revenue over the next {self.months} (not "
            f"{self.months}: {self.rechurned:,} of the {self.followed:,} treated customers who stayed through the "
            f"outcome window churned later, over up to {self.observed_days} days of follow-up; control group "
            f"{self.control_retained_months:.1f}), {self.lifetime_months:.1f} discounted months over "
            f"{self.lifetime_horizon_months // 12} years"
        )


def kaplan_meier(duration: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Kaplan-Meier survival curve: the distinct event times and S just after each (numpy; lifelines does not
    install beside pandas 3, and the product-limit estimator is a few lines)."""
    duration, event = np.asarray(duration, dtype=float), np.asarray(event, dtype=bool)
    times, deaths = np.unique(duration[event], return_counts=True)
    at_risk = len(duration) - np.searchsorted(np.sort(duration), times, side="left")
    return times, np.cumprod(1 - deaths / at_risk)


def survival_at(times: np.ndarray, survival: np.ndarray, horizon: float, t: np.ndarray) -> np.ndarray:
    """S(t) of a Kaplan-Meier curve observed up to ``horizon`` days, with an exponential tail beyond it at the
    curve's average hazard over what was observed."""
    t = np.asarray(t, dtype=float)
    idx = np.searchsorted(times, np.minimum(t, horizon), side="right") - 1
    s = np.where(idx >= 0, survival[np.maximum(idx, 0)] if len(survival) else 1.0, 1.0)
    s_end = float(survival[-1]) if len(survival) else 1.0
    rate = -np.log(max(s_end, 1e-9)) / horizon if horizon > 0 else 0.0
    return np.where(t <= horizon, s, s_end * np.exp(-rate * (t - horizon)))


def follow_up(outcomes: pd.DataFrame, churn_events: pd.DataFrame, horizon_days: int, data_end: pd.Timestamp):
    """Each action row whose customer stayed through the outcome window, followed from the window's end: ``group``,
    ``duration`` (days to a later churn event, or to ``data_end``) and ``rechurned``."""
    stayed = outcomes[~outcomes["churned"].astype(bool)]
    start = stayed["action_date"].to_numpy(dtype="datetime64[us]") + np.timedelta64(horizon_days, "D")
    when = _next_churn(stayed["customer_id"], start, churn_events)
    end = np.datetime64(pd.Timestamp(data_end).normalize(), "us") + np.timedelta64(1, "D")
    rechurned = ~np.isnat(when) & (when >= start) & (when < end)
    stop = np.where(rechurned, when, end)
    keep = start <= end
    days = (stop - start) / np.timedelta64(1, "D")
    return pd.DataFrame({"group": stayed["group"].to_numpy(), "duration": days, "rechurned": rechurned})[keep]


def _next_churn(customer_id: pd.Series, start: np.ndarray, churn_events: pd.DataFrame) -> np.ndarray:
    """Each row's first churn event on or after ``start`` (NaT: none), a customer's earlier churns ignored."""
    rows = pd.DataFrame(
        {"customer_id": customer_id.astype(str).to_numpy(), "start": start, "row": np.arange(len(start))}
    )
    events = pd.DataFrame(
        {
            "customer_id": churn_events["customer_id"].astype(str).to_numpy(),
            "churn": churn_events["churn_date"].to_numpy(dtype="datetime64[us]"),
        }
    ).sort_values("churn")
    # one key dtype on both sides, even when either is empty
    rows, events = rows.astype({"customer_id": "str"}), events.astype({"customer_id": "str"})
    matched = pd.merge_asof(
        rows.sort_values("start"), events, left_on="start", right_on="churn", by="customer_id", direction="forward"
    )
    out = np.full(len(start), np.datetime64("NaT"), dtype="datetime64[us]")
    out[matched["row"].to_numpy()] = matched["churn"].to_numpy(dtype="datetime64[us]")
    return out


def save_value(
    followed: pd.DataFrame, months: int = 12, lifetime_months: int = 60, discount_rate: float = 0.1
) -> SaveValue | None:
    """:class:`SaveValue` from :func:`follow_up`'s rows; None without treated customers followed for a day."""
    treated = followed[followed["group"] == "treatment"]
    control = followed[followed["group"] == "control"]
    horizon = float(followed["duration"].max()) if len(followed) else 0.0
    if treated.empty or horizon <= 0:
        return None

    def months_paid(rows: pd.DataFrame, count: int, discount: float) -> float:
        times, surv = kaplan_meier(rows["duration"], rows["rechurned"])
        m = np.arange(count)
        return float(np.sum(survival_at(times, surv, horizon, m * DAYS_PER_MONTH) / (1 + discount) ** (m / 12)))

    return SaveValue(
        months=months,
        retained_months=months_paid(treated, months, 0.0),
        lifetime_horizon_months=lifetime_months,
        lifetime_months=months_paid(treated, lifetime_months, discount_rate),
        discount_rate=discount_rate,
        control_retained_months=months_paid(control, months, 0.0) if len(control) else float("nan"),
        followed=len(treated),
        rechurned=int(treated["rechurned"].sum()),
        observed_days=int(horizon),
    )


def measured_save_value(
    outcomes: pd.DataFrame,
    churn_events: pd.DataFrame,
    horizon_days: int,
    data_end: pd.Timestamp,
    label: str,
    months: int = MONTHS,
    lifetime_months: int = 60,
    discount_rate: float = 0.1,
) -> tuple[SaveValue | None, str]:
    """What a save is worth from these actions' follow-up (:func:`save_value`), and why not ("" when measured):
    inactivity churn has no later churn date to follow, or nobody treated could be followed."""
    if label != "events":
        return None, "a save is valued at 12 months of revenue: inactivity churn has no later churn date to follow"
    worth = save_value(
        follow_up(outcomes, churn_events, horizon_days, data_end), months, lifetime_months, discount_rate
    )
    why = "" if worth else "a save is valued at 12 months of revenue: no treated customer was followed after the window"
    return worth, why


def value_months(worth: SaveValue | None) -> float:
    """The months of revenue a save keeps: measured, or the naive year without a measurement."""
    return worth.retained_months if worth else float(MONTHS)


# --- measured value after acting ------------------------------------------------------------
@dataclass(frozen=True)
class Recovery:
    segment: str
    value: str
    treated: int
    control: int
    treatment_churn_rate: float
    control_churn_rate: float
    saved_customers: float
    saved_low: float
    saved_high: float
    revenue_recovered: float  # annualized
    revenue_low: float
    revenue_high: float
    naive_revenue: float  # every treated customer counted as saved
    warning: str
    # the plain difference in means beside the regression-adjusted saved_* above (the same when nothing adjusts it)
    unadjusted_saved_customers: float = float("nan")
    unadjusted_saved_low: float = float("nan")
    unadjusted_saved_high: float = float("nan")
    adjustment: str = ""  # what adjusted saved_*: models.adjustment's method, or "" (plain difference in means)


@dataclass(frozen=True)
class _Groups:
    """One segment's outcomes as arrays: churned (0/1) in each group, and the treated customers' annual revenue."""

    treated_churned: np.ndarray
    control_churned: np.ndarray
    treated_annual_revenue: np.ndarray
    treated_score: np.ndarray | None = None  # the prognostic score (models.adjustment), when the outcomes carry one
    control_score: np.ndarray | None = None


@dataclass(frozen=True)
class _Intervals:
    saved_low: float
    saved_high: float
    revenue_low: float
    revenue_high: float
    unadjusted_low: float
    unadjusted_high: float


def measure_recovery(
    outcomes: pd.DataFrame,
    segment: str = "overall",
    value: str = "all",
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    min_control: int = 50,
    min_churners: int = 5,
    slope: float | None = None,
    adjustment: str = "",
    value_months: float = MONTHS,
) -> Recovery:
    """Saved customers and annualized revenue from a randomised hold-out.

    ``outcomes`` has one row per contact decision: ``group`` (treatment /
    control), ``churned`` (within the horizon after the action) and
    ``monthly_revenue``. Saved = (control rate - treatment rate) x treated;
    revenue = saved x the treated customers' mean annual revenue. Intervals are
    percentile bootstraps resampling treatment and control separately. A control
    group under ``min_control`` customers or ``min_churners`` churners is warned of.

    When ``outcomes`` has a prognostic score (:data:`models.adjustment.PROGNOSTIC`, known before the action), the
    saving and its interval are regression-adjusted (:func:`models.adjustment.adjusted_saved`; the control group's
    slope, refitted in each resample, unless ``slope`` fixes it) and named by ``adjustment``; the plain difference
    in means and its interval, from the same resamples, are the ``unadjusted_*`` figures.

    A save is worth ``value_months`` of its monthly revenue (:attr:`SaveValue.retained_months`; the default, 12, is
    the naive year); the naive figure always counts every treated customer for 12 months.
    """
    groups = _groups(outcomes)
    yt, yc, annual = groups.treated_churned, groups.control_churned, groups.treated_annual_revenue
    warning = _control_warning(len(yc), int(yc.sum()), min_control, min_churners)
    if len(yt) == 0 or len(yc) == 0:
        return _unmeasured(segment, value, groups, warning or "no treatment or no control rows")
    rate_t, rate_c = yt.mean(), yc.mean()
    plain = (rate_c - rate_t) * len(yt)
    scored = groups.treated_score is not None
    saved = adjusted_saved(yt, yc, groups.treated_score, groups.control_score, slope) if scored else plain
    ci = _bootstrap(groups, n_boot, seed, level, slope)
    return Recovery(
        segment=segment,
        value=value,
        treated=len(yt),
        control=len(yc),
        treatment_churn_rate=float(rate_t),
        control_churn_rate=float(rate_c),
        saved_customers=float(saved),
        saved_low=ci.saved_low,
        saved_high=ci.saved_high,
        revenue_recovered=float(saved * annual.mean()) * value_months / MONTHS,
        revenue_low=ci.revenue_low * value_months / MONTHS,
        revenue_high=ci.revenue_high * value_months / MONTHS,
        naive_revenue=float(annual.sum()),
        warning=warning,
        unadjusted_saved_customers=float(plain),
        unadjusted_saved_low=ci.unadjusted_low,
        unadjusted_saved_high=ci.unadjusted_high,
        adjustment=adjustment if scored else "",
    )


def _groups(outcomes: pd.DataFrame) -> _Groups:
    treated = outcomes[outcomes["group"] == "treatment"]
    control = outcomes[outcomes["group"] == "control"]
    scores = (None, None)
    if PROGNOSTIC in outcomes:
        scores = (treated[PROGNOSTIC].to_numpy(dtype=float), control[PROGNOSTIC].to_numpy(dtype=float))
    return _Groups(
        treated["churned"].to_numpy(dtype=float),
        control["churned"].to_numpy(dtype=float),
        MONTHS * treated["monthly_revenue"].to_numpy(dtype=float),
        *scores,
    )


def _unmeasured(segment: str, value: str, groups: _Groups, warning: str) -> Recovery:
    """A segment without treatment or control rows: counts and the naive figure, nothing measured."""
    nan = float("nan")
    treated, control = len(groups.treated_churned), len(groups.control_churned)
    return Recovery(segment, value, treated, control, *[nan] * 8, float(groups.treated_annual_revenue.sum()), warning)


def _control_warning(customers: int, churners: int, min_control: int, min_churners: int) -> str:
    """Why the control group is too small to say anything, or "" when it is large enough."""
    if customers < min_control or churners < min_churners:
        return (
            f"control group too small to say anything: {customers} customers, {churners} churned "
            f"(need at least {min_control} customers and {min_churners} churners)"
        )
    return ""


def _bootstrap(groups: _Groups, n_boot: int, seed: int, level: float, slope: float | None = None) -> _Intervals:
    """Percentile intervals of saved customers (adjusted when the groups carry a prognostic score, and plain) and of
    revenue, resampling treatment and control separately; the resamples are drawn in chunks to bound memory."""
    yt, yc, annual = groups.treated_churned, groups.control_churned, groups.treated_annual_revenue
    mt, mc = groups.treated_score, groups.control_score
    n_t, n_c = len(yt), len(yc)
    rng = np.random.default_rng(seed)
    plain, saved, revenue = [], [], []
    for size in np.diff(np.r_[0:n_boot:_BOOT_CHUNK, n_boot]):
        it = rng.integers(0, n_t, (size, n_t))
        ic = rng.integers(0, n_c, (size, n_c))
        plain.append((yc[ic].mean(axis=1) - yt[it].mean(axis=1)) * n_t)
        saved.append(plain[-1] if mt is None else adjusted_saved(yt[it], yc[ic], mt[it], mc[ic], slope))
        revenue.append(saved[-1] * annual[it].mean(axis=1))
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    bounds = [np.percentile(np.concatenate(draws), [lo, hi]) for draws in (saved, revenue, plain)]
    return _Intervals(*(float(b) for pair in bounds for b in pair))


_BOOT_CHUNK = 250  # resamples drawn at once: 250 x the treated group's size in memory per array


def action_outcomes(
    actions: pd.DataFrame,
    churn_events: pd.DataFrame,
    customers: pd.DataFrame,
    horizon_days: int,
    label: str = "events",
    interactions=None,
) -> pd.DataFrame:
    """One row per action: did the customer churn within ``[action_date, action_date + H)``?

    Churn is defined as the model's label is: ``events``, a churn event in the
    window; ``inactivity``, no interaction in it (a transaction log has no
    cancellations). ``interactions`` (a frame, or ``features.build.EventBatches``)
    are needed for the latter.
    """
    out = actions[["customer_id", "action_date", "group"]].copy()
    start = out["action_date"].to_numpy(dtype="datetime64[us]")
    end = start + np.timedelta64(horizon_days, "D")
    if label == "inactivity":
        out["churned"] = ~_interaction_between(out["customer_id"], start, end, interactions)
    else:
        # the customer's first churn event on or after the action: one who churned, came back and was contacted
        # later churns again or not, whatever the earlier churn
        churn = _next_churn(out["customer_id"], start, churn_events)
        out["churned"] = ~np.isnat(churn) & (churn < end)
    attrs = customers.set_index("customer_id")
    out["monthly_revenue"] = out["customer_id"].map(attrs["monthly_revenue"]).to_numpy(dtype=float)
    if "location_id" in attrs:
        out["location_id"] = out["customer_id"].map(attrs["location_id"]).astype(object).to_numpy()
    return out.reset_index(drop=True)


def _interaction_between(customer_ids: pd.Series, start: np.ndarray, end: np.ndarray, interactions) -> np.ndarray:
    """Whether each (customer, window) has an interaction stamped in ``[start, end)``."""
    if interactions is None:
        raise ModelInputError("inactivity outcomes need the interactions table")
    wanted = pd.Index(customer_ids.astype(str).unique())
    frames = [interactions] if isinstance(interactions, pd.DataFrame) else interactions.batches()
    seen = []
    for frame in frames:
        ids = frame["customer_id"].astype(str)
        keep = ids.isin(wanted).to_numpy()
        seen.append(
            pd.DataFrame(
                {"customer_id": ids[keep].to_numpy(), "t": frame["timestamp"].to_numpy(dtype="datetime64[us]")[keep]}
            )
        )
    events = (
        pd.concat(seen, ignore_index=True)
        if seen
        else pd.DataFrame({"customer_id": [], "t": np.array([], dtype="datetime64[us]")})
    )
    rows = pd.DataFrame(
        {"customer_id": customer_ids.astype(str).to_numpy(), "start": start, "end": end, "row": np.arange(len(start))}
    )
    pairs = rows.merge(events, on="customer_id", how="inner")
    hit = pairs.loc[(pairs["t"] >= pairs["start"]) & (pairs["t"] < pairs["end"]), "row"].to_numpy()
    out = np.zeros(len(start), dtype=bool)
    out[hit] = True
    return out


def recovery_rows(
    outcomes: pd.DataFrame,
    by: tuple[str, ...],
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    min_control: int = 50,
    min_churners: int = 5,
    adjustment: str = "",
    value_months: float = MONTHS,
) -> list[Recovery]:
    """The recovery overall (first), then for each value of each ``by`` column that ``outcomes`` has.

    Values whose control group is too small to say anything on its own (fewer than ``min_control`` customers or
    ``min_churners`` churners) are not measured one by one: they are pooled into one ``other (N values)`` row, last
    for the column, so a report shows figures rather than a row of warnings per location.

    With a prognostic score (``adjustment`` names how it was made), a segment is adjusted with the overall control
    group's slope: a small control group's own slope would add more noise than the score removes.
    """
    settings = {
        "n_boot": n_boot,
        "seed": seed,
        "level": level,
        "min_control": min_control,
        "min_churners": min_churners,
        "adjustment": adjustment,
        "value_months": value_months,
    }
    rows = [measure_recovery(outcomes, **settings)]
    if PROGNOSTIC in outcomes:
        control = outcomes[outcomes["group"] == "control"]
        settings["slope"] = control_slope(control["churned"].to_numpy(float), control[PROGNOSTIC].to_numpy(float))
    for col in by:
        if col not in outcomes:
            continue
        groups = {str(value): g for value, g in outcomes.groupby(outcomes[col].astype(str), sort=True)}
        small = [v for v, g in groups.items() if _too_small(g, min_control, min_churners)]
        rows += [measure_recovery(g, col, v, **settings) for v, g in groups.items() if v not in small]
        if len(small) > 1:
            pooled = pd.concat([groups[v] for v in small])
            rows.append(measure_recovery(pooled, col, f"other ({len(small)} too small alone)", **settings))
        elif small:
            rows.append(measure_recovery(groups[small[0]], col, small[0], **settings))
    return rows


def _too_small(outcomes: pd.DataFrame, min_control: int, min_churners: int) -> bool:
    """Whether a segment's control group is too small to measure on its own (the rule ``_control_warning`` states)."""
    control = outcomes["group"] == "control"
    return bool(_control_warning(int(control.sum()), int(outcomes.loc[control, "churned"].sum()), min_control,
                                 min_churners))  # fmt: skip


def recovery_frame(rows: list[Recovery], level: float = 0.95) -> pd.DataFrame:
    """:func:`recovery_rows` as a frame, one row per segment value: the recovery table reports and files show, with
    each segment's partially pooled figures beside its own (:func:`pool_segments`)."""
    return pool_segments(pd.DataFrame([dataclasses.asdict(r) for r in rows]), level)


POOLED = ("pooled_saved", "pooled_low", "pooled_high")


def pool_segments(table: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Empirical-Bayes partial pooling of each segment column's values (locations, risk tiers) towards their common
    effect: ``pooled_saved`` with a ``level`` normal interval (``pooled_low``, ``pooled_high``); NaN for the overall
    row and for columns with fewer than three measured values.

    Each value's effect is its saving per treated customer d_i (the difference in churn rates, regression-adjusted
    when the recovery is) with sampling variance v_i (binomial, at the column's common rates: conservative when
    adjusted). The between-value variance tau^2 is DerSimonian and Laird's method of moments; each d_i shrinks
    towards the precision-weighted mean mu by B_i = v_i / (v_i + tau^2), with variance (1 - B_i) v_i + B_i^2 var(mu).
    A small group borrows strength from the others instead of showing noise; with tau^2 = 0 every value shows the
    common effect. Written here (a dozen lines of numpy) rather than adding statsmodels for its meta-analysis module.
    """
    out = table.assign(**{c: np.nan for c in POOLED})
    z = norm.ppf(0.5 + level / 2)
    for segment in out.loc[out["segment"] != "overall", "segment"].unique():
        rows = out.index[(out["segment"] == segment) & out["control_churn_rate"].notna() & (out["treated"] > 0)]
        if len(rows) < 3:
            continue
        t, c = (
            out.loc[rows, "treatment_churn_rate"].to_numpy(float),
            out.loc[rows, "control_churn_rate"].to_numpy(float),
        )
        n_t, n_c = out.loc[rows, "treated"].to_numpy(float), out.loc[rows, "control"].to_numpy(float)
        d = out.loc[rows, "saved_customers"].to_numpy(float) / n_t  # each value's (adjusted) difference in rates
        # sampling variances at the column's common rates: a value's own rates would tie its weight to its effect
        # (low churn, small variance, small saving) and drag the common effect down
        p_t, p_c = np.sum(t * n_t) / n_t.sum(), np.sum(c * n_c) / n_c.sum()
        v = np.maximum(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c, 1e-12)
        w = 1 / v
        q = float(np.sum(w * (d - np.sum(w * d) / w.sum()) ** 2))
        tau2 = max(0.0, (q - (len(d) - 1)) / (w.sum() - np.sum(w**2) / w.sum()))
        w_star = 1 / (v + tau2)
        mu, var_mu = float(np.sum(w_star * d) / w_star.sum()), float(1 / w_star.sum())
        b = v / (v + tau2)
        pooled, sd = b * mu + (1 - b) * d, np.sqrt((1 - b) * v + b**2 * var_mu)
        out.loc[rows, "pooled_saved"] = pooled * n_t
        out.loc[rows, "pooled_low"] = (pooled - z * sd) * n_t
        out.loc[rows, "pooled_high"] = (pooled + z * sd) * n_t
    return out


@dataclass(frozen=True)
class Power:
    """What a randomised campaign of this design can measure, and what the next one needs (normal approximation of
    the difference in churn rates, two-sided at ``level``).

    ``min_detectable_saved`` is the saving this design detects ``power`` of the time; ``half_width_saved`` its
    interval's half-width; ``control_needed`` / ``treated_needed`` the group sizes, in the same split, for an
    interval of +-``precision`` x the estimated saving (None when nothing was saved to size it on).
    """

    treated: int
    control: int
    control_churn_rate: float
    power: float
    level: float
    min_detectable_rate: float  # in churn-rate points
    min_detectable_saved: float
    half_width_saved: float
    precision: float
    control_needed: int | None
    treated_needed: int | None


def power_analysis(
    treated: int,
    control: int,
    treatment_churn_rate: float,
    control_churn_rate: float,
    level: float = 0.95,
    power: float = 0.8,
    precision: float = 0.25,
) -> Power | None:
    """The design's minimum detectable saving and the group sizes a requested precision needs; None when either
    group is empty or the control rate is unknown.

    Minimum detectable difference = (z_(1 - alpha/2) + z_power) x sqrt(p (1 - p) (1/n_t + 1/n_c)) at the control
    churn rate p (no effect); the interval's half-width uses each group's own rate. Scaling both groups by k divides
    the half-width by sqrt(k), so the sizes for +-``precision`` of the saving follow in closed form. Written with
    scipy's normal quantiles: the two-proportion formulas are a few lines, and statsmodels' would add a dependency.
    """
    if treated <= 0 or control <= 0 or not np.isfinite(control_churn_rate):
        return None
    z, z_power = norm.ppf(0.5 + level / 2), norm.ppf(power)
    p, q = float(control_churn_rate), float(treatment_churn_rate)
    mde = float((z + z_power) * np.sqrt(p * (1 - p) * (1 / treated + 1 / control)))
    half = float(z * np.sqrt(q * (1 - q) / treated + p * (1 - p) / control) * treated)
    saved = (p - q) * treated
    needed = None
    if saved > 0 and half > 0:
        k = (half / (precision * saved)) ** 2  # the factor both groups need for +-precision x saved
        needed = (int(np.ceil(control * k)), int(np.ceil(treated * k)))
    return Power(
        treated, control, p, power, level, mde, mde * treated, half, precision,
        needed[0] if needed else None, needed[1] if needed else None,
    )  # fmt: skip


def risk_tiers(probability: np.ndarray, high: float, medium: float, ids: np.ndarray | None = None) -> np.ndarray:
    """``high`` for the top share by probability, ``medium`` for the next share, ``low`` for the rest.

    Ties are broken by ``ids`` when given, so that the tiers never depend on row order.
    """
    n = len(probability)
    order = np.argsort(-probability, kind="stable") if ids is None else np.lexsort((ids, -probability))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return np.select([rank < round(high * n), rank < round((high + medium) * n)], ["high", "medium"], "low")
