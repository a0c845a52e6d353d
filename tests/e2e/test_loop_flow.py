"""The closed loop end to end on synthetic data: score -> action list with a random holdout -> the generator contacts
that list -> `churn recover --run` measures it against its holdout, covering the truth."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from pipelines.cli import main
from pipelines.config import ScoreConfig, load_config
from pipelines.errors import UserError
from pipelines.io.decisions import append_decisions, read_decisions
from pipelines.simulation.generate import write_synthetic
from pipelines.simulation.synthetic import SyntheticConfig
from pipelines.stages.score import run_scoring

pytestmark = pytest.mark.slow
AS_OF = pd.Timestamp("2026-03-01")  # a campaign date whose 90-day outcome the data holds


def test_an_action_list_with_its_holdout_is_measured_against_the_truth(trained_default, tmp_path):
    """A smaller world of the default generator (8,000 customers), scored by the default champion."""
    world_config = SyntheticConfig(customers=8_000, seed=3)
    data = tmp_path / "original" / "synthetic"
    write_synthetic(world_config, data, tmp_path / "original" / "synthetic_truth", None, 90)
    scores = tmp_path / "scores"
    settings = {"data": str(data), "end_date": "2026-06-30", "out": str(scores), "holdout.share": 0.3}
    run_scoring(load_config(None, settings, ScoreConfig), AS_OF)
    listed = pd.read_parquet(scores / f"as_of={AS_OF.date()}" / "scores.parquet")
    selected = listed[listed["in_action_list"]]
    assert set(selected["assigned_group"]) == {"treatment", "holdout"}
    assert (listed.loc[~listed["in_action_list"], "assigned_group"] == "").all()
    assert 0.25 < (selected["assigned_group"] == "holdout").mean() < 0.35
    assert (selected["assignment_probability"] == 0.3).all() and listed["assignment_probability"].isna().sum() > 0
    decisions = read_decisions(scores)
    (run_id,) = decisions["run_id"].unique()
    assert len(decisions) == len(listed) and decisions["selected"].sum() == len(selected)
    with pytest.raises(UserError, match="never rewritten"):  # append-only: a run's decisions are written once
        append_decisions(scores, listed, run_id)

    # the same world, whose 2026-03-01 campaign is this list: 90 % of the treatment group reached, the holdout left
    world = tmp_path / "world" / "synthetic"
    planned = dataclasses.replace(world_config, campaign_plan=decisions)
    write_synthetic(planned, world, tmp_path / "world" / "synthetic_truth", None, 90)
    before = pd.read_parquet(world / "churn_events.parquet")
    original = pd.read_parquet(data / "churn_events.parquet")
    pd.testing.assert_frame_equal(
        before[before["churn_date"] < AS_OF].reset_index(drop=True),
        original[original["churn_date"] < AS_OF].reset_index(drop=True),
    )  # the same world up to the list's date
    actions = pd.read_parquet(world / "retention_actions.parquet")
    made = actions[actions["action_date"] == AS_OF]
    holdout = set(selected.loc[selected["assigned_group"] == "holdout", "customer_id"])
    assert set(made.loc[made["group"] == "control", "customer_id"]) <= holdout

    out = tmp_path / "recovery"
    argv = ["recover", "--run", run_id, "--data", str(world), "--end-date", "2026-06-30", "--scores", str(scores)]
    assert main([*argv, "--out", str(out)]) == 0
    client = MlflowClient()
    run = client.search_runs(
        [client.get_experiment_by_name("churn-recovery").experiment_id], order_by=["attributes.start_time DESC"]
    )[0]
    m = run.data.metrics
    assert run.data.params["scoring_run"] == run_id
    assert run.data.tags["model_version_uri"].endswith(f"/{selected['model_version'].iloc[0]}")
    assert m["saved_low"] <= m["true_saved_customers"] <= m["saved_high"], m
    assert 0.8 < m["contact_rate_treatment"] < 0.97 and m["contact_rate_holdout"] == 0
    assert abs(m["holdout_realised_churn"] - m["holdout_predicted_churn"]) < 0.1 and m["holdout_roc_auc"] > 0.55
    assert (out / f"loop_run_{run_id}" / "report.html").exists()

    # a month later the holdout's window is still open: the next list leaves those customers off
    run_scoring(load_config(None, {**settings, "data": str(world)}, ScoreConfig), AS_OF + pd.DateOffset(months=1))
    later = pd.read_parquet(scores / "as_of=2026-04-01" / "scores.parquet")
    assert not set(later.loc[later["in_action_list"], "customer_id"]) & holdout
    assert read_decisions(scores)["run_id"].nunique() == 2  # the log grew by one run; the first is untouched
