"""The ``recover`` stage: saved customers and annualized revenue recovered by past retention actions.

It runs on every engine (``engine:`` and ``partitions:`` of the scoring config, or ``--engine``/``--partitions``)
with the in-memory figures. In memory (``pandas``, one partition) every table is read whole. On customer partitions
or Spark the engine validates into a scratch folder under the system's temporary folder (``TMPDIR``), unless
``data`` is a validated folder already (:func:`pipelines.engines.validated_by`, as training does); then, on this
machine, the small tables (customers, churn events, actions, feedback) are read whole, interactions are streamed in
batches (the inactivity outcome reads them so), and every customer's probability at each action date is built one
customer bucket at a time with the whole base's peer medians and BG/NBD parameters (:class:`BucketScores`), then
ranked into tiers over the whole base, date by date (:func:`tiers_at_action`). On Spark this bucket loop runs on the
driver: Spark validates, the driver splits the validated tables into the engine's buckets and scores them one by one.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import mlflow
import numpy as np
import pandas as pd

from features.build import LABEL, Prepared, Tables, build_features, prepare
from features.config import FeatureConfig
from models import adjustment as adj
from models import value as val
from models.decisions import hashed_uniform
from models.registry import describe_run, load_model, use_experiment, version_link
from pipelines.config import RecoverConfig, ScoreConfig, TierConfig, end_timestamp
from pipelines.contract import ValidationResult
from pipelines.engines import engine_for, validated_by
from pipelines.engines.partitioned import for_each_bucket
from pipelines.errors import USER_ERRORS, UserError
from pipelines.io.files import (
    VALIDATED_TABLES,
    atomic_folder,
    dataset_files,
    feature_tables,
    load_validated,
    tables_from,
    write_parquet,
    write_text,
)
from pipelines.reporting.html import money, recovery_report
from pipelines.simulation.truth import TRUTH_HORIZON_DAYS, load_truth, truth_folder
from pipelines.stages.snapshot import observation_end, snapshot

log = logging.getLogger(__name__)

# the overall row's figures a recovery run logs as MLflow metrics
METRICS = (
    "treated",
    "control",
    "saved_customers",
    "saved_low",
    "saved_high",
    "revenue_recovered",
    "revenue_low",
    "revenue_high",
    "naive_revenue",
    "unadjusted_saved_customers",
    "unadjusted_saved_low",
    "unadjusted_saved_high",
)
SCORED_COLUMNS = ("customer_id", "action_date", "probability")  # what a :class:`Probabilities` source returns


@dataclass(frozen=True)
class Recovered:
    """What :func:`recover` measured: one row per segment value (overall first) and what the reader must know."""

    table: pd.DataFrame
    overall: val.Recovery
    notes: tuple[str, ...]
    model: tuple[str, str] | None = None  # (name, version) of the model whose risk tiers split it; None: no tiers
    outcomes: pd.DataFrame | None = None  # one row per measured action: group, churned, tier, prognostic score
    adjustment: str = ""  # how the saving was adjusted, in words ("" when it was not)
    save_value: val.SaveValue | None = None  # what a save is worth (None: valued at the naive 12 months)


@dataclass(frozen=True)
class RecoverRun:
    """A finished ``churn recover`` run: where it wrote, the overall figures, the notes it warned of and the
    validation accounting (quarantined rows included) of the data it measured on."""

    folder: Path
    overall: val.Recovery
    notes: tuple[str, ...]
    validation: ValidationResult
    true_saved_customers: float | None = None  # synthetic data: the generator's net saves of the measured contacts
    save_value: val.SaveValue | None = None


class Probabilities(Protocol):
    """Every customer's churn probability on each of ``dates``: one row per (customer active then, date), with
    the columns :data:`SCORED_COLUMNS`; and features with labels on dates (:meth:`snapshots`), which the prognostic
    score of the regression adjustment is trained and scored on."""

    def __call__(self, model, dates: list[pd.Timestamp]) -> pd.DataFrame: ...

    def snapshots(self, config: FeatureConfig, dates: list[pd.Timestamp], horizon_days: int,
                  labels_end: pd.Timestamp, keep) -> pd.DataFrame: ...  # fmt: skip


@dataclass(frozen=True)
class RecoverData:
    """The validated dataset recover measures: its accounting and quarantine, its tables (interactions in memory or
    streamed from a validated folder) and where the probabilities at action dates come from."""

    result: ValidationResult
    tables: Tables
    probabilities: Probabilities


@dataclass(frozen=True)
class InMemoryScores:
    """Probabilities from tables held in memory, prepared once as a whole: the reference."""

    tables: Tables

    def __call__(self, model, dates: list[pd.Timestamp]) -> pd.DataFrame:
        return probabilities_at(prepare(self.tables, model.feature_config), model, dates)

    def snapshots(self, config, dates, horizon_days, labels_end, keep) -> pd.DataFrame:
        """Features on ``dates`` with labels observed up to ``labels_end``, each date's rows thinned by ``keep``."""
        return snapshot(self.tables, dates, horizon_days, labels_end, config, sampler=keep)


