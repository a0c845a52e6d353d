"""The built-in generator: valid under the contract, deterministic, and as hard as real churn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.contract import validate_dataset
from pipelines.io.files import read_dataset
from pipelines.simulation.synthetic import SyntheticConfig, generate
from pipelines.simulation.truth import load_truth


def test_generated_data_passes_the_contract(small_dataset):
    data, _, _ = small_dataset
    dataset = read_dataset(data)
    raw, sources = dataset.tables, dataset.sources
    r = validate_dataset(raw, sources, end_date=pd.Timestamp("2026-06-30"))
    assert r.quarantined_rows == 0
    assert set(r.tables) == {"customers", "interactions", "feedback", "churn_events", "retention_actions"}


def test_deterministic_for_a_seed():
    a = next(generate(SyntheticConfig(customers=300, months=6, seed=11)))
    b = next(generate(SyntheticConfig(customers=300, months=6, seed=11)))
    c = next(generate(SyntheticConfig(customers=300, months=6, seed=12)))
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    np.testing.assert_array_equal(a.cum_hazard, b.cum_hazard)
    assert not a.tables["interactions"].equals(c.tables["interactions"])


def test_truth_is_consistent_with_the_data(small_dataset):
    data, truth_dir, _ = small_dataset
    truth = load_truth(truth_dir)
    churn = pd.read_parquet(data / "churn_events.parquet")
    # every churn in the data is where the cumulative hazard crossed the threshold
    churned = truth.customers[truth.customers["churn_day"] >= 0]
    assert len(churned) == len(churn)
    # no treated customer churns in the untreated world later than in the treated one
    untreated = truth.customers["churn_day_if_never_contacted"].replace(-1, 10**9)
    observed = truth.customers["churn_day"].replace(-1, 10**9)
    assert (untreated <= observed).all()
    assert not truth.actions.loc[truth.actions["group"] == "control", "saved"].any()
    p = truth.churn_probability(truth.customers["customer_id"], truth.start + pd.Timedelta(days=100), 90)
    assert ((p >= 0) & (p <= 1)).all()


@pytest.mark.slow
def test_default_data_is_as_hard_as_real_churn(default_dataset):
    """The realism targets of the developers' guide, at default settings."""
    _, _, s = default_dataset
    assert 0.01 <= s["monthly_churn_rate"] <= 0.03
    assert 0.04 <= s["label_prevalence"] <= 0.10
    assert 0.80 <= s["oracle_roc_auc"] <= 0.90
    assert s["share_never_answered_a_survey"] > 0.5
    assert 0.10 <= s["save_rate_among_treated_who_would_churn"] <= 0.30
