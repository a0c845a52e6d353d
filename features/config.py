"""Typed, frozen settings of the feature stage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


class FeatureError(ValueError):
    """A feature setting or input the user can fix (a bad window, a column the model expects and the data lacks)."""


@dataclass(frozen=True)
class FeatureConfig:
    """What the feature stage computes.

    Attributes:
        windows_days: look-back windows for interaction aggregates, shortest
            first; the first two also define the activity trend.
        interaction_types: interaction types counted on their own; any other
            type is counted as ``other`` so that the feature set never depends
            on which types a particular extract happens to contain.
        channels: channels whose share of recent interactions is a feature.
        exclude_columns: customer attribute columns that must not be features.
        label_source: ``events`` (churn_events) or ``inactivity`` (no
            interaction in the horizon).
        inactivity_active_days: with ``inactivity`` labels, a customer is in
            the population at T only with an interaction in this many days
            before T; ``None``: every customer who signed up before T (the
            population of published transaction-log benchmarks).
        attribute_types: the customer attribute columns that become features
            and the type of each (``number``, ``boolean``, ``date``,
            ``category``; see ``pipelines.attributes``), as validation decided
            them. The model carries these, so scoring builds exactly the
            features it was trained on. ``None`` (tests and frames built by
            hand): every extra column, typed by its dtype.
        peer_groups: text attributes (e.g. ``plan``) within which revenue is
            compared: ``revenue_vs_<col>_median`` is the log of a customer's
            monthly revenue over the median of customers with the same value.
        purchase_types: interaction types that are purchases (``value`` is
            the amount), for the transaction features of
            ``features.transactions``; each must be one of
            ``interaction_types``. Empty: no transaction features.
        rate_baseline_days: time constant of the long-run, exponentially
            weighted rate of each interaction type that the recent rate (time
            constant ``windows_days[0]``) is compared with
            (``rate_trend_<type>_<short>d_vs_<long>d``).
        transaction_windows_days: look-back windows for distinct purchase
            days and spend, shortest first.
        btyd_horizon_days: the BG/NBD feature
            ``btyd_expected_purchases_<N>d`` counts expected purchase days in
            the next N days (say, the label horizon).
        btyd_fit_customers: the BG/NBD is fitted on at most this many
            customers (a seeded sample when there are more), which bounds its
            cost on large bases.
    """

    windows_days: tuple[int, ...] = (30, 90, 180)
    interaction_types: tuple[str, ...] = (
        "login",
        "purchase",
        "support_ticket",
        "complaint",
        "billing_issue",
        "payment_failed",
    )
    channels: tuple[str, ...] = ("web", "app", "phone", "email", "chat", "store", "social")
    exclude_columns: tuple[str, ...] = ()
    label_source: Literal["events", "inactivity"] = "events"
    inactivity_active_days: int | None = 180
    peer_groups: tuple[str, ...] = ("plan",)
    purchase_types: tuple[str, ...] = ("purchase",)
    rate_baseline_days: int = 365
    transaction_windows_days: tuple[int, ...] = (90, 180, 365)
    btyd_horizon_days: int = 90
    btyd_fit_customers: int = 50_000
    attribute_types: tuple[tuple[str, str], ...] | None = None

    def __post_init__(self) -> None:
        if len(self.windows_days) < 2 or list(self.windows_days) != sorted(set(self.windows_days)):
            raise FeatureError(f"windows_days must hold at least two increasing windows, got {self.windows_days}")
        if self.label_source not in ("events", "inactivity"):
            raise FeatureError(f"label_source must be 'events' or 'inactivity', got {self.label_source!r}")
        unknown = [t for t in self.purchase_types if t not in self.interaction_types]
        if unknown:
            raise FeatureError(
                f"purchase_types must be among interaction_types {self.interaction_types}, got {unknown}"
            )
        if self.rate_baseline_days <= self.windows_days[0]:
            raise FeatureError(
                f"rate_baseline_days must be longer than the shortest window {self.windows_days[0]}, got "
                f"{self.rate_baseline_days}"
            )
        windows = list(self.transaction_windows_days)
        if not windows or windows != sorted(set(windows)) or windows[0] < 1:
            raise FeatureError(
                f"transaction_windows_days must hold increasing positive windows, got {self.transaction_windows_days}"
            )
        if self.btyd_horizon_days < 1:
            raise FeatureError(f"btyd_horizon_days must be at least 1, got {self.btyd_horizon_days}")
        if self.btyd_fit_customers < 100:
            raise FeatureError(f"btyd_fit_customers must be at least 100, got {self.btyd_fit_customers}")
