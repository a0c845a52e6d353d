"""The regression-adjusted recovery (models.adjustment): unbiased, narrower with a prognostic score, plain without."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import adjustment as adj
from models import value as val


def _campaign(rng: np.random.Generator, n: int = 3000, effect: float = 0.25) -> tuple[pd.DataFrame, float]:
    """A randomised campaign (70 % treated) whose churn risk a score knows before the contact, and its true net saves:
    each customer's uniform draw decides both potential outcomes, as the generator's threshold does."""
    risk = rng.beta(0.5, 4, n)  # spread out: the score explains much of who churns
    treated = rng.random(n) < 0.7
    u = rng.random(n)
    churn_if_not, churn_if_contacted = u < risk, u < risk * (1 - effect)
    frame = pd.DataFrame(
        {
            "group": np.where(treated, "treatment", "control"),
            "churned": np.where(treated, churn_if_contacted, churn_if_not),
            "monthly_revenue": 50.0,
            adj.PROGNOSTIC: risk,
        }
    )
    return frame, float((churn_if_not & ~churn_if_contacted)[treated].sum())


def test_the_adjusted_saving_is_unbiased_and_its_interval_narrower_and_still_covering():
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(100):
        frame, truth = _campaign(rng)
        r = val.measure_recovery(frame, n_boot=200, seed=int(rng.integers(1 << 30)), adjustment="test")
        rows.append((r.saved_customers, r.saved_low, r.saved_high, r.unadjusted_saved_low, r.unadjusted_saved_high,
                     r.unadjusted_saved_customers, truth))  # fmt: skip
    est, low, high, plain_low, plain_high, plain, truth = np.array(rows).T
    error = est - truth
    assert abs(error.mean()) <= 3 * error.std(ddof=1) / np.sqrt(len(error))
    assert ((low <= truth) & (truth <= high)).mean() >= 0.9
    assert (high - low).mean() < 0.95 * (plain_high - plain_low).mean()
    assert error.std() < (plain - truth).std()  # the estimate itself is less noisy, not only its interval


def test_without_a_score_or_with_a_constant_one_the_saving_is_the_plain_difference():
    frame, _ = _campaign(np.random.default_rng(1))
    plain = val.measure_recovery(frame.drop(columns=adj.PROGNOSTIC), n_boot=200)
    assert plain.adjustment == "" and plain.saved_customers == plain.unadjusted_saved_customers
    assert (plain.saved_low, plain.saved_high) == (plain.unadjusted_saved_low, plain.unadjusted_saved_high)
    flat = val.measure_recovery(frame.assign(**{adj.PROGNOSTIC: 0.1}), n_boot=200, adjustment="flat")
    assert flat.saved_customers == pytest.approx(plain.saved_customers)
    assert flat.saved_low == pytest.approx(plain.saved_low) and flat.adjustment == "flat"


def test_segments_are_adjusted_with_the_overall_control_slope_and_pooled_on_the_adjusted_figures():
    frame, _ = _campaign(np.random.default_rng(2), n=6000)
    frame["location_id"] = np.random.default_rng(3).choice(["a", "b", "c", "d"], len(frame))
    rows = val.recovery_rows(frame, ("location_id",), n_boot=200, adjustment="test")
    control = frame[frame["group"] == "control"]
    slope = adj.control_slope(control["churned"].to_numpy(float), control[adj.PROGNOSTIC].to_numpy())
    for row in rows[1:]:
        g = frame[frame["location_id"] == row.value]
        t, c = g[g["group"] == "treatment"], g[g["group"] == "control"]
        expected = (c["churned"].mean() + slope * (t[adj.PROGNOSTIC].mean() - c[adj.PROGNOSTIC].mean())
                    - t["churned"].mean()) * len(t)  # fmt: skip
        assert row.saved_customers == pytest.approx(expected) and row.adjustment == "test"
    table = val.recovery_frame(rows)
    assert table["pooled_saved"].iloc[1:].notna().all()


def test_pre_period_dates_close_their_label_windows_before_the_first_action():
    first = pd.Timestamp("2025-07-01")
    dates = adj.pre_period_dates(first, 90, 6)
    assert len(dates) == 6 and dates == sorted(dates, reverse=True)
    assert all(d + pd.Timedelta(days=90) <= first for d in dates)


def test_cross_fitted_scores_never_come_from_a_model_that_saw_the_customer():
    """A customer's outcome is noise the features cannot predict, repeated on each of their rows: a model that saw
    the customer would score their rows by memory; out of fold by customer it cannot."""
    rng = np.random.default_rng(4)
    customers = np.repeat([f"C{i}" for i in range(1500)], 2)
    x = np.repeat(rng.normal(size=1500), 2)  # one feature, the same on both of a customer's rows
    churned = np.repeat(rng.random(1500) < 0.3, 2)
    features = pd.DataFrame({"customer_id": customers, "as_of": pd.Timestamp("2025-01-01"), "x": x})
    score = adj.cross_fitted(features, churned, folds=5)
    assert np.isfinite(score).all()
    auc = pd.Series(score).groupby(churned).mean()
    assert abs(auc[True] - auc[False]) < 0.03  # nothing learnt from the customer's own outcome


# --- what a save is worth -------------------------------------------------------------------------------------------
def test_kaplan_meier_by_hand():
    """Durations 2, 3+, 4, 4, 5+ (+: censored): S = 4/5 after 2, then x 1/3 at 4 (three at risk, two leave)."""
    times, s = val.kaplan_meier(np.array([2, 3, 4, 4, 5]), np.array([True, False, True, True, False]))
    np.testing.assert_allclose(times, [2, 4])
    np.testing.assert_allclose(s, [0.8, 0.8 / 3])


def test_the_value_of_a_save_follows_a_constant_hazard_past_the_longest_follow_up():
    """Exponential lifetimes (half leave within about 17 months), followed for at most 200 days: the expected paying
    months over 12, and over 60 discounted, match the closed form; without re-churn a save is worth all 12."""
    rng = np.random.default_rng(5)
    rate = np.log(2) / (17 * val.DAYS_PER_MONTH)
    life, follow = rng.exponential(1 / rate, 40_000), rng.uniform(0, 200, 40_000)
    followed = pd.DataFrame({"group": "treatment", "duration": np.minimum(life, follow), "rechurned": life <= follow})
    worth = val.save_value(followed, months=12, lifetime_months=60, discount_rate=0.1)
    m = np.arange(60)
    survival = np.exp(-rate * m * val.DAYS_PER_MONTH)
    assert worth.retained_months == pytest.approx(survival[:12].sum(), rel=0.01)
    assert worth.lifetime_months == pytest.approx(np.sum(survival / 1.1 ** (m / 12)), rel=0.03)
    assert worth.retained_months < 12 and worth.observed_days <= 200
    stayed = followed.assign(rechurned=False)
    assert val.save_value(stayed, months=12).retained_months == pytest.approx(12.0)


def test_follow_up_starts_at_the_window_end_and_counts_only_churn_after_it():
    outcomes = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "action_date": pd.to_datetime(["2025-01-01"] * 4),
            "group": ["treatment", "treatment", "control", "treatment"],
            "churned": [False, False, False, True],
        }
    )
    churn = pd.DataFrame(
        {  # b churned once before the action and came back: an earlier churn is not a churn after the window
            "customer_id": ["a", "d", "b"],
            "churn_date": pd.to_datetime(["2025-05-01", "2025-02-01", "2024-06-01"]),
        }
    )
    got = val.follow_up(outcomes, churn, 90, pd.Timestamp("2025-06-30"))
    start = pd.Timestamp("2025-01-01") + pd.Timedelta(days=90)
    assert got["group"].tolist() == ["treatment", "treatment", "control"]  # d churned in the window: not followed
    assert got["rechurned"].tolist() == [True, False, False]
    np.testing.assert_allclose(got["duration"], [(pd.Timestamp("2025-05-01") - start).days,
                                                 *[(pd.Timestamp("2025-07-01") - start).days] * 2])  # fmt: skip
