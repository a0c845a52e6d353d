"""The ``score`` stage: the champion's calibrated probabilities, reason codes and an action list for one as-of date."""

from __future__ import annotations

import fcntl
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pandera.pandas as pa
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from pandera.typing import Series

from features.build import Tables, feature_columns
from features.config import FeatureConfig
from features.feeds import feed_counts
from features.names import catalog
from features.schema import Features
from models import adjustment as adj
from models import value as val
from models.decisions import HOLDOUT, assign_holdout
from models.drift import MEAN, SCORE, drift_table
from models.errors import ModelNotFoundError
from models.pyfunc import UpliftPyfunc
from models.reasons import top_reasons
from models.registry import LoadedModel, describe_run, load_model, use_experiment, version_link
from pipelines.attributes import FEATURE_TYPES
from pipelines.config import HoldoutConfig, ScoreConfig, end_timestamp
from pipelines.contract import ValidationResult
from pipelines.engines import engine_for
from pipelines.errors import USER_ERRORS, UserError
from pipelines.io.decisions import append_decisions, read_decisions
from pipelines.io.files import atomic_folder, write_csv, write_parquet, write_text
from pipelines.reporting.html import money, scoring_report
from pipelines.stages.recover import METRICS, InMemoryScores, Probabilities, prognostic_score

log = logging.getLogger(__name__)

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class Scores(pa.DataFrameModel):
    """The scores table: what CRM imports and schedulers read."""

    customer_id: Series[str] = pa.Field(nullable=False, unique=True)
    as_of: Series[pd.Timestamp] = pa.Field(nullable=False)
    churn_probability: Series[float] = pa.Field(ge=0, le=1)
    risk_tier: Series[str] = pa.Field(isin=["high", "medium", "low"])
    monthly_revenue: Series[float] = pa.Field(ge=0)
    annual_revenue_at_risk: Series[float] = pa.Field(ge=0)
    expected_net_value_of_contact: Series[float]
    priority_rank: Series[int] = pa.Field(ge=1, unique=True)
    in_action_list: Series[bool]  # selected by the plan; contact only those with assigned_group "treatment"
    assigned_group: Series[str] = pa.Field(isin=["treatment", "holdout", ""])  # "": not in the action list
    assignment_probability: Series[float] = pa.Field(nullable=True, ge=0, le=1)  # of the holdout; NaN: not listed
    reason_1: Series[object] = pa.Field(nullable=True)
    reason_2: Series[object] = pa.Field(nullable=True)
    reason_3: Series[object] = pa.Field(nullable=True)
    recent_detractor: Series[bool]
    open_callback_request: Series[bool]
    model_name: Series[str]
    model_version: Series[str]
    model_run_id: Series[str]
    # with an uplift champion only: the predicted reduction in churn probability a contact brings
    uplift: Series[float] | None = pa.Field(ge=-1, le=1)
    expected_saves: Series[float] | None
    do_not_contact: Series[bool] | None  # a contact is predicted to push them out: never in the action list

    class Config:
        strict = False


SCORES_FILE = "scores.parquet"  # every complete scoring output holds it


class ScoringError(UserError):
    """Scoring cannot go ahead (no such model alias, features disagree): nothing was written."""


class ScoringBusy(RuntimeError):
    """Another scoring run holds the lock for this as-of date."""


def check_features(expected: list[str], built: list[str]) -> None:
    missing = sorted(set(expected) - set(built))
    extra = sorted(set(built) - set(expected))
    if missing or extra:
        raise ScoringError(
            "the model's features and the features built from this data disagree: "
            f"missing {missing or 'none'}, unexpected {extra or 'none'}. "
            "Retrain on data of this shape, or exclude the extra customer columns in the training config."
        )


@dataclass(frozen=True)
class RecentCampaigns:
    """What campaigns whose outcome window closed before scoring measured: the recovery table (empty: none) and what
    a save is worth from their follow-up (None: the naive 12 months)."""

    recovery: pd.DataFrame
    save_value: val.SaveValue | None
    adjusted_by: str = ""  # where the adjustment's churn score came from ("" when the saving is not adjusted)

    @property
    def value_months(self) -> float:
        return val.value_months(self.save_value)


