"""Reason codes: the features that push a customer's risk up most, in words a retention agent understands.

What a feature is (its family and parameters: an interaction type, a window, a
survey, ...) comes from the catalog of the feature configuration the model was
trained with (:func:`features.names.catalog`), never from parsing its name.
Columns the catalog does not know (say, customer attributes of a frame built
by hand) read as their name and value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features import names
from features.config import FeatureConfig
from features.names import Catalog, Feature

SURVEY_NAMES = {"NPS": "NPS", "CSAT": "CSAT", "CES": "effort (CES)"}  # by the survey values of the feedback table
TYPE_NAMES = {
    "complaint": "complaint(s)",
    "support_ticket": "support ticket(s)",
    "billing_issue": "billing issue(s)",
    "payment_failed": "failed payment(s)",
    "login": "log-in(s)",
    "purchase": "purchase(s)",
    names.OTHER: "other interaction(s)",
}


def _number(value) -> float:
    """``value`` as a float; NaN when it is missing or not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def _type_words(kind: str) -> str:
    """An interaction type in words (``support_ticket``: ``support ticket(s)``)."""
    return TYPE_NAMES.get(kind, kind.replace("_", " "))


def _or_none(num: float, none: str, text: str) -> str:
    """``none`` when ``num`` is missing (no such event), else ``text``."""
    return none if np.isnan(num) else text


def _survey_text(survey: str, stat: str, num: float) -> str:
    """One statistic of a customer's answers to a survey, in words."""
    return {
        "latest": f"latest {survey} score {num:.0f}",
        "mean": f"average {survey} score {num:.1f}",
        "trend": f"{survey} score {'dropping' if num < 0 else 'improving'} ({num:+.1f})",
        "count": f"{num:.0f} {survey} answer(s)",
        "days_since_last": f"last {survey} answer {num:.0f} days ago",
    }[stat]


def _interaction_text(feature: Feature, num: float) -> str | None:
    """Words for the interaction features (counts, rates, trends, channels, recency); None for other families."""
    match feature:
        case names.TypeCount(type=kind, window=days):
            return f"{num:.0f} {_type_words(kind)} in the last {days} days"
        case names.InteractionCount(window=days):
            return f"{num:.0f} interaction(s) in the last {days} days"
        case names.RateTrend(type=kind):
            change = np.expm1(num)
            return f"{_type_words(kind)} lately {abs(change):.0%} {'below' if change < 0 else 'above'} their usual rate"
        case names.ActivityTrend() | names.ActivityVsBaseline():
            return f"{'activity falling' if num < 0 else 'activity steady or rising'} compared with earlier months"
        case names.ChannelShare(channel=channel):
            return f"{num:.0%} of recent contacts by {channel}"
        case names.DaysSinceLast(event="interaction"):
            return _or_none(num, "no interaction recorded", f"last interaction {num:.0f} days ago")
        case names.DaysSinceLast(event=kind):
            what = _type_words(kind).replace("(s)", "")
            return _or_none(num, f"no {what} on record", f"last {what} {num:.0f} days ago")
    return None


def _survey_and_action_text(feature: Feature, value, num: float) -> str | None:
    """Words for the survey, callback and retention-action features; None for other families."""
    match feature:
        case names.SurveyStat(survey=survey) | names.SurveyBad(survey=survey) if np.isnan(num):
            return f"no {SURVEY_NAMES.get(survey, survey)} answer on record"
        case names.SurveyStat(survey=survey, stat=stat):
            return _survey_text(SURVEY_NAMES.get(survey, survey), stat, num)
        case names.SurveyBad(survey=survey):
            return f"{num:.0f} poor {SURVEY_NAMES.get(survey, survey)} answer(s) recently"
        case names.NPS_CATEGORY_LATEST:
            return f"latest NPS answer: {value}"
        case names.RECENT_DETRACTOR:
            return "gave a poor survey answer recently" if num else "no poor survey answer recently"
        case names.OPEN_CALLBACK_REQUEST:
            return "asked for a callback that was not followed up" if num else "no open callback request"
        case names.DAYS_SINCE_CALLBACK_REQUEST:
            return f"asked for a callback {num:.0f} days ago"
        case names.SURVEY_NONRESPONDER:
            return "never answers surveys" if num else "answers surveys"
        case names.SURVEY_RESPONSES_TOTAL:
            return f"{num:.0f} survey answer(s) in total"
        case names.RetentionActions(window=days):
            return f"{num:.0f} retention actions in the last {days} days"
        case names.DAYS_SINCE_LAST_RETENTION_ACTION:
            return _or_none(num, "never contacted by retention", f"last retention contact {num:.0f} days ago")
    return None


