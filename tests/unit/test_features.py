"""Feature and label values on small inline frames."""

import numpy as np
import pandas as pd
import pytest

from features.build import build_features, build_labels, prepare
from features.config import FeatureConfig
from tests.builders import make_tables

T = pd.Timestamp("2025-07-01")


@pytest.fixture
def tables():
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "late", "gone"],
            "signup_date": ["2024-01-01", "2025-01-01", "2025-06-01", "2025-07-01", "2024-01-01"],
            "monthly_revenue": [20.0, 45.0, 85.0, 30.0, 10.0],
            "plan": ["basic", "standard", "premium", "basic", "basic"],
            "seats": [1, 3, 5, 1, 1],
        }
    )
    interactions = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "b", "a"],
            "timestamp": [
                "2025-06-30 23:59",
                "2025-06-10",
                "2025-03-01",
                "2025-06-20",
                "2025-06-25",
                "2025-07-01 00:00",
            ],
            "channel": ["web", "phone", "app", "web", "app", "web"],
            "type": ["login", "support_ticket", "purchase", "complaint", "mystery", "login"],
            "value": [5.0, 10.0, 30.0, np.nan, 1.0, 99.0],
        }
    )
    feedback = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "c"],
            "timestamp": ["2025-01-10", "2025-06-15", "2025-06-01", "2025-07-02"],
            "survey": ["NPS", "NPS", "CSAT", "NPS"],
            "score": [9.0, 3.0, 2.0, 10.0],
            "callback_requested": [False, True, True, False],
        }
    )
    actions = pd.DataFrame({"customer_id": ["b"], "action_date": ["2025-06-05"], "group": ["treatment"]})
    churn = pd.DataFrame({"customer_id": ["gone", "b"], "churn_date": ["2025-05-01", "2025-08-15"]})
    return make_tables(customers, interactions, feedback, churn, actions)


def test_only_active_customers_get_a_row(tables):
    f = build_features(tables, T, FeatureConfig()).set_index("customer_id")
    # 'late' signs up on T (not before), 'gone' churned before T
    assert sorted(f.index) == ["a", "b", "c"]
    assert f.loc["a", "tenure_days"] == (T - pd.Timestamp("2024-01-01")).days


def test_interaction_windows_recency_and_types(tables):
    f = build_features(tables, T, FeatureConfig()).set_index("customer_id")
    a = f.loc["a"]
    assert a["n_interactions_30d"] == 3  # 06-30, 06-10, 06-20; the 07-01 event is at T, excluded
    assert a["n_interactions_180d"] == 4
    assert a["n_complaint_30d"] == 1 and a["n_support_ticket_30d"] == 1 and a["n_login_30d"] == 1
    assert a["value_sum_180d"] == pytest.approx(45.0)  # NaN value counts as 0; 99 is at T
    assert a["days_since_last_interaction"] == pytest.approx(1 / (24 * 60))
    assert a["days_since_last_complaint"] == pytest.approx(11.0)
    assert f.loc["b", "n_other_30d"] == 1  # unknown types are counted, not dropped
    assert a["share_web_90d"] == pytest.approx(2 / 3)  # the 03-01 purchase is outside 90 days


def test_customer_without_events_gets_defined_values(tables):
    c = build_features(tables, T, FeatureConfig()).set_index("customer_id").loc["c"]
    assert c["n_interactions_90d"] == 0
    assert np.isnan(c["days_since_last_interaction"])
    assert c["survey_nonresponder"] == 1  # the NPS answer is after T
    assert c["nps_category_latest"] == "none"
    assert c["open_callback_request"] == 0


