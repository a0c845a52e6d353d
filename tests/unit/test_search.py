"""The data-adaptive LightGBM search, the logistic-regression challenger and its contributions, on small inline data."""

from __future__ import annotations

import time

import numpy as np
import optuna
import pandas as pd
import pytest
from scipy.special import logit

from models.estimators import LGBM, LOGREG, FeatureSpec, explain, source_columns
from models.pyfunc import ChurnModel
from models.search import SearchSpace, fit_baseline, search_lightgbm
from pipelines.stages.train import select_model
from tests.builders import train_config

PARAMS = {"n_estimators": 400, "subsample_freq": 1, "n_jobs": 1}


def _data(rows: int, seed: int, linear: bool) -> tuple[FeatureSpec, pd.DataFrame, np.ndarray]:
    """Churn from a logit over six numbers and a plan: linear in them, or a step and an interaction trees find
    easily."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(6)})
    X.loc[rng.random(rows) < 0.1, "x5"] = np.nan  # missing values: the linear model's indicator column
    X["plan"] = rng.choice(["basic", "plus", "pro"], rows)
    X["plan_type"] = rng.choice(["a", "b"], rows)  # a name that starts with another column's name
    effect = X["plan"].map({"basic": 0.6, "plus": 0.0, "pro": -0.6}).to_numpy()
    x = X[[f"x{i}" for i in range(6)]].fillna(0).to_numpy()
    if linear:
        z = -1.6 + x @ np.array([1.0, -0.8, 0.6, 0.4, -0.3, 0.5]) + effect
    else:
        z = -1.6 + 2.5 * (x[:, 0] > 0.5) * (x[:, 1] < 0) - 1.5 * (np.abs(x[:, 2]) > 1) + effect
    y = (rng.random(rows) < 1 / (1 + np.exp(-z))).astype(int)
    spec = FeatureSpec.infer(X, list(X.columns))
    return spec, spec.frame(X), y


def _split(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(len(y))
    return idx[: int(0.75 * len(y))], idx[int(0.75 * len(y)) :]


def test_ranges_scale_with_rows_and_churners():
    large, small = SearchSpace.for_data(220_000, 15_000), SearchSpace.for_data(4_500, 1_200)
    assert large.min_child_samples == (220, 3_750)  # 0.1 % of rows .. a quarter of the churners
    assert small.min_child_samples == (8, 225)  # two churners' worth .. a twentieth of the rows
    rare = SearchSpace.for_data(20_000, 200)  # 1 % churners: a leaf must be large to hold a couple of them
    assert (
        rare.min_child_samples[0] == 200
        and rare.min_child_samples[0] > SearchSpace.for_data(20_000, 2_000).min_child_samples[0]
    )
    assert large.num_leaves == (4, 63) and small.num_leaves == (2, 63)  # stumps only on small data
    assert large.learning_rate[0] > small.learning_rate[0]
    for rows, positives in ((100, 2), (1_000, 500), (50, 49), (10_000_000, 300_000)):
        space = SearchSpace.for_data(rows, positives)
        for low, high in (space.min_child_samples, space.num_leaves, space.learning_rate):
            assert 0 < low <= high, (rows, positives, space)
        assert space.min_child_samples[0] <= rows // 2
    with pytest.raises(ValueError, match="needs churners"):
        SearchSpace.for_data(100, 0)


def test_search_runs_the_trial_count_and_keeps_the_lowest_validation_log_loss():
    spec, X, y = _data(1_500, 0, linear=False)
    tr, va = _split(y)
    verbosity = optuna.logging.get_verbosity()
    result = search_lightgbm(spec, X.iloc[tr], y[tr], X.iloc[va], y[va], PARAMS, 5, 120, 3, 20, None)
    assert optuna.logging.get_verbosity() == verbosity  # silenced only inside the call
    trials = result.trials
    assert len(trials) == 5 and trials["trial"].tolist() == [0, 1, 2, 3, 4]
    assert {"val_log_loss", "rounds", "seconds", "cut_short", "selected", "num_leaves", "learning_rate"} <= set(
        trials.columns
    )
    chosen = trials.loc[trials["selected"]]
    assert len(chosen) == 1 and chosen["val_log_loss"].iloc[0] == trials["val_log_loss"].min() == result.val_log_loss
    from sklearn.metrics import log_loss

    assert log_loss(y[va], result.pipeline.predict_proba(X.iloc[va])[:, 1]) == pytest.approx(result.val_log_loss)
    for name, (low, high) in result.space.to_dict().items():
        assert trials[name].between(low, high).all(), name
    # the same seed gives the same trials in the same order (the trial count, not the clock, ended it)
    again = search_lightgbm(spec, X.iloc[tr], y[tr], X.iloc[va], y[va], PARAMS, 5, 120, 3, 20, None).trials
    pd.testing.assert_frame_equal(trials.drop(columns="seconds"), again.drop(columns="seconds"))


def test_search_stops_at_its_time_budget():
    spec, X, y = _data(3_000, 1, linear=False)
    tr, va = _split(y)
    slow = {**PARAMS, "n_estimators": 100_000, "learning_rate": 0.001}  # a trial would run far past the budget
    started = time.perf_counter()
    result = search_lightgbm(spec, X.iloc[tr], y[tr], X.iloc[va], y[va], slow, 1_000, 1.0, 0, 100_000, None)
    assert time.perf_counter() - started < 10
    assert 1 <= len(result.trials) < 1_000 and result.trials["cut_short"].any()
    assert result.best_iteration >= 1


def test_parameters_set_in_params_are_fixed_not_searched():
    spec, X, y = _data(1_000, 2, linear=False)
    tr, va = _split(y)
    result = search_lightgbm(
        spec, X.iloc[tr], y[tr], X.iloc[va], y[va], {**PARAMS, "num_leaves": 5}, 3, 60, 0, 20, None
    )
    assert "num_leaves" not in result.trials and result.pipeline.named_steps[LGBM].get_params()["num_leaves"] == 5


def test_search_uses_negative_sampling_weights():
    spec, X, y = _data(2_000, 3, linear=False)
    tr, va = _split(y)
    heavy = np.where(y[tr] == 0, 5.0, 1.0)
    plain = search_lightgbm(spec, X.iloc[tr], y[tr], X.iloc[va], y[va], PARAMS, 1, 60, 0, 20, None)
    weighted = search_lightgbm(
        spec, X.iloc[tr], y[tr], X.iloc[va], y[va], PARAMS, 1, 60, 0, 20, None, sample_weight=heavy
    )
    # non-churners weighted up: lower probabilities on the same rows
    assert (
        weighted.pipeline.predict_proba(X.iloc[va])[:, 1].mean() < plain.pipeline.predict_proba(X.iloc[va])[:, 1].mean()
    )


def test_baseline_chooses_C_on_validation_log_loss():
    spec, X, y = _data(2_000, 4, linear=True)
    tr, va = _split(y)
    pipeline, table = fit_baseline(spec, X.iloc[tr], y[tr], X.iloc[va], y[va], (1.0, 1e-4, 0.1), seed=0)
    assert table["C"].tolist() == [1e-4, 0.1, 1.0]
    assert table.loc[table["selected"], "val_log_loss"].iloc[0] == table["val_log_loss"].min()
    assert table.loc[table["selected"], "C"].iloc[0] != 1e-4  # far too strong a penalty for a clear linear signal
    assert pipeline.named_steps[LOGREG].C == table.loc[table["selected"], "C"].iloc[0]


def test_the_linear_model_ships_when_it_wins_on_validation_and_its_contributions_add_up():
    spec, X, y = _data(4_000, 5, linear=True)
    tr, va = np.arange(0, 2_400), np.arange(2_400, 3_200)
    config = train_config("unused", **{"model": {"params": PARAMS, "search": {"trials": 4, "timeout_seconds": 60}}})
    chosen = select_model(spec, X.iloc[tr], y[tr], None, X.iloc[va], y[va], config)
    assert chosen.family == "logistic_regression"
    assert chosen.val_log_loss["logistic_regression"] < chosen.val_log_loss["lightgbm"]
    model = ChurnModel(chosen.model, spec, pipeline=chosen.pipeline)
    assert model.family == "logistic_regression"
    rows = X.iloc[3_200:]
    contributions = model.contributions(rows)
    assert list(contributions.columns) == spec.columns  # one column per input feature, one-hot levels summed back
    _, base = explain(chosen.pipeline, spec, rows)
    log_odds = logit(chosen.pipeline.predict_proba(rows)[:, 1])
    np.testing.assert_allclose(contributions.sum(axis=1).to_numpy() + base, log_odds, atol=1e-8)
    assert base[0] == pytest.approx(chosen.pipeline.named_steps[LOGREG].intercept_[0])
    # a feature that raises the log-odds raises risk: x0 has a positive coefficient
    high, low = rows.assign(x0=3.0), rows.assign(x0=-3.0)
    assert (model.contributions(high)["x0"] > model.contributions(low)["x0"]).all()
    p = model.predict(None, rows)["churn_probability"]
    assert p.between(0, 1).all() and len(p) == len(rows)


def test_lightgbm_wins_on_a_step_and_its_contributions_add_up():
    spec, X, y = _data(4_000, 6, linear=False)
    tr, va = np.arange(0, 2_400), np.arange(2_400, 3_200)
    config = train_config("unused", **{"model": {"params": PARAMS, "search": {"trials": 4, "timeout_seconds": 60}}})
    chosen = select_model(spec, X.iloc[tr], y[tr], None, X.iloc[va], y[va], config)
    assert chosen.family == "lightgbm" and chosen.pipeline is chosen.search.pipeline
    rows = X.iloc[3_200:]
    contributions, base = explain(chosen.pipeline, spec, rows)
    np.testing.assert_allclose(
        contributions.sum(axis=1) + base, logit(chosen.pipeline.predict_proba(rows)[:, 1]), atol=1e-6
    )


def test_one_hot_and_indicator_columns_map_back_to_their_feature():
    spec = FeatureSpec(("x", "x_days"), ("plan", "plan_type"))
    names = [
        "num__x",
        "num__x_days",
        "num__missingindicator_x_days",
        "cat__plan_basic",
        "cat__plan_infrequent_sklearn",
        "cat__plan_type_a",
    ]
    assert source_columns(names, spec) == ["x", "x_days", "x_days", "plan", "plan", "plan_type"]
    with pytest.raises(ValueError, match="cannot tell"):
        source_columns(["cat__other_a"], spec)


def test_a_model_pickled_before_the_pipeline_was_kept_still_explains_itself():
    import pickle

    from models.estimators import calibrate

    spec, X, y = _data(1_500, 7, linear=False)
    tr, va = _split(y)
    result = search_lightgbm(spec, X.iloc[tr], y[tr], X.iloc[va], y[va], PARAMS, 1, 60, 0, 20, None)
    model = ChurnModel(calibrate(result.pipeline, X.iloc[va], y[va], "sigmoid"), spec, pipeline=result.pipeline)
    old = ChurnModel.__new__(ChurnModel)
    old.__dict__.update({k: v for k, v in model.__dict__.items() if k != "pipeline"})  # what earlier versions pickled
    restored = pickle.loads(pickle.dumps(old))
    assert restored.family == "lightgbm"
    pd.testing.assert_frame_equal(restored.contributions(X.iloc[va]), model.contributions(X.iloc[va]))
