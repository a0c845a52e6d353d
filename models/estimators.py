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
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

from models.errors import ModelInputError

log = logging.getLogger(__name__)

# The named steps of the two model pipelines: one definition, read by the search, the explanations and the benchmark.
PRE, CENTER, LGBM, LOGREG = "pre", "center", "lgbm", "logreg"


@dataclass(frozen=True)
class FeatureSpec:
    """Which model inputs are numeric and which are categorical (text)."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @classmethod
    def infer(cls, frame: pd.DataFrame, columns: list[str]) -> FeatureSpec:
        numeric = tuple(
            c for c in columns if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
        )
        categorical = tuple(c for c in columns if c not in numeric)
        return cls(numeric, categorical)

    def frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's input columns in a fixed order and dtype (raw snapshot rows in, X out)."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ModelInputError(f"input lacks the model's feature column(s) {missing}")
        X = frame[self.columns].copy()
        for c in self.numeric:
            X[c] = pd.to_numeric(X[c], errors="raise").astype(float)
        for c in self.categorical:
            X[c] = X[c].astype(object).where(X[c].notna(), "__missing__").astype(str)
        return X


def lightgbm_pipeline(spec: FeatureSpec, params: dict, seed: int, class_weight: str | None) -> Pipeline:
    """LightGBM on numeric features as they are (NaN handled natively) and ordinal-coded categories.

    Categories are ordinal codes: with tens of levels (locations) LightGBM's
    native categorical handling overfits on a few thousand churners, and trees
    split ordinal codes well enough. A category with a few levels (plan,
    contract) is best split one level against the rest, which ordinal codes
    cannot do in one split: fit with ``lgbm__categorical_feature=
    few_level_categories(...)`` for that (as the search does).
    """
    pre = ColumnTransformer(
        [
            ("num", "passthrough", list(spec.numeric)),
            (
                "cat",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1),
                list(spec.categorical),
            ),
        ],
        verbose_feature_names_out=False,
    )
    model = lgb.LGBMClassifier(
        random_state=seed, class_weight=class_weight, verbose=-1, deterministic=True, force_row_wise=True, **params
    )
    return Pipeline([(PRE, pre), (LGBM, model)]).set_output(transform="pandas")


def few_level_categories(pre: ColumnTransformer, spec: FeatureSpec, max_levels: int = 4) -> list[str]:
    """Categorical columns with at most ``max_levels`` levels in the fitted ``pre`` step: LightGBM splits them one level
    against the rest (its ``max_cat_to_onehot`` default is 4), which stumps and shallow trees need on small data."""
    encoder = pre.named_transformers_["cat"] if spec.categorical else None
    if encoder is None:
        return []
    return [c for c, levels in zip(spec.categorical, encoder.categories_, strict=True) if len(levels) <= max_levels]


def baseline_pipeline(spec: FeatureSpec, C: float, seed: int, min_frequency: int = 50) -> Pipeline:
    """Logistic regression: median-imputed (with missing indicators), scaled and clipped numerics, one-hot categories.

    Every input column is centred on its training mean before the regression
    (``center``): the fit is the same (the intercept is not penalised), and each
    coefficient times a centred value is that feature's contribution to the
    log-odds, with the intercept as the average, as TreeSHAP gives for trees.
    One-hot levels seen fewer than ``min_frequency`` times share one column.
    """
    numeric = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
            ("scale", StandardScaler()),
            # A value far outside the training range (a recency that only later dates can reach) would otherwise
            # swing the log-odds without bound; beyond 5 standard deviations it counts as 5.
            (
                "clip",
                FunctionTransformer(np.clip, kw_args={"a_min": -5.0, "a_max": 5.0}, feature_names_out="one-to-one"),
            ),
        ]
    )
    pre = ColumnTransformer(
        [
            ("num", numeric, list(spec.numeric)),
            (
                "cat",
                OneHotEncoder(handle_unknown="ignore", min_frequency=min_frequency, sparse_output=False),
                list(spec.categorical),
            ),
        ]
    )
    return Pipeline(
        [
            (PRE, pre),
            (CENTER, StandardScaler(with_std=False)),
            (LOGREG, LogisticRegression(C=C, max_iter=2000, random_state=seed)),
        ]
    )


FAMILIES = ("lightgbm", "logistic_regression")


def family(pipeline: Pipeline) -> str:
    """``lightgbm`` or ``logistic_regression``: which of the two pipelines this is."""
    if LGBM in pipeline.named_steps:
        return "lightgbm"
    if LOGREG in pipeline.named_steps:
        return "logistic_regression"
    raise ValueError(f"not one of the model pipelines {FAMILIES}: steps {list(pipeline.named_steps)}")


def explain(pipeline: Pipeline, spec: FeatureSpec, X: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Each feature's contribution to each row's log-odds (before calibration), and the rows' base value.

    Contributions plus the base value add up to the pipeline's log-odds.
    LightGBM: TreeSHAP (``pred_contrib``). Logistic regression: coefficient
    times the centred input column, summed back to the source feature (a
    numeric value with its missing indicator; a category's one-hot levels); the
    base value is the intercept. Columns are ``spec.columns``.
    """
    X = spec.frame(X)
    kind = family(pipeline)
    if kind == "lightgbm":
        Xt = pipeline.named_steps[PRE].transform(X)
        contrib = pipeline.named_steps[LGBM].booster_.predict(Xt, pred_contrib=True)
        return pd.DataFrame(contrib[:, :-1], columns=list(Xt.columns), index=X.index)[spec.columns], contrib[:, -1]
    pre, logreg = pipeline.named_steps[PRE], pipeline.named_steps[LOGREG]
    Xt = np.asarray(pipeline.named_steps[CENTER].transform(pre.transform(X)), dtype=float)
    terms = Xt * logreg.coef_[0]
    source = source_columns(list(pre.get_feature_names_out()), spec)
    out = pd.DataFrame(0.0, index=X.index, columns=spec.columns)
    for j, column in enumerate(source):
        out[column] += terms[:, j]
    return out, np.full(len(X), float(logreg.intercept_[0]))


