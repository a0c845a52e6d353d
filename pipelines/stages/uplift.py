"""The ``train-uplift`` stage: who a retention contact keeps, learned from past randomised campaigns.

load (contacts with their features on the action date and whether they churned within the horizon) -> split by
campaign date (:func:`pipelines.stages.train.time_roles`, the churn model's rule) -> choose a meta-learner on the
validation campaigns -> refit on training and validation campaigns -> evaluate on the test campaigns against the
churn ranking and a random one -> log to MLflow -> register ``churn-uplift`` and decide promotion.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from features.build import Tables, build_features, feature_columns, prepare
from features.config import FeatureConfig
from models import uplift as up
from models import value as val
from models.estimators import FeatureSpec
from models.pyfunc import UpliftPyfunc
from models.registry import (
    CHALLENGER,
    CHAMPION,
    champion_version,
    describe_run,
    load_model,
    start_job_run,
    tracking_uri,
    use_experiment,
    version_link,
)
from pipelines.config import UpliftConfig, end_timestamp, feature_config
from pipelines.contract import ValidationResult
from pipelines.errors import USER_ERRORS, UserError
from pipelines.io.files import VALIDATED_TABLES, dataset_files, is_validated_output, load_validated, tables_from
from pipelines.io.reading import TableReader
from pipelines.reporting.html import Verdict, uplift_report
from pipelines.simulation.truth import TRUTH_HORIZON_DAYS, load_truth
from pipelines.stages.snapshot import observation_end
from pipelines.stages.train import log_pyfunc, time_roles, truth_folder

log = logging.getLogger(__name__)

KEYS = ["customer_id", "action_date", "treated", "churned"]  # the columns of a contact row beside its features
MIN_CEILING_CONTACTS = 200  # refit contacts with a true effect the features' ceiling needs to be fitted at all


@dataclass(frozen=True)
class Contacts:
    """Every contact decision of the observed campaigns: features on the action date, group, outcome."""

    rows: pd.DataFrame  # KEYS + feature columns, in (action_date, customer_id) order
    spec: FeatureSpec
    feature_config: FeatureConfig
    set_aside: pd.DataFrame  # contacts not learned from, one row each, with the reason
    result: ValidationResult


@dataclass(frozen=True)
class ContactSplit:
    """Row masks over the contacts and how they were chosen."""

    method: str  # out_of_time | by_customer
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    refit: np.ndarray  # what the chosen learner is refitted on: every contact whose window closes by the test
    description: str


@dataclass(frozen=True)
class Choice:
    """The learner chosen on the validation campaigns, refitted on training and validation campaigns."""

    name: str
    model: up.UpliftModel
    validation_qini: dict[str, float]  # every learner's, fitted on the training campaigns


@dataclass(frozen=True)
class UpliftResult:
    """What ``churn train-uplift`` did."""

    run_id: str
    model_name: str
    model_version: str
    learner: str
    promoted: bool
    reason: str
    metrics: dict[str, float]
    split: str
    seconds: float
    tracking_uri: str


def run_uplift_training(config: UpliftConfig) -> UpliftResult:
    """Load the campaigns, split, choose, evaluate, log, register and decide promotion; return what it did."""
    started, wall = time.perf_counter(), time.time()
    contacts = load_contacts(config)
    split = split_contacts(contacts.rows, config)
    choice = choose_learner(contacts, split, config)
    test = contacts.rows[split.test].reset_index(drop=True)
    scores = _test_scores(config, contacts, split, choice, test)
    metrics = evaluate(config, test, scores, choice, contacts.rows[split.refit], contacts.spec)
    if split.method == "by_customer":  # one campaign date: cross-validated figures, as churn training gives them
        metrics["cv_qini_mean"], metrics["cv_qini_std"] = cross_validated_qini(contacts, split, choice.name, config)
    experiment = use_experiment(config.mlflow.experiment)
    with start_job_run(experiment, f"train-uplift-{test['action_date'].max().date()}", wall) as run:
        model_uri = _log_run(config, contacts, split, choice, test, scores, metrics)
        version, promote, reason = register_and_promote(config, model_uri, test, metrics)
        decision = Verdict(config.mlflow.registered_model, version, promote, reason)
        mlflow.log_text(uplift_report(test, scores, metrics, choice, split.description, config, decision),
                        "uplift_report.html")  # fmt: skip
        describe_run(_description(config, choice.name, version, promote, reason, metrics, split.description))
        elapsed = time.perf_counter() - started
        mlflow.log_metric("train_job_seconds", elapsed)
    return UpliftResult(
        run.info.run_id, config.mlflow.registered_model, version, choice.name, promote, reason, metrics,
        split.description, elapsed, tracking_uri(),
    )  # fmt: skip


def has_campaigns(config: UpliftConfig) -> bool:
    """Whether the data holds retention actions of both groups (read as text, before validation)."""
    data = Path(config.data)
    files = dataset_files(data / VALIDATED_TABLES if is_validated_output(data) else data)
    if "retention_actions" not in files:
        return False
    group = TableReader(files["retention_actions"], "retention_actions", config.input.encoding).read().get("group")
    return group is not None and _both_groups(group)


def _both_groups(group: pd.Series) -> bool:
    """The one test of "campaigns with a randomised holdout": treatment and control rows both present."""
    return {"treatment", "control"} <= set(group.dropna().astype(str).str.strip().str.lower())


# --- load --------------------------------------------------------------------------------------------------------
def load_contacts(config: UpliftConfig) -> Contacts:
    """Validate the extract; each observed contact's features on its action date and its outcome."""
    result = load_validated(
        Path(config.data), end_timestamp(config.end_date), config.features.attribute_types,
        config.input.encoding, config.input.timezone,
    )  # fmt: skip
    tables = tables_from(result)
    observed_to = observation_end(result)
    actions = _campaign_actions(tables.retention_actions, config, observed_to)
    window = actions["action_date"] + pd.Timedelta(days=config.horizon_days - 1) <= observed_to
    outcomes = val.action_outcomes(
        actions[window], tables.churn_events, tables.customers, config.horizon_days, config.label, tables.interactions
    )
    features = feature_config(config, result.attribute_types)
    keys = outcomes.assign(treated=outcomes["group"] == "treatment")[KEYS]
    rows, absent = _with_features(tables, features, keys)
    late = actions.loc[~window, ["customer_id", "action_date"]].assign(
        treated=actions.loc[~window, "group"] == "treatment"
    )
    set_aside = pd.concat(
        [
            late.assign(reason=f"outcome window of {config.horizon_days} days runs past {observed_to.date()}"),
            absent.drop(columns=["churned"]).assign(
                reason="not in the population on the action date (signed up later, or churned before)"
            ),
        ],
        ignore_index=True,
    )
    for reason, n in set_aside["reason"].value_counts().items():
        log.warning("%d contacts set aside: %s", n, reason)
    spec = FeatureSpec.infer(rows, [c for c in feature_columns(rows) if c not in KEYS])  # never the group or outcome
    return Contacts(rows, spec, features, set_aside, result)


