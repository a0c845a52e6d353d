"""Uplift: how much a retention contact lowers a customer's probability of churning, learned from randomised campaigns.

Sign convention, everywhere: ``uplift = P(churn | not contacted) - P(churn | contacted)``; positive means a contact
keeps the customer, negative marks a "sleeping dog" whom a contact pushes out.

Three meta-learners on LightGBM and one linear model, each on the scikit-learn API (``fit(X, treated, churned)``,
``uplift(X)``):

* :class:`TLearner`: one churn model per group; uplift is the difference of their probabilities.
* :class:`XLearner` (Kunzel et al., PNAS 2019): each group's outcomes against the other group's model give imputed
  effects, which two regressions learn; they are blended by the treatment share.
* :class:`DRLearner` (doubly robust, Kennedy 2023): cross-fitted outcome models and the known assignment
  probability give an unbiased pseudo-outcome per customer, which one regression learns.
* :class:`InteractionLearner` (Lo, 2002): one regularised logistic regression with contact x feature terms.

Written here rather than taken from causalml or econml: both install (``../shared/STACK_NOTES.md``), but together
they add about 1.6 GB (numba, llvmlite, shap, statsmodels) to an environment every CI run builds, for three
formulas of a few lines each over the LightGBM models and the ordinal preprocessing this project already has (one
definition, :func:`models.estimators.lightgbm_pipeline`). The metrics follow scikit-uplift's definitions (its package
is unmaintained and does not import beside scikit-learn >= 1.5): :func:`qini_curve`, :func:`qini_coefficient`
(model area minus random area over perfect area minus random area), :func:`auuc` (the same normalisation on the
uplift curve) and :func:`uplift_at` (control churn rate minus treated churn rate in the top share).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from models.errors import ModelInputError
from models.estimators import PRE, FeatureSpec, baseline_pipeline, lightgbm_pipeline

LEARNERS = ("t_learner", "x_learner", "dr_learner", "interaction")

# Campaign data are small (thousands of contacts, a few hundred churners in the control group) and the effect is a
# few points of probability: shallow, slow, heavily regularised trees. On two default-size datasets (seeds 42 and 43)
# these raised every learner's validation Qini over 300 trees of 15 leaves (the best from -0.007 / -0.003 to +0.003 /
# +0.001).
DEFAULT_PARAMS = {
    "n_estimators": 150,
    "learning_rate": 0.03,
    "num_leaves": 7,
    "min_child_samples": 150,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.5,
    "reg_lambda": 10.0,
    "n_jobs": 1,  # as train.yaml: on a shared machine a second thread waits at every split of so small a fit
}


def _lgbm(kind: str, params: dict, seed: int):
    model = lgb.LGBMClassifier if kind == "classifier" else lgb.LGBMRegressor
    return model(random_state=seed, verbose=-1, deterministic=True, force_row_wise=True, **params)


def _check(X: np.ndarray, treated: np.ndarray, churned: np.ndarray) -> None:
    if len(X) != len(treated) or len(X) != len(churned):
        raise ModelInputError(f"uplift data of unequal lengths: {len(X)} rows, {len(treated)}, {len(churned)}")
    for name, mask in (("treated", treated), ("control", ~treated)):
        if mask.sum() < 2 or np.unique(churned[mask]).size < 2:
            raise ModelInputError(f"the {name} group needs churners and non-churners to learn from ({mask.sum()} rows)")


@dataclass
class TLearner:
    """Two churn models, one per group: ``uplift = p_control(x) - p_treated(x)``."""

    params: dict = field(default_factory=lambda: dict(DEFAULT_PARAMS))
    seed: int = 0

    def fit(self, X: np.ndarray, treated: np.ndarray, churned: np.ndarray) -> TLearner:
        _check(X, treated, churned)
        self.control_ = _lgbm("classifier", self.params, self.seed).fit(X[~treated], churned[~treated])
        self.treated_ = _lgbm("classifier", self.params, self.seed).fit(X[treated], churned[treated])
        return self

    def probabilities(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Churn probability without and with a contact."""
        return self.control_.predict_proba(X)[:, 1], self.treated_.predict_proba(X)[:, 1]

    def uplift(self, X: np.ndarray) -> np.ndarray:
        p0, p1 = self.probabilities(X)
        return p0 - p1


