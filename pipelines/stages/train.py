"""The ``train`` stage: validate, snapshot, split honestly, fit, calibrate, evaluate, log, register, promote."""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
import warnings
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow.dataset as pa_dataset
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold, train_test_split

from features.build import LABEL, WEIGHT, feature_columns
from features.config import FeatureConfig
from features.feeds import feed_counts
from models import evaluate as ev
from models.decisions import hashed_uniform
from models.drift import build_reference
from models.errors import ModelInputError
from models.estimators import FeatureSpec, calibrate, explain, feature_importance
from models.pyfunc import ChurnModel
from models.registry import (
    CHALLENGER,
    CHAMPION,
    Decision,
    decide,
    describe_run,
    start_job_run,
    tracking_uri,
    use_experiment,
    version_link,
)
from models.search import SearchResult, fit_baseline, search_lightgbm
from pipelines.config import TrainConfig, UpliftConfig, end_timestamp
from pipelines.contract import ValidationResult
from pipelines.engines import engine_for, validated_by
from pipelines.errors import UserError
from pipelines.io.files import check_attribute_overrides, load_validated
from pipelines.reporting.html import Verdict, training_report
from pipelines.simulation.truth import load_truth
from pipelines.simulation.truth import truth_folder as find_truth
from pipelines.stages.snapshot import observation_end, snapshot_from_result

log = logging.getLogger(__name__)

PIP_REQUIREMENTS_OF = ("mlflow", "pandas", "numpy", "scikit-learn", "lightgbm", "pyarrow", "cloudpickle")


@dataclass(frozen=True)
class Split:
    """Row masks over the labelled snapshot and how they were chosen."""

    method: str  # out_of_time | stratified
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    description: str
    test_as_of: pd.Timestamp


@dataclass(frozen=True)
class DateRoles:
    train: tuple[pd.Timestamp, ...]
    val: pd.Timestamp
    test: pd.Timestamp


def date_roles(dates, horizon_days: int) -> DateRoles | None:
    """Out-of-time roles of labelled as-of dates, decided from the dates alone (None: too few or too close).

    Test = the latest date; validation = the latest date whose label window
    closes by the test date; train = dates whose label windows close by the
    validation date (:func:`time_roles` with one date each).
    """
    roles = time_roles(dates, horizon_days, 1, 1)
    return DateRoles(roles.train, roles.val[0], roles.test[0]) if roles else None


@dataclass(frozen=True)
class TimeRoles:
    """Dates for each role of an out-of-time split, oldest first."""

    train: tuple[pd.Timestamp, ...]
    val: tuple[pd.Timestamp, ...]
    test: tuple[pd.Timestamp, ...]


def time_roles(dates, horizon_days: int, test_count: int, val_count: int) -> TimeRoles | None:
    """The one out-of-time rule of churn and uplift training: no window of an earlier role reaches the next role.

    Test = the latest ``test_count`` dates; validation = the latest ``val_count`` dates whose outcome windows close
    by the first test date; train = the dates whose windows close by the first validation date. None when a role
    would be empty.
    """
    horizon = pd.Timedelta(days=horizon_days)
    dates = sorted({pd.Timestamp(d) for d in dates})
    test = tuple(dates[-test_count:])
    val = tuple([d for d in dates if d + horizon <= test[0]][-val_count:]) if test else ()
    train = tuple(d for d in dates if d + horizon <= val[0]) if val else ()
    return TimeRoles(train, val, test) if train else None


def split_snapshot(snap: pd.DataFrame, horizon_days: int, config: TrainConfig) -> Split:
    """Out-of-time when there are enough as-of dates, otherwise a stratified split by customer."""
    dates = sorted(snap["as_of"].unique())
    roles = date_roles(dates, horizon_days)
    if roles is not None:
        as_of = snap["as_of"]
        return Split(
            "out_of_time",
            as_of.isin(roles.train).to_numpy(),
            (as_of == roles.val).to_numpy(),
            (as_of == roles.test).to_numpy(),
            f"train on {len(roles.train)} as-of dates {roles.train[0].date()}..{roles.train[-1].date()}; "
            f"early stopping, tuning and calibration on {roles.val.date()}; test on {roles.test.date()}",
            roles.test,
        )
    if len(dates) > 1:
        log.warning(
            "as-of dates %s are too close for an out-of-time split with a %d-day horizon; using the latest date only",
            [str(pd.Timestamp(d).date()) for d in dates],
            horizon_days,
        )
    return _stratified_split(snap, pd.Timestamp(dates[-1]), config)


def negative_sampler(train_dates, rate: float, seed: int):
    """Keep every churner and a ``rate`` share of non-churners on training dates, weighted ``1 / rate``.

    The weights keep the loss, and so the probabilities, those of the full
    data; validation and test dates are never sampled. Whether a customer is
    kept on a date depends on the customer, the date and the seed only (a hash),
    not on where the row sits: the same rows are kept whatever the engine, the
    partitioning or the input's row order.
    """
    train_dates = set(train_dates)

    def sample(as_of: pd.Timestamp, frame: pd.DataFrame) -> pd.DataFrame:
        if as_of not in train_dates or rate >= 1.0:
            return frame.assign(**{WEIGHT: 1.0})
        churner = frame[LABEL].to_numpy(dtype=float) == 1
        keep = churner | (hashed_uniform(frame["customer_id"], as_of, seed) < rate)
        return frame.loc[keep].assign(**{WEIGHT: np.where(churner[keep], 1.0, 1.0 / rate)}).reset_index(drop=True)

    return sample


# Churners and non-churners the validation rows need each: the probability calibration fits on 5 stratified folds of
# them.
MIN_VALIDATION_CLASS = 5


def _validation_class_need(validation_share: float, held_out_share: float) -> int:
    """Churners (and non-churners) a stratified split of the rows needs so that its validation part has enough."""
    return int(np.ceil(MIN_VALIDATION_CLASS / ((1.0 - held_out_share) * validation_share)))


