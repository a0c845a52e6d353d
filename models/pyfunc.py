"""The logged model: one MLflow pyfunc carrying the feature spec and the calibrated pipeline."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd

from models.estimators import FeatureSpec


class ChurnModel(mlflow.pyfunc.PythonModel):
    """``predict`` takes raw snapshot rows (extra columns such as ids are ignored) and returns churn probabilities."""

    def __init__(self, estimator, spec: FeatureSpec) -> None:
        self.estimator = estimator
        self.spec = spec

    @property
    def feature_names(self) -> list[str]:
        return self.spec.columns

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.estimator.predict_proba(self.spec.frame(frame))[:, 1]

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:  # noqa: ARG002 - pyfunc API
        return pd.DataFrame({"churn_probability": self.predict_proba(model_input)}, index=model_input.index)
