"""Feature names: the catalog of a feature configuration is what the build produces, and the names never drift."""

import numpy as np
import pandas as pd
import pytest

from features import names
from features.build import build_features, feature_columns
from features.config import FeatureConfig
from tests.builders import make_tables

T = pd.Timestamp("2025-07-01")

# The default configuration's feature columns, spelled out: registered models take exactly these inputs, so a
# change here is a change of every model's input (retrain, or keep the old spelling).
DEFAULT_NAMES = """
tenure_days monthly_revenue n_interactions_30d value_sum_30d n_login_30d n_purchase_30d n_support_ticket_30d
n_complaint_30d n_billing_issue_30d n_payment_failed_30d n_other_30d n_interactions_90d value_sum_90d
n_login_90d n_purchase_90d n_support_ticket_90d n_complaint_90d n_billing_issue_90d n_payment_failed_90d
n_other_90d n_interactions_180d value_sum_180d n_login_180d n_purchase_180d n_support_ticket_180d
n_complaint_180d n_billing_issue_180d n_payment_failed_180d n_other_180d activity_trend_30d activity_trend_90d
activity_vs_180d_baseline share_web_90d share_app_90d share_phone_90d share_email_90d share_chat_90d
share_store_90d share_social_90d share_other_90d days_since_last_interaction days_since_last_support_ticket
days_since_last_complaint rate_trend_login_30d_vs_365d rate_trend_purchase_30d_vs_365d
rate_trend_support_ticket_30d_vs_365d rate_trend_complaint_30d_vs_365d rate_trend_billing_issue_30d_vs_365d
rate_trend_payment_failed_30d_vs_365d rate_trend_other_30d_vs_365d purchase_days_90d purchase_days_180d
purchase_days_365d purchase_days_total purchase_value_90d purchase_value_180d purchase_value_365d
purchase_value_mean days_since_first_purchase days_since_last_purchase purchase_gap_mean_days
purchase_recency_vs_gap btyd_p_alive btyd_expected_purchases_90d nps_count nps_latest nps_mean nps_trend
nps_days_since_last nps_bad_90d csat_count csat_latest csat_mean csat_trend csat_days_since_last csat_bad_90d
ces_count ces_latest ces_mean ces_trend ces_days_since_last ces_bad_90d nps_category_latest recent_detractor
survey_responses_total survey_nonresponder days_since_callback_request n_retention_actions_180d
days_since_last_retention_action open_callback_request revenue_vs_plan_median
""".split()


@pytest.fixture
def tables():
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "signup_date": ["2024-01-01", "2025-01-01"],
            "monthly_revenue": [20.0, 45.0],
            "plan": ["basic", "pro"],
            "seats": [1, 3],
            "last_review": pd.to_datetime(["2025-02-01", None]).astype("datetime64[us]"),
        }
    )
    interactions = pd.DataFrame(
        {
            "customer_id": ["a", "b", "a"],
            "timestamp": ["2025-06-30", "2025-05-25", "2024-12-01"],
            "channel": ["web", "call_centre", "app"],
            "type": ["login", "purchase", "support_ticket"],
            "value": [1.0, 30.0, np.nan],
        }
    )
    feedback = pd.DataFrame(
        {
            "customer_id": ["a"],
            "timestamp": ["2025-06-15"],
            "survey": ["NPS"],
            "score": [3.0],
            "callback_requested": [True],
        }
    )
    return make_tables(customers, interactions, feedback)


def test_the_default_names_never_change():
    assert names.catalog(FeatureConfig()).names == DEFAULT_NAMES


CONFIGS = {
    "default": FeatureConfig(),
    "short windows, few types, no purchases": FeatureConfig(
        windows_days=(7, 14, 60),
        interaction_types=("login", "purchase"),
        channels=("web", "call_centre"),
        purchase_types=(),
        rate_baseline_days=90,
        peer_groups=("plan", "seats", "region"),
    ),
    "transaction settings, excluded columns": FeatureConfig(
        purchase_types=("purchase", "login"),
        transaction_windows_days=(7, 30),
        btyd_horizon_days=30,
        btyd_fit_customers=100,
        exclude_columns=("plan", "seats"),
    ),
    "declared attribute types": FeatureConfig(
        attribute_types=(("seats", "number"), ("last_review", "date"), ("plan", "category"))
    ),
}


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_the_catalog_is_the_builds_columns_in_its_order(tables, config):
    built = build_features(tables, T, config)
    assert names.catalog(config, tables.customers).names == feature_columns(built)


def test_the_catalog_says_what_each_feature_is(tables):
    by_name = names.catalog(FeatureConfig(), tables.customers).by_name()
    assert by_name["n_support_ticket_90d"] == names.TypeCount("support_ticket", 90)
    assert by_name["n_other_30d"] == names.TypeCount(names.OTHER, 30)
    assert by_name["rate_trend_login_30d_vs_365d"] == names.RateTrend("login", 30, 365)
    assert by_name["csat_bad_90d"] == names.SurveyBad("CSAT", 90)
    assert by_name["nps_days_since_last"] == names.SurveyStat("NPS", "days_since_last")
    assert by_name["days_since_last_review"] == names.DateAttribute("last_review")
    assert by_name["seats"] == names.Attribute("seats", "number")
    assert by_name["plan"] == names.Attribute("plan", "category")
    assert by_name["revenue_vs_plan_median"] == names.PeerRevenue("plan")


def test_without_a_customers_table_the_catalog_is_the_models_view():
    config = FeatureConfig(
        attribute_types=(("seats", "number"), ("last_review", "date"), ("monthly_revenue", "number")),
        exclude_columns=("seats",),
    )
    catalog = names.catalog(config)
    assert catalog.names[-2:] == ["revenue_vs_plan_median", "days_since_last_review"]
    assert len(set(catalog.names)) == len(catalog)
