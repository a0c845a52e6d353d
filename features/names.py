"""Feature names: the one place where every feature's column name is made, and what each feature is.

Each feature family is a small frozen dataclass holding the family's
parameters (an interaction type, a window, a survey, ...) whose ``name`` is the
column :func:`features.build.build_features` writes. The build names its
columns only through these classes, and :func:`catalog` lists every feature a
:class:`~features.config.FeatureConfig` produces, in the build's column order,
so that reason codes (``models.reasons``), the DuckDB reference
(``pipelines.benchmark.bench``) and tests read a feature's family and parameters from
the catalog instead of parsing names back.

The names are part of every registered model (its input columns): changing
how a name is spelled here breaks models already trained.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from features.config import FeatureConfig

OTHER = "other"  # the type or channel of every interaction whose type or channel is not configured
SURVEYS = ("NPS", "CSAT", "CES")  # the survey values of the feedback table that have features
SURVEY_STATS = ("count", "latest", "mean", "trend", "days_since_last")  # per survey, in the build's order
RECENCY_TYPES = ("support_ticket", "complaint")  # interaction types with a days-since-last feature of their own
CONTRACT_CUSTOMER_COLUMNS = ("customer_id", "signup_date", "monthly_revenue")
CONTRACT_TEXT_ATTRIBUTES = ("location_id",)  # optional contract columns that are categories

SurveyStatName = Literal["count", "latest", "mean", "trend", "days_since_last"]
AttributeKind = Literal["number", "boolean", "category"]


@dataclass(frozen=True)
class Fixed:
    """A feature of its own, with no parameters (tenure, monthly revenue, ...): its name is all there is to it."""

    name: str


TENURE = Fixed("tenure_days")
MONTHLY_REVENUE = Fixed("monthly_revenue")
PURCHASE_DAYS_TOTAL = Fixed("purchase_days_total")
PURCHASE_VALUE_MEAN = Fixed("purchase_value_mean")
DAYS_SINCE_FIRST_PURCHASE = Fixed("days_since_first_purchase")
DAYS_SINCE_LAST_PURCHASE = Fixed("days_since_last_purchase")
PURCHASE_GAP_MEAN_DAYS = Fixed("purchase_gap_mean_days")
PURCHASE_RECENCY_VS_GAP = Fixed("purchase_recency_vs_gap")
BTYD_P_ALIVE = Fixed("btyd_p_alive")
NPS_CATEGORY_LATEST = Fixed("nps_category_latest")
RECENT_DETRACTOR = Fixed("recent_detractor")
SURVEY_RESPONSES_TOTAL = Fixed("survey_responses_total")
SURVEY_NONRESPONDER = Fixed("survey_nonresponder")
DAYS_SINCE_CALLBACK_REQUEST = Fixed("days_since_callback_request")
DAYS_SINCE_LAST_RETENTION_ACTION = Fixed("days_since_last_retention_action")
OPEN_CALLBACK_REQUEST = Fixed("open_callback_request")


@dataclass(frozen=True)
class InteractionCount:
    """Interactions of any type in the last ``window`` days."""

    window: int

    @property
    def name(self) -> str:
        return f"n_interactions_{self.window}d"


@dataclass(frozen=True)
class ValueSum:
    """Sum of the interactions' ``value`` in the last ``window`` days."""

    window: int

    @property
    def name(self) -> str:
        return f"value_sum_{self.window}d"


@dataclass(frozen=True)
class TypeCount:
    """Interactions of one ``type`` (a configured type or ``other``) in the last ``window`` days."""

    type: str
    window: int

    @property
    def name(self) -> str:
        return f"n_{self.type}_{self.window}d"


@dataclass(frozen=True)
class ActivityTrend:
    """Interactions in the last ``window`` days against the ``window`` days before, on a log scale."""

    window: int

    @property
    def name(self) -> str:
        return f"activity_trend_{self.window}d"


@dataclass(frozen=True)
class ActivityVsBaseline:
    """The shortest window's daily interaction rate against the rate over ``window`` (the widest) days."""

    window: int

    @property
    def name(self) -> str:
        return f"activity_vs_{self.window}d_baseline"


@dataclass(frozen=True)
class ChannelShare:
    """Share of the last ``window`` days' interactions made through ``channel`` (a configured one or ``other``)."""

    channel: str
    window: int

    @property
    def name(self) -> str:
        return f"share_{self.channel}_{self.window}d"


@dataclass(frozen=True)
class DaysSinceLast:
    """Days since the latest interaction (``event`` = ``interaction``) or the latest one of a type."""

    event: str

    @property
    def name(self) -> str:
        return f"days_since_last_{self.event}"


@dataclass(frozen=True)
class RateTrend:
    """One ``type``'s recent rate (time constant ``short`` days) against its long-run rate (``long`` days)."""

    type: str
    short: int
    long: int

    @property
    def name(self) -> str:
        return f"rate_trend_{self.type}_{self.short}d_vs_{self.long}d"