@dataclass(frozen=True)
class BucketScores:
    """Probabilities from a validated folder, one customer bucket at a time (:func:`for_each_bucket`: the folder's
    own buckets, or its tables split into ``buckets``), each with the whole base's peer medians and BG/NBD
    parameters at the dates, as partitioned scoring builds features. Memory holds a bucket and the probabilities."""

    folder: Path
    buckets: int
    scratch: Path  # where a split of the folder goes while it is scored

    def __call__(self, model, dates: list[pd.Timestamp]) -> pd.DataFrame:
        parts = []

        def build(tables: Tables, _result: ValidationResult, medians: dict[str, pd.Series], btyd: dict) -> None:
            parts.append(probabilities_at(prepare(tables, model.feature_config, medians, btyd), model, dates))

        # Read with the types the data has, as in memory: the model's attribute types shape its features only.
        config = replace(model.feature_config, attribute_types=None)
        for_each_bucket(self.folder, None, self.buckets, config, build, self.scratch, progress=True, as_of_dates=dates)
        return pd.concat(parts, ignore_index=True)

    def snapshots(self, config, dates, horizon_days, labels_end, keep) -> pd.DataFrame:
        """As :meth:`InMemoryScores.snapshots`, one bucket at a time with the whole base's peer medians and BG/NBD
        parameters; rows in (as-of, customer) order, whatever the buckets."""
        parts = []

        def build(tables: Tables, _result: ValidationResult, medians: dict[str, pd.Series], btyd: dict) -> None:
            parts.append(snapshot(tables, dates, horizon_days, labels_end, config, sampler=keep, medians=medians,
                                  btyd_params=btyd))  # fmt: skip

        for_each_bucket(self.folder, None, self.buckets, config, build, self.scratch, progress=True, as_of_dates=dates)
        frame = pd.concat(parts, ignore_index=True)
        return frame.sort_values(["as_of", "customer_id"], kind="stable", ignore_index=True)


def probabilities_at(prepared: Prepared, model, dates: list[pd.Timestamp]) -> pd.DataFrame:
    """The probability of every customer of ``prepared`` active on each of ``dates`` (:data:`SCORED_COLUMNS`)."""
    frames = []
    for day in dates:
        features = build_features(prepared, pd.Timestamp(day))
        if len(features):
            ids = features["customer_id"].astype(str).to_numpy()
            frames.append(
                pd.DataFrame(
                    {"customer_id": ids, "action_date": pd.Timestamp(day), "probability": model.predict_proba(features)}
                )
            )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(SCORED_COLUMNS))


def tiers_at_action(actions: pd.DataFrame, scored: pd.DataFrame, tiers: TierConfig) -> pd.Series:
    """Each action's customer's risk tier on the action date, ranked among every customer scored that day
    (``unknown``: not active then).

    Ties are broken by customer id, as scoring breaks them: the tiers never depend on row order or on the buckets
    the probabilities were built in.
    """
    at_action = pd.Series("unknown", index=actions.index, dtype=object)
    by_day = dict(tuple(scored.groupby("action_date", sort=False)))
    for day, rows in actions.groupby("action_date"):
        day_scores = by_day.get(pd.Timestamp(day))
        if day_scores is None:
            continue
        ids = day_scores["customer_id"].to_numpy()
        probability = day_scores["probability"].to_numpy(dtype=float)
        tier = pd.Series(val.risk_tiers(probability, tiers.high, tiers.medium, ids), index=ids)
        at_action.loc[rows.index] = rows["customer_id"].map(tier).fillna("unknown").to_numpy()
    return at_action


