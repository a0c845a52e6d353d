"""The logged model: one MLflow pyfunc carrying the feature spec, the fitted pipeline and its calibration."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd

from models.estimators import FeatureSpec, explain, family


class ChurnModel(mlflow.pyfunc.PythonModel):
    """``predict`` takes raw snapshot rows (extra columns such as ids are ignored) and returns churn probabilities.

    ``estimator`` is the calibrated model; ``pipeline`` the fitted, uncalibrated
    preprocessing + model pipeline inside it (LightGBM or logistic regression),
    kept for reason codes.
    """

    def __init__(
        self, estimator, spec: FeatureSpec, reference: dict | None = None, feature_config=None, *, pipeline
    ) -> None:
        self.estimator = estimator
        self.spec = spec
        self.reference = reference or {}
        self.feature_config = feature_config  # features.config.FeatureConfig the model was trained with
        self.pipeline = pipeline

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if "pipeline" not in state:
            # Logged before the pipeline was kept beside the calibrated model (LightGBM only then): take it from the
            # calibration wrapper's public ``estimator`` parameter (the fitted pipeline, or a FrozenEstimator around
            # it), so champions registered earlier still give reason codes.
            fitted = self.estimator.estimator
            self.pipeline = getattr(fitted, "estimator", fitted)

    @property
    def feature_names(self) -> list[str]:
        return self.spec.columns

    @property
    def family(self) -> str:
        """``lightgbm`` or ``logistic_regression``."""
        return family(self.pipeline)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.estimator.predict_proba(self.spec.frame(frame))[:, 1]

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per-row contributions (log-odds, before calibration) of each feature, for reason codes.

        LightGBM: TreeSHAP; logistic regression: coefficient times the centred
        input, one-hot levels and missing indicators summed to their column.
        """
        contrib, _ = explain(self.pipeline, self.spec, frame)
        return contrib

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:  # noqa: ARG002 - pyfunc API
        return pd.DataFrame({"churn_probability": self.predict_proba(model_input)}, index=model_input.index)


class UpliftPyfunc(mlflow.pyfunc.PythonModel):
    """``predict`` takes raw feature rows at a contact date and returns ``uplift``: how much a contact lowers each
    customer's probability of churning within the horizon (negative: a contact would push them out)."""

    def __init__(self, model, feature_config, horizon_days: int) -> None:
        self.model = model  # models.uplift.UpliftModel, fitted
        self.feature_config = feature_config  # features.config.FeatureConfig the rows must be built with
        self.horizon_days = horizon_days

    @property
    def spec(self) -> FeatureSpec:
        return self.model.spec

    @property
    def learner(self) -> str:
        return self.model.learner_name

    def uplift(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.uplift(frame)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:  # noqa: ARG002 - pyfunc API
        return pd.DataFrame({"uplift": self.uplift(model_input)}, index=model_input.index)
