"""Transaction-log features and the BG/NBD model: hand-computed values, point-in-time property, parameter recovery."""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, special, stats

import features.transactions as tx
from features import names
from features.build import Tables, build_features, prepare
from features.config import FeatureConfig
from features.transactions import BGNBDParams
from tests.builders import make_tables

T = pd.Timestamp("2025-07-01")
DAY = pd.Timedelta(days=1)
TRUE = BGNBDParams(r=0.8, alpha=40.0, a=0.6, b=3.0)  # days: one purchase every ~50 days, 17 % drop out after each


@pytest.fixture
def shop() -> Tables:
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "signup_date": ["2024-01-01", "2025-01-01", "2025-06-01"],
            "monthly_revenue": [0.0, 0.0, 0.0],
        }
    )
    purchases = [
        ("a", "2024-06-01 00:00", 50.0),  # 395 days before T: outside the 365-day window
        ("a", "2025-03-01 00:00", 40.0),  # 122 days before T
        ("a", "2025-06-20 00:00", 30.0),
        ("a", "2025-06-30 10:00", 20.0),
        ("a", "2025-06-30 15:00", 10.0),  # same day: one purchase day, two receipts
        ("a", "2025-07-01 00:00", 99.0),  # at T: not seen
        ("b", "2025-05-01 09:00", 5.0),
        ("b", "2025-05-01 18:00", 7.0),
    ]
    interactions = pd.DataFrame(
        {
            "customer_id": [c for c, _, _ in purchases] + ["a", "c"],
            "timestamp": [ts for _, ts, _ in purchases] + ["2025-06-25", "2025-06-10"],
            "channel": "store",
            "type": ["purchase"] * len(purchases) + ["login", "login"],
            "value": [v for _, _, v in purchases] + [1.0, 1.0],
        }
    )
    return make_tables(customers, interactions)


def test_purchase_features_by_hand(shop):
    f = build_features(shop, T, FeatureConfig()).set_index("customer_id")
    a = f.loc["a"]
    # purchase days of a before T: 2024-06-01, 2025-03-01, 2025-06-20, 2025-06-30
    assert (a["purchase_days_90d"], a["purchase_days_180d"], a["purchase_days_365d"], a["purchase_days_total"]) == (
        2,
        3,
        3,
        4,
    )
    assert (a["purchase_value_90d"], a["purchase_value_180d"], a["purchase_value_365d"]) == (60.0, 100.0, 100.0)
    assert a["purchase_value_mean"] == pytest.approx(150 / 5)  # per receipt, the 99 at T excluded
    assert a["days_since_first_purchase"] == pytest.approx(395.0)
    assert a["days_since_last_purchase"] == pytest.approx(9 / 24)  # 2025-06-30 15:00
    gap = (pd.Timestamp("2025-06-30") - pd.Timestamp("2024-06-01")).days / 3  # mean of 273, 111 and 10 days
    assert a["purchase_gap_mean_days"] == pytest.approx(gap)
    assert a["purchase_recency_vs_gap"] == pytest.approx((9 / 24) / gap)

    b = f.loc["b"]  # one purchase day, two receipts
    assert b["purchase_days_total"] == 1 and b["purchase_days_90d"] == 1 and b["purchase_value_90d"] == 12.0
    assert b["purchase_value_mean"] == 6.0
    assert np.isnan(b["purchase_gap_mean_days"]) and np.isnan(b["purchase_recency_vs_gap"])

    c = f.loc["c"]  # logins only
    assert c["purchase_days_total"] == 0 and c["purchase_value_365d"] == 0
    for col in (
        "purchase_value_mean",
        "days_since_first_purchase",
        "days_since_last_purchase",
        "btyd_p_alive",
        "btyd_expected_purchases_90d",
    ):
        assert np.isnan(c[col]), col
    # Three customers are too few to fit a BG/NBD: NaN, not a guess.
    assert f["btyd_p_alive"].isna().all()


