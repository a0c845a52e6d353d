"""churn train-uplift end to end on a small synthetic dataset: split, learners, metrics, registry, refusals."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from pipelines.cli import main
from pipelines.config import SearchConfig, UpliftConfig, load_config
from pipelines.simulation.generate import write_synthetic
from pipelines.simulation.synthetic import SyntheticConfig
from pipelines.stages.train import run_training, time_roles
from pipelines.stages.uplift import load_contacts, run_uplift_training, split_contacts
from tests.builders import train_config

CONF = Path(__file__).resolve().parents[2] / "pipelines" / "conf" / "uplift.yaml"
UPLIFT = "uplift-flow"  # this module's registered uplift model
NAMES = (
    "test_qini", "test_qini_low", "test_qini_high", "risk_test_qini", "random_test_qini", "test_auuc",
    "test_uplift_at_10", "test_uplift_at_20", "test_uplift_at_30", "policy_value_uplift", "policy_value_risk",
    "policy_value_campaign",
)  # fmt: skip


@pytest.fixture(scope="module")
def campaigns(tmp_path_factory) -> Path:
    """18 months of 6,000 customers: monthly campaigns with a random control group."""
    root = tmp_path_factory.mktemp("uplift")
    write_synthetic(SyntheticConfig(customers=6_000, months=18, seed=3), root / "data", root / "data_truth", None, 90)
    return root / "data"


def _config(data: Path, **uplift) -> UpliftConfig:
    names = {"mlflow.experiment": "test-uplift", "mlflow.registered_model": UPLIFT}  # apart from other modules' models
    config = load_config(CONF, {"data": str(data), **names}, UpliftConfig)
    return dataclasses.replace(config, uplift=dataclasses.replace(config.uplift, risk_model=None, **uplift))


@pytest.fixture(scope="module")
def trained(campaigns):
    return run_uplift_training(_config(campaigns, resamples=50))


def test_train_uplift_logs_the_metrics_and_registers_a_challenger(trained):
    run = mlflow.get_run(trained.run_id)
    for name in NAMES:
        assert name in run.data.metrics, name
    # synthetic data: the truth's yardsticks, the oracle and the features' ceiling
    assert {"oracle_test_qini", "ceiling_test_qini", "true_saves_ceiling_policy"} <= set(run.data.metrics)
    assert f"{UPLIFT} v{trained.model_version}" in run.data.tags["mlflow.note.content"]
    assert run.data.metrics["test_qini_low"] <= run.data.metrics["test_qini"] <= run.data.metrics["test_qini_high"]
    assert run.data.params["learner"] in ("t_learner", "x_learner", "dr_learner")
    client = MlflowClient()
    assert client.get_model_version_by_alias(UPLIFT, "challenger").version == trained.model_version
    # promoted exactly when the Qini's lower bound beats the churn ranking's Qini (no champion before)
    assert trained.promoted == (run.data.metrics["test_qini_low"] > run.data.metrics["risk_test_qini"])
    artifacts = {a.path for a in client.list_artifacts(trained.run_id)}
    assert {"uplift_report.html", "config", "data"} <= artifacts


def test_the_registered_model_predicts_uplift_from_feature_rows(campaigns, trained):
    loaded = mlflow.pyfunc.load_model(f"models:/{UPLIFT}/{trained.model_version}")
    contacts = load_contacts(_config(campaigns))
    assert not {"customer_id", "action_date", "treated", "churned"} & set(contacts.spec.columns)  # never a feature
    out = loaded.predict(contacts.spec.frame(contacts.rows.head(20)))
    assert list(out.columns) == ["uplift"] and out["uplift"].between(-1, 1).all()


def test_campaigns_are_split_out_of_time_without_overlapping_windows(campaigns):
    config = _config(campaigns)
    contacts = load_contacts(config)
    split = split_contacts(contacts.rows, config)
    assert split.method == "out_of_time"
    day = contacts.rows["action_date"]
    horizon = pd.Timedelta(days=config.horizon_days)
    assert day[split.train].max() + horizon <= day[split.val].min()
    assert day[split.val].max() + horizon <= day[split.test].min()
    assert day[split.test].nunique() == config.uplift.test_campaigns
    assert not (split.train & split.val).any() and not (split.val & split.test).any()
    unused = ~(split.train | split.val | split.test)  # the gaps: their windows would reach the next role
    assert ((day[unused] + horizon > day[split.val].min()) | (day[unused] + horizon > day[split.test].min())).all()


def test_contacts_without_an_observed_outcome_are_set_aside_with_a_reason(campaigns):
    contacts = load_contacts(_config(campaigns))
    actions = pd.read_parquet(campaigns / "retention_actions.parquet")
    assert len(contacts.rows) + len(contacts.set_aside) == len(actions)  # nothing is lost
    late = contacts.set_aside[contacts.set_aside["reason"].str.startswith("outcome window")]
    assert (late["action_date"] + pd.Timedelta(days=89) > pd.Timestamp("2026-06-30")).all() and len(late)


def test_one_campaign_date_splits_by_customer_with_cross_validated_qini(campaigns, tmp_path):
    data = tmp_path / "one"
    shutil.copytree(campaigns, data)
    actions = pd.read_parquet(data / "retention_actions.parquet")
    days = sorted(actions["action_date"].unique())[2:7]  # five monthly campaigns: no customer is in two
    one = actions[actions["action_date"].isin(days)].assign(action_date=days[0])
    one.to_parquet(data / "retention_actions.parquet", index=False)
    result = run_uplift_training(_config(data, resamples=20, learners=("t_learner",), cv_folds=3))
    assert "by customer" in result.split
    assert np.isfinite(result.metrics["cv_qini_mean"])


def test_time_roles_with_several_dates_per_role():
    dates = pd.date_range("2025-01-01", periods=12, freq="MS")
    roles = time_roles(dates, 90, 3, 2)
    assert roles.test == tuple(dates[-3:])
    assert all(d + pd.Timedelta(days=90) <= roles.test[0] for d in roles.val) and len(roles.val) == 2
    assert all(d + pd.Timedelta(days=90) <= roles.val[0] for d in roles.train)
    assert time_roles(dates[:3], 90, 3, 2) is None


def test_data_without_a_control_group_is_refused_or_skipped(campaigns, tmp_path, capsys):
    data = tmp_path / "no_control"
    shutil.copytree(campaigns, data)
    actions = pd.read_parquet(data / "retention_actions.parquet")
    actions[actions["group"] == "treatment"].to_parquet(data / "retention_actions.parquet", index=False)
    argv = ["train-uplift", "--data", str(data), "--end-date", "2026-06-30"]
    assert main([*argv, "--if-campaigns"]) == 0
    assert "no uplift model trained" in capsys.readouterr().out
    assert main(argv) == 2
    assert "treatment and a control group" in capsys.readouterr().err


def test_scoring_targets_by_uplift_when_an_uplift_champion_exists(campaigns, trained, tmp_path):
    dates = {"start": "2025-06-01", "end": "2026-03-01", "step_months": 1}
    config = train_config(
        campaigns, end_date="2026-06-30", truth=None, as_of=dates,
        **{"mlflow.experiment": "test-uplift-churn", "mlflow.registered_model": "uplift-flow-churn"},
    )  # fmt: skip
    run_training(dataclasses.replace(config, model=dataclasses.replace(config.model, search=SearchConfig(trials=2))))
    MlflowClient().set_registered_model_alias(UPLIFT, "champion", trained.model_version)
    argv = ["score", "--as-of", "2026-07-01", "--data", str(campaigns), "--end-date", "2026-06-30"]
    argv += ["--model", "uplift-flow-churn@challenger", "--uplift-model", f"{UPLIFT}@champion"]
    argv += ["--out", str(tmp_path / "scores")]
    assert main(argv) == 0
    folder = tmp_path / "scores" / "as_of=2026-07-01"
    scores = pd.read_parquet(folder / "scores.parquet")
    assert {"uplift", "expected_saves", "do_not_contact"} <= set(scores.columns)
    assert scores["do_not_contact"].equals(scores["uplift"] < 0) and scores["do_not_contact"].any()
    assert not scores.loc[scores["in_action_list"], "do_not_contact"].any()  # never contacted
    client = MlflowClient()
    scoring = client.search_runs(
        [client.get_experiment_by_name("churn-scoring").experiment_id], order_by=["attributes.start_time DESC"]
    )[0]
    months = scoring.data.metrics["save_value_months"]  # what a save keeps, from the campaigns' follow-up
    assert 0 < months < 12
    value = scores["uplift"] * months * scores["monthly_revenue"] - 15.0  # score.yaml's contact cost
    assert np.allclose(scores["expected_net_value_of_contact"], value)
    assert "The plan under both rankings" in (folder / "report.html").read_text()
    # a churn model given as the uplift model is refused before anything is written
    argv[argv.index("--uplift-model") + 1] = "uplift-flow-churn@challenger"
    assert main([*argv[:-1], str(tmp_path / "refused")]) == 2
    assert not (tmp_path / "refused").exists()
