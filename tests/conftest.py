"""Shared fixtures: generated datasets live in pytest's temporary folders, never in the repo."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.build import Tables
from pipelines.generate import write_synthetic
from pipelines.synthetic import SyntheticConfig

END = pd.Timestamp("2026-06-30")


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A small synthetic dataset (2,000 customers, 12 months) with its ground truth."""
    root = tmp_path_factory.mktemp("small")
    config = SyntheticConfig(customers=2_000, months=12, seed=7)
    summary = write_synthetic(config, root / "data", root / "truth", None, 90)
    return root / "data", root / "truth", summary


@pytest.fixture(scope="session")
def default_dataset(tmp_path_factory) -> tuple[Path, Path, dict]:
    """The default synthetic dataset (what `make data` writes), generated once per session."""
    root = tmp_path_factory.mktemp("default")
    summary = write_synthetic(SyntheticConfig(), root / "data", root / "truth", None, 90)
    return root / "data", root / "truth", summary


def make_tables(
    customers: pd.DataFrame,
    interactions: pd.DataFrame | None = None,
    feedback: pd.DataFrame | None = None,
    churn_events: pd.DataFrame | None = None,
    retention_actions: pd.DataFrame | None = None,
) -> Tables:
    """Typed tables from small inline frames (validated shapes, for unit tests)."""

    def frame(df, columns):
        if df is None:
            df = pd.DataFrame({c: [] for c in columns})
        df = df.copy()
        for c in df.columns:
            if c in ("signup_date", "timestamp", "churn_date", "action_date"):
                df[c] = pd.to_datetime(df[c], format="ISO8601").astype("datetime64[us]")
        return df

    return Tables(
        customers=frame(customers, ["customer_id", "signup_date", "monthly_revenue"]),
        interactions=frame(interactions, ["customer_id", "timestamp", "channel", "type", "value"]),
        feedback=frame(feedback, ["customer_id", "timestamp", "survey", "score", "callback_requested"]),
        churn_events=frame(churn_events, ["customer_id", "churn_date"]),
        retention_actions=frame(retention_actions, ["customer_id", "action_date", "group"]),
    )