@dataclass(frozen=True)
class PurchaseDays:
    """Distinct purchase days in the last ``window`` days."""

    window: int

    @property
    def name(self) -> str:
        return f"purchase_days_{self.window}d"


@dataclass(frozen=True)
class PurchaseValue:
    """Spend in the last ``window`` days."""

    window: int

    @property
    def name(self) -> str:
        return f"purchase_value_{self.window}d"


@dataclass(frozen=True)
class BtydExpectedPurchases:
    """BG/NBD expected purchase days in the next ``horizon`` days."""

    horizon: int

    @property
    def name(self) -> str:
        return f"btyd_expected_purchases_{self.horizon}d"


@dataclass(frozen=True)
class SurveyStat:
    """One statistic of a customer's answers to ``survey`` (``NPS``, ``CSAT`` or ``CES``)."""

    survey: str
    stat: SurveyStatName

    @property
    def name(self) -> str:
        return f"{self.survey.lower()}_{self.stat}"


@dataclass(frozen=True)
class SurveyBad:
    """Poor answers to ``survey`` in the last ``window`` days."""

    survey: str
    window: int

    @property
    def name(self) -> str:
        return f"{self.survey.lower()}_bad_{self.window}d"


@dataclass(frozen=True)
class RetentionActions:
    """Retention actions aimed at the customer in the last ``window`` days."""

    window: int

    @property
    def name(self) -> str:
        return f"n_retention_actions_{self.window}d"


@dataclass(frozen=True)
class PeerRevenue:
    """Log of monthly revenue over the median of the customers with the same ``group`` value (e.g. plan)."""

    group: str

    @property
    def name(self) -> str:
        return f"revenue_vs_{self.group}_median"


@dataclass(frozen=True)
class DateAttribute:
    """A date attribute of the customer, as days before the as-of date."""

    column: str

    @property
    def name(self) -> str:
        return f"days_since_{self.column}"


@dataclass(frozen=True)
class Attribute:
    """A number, boolean or text attribute of the customer, taken as it is."""

    column: str
    kind: AttributeKind

    @property
    def name(self) -> str:
        return self.column


# Any entry of a catalog: its class is its family, its fields are its parameters.
Feature = (
    Fixed
    | InteractionCount
    | ValueSum
    | TypeCount
    | ActivityTrend
    | ActivityVsBaseline
    | ChannelShare
    | DaysSinceLast
    | RateTrend
    | PurchaseDays
    | PurchaseValue
    | BtydExpectedPurchases
    | SurveyStat
    | SurveyBad
    | RetentionActions
    | PeerRevenue
    | DateAttribute
    | Attribute
)


@dataclass(frozen=True)
class Catalog:
    """Every feature of a build, in its column order."""

    features: tuple[Feature, ...]

    @property
    def names(self) -> list[str]:
        """The column names, in the build's order."""
        return [f.name for f in self.features]

    def by_name(self) -> dict[str, Feature]:
        """Each feature by its column name (a new dict: the catalog itself stays immutable)."""
        return {f.name: f for f in self.features}

    def __iter__(self) -> Iterator[Feature]:
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)


def type_names(config: FeatureConfig) -> tuple[str, ...]:
    """Interaction types with features of their own, ``other`` last (its code is ``len(config.interaction_types)``)."""
    return (*config.interaction_types, OTHER)


def channel_names(config: FeatureConfig) -> tuple[str, ...]:
    """Channels with a share feature, ``other`` last (its code is ``len(config.channels)``)."""
    return (*config.channels, OTHER)


def attribute_columns(columns: pd.Index | list[str], config: FeatureConfig) -> list[str]:
    """Customer columns that become features: those ``config.attribute_types`` names, else every extra column.

    Args:
        columns: the customers table's columns.
        config: its ``attribute_types`` and ``exclude_columns``.
    """
    skip = set(CONTRACT_CUSTOMER_COLUMNS) | set(config.exclude_columns)
    if config.attribute_types is not None:
        contract_text = [c for c in CONTRACT_TEXT_ATTRIBUTES if c in columns and c not in skip]
        return contract_text + [c for c, _ in config.attribute_types if c not in skip and c not in contract_text]
    return [c for c in columns if c not in skip and not c.startswith("_")]


def attribute_feature(column: str, declared: str | None, values: pd.Series | None = None) -> DateAttribute | Attribute:
    """The feature a customer attribute becomes: days since it (a date), or the value itself.

    Args:
        column: the customers column.
        declared: its type as validation decided it (``config.attribute_types``); ``None``: typed by the dtype of
            ``values`` (tests and frames built by hand).
        values: the column, read only when ``declared`` is ``None``.
    """
    is_date = values is not None and pd.api.types.is_datetime64_any_dtype(values)
    is_number = values is not None and (pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values))
    if declared == "date" or (declared is None and is_date):
        return DateAttribute(column)
    if declared in ("number", "boolean"):
        return Attribute(column, declared)
    if declared is None and is_number:
        return Attribute(column, "boolean" if pd.api.types.is_bool_dtype(values) else "number")
    return Attribute(column, "category")


