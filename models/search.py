"""A LightGBM search whose ranges follow the data, and the logistic-regression baseline's choice of ``C``.

Both choose on the validation rows only: the search is handed the training and
validation rows and nothing else, so the test rows cannot steer it.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import asdict, dataclass, field

import lightgbm as lgb
import numpy as np
import optuna
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import log_loss
from sklearn.pipeline import Pipeline

from models.errors import ModelInputError
from models.estimators import (
    CENTER,
    LGBM,
    LOGREG,
    PRE,
    FeatureSpec,
    baseline_pipeline,
    few_level_categories,
    lightgbm_pipeline,
)

log = logging.getLogger(__name__)

# What a trial tunes; a key set in ``model.params`` is fixed there instead of searched.
TUNED = ("num_leaves", "min_child_samples", "learning_rate", "reg_lambda", "colsample_bytree", "subsample")


@dataclass(frozen=True)
class SearchSpace:
    """Ranges of the LightGBM search for one training set; each is (low, high), sampled as noted.

    Built by :meth:`for_data` from the number of training rows and churners,
    because the right amount of regularisation depends on how much evidence a
    leaf can hold. The ranges are written to the model card.
    """

    num_leaves: tuple[int, int]  # log scale
    min_child_samples: tuple[int, int]  # log scale
    learning_rate: tuple[float, float]  # log scale
    reg_lambda: tuple[float, float]  # log scale
    colsample_bytree: tuple[float, float]  # uniform
    subsample: tuple[float, float]  # uniform (bagging each round: ``subsample_freq`` 1)

    @classmethod
    def for_data(cls, rows: int, positives: int) -> SearchSpace:
        """Ranges for ``rows`` training rows of which ``positives`` churned (rows as fitted: after negative sampling).

        * ``min_child_samples`` (rows in a leaf): from ``max(5, rows/1000,
          2*rows/positives)`` (a leaf holds at least about two churners, and on
          large data no leaf is a handful of rows) up to ``max(4*low,
          min(rows/20, positives/4))`` (a leaf of a twentieth of the rows, or
          holding a quarter of the churners, is as coarse as a useful tree
          gets). 220k rows with 15k churners: 220..3,750; 4.5k rows with 1.2k
          churners (IBM Telco's training rows): 8..225.
        * ``num_leaves`` 4..63 (log scale), capped so that the leaves can all
          be filled; below 20k rows from 2, because stumps (an additive model)
          are often the best a few thousand rows support.
        * ``learning_rate`` 0.01..0.1; below 20k rows from 0.005 (many slow
          steps regularise small data, and trees are cheap there), from 200k
          rows 0.02..0.1 (each tree costs, and the time budget buys more trials).
        * ``reg_lambda`` (L2 on leaf values) 0.1..100, ``colsample_bytree``
          0.3..1, ``subsample`` 0.5..1, whatever the size.
        """
        if rows < 2 or positives < 1:
            raise ModelInputError(
                f"the search needs churners and non-churners in training; got {rows} rows, {positives} churners"
            )
        low = max(5, round(rows / 1000), math.ceil(2 * rows / positives))
        high = max(4 * low, min(rows // 20, positives // 4))
        high = min(high, max(low, rows // 2))  # degenerate data (a handful of churners): keep the ranges valid
        low = min(low, max(1, rows // 4), high)
        leaves_low = 2 if rows < 20_000 else 4
        leaves_high = int(max(leaves_low + 2, min(63, rows // low)))
        return cls(
            num_leaves=(leaves_low, leaves_high),
            min_child_samples=(int(low), int(high)),
            learning_rate=(0.005 if rows < 20_000 else 0.01 if rows < 200_000 else 0.02, 0.1),
            reg_lambda=(0.1, 100.0),
            colsample_bytree=(0.3, 1.0),
            subsample=(0.5, 1.0),
        )

    def suggest(self, trial: optuna.Trial, fixed: dict) -> dict:
        """One trial's parameters; names in ``fixed`` are left out (their value comes from ``model.params``)."""
        out = {}
        for name in TUNED:
            if name in fixed:
                continue
            low, high = getattr(self, name)
            if isinstance(low, int):
                out[name] = trial.suggest_int(name, low, high, log=True)
            else:
                out[name] = trial.suggest_float(name, low, high, log=name in ("learning_rate", "reg_lambda"))
        return out

    def start(self, fixed: dict) -> dict:
        """The first trial: a middle-of-the-road setting, so a short search still has one sound candidate."""
        geo = lambda lo, hi: math.sqrt(lo * hi)  # noqa: E731 - the middle of a log-scale range
        point = {
            "num_leaves": int(np.clip(15, *self.num_leaves)),
            "min_child_samples": int(round(geo(*self.min_child_samples))),
            "learning_rate": float(np.clip(0.03, *self.learning_rate)),
            "reg_lambda": float(np.clip(5.0, *self.reg_lambda)),
            "colsample_bytree": float(np.clip(0.7, *self.colsample_bytree)),
            "subsample": float(np.clip(0.8, *self.subsample)),
        }
        return {k: v for k, v in point.items() if k not in fixed}

    def to_dict(self) -> dict:
        return {k: list(v) for k, v in asdict(self).items()}

    def describe(self, fixed: dict | None = None) -> str:
        fixed = fixed or {}
        parts = []
        for name in TUNED:
            if name in fixed:
                parts.append(f"`{name}` fixed at {fixed[name]}")
                continue
            low, high = getattr(self, name)
            scale = "log" if name in ("num_leaves", "min_child_samples", "learning_rate", "reg_lambda") else "uniform"
            parts.append(f"`{name}` {low:g}..{high:g} ({scale})")
        return ", ".join(parts)


class _StopRule:
    """Early stopping on the validation log loss, and a hard stop once the search's time is up.

    Works as LightGBM's own ``early_stopping`` callback does (it raises
    ``EarlyStopException`` with the best round), so the model keeps its best
    round either way. ``cut_short`` tells whether the deadline ended it.
    """

    order = 30  # after the evaluation has been recorded

    def __init__(self, patience: int, deadline: float) -> None:
        self.patience, self.deadline = patience, deadline
        self.best_score, self.best_iteration, self.best_results, self.cut_short = math.inf, 0, None, False

    def __call__(self, env) -> None:
        score = env.evaluation_result_list[0][2]  # binary_logloss on the validation rows (the only metric and set)
        if score < self.best_score:
            self.best_score, self.best_iteration, self.best_results = score, env.iteration, env.evaluation_result_list
        self.cut_short = time.perf_counter() > self.deadline
        if self.cut_short or env.iteration - self.best_iteration >= self.patience:
            raise lgb.callback.EarlyStopException(self.best_iteration, self.best_results)


@dataclass
class SearchResult:
    """The chosen pipeline (fitted on the training rows), its parameters and every trial."""

    pipeline: Pipeline
    params: dict  # the tuned values of the chosen trial (not the fixed ones)
    best_iteration: int
    val_log_loss: float
    trials: pd.DataFrame  # trial, params..., val_log_loss, rounds, seconds, cut_short, selected
    space: SearchSpace
    seconds: float


def search_lightgbm(
    spec: FeatureSpec,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_val: pd.DataFrame,
    y_val: np.ndarray,
    params: dict,
    trials: int,
    timeout_seconds: float,
    seed: int,
    early_stopping_rounds: int,
    class_weight: str | None,
    sample_weight: np.ndarray | None = None,
) -> SearchResult:
    """TPE search over :class:`SearchSpace` ranges for this training set; lowest validation log loss wins.

    Each trial fits on the training rows with early stopping on the validation
    rows; the score is the validation log loss of the uncalibrated
    probabilities at the best round. The search stops after ``trials`` trials
    or once ``timeout_seconds`` have passed: no trial starts after that, and the
    running one stops adding trees (its best round so far stands, marked
    ``cut_short``). So the budget holds on a busy machine, and a seed gives the
    same trials in the same order as long as the trial count, not the clock,
    ends the search. ``sample_weight`` (from negative sampling) weights the
    training rows; validation rows are never weighted. Unless ``params`` sets ``n_jobs``, LightGBM uses one thread below
    50k training rows: threads gain nothing there, and on a shared, busy machine
    a thread waiting for another at every split slows a fit many times over.
    """
    started = time.perf_counter()
    space = SearchSpace.for_data(len(y_train), int(np.sum(y_train)))
    fixed = {k: v for k, v in params.items() if k in TUNED}
    if "n_jobs" not in params and len(y_train) < 50_000:
        params = {**params, "n_jobs": 1}
    base = lightgbm_pipeline(spec, params, seed, class_weight)
    pre = clone(base.named_steps[PRE]).fit(X_train)  # the same encoding for every trial: fitted once
    fitting = _Trials(
        base.named_steps[LGBM],
        pre.transform(X_train),
        y_train,
        sample_weight,
        pre.transform(X_val),
        y_val,
        few_level_categories(pre, spec) or "auto",
        early_stopping_rounds,
        started + timeout_seconds,
    )
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one INFO line per trial is noise in the job's log
    try:
        study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
        study.enqueue_trial(space.start(fixed))
        study.optimize(
            lambda trial: fitting.run(trial.number, space.suggest(trial, fixed)),
            n_trials=trials,
            timeout=max(fitting.deadline - time.perf_counter(), 0.0),
        )
    finally:
        optuna.logging.set_verbosity(verbosity)
    table = pd.DataFrame(fitting.records)
    best = fitting.best
    table["selected"] = table["trial"] == best["trial"]
    seconds = time.perf_counter() - started
    log.info(
        "LightGBM search: %d trial(s) in %.0f s; best validation log loss %.5f (trial %d, %d rounds) %s",
        len(table),
        seconds,
        best["loss"],
        best["trial"],
        best["rounds"],
        best["tuned"],
    )
    pipeline = Pipeline([(PRE, pre), (LGBM, best["model"])]).set_output(transform="pandas")
    return SearchResult(pipeline, best["tuned"], best["rounds"], best["loss"], table, space, seconds)


@dataclass
class _Trials:
    """What every trial of one search fits on, and what the trials so far gave (their records and the best)."""

    model: lgb.LGBMClassifier  # the unfitted template; each trial clones it with its parameters
    Xt_train: pd.DataFrame  # encoded once for all trials
    y_train: np.ndarray
    sample_weight: np.ndarray | None
    Xt_val: pd.DataFrame
    y_val: np.ndarray
    categorical: list[str] | str
    patience: int
    deadline: float  # perf_counter time after which no trial starts and the running one stops adding trees
    records: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=dict)

    def run(self, number: int, tuned: dict) -> float:
        """Fit one trial with early stopping on the validation rows; its uncalibrated validation log loss."""
        t0 = time.perf_counter()
        model = clone(self.model).set_params(**tuned)
        stop = _StopRule(self.patience, self.deadline)
        model.fit(
            self.Xt_train,
            self.y_train,
            sample_weight=self.sample_weight,
            eval_X=(self.Xt_val,),
            eval_y=(self.y_val,),
            eval_metric="binary_logloss",
            categorical_feature=self.categorical,
            callbacks=[stop],
        )
        loss = float(log_loss(self.y_val, model.predict_proba(self.Xt_val)[:, 1], labels=[0, 1]))
        rounds = int(model.best_iteration_ or model.n_estimators)
        seconds = time.perf_counter() - t0
        self.records.append(
            {
                "trial": number,
                **tuned,
                "val_log_loss": loss,
                "rounds": rounds,
                "seconds": seconds,
                "cut_short": stop.cut_short,
            }
        )
        log.debug(
            "trial %d %s: validation log loss %.5f after %d rounds (%.1f s)", number, tuned, loss, rounds, seconds
        )
        if not self.best or loss < self.best["loss"]:
            self.best.update(loss=loss, model=model, tuned=tuned, rounds=rounds, trial=number)
        return loss