def _class_counts(y: np.ndarray) -> tuple[int, int]:
    return int((y == 1).sum()), int((y == 0).sum())


def check_split_classes(split: Split, y: np.ndarray) -> None:
    """Every part of the split holds churners and non-churners, the validation part enough to calibrate on."""
    need = {"train": 1, "validation": MIN_VALIDATION_CLASS, "test": 1}
    counts = {
        role: _class_counts(y[mask]) for role, mask in zip(need, (split.train, split.val, split.test), strict=True)
    }
    short = {role: c for role, c in counts.items() if min(c) < need[role]}
    if short:
        raise ModelInputError(
            f"too few churners or non-churners to train and evaluate ({split.description}): "
            + "; ".join(
                f"{role} rows hold {c[0]} churner(s) and {c[1]} non-churner(s), at least {need[role]} of each needed"
                for role, c in short.items()
            )
            + ". Use more customers, more as-of dates or a longer horizon"
        )


def _stratified_split(snap: pd.DataFrame, as_of: pd.Timestamp, config: TrainConfig) -> Split:

    rows = np.flatnonzero((snap["as_of"] == as_of).to_numpy())
    y = snap[LABEL].to_numpy(dtype=int)[rows]
    need = _validation_class_need(config.split.validation_share, config.split.test_share)
    churners, stayers = _class_counts(y)
    if min(churners, stayers) < need:
        raise ModelInputError(
            f"as-of date {as_of.date()} has {churners} churner(s) and {stayers} non-churner(s) with an observed label; "
            f"a split by customer needs at least {need} of each (test {config.split.test_share:.0%}, validation "
            f"{config.split.validation_share:.0%} of the rest, {MIN_VALIDATION_CLASS} of each there to calibrate on). "
            "Use more customers, more as-of dates or a longer horizon"
        )
    rest, test = train_test_split(rows, test_size=config.split.test_share, stratify=y, random_state=config.seed)
    y_rest = snap[LABEL].to_numpy(dtype=int)[rest]
    train, val = train_test_split(
        rest, test_size=config.split.validation_share, stratify=y_rest, random_state=config.seed
    )
    masks = [np.zeros(len(snap), dtype=bool) for _ in range(3)]
    for m, idx in zip(masks, (train, val, test), strict=True):
        m[idx] = True
    return Split(
        "stratified",
        *masks,
        f"single as-of date {as_of.date()}: stratified split by customer, test {config.split.test_share:.0%}, "
        f"validation {config.split.validation_share:.0%} of the rest (early stopping, calibration)",
        as_of,
    )


