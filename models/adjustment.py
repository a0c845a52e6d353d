"""Regression adjustment of a measured recovery: a prognostic churn score, known before treatment, narrows the interval.

The measured saving compares churn in the treatment and control groups of a randomised campaign. What is known of
each customer before the contact (how likely they were to churn anyway) explains part of who churned in either
group; removing that part leaves less noise. The estimator is the regression-imputation form of Lin's (2013)
adjustment, with the covariate a machine-learned prognostic score (Guo et al. 2021's MLRATE; "CUPAC"):

    saved = n_t x (ybar_c + b_c (mbar_t - mbar_c) - ybar_t),   b_c = cov(m, y) / var(m) in the control group

that is, the control group's churn rate carried to the treated group's mean score, minus the treated group's rate.
Randomisation makes mbar_t - mbar_c zero in expectation, so the adjustment removes noise, not signal, and it stays
consistent whatever the score's quality; a score that has seen these outcomes would not, so the score must come
from a model fitted on data before the first action (:func:`pre_period_dates`) or be cross-fitted over customers
(:func:`cross_fitted`).

The prognostic model has fixed, modest LightGBM settings (:data:`PROGNOSTIC_PARAMS`) rather than a search: it is a
covariate, whose quality only changes the interval's width, and a search would cost a training run per recovery.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from features.build import LABEL, feature_columns
from models.estimators import FeatureSpec, lightgbm_pipeline

PROGNOSTIC = "prognostic"  # the outcomes' column holding each customer's prognostic churn score at the action date
PROGNOSTIC_PARAMS = {
    "n_estimators": 300,
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_child_samples": 200,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
}


@dataclass(frozen=True)
class Prognostic:
    """Each action row's prognostic score (NaN-free, aligned with the outcomes) and how it was made, in words."""

    score: np.ndarray
    method: str  # "pre-period model" or "cross-fitted"
    description: str


def pre_period_dates(first_action: pd.Timestamp, horizon_days: int, count: int) -> list[pd.Timestamp]:
    """``count`` monthly as-of dates whose label windows close before ``first_action``, latest first: a model
    trained on them has seen no outcome of any action dated ``first_action`` or later."""
    latest = pd.Timestamp(first_action) - pd.Timedelta(days=horizon_days)
    return [pd.Timestamp(latest - pd.DateOffset(months=k)) for k in range(count)]


def fit_prognostic(snapshot: pd.DataFrame, seed: int = 0):
    """A LightGBM churn model on a labelled snapshot (rows with a label), as ``(pipeline, spec)``."""
    labelled = snapshot[snapshot[LABEL].notna()].sort_values(["as_of", "customer_id"], kind="stable")
    spec = FeatureSpec.infer(labelled, feature_columns(labelled))
    y = labelled[LABEL].to_numpy(dtype=int)
    return lightgbm_pipeline(spec, PROGNOSTIC_PARAMS, seed, None).fit(spec.frame(labelled), y), spec


def predict_prognostic(model, features: pd.DataFrame) -> np.ndarray:
    pipeline, spec = model
    return pipeline.predict_proba(spec.frame(features))[:, 1]


def cross_fitted(features: pd.DataFrame, churned: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """Out-of-fold churn scores of the action rows themselves, folds grouped by customer: no row's score comes from
    a model that saw that customer's outcome. Treatment is not an input, so the score is prognostic only."""
    frame = features.assign(**{LABEL: np.asarray(churned, dtype=int)})
    out = np.full(len(frame), np.nan)
    groups = frame["customer_id"].astype(str).to_numpy()
    for fit_rows, score_rows in GroupKFold(n_splits=folds).split(frame, groups=groups):
        out[score_rows] = predict_prognostic(fit_prognostic(frame.iloc[fit_rows], seed), frame.iloc[score_rows])
    return out


def control_slope(control_churned: np.ndarray, control_score: np.ndarray) -> float:
    """b_c: the control group's least-squares slope of churn on the score (0 when the score does not vary)."""
    if len(control_score) < 2:
        return 0.0
    var = float(np.var(control_score))
    return float(np.mean((control_score - control_score.mean()) * control_churned) / var) if var > 0 else 0.0


def adjusted_saved(yt: np.ndarray, yc: np.ndarray, mt: np.ndarray, mc: np.ndarray, slope: float | None = None):
    """Saved customers by regression imputation (module docstring); ``slope`` fixed, or fitted on the control group.

    Broadcasts over leading axes (bootstrap resamples in rows): each row its own slope when ``slope`` is None."""
    if slope is None:
        mean_m = mc.mean(axis=-1, keepdims=True)
        var = np.mean((mc - mean_m) ** 2, axis=-1)
        cov = np.mean((mc - mean_m) * yc, axis=-1)
        slope = np.divide(cov, var, out=np.zeros_like(cov, dtype=float), where=var > 0)
    control_at_treated = yc.mean(axis=-1) + slope * (mt.mean(axis=-1) - mc.mean(axis=-1))
    return (control_at_treated - yt.mean(axis=-1)) * yt.shape[-1]