def category_min_frequency(rows: int) -> int:
    """One-hot levels rarer than this share a column: 50 rows on large data, fewer on small (at least 5)."""
    return int(min(50, max(5, rows // 500)))


def fit_baseline(
    spec: FeatureSpec,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_val: pd.DataFrame,
    y_val: np.ndarray,
    C_values: tuple[float, ...],
    seed: int,
    sample_weight: np.ndarray | None = None,
) -> tuple[Pipeline, pd.DataFrame]:
    """Logistic regression with each ``C`` in turn; the lowest validation log loss (uncalibrated) wins.

    The preprocessing is fitted once and each fit starts from the previous
    coefficients (``C`` ascending), so trying a few values costs little more
    than one.
    """
    min_frequency = category_min_frequency(len(y_train))
    template = baseline_pipeline(spec, C_values[0], seed, min_frequency=min_frequency)
    pre = clone(template.named_steps[PRE]).fit(X_train)
    Xt_train, Xt_val = pre.transform(X_train), pre.transform(X_val)
    center = clone(template.named_steps[CENTER]).fit(Xt_train)
    Xt_train, Xt_val = center.transform(Xt_train), center.transform(Xt_val)
    model = clone(template.named_steps[LOGREG]).set_params(warm_start=True)
    rows, best = [], None
    for C in sorted(set(C_values)):
        t0 = time.perf_counter()
        model.set_params(C=C).fit(Xt_train, y_train, sample_weight=sample_weight)
        loss = float(log_loss(y_val, model.predict_proba(Xt_val)[:, 1], labels=[0, 1]))
        rows.append({"C": C, "val_log_loss": loss, "seconds": time.perf_counter() - t0})
        if best is None or loss < best[0]:
            best = (loss, copy.deepcopy(model).set_params(warm_start=False), C)
    assert best is not None
    table = pd.DataFrame(rows)
    table["selected"] = table["C"] == best[2]
    log.info(
        "logistic regression: C=%s chosen on validation log loss %.5f (tried %s)",
        best[2],
        best[0],
        sorted(set(C_values)),
    )
    return Pipeline([(PRE, pre), (CENTER, center), (LOGREG, best[1])]), table