def source_columns(names: list[str], spec: FeatureSpec) -> list[str]:
    """The input column behind each output column of the baseline's ``pre`` step (``num__x``,
    ``num__missingindicator_x``, ``cat__x_level``)."""
    out = []
    for name in names:
        block, _, rest = name.partition("__")
        if block == "num":
            column = rest if rest in spec.numeric else rest.removeprefix("missingindicator_")
            if column not in spec.numeric:
                raise ValueError(f"cannot tell which numeric column {name!r} comes from")
        elif block == "cat":
            matches = [c for c in spec.categorical if rest.startswith(f"{c}_")]
            if not matches:
                raise ValueError(f"cannot tell which categorical column {name!r} comes from")
            column = max(matches, key=len)  # 'plan_type_x' belongs to 'plan_type', not to 'plan'
        else:
            raise ValueError(f"unexpected block {block!r} in baseline output column {name!r}")
        out.append(column)
    return out


def feature_importance(pipeline: Pipeline, spec: FeatureSpec, X_sample: pd.DataFrame) -> tuple[pd.Series, str]:
    """Importance of each input feature and what it measures (LightGBM: total split gain; logistic regression: mean
    |contribution|)."""
    if family(pipeline) == "lightgbm":
        booster = pipeline.named_steps[LGBM].booster_
        return pd.Series(booster.feature_importance("gain"), index=booster.feature_name(), dtype=float), "total gain"
    contrib, _ = explain(pipeline, spec, X_sample)
    return contrib.abs().mean(), "mean |contribution| (log-odds)"


def calibrate(fitted: Pipeline, X_cal: pd.DataFrame, y_cal: np.ndarray, method: str) -> CalibratedClassifierCV:
    """Map scores to probabilities on rows the model was not fitted on; the result is one estimator."""
    return CalibratedClassifierCV(FrozenEstimator(fitted), method=method).fit(X_cal, y_cal)
