"""Reason codes: the features that push a customer's risk up most, in words a retention agent understands."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

SURVEY_NAMES = {"nps": "NPS", "csat": "CSAT", "ces": "effort (CES)"}
TYPE_NAMES = {
    "complaint": "complaint(s)",
    "support_ticket": "support ticket(s)",
    "billing_issue": "billing issue(s)",
    "payment_failed": "failed payment(s)",
    "login": "log-in(s)",
    "purchase": "purchase(s)",
    "interactions": "interaction(s)",
    "other": "other interaction(s)",
}


def _number(value) -> float:
    """``value`` as a float; NaN when it is missing or not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def describe(feature: str, value, contribution: float) -> str:
    """One reason in plain words; ``contribution`` > 0 means the feature raises risk."""
    up = contribution > 0
    direction = "raises risk" if up else "lowers risk"
    v = value
    num = _number(v)
    if m := re.fullmatch(r"n_(.+)_(\d+)d", feature):
        kind, days = m.group(1), m.group(2)
        return f"{num:.0f} {TYPE_NAMES.get(kind, kind.replace('_', ' '))} in the last {days} days ({direction})"
    if m := re.fullmatch(r"rate_trend_(.+)_(\d+)d_vs_(\d+)d", feature):
        kind = TYPE_NAMES.get(m.group(1), m.group(1).replace("_", " "))
        change = np.expm1(num)
        return f"{kind} lately {abs(change):.0%} {'below' if change < 0 else 'above'} their usual rate ({direction})"
    if feature.startswith("activity_"):
        trend = "activity falling" if (num is not None and num < 0) else "activity steady or rising"
        return f"{trend} compared with earlier months ({direction})"
    if feature.startswith("share_"):
        channel = feature.split("_")[1]
        return f"{num:.0%} of recent contacts by {channel} ({direction})"
    if feature == "days_since_last_interaction":
        return (
            "no interaction recorded" if np.isnan(num) else f"last interaction {num:.0f} days ago"
        ) + f" ({direction})"
    if m := re.fullmatch(r"days_since_last_(complaint|support_ticket)", feature):
        what = TYPE_NAMES[m.group(1)].replace("(s)", "")
        return (f"no {what} on record" if np.isnan(num) else f"last {what} {num:.0f} days ago") + f" ({direction})"
    if m := re.fullmatch(r"(nps|csat|ces)_(latest|mean|trend|count|days_since_last|bad_\d+d)", feature):
        survey, what = SURVEY_NAMES[m.group(1)], m.group(2)
        if np.isnan(num):
            return f"no {survey} answer on record ({direction})"
        text = {
            "latest": f"latest {survey} score {num:.0f}",
            "mean": f"average {survey} score {num:.1f}",
            "trend": f"{survey} score {'dropping' if num < 0 else 'improving'} ({num:+.1f})",
            "count": f"{num:.0f} {survey} answer(s)",
            "days_since_last": f"last {survey} answer {num:.0f} days ago",
        }.get(what, f"{num:.0f} poor {survey} answer(s) recently")
        return f"{text} ({direction})"
    if feature == "nps_category_latest":
        return f"latest NPS answer: {v} ({direction})"
    if feature == "recent_detractor":
        return f"{'gave a poor survey answer recently' if num else 'no poor survey answer recently'} ({direction})"
    if feature == "open_callback_request":
        return f"{'asked for a callback that was not followed up' if num else 'no open callback request'} ({direction})"
    if feature == "days_since_callback_request":
        return f"asked for a callback {num:.0f} days ago ({direction})"
    if feature == "survey_nonresponder":
        return f"{'never answers surveys' if num else 'answers surveys'} ({direction})"
    if feature == "survey_responses_total":
        return f"{num:.0f} survey answer(s) in total ({direction})"
    if feature == "tenure_days":
        return (
            f"new customer ({num:.0f} days)" if num < 365 else f"customer for {num / 365:.1f} years"
        ) + f" ({direction})"
    if feature == "monthly_revenue":
        return f"pays {num:.2f} a month ({direction})"
    if m := re.fullmatch(r"revenue_vs_(.+)_median", feature):
        return f"pays {np.expm1(num):+.0%} against others on the same {m.group(1)} ({direction})"
    if m := re.fullmatch(r"purchase_days_(\d+)d", feature):
        return f"bought on {num:.0f} day(s) in the last {m.group(1)} days ({direction})"
    if m := re.fullmatch(r"purchase_value_(\d+)d", feature):
        return f"spent {num:,.2f} in the last {m.group(1)} days ({direction})"
    if feature == "purchase_days_total":
        return f"bought on {num:.0f} day(s) in all ({direction})"
    if feature == "purchase_value_mean":
        return ("no purchase on record" if np.isnan(num) else f"spends {num:,.2f} per purchase") + f" ({direction})"
    if m := re.fullmatch(r"days_since_(first|last)_purchase", feature):
        return (
            "no purchase on record" if np.isnan(num) else f"{m.group(1)} purchase {num:.0f} days ago"
        ) + f" ({direction})"
    if feature == "purchase_gap_mean_days":
        return (
            "too few purchases for a rhythm" if np.isnan(num) else f"buys every {num:.0f} days on average"
        ) + f" ({direction})"
    if feature == "purchase_recency_vs_gap":
        return (
            "too few purchases for a rhythm" if np.isnan(num) else f"away {num:.1f}x their usual gap between purchases"
        ) + f" ({direction})"
    if feature == "btyd_p_alive":
        return (
            "no purchase history" if np.isnan(num) else f"{num:.0%} likely still an active buyer"
        ) + f" ({direction})"
    if m := re.fullmatch(r"btyd_expected_purchases_(\d+)d", feature):
        return (
            "no purchase history"
            if np.isnan(num)
            else f"expected to buy on {num:.1f} day(s) in the next {m.group(1)} days"
        ) + f" ({direction})"
    if feature == "days_since_last_retention_action":
        return (
            "never contacted by retention" if np.isnan(num) else f"last retention contact {num:.0f} days ago"
        ) + f" ({direction})"
    if m := re.fullmatch(r"days_since_(.+)", feature):  # a date attribute of the customer
        return (
            f"no {m.group(1)} on record" if np.isnan(num) else f"{m.group(1)} {num:.0f} days ago"
        ) + f" ({direction})"
    if isinstance(v, str):
        return f"{feature.replace('_', ' ')}: {v} ({direction})"
    return f"{feature.replace('_', ' ')} = {v} ({direction})"


def top_reasons(contributions: pd.DataFrame, values: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """The ``k`` features raising each row's risk most, as text (None where fewer than ``k`` raise it)."""
    names = contributions.columns.to_numpy()
    c = contributions.to_numpy()
    order = np.argsort(-c, axis=1, kind="stable")[:, :k]
    # One array per feature, read once: indexing the frame cell by cell costs far more than describing.
    columns = {name: values[name].to_numpy(dtype=object) for name in np.unique(names[order])}
    out = {f"reason_{j + 1}": [] for j in range(k)}
    for i, row in enumerate(order):
        for j, col in enumerate(row):
            value = c[i, col]
            feature = names[col]
            out[f"reason_{j + 1}"].append(describe(feature, columns[feature][i], value) if value > 0 else None)
    return pd.DataFrame(out, index=contributions.index)
