"""Drift checks (models/drift.py): flagged only beyond chance for the sample sizes and when the feature moves the
score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.drift import MEAN, SCORE, DriftRule, build_reference, chance_threshold, drift_table, psi, shares


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
    empty = _drift(ScoreConfig(), SimpleNamespace(model=SimpleNamespace(reference={})), X, pd.DataFrame())
    assert empty.empty and set(empty.columns) == set(full.columns)  # what the run's metrics read is there