def test_survey_features(tables):
    f = build_features(tables, T, FeatureConfig()).set_index("customer_id")
    a = f.loc["a"]
    assert a["nps_latest"] == 3 and a["nps_mean"] == 6 and a["nps_count"] == 2 and a["nps_trend"] == -6
    assert a["nps_category_latest"] == "detractor"
    assert a["recent_detractor"] == 1
    assert a["open_callback_request"] == 1  # requested 06-15, no action since
    b = f.loc["b"]
    assert b["csat_latest"] == 2 and b["recent_detractor"] == 1
    assert b["open_callback_request"] == 0  # requested 06-01, followed by the action on 06-05
    assert b["days_since_last_retention_action"] == 26


def test_callback_followed_by_action_is_closed():
    tables = make_tables(
        pd.DataFrame({"customer_id": ["x"], "signup_date": ["2024-01-01"], "monthly_revenue": [10.0]}),
        feedback=pd.DataFrame(
            {
                "customer_id": ["x"],
                "timestamp": ["2025-06-01 10:00"],
                "survey": ["NPS"],
                "score": [2.0],
                "callback_requested": [True],
            }
        ),
        retention_actions=pd.DataFrame({"customer_id": ["x"], "action_date": ["2025-06-01"], "group": ["treatment"]}),
    )
    assert build_features(tables, T, FeatureConfig())["open_callback_request"].iloc[0] == 0


def test_attributes_become_features_unless_excluded(tables):
    f = build_features(tables, T, FeatureConfig(exclude_columns=("seats",)))
    assert "plan" in f and f["plan"].dtype == "string"
    assert "seats" not in f
    assert build_features(tables, T, FeatureConfig())["seats"].dtype == float


def test_labels_read_only_the_horizon_and_respect_observability(tables):
    p = prepare(tables, FeatureConfig())
    f = build_features(p, T)
    labels = build_labels(p, f, 60, pd.Timestamp("2025-12-31")).set_axis(f["customer_id"])
    assert labels["b"] == 1  # churns 2025-08-15, inside [T, T+60)
    assert labels["a"] == 0
    short = build_labels(p, f, 30, pd.Timestamp("2025-12-31")).set_axis(f["customer_id"])
    assert short["b"] == 0  # outside [T, T+30)
    unobserved = build_labels(p, f, 60, pd.Timestamp("2025-08-01"))
    assert unobserved.isna().all()


def test_inactivity_labels(tables):
    config = FeatureConfig(label_source="inactivity")
    p = prepare(tables, config)
    f = build_features(p, T)
    # only customers with an interaction in the 180 days before T are active
    assert sorted(f["customer_id"]) == ["a", "b"]
    labels = build_labels(p, f, 30, pd.Timestamp("2025-12-31")).set_axis(f["customer_id"])
    assert labels["a"] == 0  # interacts at T
    assert labels["b"] == 1  # silent in [T, T+30)


def test_streamed_interactions_and_blocked_recency_give_the_same_features(small_dataset, tmp_path, monkeypatch):
    """Interactions read in small parquet batches (never one frame), recency scanned in small blocks: same features."""
    import features.build as fb
    import pipelines.io.files as io
    from pipelines.contract import validate_dataset

    data, _, _ = small_dataset
    dataset = io.read_dataset(data)
    raw, sources = dataset.tables, dataset.sources
    result = validate_dataset(raw, sources, end_date=pd.Timestamp("2026-06-30"))
    io.write_validation(result, tmp_path / "v")
    config = FeatureConfig()
    dates = [pd.Timestamp("2026-01-01"), pd.Timestamp("2026-06-01")]
    expected = [build_features(prepare(io.tables_from(result), config), d) for d in dates]

    monkeypatch.setattr(io, "BATCH_ROWS", 997)
    monkeypatch.setattr(fb, "RECENCY_BLOCK", 1013)
    tables = io.feature_tables(io.dataset_files(tmp_path / "v" / "tables"), check=True)
    assert isinstance(tables.interactions, fb.EventBatches) and tables.interactions.rows == len(
        result.tables["interactions"]
    )
    prepared = prepare(tables, config)
    for d, want in zip(dates, expected, strict=True):
        pd.testing.assert_frame_equal(build_features(prepared, d), want)


