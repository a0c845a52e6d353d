"""The ``recover`` stage: saved customers and annualized revenue recovered by past retention actions."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd

from features.build import Tables, build_features, prepare
from models import value as val
from models.registry import load_model, use_experiment
from pipelines.config import RecoverConfig, ScoreConfig, TierConfig, end_timestamp
from pipelines.contract import ValidationResult
from pipelines.errors import USER_ERRORS, UserError
from pipelines.io.files import atomic_folder, load_validated, tables_from, write_parquet, write_text
from pipelines.reporting.html import recovery_report
from pipelines.stages.score import risk_tiers
from pipelines.stages.snapshot import observation_end

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
)


@dataclass(frozen=True)
class Recovered:
    """What :func:`recover` measured: one row per segment value (overall first) and what the reader must know."""

    table: pd.DataFrame
    overall: val.Recovery
    notes: tuple[str, ...]


@dataclass(frozen=True)
class RecoverRun:
    """A finished ``churn recover`` run: where it wrote, the overall figures and the notes it warned of."""

    folder: Path
    overall: val.Recovery
    notes: tuple[str, ...]


def risk_tier_at_action(tables, actions: pd.DataFrame, model_uri: str, tiers: TierConfig) -> pd.Series:
    """Each action's customer's risk tier on the action date, scored by the registered model."""
    loaded = load_model(model_uri)
    prepared = prepare(tables, loaded.model.feature_config)
    at_action = pd.Series("unknown", index=actions.index, dtype=object)
    for day, rows in actions.groupby("action_date"):
        features = build_features(prepared, pd.Timestamp(day))
        if features.empty:
            continue
        ids = features["customer_id"].astype(str)
        # ties broken by customer id, as scoring breaks them: the tiers never depend on row order
        probability = loaded.model.predict_proba(features)
        tier = pd.Series(risk_tiers(probability, tiers.high, tiers.medium, ids.to_numpy()), index=ids)
        at_action.loc[rows.index] = rows["customer_id"].map(tier).fillna("unknown").to_numpy()
    return at_action


def recover(
    tables: Tables, data_end: pd.Timestamp, start: pd.Timestamp, end: pd.Timestamp, config: ScoreConfig
) -> Recovered:
    """Recovery overall, by location and by risk tier, for actions dated in ``[start, end]``.

    Churn after an action is a churn event (``recover.label`` events) or no
    interaction (inactivity) within ``recover.horizon_days``; the tiers are those
    ``config.model`` gives with ``config.risk_tiers``, as scoring gives them.
    """
    settings = config.recover
    actions, notes = _observed_actions(tables.retention_actions, start, end, settings.horizon_days, data_end)
    outcomes = val.action_outcomes(
        actions, tables.churn_events, tables.customers, settings.horizon_days, settings.label, tables.interactions
    )
    by = ["location_id"]
    if settings.tiers:
        try:
            tiers = risk_tier_at_action(tables, actions.reset_index(drop=True), config.model, config.risk_tiers)
            outcomes["risk_tier"] = tiers.to_numpy()
            by.append("risk_tier")
        except USER_ERRORS as err:  # tiers are optional: no such model, or it cannot take this data; say so
            notes.append(f"no risk-tier breakdown: {err}")
    rows = _measure(outcomes, tuple(by), settings)
    if rows[0].warning:
        notes.append(rows[0].warning)
    return Recovered(val.recovery_frame(rows), rows[0], tuple(notes))


def _observed_actions(
    actions: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, horizon_days: int, data_end: pd.Timestamp
) -> tuple[pd.DataFrame, list[str]]:
    """The actions dated in ``[start, end]`` whose outcome window the data covers, and a note of those left out."""
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
    return actions[observed], notes


def _measure(outcomes: pd.DataFrame, by: tuple[str, ...], settings: RecoverConfig) -> list[val.Recovery]:
    boot = settings.bootstrap
    return val.recovery_rows(
        outcomes,
        by,
        n_boot=boot.resamples,
        seed=boot.seed,
        level=boot.confidence,
        min_control=settings.min_control_customers,
        min_churners=settings.min_control_churners,
    )


def run_recover(config: ScoreConfig, start: pd.Timestamp, end: pd.Timestamp) -> RecoverRun:
    """``churn recover``: measure, write ``recovery.parquet`` and ``report.html``, log the run with its config."""
    result = _validated(config)
    recovered = recover(tables_from(result), observation_end(result), start, end, config)
    for note in recovered.notes:
        log.warning(note)
    folder = Path(config.recover.out) / f"recover_{start.date()}_{end.date()}"
    with atomic_folder(folder, "recovery.parquet") as work:  # the folder holds one complete run
        write_parquet(recovered.table, work / "recovery.parquet")
        report = recovery_report(
            recovered.table,
            start,
            end,
            config.recover.horizon_days,
            str(config.data),
            list(recovered.notes),
            config.recover.bootstrap.confidence,
        )
        write_text(report, work / "report.html")
    _log_run(recovered, config, start, end, folder)
    return RecoverRun(folder, recovered.overall, recovered.notes)


def _validated(config: ScoreConfig) -> ValidationResult:
    """The dataset, validated, with the table that shows churn after an action under ``recover.label``."""
    end_date = end_timestamp(config.end_date)
    reading = config.input
    result = load_validated(Path(config.data), end_date, encoding=reading.encoding, timezone=reading.timezone)
    label = config.recover.label
    needed = "churn_events" if label == "events" else "interactions"
    if needed not in result.report:
        raise UserError(
            f"{config.data} has no {needed} table, so churn after an action cannot be seen"
            + (": for a transaction log, measure churn as inactivity (--label inactivity)" if label == "events" else "")
        )
    return result


def _log_run(recovered: Recovered, config: ScoreConfig, start: pd.Timestamp, end: pd.Timestamp, folder: Path) -> None:
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
        mlflow.log_artifact(str(folder / "report.html"))
        mlflow.log_table(recovered.table.astype({c: object for c in ("segment", "value", "warning")}), "recovery.json")
        mlflow.log_dict(config.recover_dict(), "config/resolved_config.json")  # as scoring and training log theirs