def test_btyd_features_use_the_given_parameters(shop):
    """With parameters (say, the whole base's), P(alive) and the expectation follow the closed forms."""
    p = replace(prepare(shop, FeatureConfig(btyd_horizon_days=30)), btyd_params={T: TRUE})
    f = build_features(p, T).set_index("customer_id")
    assert f.loc["b", "btyd_p_alive"] == 1.0  # no repeat purchase: alive by the model's construction
    # a: x = 3 repeat days, t_x = 394 days, T = 395 days since the first purchase day
    r, alpha, a_, b_ = TRUE.r, TRUE.alpha, TRUE.a, TRUE.b
    odds = a_ / (b_ + 3 - 1) * ((alpha + 395) / (alpha + 394)) ** (r + 3)
    assert f.loc["a", "btyd_p_alive"] == pytest.approx(1 / (1 + odds), rel=1e-12)
    want = tx.expected_purchases(TRUE, 30.0, np.array([3.0]), np.array([394.0]), np.array([395.0]))[0]
    assert f.loc["a", "btyd_expected_purchases_30d"] == pytest.approx(want, rel=1e-12) and want > 0
    assert np.isnan(f.loc["c", "btyd_expected_purchases_30d"])


def test_purchase_types_and_windows_are_configurable(shop):
    config = FeatureConfig(purchase_types=("purchase", "login"), transaction_windows_days=(7, 30))
    f = build_features(shop, T, config).set_index("customer_id")
    assert {"purchase_days_7d", "purchase_days_30d"} <= set(f.columns) and "purchase_days_365d" not in f
    assert f.loc["a", "purchase_days_7d"] == 2  # the 06-25 login now counts as a purchase day
    assert f.loc["c", "purchase_days_total"] == 1
    # switched off, none of the transaction features is built (days_since_first_purchase included)
    transaction_features = {f.name for f in names.purchase_features(FeatureConfig())}
    assert not transaction_features & set(build_features(shop, T, FeatureConfig(purchase_types=())).columns)


