"""The money arithmetic: the worked examples exactly, expected value, targeting, revenue-weighted NPS, recovery."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import value as val
from models.reasons import describe, top_reasons
from pipelines.stages.score import ScoringError, check_features, spreadsheet_safe


def test_worked_example_retailer():
    customers, revenue = val.naive_annual_revenue_saved(1, 1_000, 210)
    assert customers == 12_000
    assert revenue == 2_520_000


def test_worked_example_telecom_callbacks():
    opportunities, revenue = val.naive_callback_recovery(1_000, 160)
    assert opportunities == 12_000
    assert revenue == pytest.approx(23_040_000)
    # the 1,000 a month come from 3% of respondents asking for a callback
    assert 0.03 * 33_334 == pytest.approx(1_000, rel=1e-3)


def test_expected_value_formulas():
    p, rev = np.array([0.5, 0.1]), np.array([100.0, 20.0])
    assert val.annual_revenue_at_risk(p, rev).tolist() == pytest.approx([600.0, 24.0])
    assert val.expected_net_value(p, rev, 0.2, 10.0).tolist() == pytest.approx(
        [0.5 * 0.2 * 1200 - 10, 0.1 * 0.2 * 240 - 10]
    )


def _scores():
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.05])
    rev = np.full(5, 100.0)
    return pd.DataFrame(
        {
            "customer_id": list("abcde"),
            "churn_probability": p,
            "monthly_revenue": rev,
            "location_id": ["x", "x", "x", "y", "y"],
            "expected_net_value_of_contact": val.expected_net_value(p, rev, 0.2, 15.0),
        }
    )


def test_targeting_respects_capacity_budget_and_positive_value():
    plan = val.targeting_plan(_scores(), 0.2, 15.0, capacity_per_location=2, budget=None)
    assert plan.selected["customer_id"].tolist() == ["a", "b", "d"]  # c exceeds x's capacity; e loses money
    assert plan.expected_customers_saved == pytest.approx(0.2 * (0.9 + 0.8 + 0.6))
    assert plan.expected_revenue_recovered == pytest.approx(0.2 * (0.9 + 0.8 + 0.6) * 1200)
    assert plan.net_value == pytest.approx(plan.expected_revenue_recovered - 45)
    assert len(plan.profit_curve) == 5 and plan.profit_curve["expected_net_value"].idxmax() == 3
    budget = val.targeting_plan(_scores(), 0.2, 15.0, capacity_per_location=None, budget=31.0)
    assert budget.selected["customer_id"].tolist() == ["a", "b"]
    # the list less its holdout: what contacting the treatment rows is expected to give (b held out)
    contacted = plan.without(pd.Series(["b"]))
    assert contacted.customers == 2 and contacted.cost == pytest.approx(30.0)
    assert contacted.expected_customers_saved == pytest.approx(0.2 * (0.9 + 0.6))
    assert contacted.net_value == pytest.approx(0.2 * (0.9 + 0.6) * 1200 - 30)
    assert plan.without([]) == val.plan_figures(plan.selected, 0.2, 15.0, val.MONTHS)


def test_revenue_weighted_nps_by_hand():
    answers = pd.DataFrame({"score": [10, 9, 7, 3], "monthly_revenue": [10.0, 10.0, 30.0, 50.0]})
    r = val.revenue_weighted_nps(answers)
    assert r["nps"] == pytest.approx(100 * (2 / 4 - 1 / 4))
    assert r["revenue_weighted_nps"] == pytest.approx(100 * (20 / 100 - 50 / 100))
    assert r["revenue_share"] == pytest.approx({"promoter": 0.2, "passive": 0.3, "detractor": 0.5})


def test_measured_recovery_by_hand():
    outcomes = pd.DataFrame(
        {
            "group": ["treatment"] * 100 + ["control"] * 100,
            "churned": [1] * 10 + [0] * 90 + [1] * 20 + [0] * 80,
            "monthly_revenue": [50.0] * 200,
        }
    )
    r = val.measure_recovery(outcomes, min_control=50)
    assert r.saved_customers == pytest.approx((0.2 - 0.1) * 100)
    assert r.revenue_recovered == pytest.approx(10 * 600)
    assert r.naive_revenue == pytest.approx(100 * 600)
    assert r.saved_low < 10 < r.saved_high and not r.warning
    small = val.measure_recovery(outcomes.iloc[:110], min_control=50)
    assert "control group too small" in small.warning
    few_churners = val.measure_recovery(outcomes, min_churners=25)  # 20 churned among the controls
    assert few_churners.warning.endswith("(need at least 50 customers and 25 churners)")
    assert few_churners.saved_customers == r.saved_customers  # a warning, not a different measurement


def test_spreadsheet_safe_csv_cells():
    frame = pd.DataFrame({"customer_id": ['=HYPERLINK("x")', "+1", "-2", "@a", "ok"], "n": [1, 2, 3, 4, 5]})
    safe = spreadsheet_safe(frame)
    assert safe["customer_id"].tolist() == ['\'=HYPERLINK("x")', "'+1", "'-2", "'@a", "ok"]
    assert safe["n"].tolist() == [1, 2, 3, 4, 5]


def test_risk_tiers_by_share():
    tiers = val.risk_tiers(np.linspace(1, 0, 10), 0.1, 0.2)
    assert tiers.tolist() == ["high", "medium", "medium"] + ["low"] * 7


def test_feature_disagreement_is_named():
    with pytest.raises(ScoringError, match=r"missing \['b'\], unexpected \['c'\]"):
        check_features(["a", "b"], ["a", "c"])


def test_reasons_are_words_and_only_raise_risk():
    assert describe("n_complaint_90d", 2.0, 0.4) == "2 complaint(s) in the last 90 days (raises risk)"
    assert describe("open_callback_request", 1.0, 0.3) == "asked for a callback that was not followed up (raises risk)"
    assert describe("nps_latest", 2.0, 0.5) == "latest NPS score 2 (raises risk)"
    contrib = pd.DataFrame({"n_complaint_90d": [0.5, -0.1], "tenure_days": [0.2, -0.3], "nps_latest": [-0.1, -0.2]})
    values = pd.DataFrame({"n_complaint_90d": [3.0, 0.0], "tenure_days": [40.0, 900.0], "nps_latest": [9.0, 10.0]})
    reasons = top_reasons(contrib, values)
    assert reasons.iloc[0].tolist() == [
        "3 complaint(s) in the last 90 days (raises risk)",
        "new customer (40 days) (raises risk)",
        None,
    ]
    assert reasons.iloc[1].isna().all()


def test_outcomes_follow_the_label_definition_of_churn():
    actions = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "action_date": pd.to_datetime(["2025-01-01"] * 3).astype("datetime64[us]"),
            "group": ["treatment", "control", "treatment"],
        }
    )
    customers = pd.DataFrame({"customer_id": ["a", "b", "c"], "monthly_revenue": [10.0, 20.0, 30.0]})
    no_churn = pd.DataFrame(
        {"customer_id": pd.Series([], dtype="str"), "churn_date": pd.Series([], dtype="datetime64[us]")}
    )
    # No churn events at all: nobody churned (and no crash on the empty table).
    assert not val.action_outcomes(actions, no_churn, customers, 30)["churned"].any()
    interactions = pd.DataFrame(
        {
            "customer_id": ["a", "b", "b"],
            "timestamp": pd.to_datetime(["2025-01-10", "2024-12-31", "2025-01-31"]).astype("datetime64[us]"),
        }
    )
    # Inactivity: churned = no interaction in [action, action + 30d); b's are just outside on both sides, c has none.
    out = val.action_outcomes(actions, no_churn, customers, 30, "inactivity", interactions)
    assert out["churned"].tolist() == [False, True, True]
    # Events: the churn in the window counts, whatever came before. a churned in 2024, came back and churns again
    # inside the window; b churned only before the action; c churns on the window's last day, then after it.
    events = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "c", "c"],
            "churn_date": pd.to_datetime(["2024-03-01", "2025-01-20", "2024-12-31", "2025-01-30", "2025-03-01"]),
        }
    ).astype({"churn_date": "datetime64[us]"})
    assert val.action_outcomes(actions, events, customers, 30)["churned"].tolist() == [True, False, True]


def test_money_puts_the_minus_before_the_dollar_sign():
    from pipelines.reporting.html import money

    assert [money(x) for x in (3090.4, -3090.4, -0.2, 0.0, float("nan"), None)] == [
        "$3,090",
        "-$3,090",
        "$0",
        "$0",
        "n/a",
        "n/a",
    ]


def test_the_recovery_report_names_the_configured_interval_level():
    from pipelines.reporting.html import recovery_section

    outcomes = pd.DataFrame(
        {
            "group": ["treatment"] * 100 + ["control"] * 100,
            "churned": [1] * 10 + [0] * 90 + [1] * 20 + [0] * 80,
            "monthly_revenue": [50.0] * 200,
            "location_id": ["L1"] * 200,
        }
    )
    table = val.recovery_frame(val.recovery_rows(outcomes, ("location_id",), n_boot=200))
    assert "(95% interval" in recovery_section(table, "Recovery")
    assert "(90% interval" in recovery_section(table, "Recovery", confidence=0.9)


def test_segments_too_small_alone_are_pooled_into_one_other_row_and_warnings_become_notes():
    from pipelines.reporting.html import recovery_section

    rng = np.random.default_rng(0)
    big = pd.DataFrame({"group": ["treatment"] * 300 + ["control"] * 300, "location_id": "L-big"})
    small = pd.DataFrame(
        {"group": ["treatment", "control"] * 40, "location_id": np.repeat(["L1", "L2", "L3", "L4"], 20)}
    )
    outcomes = pd.concat([big, small], ignore_index=True)
    outcomes["churned"] = rng.random(len(outcomes)) < np.where(outcomes["group"] == "control", 0.2, 0.12)
    outcomes["monthly_revenue"] = 40.0
    table = val.recovery_frame(val.recovery_rows(outcomes, ("location_id",), n_boot=100))
    assert table["value"].tolist() == ["all", "L-big", "other (4 too small alone)"]
    other = table.iloc[2]
    assert (other["treated"], other["control"]) == (40, 40)  # the four small locations' customers, measured together
    assert table["treated"].iloc[1:].sum() == table["treated"].iloc[0]  # nobody lost from the breakdown
    html = recovery_section(table, "Recovery")
    assert "too small to say anything" in html.split("<ol class='note'>")[1]  # the long warning sits in the notes
    assert "[1]" in html and "churn control" in html


def test_the_power_calculation_detects_its_minimum_effect_at_least_as_often_as_promised():
    treated, control, p = 6_000, 2_500, 0.09
    power = val.power_analysis(treated, control, p - 0.01, p, level=0.95, power=0.8, precision=0.25)
    assert 0.01 < power.min_detectable_rate < 0.03 and power.min_detectable_saved == pytest.approx(
        power.min_detectable_rate * treated
    )
    # simulated campaigns whose true effect is the minimum detectable one: a two-sided z-test rejects at least ~80 %
    # of them (a little more: the formula takes the control rate's variance for both groups, which is conservative)
    rng = np.random.default_rng(0)
    q = p - power.min_detectable_rate
    ct, cc = rng.binomial(treated, q, 4_000) / treated, rng.binomial(control, p, 4_000) / control
    se = np.sqrt(ct * (1 - ct) / treated + cc * (1 - cc) / control)
    assert 0.78 <= np.mean((cc - ct) / se > 1.96) <= 0.87
    # groups scaled to the sizes it asks for give an interval of +-25 % of the saving
    bigger = val.power_analysis(power.treated_needed, power.control_needed, p - 0.01, p)
    saved = 0.01 * power.treated_needed
    assert bigger.half_width_saved / saved == pytest.approx(0.25, rel=0.01)
    assert power.control_needed > control  # +-25 % of a one-point effect needs more than this campaign had
    assert val.power_analysis(100, 0, 0.1, 0.1) is None
    assert val.power_analysis(100, 100, 0.12, 0.1).control_needed is None  # nothing saved: nothing to size on


def test_pooling_pulls_noisy_locations_towards_their_common_effect_and_covers_the_truth():
    rng = np.random.default_rng(3)
    true_effect = 0.03  # the same saving per treated customer everywhere: the raw spread is all noise
    frames = []
    for i in range(30):
        n_t, n_c = 150, 60
        frames.append(pd.DataFrame({
            "group": ["treatment"] * n_t + ["control"] * n_c,
            "churned": np.r_[rng.random(n_t) < 0.10 - true_effect, rng.random(n_c) < 0.10],
            "monthly_revenue": 40.0, "location_id": f"L{i:02d}", "tier": "one",
        }))  # fmt: skip
    outcomes = pd.concat(frames, ignore_index=True)
    table = val.recovery_frame(val.recovery_rows(outcomes, ("location_id", "tier"), n_boot=50, min_control=10,
                                                 min_churners=1))  # fmt: skip
    locations = table[table["segment"] == "location_id"]
    truth = true_effect * locations["treated"]
    raw_error = ((locations["saved_customers"] - truth) ** 2).mean()
    pooled_error = ((locations["pooled_saved"] - truth) ** 2).mean()
    assert pooled_error < 0.5 * raw_error, (pooled_error, raw_error)
    assert ((locations["pooled_low"] <= truth) & (truth <= locations["pooled_high"])).mean() >= 0.9
    assert locations["pooled_saved"].std() < locations["saved_customers"].std()
    assert table.loc[table["segment"] != "location_id", list(val.POOLED)].isna().all().all()  # overall; one tier