def test_event_batches_holding_more_rows_than_announced_fail_clearly(tables):
    from features.build import EventBatches, Tables

    source = EventBatches(rows=2, batches=lambda: iter([tables.interactions, tables.interactions]))
    with pytest.raises(ValueError, match="more than the 2 rows announced"):
        prepare(
            Tables(tables.customers, source, tables.feedback, tables.churn_events, tables.retention_actions),
            FeatureConfig(),
        )


def test_event_batches_of_other_customers_are_left_out(tables):
    """Rows of customers outside the table are dropped; the arrays shrink to the rows kept."""
    from features.build import EventBatches, Tables

    frame = tables.interactions
    source = EventBatches(rows=len(frame) + 5, batches=lambda: iter([frame.iloc[:3], frame.iloc[3:]]))
    streamed = prepare(
        Tables(tables.customers, source, tables.feedback, tables.churn_events, tables.retention_actions),
        FeatureConfig(),
    )
    whole = prepare(tables, FeatureConfig())
    assert np.array_equal(streamed.interactions.ts, whole.interactions.ts) and np.array_equal(
        streamed.interactions.cust, whole.interactions.cust
    )
    pd.testing.assert_frame_equal(build_features(streamed, T), build_features(whole, T))


@pytest.mark.parametrize("universe", [["a", "b", "c"], ["a", "b", "a"], []])
def test_key_lookup_agrees_with_positions(universe):
    """The hashed-once lookup used for streamed batches gives what positions() gives, missing and unknown keys
    included."""
    from features.keys import KeyLookup, positions

    lookup = KeyLookup(universe)
    text = pd.Series(["b", None, "zz", "a", "b", "c"], dtype="str")
    expected = positions(text, universe)
    for values in (text, text.astype("category"), pd.Series([], dtype="str"), pd.Series(["a"] * 4)):
        assert np.array_equal(lookup(values), positions(values, universe))
    # Dictionary-encoded batches (categoricals) give the same positions as plain text.
    assert np.array_equal(positions(text.astype("category"), universe), expected)
    assert np.array_equal(lookup(text.astype("category")), expected)


def test_rate_trend_compares_each_types_recent_rate_with_its_long_run_rate():
    days = pd.date_range(T - pd.Timedelta(days=1200), T - pd.Timedelta(days=1))
    steady = pd.DataFrame({"customer_id": "steady", "timestamp": days, "type": "login"})
    # the same daily logins, stopping 60 days before T; one support ticket a day over the last 30
    fading = pd.DataFrame(
        {"customer_id": "fading", "timestamp": days[days < T - pd.Timedelta(days=60)], "type": "login"}
    )
    tickets = pd.DataFrame({"customer_id": "fading", "timestamp": days[-30:], "type": "support_ticket"})
    after = pd.DataFrame({"customer_id": "steady", "timestamp": [T, T + pd.Timedelta(days=3)], "type": "login"})
    interactions = pd.concat([steady, fading, tickets, after], ignore_index=True).assign(channel="web", value=np.nan)
    interactions["timestamp"] = interactions["timestamp"].astype(str)
    customers = pd.DataFrame(
        {"customer_id": ["steady", "fading"], "signup_date": ["2020-01-01"] * 2, "monthly_revenue": [10.0, 10.0]}
    )
    f = build_features(make_tables(customers, interactions), T, FeatureConfig()).set_index("customer_id")
    login, ticket = "rate_trend_login_30d_vs_365d", "rate_trend_support_ticket_30d_vs_365d"
    assert f.loc["steady", login] == pytest.approx(0.0, abs=0.06)  # events at or after T are not read
    assert f.loc["fading", login] < -1.0  # daily logins fell to none: log((0.13 + 0.03) / (0.85 + 0.03))
    assert f.loc["fading", ticket] > 1.0 and f.loc["steady", ticket] == 0.0
