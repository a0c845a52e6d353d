"""Quality floors on the shapes of business the pipeline must serve, each against its oracle (the true churn
probabilities the generator knows): a small business, and a retailer with only a transaction log."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.build import build_features, prepare
from pipelines.io.files import load_validated, tables_from
from pipelines.simulation.generate import write_synthetic
from pipelines.simulation.synthetic import SyntheticConfig
from pipelines.simulation.truth import load_truth
from pipelines.stages.train import run_training
from tests.builders import END, train_config

pytestmark = pytest.mark.slow
# Share of the oracle ROC AUC on 5,000 customers: measured 0.903 / 0.945 / 0.951 on seeds 11 / 12 / 13 since contacts
# have heterogeneous effects (0.930 / 0.959 / 0.941 before, when the floor was 0.93 and seed 11 sat on it), so about
# the mean less two standard deviations; the 40,000-customer default reaches 0.965.
SMALL_BUSINESS_FLOOR = 0.88
TRANSACTION_LOG_FLOOR = 0.72  # share of the oracle at finding real churners from purchases alone (measured 0.764)


def test_a_small_business_reaches_its_floor(tmp_path: Path):
    data, truth = tmp_path / "synthetic", tmp_path / "synthetic_truth"
    write_synthetic(SyntheticConfig(customers=5_000, seed=11), data, truth, None, 90)
    summary = run_training(
        train_config(data, **{"mlflow.experiment": "test-small", "mlflow.registered_model": "small-business"})
    )
    m = summary.metrics
    assert m["test_roc_auc"] >= SMALL_BUSINESS_FLOOR * m["oracle_roc_auc"], m
    assert m["test_ece"] <= 0.04, m


def test_a_transaction_log_finds_real_churners(default_dataset, tmp_path: Path):
    """Purchases only (no surveys, no churn events, no other touchpoints), trained on inactivity labels over every
    customer who signed up; judged on who really churned (which the pipeline never saw) against the oracle."""
    source, truth_dir, _ = default_dataset
    data = tmp_path / "transactions"
    data.mkdir()
    pd.read_parquet(source / "customers.parquet").to_parquet(data / "customers.parquet")
    interactions = pd.read_parquet(source / "interactions.parquet")
    interactions[interactions["type"] == "purchase"].to_parquet(data / "interactions.parquet")
    config = train_config(
        data,
        label="inactivity",
        truth=None,
        population={"active_within_days": None},
        as_of={"start": "2025-01-01", "end": "2026-04-01", "step_months": 3},  # fewer dates: a faster suite
        # 3 search trials, not 8: a faster suite (the floor is about the features; 3 and 8 both measured 0.764)
        **{"model.search": {"trials": 3}, "mlflow.experiment": "test-transactions"},
        **{"mlflow.registered_model": "transactions"},
    )
    run_training(config)

    model = mlflow.pyfunc.load_model("models:/transactions@challenger").unwrap_python_model()
    as_of = pd.Timestamp("2026-04-01")
    features = build_features(prepare(tables_from(load_validated(data, END)), model.feature_config), as_of)
    churn = pd.read_parquet(source / "churn_events.parquet").groupby("customer_id")["churn_date"].min()
    churned_at = features["customer_id"].map(churn)
    # The population the model scores: signed up before T; the truth removes those who had already churned.
    alive = ~(churned_at < as_of).to_numpy()
    rows = features[alive].reset_index(drop=True)
    y = ((churned_at[alive] >= as_of) & (churned_at[alive] < as_of + pd.Timedelta(days=90))).to_numpy()
    model_auc = roc_auc_score(y, model.predict_proba(rows))
    oracle_auc = roc_auc_score(y, load_truth(truth_dir).churn_probability(rows["customer_id"], as_of, 90))
    assert model_auc >= TRANSACTION_LOG_FLOOR * oracle_auc, (model_auc, oracle_auc)
