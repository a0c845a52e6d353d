"""Self-contained HTML reports, one visual family: scoring, recovery, monitoring, training and uplift runs.

Each page opens with its title and a summary block of what the run decided, then the headline figures, then the
detail; plots are inlined, there are no external assets.
"""

from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass

import markdown
import numpy as np
import pandas as pd

from models import value as val
from models.drift import FEED
from models.evaluate import figure
from models.uplift import qini_curve

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1200px;color:#1d2733}
.scroll{overflow-x:auto;max-width:100%}ol.note{padding-left:1.5rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.85rem}\
td,th{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:right}
th{background:#f3f5f7}td:first-child,th:first-child{text-align:left}.note{color:#57606a;font-size:.85rem}
.kpi{display:inline-block;margin:.3rem 1.2rem .3rem 0}.kpi b{display:block;font-size:1.3rem}.warn{color:#9a3412}
.summary{background:#f6f8fa;border:1px solid #d0d7de;border-left:4px solid #1a7f37;padding:.5rem 1rem;margin:1rem 0}
.grid{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem}.grid figure{margin:0}figcaption{font-size:.85rem;color:#57606a}
.summary.attention{border-left-color:#9a3412}.summary ul{margin:.3rem 0;padding-left:1.2rem}.summary li{margin:.2rem 0}
"""


def money(x: float | None) -> str:
    """Dollars as a finance reader writes them: ``$3,090``, ``-$3,090`` (never ``$-3,090``), ``n/a`` when unknown."""
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"-${-x:,.0f}" if round(x) < 0 else f"${abs(x):,.0f}"


def _png(fig) -> str:
    """The figure (a plain matplotlib Figure from :func:`models.evaluate.figure`, which pyplot never holds) as an
    inline PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _table(frame: pd.DataFrame, formats: dict | None = None) -> str:
    formats = formats or {}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for _, r in frame.iterrows():
        cells = []
        for c in frame.columns:
            v = r[c]
            text = (
                formats[c](v)
                if c in formats and pd.notna(v)
                else ("" if (not isinstance(v, str) and pd.isna(v)) else str(v))
            )
            cells.append(f"<td>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<div class='scroll'><table><tr>{head}</tr>{''.join(rows)}</table></div>"  # wide tables scroll in their box


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>\n"
    )


def _summary(decisions: list[str], attention: bool = False) -> str:
    """The decisions first: a boxed list of what the run decided, in sentences (``decisions`` are HTML the caller
    built, values escaped); ``attention`` marks the box when something needs a reader's action."""
    items = "".join(f"<li>{d}</li>" for d in decisions)
    return f"<div class='summary{' attention' if attention else ''}'><b>Summary</b><ul>{items}</ul></div>"


def _kpis(items: list[tuple[str, str]]) -> str:
    return "".join(f"<span class='kpi'>{html.escape(k)}<b>{html.escape(v)}</b></span>" for k, v in items)


def _reason_kind(text: str | None) -> str | None:
    if not isinstance(text, str) or not text:  # no reason: None, or NaN once the column holds text
        return None
    return re.sub(r"[-+]?\d[\d.,%]*", "N", text)


RECOVERY_HEADINGS = {
    "treatment_churn_rate": "churn treated",
    "control_churn_rate": "churn control",
    "saved_customers": "saved",
    "saved_low": "saved low",
    "saved_high": "saved high",
    "revenue_recovered": "revenue kept",
    "revenue_low": "revenue low",
    "revenue_high": "revenue high",
    "naive_revenue": "naive revenue",
    "pooled_saved": "saved, pooled",
    "pooled_low": "pooled low",
    "pooled_high": "pooled high",
}


def recovery_decision(table: pd.DataFrame, confidence: float = 0.95) -> tuple[str, bool]:
    """What the measured recovery lets a finance reader book, in one sentence, and whether the interval includes zero
    (nothing can be credited yet). ``table`` is :func:`models.value.recovery_rows`' output, overall first."""
    if table.empty:
        return "No retention actions with a fully observed outcome window: nothing measured yet.", True
    o = table.iloc[0]
    if pd.isna(o["saved_customers"]):  # no treatment or no control rows: nothing to compare
        return f"<b>Not measured:</b> {html.escape(str(o['warning']))}.", True
    level = f"{confidence:.0%}"
    measured = (
        f"{o['saved_customers']:,.1f} customers saved ({level} interval {o['saved_low']:,.1f} to "
        f"{o['saved_high']:,.1f}), worth {money(o['revenue_recovered'])} of revenue kept ({money(o['revenue_low'])} to "
        f"{money(o['revenue_high'])})"
    )
    measured += _adjusted_note(o, level)
    if o["saved_low"] > 0:
        return f"<b>Measured saving:</b> {measured}, against the randomised control group.", False
    return (
        f"<b>Not yet a measurable saving:</b> the {level} interval includes zero, so no revenue can be credited; "
        f"the estimate is {measured}.",
        True,
    )


def _adjusted_note(o: pd.Series, level: str) -> str:
    """How the overall saving was regression-adjusted, with the plain difference in means beside it ("" when not)."""
    if not o.get("adjustment"):
        return ""
    return (
        f"; adjusted for each customer's churn risk before the contact ({html.escape(str(o['adjustment']))} score), "
        f"against the plain difference in means of {o['unadjusted_saved_customers']:,.1f} ({level} interval "
        f"{o['unadjusted_saved_low']:,.1f} to {o['unadjusted_saved_high']:,.1f})"
    )


def power_sentence(table: pd.DataFrame, confidence: float = 0.95, power: float = 0.8, precision: float = 0.25) -> str:
    """The power calculation of the measured design in words (:func:`models.value.power_analysis` on the overall row),
    or "" when nothing was measured."""
    if table.empty:
        return ""
    o = table.iloc[0]
    pw = val.power_analysis(int(o["treated"]), int(o["control"]), o["treatment_churn_rate"], o["control_churn_rate"],
                            confidence, power, precision)  # fmt: skip
    if pw is None:
        return ""
    text = (
        f"<b>Design:</b> with {pw.treated:,} treated and {pw.control:,} control customers (control churn "
        f"{pw.control_churn_rate:.1%}), a saving smaller than {pw.min_detectable_saved:,.0f} customers "
        f"({pw.min_detectable_rate * 100:.2f} churn points) is missed more than {1 - power:.0%} of the time, and the "
        f"interval is about ±{pw.half_width_saved:,.0f} saved customers."
    )
    if pw.control_needed is None:
        return text + " Nothing was saved to size the next campaign on."
    if pw.control_needed <= pw.control:
        return text + f" That already measures a saving of this size to ±{precision:.0%}."
    return text + (
        f" To measure a saving of this size to ±{precision:.0%}, the next campaign needs about "
        f"{pw.control_needed:,} control and {pw.treated_needed:,} treated customers (the same split)."
    )


def recovery_section(table: pd.DataFrame, title: str, confidence: float = 0.95) -> str:
    """The recovery figures in words and by segment; ``confidence`` is the bootstrap intervals' level."""
    if table.empty:
        return f"<h2>{title}</h2><p class='note'>No retention actions with a fully observed outcome window.</p>"
    shown = table[
        [
            "segment",
            "value",
            "treated",
            "control",
            "treatment_churn_rate",
            "control_churn_rate",
            "saved_customers",
            "saved_low",
            "saved_high",
            "revenue_recovered",
            "revenue_low",
            "revenue_high",
            "naive_revenue",
            *val.POOLED,
            "warning",
        ]
    ]
    pct = lambda x: f"{x:.2%}"  # noqa: E731
    one = lambda x: f"{x:,.1f}"  # noqa: E731
    overall = table.iloc[0]
    formula = (
        "(control churn rate carried to the treated customers' churn risk before the contact - treatment churn rate) "
        "x treated"
        if overall.get("adjustment")
        else "(control churn rate - treatment churn rate) x treated"
    )
    text = (
        f"<p>{overall['treated']:,} treated and {overall['control']:,} control customers. Saved customers = "
        f"{formula} = <b>{overall['saved_customers']:,.1f}</b> "
        f"({confidence:.0%} interval "
        f"{overall['saved_low']:,.1f} to {overall['saved_high']:,.1f}{_adjusted_note(overall, f'{confidence:.0%}')}), "
        "worth "
        f"<b>{money(overall['revenue_recovered'])}</b> of revenue kept ({money(overall['revenue_low'])} to "
        f"{money(overall['revenue_high'])}). The naive figure that counts every contact as a save would claim "
        f"<b>{money(overall['naive_revenue'])}</b>.</p>"
    )
    notes = list(dict.fromkeys(w for w in shown["warning"] if w))  # each long warning once, in a list below
    shown = (
        shown.drop(columns="warning")
        .assign(note=[f"[{notes.index(w) + 1}]" if w else "" for w in table["warning"]])
        .rename(columns=RECOVERY_HEADINGS)
    )
    listed = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (
        f"<h2>{title}</h2>{text}"
        + _table(
            shown,
            {
                RECOVERY_HEADINGS[column]: style
                for column, style in {
                    "treatment_churn_rate": pct,
                    "control_churn_rate": pct,
                    "saved_customers": one,
                    "saved_low": one,
                    "saved_high": one,
                    "pooled_saved": one,
                    "pooled_low": one,
                    "pooled_high": one,
                    "revenue_recovered": money,
                    "revenue_low": money,
                    "revenue_high": money,
                    "naive_revenue": money,
                }.items()
            },
        )
        + (f"<ol class='note'>{listed}</ol>" if notes else "")
        + (
            "<p class='note'>Pooled: each location's and tier's saving partially pooled towards the others' "
            "(empirical Bayes): a small group borrows strength from the rest instead of showing its noise.</p>"
            if table["pooled_saved"].notna().any()
            else ""
        )
    )


def scoring_report(
    scores: pd.DataFrame,
    plan: val.TargetingPlan,
    contacted: val.PlanFigures,
    drift: pd.DataFrame,
    config,
    as_of,
    loaded,
    nps: dict,
    result,
    tables,
    recovery: pd.DataFrame,
    risk_plan: val.TargetingPlan | None = None,
    save_value: val.SaveValue | None = None,
    adjusted_by: str = "",
) -> str:
    """The scoring run's report: headline figures, risk, segments, reasons, the plan, recovery, NPS and drift.

    ``contacted`` is the plan's figures less its random holdout (:meth:`models.value.TargetingPlan.without`);
    ``risk_plan`` is the plan the churn ranking would make, shown beside the uplift plan when ``scores`` has uplift;
    ``save_value`` what a save is worth, from recent campaigns' follow-up (None: the naive 12 months);
    ``adjusted_by`` where the churn risk that adjusted recent campaigns' saving came from ("" when it is not).
    """
    body = [
        _scoring_header(
            scores, plan, contacted, config, as_of, loaded, result, drift, recovery, save_value, adjusted_by
        ),  # fmt: skip
        _risk_section(scores),
        _segments_section(scores, tables.customers),
        _reasons_section(scores),
        _plan_section(plan, config.value, "uplift" in scores),
        _plans_side_by_side(scores, plan, risk_plan) if risk_plan is not None else "",
        recovery_section(
            recovery.head(12),
            f"Measured revenue recovered by recent campaigns (actions {config.value.measurement_days} to "
            f"{config.value.horizon_days} days before {as_of.date()})",
            config.recover.bootstrap.confidence,
        ),
        _nps_section(nps),
        _drift_section(drift, loaded.model.reference.get("as_of")),
    ]
    return _page(f"Churn scores {as_of.date()}", "".join(body))


def _scoring_header(
    scores: pd.DataFrame,
    plan: val.TargetingPlan,
    contacted: val.PlanFigures,
    config,
    as_of,
    loaded,
    result,
    drift,
    recovery,
    save_value=None,
    adjusted_by: str = "",
) -> str:
    """Title, the decisions, what was scored with which model, and the headline figures."""
    by = "predicted uplift" if "uplift" in scores else "churn probability x save rate"
    months = config.save_value.months
    held = len(plan.selected) - contacted.customers  # the holdout is drawn from the list
    expected = (
        f"Contacting them is expected to save {contacted.expected_customers_saved:,.1f} customers worth "
        f"{money(contacted.expected_revenue_recovered)} over the next {months} months for {money(contacted.cost)} of "
        f"contacts (net {money(contacted.net_value)})."
    )
    holdout = (
        f" <b>{held:,} of the list are held out at random</b> (<code>assigned_group</code> holdout, "
        f"{config.holdout.share:.0%} within each location and risk tier): do not contact them, so that "
        "<code>churn recover --run</code> can measure what the list saved. Holding them out forgoes "
        f"{plan.expected_customers_saved - contacted.expected_customers_saved:,.1f} expected saves (net "
        f"{money(plan.net_value - contacted.net_value)}): the price of a measured saving."
        if held
        else ""
    )
    decisions = [
        f"<b>Action list of {len(plan.selected):,} customers; contact {contacted.customers:,}</b> (the rows with "
        f"<code>assigned_group</code> treatment in the scores, in <code>priority_rank</code> order, ranked by {by}). "
        f"{expected}{holdout}",
        f"<b>Value of a save:</b> {html.escape(save_value.sentence())}, from recent campaigns' customers."
        if save_value
        else f"Value of a save: {val.MONTHS} months of revenue (no recent campaign's customers to follow up).",
    ]
    flagged = [str(n) for n in drift.loc[drift["flagged"].astype(bool), "name"]] if len(drift) else []
    if not len(drift):
        decisions.append("No drift check: the model carries no training reference.")
    elif flagged:
        gate = " Scoring exits 1 (drift.fail_on_drift)." if config.drift.fail_on_drift else ""
        decisions.append(
            f"<b>Drift: {len(flagged)} of {len(drift)} checks flagged</b> ({html.escape(', '.join(flagged))}): "
            f"check the data feeds before acting on these scores.{gate}"
        )
    else:
        decisions.append(f"Drift: none of {len(drift)} checks flagged against the training reference.")
    r = config.recover
    measured, _ = recovery_decision(recovery, r.bootstrap.confidence)
    if adjusted_by and len(recovery) and recovery.iloc[0].get("adjustment"):
        how = (
            f" Adjusted as <code>churn recover</code> adjusts it: the churn risk before the contact comes from "
            f"{html.escape(adjusted_by)}."
        )
    else:
        how = (
            " This is the plain difference in means (not adjusted: <code>value.adjust_recent</code> or "
            "<code>recover.adjustment</code> off, partitioned or Spark scoring, or too few churners for a prognostic "
            "model); <code>churn recover</code> adjusts it where it can."
        )
    measured_any = len(recovery) and pd.notna(recovery.iloc[0]["saved_customers"])
    decisions.append(f"Recent campaigns: {measured}" + (how if measured_any else ""))
    design = power_sentence(recovery, r.bootstrap.confidence, r.power, r.precision)
    if design:
        decisions.append(design)
    return (
        f"<h1>Churn scores for {as_of.date()}</h1>"
        + _summary(decisions, bool(flagged))
        + f"<p class='note'>Model {html.escape(loaded.name)} v{loaded.version} (run {loaded.run_id}); data "
        f"{html.escape(config.data)}; {len(scores):,} active customers scored. Rows quarantined by validation: "
        f"{sum(r.rows_quarantined for r in result.report.values()):,}.</p>"
    ) + _kpis(
        [
            ("annual revenue at risk", money(scores["annual_revenue_at_risk"].sum())),
            ("mean churn probability", f"{scores['churn_probability'].mean():.2%}"),
            ("customers to contact", f"{contacted.customers:,}"),
            ("held out at random", f"{held:,}"),
            ("expected customers saved by the contacts", f"{contacted.expected_customers_saved:,.1f}"),
            (f"expected revenue recovered, {months} months", money(contacted.expected_revenue_recovered)),
        ]
    )


def _risk_by(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """Customers, mean probability and revenue at risk by ``key``."""
    return frame.groupby(key).agg(
        customers=("customer_id", "size"),
        mean_probability=("churn_probability", "mean"),
        annual_revenue_at_risk=("annual_revenue_at_risk", "sum"),
    )


RISK_FORMATS = {"mean_probability": lambda x: f"{x:.2%}", "annual_revenue_at_risk": money}


def _risk_section(scores: pd.DataFrame) -> str:
    """The distribution of churn probability and the risk tiers."""
    fig, ax = figure(9.0, 4.5)
    ax.hist(scores["churn_probability"], bins=60, color="#3b82f6")
    ax.set(xlabel="churn probability", ylabel="customers", title="Risk distribution", yscale="log")
    tiers = _risk_by(scores, "risk_tier").reindex(["high", "medium", "low"]).reset_index()
    return "<h2>Risk distribution</h2>" + _png(fig) + _table(tiers, RISK_FORMATS)


def _segments_section(scores: pd.DataFrame, customers: pd.DataFrame) -> str:
    """The ten plans and locations with the most revenue at risk."""
    body = ["<h2>Top segments by revenue at risk</h2>"]
    by_id = customers.set_index("customer_id")
    for col in ("plan", "location_id"):
        if col in by_id:
            seg = scores.assign(segment=scores["customer_id"].map(by_id[col]).astype(str))
            top = (
                _risk_by(seg, "segment")
                .sort_values("annual_revenue_at_risk", ascending=False)
                .head(10)
                .reset_index()
                .rename(columns={"segment": col})
            )
            body.append(_table(top, RISK_FORMATS))
    return "".join(body)


def _reasons_section(scores: pd.DataFrame) -> str:
    """How often each kind of reason (numbers as N) appears in the action list."""
    action = scores[scores["in_action_list"]]
    kinds = pd.concat([action[c].map(_reason_kind) for c in ("reason_1", "reason_2", "reason_3")]).dropna()
    counts = kinds.value_counts().head(12).rename_axis("reason (numbers as N)").rename("customers").reset_index()
    return "<h2>Top reasons in the action list</h2>" + (_table(counts) if len(kinds) else "<p>No action list.</p>")


def _plan_section(plan: val.TargetingPlan, v, by_uplift: bool = False) -> str:
    """The targeting plan's arithmetic, its profit curve, and what the naive arithmetic would claim."""
    value = (
        "predicted uplift (the reduction in churn probability a contact brings, from the uplift model; customers it "
        "would push out are never contacted)"
        if by_uplift
        else f"probability x save rate ({plan.save_rate:.1%}, {html.escape(plan.save_rate_source)})"
    )
    fig, ax = figure(9.0, 4.5)
    curve = plan.profit_curve
    ax.plot(curve["contacted"], curve["expected_net_value"], color="#16a34a")
    ax.axvline(len(plan.selected), color="grey", ls="--", lw=0.8, label="plan")
    ax.set(xlabel="customers contacted (by expected net value)", ylabel="expected net value ($)", title="Profit curve")
    ax.legend()
    text = (
        "<h2>Targeting plan</h2>"
        f"<p>Expected net value of a contact = {value} x the monthly revenue x {plan.value_months:.1f} months a save "
        f"keeps - contact cost (${v.contact_cost:,.2f}). "
        f"Capacity {v.capacity_per_location if v.capacity_per_location is not None else 'unlimited'} per location, "
        f"budget {money(v.budget) if v.budget else 'unlimited'}. Contacting {len(plan.selected):,} customers costs "
        f"{money(plan.cost)} and is expected to save {plan.expected_customers_saved:,.1f} customers worth "
        f"{money(plan.expected_revenue_recovered)} of revenue kept (net {money(plan.net_value)}), its random holdout "
        "included (the summary gives the figures of the contacts alone).</p>"
        "<h3>Profit curve</h3>"
        "<p class='note'>Cumulative expected net value as more customers are contacted in order of expected net value; "
        "the dashed line is the plan.</p>" + _png(fig)
    )
    naive = float((plan.selected["monthly_revenue"] * val.MONTHS).sum())
    if not naive:
        return text
    return text + (
        f"<p>The worked-example arithmetic of CX practice (every contact is a save) would book <b>{money(naive)}</b> "
        f"for the same {len(plan.selected):,} contacts; the expected figure above is "
        f"{plan.expected_revenue_recovered / naive:.1%} of it.</p>"
    )


def _plans_side_by_side(scores: pd.DataFrame, plan: val.TargetingPlan, risk_plan: val.TargetingPlan) -> str:
    """The uplift plan beside the plan the churn ranking would make, each valued by the uplift model too."""
    uplift = scores.set_index("customer_id")["uplift"]
    rows = []
    for name, p in (("by uplift (the action list)", plan), ("by churn probability x save rate", risk_plan)):
        rows.append(
            {
                "plan": name,
                "customers contacted": len(p.selected),
                "expected saves (own estimate)": p.expected_customers_saved,
                "expected saves (uplift model)": float(uplift.reindex(p.selected["customer_id"]).sum()),
                "cost": p.cost,
                "in both plans": int(p.selected["customer_id"].isin(
                    (risk_plan if p is plan else plan).selected["customer_id"]).sum()),
            }
        )  # fmt: skip
    dogs = int(scores["do_not_contact"].sum())
    return (
        "<h2>The plan under both rankings</h2>"
        f"<p class='note'>{dogs:,} scored customers are predicted to churn more if contacted (do not contact); "
        f"{int(risk_plan.selected['customer_id'].isin(scores.loc[scores['do_not_contact'], 'customer_id']).sum()):,} "
        "of them are in the churn ranking's plan.</p>"
        + _table(
            pd.DataFrame(rows),
            {
                "expected saves (own estimate)": "{:,.1f}".format,
                "expected saves (uplift model)": "{:,.1f}".format,
                "cost": money,
            },
        )  # fmt: skip
    )


def _nps_section(nps: dict) -> str:
    """Plain and revenue-weighted NPS, and the revenue each NPS category holds; nothing without respondents."""
    if not nps.get("respondents"):
        return ""
    share = nps["revenue_share"]
    return (
        "<h2>NPS weighted by revenue</h2>"
        + _kpis(
            [
                ("NPS", f"{nps['nps']:.1f}"),
                ("revenue-weighted NPS", f"{nps['revenue_weighted_nps']:.1f}"),
                ("respondents", f"{nps['respondents']:,}"),
                (
                    "revenue held by promoters / passives / detractors",
                    f"{share['promoter']:.0%} / {share['passive']:.0%} / {share['detractor']:.0%}",
                ),
            ]
        )
        + "<p class='note'>Each customer's latest NPS answer in the year before the as-of date.</p>"
    )


def _drift_section(drift: pd.DataFrame, reference_as_of: str | None) -> str:
    """The flagged checks first, then the largest PSIs; nothing when the model has no reference."""
    if not len(drift):
        return ""
    flagged = drift["flagged"].to_numpy(dtype=bool)
    against = f"the training reference of {reference_as_of}" if reference_as_of else "the training reference"
    shown = pd.concat([drift[flagged], drift[~flagged].head(max(0, 12 - int(flagged.sum())))])
    return (
        f"<h2>Drift against {against}</h2><p class='{'warn' if flagged.any() else 'note'}'>"
        f"{int(flagged.sum())} of {len(drift)} checks flagged. A check is flagged when its PSI is above both the "
        "practical threshold and what chance gives at these sample sizes, and (a feature) it carries enough of the "
        "model's attention to move the score. A data feed (<code>feed table:kind</code>) is flagged when its rows per "
        "customer fell by more than its threshold, beyond chance, whatever the model makes of it.</p>"
        + _table(
            shown.assign(
                flagged=np.where(shown["flagged"], "flagged", ""),
                # a PSI; the expected churn rate's a relative change either way, a data feed's a relative fall
                threshold=[
                    f"{t:.3f}" if pd.notna(x) else f"-{t:.0%}" if str(n).startswith(FEED) else f"±{t:.0%}"
                    for t, x, n in zip(shown["threshold"], shown["psi"], shown["name"], strict=True)
                ],
            )[["name", "flagged", "psi", "threshold", "importance", "note"]],
            {"psi": "{:.3f}".format, "importance": "{:.1%}".format},
        )
    )


def recovery_report(
    table: pd.DataFrame,
    start,
    end,
    horizon_days: int,
    data: str,
    notes: list[str],
    confidence: float = 0.95,
    power: float = 0.8,
    precision: float = 0.25,
    adjusted_by: str = "",
    true_saves: float | None = None,
    save_value: val.SaveValue | None = None,
    title: str | None = None,
    groups: str = "treatment and control as recorded in retention_actions (a randomised hold-out)",
) -> str:
    """The recovery report; ``adjusted_by`` says where the adjustment's churn score came from, ``true_saves`` is
    synthetic data's true net saves of the measured contacts (None for real data), ``title`` replaces the period's."""
    decision, attention = recovery_decision(table, confidence)
    design = power_sentence(table, confidence, power, precision)
    naive = (
        [f"Do not book the naive {money(table.iloc[0]['naive_revenue'])}: it counts every contact as a save, kept "
         "for a full year."]
        if len(table)
        else []
    )  # fmt: skip
    worth = [f"<b>Value of a save:</b> {html.escape(save_value.sentence())}."] if save_value else []
    body = [
        f"<h1>{html.escape(title or f'Revenue recovered by retention actions {start.date()} to {end.date()}')}</h1>",
        _summary(
            [decision, *worth, *([design] if design else []), *naive, *(html.escape(n) for n in notes)],
            attention or bool(notes),
        ),  # fmt: skip
        f"<p class='note'>Data {html.escape(data)}; churn counted within {horizon_days} days of each action; "
        f"{html.escape(groups)}.</p>",
    ]
    if adjusted_by:
        body.append(
            "<p class='note'>Regression adjustment: part of who churned in either group was predictable before the "
            "contact; removing it narrows the interval without moving the estimate's target, because the groups were "
            f"randomised. The churn risk before the contact comes from {html.escape(adjusted_by)}.</p>"
        )
    if true_saves is not None:
        body.append(
            f"<p class='note'>Synthetic data: the generator's true net saves of these contacts are "
            f"<b>{true_saves:,.0f}</b> (saved minus made to leave).</p>"
        )
    body.append(recovery_section(table, "Saved customers and revenue kept", confidence))
    return _page("Revenue recovered", "".join(body))


@dataclass(frozen=True)
class Verdict:
    """A training job's registry decision, as its report states it first."""

    model: str
    version: str
    promoted: bool
    reason: str

    def sentence(self, promoted_means: str, kept_means: str) -> str:
        """The decision in one sentence: what promotion (or not) means for the reader."""
        head = f"{html.escape(self.model)} v{html.escape(str(self.version))}"
        if self.promoted:
            return f"<b>{head} promoted to champion</b>: {promoted_means} ({html.escape(self.reason)})."
        return f"<b>{head} not promoted</b> (registered as challenger): {kept_means} ({html.escape(self.reason)})."


def uplift_report(test: pd.DataFrame, scores, metrics: dict, choice, split: str, config, decision: Verdict) -> str:
    """The uplift training run: who a contact keeps, judged on the test campaigns against the churn ranking.

    ``scores`` is :class:`pipelines.stages.uplift.TestScores`, ``choice`` its ``Choice``.
    """
    u, m = config.uplift, metrics
    level = f"{u.confidence:.0%}"
    beats = m["test_qini_low"] > m["risk_test_qini"]
    decisions = [
        decision.sentence(
            "scoring ranks the action list by predicted uplift",
            "scoring keeps ranking the action list by churn probability x save rate",
        ),
        f"On the test campaigns the {html.escape(choice.name)} learner's Qini is {m['test_qini']:.4f} ({level} "
        f"interval {m['test_qini_low']:.4f} to {m['test_qini_high']:.4f}) against the churn ranking's "
        f"{m['risk_test_qini']:.4f}: "
        + (
            "its lower bound beats the churn ranking."
            if beats
            else "the interval does not clear the churn ranking, so the gain is not shown."
        ),  # fmt: skip
    ]
    if "true_saves_uplift_policy" in m:
        decisions.append(
            f"Synthetic truth at {u.capacity_share:.0%} capacity: the uplift ranking saves "
            f"{m['true_saves_uplift_policy']:,.0f}, the churn ranking {m['true_saves_risk_policy']:,.0f}, the best "
            f"any learner could do from these features {m.get('true_saves_ceiling_policy', float('nan')):,.0f}, "
            f"the true effect (oracle) {m.get('true_saves_oracle_policy', float('nan')):,.0f}."
        )
    body = [
        "<h1>Uplift model: who a retention contact keeps</h1>",
        _summary(decisions, not decision.promoted),
        f"<p class='note'>{html.escape(split)}. Uplift = churn probability within {config.horizon_days} days without "
        "a contact minus with one. Learner chosen on the validation campaigns' Qini: "
        f"<b>{html.escape(choice.name)}</b>. Churn ranking: {html.escape(scores.risk_source)}.</p>",
        _kpis(
            [
                ("test Qini", f"{m['test_qini']:.3f}"),
                (f"{level} interval", f"{m['test_qini_low']:.3f} to {m['test_qini_high']:.3f}"),
                ("churn ranking's Qini", f"{m['risk_test_qini']:.3f}"),
                ("random", f"{m['random_test_qini']:.3f}"),
            ]
        ),
        "<h2>Qini curves on the test campaigns</h2>",
        _png(_qini_figure(test, scores)),
        "<h2>Metrics</h2>",
        _table(_uplift_metric_table(m), {c: "{:.4f}".format for c in ("value", "low", "high")}),
        f"<h2>Customers kept on the test campaigns, contacting the top {u.capacity_share:.0%} of each</h2>",
        "<p class='note'>Doubly robust estimates from the randomised assignment, with a normal interval; "
        "'campaign' is contacting everyone the campaigns picked (treatment and control).</p>",
        _table(_policy_table(m), {c: "{:,.1f}".format for c in ("estimate", "low", "high", "true saves")}),
        "<h2>Learners on the validation campaigns</h2>",
        _table(
            pd.DataFrame(
                {"learner": list(choice.validation_qini), "validation Qini": list(choice.validation_qini.values())}
            ),
            {"validation Qini": "{:.4f}".format},
        ),
    ]
    return _page("Uplift model", "".join(body))


def _qini_figure(test: pd.DataFrame, scores):
    rankings = {"uplift model": scores.uplift, "churn ranking": scores.risk, "random": scores.random}
    fig, ax = figure(7.5, 4.8)
    for label, score in rankings.items():
        x, y = qini_curve(test["churned"].to_numpy(), test["treated"].to_numpy(), score)
        ax.plot(x / max(x[-1], 1), y, label=label)
    ax.set_xlabel("share of test contacts targeted, by each ranking")
    ax.set_ylabel("customers kept (Qini)")
    ax.legend()
    return fig


def _uplift_metric_table(m: dict) -> pd.DataFrame:
    rows = []
    for name in ("qini", "auuc", "uplift_at_10", "uplift_at_20", "uplift_at_30"):
        for prefix, ranking in (("", "uplift model"), ("risk_", "churn ranking"), ("random_", "random")):
            key = f"{prefix}test_{name}"
            rows.append({"metric": name, "ranking": ranking, "value": m[key], "low": m[f"{key}_low"],
                         "high": m[f"{key}_high"]})  # fmt: skip
    if "oracle_test_qini" in m:
        rows.append({"metric": "qini", "ranking": "true effect (oracle)", "value": m["oracle_test_qini"]})
    if "ceiling_test_qini" in m:
        rows.append({"metric": "qini", "ranking": "features' ceiling (fitted to the true effect)",
                     "value": m["ceiling_test_qini"]})  # fmt: skip
    return pd.DataFrame(rows)


def _policy_table(m: dict) -> pd.DataFrame:
    rows = []
    for name, label in (("uplift", "uplift model"), ("risk", "churn ranking"), ("campaign", "campaign")):
        truth = m.get(f"true_saves_{name}_policy")
        rows.append(
            {
                "policy": label,
                "estimate": m[f"policy_value_{name}"],
                "low": m[f"policy_value_{name}_low"],
                "high": m[f"policy_value_{name}_high"],
                "true saves": truth if truth is not None else np.nan,
            }
        )
    return pd.DataFrame(rows)


def monitoring_report(runs, history: pd.DataFrame, observed_to, monitor, breaches: list[str]) -> str:
    """Realised against expected for every scoring run (``pipelines.stages.monitor.RunPerformance``), per model
    version, with the registry's promotion history."""
    closed = [r for r in runs if r.status == "closed"]
    decisions = _monitoring_decisions(runs, closed, monitor, breaches)
    latest = closed[-1] if closed else None
    kpis = [
        ("scoring runs", f"{len(runs)}"),
        ("outcomes in", f"{len(closed)}"),
        ("waiting for outcomes", f"{len(runs) - len(closed)}"),
    ]
    if latest:
        kpis += [
            (f"realised ROC AUC {latest.as_of.date()}", f"{latest.realised['realised_roc_auc']:.3f}"),
            ("expected (test)", f"{latest.expected.get('expected_roc_auc', float('nan')):.3f}"),
        ]
    body = [
        "<h1>Model performance once the outcomes arrived</h1>",
        _summary(decisions, bool(breaches)),
        f"<p class='note'>Outcomes observed up to "
        f"{observed_to.date()}. Each scoring run is measured on its customers whom no retention contact treated in "
        "the label window (a contact changes the outcome the score predicted); expected figures are the model's "
        "own test figures from training.</p>",
        _kpis(kpis),
        "<h2>Every scoring run</h2>",
        _table(_monitoring_table(runs), {}),
    ]
    if closed:
        body += ["<h2>Realised against expected, over time</h2>", *map(_png, _monitoring_figures(closed))]
        body += [
            f"<h2>Reliability on {latest.as_of.date()} (by decile of the score)</h2>",
            _table(
                latest.reliability,
                {"mean_probability": "{:.3f}".format, "observed_rate": "{:.3f}".format, "rows": "{:,.0f}".format},
            ),  # fmt: skip
        ]
    body += ["<h2>Promotion history</h2>", _table(history, {}) if len(history) else "<p>No registry versions.</p>"]
    return _page("Model monitoring", "".join(body))


def _monitoring_decisions(runs, closed, monitor, breaches: list[str]) -> list[str]:
    """The floor's verdict, the latest measured run against its test figures, and what still waits."""
    if breaches:
        decisions = ["<b>Below the configured floor:</b> " + html.escape("; ".join(breaches))]
    elif monitor.has_floor:
        decisions = ["No configured floor is breached."]
    else:
        decisions = ["No floor is configured (<code>monitor.min_roc_auc</code>, <code>monitor.max_ece</code>)."]
    if closed:
        r = closed[-1]
        got, exp = r.realised, r.expected
        decisions.append(
            f"Latest measured run {r.as_of.date()} ({html.escape(r.model)}): realised ROC AUC "
            f"<b>{got['realised_roc_auc']:.3f}</b> against {exp.get('expected_roc_auc', float('nan')):.3f} on its "
            f"test, ECE {got['realised_ece']:.4f} (test {exp.get('expected_ece', float('nan')):.4f}); "
            f"{got['realised_prevalence']:.2%} churned against {got['realised_mean_probability']:.2%} predicted."
        )
    else:
        decisions.append("No scoring run's outcome window has closed yet: nothing measured.")
    waiting = len(runs) - len(closed)
    if waiting:
        decisions.append(
            f"{waiting} scoring run(s) wait for their outcomes; run <code>churn monitor</code> again later."
        )
    return decisions


def _monitoring_table(runs) -> pd.DataFrame:
    def f(r, key, fmt):
        value = {**r.realised, **r.expected}.get(key)
        return "" if value is None or not np.isfinite(value) else fmt.format(value)

    return pd.DataFrame(
        [
            {
                "as of": str(r.as_of.date()),
                "model": r.model,
                "status": "outcomes in" if r.status == "closed" else "waiting",
                "customers": f"{r.customers:,}",
                "evaluated": f"{r.evaluated:,}" if r.status == "closed" else "",
                "churn rate": f(r, "realised_prevalence", "{:.2%}"),
                "predicted": f(r, "realised_mean_probability", "{:.2%}"),
                "ROC AUC": f(r, "realised_roc_auc", "{:.3f}"),
                "test ROC AUC": f(r, "expected_roc_auc", "{:.3f}"),
                "ECE": f(r, "realised_ece", "{:.4f}"),
                "test ECE": f(r, "expected_ece", "{:.4f}"),
                "lift top 10%": f(r, "realised_lift_at_10", "{:.2f}"),
                "note": r.reason,
            }
            for r in runs
        ]
    )


def _monitoring_figures(closed) -> list:
    """ROC AUC realised against the test's, and the churn rate realised against predicted, per model version."""
    (auc_fig, auc), (rate_fig, rate) = figure(7.5, 4.5), figure(7.5, 4.5)
    for model in sorted({r.model for r in closed}):
        mine = [r for r in closed if r.model == model]
        dates = [r.as_of for r in mine]
        line = auc.plot(dates, [r.realised["realised_roc_auc"] for r in mine], marker="o", label=f"{model} realised")
        auc.plot(dates, [r.expected.get("expected_roc_auc", np.nan) for r in mine], linestyle="--", marker="s",
                 color=line[0].get_color(), label=f"{model} on its test")  # fmt: skip
        rate.plot(dates, [r.realised["realised_prevalence"] for r in mine], marker="o", label=f"{model} churned")
        rate.plot(dates, [r.realised["realised_mean_probability"] for r in mine], linestyle="--", marker="x",
                  label=f"{model} predicted")  # fmt: skip
    auc.set_title("ROC AUC once the outcomes arrived")
    rate.set_title("Churn rate: realised and predicted")
    dates = sorted({r.as_of for r in closed})
    for ax in (auc, rate):
        ax.legend(fontsize=8)
        ax.set_xticks(dates, [str(d.date()) for d in dates], rotation=30)  # the scoring dates, even just one
        if len(dates) == 1:
            ax.set_xlim(dates[0] - pd.Timedelta(days=45), dates[0] + pd.Timedelta(days=45))
    return [auc_fig, rate_fig]


TRAINING_FIGURES = {
    "plots/roc.png": "ROC curve on the test rows",
    "plots/calibration.png": "Calibration on the test rows",
    "plots/gains.png": "Cumulative gains on the test rows",
    "plots/pr.png": "Precision-recall on the test rows",
    "plots/feature_importance.png": "Feature importance",
    "plots/shap_summary.png": "SHAP summary (test sample)",
}


def training_report(card: str, decision: Verdict, family: str, metrics: dict, figures: dict) -> str:
    """The training run: the promotion decision and headline test figures first, the test plots, then the model card
    (``card`` is the run's Markdown model card, rendered here so the card has one source)."""
    m = metrics

    def vs(key: str, fmt: str) -> str:
        parts = [f"baseline {m[f'baseline_{key}']:{fmt}}" if f"baseline_{key}" in m else ""]
        parts.append(f"champion {m[f'champion_{key}']:{fmt}}" if f"champion_{key}" in m else "")
        return ", ".join(p for p in parts if p)

    decisions = [
        decision.sentence(
            "batch scoring uses this version from its next run (alias champion)",
            "the champion keeps scoring; this version can be scored as @challenger",
        ),
        f"Test ROC AUC <b>{m['test_roc_auc']:.4f}</b> ({vs('test_roc_auc', '.4f')}); calibration error (ECE) "
        f"{m['test_ece']:.4f} ({vs('test_ece', '.4f')}); the top 10 % by score hold "
        f"{m['test_capture_at_10']:.1%} of the churners.",
    ]
    if "oracle_roc_auc" in m:
        decisions.append(
            f"Synthetic data: the true probabilities reach ROC AUC {m['oracle_roc_auc']:.4f}; the model gets "
            f"{m['test_roc_auc_to_oracle']:.1%} of it."
        )
    names = {"lightgbm": "LightGBM", "logistic_regression": "logistic regression"}
    shown = "".join(
        f"<figure>{_png(figures[path])}<figcaption>{caption}</figcaption></figure>"
        for path, caption in TRAINING_FIGURES.items()
        if path in figures
    )
    card_html = markdown.markdown(card.split("\n", 1)[1] if card.startswith("# ") else card, extensions=["tables"])
    body = [
        f"<h1>Churn model {html.escape(decision.model)} v{html.escape(str(decision.version))} "
        f"({names.get(family, family)})</h1>",
        _summary(decisions, not decision.promoted),
        _kpis(
            [
                ("test ROC AUC", f"{m['test_roc_auc']:.4f}"),
                ("test PR AUC", f"{m['test_pr_auc']:.4f}"),
                ("test ECE", f"{m['test_ece']:.4f}"),
                ("lift in the top 10 %", f"{m['test_lift_at_10']:.2f}"),
            ]
        ),
        "<h2>Test plots (model against the logistic-regression baseline)</h2>",
        f"<div class='grid'>{shown}</div>",
        f"<div class='card scroll'>{card_html}</div>",
    ]
    return _page(f"Churn model v{decision.version}", "".join(body))