def recent_campaigns(
    tables: Tables,
    as_of: pd.Timestamp,
    config: ScoreConfig,
    label: str = "events",
    probabilities: Probabilities | None = None,
) -> RecentCampaigns:
    """Measured recovery (overall, by location) of campaigns whose outcome window closed before ``as_of``, churn as
    the model's ``label`` defines it, and the value of a save from their customers' churn after the window, followed
    up to ``as_of``.

    With ``probabilities`` (the tables in memory) the saving is regression-adjusted as ``churn recover`` adjusts it
    (``recover.adjustment``, :func:`pipelines.stages.recover.prognostic_score`), the plain difference in means beside
    it; without (partitions, Spark: the tables are not held whole) it is the plain difference in means, and
    ``churn recover`` adjusts it.
    """
    v = config.value
    actions = tables.retention_actions
    start, last = as_of - pd.Timedelta(days=v.measurement_days), as_of - pd.Timedelta(days=v.horizon_days)
    window = actions[(actions["action_date"] >= start) & (actions["action_date"] <= last)]
    if window.empty:
        return RecentCampaigns(pd.DataFrame(), None)
    window = window.sort_values(["action_date", "customer_id", "group"], kind="stable", ignore_index=True)
    outcomes = val.action_outcomes(
        window, tables.churn_events, tables.customers, v.horizon_days, label, tables.interactions
    )
    sv = config.save_value
    worth, _ = val.measured_save_value(outcomes, tables.churn_events, v.horizon_days, as_of - pd.Timedelta(days=1),
                                       label, sv.months, sv.lifetime_months, sv.discount_rate)  # fmt: skip
    r = config.recover  # the same "too small to say anything" rule and interval level as churn recover
    notes: list[str] = []
    prognostic = None
    if probabilities is not None and outcomes["group"].nunique() == 2:  # nothing to adjust without both groups
        settings = replace(r, label=label, horizon_days=v.horizon_days)
        first_signup = pd.Timestamp(tables.customers["signup_date"].min()) if len(tables.customers) else None
        try:
            prognostic = prognostic_score(probabilities, window, outcomes, as_of - pd.Timedelta(days=1), settings,
                                          notes, first_signup, len(tables.customers))  # fmt: skip
        except USER_ERRORS as err:  # a side figure: the plain difference in means stands, and the log says why
            log.warning("recent campaigns' saving is not regression-adjusted: %s", err)
        if prognostic is not None:
            outcomes[adj.PROGNOSTIC] = prognostic.score
    for note in notes:
        log.info("recent campaigns: %s", note)
    rows = val.recovery_rows(
        outcomes,
        ("location_id",),
        n_boot=1000,  # fewer resamples than recover's: this runs on every scoring run
        level=r.bootstrap.confidence,
        min_control=r.min_control_customers,
        min_churners=r.min_control_churners,
        adjustment=prognostic.method if prognostic else "",
        value_months=val.value_months(worth),
    )
    described = prognostic.description if prognostic else ""
    return RecentCampaigns(val.recovery_frame(rows, r.bootstrap.confidence), worth, described)


def recent_metrics(recovery: pd.DataFrame) -> dict[str, float]:
    """Recent campaigns' overall figures under ``churn recover``'s metric names, prefixed ``recent_`` (the adjusted
    saving and its interval, the plain one beside it); none when nothing was measured."""
    if recovery.empty:
        return {}
    overall = recovery.iloc[0]
    return {f"recent_{k}": float(overall[k]) for k in METRICS if k in overall and pd.notna(overall[k])}


def save_rate_from(recovery: pd.DataFrame, config: ScoreConfig) -> tuple[float, str]:
    """Save rate from recent campaigns with a usable control group, else the configured default.

    It is the plain relative difference in churn, not the regression-adjusted one: the adjustment runs in memory only,
    and an action list must not depend on the engine that made it."""
    v = config.value
    if v.measure_save_rate and not recovery.empty:
        r = recovery.iloc[0]
        if not r["warning"] and r["control_churn_rate"] > 0:
            rate = float(
                np.clip((r["control_churn_rate"] - r["treatment_churn_rate"]) / r["control_churn_rate"], 0.0, 1.0)
            )
            return rate, (
                f"measured (plain difference in means, the same on every engine): {int(r['treated']):,} treated vs "
                f"{int(r['control']):,} control contacts in the "
                f"{v.measurement_days} to {v.horizon_days} days before scoring (churn {r['treatment_churn_rate']:.1%} "
                f"vs {r['control_churn_rate']:.1%})"
            )
        log.warning(
            "cannot measure the save rate from campaigns (%s); using the configured %.0f%%",
            r["warning"] or "no churn among controls",
            100 * v.save_rate,
        )
    return v.save_rate, "configured default (no usable treatment/control measurement)"


