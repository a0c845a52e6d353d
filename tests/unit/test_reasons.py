"""Reason codes: the top risk-raising features of each row, in words, read from the right cells."""

import numpy as np
import pandas as pd

from features.config import FeatureConfig
from features.names import catalog
from models.reasons import describe, top_reasons


def test_top_reasons_picks_the_largest_positive_contributions_of_each_row():
    contributions = pd.DataFrame(
        {"n_complaint_30d": [0.9, -0.1], "nps_latest": [0.5, 0.2], "tenure_days": [-0.3, 0.8], "plan": [0.1, -0.2]},
        index=[10, 11],
    )
    values = pd.DataFrame(
        {
            "n_complaint_30d": [3.0, 0.0],
            "nps_latest": [2.0, np.nan],
            "tenure_days": [900.0, 40.0],
            "plan": ["basic", "pro"],
        },
        index=[10, 11],
    )
    out = top_reasons(contributions, values)
    assert list(out.index) == [10, 11]
    assert out.loc[10].tolist() == [
        "3 complaint(s) in the last 30 days (raises risk)",
        "latest NPS score 2 (raises risk)",
        "plan: basic (raises risk)",
    ]
    # Only two features raise the second row's risk: the third reason is empty.
    assert out.loc[11, "reason_1"] == "new customer (40 days) (raises risk)"
    assert out.loc[11, "reason_2"] == "no NPS answer on record (raises risk)"
    assert pd.isna(out.loc[11, "reason_3"])


def test_describe_reads_missing_and_text_values_without_failing():
    assert describe("days_since_last_interaction", pd.NA, 1.0) == "no interaction recorded (raises risk)"
    assert describe("recent_detractor", True, 1.0) == "gave a poor survey answer recently (raises risk)"
    assert describe("nps_category_latest", "detractor", 0.4) == "latest NPS answer: detractor (raises risk)"


def test_transaction_and_date_attribute_reasons_read_as_words():
    assert describe("purchase_recency_vs_gap", 3.04, 1.0) == "away 3.0x their usual gap between purchases (raises risk)"
    assert describe("btyd_p_alive", 0.42, 1.0) == "42% likely still an active buyer (raises risk)"
    assert (
        describe("btyd_expected_purchases_90d", 0.25, 0.3)
        == "expected to buy on 0.2 day(s) in the next 90 days (raises risk)"
    )
    assert describe("purchase_days_365d", 2.0, 0.3) == "bought on 2 day(s) in the last 365 days (raises risk)"
    assert describe("days_since_last_purchase", np.nan, 0.3) == "no purchase on record (raises risk)"
    reviewed = catalog(FeatureConfig(attribute_types=(("LastReview", "date"),)))
    assert describe("days_since_LastReview", 40.0, -0.2, reviewed) == "LastReview 40 days ago (lowers risk)"


def test_what_a_feature_is_comes_from_the_models_catalog_not_its_name():
    config = FeatureConfig(
        windows_days=(7, 28),
        interaction_types=("complaint", "app_crash"),
        channels=("call_centre",),
        purchase_types=(),
        rate_baseline_days=90,
    )
    features = catalog(config)
    assert describe("n_app_crash_7d", 2.0, 1.0, features) == "2 app crash in the last 7 days (raises risk)"
    assert (
        describe("share_call_centre_28d", 0.5, 1.0, features) == "50% of recent contacts by call_centre (raises risk)"
    )
    assert (
        describe("n_retention_actions_28d", 1.0, 1.0, features)
        == "1 retention actions in the last 28 days (raises risk)"
    )
    # Not in the catalog (no such date attribute, transaction features switched off): the name and the value.
    assert describe("days_since_LastReview", 40.0, 1.0, features) == "days since LastReview = 40.0 (raises risk)"
    assert describe("btyd_p_alive", 0.5, 1.0, features) == "btyd p alive = 0.5 (raises risk)"
    out = top_reasons(
        pd.DataFrame({"n_complaint_7d": [1.0]}), pd.DataFrame({"n_complaint_7d": [3.0]}), k=1, catalog=features
    )
    assert out.loc[0, "reason_1"] == "3 complaint(s) in the last 7 days (raises risk)"