def table_digest(frame: pd.DataFrame) -> str:
    """Content digest of a table (values, column names and order)."""
    h = hashlib.sha256()
    h.update(",".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Selection:
    """The model family chosen on the validation rows, both families' fits, and what the choice saw."""

    family: str  # lightgbm | logistic_regression
    pipeline: object  # the chosen family's fitted, uncalibrated pipeline (training rows)
    model: object  # the chosen pipeline, calibrated on the validation rows
    baseline: object  # the logistic regression, calibrated (the baseline metrics, shipped when it wins)
    search: SearchResult  # the LightGBM search
    baseline_trials: pd.DataFrame  # C tried for the logistic regression
    val_log_loss: dict[str, float]  # calibrated validation log loss of each family: the choice

    @property
    def baseline_C(self) -> float:
        return float(self.baseline_trials.loc[self.baseline_trials["selected"], "C"].iloc[0])


def select_model(
    spec: FeatureSpec,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    w_train: np.ndarray | None,
    X_val: pd.DataFrame,
    y_val: np.ndarray,
    config: TrainConfig,
) -> Selection:
    """Search LightGBM, fit the logistic regression, calibrate both on the validation rows, keep the better.

    Only training and validation rows come in. The family with the lower
    validation log loss *after calibration* ships: those are the probabilities
    a scorer gets, and with ``class_weight: balanced`` the uncalibrated losses
    are not comparable. Calibration has a handful of parameters fitted on
    thousands of rows, so its in-sample advantage is small and the same for
    both. A tie keeps LightGBM.
    """

    m = config.model
    search = search_lightgbm(
        spec,
        X_train,
        y_train,
        X_val,
        y_val,
        m.params,
        m.search.trials,
        m.search.timeout_seconds,
        config.seed if m.search.seed is None else m.search.seed,
        m.early_stopping_rounds,
        m.class_weight,
        sample_weight=w_train,
    )
    lr_pipeline, lr_trials = fit_baseline(
        spec, X_train, y_train, X_val, y_val, config.baseline.C, config.seed, sample_weight=w_train
    )
    calibrated = {
        "lightgbm": (search.pipeline, calibrate(search.pipeline, X_val, y_val, m.calibration)),
        "logistic_regression": (lr_pipeline, calibrate(lr_pipeline, X_val, y_val, m.calibration)),
    }
    losses = {
        k: float(log_loss(y_val, cal.predict_proba(X_val)[:, 1], labels=[0, 1])) for k, (_, cal) in calibrated.items()
    }
    family = "logistic_regression" if losses["logistic_regression"] < losses["lightgbm"] else "lightgbm"
    log.info(
        "validation log loss after calibration: LightGBM %.5f, logistic regression %.5f: shipping %s",
        losses["lightgbm"],
        losses["logistic_regression"],
        family,
    )
    pipeline, model = calibrated[family]
    return Selection(family, pipeline, model, calibrated["logistic_regression"][1], search, lr_trials, losses)


def truth_folder(config: TrainConfig | UpliftConfig) -> Path | None:
    """The ground truth of a training config's data (:func:`pipelines.simulation.truth.truth_folder`)."""
    return find_truth(config.truth, config.data)


def _cv_metrics(
    spec: FeatureSpec, X: pd.DataFrame, y: np.ndarray, w: np.ndarray, config: TrainConfig
) -> dict[str, float]:
    """Cross-validated metrics of the whole procedure: in each fold, search, choose and calibrate anew.

    Each fold's training part is split again into training and validation
    rows (``split.validation_share``) and runs :func:`select_model` there, so
    nothing is tuned on the held-out fold; the rows may therefore be every
    labelled row of the date, test rows included (the test metrics come from
    the main model, which never saw them). Each fold's search has the same
    trials and time budget as the shipped model's, so that the figure measures
    the procedure as configured; cross-validation costs up to ``cv_folds``
    searches more.
    """

    folds = config.split.cv_folds
    need = _validation_class_need(config.split.validation_share, 1.0 / folds)
    if min(_class_counts(y)) < need:
        log.warning(
            "cross-validation skipped: %d churner(s) and %d non-churner(s); each fold needs at least %d of each",
            *_class_counts(y),
            need,
        )
        return {}
    roc, pr = [], []
    for fold, (fit_idx, hold_idx) in enumerate(
        StratifiedKFold(folds, shuffle=True, random_state=config.seed).split(X, y)
    ):
        tr, va = train_test_split(
            fit_idx, test_size=config.split.validation_share, stratify=y[fit_idx], random_state=config.seed
        )
        chosen = select_model(spec, X.iloc[tr], y[tr], w[tr], X.iloc[va], y[va], config)
        m = ev.classification_metrics(y[hold_idx], chosen.model.predict_proba(X.iloc[hold_idx])[:, 1], "")
        log.info("cross-validation fold %d/%d: %s, ROC AUC %.4f", fold + 1, folds, chosen.family, m["roc_auc"])
        roc.append(m["roc_auc"])
        pr.append(m["pr_auc"])
    return {
        "cv_roc_auc_mean": float(np.mean(roc)),
        "cv_roc_auc_std": float(np.std(roc)),
        "cv_pr_auc_mean": float(np.mean(pr)),
        "cv_pr_auc_std": float(np.std(pr)),
    }


def _shap(pipeline, spec: FeatureSpec, X: pd.DataFrame, sample: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-row contributions on a sample (TreeSHAP for LightGBM, coefficient x centred value for logistic regression).

    The values colour the summary plot: categories as their codes.
    """
    rows = X.sample(min(sample, len(X)), random_state=seed)
    contrib, _ = explain(pipeline, spec, rows)
    values = rows.assign(**{c: rows[c].astype("category").cat.codes for c in spec.categorical})
    return contrib, values


# --- the job's steps: load -> roles -> fit -> evaluate -> log -> register -> promote ---------------------------------


@dataclass(frozen=True)
class DatePlan:
    """The as-of dates to build a snapshot at, and the out-of-time role of the labelled ones (None: no roles)."""

    dates: tuple[pd.Timestamp, ...]
    roles: DateRoles | None


@dataclass(frozen=True)
class Rows:
    """One part of the split: its feature matrix, labels and sample weights."""

    X: pd.DataFrame
    y: np.ndarray
    w: np.ndarray


@dataclass(frozen=True)
class TrainingData:
    """What the job trains on: the validated input, its labelled snapshot, the split and each part's rows."""

    validation: ValidationResult  # the validated tables, their report and quarantine
    feature_config: FeatureConfig
    observed_to: pd.Timestamp  # outcomes are observed up to this date
    built: pd.DataFrame  # every snapshot row built, labelled or not
    snapshot: pd.DataFrame  # the labelled rows: what is split
    split: Split
    spec: FeatureSpec
    X: pd.DataFrame  # features of every labelled row
    y: np.ndarray
    w: np.ndarray
    train: Rows
    val: Rows
    test: Rows
    test_rows: pd.DataFrame  # the test part's snapshot rows: the oracle's customers, segments, the champion's input


@dataclass(frozen=True)
class Evaluation:
    """The shipped model's and the baseline's metrics and the test predictions the artifacts are drawn from."""

    metrics: dict[str, float]  # what the run logs: model, baseline, search, selection, CV and oracle figures
    baseline_metrics: dict[str, float]  # the ``baseline_`` ones, which promotion compares against without a champion
    p_test: np.ndarray  # the shipped model's test probabilities
    b_test: np.ndarray  # the baseline's test probabilities
    segments: pd.DataFrame  # test metrics by tenure band, plan and location


@dataclass(frozen=True)
class Promotion:
    """The registered model version and whether it became the champion."""

    version: str
    decision: Decision
    metrics: dict[str, float]  # the evaluation's metrics and, with a champion, its primary metric (``champion_``)


@dataclass(frozen=True)
class TrainingResult:
    """What a training job reports: its run, the model version, the decision and the metrics."""

    run_id: str
    experiment_id: str
    model_version: str
    model_family: str  # lightgbm | logistic_regression
    search_seconds: float
    promoted: bool
    reason: str  # why it was (not) promoted
    metrics: dict[str, float]
    split: str  # how the rows were split, in words
    tracking_uri: str
    seconds: float  # the whole job


def run_training(config: TrainConfig) -> TrainingResult:
    """Run the whole job: load, choose date roles, fit, evaluate, log, register, promote; return what it did."""

    started, wall = time.perf_counter(), time.time()
    data = load_training_data(config)
    chosen = fit(data, config)
    evaluation = evaluate(data, chosen, config)
    experiment = use_experiment(config.mlflow.experiment)
    with start_job_run(experiment, f"train-{data.split.test_as_of.date()}", wall) as run:
        logged = log_run(config, data, chosen, evaluation)
        promotion = register_and_promote(config, data, chosen.family, evaluation, logged.model_uri)
        card = model_card(config, data, chosen, promotion.metrics, promotion.decision)
        mlflow.log_text(card, "model_card.md")
        verdict = Verdict(config.mlflow.registered_model, promotion.version, promotion.decision.promote,
                          promotion.decision.reason)  # fmt: skip
        mlflow.log_text(training_report(card, verdict, chosen.family, promotion.metrics, logged.figures),
                        "training_report.html")  # fmt: skip
        describe_run(run_description(config, data, chosen.family, promotion))
        elapsed = time.perf_counter() - started
        mlflow.log_metric("train_job_seconds", elapsed)
    return TrainingResult(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        model_version=promotion.version,
        model_family=chosen.family,
        search_seconds=chosen.search.seconds,
        promoted=promotion.decision.promote,
        reason=promotion.decision.reason,
        metrics=promotion.metrics,
        split=data.split.description,
        tracking_uri=tracking_uri(),
        seconds=elapsed,
    )


def load_training_data(config: TrainConfig) -> TrainingData:
    """Validate the extract, build the labelled snapshot at the planned dates, split it and take each part's rows.

    The configured engine builds the snapshot (:func:`_built_in_memory`, or :func:`_built_by_engine` for customer
    partitions and Spark); either way the rows come out in one order (as-of date, then customer id) and are sampled
    by customer, so the engines train on the same rows and the input file's row order does not change the model.

    Raises:
        UserError: no customer is in the population, or no as-of date has a fully observed label window.
        ModelInputError: a part of the split has too few churners or non-churners.
    """
    check_attribute_overrides(
        config.data, config.features.attribute_types, "features.attribute_types", config.input.encoding
    )
    in_memory = config.engine == "pandas" and config.partitions == 1
    result, plan, built = (_built_in_memory if in_memory else _built_by_engine)(config)
    built = built.sort_values(["as_of", "customer_id"], kind="stable", ignore_index=True)
    feature_config = config.feature_config(result.attribute_types)
    observed_to = observation_end(result)
    snap = _labelled_rows(config, result, plan, built, observed_to)
    split = split_snapshot(snap, config.horizon_days, config)
    check_split_classes(split, snap[LABEL].to_numpy(dtype=int))
    return _training_data(result, feature_config, observed_to, built, snap, split)


def _built_in_memory(config: TrainConfig) -> tuple[ValidationResult, DatePlan, pd.DataFrame]:
    """Validate in memory and build the planned dates' rows, sampling each date's as soon as it is built."""
    result = load_validated(
        Path(config.data),
        end_timestamp(config.end_date),
        config.features.attribute_types,
        config.input.encoding,
        config.input.timezone,
    )
    plan = plan_dates(config, observation_end(result))
    built = snapshot_from_result(
        result,
        list(plan.dates),
        config.horizon_days,
        config.feature_config(result.attribute_types),
        progress=True,
        sampler=_sampler(config, plan),
    )
    return result, plan, built


def _built_by_engine(config: TrainConfig) -> tuple[ValidationResult, DatePlan, pd.DataFrame]:
    """Validate and snapshot with the configured engine in a scratch folder, then read the planned dates back.

    The engine validates first (unless ``data`` is already a validated folder): the accounting is that folder's
    report and the quarantined rows are read back from it, to be logged as the in-memory engine's are, and the
    snapshot is built from the validated tables without validating again. Every configured date is built (which
    dates the split uses is known once the validation says up to when outcomes are observed); the planned ones are
    read back in one pass and sampled a batch at a time (:func:`_planned_rows`). The scratch folder is
    under the system's temporary folder (``TMPDIR``): it holds a validated copy of the data while the job runs.
    """
    engine = engine_for(config.engine, config.partitions)
    end_date = end_timestamp(config.end_date)
    features = config.feature_config_to_type()
    with tempfile.TemporaryDirectory(prefix="churn-train-") as scratch:
        validated = validated_by(
            engine, Path(config.data), Path(scratch), end_date, config.features.attribute_types, config.input
        )
        result = validated.result
        out = Path(scratch) / "snapshot.parquet"
        engine.snapshot(
            validated.folder, out, config.as_of.resolve(), config.horizon_days, end_date, features, {}, config.input
        )
        plan = plan_dates(config, observation_end(result))
        built = _planned_rows(out, plan, _sampler(config, plan))
    return result, plan, built


def _planned_rows(snapshot: Path, plan: DatePlan, sample) -> pd.DataFrame:
    """The planned dates' rows of a snapshot file or folder of parts, sampled a record batch at a time.

    One pass over the file; memory holds a batch and the sampled rows. Sampling a batch's rows of a date is
    sampling that date's rows, because whether a row is kept depends on its customer and date alone.
    """
    planned = set(plan.dates)
    parts = [
        sample(as_of, rows)
        for batch in pa_dataset.dataset(snapshot, format="parquet").to_batches()
        for as_of, rows in batch.to_pandas().groupby("as_of", sort=False)
        if as_of in planned
    ]
    return pd.concat(parts, ignore_index=True)


def _sampler(config: TrainConfig, plan: DatePlan):
    return negative_sampler(plan.roles.train if plan.roles else (), config.model.negative_sample_rate, config.seed)


def plan_dates(config: TrainConfig, observed_to: pd.Timestamp) -> DatePlan:
    """The configured as-of dates and the out-of-time roles of those whose label window is fully observed.

    With roles, only dates that have one (and unlabelled ones) are built, so no snapshot is built that the job does
    not use; non-churners on training dates may then be sampled as they are built.
    """
    dates = config.as_of.resolve()
    labelled = [d for d in dates if d + pd.Timedelta(days=config.horizon_days - 1) <= observed_to]
    roles = date_roles(labelled, config.horizon_days)
    if roles is not None:
        dates = sorted({*roles.train, roles.val, roles.test, *(d for d in dates if d not in labelled)})
    return DatePlan(tuple(dates), roles)


def _labelled_rows(
    config: TrainConfig, result: ValidationResult, plan: DatePlan, built: pd.DataFrame, observed_to: pd.Timestamp
) -> pd.DataFrame:
    """The snapshot rows with an observed label; a user error when there are none, saying why."""
    snap = built[built[LABEL].notna()].reset_index(drop=True)
    if built.empty:
        active = config.population.active_within_days
        raise UserError(
            "no customer is in the population at any as-of date "
            f"({', '.join(str(pd.Timestamp(d).date()) for d in plan.dates)}): none had signed up before it without "
            "having churned"
            + (
                f" and been active in the {active} days before it"
                if config.label == "inactivity" and active is not None
                else ""
            )
            + "; choose as-of dates inside the customers' lifetimes"
        )
    if snap.empty:
        raise UserError(
            f"no as-of date has a fully observed {config.horizon_days}-day label window (outcomes observed up to "
            f"{observed_to.date()}"
            + (
                ""
                if result.end_given
                else ", the latest row seen: give end_date, the extract date, if the extract was taken later"
            )
            + "); choose earlier as-of dates"
        )
    dropped = sorted({str(pd.Timestamp(d).date()) for d in built.loc[built[LABEL].isna(), "as_of"].unique()})
    if dropped:
        log.warning("as-of dates without a fully observed label window are not used for training: %s", dropped)
    return snap


def _training_data(
    result: ValidationResult,
    feature_config: FeatureConfig,
    observed_to: pd.Timestamp,
    built: pd.DataFrame,
    snap: pd.DataFrame,
    split: Split,
) -> TrainingData:
    """The feature matrix of the labelled rows and each part of the split."""
    spec = FeatureSpec.infer(snap, feature_columns(snap))
    X = spec.frame(snap)
    y = snap[LABEL].to_numpy(dtype=int)
    w = snap[WEIGHT].to_numpy(dtype=float)
    train, val, test = (Rows(X[m], y[m], w[m]) for m in (split.train, split.val, split.test))
    log.info("%s; rows train %d, validation %d, test %d", split.description, len(train.y), len(val.y), len(test.y))
    return TrainingData(
        result, feature_config, observed_to, built, snap, split, spec, X, y, w, train, val, test, snap[split.test]
    )


def fit(data: TrainingData, config: TrainConfig) -> Selection:
    """Fit both families on the training rows and choose one on the validation rows (:func:`select_model`)."""
    return select_model(data.spec, data.train.X, data.train.y, data.train.w, data.val.X, data.val.y, config)


def evaluate(data: TrainingData, chosen: Selection, config: TrainConfig) -> Evaluation:
    """Test and validation metrics of the shipped model and the baseline, with CV, oracle and segment figures.

    Cross-validation runs only for a stratified split (one as-of date), over every labelled row of the date: each
    fold tunes on its own rows, none on its held-out fold. The oracle needs the synthetic ground truth.
    """
    p_test = chosen.model.predict_proba(data.test.X)[:, 1]
    b_test = chosen.baseline.predict_proba(data.test.X)[:, 1]
    metrics = {
        **ev.classification_metrics(data.test.y, p_test, "test_"),
        **ev.classification_metrics(data.val.y, chosen.model.predict_proba(data.val.X)[:, 1], "val_"),
    }
    b_val = chosen.baseline.predict_proba(data.val.X)[:, 1]
    baseline_metrics = {
        **{f"baseline_{k}": v for k, v in ev.classification_metrics(data.test.y, b_test, "test_").items()},
        **{f"baseline_{k}": v for k, v in ev.classification_metrics(data.val.y, b_val, "val_").items()},
    }
    metrics.update(baseline_metrics)
    metrics["best_iteration"] = float(chosen.search.best_iteration)
    metrics["search_trials"] = float(len(chosen.search.trials))
    for family, loss in chosen.val_log_loss.items():
        metrics[f"selection_val_log_loss_{family}"] = loss
    if data.split.method == "stratified":
        split = data.split
        labelled = split.train | split.val | split.test  # every row of the date: no fold tunes on its held-out rows
        metrics.update(_cv_metrics(data.spec, data.X[labelled], data.y[labelled], data.w[labelled], config))
    metrics.update(_oracle_metrics(config, data, metrics["test_roc_auc"]))
    return Evaluation(metrics, baseline_metrics, p_test, b_test, _segments(data.test_rows, data.test.y, p_test))


def _oracle_metrics(config: TrainConfig, data: TrainingData, test_roc_auc: float) -> dict[str, float]:
    """The true probabilities' test ROC AUC and the model's share of it; none without a ground truth."""
    truth_dir = truth_folder(config)
    if truth_dir is None:
        return {}

    oracle_p = load_truth(truth_dir).churn_probability(
        data.test_rows["customer_id"], data.split.test_as_of, config.horizon_days
    )
    oracle = ev.classification_metrics(data.test.y, oracle_p, "")["roc_auc"]
    return {"oracle_roc_auc": oracle, "test_roc_auc_to_oracle": test_roc_auc / oracle}


def _segments(test_rows: pd.DataFrame, y_test: np.ndarray, p_test: np.ndarray) -> pd.DataFrame:
    """Test metrics by tenure band, and by plan and location where the data has them."""
    segments = {"tenure_band": ev.tenure_band(test_rows["tenure_days"])}
    for col in ("plan", "location_id"):
        if col in test_rows:
            segments[col] = test_rows[col].astype(str)
    return ev.segment_table(test_rows, y_test, p_test, segments)


@dataclass(frozen=True)
class LoggedRun:
    """What :func:`log_run` logged that later steps use: the model's URI (for the registry) and the test plots (for
    the training report, written once the promotion is decided)."""

    model_uri: str
    figures: dict  # artifact path -> matplotlib Figure


def log_run(config: TrainConfig, data: TrainingData, chosen: Selection, evaluation: Evaluation) -> LoggedRun:
    """Log the config, parameters, metrics, validation report, lineage, evaluation and model to the active run."""

    mlflow.log_dict(config.to_dict(), "config/resolved_config.json")
    mlflow.log_params(_run_params(config, data, chosen))
    mlflow.log_metrics(evaluation.metrics)
    # a timing, like train_job_seconds: not among the compared metrics
    mlflow.log_metric("search_seconds", chosen.search.seconds)
    _log_validation(data.validation)
    _log_lineage(config, data)
    _log_evaluation_tables(config, data, chosen, evaluation)
    figures = _log_explanations(config, data, chosen, evaluation)
    return LoggedRun(_log_model(data, chosen), figures)


def _run_params(config: TrainConfig, data: TrainingData, chosen: Selection) -> dict:
    """The run's parameters: the data, label, split, model settings and the search's choice."""
    search = chosen.search
    return {
        "data": config.data,
        "label": config.label,
        "horizon_days": config.horizon_days,
        "split_method": data.split.method,
        "test_as_of": str(data.split.test_as_of.date()),
        "as_of_dates": len(data.built["as_of"].unique()),
        "calibration": config.model.calibration,
        "class_weight": str(config.model.class_weight),
        "seed": config.seed,
        "negative_sample_rate": config.model.negative_sample_rate,
        "n_features": len(data.spec.columns),
        "model_family": chosen.family,
        **{
            f"lgbm_{k}": v
            for k, v in {**config.model.params, **search.params, "best_iteration": search.best_iteration}.items()
        },
        "search_max_trials": config.model.search.trials,
        "search_timeout_seconds": config.model.search.timeout_seconds,
        "baseline_C": chosen.baseline_C,
    }


def _log_validation(result: ValidationResult) -> None:
    """Quarantined row counts, the validation report and each non-empty quarantine table."""

    for table, report in result.report.items():
        mlflow.log_metric(f"quarantined_rows_{table}", report.rows_quarantined)
    mlflow.log_dict(result.to_dict(), "validation/report.json")
    mlflow.log_text(result.to_text(), "validation/report.txt")
    with tempfile.TemporaryDirectory() as tmp:
        for table, q in result.quarantine.items():
            if len(q):
                path = Path(tmp) / f"quarantine_{table}.csv"
                q.to_csv(path, index=False)
                mlflow.log_artifact(str(path), "validation")


def _log_lineage(config: TrainConfig, data: TrainingData) -> None:
    """Lineage: each validated table's content digest, and the snapshot the model was trained on."""

    with warnings.catch_warnings():
        # MLflow registers the local-file source twice and warns that a path is ambiguous between the two.
        warnings.filterwarnings(
            "ignore",
            message="The specified dataset source can be interpreted in multiple ways",
            category=UserWarning,
        )
        for table, frame in data.validation.tables.items():
            source = str(Path(config.data).resolve() / table)
            dataset = mlflow.data.from_pandas(frame.head(1000), source=source, name=table, digest=table_digest(frame))
            mlflow.log_input(dataset, context="validated_input", tags={"rows": str(len(frame))})
        snap = data.snapshot
        training = mlflow.data.from_pandas(
            snap.head(1000).astype({LABEL: "float64"}),
            name="training_snapshot",
            digest=table_digest(snap),
            targets=LABEL,
        )
        mlflow.log_input(training, context="training", tags={"rows": str(len(snap))})


def _log_evaluation_tables(config: TrainConfig, data: TrainingData, chosen: Selection, evaluation: Evaluation) -> None:
    """Segments, the search's trials and space, the baseline's C, reliability and gains."""

    search = chosen.search
    _log_table(evaluation.segments, "evaluation/segments.json")
    _log_table(search.trials, "evaluation/search_trials.json")
    _log_table(chosen.baseline_trials, "evaluation/baseline_C.json")
    mlflow.log_dict(
        {
            "rows": int(data.split.train.sum()),
            "positives": int(data.train.y.sum()),
            "ranges": search.space.to_dict(),
            "fixed": dict(config.model.params),
        },
        "evaluation/search_space.json",
    )
    _log_table(ev.reliability(data.test.y, evaluation.p_test), "evaluation/reliability.json")
    _log_table(ev.gains(data.test.y, evaluation.p_test), "evaluation/gains.json")


def _log_explanations(config: TrainConfig, data: TrainingData, chosen: Selection, evaluation: Evaluation) -> dict:
    """The test plots (ROC, PR, calibration, gains against the baseline), feature importance and SHAP summary;
    returns the figures by artifact path."""

    y, X = data.test.y, data.test.X
    curves = {f"model ({chosen.family})": evaluation.p_test, "baseline": evaluation.b_test}
    figures = {
        "plots/roc.png": ev.plot_roc(y, curves),
        "plots/pr.png": ev.plot_pr(y, curves),
        "plots/calibration.png": ev.plot_calibration(y, curves),
        "plots/gains.png": ev.plot_gains(y, curves),
    }
    contrib, values = _shap(chosen.pipeline, data.spec, X, config.shap_sample, config.seed)
    importance, measure = feature_importance(chosen.pipeline, data.spec, X.loc[contrib.index])
    figures["plots/feature_importance.png"] = ev.plot_importance(importance, measure, chosen.family)
    figures["plots/shap_summary.png"] = ev.plot_shap_summary(contrib, values)
    for path, fig in figures.items():
        mlflow.log_figure(fig, path)
    _log_table(
        importance.rename("importance").rename_axis("feature").reset_index().assign(measure=measure),
        "evaluation/feature_importance.json",
    )
    return figures


def _log_model(data: TrainingData, chosen: Selection) -> str:
    """Log the calibrated model as a pyfunc with its features, drift reference and signature; return its URI."""

    example = data.spec.frame(data.built.head(5)).reset_index(drop=True)  # feature columns only: no customer ids
    pyfunc = ChurnModel(chosen.model, data.spec, drift_reference(data, chosen), data.feature_config,
                        pipeline=chosen.pipeline)  # fmt: skip
    return log_pyfunc(pyfunc, example)


DRIFT_IMPORTANCE_ROWS = 2_000  # reference rows the features' shares of the model's attention are measured on


def drift_reference(data: TrainingData, chosen: Selection) -> dict:
    """Scoring's drift reference: the latest labelled as-of date's rows (one date, the shape of a scoring date; a
    stack of dates has "days since" and tenure distributions no single date has), their scores, and each feature's
    share of the model's mean absolute contribution on them."""
    latest = data.snapshot["as_of"].max()
    X = data.X[(data.snapshot["as_of"] == latest).to_numpy()]
    contributions, _ = _shap(chosen.pipeline, data.spec, X, DRIFT_IMPORTANCE_ROWS, 0)
    scores = chosen.model.predict_proba(X)[:, 1]
    feeds = feed_counts(data.validation.tables, latest)
    return build_reference(X, scores, data.spec.categorical, contributions.abs().mean(), latest, feeds)


def log_pyfunc(pyfunc, example: pd.DataFrame) -> str:
    """Log a model of ``models/`` as the run's pyfunc, with its signature, example, code and pinned requirements (the
    one way churn and uplift models are logged); return its URI."""
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=pyfunc,
        signature=infer_signature(example, pyfunc.predict(None, example)),
        input_example=example,
        code_paths=[str(Path(__file__).resolve().parents[2] / "models")],
        pip_requirements=pip_requirements(),
    )
    return info.model_uri


def register_and_promote(
    config: TrainConfig, data: TrainingData, family: str, evaluation: Evaluation, model_uri: str
) -> Promotion:
    """Register the logged model as the challenger, then promote it to champion if it beats the champion.

    The decision, its reason, the previous champion and the family are tagged on the run and the model version.
    """

    client = MlflowClient()
    name, primary = config.mlflow.registered_model, config.promotion.primary_metric
    version = mlflow.register_model(model_uri, name).version
    client.set_registered_model_alias(name, CHALLENGER, version)
    decision = decide(
        client,
        name,
        primary,
        evaluation.metrics,
        evaluation.baseline_metrics,
        data.test_rows,
        data.test.y,
        _metric_fn(primary),
        config.promotion.min_improvement,
        config.promotion.max_ece,
    )
    metrics = dict(evaluation.metrics)
    if decision.champion_metric is not None:
        metrics[f"champion_{primary}"] = decision.champion_metric
        mlflow.log_metric(f"champion_{primary}", decision.champion_metric)
    if decision.promote:
        client.set_registered_model_alias(name, CHAMPION, version)
    tags = {
        "promotion_decision": "promoted" if decision.promote else "not_promoted",
        "promotion_reason": decision.reason,
        "previous_champion_version": decision.champion_version or "none",
        "model_family": family,
    }
    mlflow.set_tags(tags)
    for k, v in {**tags, "test_as_of": str(data.split.test_as_of.date())}.items():
        client.set_model_version_tag(name, version, k, v)
    return Promotion(version, decision, metrics)


def run_description(config: TrainConfig, data: TrainingData, family: str, promotion: Promotion) -> str:
    """The training run's description for analysts: the headline figures and the promotion decision."""
    m, d = promotion.metrics, promotion.decision
    decision = "**promoted to champion**" if d.promote else "**not promoted**"
    rows = [
        ("test ROC AUC", "test_roc_auc", "baseline_test_roc_auc"),
        ("test PR AUC", "test_pr_auc", "baseline_test_pr_auc"),
        ("test ECE (calibration)", "test_ece", "baseline_test_ece"),
        ("lift in the top 10 %", "test_lift_at_10", "baseline_test_lift_at_10"),
    ]
    table = ["| | model | baseline (logistic regression) |", "|---|---|---|"] + [
        f"| {label} | {m[k]:.4f} | {m[b]:.4f} |" if b in m else f"| {label} | {m[k]:.4f} | |" for label, k, b in rows
    ]
    oracle = (
        f"\n\nOn synthetic data the true probabilities reach ROC AUC {m['oracle_roc_auc']:.4f}: the model gets "
        f"{m['test_roc_auc_to_oracle']:.1%} of it."
        if "oracle_roc_auc" in m
        else ""
    )
    return (
        f"{version_link(config.mlflow.registered_model, promotion.version)} ({family}): {decision}. {d.reason}."
        f"\n\n{data.split.description}.\n\n" + "\n".join(table) + oracle
    )


# --- the model card ------------------------------------------------------------------------------------------------

CARD_METRICS = (
    "test_roc_auc",
    "test_pr_auc",
    "test_log_loss",
    "test_brier",
    "test_ece",
    "test_lift_at_10",
    "test_capture_at_10",
)


def model_card(config: TrainConfig, data: TrainingData, chosen: Selection, metrics: dict, decision: Decision) -> str:
    """The run's model card (Markdown): data, label, split, model, test metrics, promotion and known limits."""
    return (
        f"# Model card: {config.mlflow.registered_model}\n\n"
        + _card_data(config, data)
        + _card_model(config, data, chosen)
        + _card_results(metrics, decision)
    )


def _card_data(config: TrainConfig, data: TrainingData) -> str:
    """The card's data, label and split sections."""
    snap, spec, split = data.snapshot, data.spec, data.split
    attribute_types = data.validation.attribute_types
    return f"""## Data
- Dataset `{config.data}`, outcomes observed up to {pd.Timestamp(data.observed_to).date()}; {len(snap):,} labelled \
snapshot rows over {snap["as_of"].nunique()} as-of dates ({pd.Timestamp(snap["as_of"].min()).date()} .. \
{pd.Timestamp(snap["as_of"].max()).date()}).
- Features: {len(spec.numeric)} numeric and {len(spec.categorical)} categorical \
({", ".join(spec.categorical) or "none"}), computed only from rows stamped before each as-of date.
- Customer attributes as validation typed them: \
{"; ".join(f"`{c}` {t}" for c, t in (attribute_types or {}).items()) or "none"} \
(identifiers and excluded columns are not features).

## Label
- Churned within [T, T+{config.horizon_days}d) per `{config.label}` \
(`events`: a churn event; `inactivity`: no interaction).

## Split
- {split.method}: {split.description}.
- Rows: train {int(split.train.sum()):,}, validation {int(split.val.sum()):,}, test {int(split.test.sum()):,}.

"""


def _card_model(config: TrainConfig, data: TrainingData, chosen: Selection) -> str:
    """The card's model section: the family, how it was chosen, the search and the baseline."""
    search, m = chosen.search, config.model
    names = {"lightgbm": "LightGBM", "logistic_regression": "Logistic regression"}
    fixed = {k: v for k, v in m.params.items() if k != "n_jobs"}
    tuned = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in search.params.items())
    train_rows = int(data.split.train.sum())
    return f"""## Model
- Family: **{names[chosen.family]}** (`model_family: {chosen.family}`), one scikit-learn pipeline with its \
preprocessing, with {m.calibration} calibration fitted on the validation rows; class weights: \
{m.class_weight or "none (probabilities stay honest)"}.
- Chosen on validation log loss after calibration: LightGBM {chosen.val_log_loss["lightgbm"]:.5f}, \
logistic regression {chosen.val_log_loss["logistic_regression"]:.5f} (the lower ships; a tie keeps LightGBM).
- LightGBM search: Optuna TPE (seed {config.seed if m.search.seed is None else m.search.seed}), \
{len(search.trials)} trial(s) of at most {m.search.trials} in {search.seconds:.0f} s \
(budget {m.search.timeout_seconds:g} s), each with early stopping \
({m.early_stopping_rounds} rounds) on the validation rows; lowest validation log loss (uncalibrated) \
wins: {tuned}, {search.best_iteration} trees.
- Search space for {train_rows:,} training rows: {search.space.describe(m.params)}; \
fixed: {fixed}.
- Logistic regression (baseline): C chosen on validation log loss among {sorted(chosen.baseline_trials["C"])}: \
C={chosen.baseline_C:g}; calibrated the same way.

"""