def score_customers(
    loaded: LoadedModel,
    features: pd.DataFrame,
    config: ScoreConfig,
    save_rate: float,
    probability: np.ndarray | None = None,
    uplift: np.ndarray | None = None,
    value_months: float = val.MONTHS,
) -> pd.DataFrame:
    """Probabilities, tiers, money columns and priority for every active customer (pure).

    ``probability`` is given when the model already ran elsewhere (Spark's
    ``spark_udf``); otherwise the model predicts here. With ``uplift`` (an uplift
    model's predicted reduction in churn probability), a contact's expected net
    value is uplift x a save's value - contact cost and customers with negative
    uplift are ``do_not_contact``; without it, probability x save rate x a
    save's value - contact cost. A save keeps ``value_months`` of monthly
    revenue (:class:`RecentCampaigns`; 12 when nothing was followed up).
    """
    model = loaded.model
    p = model.predict_proba(features) if probability is None else probability
    v = config.value
    ids = features["customer_id"].astype(str).to_numpy()
    out = pd.DataFrame(
        {
            "customer_id": ids,
            "as_of": features["as_of"].to_numpy(),
            "churn_probability": p,
            "risk_tier": val.risk_tiers(p, config.risk_tiers.high, config.risk_tiers.medium, ids),
            "monthly_revenue": features["monthly_revenue"].to_numpy(dtype=float),
        }
    )
    if "location_id" in features:
        out["location_id"] = features["location_id"].astype(object).to_numpy()
    out["annual_revenue_at_risk"] = val.annual_revenue_at_risk(p, out["monthly_revenue"])
    # expected customers saved by a contact: the uplift model's estimate, else probability x save rate
    saves, rate = (p, save_rate) if uplift is None else (uplift, 1.0)
    out["expected_net_value_of_contact"] = val.expected_net_value(
        saves, out["monthly_revenue"], rate, v.contact_cost, value_months
    )
    order = np.lexsort((out["customer_id"].to_numpy(), -out["expected_net_value_of_contact"].to_numpy()))
    rank = np.empty(len(out), dtype=np.int64)
    rank[order] = np.arange(1, len(out) + 1)
    out["priority_rank"] = rank
    out["recent_detractor"] = features["recent_detractor"].to_numpy() > 0
    out["open_callback_request"] = features["open_callback_request"].to_numpy() > 0
    out["model_name"], out["model_version"], out["model_run_id"] = loaded.name, loaded.version, loaded.run_id
    if uplift is not None:
        out["uplift"], out["expected_saves"], out["do_not_contact"] = uplift, uplift, uplift < 0
    return out


def by_risk(scores: pd.DataFrame, save_rate: float, contact_cost: float, value_months: float) -> pd.DataFrame:
    """The scores as the churn ranking values them (probability x save rate), for the plan it would make."""
    out = scores.drop(columns=["expected_saves", "do_not_contact"], errors="ignore")
    out["expected_net_value_of_contact"] = val.expected_net_value(
        out["churn_probability"], out["monthly_revenue"], save_rate, contact_cost, value_months
    )
    return out


def load_uplift_model(config: ScoreConfig) -> LoadedModel | None:
    """The uplift champion that targeting uses, or None (configured off, or none registered yet: said in the log)."""
    if not config.uplift_model:
        return None
    try:
        loaded = load_model(config.uplift_model)
    except ModelNotFoundError as err:
        log.info("targeting by churn probability x save rate: %s", err)
        return None
    if not isinstance(loaded.model, UpliftPyfunc):
        raise ScoringError(
            f"uplift_model {config.uplift_model} is not an uplift model (churn train-uplift registers one)"
        )
    return loaded


def predicted_uplift(uplift: LoadedModel | None, features: pd.DataFrame) -> np.ndarray | None:
    """The uplift model's prediction for every scored customer; None without a model or when it needs features these
    rows lack (it was trained with other feature settings: said in the log)."""
    if uplift is None:
        return None
    missing = sorted(set(uplift.model.spec.columns) - set(features.columns))
    if missing:
        log.warning(
            "uplift model %s v%s needs features this scoring run does not build (%s); targeting by churn probability. "
            "Train it with train.yaml's feature settings", uplift.name, uplift.version, missing[:5],
        )  # fmt: skip
        return None
    return np.clip(uplift.model.uplift(features), -1.0, 1.0)


