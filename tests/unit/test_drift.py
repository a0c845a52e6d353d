"""Drift checks (models/drift.py): flagged only beyond chance for the sample sizes and when the feature moves the
score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.feeds import feed_counts
from models.drift import FEED, MEAN, SCORE, DriftRule, build_reference, chance_threshold, drift_table, psi, shares


def _frame(n: int, seed: int, shift: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "important": rng.normal(shift, 1.0, n),
            "minor": rng.normal(shift, 1.0, n),
            "plan": rng.choice(["basic", "premium"], n),
        }
    )
    return X, 1 / (1 + np.exp(-(X["important"].to_numpy() - 3)))


IMPORTANCE = pd.Series({"important": 9.0, "minor": 0.05, "plan": 0.95})


def test_chance_threshold_falls_with_the_sample_sizes():
    small, large = chance_threshold(200, 200, 11, 0.001), chance_threshold(20_000, 20_000, 11, 0.001)
    assert small > 0.2 > large > 0  # 200 against 200: chance alone passes the practical 0.2
    assert chance_threshold(0, 100, 11, 0.001) == 0.0


def test_same_distribution_on_small_samples_is_not_flagged_though_psi_is_large():
    X_ref, s_ref = _frame(150, seed=1)
    reference = build_reference(X_ref, s_ref, ("plan",), IMPORTANCE, pd.Timestamp("2026-04-01"))
    flagged = []
    for seed in range(2, 12):
        X, s = _frame(150, seed=seed)
        table = drift_table(reference, X, s, DriftRule(psi_warning=0.1))
        flagged.append(int(table["flagged"].sum()))
        assert (table["threshold"] > 0.1).all()  # chance's threshold, above the practical one
    assert sum(flagged) <= 1  # at significance 0.001, ten runs of three checks and the score


def test_a_shift_is_flagged_where_it_moves_the_score_and_only_noted_where_it_does_not():
    X_ref, s_ref = _frame(5_000, seed=1)
    reference = build_reference(X_ref, s_ref, ("plan",), IMPORTANCE, pd.Timestamp("2026-04-01"))
    assert reference["rows"] == 5_000 and reference["as_of"] == "2026-04-01"
    assert reference["importance"]["important"] == pytest.approx(0.9)
    X, s = _frame(5_000, seed=2, shift=1.0)
    table = drift_table(reference, X, s).set_index("name")
    assert table.loc["important", "flagged"] and "moves the score" in table.loc["important", "note"]
    assert table.loc[SCORE, "flagged"] and "score's distribution moved" in table.loc[SCORE, "note"]
    minor = table.loc["minor"]
    assert minor["psi"] > minor["threshold"] and not minor["flagged"] and "barely moves the score" in minor["note"]
    assert not table.loc["plan", "flagged"] and table.loc["plan", "note"] == "stable"


def test_the_expected_churn_rate_is_flagged_when_it_moves_beyond_the_rule_and_chance():
    X_ref, s_ref = _frame(5_000, seed=1)
    reference = build_reference(X_ref, s_ref, ("plan",), IMPORTANCE)
    X, s = _frame(5_000, seed=2)
    for factor, flagged in ((1.0, False), (1.1, False), (1.4, True), (0.6, True)):
        table = drift_table(reference, X, s * factor).set_index("name")
        assert table.loc[MEAN, "flagged"] == flagged, factor
        assert table.loc[MEAN, "change"] == pytest.approx(s.mean() * factor / s_ref.mean() - 1)
    tiny = build_reference(X_ref.head(20), s_ref[:20], ("plan",), IMPORTANCE)
    table = drift_table(tiny, X.head(20), s[:20] * 1.4).set_index("name")
    assert not table.loc[MEAN, "flagged"]  # 40 % on 20 customers: within chance


def test_a_reference_without_sizes_or_importances_flags_on_the_practical_threshold():
    X_ref, s_ref = _frame(5_000, seed=1)
    old = build_reference(X_ref, s_ref, ("plan",))  # as models trained before sizes and importances were stored
    for key in ("rows", "score_mean", "score_std"):
        old.pop(key)
    X, s = _frame(5_000, seed=2, shift=1.0)
    table = drift_table(old, X, s, DriftRule(psi_warning=0.2)).set_index("name")
    assert (table["threshold"] == 0.2).all() and MEAN not in table.index
    assert table.loc["minor", "flagged"] == (table.loc["minor", "psi"] > 0.2)


def test_psi_of_identical_shares_is_zero_and_grows_with_the_shift():
    X_ref, s_ref = _frame(2_000, seed=1)
    reference = build_reference(X_ref, s_ref, ("plan",))["features"]["important"]
    same = psi(reference["expected"], shares(reference, X_ref["important"]))
    assert same == pytest.approx(0.0, abs=1e-12)
    moved = [
        psi(reference["expected"], shares(reference, _frame(2_000, 3, shift)[0]["important"])) for shift in (0.2, 1.0)
    ]
    assert 0 < moved[0] < moved[1]


def test_a_model_without_a_reference_gives_an_empty_table_with_every_column():
    from types import SimpleNamespace

    from pipelines.config import ScoreConfig
    from pipelines.stages.score import _drift

    X, s = _frame(300, seed=1)
    full = drift_table(build_reference(X, s, ("plan",), IMPORTANCE), X, s)
    empty = _drift(ScoreConfig(), SimpleNamespace(model=SimpleNamespace(reference={})), X, pd.DataFrame(), {})
    assert empty.empty and set(empty.columns) == set(full.columns)  # what the run's metrics read is there


def _events(n_customers: int, per_customer: dict[str, float], as_of: pd.Timestamp, seed: int) -> pd.DataFrame:
    """Feedback rows over the 60 days before ``as_of``: each survey at its rate per customer per 30 days."""
    rng = np.random.default_rng(seed)
    rows = [
        (survey, as_of - pd.Timedelta(seconds=int(rng.integers(1, 60 * 86_400))))
        for survey, rate in per_customer.items()
        for _ in range(rng.poisson(2 * rate * n_customers))
    ]
    return pd.DataFrame(rows, columns=["survey", "timestamp"])


def test_a_stopped_feed_is_flagged_whatever_its_importance_and_a_steady_one_is_not():
    as_of = pd.Timestamp("2026-04-01")
    X_ref, s_ref = _frame(2_000, seed=1)
    before = feed_counts({"feedback": _events(2_000, {"NPS": 0.3, "CSAT": 0.2, "CES": 0.005}, as_of, 1)}, as_of)
    assert set(before) == {"feedback:NPS", "feedback:CSAT", "feedback:CES"}  # only the 30 days before are counted
    reference = build_reference(X_ref, s_ref, ("plan",), IMPORTANCE, as_of, before, 30)
    later = as_of + pd.Timedelta(days=90)
    X, s = _frame(2_500, seed=2)  # more customers: rates are per customer
    now = feed_counts({"feedback": _events(2_500, {"NPS": 0.3, "CSAT": 0.05}, later, 2)}, later)
    table = drift_table(reference, X, s, DriftRule(), now).set_index("name")
    assert (
        table.loc[f"{FEED}feedback:CSAT", "flagged"]
        and "stopped or thinned" in table.loc[f"{FEED}feedback:CSAT", "note"]
    )
    assert table.loc[f"{FEED}feedback:CSAT", "change"] == pytest.approx(-0.75, abs=0.1)
    assert not table.loc[f"{FEED}feedback:NPS", "flagged"]
    assert f"{FEED}feedback:CES" not in table.index  # too thin at the reference (about 10 rows) to judge
    # the same fall on a handful of customers is within chance
    tiny = build_reference(X_ref.head(40), s_ref[:40], ("plan",), IMPORTANCE, as_of, {"feedback:CSAT": 32}, 30)
    small = drift_table(tiny, X.head(40), s[:40], DriftRule(), {"feedback:CSAT": 14}).set_index("name")
    assert not small.loc[f"{FEED}feedback:CSAT", "flagged"]
    # without counts (a reference trained before feeds were stored, or batches) there is no feed check
    assert not drift_table(reference, X, s).name.str.startswith(FEED).any()