@dataclass
class XLearner:
    """Imputed effects regressed per group, blended by the treatment share ``e``: ``e * tau_c + (1 - e) * tau_t``.

    Treated customers' effect is imputed as the control model's churn probability minus their own outcome;
    control customers' as their outcome minus the treated model's probability.
    """

    params: dict = field(default_factory=lambda: dict(DEFAULT_PARAMS))
    seed: int = 0

    def fit(self, X: np.ndarray, treated: np.ndarray, churned: np.ndarray) -> XLearner:
        t = TLearner(self.params, self.seed).fit(X, treated, churned)
        y = churned.astype(float)
        imputed_t = t.control_.predict_proba(X[treated])[:, 1] - y[treated]
        imputed_c = y[~treated] - t.treated_.predict_proba(X[~treated])[:, 1]
        self.tau_treated_ = _lgbm("regressor", self.params, self.seed).fit(X[treated], imputed_t)
        self.tau_control_ = _lgbm("regressor", self.params, self.seed).fit(X[~treated], imputed_c)
        self.share_ = float(treated.mean())
        return self

    def uplift(self, X: np.ndarray) -> np.ndarray:
        e = self.share_
        return e * self.tau_control_.predict(X) + (1 - e) * self.tau_treated_.predict(X)


@dataclass
class DRLearner:
    """One regression on the doubly robust pseudo-outcome, with outcome models cross-fitted over ``folds``.

    ``phi = m0 - m1 + (1 - T)(Y - m0) / (1 - e) - T (Y - m1) / e``, where ``m0``, ``m1`` are the churn
    probabilities without and with contact from models that never saw the row, and ``e`` the assignment
    probability (a randomised campaign's treatment share, known by design). Its mean given ``x`` is the uplift
    whenever either the outcome models or ``e`` are right.
    """

    params: dict = field(default_factory=lambda: dict(DEFAULT_PARAMS))
    seed: int = 0
    folds: int = 3

    def fit(
        self, X: np.ndarray, treated: np.ndarray, churned: np.ndarray, propensity: np.ndarray | None = None
    ) -> DRLearner:
        _check(X, treated, churned)
        e = np.full(len(X), treated.mean()) if propensity is None else np.asarray(propensity, dtype=float)
        m0, m1 = self._cross_fitted(X, treated, churned)
        y, t = churned.astype(float), treated.astype(float)
        self.pseudo_ = m0 - m1 + (1 - t) * (y - m0) / (1 - e) - t * (y - m1) / e
        self.tau_ = _lgbm("regressor", self.params, self.seed).fit(X, self.pseudo_)
        return self

    def _cross_fitted(self, X: np.ndarray, treated: np.ndarray, churned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m0, m1 = np.empty(len(X)), np.empty(len(X))
        strata = treated.astype(int) * 2 + churned.astype(int)  # every fold holds both groups' churners
        for fit_rows, held in StratifiedKFold(self.folds, shuffle=True, random_state=self.seed).split(X, strata):
            t = TLearner(self.params, self.seed).fit(X[fit_rows], treated[fit_rows], churned[fit_rows])
            m0[held] = t.control_.predict_proba(X[held])[:, 1]
            m1[held] = t.treated_.predict_proba(X[held])[:, 1]
        return m0, m1

    def uplift(self, X: np.ndarray) -> np.ndarray:
        return self.tau_.predict(X)


@dataclass
class InteractionLearner:
    """Lo's interaction model (2002): one L2-regularised logistic regression of churn on the features, the contact,
    and the contact times each feature; uplift is its churn probability without the contact minus with it.

    A linear model of the effect on the log-odds: far less variance than trees on a few thousand contacts, at the
    cost of effects that are not linear in the scaled, clipped features. ``C`` is scikit-learn's inverse penalty.
    """

    C: float = 0.05
    seed: int = 0

    @staticmethod
    def _design(X: np.ndarray, t: np.ndarray) -> np.ndarray:
        return np.hstack([X, t[:, None], X * t[:, None]])

    def fit(self, X: np.ndarray, treated: np.ndarray, churned: np.ndarray) -> InteractionLearner:
        _check(X, treated, churned)
        model = LogisticRegression(C=self.C, max_iter=5000, random_state=self.seed)
        self.model_ = model.fit(self._design(X, treated.astype(float)), churned)
        return self

    def uplift(self, X: np.ndarray) -> np.ndarray:
        p = [self.model_.predict_proba(self._design(X, np.full(len(X), t)))[:, 1] for t in (0.0, 1.0)]
        return p[0] - p[1]


Learner = TLearner | XLearner | DRLearner | InteractionLearner


def learner(name: str, params: dict | None = None, seed: int = 0) -> Learner:
    """A meta-learner by name (``LEARNERS``); ``params`` are the LightGBM learners' (the interaction model has none)."""
    if name == "interaction":
        return InteractionLearner(seed=seed)
    kinds = {"t_learner": TLearner, "x_learner": XLearner, "dr_learner": DRLearner}
    if name not in kinds:
        raise ModelInputError(f"uplift learner must be one of {list(LEARNERS)}, got {name!r}")
    return kinds[name](dict(DEFAULT_PARAMS if params is None else params), seed)


def _preprocessor(spec: FeatureSpec, name: str, seed: int):
    """The project's one preprocessing of each model family: the logistic regression's (imputed, scaled, clipped,
    one-hot) for the interaction model, LightGBM's (numbers as they are, ordinal categories) for the others."""
    if name == "interaction":
        return clone(baseline_pipeline(spec, 1.0, seed).named_steps[PRE])
    return clone(lightgbm_pipeline(spec, {}, seed, None).named_steps[PRE])


@dataclass
class UpliftModel:
    """A fitted meta-learner with the preprocessing it was fitted on: raw feature rows in, uplift out."""

    spec: FeatureSpec
    learner_name: str
    params: dict = field(default_factory=lambda: dict(DEFAULT_PARAMS))
    seed: int = 0

    def fit(self, frame: pd.DataFrame, treated: np.ndarray, churned: np.ndarray) -> UpliftModel:
        """``frame``: feature rows at each contact's date; ``treated``/``churned``: booleans of the same rows."""
        self.pre_ = _preprocessor(self.spec, self.learner_name, self.seed)
        X = np.asarray(self.pre_.fit_transform(self.spec.frame(frame)), dtype=float)
        self.learner_ = learner(self.learner_name, self.params, self.seed)
        self.learner_.fit(X, np.asarray(treated, dtype=bool), np.asarray(churned, dtype=bool))
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw feature rows as the learner's input matrix."""
        return np.asarray(self.pre_.transform(self.spec.frame(frame)), dtype=float)

    def uplift(self, frame: pd.DataFrame) -> np.ndarray:
        return self.learner_.uplift(self.transform(frame))


# The features' ceiling fits noise-free targets (the true effect), so it takes more trees and leaves than the
# learners, which see one noisy outcome per contact.
CEILING_PARAMS = {"n_estimators": 400, "learning_rate": 0.03, "num_leaves": 15, "min_child_samples": 50, "n_jobs": 1}


def features_ceiling(
    spec: FeatureSpec, frame: pd.DataFrame, true_effect: np.ndarray, test: pd.DataFrame, seed: int = 0
) -> np.ndarray:
    """The most these features can tell about the effect: LightGBM fitted to the *true* individual effect of the
    ``frame`` contacts (what no learner sees: it learns from one noisy outcome per contact), predicted on ``test``.

    A yardstick on synthetic data only, never a model: the gap between the oracle and it is what the features do
    not show (per-customer draws, the action drawn); between it and a learner, what the outcomes' noise hides.
    Contacts without a true effect (``NaN``) are left out of the fit.
    """
    known = ~np.isnan(true_effect)
    pre = _preprocessor(spec, "t_learner", seed)
    X = np.asarray(pre.fit_transform(spec.frame(frame[known])), dtype=float)
    model = _lgbm("regressor", CEILING_PARAMS, seed).fit(X, true_effect[known])
    return model.predict(np.asarray(pre.transform(spec.frame(test)), dtype=float))


# --- metrics ------------------------------------------------------------------------------------------------------
def qini_curve(churned: np.ndarray, treated: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Customers targeted (x) against customers kept (y) when the ``score``'s top x are contacted.

    ``y(n) = treated retained(n) - control retained(n) * treated(n) / control(n)`` over the top ``n``, at each
    distinct score, starting at (0, 0): scikit-uplift's ``qini_curve`` with retention as the outcome.
    """
    return _curve(churned, treated, score, lambda yt, yc, nt, nc, n: yt - yc * _ratio(nt, nc))


def uplift_curve(churned: np.ndarray, treated: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scikit-uplift's ``uplift_curve``: ``(treated retention rate - control retention rate)(n) * n``."""
    return _curve(churned, treated, score, lambda yt, yc, nt, nc, n: (_ratio(yt, nt) - _ratio(yc, nc)) * n)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=float), where=b != 0)