def lock_path(folder: Path) -> Path:
    """The lock of a scoring output folder: beside it, since the folder itself is replaced as a whole."""
    return folder.parent / f".{folder.name}.lock"


@contextmanager
def scoring_lock(folder: Path):
    """One scoring run per as-of date at a time: a second one fails as soon as its input is validated, instead of
    interleaving writes or appending the same date's decisions twice."""
    path = lock_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise ScoringBusy(
                f"another scoring run for this as-of date holds {path}; it will finish on its own, retry later"
            ) from err
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would read as a formula get a leading apostrophe."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            s = out[col].astype(object)
            risky = s.map(lambda x: isinstance(x, str) and x.startswith(FORMULA_PREFIXES))
            out[col] = s.where(~risky, "'" + s.astype(str))
    return out


@dataclass(frozen=True)
class ScoringSummary:
    """What one scoring run did: where it wrote, how many it scored and listed, the plan's figures and the timings."""

    folder: str
    rows: int
    action_list: int
    save_rate: float
    save_rate_source: str
    expected_customers_saved: float
    expected_revenue_recovered: float
    annual_revenue_at_risk: float
    drift_flagged: list[str]
    seconds_total: float
    seconds_features: float
    seconds_predict: float
    seconds_reasons: float
    model: str
    uplift_model: str | None  # targeting used this uplift model's predictions; None: churn probability x save rate
    risk_plan_customers_saved: float  # what the churn ranking's plan expects (equal to the plan's without uplift)
    do_not_contact: int  # customers a contact is predicted to push out
    contacted: val.PlanFigures  # the list less its holdout: the customers to contact
    save_value_months: float = val.MONTHS  # months of revenue a save keeps (recent campaigns' follow-up, or 12)
    held_out: int = 0  # of the action list, held out at random (not to be contacted)
    recent: dict[str, float] = field(default_factory=dict)  # recent campaigns' overall figures, recover's names
    recent_adjustment: str = ""  # how recent campaigns' saving was adjusted ("": the plain difference in means)


@dataclass(frozen=True)
class _Inputs:
    """The validated data at the as-of date: its accounting, the feature rows and the small tables."""

    result: ValidationResult
    features: pd.DataFrame
    tables: Tables
    probability: np.ndarray | None  # already predicted by the engine (Spark), else None
    feature_config: FeatureConfig  # the one the features were built with
    seconds: float


@dataclass(frozen=True)
class _Prediction:
    """Scores before reason codes, with the save rate they were valued at and the campaigns that measured it."""

    scores: pd.DataFrame
    campaigns: RecentCampaigns
    save_rate: float
    save_rate_source: str
    seconds: float
    open_holdout: frozenset[str] = frozenset()  # customers an earlier list holds out: never on this list

    @property
    def recovery(self) -> pd.DataFrame:
        return self.campaigns.recovery


@dataclass(frozen=True)
class _Explained:
    """The validated scores table with reason codes for the action list."""

    scores: pd.DataFrame
    selected: np.ndarray  # in the action list, by row of the table before sorting
    seconds: float


def run_scoring(config: ScoreConfig, as_of: pd.Timestamp, csv: bool = False) -> ScoringSummary:
    """Validate, build features, score, explain the action list, write atomically, log to MLflow."""
    started = time.perf_counter()
    loaded = load_model(config.model)  # fails before anything is read or written when the alias is missing
    uplift = load_uplift_model(config)
    inputs = _score_inputs(config, as_of, loaded)  # bad input stops here, before anything is written
    folder = Path(config.out) / f"as_of={as_of.date().isoformat()}"
    with scoring_lock(folder):  # one run per as-of date from here to its decision log: a second one fails now
        return _score_and_write(config, as_of, csv, started, loaded, uplift, inputs, folder)