def _campaign_actions(actions: pd.DataFrame, config: UpliftConfig, observed_to: pd.Timestamp) -> pd.DataFrame:
    """The retention actions, checked to hold a randomised control group; one row per customer and action date."""
    if not _both_groups(actions["group"]):
        raise UserError(
            f"{config.data} has no retention campaigns with both a treatment and a control group "
            "(retention_actions with group 'treatment' and 'control'): uplift needs a randomised holdout to learn from"
        )
    duplicated = actions.duplicated(["customer_id", "action_date"], keep=False)
    if duplicated.any():
        raise UserError(
            f"retention_actions: {int(duplicated.sum())} rows give one customer two decisions on one date "
            f"(e.g. {actions.loc[duplicated, 'customer_id'].iloc[0]}); expected one treatment or control row each"
        )
    if not (actions["action_date"] + pd.Timedelta(days=config.horizon_days - 1) <= observed_to).any():
        raise UserError(
            f"no retention action has a fully observed {config.horizon_days}-day outcome window (outcomes observed up "
            f"to {observed_to.date()}); give end_date, the extract date, or a shorter horizon_days"
        )
    return actions.sort_values(["action_date", "customer_id"], ignore_index=True)


def _with_features(tables: Tables, config: FeatureConfig, keys: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each contact's (``KEYS`` rows) features on its action date, from data strictly before it; and the contacts
    without a feature row (not in the population that day)."""
    prepared = prepare(tables, config)
    parts, absent = [], []
    for day, rows in keys.groupby("action_date", sort=True):
        features = build_features(prepared, pd.Timestamp(day)).drop(columns=["as_of"])
        merged = rows.merge(features, on="customer_id", how="left", indicator=True)
        found = (merged["_merge"] == "both").to_numpy()
        absent.append(rows[~found])
        parts.append(merged[found].drop(columns=["_merge"]))
    frame = pd.concat(parts, ignore_index=True).sort_values(["action_date", "customer_id"], ignore_index=True)
    return frame, pd.concat(absent, ignore_index=True)


# --- split -------------------------------------------------------------------------------------------------------
def split_contacts(rows: pd.DataFrame, config: UpliftConfig) -> ContactSplit:
    """Out of time by campaign date when there are enough dates, otherwise by customer (one customer's contacts never
    straddle two parts)."""
    u = config.uplift
    roles = time_roles(rows["action_date"].unique(), config.horizon_days, u.test_campaigns, u.validation_campaigns)
    if roles is not None:
        day = rows["action_date"]
        refit = (day + pd.Timedelta(days=config.horizon_days) <= roles.test[0]).to_numpy()
        gaps = ~day.isin((*roles.train, *roles.val, *roles.test))
        if gaps.any():
            log.info(
                "%d contacts on %d campaign dates between the roles are not trained or chosen on (their outcome "
                "windows reach the next role's first date); %d of them join the refit",
                int(gaps.sum()), day[gaps].nunique(), int((gaps & refit).sum()),
            )  # fmt: skip
        return ContactSplit(
            "out_of_time",
            day.isin(roles.train).to_numpy(),
            day.isin(roles.val).to_numpy(),
            day.isin(roles.test).to_numpy(),
            refit,
            f"train on {len(roles.train)} campaign dates {roles.train[0].date()}..{roles.train[-1].date()}; choose on "
            f"{len(roles.val)} ({roles.val[0].date()}..{roles.val[-1].date()}); refit on the "
            f"{int(pd.Series(day[refit]).nunique())} dates whose windows close by the test; test on {len(roles.test)} "
            f"({roles.test[0].date()}..{roles.test[-1].date()})",
        )
    share = _customer_share(rows["customer_id"], config.seed)
    log.warning(
        "campaign dates %s are too few or too close for an out-of-time split with a %d-day horizon; splitting by "
        "customer",
        sorted(str(pd.Timestamp(d).date()) for d in rows["action_date"].unique()),
        config.horizon_days,
    )
    return ContactSplit(
        "by_customer",
        share >= 0.4,
        (share >= 0.25) & (share < 0.4),
        share < 0.25,
        share >= 0.25,
        "by customer (too few campaign dates for out of time): 60 % train, 15 % validation, 25 % test",
    )


def _customer_share(customer_id: pd.Series, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per customer, fixed by the id and the seed (row order does not matter)."""
    key = seed.to_bytes(8, "little", signed=True)
    digest = [hashlib.blake2b(str(c).encode(), digest_size=8, key=key).digest() for c in customer_id]
    return np.array([int.from_bytes(d, "little") for d in digest], dtype=np.float64) / 2.0**64


# --- choose and fit ----------------------------------------------------------------------------------------------
def choose_learner(contacts: Contacts, split: ContactSplit, config: UpliftConfig) -> Choice:
    """Each learner fitted on the training campaigns and judged by Qini on the validation ones; the best is refitted
    on every contact whose outcome window closes by the test (training, validation and the dates between)."""
    rows, u = contacts.rows, config.uplift
    params = {**up.DEFAULT_PARAMS, **u.params}
    val_rows = rows[split.val]
    qini = {}
    for name in u.learners:
        model = _fit(contacts.spec, name, params, config.seed, rows[split.train])
        qini[name] = up.qini_coefficient(val_rows["churned"], val_rows["treated"], model.uplift(val_rows))
        log.info("uplift learner %s: validation Qini %.4f", name, qini[name])
    best = max(qini, key=lambda k: (qini[k], -u.learners.index(k)))  # ties: the first listed
    return Choice(best, _fit(contacts.spec, best, params, config.seed, rows[split.refit]), qini)


def _fit(spec: FeatureSpec, name: str, params: dict, seed: int, rows: pd.DataFrame) -> up.UpliftModel:
    return up.UpliftModel(spec, name, params, seed).fit(rows, rows["treated"].to_numpy(), rows["churned"].to_numpy())


def cross_validated_qini(
    contacts: Contacts, split: ContactSplit, name: str, config: UpliftConfig
) -> tuple[float, float]:
    """Mean and standard deviation of the learner's Qini over ``uplift.cv_folds`` folds by customer of the
    training and validation contacts (the test contacts stay out)."""
    rows = contacts.rows[split.train | split.val].reset_index(drop=True)
    fold = np.floor(_customer_share(rows["customer_id"], config.seed + 1) * config.uplift.cv_folds).astype(int)
    params = {**up.DEFAULT_PARAMS, **config.uplift.params}
    qini = []
    for k in range(config.uplift.cv_folds):
        held = rows[fold == k]
        model = _fit(contacts.spec, name, params, config.seed, rows[fold != k])
        qini.append(up.qini_coefficient(held["churned"], held["treated"], model.uplift(held)))
    return float(np.mean(qini)), float(np.std(qini))


# --- evaluate ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TestScores:
    """The rankings compared on the test contacts, and the outcome models of the doubly robust policy values."""

    uplift: np.ndarray
    risk: np.ndarray
    risk_source: str
    random: np.ndarray
    outcome_models: tuple[np.ndarray, np.ndarray]  # churn probability without and with contact, never fit on test


def _test_scores(
    config: UpliftConfig, contacts: Contacts, split: ContactSplit, choice: Choice, test: pd.DataFrame
) -> TestScores:
    params = {**up.DEFAULT_PARAMS, **config.uplift.params}
    nuisance = (  # the chosen T-learner is this very model: not fitted twice
        choice.model
        if choice.name == "t_learner"
        else _fit(contacts.spec, "t_learner", params, config.seed, contacts.rows[split.refit])
    )
    m0, m1 = nuisance.learner_.probabilities(nuisance.transform(test))
    risk, source = _risk(config, contacts, test, m0)
    random = np.random.default_rng(config.seed).random(len(test))
    return TestScores(choice.model.uplift(test), risk, source, random, (m0, m1))


def _risk(config: UpliftConfig, contacts: Contacts, test: pd.DataFrame, fallback: np.ndarray) -> tuple[np.ndarray, str]:
    """The churn ranking targeting uses today: the registered churn model's probability on each action date.

    Without one (or when it cannot take this data), the probability of churning without a contact from a model of
    the control customers of the training and validation campaigns; the source is logged.
    """
    uri = config.uplift.risk_model
    if uri:
        try:
            loaded = load_model(uri)
            if loaded.model.feature_config == contacts.feature_config:  # the same features: no second build
                return loaded.model.predict_proba(test), f"{uri} (v{loaded.version}) on each action date"
            rows, absent = _with_features(tables_from(contacts.result), loaded.model.feature_config, test[KEYS])
            if absent.empty:  # rows come back in the test's (action_date, customer_id) order
                return loaded.model.predict_proba(rows), f"{uri} (v{loaded.version}) on each action date"
            log.warning("the churn model %s leaves %d test contacts out of its population", uri, len(absent))
        except USER_ERRORS as err:
            log.warning("the churn ranking falls back to the control customers' churn model: %s", err)
    return fallback, "churn probability without contact, from the control customers of the training campaigns"


def evaluate(
    config: UpliftConfig, test: pd.DataFrame, scores: TestScores, choice: Choice, refit: pd.DataFrame, spec: FeatureSpec
) -> dict[str, float]:
    """Test metrics with intervals for the uplift, churn and random rankings; policy values; on synthetic data the
    truth's oracle Qini, the features' ceiling and true saves at the configured capacity (``refit``: the contacts the
    chosen learner was refitted on, which the ceiling is fitted on too)."""
    u = config.uplift
    y, t = test["churned"].to_numpy(), test["treated"].to_numpy()
    metrics: dict[str, float] = {f"validation_qini_{k}": v for k, v in choice.validation_qini.items()}
    for prefix, score in (("", scores.uplift), ("risk_", scores.risk), ("random_", scores.random)):
        for name, ci in up.bootstrap_metrics(y, t, score, u.resamples, u.confidence, config.seed).items():
            metrics[f"{prefix}test_{name}"] = ci.value
            metrics[f"{prefix}test_{name}_low"], metrics[f"{prefix}test_{name}_high"] = ci.low, ci.high
    metrics.update(_policy_values(test, scores, u.capacity_share, u.confidence))
    metrics.update(_truth_metrics(config, test, scores, refit, spec))
    metrics.update({"test_contacts": float(len(test)), "test_control": float((~t).sum()),
                    "test_control_churners": float((~t & y).sum())})  # fmt: skip
    return metrics


def _top(score: np.ndarray, test: pd.DataFrame, share: float) -> np.ndarray:
    """The top ``share`` of each campaign date's contacts by ``score`` (ties by customer id)."""
    out = np.zeros(len(test), dtype=bool)
    for _, idx in test.groupby("action_date").indices.items():
        order = idx[np.lexsort((test["customer_id"].to_numpy()[idx], -score[idx]))]
        out[order[: int(round(share * idx.size))]] = True
    return out


def _policy_values(test: pd.DataFrame, scores: TestScores, share: float, level: float) -> dict[str, float]:
    """Customers each policy would have kept on the test campaigns (doubly robust, with an interval)."""
    t = test["treated"].to_numpy()
    propensity = test.groupby("action_date")["treated"].transform("mean").to_numpy()  # each campaign's design
    out = {}
    policies = {
        "uplift": _top(scores.uplift, test, share),
        "risk": _top(scores.risk, test, share),
        # the campaigns' own rule: everyone they picked (treatment and control alike: a policy may depend on who a
        # customer is, never on the coin that assigned them)
        "campaign": np.ones(len(test), dtype=bool),
    }
    for name, selected in policies.items():
        ci = up.policy_value(test["churned"], t, selected, propensity, scores.outcome_models, level)
        out[f"policy_value_{name}"], out[f"policy_value_{name}_low"], out[f"policy_value_{name}_high"] = (
            ci.value, ci.low, ci.high,
        )  # fmt: skip
    return out


def _truth_metrics(
    config: UpliftConfig, test: pd.DataFrame, scores: TestScores, refit: pd.DataFrame, spec: FeatureSpec
) -> dict[str, float]:
    """On synthetic data: the true effect's Qini and the true saves of each policy at the configured capacity, and
    the same for the features' ceiling (:func:`models.uplift.features_ceiling`)."""
    folder = truth_folder(config)
    if folder is None:
        return {}
    if config.horizon_days != TRUTH_HORIZON_DAYS:
        log.warning("no truth metrics: the generator's potential outcomes are over %d days", TRUTH_HORIZON_DAYS)
        return {}
    truth = load_truth(folder).actions
    missing = {"churned_within_90d_if_contacted", "churned_within_90d_if_not_contacted", "true_uplift"} - set(truth)
    if missing:
        log.warning("no truth metrics: %s lacks %s (generated by an older version)", folder, sorted(missing))
        return {}
    keyed = truth.set_index(["customer_id", "action_date"])

    def of(rows: pd.DataFrame, column: str) -> np.ndarray:
        return keyed[column].reindex(pd.MultiIndex.from_frame(rows[["customer_id", "action_date"]])).to_numpy(float)

    y0, y1 = of(test, "churned_within_90d_if_not_contacted"), of(test, "churned_within_90d_if_contacted")
    true_uplift = of(test, "true_uplift")
    refit_truth = of(refit, "true_uplift")
    rankings = {"uplift": scores.uplift, "risk": scores.risk, "oracle": true_uplift}
    if np.isfinite(refit_truth).sum() >= MIN_CEILING_CONTACTS:
        rankings["ceiling"] = up.features_ceiling(spec, refit, refit_truth, test, config.seed)
    else:
        log.warning("no features' ceiling: the truth has the effect of %d of the %d refit contacts (need %d)",
                    int(np.isfinite(refit_truth).sum()), len(refit), MIN_CEILING_CONTACTS)  # fmt: skip
    share = config.uplift.capacity_share
    saves = {name: float((y0 - y1)[_top(s, test, share)].sum()) for name, s in rankings.items()}
    treated = test["treated"].to_numpy()
    ceiling = (
        {"ceiling_test_qini": up.qini_coefficient(test["churned"], treated, rankings["ceiling"])}
        if "ceiling" in rankings
        else {}
    )
    return {
        "oracle_test_qini": up.qini_coefficient(test["churned"], treated, true_uplift),
        **ceiling,
        **{f"true_saves_{k}_policy": v for k, v in saves.items()},
        "true_saves_campaign_policy": float((y0 - y1).sum()),  # contacting everyone the campaigns picked
        "true_uplift_mean": float(np.nanmean(true_uplift)),
    }


# --- log, register, promote --------------------------------------------------------------------------------------
def _log_run(
    config: UpliftConfig,
    contacts: Contacts,
    split: ContactSplit,
    choice: Choice,
    test: pd.DataFrame,
    scores: TestScores,
    metrics: dict[str, float],
) -> str:
    """Params, metrics, the set-aside contacts and the model; returns the model's URI."""
    rows = contacts.rows
    mlflow.log_params(
        {
            "learner": choice.name, "learners": ",".join(config.uplift.learners), "split": split.method,
            "horizon_days": config.horizon_days, "label": config.label, "data": str(config.data),
            "capacity_share": config.uplift.capacity_share, "risk_ranking": scores.risk_source[:500],
            "train_contacts": int(split.train.sum()), "validation_contacts": int(split.val.sum()),
            "test_contacts": int(split.test.sum()), "contacts_set_aside": len(contacts.set_aside),
            "treated_share": round(float(rows["treated"].mean()), 4),
        }
    )  # fmt: skip
    mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
    mlflow.set_tag("split", split.description)
    mlflow.log_dict(config.to_dict(), "config/resolved_config.json")
    set_aside = contacts.set_aside.astype({"customer_id": object, "action_date": str, "reason": object})
    mlflow.log_table(set_aside.astype({"action_date": object}), "data/set_aside_contacts.json")
    example = contacts.spec.frame(rows.head(5)).reset_index(drop=True)
    return log_pyfunc(UpliftPyfunc(choice.model, contacts.feature_config, config.horizon_days), example)


def register_and_promote(
    config: UpliftConfig, model_uri: str, test: pd.DataFrame, metrics: dict[str, float]
) -> tuple[str, bool, str]:
    """Register as challenger; promote when the Qini's lower bound beats the churn ranking's Qini on the same test
    campaigns and, with a champion, the Qini beats the champion's there too."""
    client = MlflowClient()
    name = config.mlflow.registered_model
    version = mlflow.register_model(model_uri, name).version
    client.set_registered_model_alias(name, CHALLENGER, version)
    low, risk = metrics["test_qini_low"], metrics["risk_test_qini"]
    promote, reason = low > risk, f"test_qini_low {low:.4f} {'beats' if low > risk else 'does not beat'} the churn " \
        f"ranking's test_qini {risk:.4f}"  # fmt: skip
    champion = champion_version(client, name)
    if promote and champion is not None:
        champ = _champion_qini(name, test)
        if champ is not None:
            mlflow.log_metric("champion_test_qini", champ)
            promote = metrics["test_qini"] > champ
            reason += f"; test_qini {metrics['test_qini']:.4f} vs champion v{champion} {champ:.4f}"
    if promote:
        client.set_registered_model_alias(name, CHAMPION, version)
    tags = {"promotion_decision": "promoted" if promote else "not_promoted", "promotion_reason": reason,
            "previous_champion_version": champion or "none"}  # fmt: skip
    mlflow.set_tags(tags)
    for k, v in tags.items():
        client.set_model_version_tag(name, version, k, v)
    return version, promote, reason


def _champion_qini(name: str, test: pd.DataFrame) -> float | None:
    """The champion's Qini on these test contacts; None when it cannot take them (a different feature set)."""
    try:
        champion = load_model(f"{name}@{CHAMPION}").model
        return up.qini_coefficient(test["churned"], test["treated"], champion.uplift(test))
    except USER_ERRORS as err:
        log.warning("the uplift champion cannot score these test contacts: %s", err)
        return None


def _description(
    config: UpliftConfig, learner: str, version: str, promote: bool, reason: str, m: dict, split: str
) -> str:
    """The run's description for analysts: the headline figures and the promotion decision."""
    decision = "**promoted to champion**" if promote else "**not promoted**"
    lines = [
        f"{version_link(config.mlflow.registered_model, version)} ({learner}): {decision}. {reason}.",
        f"{split}.",
        f"Test Qini {m['test_qini']:.4f} ({m['test_qini_low']:.4f} to {m['test_qini_high']:.4f}); the churn ranking "
        f"{m['risk_test_qini']:.4f}; random {m['random_test_qini']:.4f}.",
    ]
    if "oracle_test_qini" in m:
        lines.append(
            f"Truth: the oracle's Qini {m['oracle_test_qini']:.4f}, the features' ceiling "
            f"{m.get('ceiling_test_qini', float('nan')):.4f}; "
            f"true saves at {config.uplift.capacity_share:.0%} of each campaign: uplift "
            f"{m['true_saves_uplift_policy']:.0f}, churn ranking {m['true_saves_risk_policy']:.0f}, ceiling "
            f"{m.get('true_saves_ceiling_policy', float('nan')):.0f}, oracle {m['true_saves_oracle_policy']:.0f}."
        )
    return "\n\n".join(lines)


def format_summary(result: UpliftResult) -> str:
    m = result.metrics
    lines = [
        f"uplift model {result.model_name} v{result.model_version} ({result.learner}); {result.split}",
        f"  test Qini {m['test_qini']:.4f} ({m['test_qini_low']:.4f} to {m['test_qini_high']:.4f}); churn ranking "
        f"{m['risk_test_qini']:.4f}; random {m['random_test_qini']:.4f}",
        f"  customers kept on the test campaigns by contacting the top share (doubly robust): uplift "
        f"{m['policy_value_uplift']:.1f}, churn ranking {m['policy_value_risk']:.1f}",
    ]
    if "oracle_test_qini" in m:
        lines.append(
            f"  truth: oracle Qini {m['oracle_test_qini']:.4f}; true saves uplift {m['true_saves_uplift_policy']:.0f}, "
            f"churn ranking {m['true_saves_risk_policy']:.0f}, oracle {m['true_saves_oracle_policy']:.0f}; the "
            f"features' ceiling: Qini {m.get('ceiling_test_qini', float('nan')):.4f}, true saves "
            f"{m.get('true_saves_ceiling_policy', float('nan')):.0f}"
        )
    lines.append(f"  promotion: {'PROMOTED' if result.promoted else 'not promoted'}: {result.reason}")
    lines.append(f"  took {result.seconds:.0f} s; tracking store {result.tracking_uri}")
    return "\n".join(lines)