def risk_tier_at_action(
    actions: pd.DataFrame, model_uri: str, tiers: TierConfig, probabilities: Probabilities
) -> tuple[pd.Series, tuple[str, str]]:
    """Each action's customer's risk tier on the action date, scored by the registered model; and that model's name
    and version."""
    loaded = load_model(model_uri)
    dates = sorted({pd.Timestamp(d) for d in actions["action_date"]})
    return tiers_at_action(actions, probabilities(loaded.model, dates), tiers), (loaded.name, loaded.version)


def recover(
    tables: Tables,
    data_end: pd.Timestamp,
    start: pd.Timestamp,
    end: pd.Timestamp,
    config: ScoreConfig,
    probabilities: Probabilities | None = None,
) -> Recovered:
    """Recovery overall, by location and by risk tier, for actions dated in ``[start, end]``.

    Churn after an action is a churn event (``recover.label`` events) or no
    interaction (inactivity) within ``recover.horizon_days``; the tiers are those
    ``config.model`` gives with ``config.risk_tiers``, as scoring gives them, from
    ``probabilities`` (default: ``tables`` in memory, :class:`InMemoryScores`).
    """
    settings = config.recover
    actions, notes = _observed_actions(tables.retention_actions, start, end, settings.horizon_days, data_end)
    outcomes = val.action_outcomes(
        actions, tables.churn_events, tables.customers, settings.horizon_days, settings.label, tables.interactions
    )
    by, model = ["location_id"], None
    if settings.tiers:
        try:
            source = source_or(probabilities, tables)
            tiers, model = risk_tier_at_action(actions, config.model, config.risk_tiers, source)
            outcomes["risk_tier"] = tiers.to_numpy()
            by.append("risk_tier")
        except USER_ERRORS as err:  # tiers are optional: no such model, or it cannot take this data; say so
            notes.append(f"no risk-tier breakdown: {err}")
    start_of_data = pd.Timestamp(tables.customers["signup_date"].min()) if len(tables.customers) else None
    source = source_or(probabilities, tables)
    prognostic = prognostic_score(
        source, actions, outcomes, data_end, settings, notes, start_of_data, len(tables.customers)
    )
    if prognostic is not None:
        outcomes[adj.PROGNOSTIC] = prognostic.score
    worth = save_value_of(outcomes, tables, data_end, config, notes)
    rows = _measure(outcomes, tuple(by), settings, prognostic.method if prognostic else "", val.value_months(worth))
    if rows[0].warning:
        notes.append(rows[0].warning)
    table = val.recovery_frame(rows, settings.bootstrap.confidence)
    described = prognostic.description if prognostic else ""
    return Recovered(table, rows[0], tuple(notes), model, outcomes, described, worth)


def save_value_of(
    outcomes: pd.DataFrame, tables: Tables, data_end: pd.Timestamp, config: ScoreConfig, notes: list[str]
) -> val.SaveValue | None:
    """What a save is worth from these actions' follow-up (:func:`models.value.measured_save_value`); None, with a
    note saying why, when it cannot be measured."""
    sv, r = config.save_value, config.recover
    worth, why = val.measured_save_value(outcomes, tables.churn_events, r.horizon_days, data_end, r.label, sv.months,
                                         sv.lifetime_months, sv.discount_rate)  # fmt: skip
    if why:
        notes.append(why)
    return worth


def source_or(probabilities: Probabilities | None, tables: Tables) -> Probabilities:
    return probabilities or InMemoryScores(tables)