def _score_and_write(
    config: ScoreConfig,
    as_of: pd.Timestamp,
    csv: bool,
    started: float,
    loaded: LoadedModel,
    uplift: LoadedModel | None,
    inputs: _Inputs,
    folder: Path,
) -> ScoringSummary:
    """Everything after validation, under the as-of date's lock: predict, plan, explain, write, log."""
    prediction = _predict(config, as_of, loaded, inputs, uplift)
    plan = _plan(config, prediction.scores, prediction)
    by_uplift = "uplift" in prediction.scores
    risk_plan = (  # the plan the churn ranking would make, beside the uplift plan; without uplift it is the plan
        _plan(
            config,
            by_risk(
                prediction.scores, prediction.save_rate, config.value.contact_cost, prediction.campaigns.value_months
            ),
            prediction,
        )  # fmt: skip
        if by_uplift
        else plan
    )
    explained = _explain(loaded, inputs, prediction.scores, plan, config.holdout)
    scores = explained.scores
    events = {"interactions": inputs.tables.interactions, "feedback": inputs.tables.feedback}
    drift = _drift(config, loaded, inputs.features, scores, feed_counts(events, as_of))
    nps = _nps_summary(inputs.tables, as_of)
    contacted = plan.without(scores.loc[scores["assigned_group"] == HOLDOUT, "customer_id"])  # the list less holdout
    html = scoring_report(
        scores, plan, contacted, drift, config, as_of, loaded, nps, inputs.result, inputs.tables, prediction.recovery,
        risk_plan if by_uplift else None, prediction.campaigns.save_value, prediction.campaigns.adjusted_by,
    )  # fmt: skip
    _write_outputs(folder, scores, html, csv)
    summary = ScoringSummary(
        folder=str(folder),
        rows=len(scores),
        action_list=int(explained.selected.sum()),
        save_rate=prediction.save_rate,
        save_rate_source=prediction.save_rate_source,
        expected_customers_saved=plan.expected_customers_saved,
        expected_revenue_recovered=plan.expected_revenue_recovered,
        annual_revenue_at_risk=float(scores["annual_revenue_at_risk"].sum()),
        drift_flagged=drift.loc[drift["flagged"], "name"].tolist() if len(drift) else [],
        seconds_total=time.perf_counter() - started,
        seconds_features=inputs.seconds,
        seconds_predict=prediction.seconds,
        seconds_reasons=explained.seconds,
        model=f"{loaded.name} v{loaded.version}",
        uplift_model=f"{uplift.name} v{uplift.version}" if by_uplift else None,
        risk_plan_customers_saved=risk_plan.expected_customers_saved,
        do_not_contact=int(scores["do_not_contact"].sum()) if "do_not_contact" in scores else 0,
        save_value_months=prediction.campaigns.value_months,
        held_out=int((scores["assigned_group"] == "holdout").sum()),
        recent=recent_metrics(prediction.recovery),
        contacted=contacted,
        recent_adjustment=str(prediction.recovery.iloc[0].get("adjustment", "")) if len(prediction.recovery) else "",
    )
    _log_scoring_run(config, as_of, loaded, scores, drift, inputs.result, summary, folder)
    return summary


def _feature_config(config: ScoreConfig, loaded: LoadedModel) -> FeatureConfig:
    """The feature configuration the model was trained with, for the population this run scores."""
    feature_config = loaded.model.feature_config
    if feature_config is None:
        raise ScoringError(
            f"model {loaded.name} v{loaded.version} does not carry its feature configuration; retrain it"
        )
    if "purchase_types" not in vars(feature_config):
        # Trained before the transaction features existed: build the features it was trained on.
        feature_config = replace(feature_config, purchase_types=())
    if config.population is not None:
        feature_config = replace(feature_config, inactivity_active_days=config.population.active_within_days)
    return feature_config


def _score_inputs(config: ScoreConfig, as_of: pd.Timestamp, loaded: LoadedModel) -> _Inputs:
    """The model's features of every customer active at ``as_of``, checked against the model and the schema."""
    feature_config = _feature_config(config, loaded)
    end_date = end_timestamp(config.end_date)
    t_features = time.perf_counter()
    inputs = engine_for(config.engine, config.partitions).score_inputs(
        Path(config.data), as_of, end_date, feature_config, config.model, Path(config.out), config.input
    )
    t_features += inputs.seconds_validation  # validation is timed apart where it can be
    _warn_unused_columns(inputs.result, feature_config, loaded)
    _check_as_of(as_of, inputs.result)
    features = Features.validate(inputs.features)
    check_features(loaded.model.spec.columns, feature_columns(features))
    if features.empty:
        raise ScoringError(
            f"no customer is active at {as_of.date()} in {config.data}{_quarantine_aside(inputs.result)}"
        )
    return _Inputs(inputs.result, features, inputs.tables, inputs.probability, feature_config,
                   time.perf_counter() - t_features)  # fmt: skip