@pytest.mark.parametrize(
    "bad",
    [
        {"purchase_types": ("refund",)},
        {"transaction_windows_days": ()},
        {"transaction_windows_days": (365, 90)},
        {"btyd_horizon_days": 0},
        {"btyd_fit_customers": 10},
    ],
)
def test_config_rejects_bad_transaction_settings(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        FeatureConfig(**bad)


def test_blocked_scan_gives_the_same_features(shop):
    p = prepare(shop, FeatureConfig())
    rows = np.arange(len(p.customers))
    t = int(T.to_datetime64().astype("datetime64[us]").astype(np.int64))
    whole = tx.purchase_features(p.interactions, len(p.customers), rows, t, p.config, params=TRUE)
    blocked = tx.purchase_features(p.interactions, len(p.customers), rows, t, p.config, block=3, params=TRUE)
    for name, values in whole.items():
        np.testing.assert_array_equal(values, blocked[name], err_msg=name)


# --- BG/NBD ---------------------------------------------------------------------------------------


def simulate_bgnbd(params: BGNBDParams, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) of ``n`` customers drawn from the BG/NBD, each observed for 200-700 days after a first purchase."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(params.r, 1 / params.alpha, n)
    dropout = rng.beta(params.a, params.b, n)
    age = rng.uniform(200, 700, n)
    x, t_x, now = np.zeros(n), np.zeros(n), np.zeros(n)
    going = np.ones(n, dtype=bool)
    while going.any():
        i = np.flatnonzero(going)
        now[i] += rng.exponential(1 / rate[i])
        seen = now[i] < age[i]
        x[i[seen]] += 1
        t_x[i[seen]] = now[i[seen]]
        # after each repeat purchase the customer drops out with probability p
        going[i] = seen & (rng.random(i.size) >= dropout[i])
    return x, t_x, age


@cache
def simulated() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return simulate_bgnbd(TRUE, 20_000, seed=1)


def test_bgnbd_recovers_the_parameters_it_was_simulated_with():
    fit = tx.fit_bgnbd(tx.calibration(*simulated()))
    assert fit is not None
    for name in ("r", "alpha", "a", "b"):
        assert getattr(fit, name) == pytest.approx(getattr(TRUE, name), rel=0.1), name
    # Identified far better than the parameters one by one: the mean purchase rate and mean dropout probability.
    assert fit.r / fit.alpha == pytest.approx(TRUE.r / TRUE.alpha, rel=0.05)
    assert fit.a / (fit.a + fit.b) == pytest.approx(TRUE.a / (TRUE.a + TRUE.b), rel=0.05)


def test_bgnbd_fit_depends_on_the_customers_not_their_order_or_partition():
    x, t_x, age = simulated()
    whole = tx.calibration(x, t_x, age)
    order = np.random.default_rng(0).permutation(x.size)
    parts = [tx.calibration(x[i], t_x[i], age[i]) for i in np.array_split(order, 3)]
    pooled = tx.pool_calibrations(parts)
    for name in ("x", "t_x", "age", "count"):
        np.testing.assert_array_equal(getattr(pooled, name), getattr(whole, name))
    assert tx.fit_bgnbd(pooled) == tx.fit_bgnbd(whole)
    # A capped fit draws a seeded sample: the same every time, close to the full fit.
    capped = tx.fit_bgnbd(whole, max_customers=8_000)
    assert capped == tx.fit_bgnbd(pooled, max_customers=8_000)
    assert capped.r / capped.alpha == pytest.approx(TRUE.r / TRUE.alpha, rel=0.1)


def test_log_likelihood_matches_the_paper_and_its_gradient_is_exact():
    """Eq. (6) of Fader, Hardie & Lee (2005) computed as printed, against the overflow-safe form and the fit's
    objective."""
    x, t_x, age = np.array([0.0, 1, 4, 12]), np.array([0.0, 30, 200, 350]), np.array([100.0, 90, 400, 360])
    r, alpha, a, b = TRUE.r, TRUE.alpha, TRUE.a, TRUE.b
    common = np.exp(special.gammaln(r + x) - special.gammaln(r)) * alpha**r
    paper = np.exp(special.betaln(a, b + x) - special.betaln(a, b)) * common / (alpha + age) ** (r + x)
    paper += (
        (x > 0)
        * np.exp(special.betaln(a + 1, np.maximum(b + x - 1, 1e-9)) - special.betaln(a, b))
        * common
        / (alpha + t_x) ** (r + x)
    )
    np.testing.assert_allclose(tx.bgnbd_log_likelihood(TRUE, x, t_x, age), np.log(paper), rtol=1e-12)

    weights = np.array([3.0, 1, 2, 5])
    objective = tx._NegativeLogLikelihood(x, t_x, age, weights)
    theta = np.log([r, alpha, a, b])
    value, gradient = objective(theta)
    assert value == pytest.approx(-np.average(np.log(paper), weights=weights), rel=1e-12)
    numeric = optimize.approx_fprime(theta, lambda th: objective(th)[0], 1e-7)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-7)


def test_p_alive_identities():
    x = np.array([0.0, 0.0, 3.0, 3.0, 3.0])
    t_x = np.array([0.0, 0.0, 100.0, 100.0, 300.0])
    age = np.array([10.0, 500.0, 120.0, 400.0, 400.0])
    alive = tx.p_alive(TRUE, x, t_x, age)
    assert alive[0] == alive[1] == 1.0  # no repeat purchase: the model has had no chance to drop the customer
    assert alive[2] > alive[3]  # the same history, a longer silence since
    assert alive[4] > alive[3]  # a later last purchase
    assert ((alive > 0) & (alive <= 1)).all()