def prognostic_score(
    source: Probabilities,
    actions: pd.DataFrame,
    outcomes: pd.DataFrame,
    data_end: pd.Timestamp,
    settings: RecoverConfig,
    notes: list[str],
    data_start: pd.Timestamp | None = None,
    customers: int = 0,
) -> adj.Prognostic | None:
    """Each action row's churn score known before the action, for the regression adjustment (``recover.adjustment``),
    or None (with a note in ``notes`` saying why) when it is off or no model can be trained.

    One snapshot holds the pre-period dates (every customer, labels observed only before the first action; none
    before ``data_start``, the first signup; a random share of the ``customers`` when they would make more than
    ``adjustment.max_rows`` rows) and the action dates (the actioned customers, features only). A customer
    not in the population on an action date gets the mean score: any fixed pre-treatment value keeps the estimate
    consistent.
    """
    how = settings.adjustment
    if how.method == "none":
        return None
    horizon = settings.horizon_days
    first = pd.Timestamp(actions["action_date"].min())
    pre_dates = [
        d for d in adj.pre_period_dates(first, horizon, how.pre_period_dates) if data_start is None or d > data_start
    ]
    action_dates = sorted({pd.Timestamp(d) for d in actions["action_date"]})
    actioned = pd.Index(actions["customer_id"].astype(str).unique())

    share = min(1.0, how.max_rows / max(1, customers * len(pre_dates)))  # of the pre-period rows, kept at random

    def keep(as_of: pd.Timestamp, frame: pd.DataFrame) -> pd.DataFrame:
        if as_of >= first:
            return frame[frame["customer_id"].astype(str).isin(actioned)]
        return frame if share >= 1 else frame[hashed_uniform(frame["customer_id"], as_of, how.seed) < share]

    config = FeatureConfig(label_source=settings.label, inactivity_active_days=None, btyd_horizon_days=horizon)
    labels_end = min(pd.Timestamp(data_end), first - pd.Timedelta(days=1))
    log.info(
        "prognostic score for the adjustment: features on %d pre-period dates with outcomes observed up to %s, and on "
        "the %d action dates (features only: their outcomes are what is measured)",
        len(pre_dates),
        labels_end.date(),
        len(action_dates),
    )
    frames = source.snapshots(config, sorted(set(pre_dates) | set(action_dates)), horizon, labels_end, keep)
    pre = frames[(frames["as_of"] < first) & frames[LABEL].notna()]
    keys = pd.DataFrame({"customer_id": outcomes["customer_id"].astype(str), "as_of": outcomes["action_date"]})
    at_action = keys.merge(
        frames[frames["as_of"] >= first].astype({"customer_id": str}),
        on=["customer_id", "as_of"],
        how="left",
        validate="many_to_one",
        indicator=True,
    )
    found = (at_action.pop("_merge") == "both").to_numpy()
    pre_churners, action_churners = int(pre[LABEL].sum()), int(outcomes["churned"].sum())
    if how.method in ("auto", "pre_period") and pre_churners >= how.min_churners:
        model = adj.fit_prognostic(pre, how.seed)
        score = adj.predict_prognostic(model, at_action[found])
        method = "pre-period model"
        text = (
            f"a churn model trained on {len(pre):,} customer snapshots ({pre_churners:,} churners) from "
            f"{min(pre['as_of']).date()} to {max(pre['as_of']).date()}, whose outcomes closed before the first "
            f"action ({first.date()})"
        )
    elif (
        how.method in ("auto", "cross_fit")
        and action_churners >= how.min_churners
        and outcomes["customer_id"].nunique() >= how.folds
    ):
        rows = at_action[found]
        churned = outcomes["churned"].to_numpy()[found]
        score = adj.cross_fitted(rows, churned, how.folds, how.seed)
        method = "cross-fitted"
        text = (
            f"a churn model cross-fitted on the {len(rows):,} measured actions ({how.folds} folds by customer: no "
            f"score comes from a model that saw that customer's outcome)"
        )
    else:
        notes.append(
            f"the saving is not regression-adjusted ({how.method}): {pre_churners} churners before the first action "
            f"and {action_churners} after the actions, where a prognostic model needs {how.min_churners}"
        )
        return None
    full = np.full(len(outcomes), float(np.mean(score)) if len(score) else 0.0)
    full[found] = score
    missing = int((~found).sum())
    if missing:
        notes.append(f"{missing:,} actioned customers were not in the population on their action date: mean score")
    return adj.Prognostic(full, method, text)


def _observed_actions(
    actions: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, horizon_days: int, data_end: pd.Timestamp
) -> tuple[pd.DataFrame, list[str]]:
    """The actions dated in ``[start, end]`` whose outcome window the data covers, and a note of those left out.

    They come in one order (action date, customer, group; rows equal in these have equal outcomes), so that the
    bootstrap's draws depend neither on the input's row order nor on the order an engine wrote the table in.
    """
    if actions.empty:
        raise UserError(
            "the dataset has no retention actions (retention_actions.csv or .parquet, with a control group) to measure "
            "recovery on"
        )
    actions = actions[(actions["action_date"] >= start) & (actions["action_date"] <= end)]
    if actions.empty:
        raise UserError(f"no retention action is dated between {start.date()} and {end.date()}")
    observed = actions["action_date"] + pd.Timedelta(days=horizon_days - 1) <= data_end
    notes = []
    if (~observed).any():
        notes.append(
            f"{int((~observed).sum()):,} actions left out: their {horizon_days}-day outcome window runs past the "
            f"data's end ({data_end.date()})"
        )
    if not observed.any():
        raise UserError(
            f"no retention action between {start.date()} and {end.date()} has a fully observed {horizon_days}-day "
            "outcome"
        )
    kept = actions[observed].sort_values(["action_date", "customer_id", "group"], kind="stable", ignore_index=True)
    return kept, notes