def _warn_unused_columns(result: ValidationResult, feature_config: FeatureConfig, loaded: LoadedModel) -> None:
    """Name the customer columns of this data that are not a feature of the model (they are ignored)."""
    attribute_types = dict(feature_config.attribute_types or ())  # customer attributes as the model was trained
    unused = sorted(
        c for c, kind in result.attribute_types.items() if kind in FEATURE_TYPES and c not in attribute_types
    )
    if unused:
        log.warning(
            "customer column(s) %s are not a feature of model %s v%s and are ignored (retrain to use them)",
            unused,
            loaded.name,
            loaded.version,
        )


def _quarantine_aside(result: ValidationResult) -> str:
    """`` (N of M customers were quarantined: ...)`` when validation set customers aside, else nothing."""
    customers = result.report.get("customers")
    if customers is None or not customers.rows_quarantined:
        return ""
    return (
        f" ({customers.rows_quarantined:,} of {customers.rows_read:,} customers were quarantined: "
        f"{customers.by_reason})"
    )


def _predict(
    config: ScoreConfig, as_of: pd.Timestamp, loaded: LoadedModel, inputs: _Inputs, uplift: LoadedModel | None
) -> _Prediction:
    """The save rate measured on recent campaigns, then every customer's probability, tier, uplift and value."""
    t_predict = time.perf_counter()
    adjust = config.engine == "pandas" and config.partitions == 1 and config.value.adjust_recent
    campaigns = recent_campaigns(inputs.tables, as_of, config, inputs.feature_config.label_source,
                                 InMemoryScores(inputs.tables) if adjust else None)  # fmt: skip
    save_rate, save_rate_source = save_rate_from(campaigns.recovery, config)
    uplifts = predicted_uplift(uplift, inputs.features)
    scores = score_customers(
        loaded, inputs.features, config, save_rate, inputs.probability, uplifts, campaigns.value_months
    )
    held = open_holdout(config, as_of)
    return _Prediction(scores, campaigns, save_rate, save_rate_source, time.perf_counter() - t_predict, held)


def _plan(config: ScoreConfig, scores: pd.DataFrame, prediction: _Prediction) -> val.TargetingPlan:
    """The targeting plan, leaving off customers an earlier list held out whose outcome window is still open: a
    contact now would make that holdout a treated group."""
    v = config.value
    eligible = ~scores["customer_id"].isin(prediction.open_holdout)
    return val.targeting_plan(
        scores[eligible], prediction.save_rate, v.contact_cost, v.capacity_per_location, v.budget,
        prediction.save_rate_source, prediction.campaigns.value_months,
    )  # fmt: skip


def open_holdout(config: ScoreConfig, as_of: pd.Timestamp) -> frozenset[str]:
    """Customers held out by an earlier scoring run (the decision log under ``out``) whose ``recover.horizon_days``
    outcome window is still open at ``as_of``; empty without a log."""
    try:
        decisions = read_decisions(Path(config.out))
    except UserError:  # no decision log yet
        return frozenset()
    since = as_of - pd.Timedelta(days=config.recover.horizon_days)
    held = decisions[
        (decisions["assigned_group"] == HOLDOUT) & (decisions["as_of"] > since) & (decisions["as_of"] < as_of)
    ]
    if len(held):
        log.info("%d customers held out by earlier lists with an open outcome window are left off this list", len(held))
    return frozenset(held["customer_id"].astype(str))


def _explain(
    loaded: LoadedModel, inputs: _Inputs, scores: pd.DataFrame, plan: val.TargetingPlan, holdout: HoldoutConfig
) -> _Explained:
    """Reason codes for the customers in the action list (None for the others), then the table in priority order."""
    t_reasons = time.perf_counter()
    selected = scores["customer_id"].isin(plan.selected["customer_id"]).to_numpy()
    reasons = pd.DataFrame({f"reason_{j}": pd.Series([None] * len(scores), dtype=object) for j in (1, 2, 3)})
    if selected.any():
        rows = inputs.features.loc[selected]
        explained = top_reasons(
            loaded.model.contributions(rows),
            loaded.model.spec.frame(rows),
            catalog=catalog(inputs.feature_config, inputs.tables.customers),  # what each of the model's features is
        )
        for col in explained.columns:
            reasons.loc[selected, col] = explained[col].to_numpy()
    seconds = time.perf_counter() - t_reasons
    out = pd.concat([scores, reasons], axis=1)
    out.insert(out.columns.get_loc("priority_rank") + 1, "in_action_list", selected)
    as_of = pd.Timestamp(scores["as_of"].iloc[0]) if len(scores) else pd.Timestamp(0)
    group, probability = assign_holdout(out, selected, holdout.share, as_of, holdout.seed)
    out.insert(out.columns.get_loc("in_action_list") + 1, "assigned_group", group)
    out.insert(out.columns.get_loc("assigned_group") + 1, "assignment_probability", probability)
    return _Explained(Scores.validate(out.sort_values("priority_rank", ignore_index=True)), selected, seconds)


