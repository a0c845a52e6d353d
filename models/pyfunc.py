"""The logged model: one MLflow pyfunc carrying the feature spec and the calibrated pipeline."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd

from models.estimators import FeatureSpec


class ChurnModel(mlflow.pyfunc.PythonModel):
    """``predict`` takes raw snapshot rows (extra columns such as ids are ignored) and returns churn probabilities."""

    def __init__(self, estimator, spec: FeatureSpec, reference: dict | None = None, feature_config=None) -> None:
        self.estimator = estimator
        self.spec = spec
        self.reference = reference or {}
        self.feature_config = feature_config  # features.config.FeatureConfig the model was trained with

    @property
    def feature_names(self) -> list[str]:
        return self.spec.columns

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.estimator.predict_proba(self.spec.frame(frame))[:, 1]

    @property
    def pipeline(self):
        """The fitted (uncalibrated) preprocessing + LightGBM pipeline inside the calibration wrapper."""
        fitted = self.estimator.calibrated_classifiers_[0].estimator  # FrozenEstimator around the pipeline
        return getattr(fitted, "estimator", fitted)

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per-row TreeSHAP contributions (log-odds, before calibration) of each feature, for reason codes."""
        pipeline = self.pipeline
        Xt = pipeline.named_steps["pre"].transform(self.spec.frame(frame))
        contrib = pipeline.named_steps["lgbm"].booster_.predict(Xt, pred_contrib=True)
        return pd.DataFrame(contrib[:, :-1], columns=list(Xt.columns), index=frame.index)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:  # noqa: ARG002 - pyfunc API
        return pd.DataFrame({"churn_probability": self.predict_proba(model_input)}, index=model_input.index)