def _measure(
    outcomes: pd.DataFrame, by: tuple[str, ...], settings: RecoverConfig, adjustment: str, value_months: float
) -> list[val.Recovery]:
    boot = settings.bootstrap
    return val.recovery_rows(
        outcomes,
        by,
        n_boot=boot.resamples,
        seed=boot.seed,
        level=boot.confidence,
        min_control=settings.min_control_customers,
        min_churners=settings.min_control_churners,
        adjustment=adjustment,
        value_months=value_months,
    )


def run_recover(config: ScoreConfig, start: pd.Timestamp, end: pd.Timestamp) -> RecoverRun:
    """``churn recover``: measure, write ``recovery.parquet`` and ``report.html``, log the run with its config."""
    with recover_data(config) as data:
        recovered = recover(data.tables, observation_end(data.result), start, end, config, data.probabilities)
    for note in recovered.notes:
        log.warning(note)
    folder = Path(config.recover.out) / f"recover_{start.date()}_{end.date()}"
    truth = true_saves(config, recovered.outcomes)
    with atomic_folder(folder, "recovery.parquet") as work:  # the folder holds one complete run
        write_parquet(recovered.table, work / "recovery.parquet")
        write_parquet(recovered.outcomes, work / "outcomes.parquet")
        report = recovery_report(
            recovered.table,
            start,
            end,
            config.recover.horizon_days,
            str(config.data),
            list(recovered.notes),
            config.recover.bootstrap.confidence,
            config.recover.power,
            config.recover.precision,
            recovered.adjustment,
            truth,
            recovered.save_value,
        )
        write_text(report, work / "report.html")
    _log_run(recovered, config, start, end, folder, truth)
    return RecoverRun(folder, recovered.overall, recovered.notes, data.result, truth, recovered.save_value)


def true_saves(config: ScoreConfig, outcomes: pd.DataFrame) -> float | None:
    """On synthetic data with its ground truth (``recover.truth``): the measured treated customers' true net saves
    (would have churned without the contact and did not, minus the reverse), over the generator's 90-day window;
    None for real data or another horizon."""
    folder = truth_folder(config.recover.truth, config.data)
    if folder is None or config.recover.horizon_days != TRUTH_HORIZON_DAYS:
        return None
    actions = load_truth(folder).actions
    treated = outcomes.loc[outcomes["group"] == "treatment", ["customer_id", "action_date"]]
    treated = treated.astype({"customer_id": str})
    truth = actions.astype({"customer_id": str}).merge(treated, on=["customer_id", "action_date"], how="inner")
    truth = truth[truth["group"] == "treatment"]
    return float(truth["saved"].sum() - truth["harmed"].sum())


@contextmanager
def recover_data(config: ScoreConfig) -> Iterator[RecoverData]:
    """The dataset, validated by the configured engine (see the module's docstring), while it is measured.

    In memory every table is read whole. On partitions or Spark the validated folder (a scratch copy under
    ``TMPDIR``, removed at the end, unless ``data`` is one) stays on disk: interactions and the buckets are read
    from it while the caller measures.
    """
    end_date = end_timestamp(config.end_date)
    reading = config.input
    if config.engine == "pandas" and config.partitions == 1:
        result = load_validated(Path(config.data), end_date, encoding=reading.encoding, timezone=reading.timezone)
        tables = tables_from(result)
        yield RecoverData(_with_label_table(result, config), tables, InMemoryScores(tables))
        return
    engine = engine_for(config.engine, config.partitions)
    with tempfile.TemporaryDirectory(prefix="churn-recover-") as scratch:
        validated = validated_by(engine, Path(config.data), Path(scratch), end_date, None, reading)
        result = _with_label_table(validated.result, config)
        tables = feature_tables(dataset_files(validated.folder / VALIDATED_TABLES), check=validated.earlier)
        yield RecoverData(result, tables, BucketScores(validated.folder, engine.buckets(), Path(scratch)))