def _drift(
    config: ScoreConfig, loaded: LoadedModel, features: pd.DataFrame, scores: pd.DataFrame, feeds: dict[str, int]
) -> pd.DataFrame:
    """PSI of each feature and of the score, the expected churn rate and each data feed's completeness against the
    training reference (:func:`models.drift.drift_table`); the flagged ones logged."""
    reference = loaded.model.reference
    if not reference:
        return pd.DataFrame(columns=["name", "psi", "threshold", "importance", "flagged", "note", "change"])
    frame = loaded.model.spec.frame(features)
    drift = drift_table(reference, frame, scores["churn_probability"].to_numpy(), config.drift.rule, feeds)
    for row in drift[drift["flagged"]].itertuples():
        log.warning("drift: %s %s", row.name, row.note)
    return drift


def _write_outputs(folder: Path, scores: pd.DataFrame, html: str, csv: bool) -> None:
    """Scores, the optional spreadsheet copy and the report, replacing the folder as a whole."""
    with atomic_folder(folder, SCORES_FILE) as work:  # the folder holds one complete run (the caller holds its lock)
        write_parquet(scores, work / SCORES_FILE)
        if csv:
            write_csv(spreadsheet_safe(scores), work / "scores.csv")
        write_text(html, work / "report.html")


def _check_as_of(as_of: pd.Timestamp, result: ValidationResult) -> None:
    """Scoring looks at the data strictly before ``as_of``: a date past the day after the extract ends would read the
    days between as days without any activity (every "days since" too long, every recent window empty)."""
    end = result.observation_end
    if end is not None and as_of > end + pd.Timedelta(days=1):
        raise ScoringError(
            f"--as-of {as_of.date()} is after the data: outcomes and activity are observed up to {end.date()} "
            f"({'the end date given' if result.end_given else 'the latest row seen'}), so score at "
            f"{(end + pd.Timedelta(days=1)).date()} at the latest, or score a newer extract"
        )


def _nps_summary(tables: Tables, as_of: pd.Timestamp) -> dict:
    """Plain and revenue-weighted NPS of each customer's latest NPS answer in the year before ``as_of``."""
    fb = tables.feedback
    answers = fb[
        (fb["survey"] == "NPS") & (fb["timestamp"] < as_of) & (fb["timestamp"] >= as_of - pd.Timedelta(days=365))
    ]
    latest = answers.sort_values("timestamp").groupby("customer_id").tail(1)
    latest = latest.merge(tables.customers[["customer_id", "monthly_revenue"]], on="customer_id", how="inner")
    return val.revenue_weighted_nps(latest)


def _log_scoring_run(
    config: ScoreConfig,
    as_of: pd.Timestamp,
    loaded: LoadedModel,
    scores: pd.DataFrame,
    drift: pd.DataFrame,
    result: ValidationResult,
    summary: ScoringSummary,
    folder: Path,
) -> None:
    """One MLflow run per scoring run: its settings, the score distribution and drift, the report and accounting.

    Parameters, metrics and tags go in one ``log_batch`` (what ``log_params``, ``log_metrics`` and ``set_tags``
    would write in three).
    """
    use_experiment(config.experiment)
    with mlflow.start_run(run_name=f"score-{as_of.date()}") as run:
        now = int(time.time() * 1000)  # one timestamp for every metric, as log_metrics gives them
        MlflowClient().log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, now, 0) for k, v in _run_metrics(scores, drift, result, summary).items()],
            params=[Param(k, str(v)) for k, v in _run_params(config, as_of, loaded).items()],
            tags=[RunTag(k, str(v)) for k, v in _run_tags(summary).items()],
        )
        describe_run(_description(loaded, as_of, summary))
        mlflow.set_tag("model_version_uri", f"models:/{loaded.name}/{loaded.version}")
        if len(drift):
            mlflow.log_table(drift.astype({"name": object, "note": object}), "drift/psi.json")
        mlflow.log_artifact(str(folder / "report.html"))
        decisions = append_decisions(Path(config.out), scores, run.info.run_id)  # the loop's record, append-only
        mlflow.set_tag("decision_log", str(decisions))
        mlflow.log_dict(result.to_dict(), "validation/report.json")
        mlflow.log_dict(config.to_dict(), "config/resolved_config.json")  # as training logs its own