def _curve(churned, treated, score, value) -> tuple[np.ndarray, np.ndarray]:
    retained = 1.0 - np.asarray(churned, dtype=float)
    t = np.asarray(treated, dtype=float)
    order = np.argsort(-np.asarray(score, dtype=float), kind="mergesort")
    s, y, t = np.asarray(score, dtype=float)[order], retained[order], t[order]
    ends = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # the last row of each run of equal scores
    nt, yt, yc = np.cumsum(t)[ends], np.cumsum(y * t)[ends], np.cumsum(y * (1 - t))[ends]
    n = ends + 1.0
    return np.r_[0.0, n], np.r_[0.0, value(yt, yc, nt, n - nt, n)]


def _normalised_area(curve, perfect_score, churned, treated, score) -> float:
    """(model area - random area) / (perfect area - random area), as scikit-uplift normalises both curves."""
    churned, treated = np.asarray(churned, dtype=bool), np.asarray(treated, dtype=bool)
    x, y = curve(churned, treated, score)
    xp, yp = curve(churned, treated, perfect_score(~churned, treated))
    random_area = np.trapezoid([0.0, yp[-1]], [0.0, xp[-1]])
    perfect = np.trapezoid(yp, xp) - random_area
    return float((np.trapezoid(y, x) - random_area) / perfect) if perfect else float("nan")


