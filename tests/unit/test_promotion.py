"""The promotion decision when the champion cannot score the challenger's test snapshot."""

import numpy as np
import pandas as pd
import pytest

from models import registry
from models.errors import ModelInputError


def _decide(monkeypatch, failure: Exception) -> registry.Decision:
    def load_model(uri):
        raise failure

    monkeypatch.setattr(registry, "champion_version", lambda client, name: "3")
    monkeypatch.setattr(registry.mlflow.pyfunc, "load_model", load_model)
    return registry.decide(
        client=None,
        name="churn",
        primary_metric="test_roc_auc",
        metrics={"test_roc_auc": 0.80, "test_ece": 0.01},
        baseline_metrics={"baseline_test_roc_auc": 0.78},
        test_frame=pd.DataFrame({"x": [1.0]}),
        y_test=np.array([1]),
        metric_fn=None,
        min_improvement=0.002,
        max_ece=0.03,
    )


def test_a_champion_missing_features_is_compared_against_the_baseline_and_says_so(monkeypatch):
    decision = _decide(monkeypatch, ModelInputError("input lacks the model's feature column(s) ['old_feature']"))
    assert decision.promote
    assert "champion v3 cannot score this test snapshot" in decision.reason and "old_feature" in decision.reason


def test_any_other_failure_stops_the_run_instead_of_changing_the_decision(monkeypatch):
    with pytest.raises(ZeroDivisionError):
        _decide(monkeypatch, ZeroDivisionError("a bug"))


def test_loading_a_model_the_registry_does_not_have_is_a_clear_user_error():
    from models.errors import ModelNotFoundError
    from pipelines.errors import USER_ERRORS

    with pytest.raises(ModelNotFoundError, match="NAME@ALIAS"):
        registry.load_model("churn-propensity")
    with pytest.raises(ModelNotFoundError, match="no model version of 'nothing-here' has the alias 'champion'"):
        registry.load_model("nothing-here@champion")
    assert ModelNotFoundError in USER_ERRORS  # exit 2 with the one-line reason
