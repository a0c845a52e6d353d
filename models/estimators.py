"""The two model families as single scikit-learn pipelines (preprocessing inside) and their calibration."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureSpec:
    """Which model inputs are numeric and which are categorical (text)."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @classmethod
    def infer(cls, frame: pd.DataFrame, columns: list[str]) -> "FeatureSpec":
        numeric = tuple(c for c in columns if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]))
        categorical = tuple(c for c in columns if c not in numeric)
        return cls(numeric, categorical)

    def frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's input columns in a fixed order and dtype (raw snapshot rows in, X out)."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ValueError(f"input lacks the model's feature column(s) {missing}")
        X = frame[self.columns].copy()
        for c in self.numeric:
            X[c] = pd.to_numeric(X[c], errors="raise").astype(float)
        for c in self.categorical:
            X[c] = X[c].astype(object).where(X[c].notna(), "__missing__").astype(str)
        return X


def lightgbm_pipeline(spec: FeatureSpec, params: dict, seed: int, class_weight: str | None) -> Pipeline:
    """LightGBM on numeric features as they are (NaN handled natively) and ordinal-coded categories.

    Categories are ordinal codes rather than LightGBM categorical splits: with
    tens of levels (locations) the native categorical handling overfits on a few
    thousand churners, and trees split ordinal codes well enough.
    """
    pre = ColumnTransformer(
        [
            ("num", "passthrough", list(spec.numeric)),
            ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1), list(spec.categorical)),
        ],
        verbose_feature_names_out=False,
    )
    model = lgb.LGBMClassifier(random_state=seed, class_weight=class_weight, verbose=-1, deterministic=True, force_row_wise=True, **params)
    return Pipeline([("pre", pre), ("lgbm", model)]).set_output(transform="pandas")


def baseline_pipeline(spec: FeatureSpec, C: float, seed: int) -> Pipeline:
    """Logistic regression: median-imputed (with missing indicators), scaled numerics and one-hot categories."""
    numeric = Pipeline([("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)), ("scale", StandardScaler())])
    pre = ColumnTransformer(
        [
            ("num", numeric, list(spec.numeric)),
            ("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=50, sparse_output=False), list(spec.categorical)),
        ]
    )
    return Pipeline([("pre", pre), ("logreg", LogisticRegression(C=C, max_iter=2000, random_state=seed))])


def fit_lightgbm(
    spec: FeatureSpec,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_val: pd.DataFrame,
    y_val: np.ndarray,
    params: dict,
    search: tuple[dict, ...],
    early_stopping_rounds: int,
    seed: int,
    class_weight: str | None,
    sample_weight: np.ndarray | None = None,
) -> tuple[Pipeline, list[dict]]:
    """Try each candidate with early stopping on the validation rows; keep the lowest validation log loss."""
    trials = []
    best: tuple[float, Pipeline] | None = None
    for i, candidate in enumerate(search):
        pipe = lightgbm_pipeline(spec, {**params, **candidate}, seed, class_weight)
        pre = pipe.named_steps["pre"].fit(X_train)
        pipe.named_steps["lgbm"].fit(
            pre.transform(X_train),
            y_train,
            sample_weight=sample_weight,
            eval_X=(pre.transform(X_val),),
            eval_y=(y_val,),
            eval_metric="binary_logloss",
            callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False)],
        )
        loss = log_loss(y_val, pipe.predict_proba(X_val)[:, 1])
        rounds = int(pipe.named_steps["lgbm"].best_iteration_ or params.get("n_estimators", 100))
        trials.append({"candidate": i, **candidate, "val_log_loss_uncalibrated": loss, "best_iteration": rounds})
        log.info("candidate %d %s: validation log loss %.5f after %d rounds", i, candidate, loss, rounds)
        if best is None or loss < best[0]:
            best = (loss, pipe)
    assert best is not None
    return best[1], trials


def calibrate(fitted: Pipeline, X_cal: pd.DataFrame, y_cal: np.ndarray, method: str) -> CalibratedClassifierCV:
    """Map scores to probabilities on rows the model was not fitted on; the result is one estimator."""
    return CalibratedClassifierCV(FrozenEstimator(fitted), method=method).fit(X_cal, y_cal)