def _card_results(metrics: dict, decision: Decision) -> str:
    """The card's test metrics (model, baseline, champion), the oracle, the promotion and the known limits."""

    def row(name: str) -> str:
        champ = metrics.get(f"champion_{name}")
        return (
            f"| {name} | {metrics[name]:.4f} | {metrics.get('baseline_' + name, float('nan')):.4f} | "
            f"{'' if champ is None else f'{champ:.4f}'} |"
        )

    table = "\n".join(row(n) for n in CARD_METRICS)
    oracle = ""
    if "oracle_roc_auc" in metrics:
        oracle = (
            f"\nOracle ROC AUC (true probabilities, synthetic data): {metrics['oracle_roc_auc']:.4f}; model reaches "
            f"{metrics['test_roc_auc_to_oracle']:.1%} of it.\n"
        )
    return f"""## Test metrics (never seen by any fitting or tuning step)
| metric | model | baseline | champion |
|---|---|---|---|
{table}
{oracle}
## Promotion
- {"Promoted to champion" if decision.promote else "Not promoted"}: {decision.reason}.

## Known limits
- Validation metrics are optimistic: the validation snapshot chose the model family, the search's trial, \
the number of trees, C and the calibration.
- `monthly_revenue` and customer attributes are the values in the extract, not as they were at each as-of date.
- Probabilities describe customers as they were treated historically, retention contacts included; they are not uplift.
- Segment metrics with few churners are noisy; read them with their row counts.
"""