def attribute_features(customers: pd.DataFrame | None, config: FeatureConfig) -> list[DateAttribute | Attribute]:
    """The features the customer attributes become, in the build's order.

    Args:
        customers: the customers table (no rows needed); ``None``: the attributes ``config.attribute_types``
            declares (none when it is ``None``).
        config: the attribute types and the excluded columns.
    """
    types = dict(config.attribute_types or ())
    columns = [] if customers is None else customers.columns
    return [
        attribute_feature(col, types.get(col), customers[col] if col in columns else None)
        for col in attribute_columns(columns, config)
    ]


def interaction_features(config: FeatureConfig) -> list[Feature]:
    """Window counts, trends, channel shares and recency of the interactions, in the build's order."""
    windows = config.windows_days
    short, mid, widest = windows[0], windows[1], windows[-1]
    out: list[Feature] = []
    for w in windows:
        out += [InteractionCount(w), ValueSum(w), *(TypeCount(t, w) for t in type_names(config))]
    out += [ActivityTrend(short), ActivityTrend(mid), ActivityVsBaseline(widest)]
    out += [ChannelShare(c, mid) for c in channel_names(config)]
    out += [DaysSinceLast(e) for e in ("interaction", *RECENCY_TYPES)]
    return out


def rate_trend_features(config: FeatureConfig) -> list[Feature]:
    """Each interaction type's recent rate against its long-run rate."""
    return [RateTrend(t, config.windows_days[0], config.rate_baseline_days) for t in type_names(config)]


def purchase_features(config: FeatureConfig) -> list[Feature]:
    """The transaction features of ``features.transactions``; none when ``config.purchase_types`` is empty."""
    if not config.purchase_types:
        return []
    windows = config.transaction_windows_days
    return [
        *(PurchaseDays(w) for w in windows),
        PURCHASE_DAYS_TOTAL,
        *(PurchaseValue(w) for w in windows),
        PURCHASE_VALUE_MEAN,
        DAYS_SINCE_FIRST_PURCHASE,
        DAYS_SINCE_LAST_PURCHASE,
        PURCHASE_GAP_MEAN_DAYS,
        PURCHASE_RECENCY_VS_GAP,
        *btyd_features(config),
    ]


def btyd_features(config: FeatureConfig) -> list[Feature]:
    """The BG/NBD features: P(alive) and expected purchase days over the horizon."""
    return [BTYD_P_ALIVE, BtydExpectedPurchases(config.btyd_horizon_days)]


def survey_features(config: FeatureConfig) -> list[Feature]:
    """Per-survey statistics, then the features over all surveys and callbacks."""
    mid = config.windows_days[1]
    out: list[Feature] = []
    for s in SURVEYS:
        out += [*(SurveyStat(s, stat) for stat in SURVEY_STATS), SurveyBad(s, mid)]
    return [
        *out,
        NPS_CATEGORY_LATEST,
        RECENT_DETRACTOR,
        SURVEY_RESPONSES_TOTAL,
        SURVEY_NONRESPONDER,
        DAYS_SINCE_CALLBACK_REQUEST,
    ]


def action_features(config: FeatureConfig) -> list[Feature]:
    """Retention actions in the widest window and days since the latest."""
    return [RetentionActions(max(config.windows_days)), DAYS_SINCE_LAST_RETENTION_ACTION]


def peer_features(config: FeatureConfig, columns: pd.Index | list[str] | None = None) -> list[Feature]:
    """Revenue against each peer group's median, for the groups the customers table has (``None``: all)."""
    return [
        PeerRevenue(col)
        for col in config.peer_groups
        if (columns is None or col in columns) and col not in config.exclude_columns
    ]


def catalog(config: FeatureConfig, customers: pd.DataFrame | None = None) -> Catalog:
    """Every feature :func:`features.build.build_features` produces with ``config``, in its column order.

    Args:
        config: the feature configuration (a model's ``feature_config`` at scoring).
        customers: the customers table (no rows needed): its columns and dtypes decide which peer groups and
            attributes there are, as in the build. ``None``: the model's view, every peer group not excluded and the
            attributes ``config.attribute_types`` declares.

    Returns:
        The catalog: identifiers and the label are not features and are not in it.
    """
    return Catalog(
        (
            TENURE,
            MONTHLY_REVENUE,
            *interaction_features(config),
            *rate_trend_features(config),
            *purchase_features(config),
            *survey_features(config),
            *action_features(config),
            OPEN_CALLBACK_REQUEST,
            *peer_features(config, None if customers is None else customers.columns),
            *attribute_features(customers, config),
        )
    )