def _description(loaded: LoadedModel, as_of: pd.Timestamp, s: ScoringSummary) -> str:
    """The scoring run's description for analysts: the model version it used, the plan and what drift flagged."""
    drift = f"Drift flagged: {', '.join(s.drift_flagged)}" if s.drift_flagged else "No drift check flagged"
    return (
        f"Scored {s.rows:,} customers on {as_of.date()} with {version_link(loaded.name, loaded.version)}"
        + (f" and {s.uplift_model} for targeting" if s.uplift_model else "")
        + f". Action list: {s.action_list:,} customers, {s.held_out:,} of them held out at random; contacting the "
        f"other {s.contacted.customers:,} is expected to save {s.contacted.expected_customers_saved:,.1f} worth "
        f"{money(s.contacted.expected_revenue_recovered)} of revenue kept. {drift}."
    )


def _run_params(config: ScoreConfig, as_of: pd.Timestamp, loaded: LoadedModel) -> dict[str, str]:
    """What was scored with what."""
    return {
        "as_of": str(as_of.date()),
        "model": config.model,
        "model_version": loaded.version,
        "model_run_id": loaded.run_id,
        "data": config.data,
        "out": str(Path(config.out).resolve()),  # where its scores are: what churn monitor finds the run by
    }


def _run_metrics(
    scores: pd.DataFrame, drift: pd.DataFrame, result: ValidationResult, summary: ScoringSummary
) -> dict[str, float]:
    """The run's metrics: rows, quarantine, score distribution and tiers, drift, the plan's figures and timings."""
    p = scores["churn_probability"]
    features = drift.loc[~drift["name"].isin([SCORE, MEAN]), "psi"]
    mean = drift.loc[drift["name"] == MEAN, "change"]
    return {
        "rows_scored": len(scores),
        "action_list_rows": summary.action_list,
        **{f"quarantined_rows_{t}": r.rows_quarantined for t, r in result.report.items()},
        "score_mean": float(p.mean()),
        **{f"score_p{q}": float(p.quantile(q / 100)) for q in (50, 90, 99)},
        **{f"share_tier_{t}": float((scores["risk_tier"] == t).mean()) for t in ("high", "medium", "low")},
        "psi_score": float(drift.loc[drift["name"] == SCORE, "psi"].iloc[0]) if len(drift) else float("nan"),
        "psi_max_feature": float(features.max()) if len(drift) else float("nan"),
        "drift_flagged_checks": len(summary.drift_flagged),
        "score_mean_change": float(mean.iloc[0]) if len(mean) else float("nan"),
        "drift_checks": len(drift),
        "save_rate": summary.save_rate,
        "expected_customers_saved": summary.expected_customers_saved,
        "expected_revenue_recovered": summary.expected_revenue_recovered,
        "contacted_customers": summary.contacted.customers,
        "contacted_expected_customers_saved": summary.contacted.expected_customers_saved,
        "contacted_expected_revenue_recovered": summary.contacted.expected_revenue_recovered,
        "contacted_cost": summary.contacted.cost,
        "holdout_forgone_saves": summary.expected_customers_saved - summary.contacted.expected_customers_saved,
        "save_value_months": summary.save_value_months,
        "risk_plan_customers_saved": summary.risk_plan_customers_saved,
        "do_not_contact_rows": summary.do_not_contact,
        "annual_revenue_at_risk": summary.annual_revenue_at_risk,
        "seconds_total": summary.seconds_total,
        "seconds_reasons": summary.seconds_reasons,
        **summary.recent,
    }


def _run_tags(summary: ScoringSummary) -> dict[str, str]:
    return {
        "drift_warning": str(bool(summary.drift_flagged)).lower(),
        "save_rate_source": summary.save_rate_source,
        "targeting": f"uplift ({summary.uplift_model})" if summary.uplift_model else "churn probability x save rate",
    }
