"""The policy-value interval (models.uplift.policy_value) against the generator's truth over 20 seeds (slow)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.uplift import policy_value
from pipelines.simulation.generate import write_synthetic
from pipelines.simulation.synthetic import SyntheticConfig
from pipelines.simulation.truth import load_truth

SEEDS = range(20)


def _campaigns(root, seed: int) -> pd.DataFrame:
    """Every contact decision with a full 90-day window of a small generated dataset, with both potential outcomes."""
    config = SyntheticConfig(customers=3_000, months=12, seed=seed)
    write_synthetic(config, root / "data", root / "truth", None, 90)
    actions = load_truth(root / "truth").actions
    end = pd.Timestamp(config.end_date) - pd.Timedelta(days=89)
    return actions[actions["action_date"] <= end].reset_index(drop=True)


@pytest.mark.slow
def test_policy_value_interval_covers_the_true_saves_in_most_seeds(tmp_path):
    """A policy that contacts the riskiest 30 % of each campaign (by the true churn probability without contact: it
    never looks at outcomes): its estimated saves on the logged campaigns against the truth's net saves."""
    covered = {"ipw": 0, "doubly robust": 0}
    for seed in SEEDS:
        a = _campaigns(tmp_path / str(seed), seed)
        rank = a.groupby("action_date")["p_churn_if_not_contacted"].rank(ascending=False, pct=True)
        selected = (rank <= 0.3).to_numpy()
        treated = (a["group"] == "treatment").to_numpy()
        propensity = a.assign(t=treated).groupby("action_date")["t"].transform("mean").to_numpy()
        net = a["churned_within_90d_if_not_contacted"].astype(float) - a["churned_within_90d_if_contacted"]
        truth = float(net[selected].sum())
        models = (a["p_churn_if_not_contacted"].to_numpy(), a["p_churn_if_contacted"].to_numpy())
        for name, outcome_models in (("ipw", None), ("doubly robust", models)):
            ci = policy_value(a["churned_within_90d"], treated, selected, propensity, outcome_models)
            covered[name] += ci.low <= truth <= ci.high
    for name, n in covered.items():
        assert n >= 0.9 * len(SEEDS), f"{name}: the 95 % interval covered the true saves in {n} of {len(SEEDS)} seeds"
    assert np.isfinite(truth)