def _purchase_text(feature: Feature, num: float) -> str | None:
    """Words for the transaction features of ``features.transactions``; None for other families."""
    rhythm = "too few purchases for a rhythm"
    match feature:
        case names.PurchaseDays(window=days):
            return f"bought on {num:.0f} day(s) in the last {days} days"
        case names.PurchaseValue(window=days):
            return f"spent {num:,.2f} in the last {days} days"
        case names.PURCHASE_DAYS_TOTAL:
            return f"bought on {num:.0f} day(s) in all"
        case names.PURCHASE_VALUE_MEAN:
            return _or_none(num, "no purchase on record", f"spends {num:,.2f} per purchase")
        case names.DAYS_SINCE_FIRST_PURCHASE:
            return _or_none(num, "no purchase on record", f"first purchase {num:.0f} days ago")
        case names.DAYS_SINCE_LAST_PURCHASE:
            return _or_none(num, "no purchase on record", f"last purchase {num:.0f} days ago")
        case names.PURCHASE_GAP_MEAN_DAYS:
            return _or_none(num, rhythm, f"buys every {num:.0f} days on average")
        case names.PURCHASE_RECENCY_VS_GAP:
            return _or_none(num, rhythm, f"away {num:.1f}x their usual gap between purchases")
        case names.BTYD_P_ALIVE:
            return _or_none(num, "no purchase history", f"{num:.0%} likely still an active buyer")
        case names.BtydExpectedPurchases(horizon=days):
            return _or_none(num, "no purchase history", f"expected to buy on {num:.1f} day(s) in the next {days} days")
    return None


def _customer_text(feature: Feature, num: float) -> str | None:
    """Words for tenure, revenue and date attributes; None for other families."""
    match feature:
        case names.TENURE:
            return f"new customer ({num:.0f} days)" if num < 365 else f"customer for {num / 365:.1f} years"
        case names.MONTHLY_REVENUE:
            return f"pays {num:.2f} a month"
        case names.PeerRevenue(group=group):
            return f"pays {np.expm1(num):+.0%} against others on the same {group}"
        case names.DateAttribute(column=column):
            return _or_none(num, f"no {column} on record", f"{column} {num:.0f} days ago")
    return None


def _text(name: str, feature: Feature | None, value) -> str:
    """What the feature says about the customer, without the direction; name and value when nothing better fits."""
    num = _number(value)
    if feature is not None:
        for words in (
            _interaction_text(feature, num),
            _survey_and_action_text(feature, value, num),
            _purchase_text(feature, num),
            _customer_text(feature, num),
        ):
            if words is not None:
                return words
    if isinstance(value, str):
        return f"{name.replace('_', ' ')}: {value}"
    return f"{name.replace('_', ' ')} = {value}"


def _reason(name: str, feature: Feature | None, value, contribution: float) -> str:
    """One reason: the feature's words and whether it raises or lowers risk."""
    return f"{_text(name, feature, value)} ({'raises risk' if contribution > 0 else 'lowers risk'})"


def _features(catalog: Catalog | None) -> dict[str, Feature]:
    """The catalog's features by name; the default configuration's when there is no catalog."""
    return (catalog if catalog is not None else names.catalog(FeatureConfig())).by_name()


def describe(feature: str, value, contribution: float, catalog: Catalog | None = None) -> str:
    """One reason in plain words; ``contribution`` > 0 means the feature raises risk.

    Args:
        feature: the feature's column name.
        value: its value for the customer.
        contribution: its contribution to the customer's risk.
        catalog: the features of the model's configuration (``features.names.catalog(model.feature_config)``);
            ``None``: the default configuration's.
    """
    return _reason(feature, _features(catalog).get(feature), value, contribution)


def top_reasons(
    contributions: pd.DataFrame, values: pd.DataFrame, k: int = 3, catalog: Catalog | None = None
) -> pd.DataFrame:
    """The ``k`` features raising each row's risk most, as text (None where fewer than ``k`` raise it).

    ``catalog`` says what each feature is, as in :func:`describe`.
    """
    features = _features(catalog)
    feature_names = contributions.columns.to_numpy()
    c = contributions.to_numpy()
    order = np.argsort(-c, axis=1, kind="stable")[:, :k]
    # One array per feature, read once: indexing the frame cell by cell costs far more than describing.
    columns = {name: values[name].to_numpy(dtype=object) for name in np.unique(feature_names[order])}
    out = {f"reason_{j + 1}": [] for j in range(k)}
    for i, row in enumerate(order):
        for j, col in enumerate(row):
            value = c[i, col]
            name = feature_names[col]
            reason = _reason(name, features.get(name), columns[name][i], value) if value > 0 else None
            out[f"reason_{j + 1}"].append(reason)
    return pd.DataFrame(out, index=contributions.index)