def test_expected_purchases_reproduce_the_papers_worked_example():
    """Fader, Hardie & Lee (2005), CDNOW in weeks: x = 2, t_x = 30.43, T = 38.86 expects 1.226 purchases in 39 weeks."""
    cdnow = BGNBDParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
    got = tx.expected_purchases(cdnow, 39.0, np.array([2.0]), np.array([30.43]), np.array([38.86]))
    assert got[0] == pytest.approx(1.226, abs=5e-4)


@pytest.mark.parametrize("params", [TRUE, BGNBDParams(r=2.0, alpha=70.0, a=1.8, b=7.5)])
def test_expected_purchases_match_a_direct_integral(params):
    """E[Y(t)] = P(alive) * E over the posterior Beta(a, b+x) of (1 - ((alpha+T)/(alpha+T+p t))^(r+x)) / p."""
    horizon = 90.0
    x, t_x, age = np.array([0.0, 2.0, 10.0]), np.array([0.0, 150.0, 300.0]), np.array([60.0, 365.0, 320.0])
    got = tx.expected_purchases(params, horizon, x, t_x, age)
    alive = tx.p_alive(params, x, t_x, age)
    for i in range(3):
        posterior = stats.beta(params.a, params.b + x[i])
        rx, base = params.r + x[i], params.alpha + age[i]

        def integrand(p, rx=rx, base=base, posterior=posterior):
            return posterior.pdf(p) * -np.expm1(rx * np.log(base / (base + p * horizon))) / p

        inner, _ = integrate.quad(integrand, 0, 1, limit=200, epsabs=1e-12, epsrel=1e-10)
        assert got[i] == pytest.approx(alive[i] * inner, rel=1e-6)


def test_a_failed_fit_logs_a_warning_and_leaves_nan(monkeypatch, caplog):
    def failing(*args, **kwargs):
        return optimize.OptimizeResult(
            success=False, x=np.zeros(4), fun=np.nan, jac=np.ones(4), message="forced failure"
        )

    monkeypatch.setattr(tx.optimize, "minimize", failing)
    x, t_x, age = simulated()
    with caplog.at_level(logging.WARNING, logger="features.transactions"):
        assert tx.fit_bgnbd(tx.calibration(x, t_x, age)) is None
    assert "did not converge" in caplog.text


# --- point in time --------------------------------------------------------------------------------

N_CUSTOMERS = 120
AS_OF = pd.Timestamp("2026-01-01")


@cache
def purchase_log() -> Tables:
    """120 customers buying at their own pace for two years up to AS_OF, some of them stopping, and a year after it."""
    rng = np.random.default_rng(5)
    ids = [f"C{i:03d}" for i in range(N_CUSTOMERS)]
    start = AS_OF - pd.Timedelta(days=730)
    rows = []
    for i, cid in enumerate(ids):
        stop = rng.uniform(100, 1100)  # days after start; > 730 is "still buying at AS_OF"
        day = rng.uniform(0, 60)
        while day < min(stop, 1095):
            rows.append((cid, start + pd.Timedelta(days=day), "store", "purchase", float(rng.gamma(2, 15))))
            day += rng.exponential(rng.uniform(5, 60))
        if i % 4 == 0:
            rows.append((cid, start + pd.Timedelta(days=rng.uniform(0, 1095)), "web", "login", 0.0))
    customers = pd.DataFrame({"customer_id": ids, "signup_date": start - DAY, "monthly_revenue": 0.0})
    interactions = pd.DataFrame(rows, columns=["customer_id", "timestamp", "channel", "type", "value"])
    return make_tables(customers, interactions)


def transaction_features(tables: Tables) -> pd.DataFrame:
    f = build_features(prepare(tables, FeatureConfig()), AS_OF)
    cols = [
        "customer_id",
        *(
            c
            for c in f.columns
            if c.startswith(("purchase_", "days_since_first_purchase", "days_since_last_purchase", "btyd_"))
        ),
    ]
    return f[cols].sort_values("customer_id", ignore_index=True)