def _log_table(frame: pd.DataFrame, path: str) -> None:
    """``mlflow.log_table`` with text columns as plain objects (MLflow 3.17 predates pandas' ``str`` dtype)."""

    text = [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c])]
    mlflow.log_table(frame.astype({c: object for c in text}), path)


def _metric_fn(primary: str):
    key = primary.removeprefix("test_")
    return lambda y, p: ev.classification_metrics(y, p, "")[key]


def pip_requirements() -> list[str]:

    return [f"{pkg}=={version(pkg)}" for pkg in PIP_REQUIREMENTS_OF]


def format_summary(result: TrainingResult) -> str:
    """The summary ``churn train`` prints: the run, test metrics against the baseline, the model and the decision."""
    m = result.metrics
    lines = [
        f"run {result.run_id} (model version {result.model_version}, {result.model_family}); {result.split}",
        f"  test ROC AUC {m['test_roc_auc']:.4f} (baseline {m['baseline_test_roc_auc']:.4f})   PR AUC "
        f"{m['test_pr_auc']:.4f} (baseline {m['baseline_test_pr_auc']:.4f})",
        f"  test ECE {m['test_ece']:.4f}   Brier {m['test_brier']:.4f}   lift@10 {m['test_lift_at_10']:.2f}   "
        f"capture@10 {m['test_capture_at_10']:.1%}",
    ]
    if "oracle_roc_auc" in m:
        lines.append(
            f"  oracle ROC AUC {m['oracle_roc_auc']:.4f}: model reaches {m['test_roc_auc_to_oracle']:.1%} of it"
        )
    family = (
        "logistic regression (better on validation than LightGBM)"
        if result.model_family == "logistic_regression"
        else "LightGBM"
    )
    lines.append(
        f"  model: {family}; LightGBM search {m['search_trials']:.0f} trial(s) in {result.search_seconds:.0f} s"
    )
    if "cv_roc_auc_mean" in m:
        lines.append(f"  5-fold CV ROC AUC {m['cv_roc_auc_mean']:.4f} ± {m['cv_roc_auc_std']:.4f}")
    ui = f"http://127.0.0.1:5000/#/experiments/{result.experiment_id}/runs/{result.run_id}"
    lines += [
        f"  promotion: {'PROMOTED to champion' if result.promoted else 'not promoted'}: {result.reason}",
        f"  took {result.seconds:.0f} s; tracking store {result.tracking_uri}",
        f"  open the run: `make ui`, then {ui}",
    ]
    return "\n".join(lines)
