"""Metrics, the out-of-time split rule and the config loader, on small inline inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.errors import ModelInputError
from models.evaluate import classification_metrics, expected_calibration_error, top_share_metrics
from pipelines.config import ConfigError, load_config
from pipelines.stages.train import check_split_classes, split_snapshot
from tests.builders import train_config

CONF = Path(__file__).resolve().parents[2] / "pipelines" / "conf" / "train.yaml"


def test_ece_is_zero_for_perfect_calibration_and_large_when_off():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.2, 200_000)
    y = rng.random(p.size) < p
    assert expected_calibration_error(y, p) < 0.003
    assert expected_calibration_error(y, np.clip(p * 2, 0, 1)) > 0.05


def test_lift_and_capture_by_hand():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    p = np.linspace(1, 0, 10)  # the first rows rank highest
    lift, capture = top_share_metrics(y, p, 20)  # top 2 rows: one churner of two
    assert capture == pytest.approx(0.5)
    assert lift == pytest.approx((1 / 2) / 0.2)
    m = classification_metrics(y, p, "test_")
    assert m["test_capture_at_20"] == pytest.approx(0.5) and m["test_roc_auc"] == pytest.approx(15 / 16)


def _snap(dates: list[str], per_date: int = 40) -> pd.DataFrame:
    rows = []
    for d in dates:
        for i in range(per_date):
            rows.append({"customer_id": f"c{i}", "as_of": pd.Timestamp(d), "churned": i % 5 == 0})
    return pd.DataFrame(rows)


def test_out_of_time_split_keeps_label_windows_before_the_test_date():
    dates = [f"2025-{m:02d}-01" for m in range(1, 13)]
    snap = _snap(dates)
    split = split_snapshot(snap, 90, train_config("unused"))
    assert split.method == "out_of_time"
    test_date = snap.loc[split.test, "as_of"].unique()
    val_date = snap.loc[split.val, "as_of"].unique()
    assert list(test_date) == [pd.Timestamp("2025-12-01")]
    assert list(val_date) == [pd.Timestamp("2025-09-01")]  # latest with as_of + 90d <= test date
    train_dates = snap.loc[split.train, "as_of"]
    assert (train_dates + pd.Timedelta(days=90) <= val_date[0]).all()
    assert (train_dates + pd.Timedelta(days=90) <= test_date[0]).all()
    assert not (split.train & split.test).any() and not (split.val & split.test).any()


def test_too_few_dates_fall_back_to_a_stratified_split_on_the_latest():
    snap = _snap(["2025-11-01", "2025-12-01"], per_date=200)
    split = split_snapshot(snap, 90, train_config("unused"))
    assert split.method == "stratified"
    used = split.train | split.val | split.test
    assert (snap.loc[used, "as_of"] == pd.Timestamp("2025-12-01")).all()
    assert split.test.sum() == 50
    assert snap.loc[split.test, "churned"].mean() == pytest.approx(0.2)


def test_config_rejects_unknown_keys_and_bad_values(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("horizon_dayz: 90\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['horizon_dayz'\]"):
        load_config(bad)
    bad.write_text("model:\n  calibration: magic\n")
    with pytest.raises(ConfigError, match=r"model.calibration: 'magic' is not one of \['sigmoid', 'isotonic'\]"):
        load_config(bad)


def test_config_overrides_and_frozen():
    c = load_config(CONF, {"horizon_days": 60, "mlflow.experiment": "x", "as_of": {"dates": ["2025-01-01"]}})
    assert c.horizon_days == 60 and c.mlflow.experiment == "x" and c.as_of.resolve() == [pd.Timestamp("2025-01-01")]
    assert c.end_date == "2026-06-30"
    with pytest.raises(AttributeError):
        c.horizon_days = 30  # type: ignore[misc]


def test_negative_sampling_touches_only_training_dates_and_reweights():
    from pipelines.stages.train import negative_sampler

    frame = pd.DataFrame(
        {"customer_id": [f"c{i}" for i in range(10_000)], "churned": pd.array([1] * 500 + [0] * 9_500, dtype="Int8")}
    )
    sample = negative_sampler([pd.Timestamp("2025-01-01")], 0.2, seed=1)
    train = sample(pd.Timestamp("2025-01-01"), frame)
    assert (train["churned"] == 1).sum() == 500  # every churner kept
    assert 0.17 < (train["churned"] == 0).sum() / 9_500 < 0.23
    assert set(train.loc[train["churned"] == 0, "sample_weight"]) == {5.0}
    # weighted, the sample stands for the whole population
    assert train["sample_weight"].sum() == pytest.approx(10_000, rel=0.05)
    test = sample(pd.Timestamp("2025-04-01"), frame)
    assert len(test) == 10_000 and (test["sample_weight"] == 1.0).all()


def test_date_roles_are_decided_from_dates_alone():
    from pipelines.stages.train import date_roles

    roles = date_roles(pd.date_range("2025-01-01", "2026-04-01", freq="MS"), 90)
    assert roles.test == pd.Timestamp("2026-04-01") and roles.val == pd.Timestamp("2026-01-01")
    assert roles.train[-1] == pd.Timestamp("2025-10-01")
    assert date_roles([pd.Timestamp("2026-04-01")], 90) is None


@pytest.mark.parametrize(("per_date", "churn_share"), [(10, 0.4), (30, 1.0), (30, 0.0), (200, 0.01)])
def test_a_split_without_enough_churners_is_refused_by_count(per_date, churn_share):
    """Ten customers, all churned, none, or two churners: a clear refusal naming the counts, never sklearn's own
    error."""
    snap = _snap(["2025-12-01"], per_date=per_date)
    snap["churned"] = (np.arange(len(snap)) < round(churn_share * len(snap))).astype(int)
    with pytest.raises(ModelInputError, match=r"as-of date 2025-12-01 has \d+ churner\(s\) and \d+ non-churner\(s\)"):
        split_snapshot(snap, 90, train_config("unused"))


def test_an_out_of_time_split_with_a_role_lacking_churners_is_refused():
    snap = _snap([f"2025-{m:02d}-01" for m in range(1, 13)])
    snap.loc[snap["as_of"] == pd.Timestamp("2025-09-01"), "churned"] = False  # the validation date
    split = split_snapshot(snap, 90, train_config("unused"))
    with pytest.raises(ModelInputError, match=r"validation rows hold 0 churner\(s\)"):
        check_split_classes(split, snap["churned"].to_numpy(dtype=int))


def test_plan_dates_builds_only_dates_with_a_role_and_unlabelled_ones():
    from pipelines.stages.train import plan_dates

    dates = ["2025-01-01", "2025-02-01", "2025-04-01", "2025-05-01", "2025-07-01", "2025-10-01", "2026-06-01"]
    config = train_config(Path("unused"), as_of={"dates": dates}, horizon_days=90)
    plan = plan_dates(config, pd.Timestamp("2026-01-31"))  # 2026-06-01's label window is not observed yet
    assert plan.roles.test == pd.Timestamp("2025-10-01") and plan.roles.val == pd.Timestamp("2025-07-01")
    assert plan.roles.train == (pd.Timestamp("2025-01-01"), pd.Timestamp("2025-02-01"), pd.Timestamp("2025-04-01"))
    # 2025-05-01's window closes after the validation date and it is not the validation date: no role, not built
    assert plan.dates == tuple(pd.Timestamp(d) for d in dates if d != "2025-05-01")
    # one labelled date only: no roles, every configured date is built
    assert plan_dates(config, pd.Timestamp("2025-04-15")) == type(plan)(tuple(pd.Timestamp(d) for d in dates), None)


def test_the_summary_is_printed_from_a_frozen_typed_result():
    import dataclasses

    from pipelines.stages.train import TrainingResult, format_summary

    metrics = {
        "test_roc_auc": 0.8,
        "baseline_test_roc_auc": 0.7,
        "test_pr_auc": 0.3,
        "baseline_test_pr_auc": 0.2,
        "test_ece": 0.01,
        "test_brier": 0.07,
        "test_lift_at_10": 3.5,
        "test_capture_at_10": 0.35,
        "search_trials": 8.0,
    }
    result = TrainingResult(
        "r1", "3", "2", "logistic_regression", 61.0, True, "beats the baseline", metrics, "one split", "sqlite://", 90.0
    )
    text = format_summary(result)
    assert text.startswith("run r1 (model version 2, logistic_regression); one split\n")
    assert "logistic regression (better on validation than LightGBM); LightGBM search 8 trial(s) in 61 s" in text
    assert "PROMOTED to champion: beats the baseline" in text and "#/experiments/3/runs/r1" in text
    assert "oracle" not in text and "CV" not in text
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.promoted = False