@st.composite
def future_changes(draw):
    """Purchases (or other events) to add at or after AS_OF, and a seed choosing later rows to move or drop."""
    added = [
        (
            draw(st.integers(0, N_CUSTOMERS - 1)),
            draw(st.integers(0, 400 * 86_400)),
            draw(st.sampled_from(["purchase", "login"])),
            draw(st.floats(0, 1e4)),
        )
        for _ in range(draw(st.integers(0, 20)))
    ]
    return added, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=30, deadline=None)
@given(changes=future_changes())
def test_rows_at_or_after_as_of_never_change_transaction_features(changes):
    added, seed = changes
    tables = purchase_log()
    frame = tables.interactions
    rng = np.random.default_rng(seed)
    late = frame["timestamp"] >= AS_OF
    kept = frame.loc[~(late & (rng.random(len(frame)) < 0.3))].copy()
    move = (kept["timestamp"] >= AS_OF) & (rng.random(len(kept)) < 0.3)
    kept.loc[move, "timestamp"] = AS_OF + pd.to_timedelta(rng.integers(0, 300 * 86_400, int(move.sum())), unit="s")
    kept.loc[kept["timestamp"] >= AS_OF, "value"] *= 3  # amounts after T change too
    new = pd.DataFrame(
        [
            (tables.customers["customer_id"].iloc[c], AS_OF + pd.Timedelta(seconds=s), "store", ty, v)
            for c, s, ty, v in added
        ],
        columns=frame.columns,
    ).astype({"timestamp": "datetime64[us]"})
    changed = replace(tables, interactions=pd.concat([kept, new], ignore_index=True) if len(new) else kept)
    pd.testing.assert_frame_equal(transaction_features(changed), transaction_features(tables))


def test_point_in_time_property_can_fail():
    """The property above would hold for constant features: a purchase just before AS_OF moves them, BG/NBD included."""
    tables = purchase_log()
    before = transaction_features(tables)
    assert before["btyd_p_alive"].notna().sum() > 100 and before["btyd_p_alive"].nunique() > 50
    extra = pd.DataFrame(
        [("C000", AS_OF - pd.Timedelta(hours=1), "store", "purchase", 10.0)], columns=tables.interactions.columns
    )
    after = transaction_features(
        replace(tables, interactions=pd.concat([tables.interactions, extra], ignore_index=True))
    )
    changed = [c for c in before.columns[1:] if not np.allclose(before[c], after[c], equal_nan=True, rtol=0, atol=0)]
    assert {"purchase_days_90d", "days_since_last_purchase", "btyd_p_alive", "btyd_expected_purchases_90d"} <= set(
        changed
    )


def test_partitions_scored_with_pooled_parameters_match_the_whole_run():
    """Customer buckets pool their calibrations, fit once and pass the parameters: the features of the whole run."""
    tables = purchase_log()
    config = FeatureConfig()
    whole = build_features(prepare(tables, config), AS_OF)
    ids = tables.customers["customer_id"]
    buckets = [ids[ids.str[-1].astype(int) % 2 == k] for k in (0, 1)]
    parts = [
        prepare(
            replace(
                tables,
                customers=tables.customers[ids.isin(b)],
                interactions=tables.interactions[tables.interactions["customer_id"].isin(b)],
            ),
            config,
        )
        for b in buckets
    ]
    pooled = tx.pool_calibrations(
        [tx.purchase_calibration(p.interactions, len(p.customers), AS_OF, config) for p in parts]
    )
    params = tx.fit_bgnbd(pooled, config.btyd_fit_customers)
    merged = pd.concat(
        [build_features(replace(p, btyd_params={AS_OF: params}), AS_OF) for p in parts], ignore_index=True
    )
    merged = merged.sort_values("customer_id", ignore_index=True)
    pd.testing.assert_frame_equal(merged, whole.sort_values("customer_id", ignore_index=True))