def _with_label_table(result: ValidationResult, config: ScoreConfig) -> ValidationResult:
    """``result``, once it is known to hold the table that shows churn after an action under ``recover.label``."""
    label = config.recover.label
    needed = "churn_events" if label == "events" else "interactions"
    if needed not in result.report:
        raise UserError(
            f"{config.data} has no {needed} table, so churn after an action cannot be seen"
            + (": for a transaction log, measure churn as inactivity (--label inactivity)" if label == "events" else "")
        )
    return result


def _description(recovered: Recovered, start: pd.Timestamp, end: pd.Timestamp, confidence: float) -> str:
    """The recovery run's description for analysts: the measured figure, its interval and the model behind the tiers."""
    o = recovered.overall
    tiers = f" Risk tiers from {version_link(*recovered.model)}." if recovered.model else " No risk-tier breakdown."
    return (
        f"Retention actions {start.date()} to {end.date()}: {o.treated:,} treated, {o.control:,} control. Saved "
        f"customers {o.saved_customers:,.1f} ({confidence:.0%} interval {o.saved_low:,.1f} to {o.saved_high:,.1f}), "
        f"worth {money(o.revenue_recovered)} a year ({money(o.revenue_low)} to {money(o.revenue_high)}); the naive "
        f"every-contact-saves figure would be {money(o.naive_revenue)}." + tiers
    )


def _power_metrics(overall: val.Recovery, settings) -> dict[str, float]:
    """The power calculation of the overall design (:func:`models.value.power_analysis`), as run metrics:
    ``min_detectable_saved``, ``min_detectable_rate``, ``control_needed`` and ``treated_needed`` (the last two for an
    interval of +-``recover.precision`` of the saving; absent when nothing was saved)."""
    pw = val.power_analysis(overall.treated, overall.control, overall.treatment_churn_rate,
                            overall.control_churn_rate, settings.bootstrap.confidence, settings.power,
                            settings.precision)  # fmt: skip
    if pw is None:
        return {}
    out = {"min_detectable_saved": pw.min_detectable_saved, "min_detectable_rate": pw.min_detectable_rate}
    if pw.control_needed is not None:
        out |= {"control_needed": float(pw.control_needed), "treated_needed": float(pw.treated_needed)}
    return out


def _log_run(
    recovered: Recovered, config: ScoreConfig, start: pd.Timestamp, end: pd.Timestamp, folder: Path, truth: float | None
) -> None:
    """One MLflow run in ``recover.experiment``: the period and settings, the overall figures, report and config."""
    overall = recovered.overall
    use_experiment(config.recover.experiment)
    with mlflow.start_run(run_name=f"recover-{start.date()}-{end.date()}"):
        mlflow.log_params(
            {
                "from": str(start.date()),
                "to": str(end.date()),
                "horizon_days": config.recover.horizon_days,
                "data": str(config.data),
                "label": config.recover.label,
            }
        )
        mlflow.log_metrics({k: float(getattr(overall, k)) for k in METRICS if pd.notna(getattr(overall, k))})
        mlflow.log_metrics(_power_metrics(overall, config.recover))
        mlflow.log_param("adjustment", overall.adjustment or "none")
        if recovered.save_value:
            worth = recovered.save_value
            mlflow.log_metrics({"save_value_months": worth.retained_months,
                                "save_value_lifetime_months": worth.lifetime_months,
                                "save_value_control_months": worth.control_retained_months})  # fmt: skip
        if truth is not None:
            mlflow.log_metric("true_saved_customers", truth)
        describe_run(_description(recovered, start, end, config.recover.bootstrap.confidence))
        if recovered.model:
            name, version = recovered.model
            mlflow.log_param("model_version", version)
            mlflow.set_tag("model_version_uri", f"models:/{name}/{version}")
        mlflow.log_artifact(str(folder / "report.html"))
        text = {c: object for c in ("segment", "value", "warning", "adjustment")}
        mlflow.log_table(recovered.table.astype(text), "recovery.json")
        mlflow.log_dict(config.recover_dict(), "config/resolved_config.json")  # as scoring and training log theirs
