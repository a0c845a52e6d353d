"""Real data: IBM's Telco customer table (a static extract with a churn flag) converted into the contract and
trained."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from pipelines.extracts.telco import EXTRACT_DATE, HORIZON_DAYS, SOURCE_SHA256, convert, sha256

ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = [
    Path(os.environ["CHURN_TELCO_CSV"]) if os.environ.get("CHURN_TELCO_CSV") else None,
    ROOT.parent / "shared" / "data" / "telco" / "Telco-Customer-Churn.csv",
    Path("/work/shared/data/telco/Telco-Customer-Churn.csv"),
]
TELCO = next((p for p in CANDIDATES if p is not None and p.is_file()), None)
needs_telco = pytest.mark.skipif(
    TELCO is None, reason="Telco-Customer-Churn.csv not found (set CHURN_TELCO_CSV); see ../shared/data/README.md"
)
# References on the raw file, stratified 5-fold: one-hot logistic regression 0.8451, LightGBM with default parameters
# 0.8335-0.8345 (../shared/data/README.md). The pipeline measured 0.8489 +- 0.0077 (README); issue 10 asks for 0.850,
# which it does not reach yet. The floor is the best plain model on the raw file: never lose to it.
TELCO_FLOOR = 0.845


@pytest.fixture(scope="module")
def telco(tmp_path_factory) -> Path:
    assert sha256(TELCO) == SOURCE_SHA256, "not the published Telco file"
    out = tmp_path_factory.mktemp("telco") / "telco"
    convert(TELCO, out)
    return out


@needs_telco
def test_telco_conversion_keeps_every_customer_and_no_label_column(telco: Path):
    customers = pd.read_csv(telco / "customers.csv", dtype=str)
    churn = pd.read_csv(telco / "churn_events.csv", dtype=str)
    assert len(customers) == 7043 and customers["customer_id"].is_unique and len(churn) == 1869
    assert "Churn" not in customers and "tenure" not in customers
    as_of = EXTRACT_DATE - pd.Timedelta(days=HORIZON_DAYS)
    assert (pd.to_datetime(customers["signup_date"]) < as_of).all()  # tenure 0 included: a customer at T
    dates = pd.to_datetime(churn["churn_date"])
    assert dates.min() >= as_of and dates.max() < EXTRACT_DATE


@needs_telco
@pytest.mark.slow
def test_telco_trains_above_the_plain_models(telco: Path):
    from pipelines.config import load_config
    from pipelines.stages.train import run_training

    config = load_config(
        ROOT / "pipelines" / "conf" / "telco.yaml", {"data": str(telco), "mlflow.experiment": "test-telco"}
    )
    summary = run_training(config)
    m = summary.metrics
    assert m["cv_roc_auc_mean"] >= TELCO_FLOOR, m
    assert m["test_roc_auc"] >= 0.83 and m["test_ece"] <= 0.05
    import mlflow

    card = mlflow.artifacts.load_text(f"runs:/{summary.run_id}/model_card.md")
    for typed in ("`SeniorCitizen` number", "`TotalCharges` number", "`Partner` boolean", "`Contract` category"):
        assert typed in card, typed