def _perfect_qini(retained: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """Treated who stayed first, control who stayed last (``perfect_qini_curve(negative_effect=True)``)."""
    return retained * treated.astype(float) - retained * (~treated).astype(float)


def _perfect_uplift(retained: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """scikit-uplift's ``perfect_uplift_curve`` ordering."""
    control_stayers, treated_leavers = np.sum(retained & ~treated), np.sum(~retained & treated)
    summand = retained if control_stayers > treated_leavers else treated
    return 2.0 * (retained == treated) + summand


def qini_coefficient(churned: np.ndarray, treated: np.ndarray, score: np.ndarray) -> float:
    """scikit-uplift's ``qini_auc_score`` (``negative_effect=True``): 1 for a perfect ranking, about 0 for random."""
    return _normalised_area(qini_curve, _perfect_qini, churned, treated, score)


def auuc(churned: np.ndarray, treated: np.ndarray, score: np.ndarray) -> float:
    """scikit-uplift's ``uplift_auc_score``: the uplift curve's area, normalised as the Qini coefficient."""
    return _normalised_area(uplift_curve, _perfect_uplift, churned, treated, score)


def uplift_at(churned: np.ndarray, treated: np.ndarray, score: np.ndarray, share: float) -> float:
    """Control churn rate minus treated churn rate among the top ``share`` of all customers by ``score``."""
    churned, treated = np.asarray(churned, dtype=bool), np.asarray(treated, dtype=bool)
    k = max(int(share * len(score)), 1)  # scikit-uplift's int(n * k)
    top = np.argsort(np.asarray(score, dtype=float), kind="mergesort")[::-1][:k]  # ties as scikit-uplift orders them
    c, t = churned[top][~treated[top]], churned[top][treated[top]]
    return float(c.mean() - t.mean()) if c.size and t.size else float("nan")


METRICS = {
    "qini": qini_coefficient,
    "auuc": auuc,
    "uplift_at_10": lambda y, t, s: uplift_at(y, t, s, 0.10),
    "uplift_at_20": lambda y, t, s: uplift_at(y, t, s, 0.20),
    "uplift_at_30": lambda y, t, s: uplift_at(y, t, s, 0.30),
}


@dataclass(frozen=True)
class Interval:
    """A metric on the customers given, and its percentile-bootstrap interval."""

    value: float
    low: float
    high: float


def bootstrap_metrics(
    churned: np.ndarray,
    treated: np.ndarray,
    score: np.ndarray,
    resamples: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval]:
    """Every metric in ``METRICS`` with an interval, resampling treated and control customers separately."""
    churned, treated, score = np.asarray(churned, bool), np.asarray(treated, bool), np.asarray(score, float)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(treated), np.flatnonzero(~treated)]
    draws = {name: [] for name in METRICS}
    for _ in range(resamples):
        rows = np.concatenate([rng.choice(g, g.size) for g in groups])
        for name, metric in METRICS.items():
            draws[name].append(metric(churned[rows], treated[rows], score[rows]))
    tail = 100 * (1 - level) / 2
    return {name: _interval(metric(churned, treated, score), draws[name], tail) for name, metric in METRICS.items()}


def _interval(value: float, draws: list[float], tail: float) -> Interval:
    """Percentile interval of the finite draws (a top share may hold no control customer in a resample)."""
    finite = np.asarray(draws, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return Interval(value, float("nan"), float("nan"))
    return Interval(value, float(np.percentile(finite, tail)), float(np.percentile(finite, 100 - tail)))


# --- policy value from logged randomised campaigns -------------------------------------------------------------------
def policy_value(
    churned: np.ndarray,
    treated: np.ndarray,
    selected: np.ndarray,
    propensity: float | np.ndarray,
    outcome_models: tuple[np.ndarray, np.ndarray] | None = None,
    level: float = 0.95,
) -> Interval:
    """Customers a policy that contacts ``selected`` would have kept, against contacting none of them, on a past
    randomised campaign: the sum over the selected of each customer's inverse-propensity (or, with
    ``outcome_models`` = churn probabilities without and with contact from models that never saw these rows,
    doubly robust) pseudo-outcome.

    ``selected`` must not depend on these customers' outcomes (a ranking from a model trained elsewhere). The
    estimate is unbiased over the campaign's random assignment; its interval is the normal one with the selected
    pseudo-outcomes' sample variance, conservative when effects differ between customers.
    """
    y, t = np.asarray(churned, dtype=float), np.asarray(treated, dtype=float)
    e = np.broadcast_to(np.asarray(propensity, dtype=float), y.shape)
    m0, m1 = (np.zeros_like(y), np.zeros_like(y)) if outcome_models is None else map(np.asarray, outcome_models)
    psi = m0 - m1 + (1 - t) * (y - m0) / (1 - e) - t * (y - m1) / e
    chosen = psi[np.asarray(selected, dtype=bool)]
    if chosen.size < 2:
        raise ModelInputError(f"a policy value needs at least 2 selected customers, got {chosen.size}")
    half = float(norm.ppf(0.5 + level / 2)) * np.sqrt(chosen.size * chosen.var(ddof=1))
    value = float(chosen.sum())
    return Interval(value, value - half, value + half)
