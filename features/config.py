"""Typed, frozen settings of the feature stage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


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
    attribute_types: tuple[tuple[str, str], ...] | None = None

    def __post_init__(self) -> None:
        if len(self.windows_days) < 2 or list(self.windows_days) != sorted(set(self.windows_days)):
            raise ValueError(f"windows_days must hold at least two increasing windows, got {self.windows_days}")
        if self.label_source not in ("events", "inactivity"):
            raise ValueError(f"label_source must be 'events' or 'inactivity', got {self.label_source!r}")
