"""The search inside `churn train`: it never sees the test rows, and the run records every trial and the family
shipped."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

import pipelines.stages.train as train
from tests.builders import train_config

pytestmark = pytest.mark.slow


def test_the_search_and_the_family_choice_never_see_test_rows(small_dataset, monkeypatch):
    data, _, _ = small_dataset
    seen: dict[str, list[np.ndarray]] = {"search": [], "baseline": [], "calibrate": []}
    splits = []

    def spy(name, fn, *frames):
        def wrapped(*args, **kwargs):
            for position in frames:
                seen[name].append(np.asarray(args[position].index))
            return fn(*args, **kwargs)

        return wrapped

    def split_spy(*args, **kwargs):
        splits.append(split_snapshot(*args, **kwargs))
        return splits[-1]

    split_snapshot = train.split_snapshot
    monkeypatch.setattr(train, "split_snapshot", split_spy)
    monkeypatch.setattr(train, "search_lightgbm", spy("search", train.search_lightgbm, 1, 3))  # X_train, X_val
    monkeypatch.setattr(train, "fit_baseline", spy("baseline", train.fit_baseline, 1, 3))
    monkeypatch.setattr(train, "calibrate", spy("calibrate", train.calibrate, 1))  # X_cal
    config = train_config(
        data,
        **{
            "mlflow.experiment": "test-search",
            "mlflow.registered_model": "search",
            "model": {"search": {"trials": 3, "timeout_seconds": 60}},
        },
    )
    summary = train.run_training(config)

    (split,) = splits
    test_rows = set(np.flatnonzero(split.test))
    for name, indexes in seen.items():
        assert indexes, name
        for index in indexes:
            assert not test_rows & set(index), f"{name} was handed test rows"
    # the trials, the space and the family are on the run
    client = MlflowClient()
    run = client.get_run(summary.run_id)
    assert run.data.tags["model_family"] == summary.model_family == run.data.params["model_family"]
    assert run.data.metrics["search_trials"] == 3 and run.data.metrics["search_seconds"] > 0
    trials = client.load_table(run.info.experiment_id, "evaluation/search_trials.json", run_ids=[run.info.run_id])
    assert len(trials) == 3 and trials["selected"].sum() == 1
    assert trials.loc[trials["selected"], "val_log_loss"].iloc[0] == trials["val_log_loss"].min()
    card = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/model_card.md")
    assert "Search space for" in card and "`min_child_samples`" in card and "Family: **" in card
