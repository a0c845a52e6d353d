"""The holdout every action list reserves (models.decisions): exact probabilities, balance, reproducibility."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.errors
import pytest

from models.decisions import Decisions, assign_holdout
from pipelines.io.decisions import decision_rows


def _scores(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "location_id": rng.choice([f"L{i}" for i in range(30)], n),
            "risk_tier": rng.choice(["high", "medium", "low"], n, p=[0.2, 0.3, 0.5]),
        }
    )


def test_every_selected_customer_is_held_out_with_exactly_the_share_even_in_small_strata():
    scores = _scores(300)  # 90 strata of about 3: a plain round() would hold out nobody
    selected = np.ones(len(scores), dtype=bool)
    held = np.mean(
        [
            assign_holdout(scores, selected, 0.1, pd.Timestamp("2026-01-01"), seed)[0] == "holdout"
            for seed in range(400)
        ],
        axis=0,
    )
    assert abs(held.mean() - 0.1) < 0.005
    assert np.all(np.abs(held - 0.1) < 0.1)  # each customer's own frequency near 10 % (200 draws)


def test_the_holdout_is_balanced_within_strata_reproducible_and_independent_of_row_order():
    scores = _scores()
    selected = np.random.default_rng(1).random(len(scores)) < 0.5
    group, probability = assign_holdout(scores, selected, 0.2, pd.Timestamp("2026-01-01"))
    assert set(group[~selected]) == {""} and np.isnan(probability[~selected]).all()
    assert (probability[selected] == 0.2).all()
    picked = scores[selected].assign(held=group[selected] == "holdout")
    per_stratum = picked.groupby(["location_id", "risk_tier"])["held"].agg(["sum", "size"])
    assert (np.abs(per_stratum["sum"] - 0.2 * per_stratum["size"]) < 1).all()  # floor(share x n + U): within one
    shuffled = scores.sample(frac=1, random_state=3)
    again, _ = assign_holdout(shuffled, selected[shuffled.index], 0.2, pd.Timestamp("2026-01-01"))
    assert (pd.Series(again, index=shuffled.index).sort_index().to_numpy() == group).all()
    other, _ = assign_holdout(scores, selected, 0.2, pd.Timestamp("2026-02-01"))
    assert (other != group).any()  # a new date draws a new holdout


def test_the_decision_log_schema_refuses_a_group_without_selection():
    scores = _scores(10).assign(
        as_of=pd.Timestamp("2026-01-01"), churn_probability=0.1, priority_rank=np.arange(1, 11), monthly_revenue=50.0,
        model_name="m", model_version="3", in_action_list=[True] * 5 + [False] * 5,
    )  # fmt: skip
    group, probability = assign_holdout(scores, scores["in_action_list"].to_numpy(), 0.2, pd.Timestamp("2026-01-01"))
    scores = scores.assign(assigned_group=group, assignment_probability=probability)
    rows = decision_rows(scores, "run1")
    assert rows["uplift"].isna().all() and rows["selected"].sum() == 5
    broken = rows.assign(assigned_group=["treatment"] * 10)
    with pytest.raises(pandera.errors.SchemaError):
        Decisions.validate(broken)


def test_customers_without_a_location_are_held_out_in_a_stratum_of_their_own():
    scores = _scores(200).astype({"location_id": object})
    scores.loc[:49, "location_id"] = None
    group, _ = assign_holdout(scores, np.ones(len(scores), dtype=bool), 0.5, pd.Timestamp("2026-01-01"))
    assert 10 <= (group[:50] == "holdout").sum() <= 40
