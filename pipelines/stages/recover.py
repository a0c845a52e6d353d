"""The ``recover`` stage: saved customers and annualized revenue recovered by past retention actions."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from features.build import build_features, prepare
from models import value as val
from pipelines.config import InputConfig, TierConfig
from pipelines.errors import USER_ERRORS, UserError
from pipelines.io.files import tables_from

log = logging.getLogger(__name__)


def risk_tier_at_action(tables, actions: pd.DataFrame, model_uri: str, high: float, medium: float) -> pd.Series:
    """Each action's customer's risk tier on the action date, scored by the registered model."""
    from models.registry import load_model
    from pipelines.stages.score import risk_tiers

    loaded = load_model(model_uri)
    prepared = prepare(tables, loaded.model.feature_config)
    tiers = pd.Series("unknown", index=actions.index, dtype=object)
    for day, rows in actions.groupby("action_date"):
        features = build_features(prepared, pd.Timestamp(day))
        if features.empty:
            continue
        ids = features["customer_id"].astype(str)
        # ties broken by customer id, as scoring breaks them: the tiers never depend on row order
        tier = pd.Series(risk_tiers(loaded.model.predict_proba(features), high, medium, ids.to_numpy()), index=ids)
        tiers.loc[rows.index] = rows["customer_id"].map(tier).fillna("unknown").to_numpy()
    return tiers


def recover(
    tables,
    data_end: pd.Timestamp,
    start: pd.Timestamp,
    end: pd.Timestamp,
    horizon_days: int,
    tiers_from_model: str | None,
    high: float = TierConfig.high,  # the scoring config's tier shares: one definition of the tiers
    medium: float = TierConfig.medium,
    n_boot: int = 2000,
    seed: int = 0,
    label: str = "events",
) -> tuple[pd.DataFrame, list[str]]:
    """Recovery overall, by location and by risk tier, for actions dated in ``[start, end]``; churn after an action
    is a churn event (``label`` events) or no interaction (inactivity) within the horizon."""
    notes = []
    actions = tables.retention_actions
    if actions.empty:
        raise UserError(
            "the dataset has no retention actions (retention_actions.csv or .parquet, with a control group) to measure "
            "recovery on"
        )
    actions = actions[(actions["action_date"] >= start) & (actions["action_date"] <= end)]
    if actions.empty:
        raise UserError(f"no retention action is dated between {start.date()} and {end.date()}")
    observed = actions["action_date"] + pd.Timedelta(days=horizon_days - 1) <= data_end
    if (~observed).any():
        notes.append(
            f"{int((~observed).sum()):,} actions left out: their {horizon_days}-day outcome window runs past the "
            f"data's end ({data_end.date()})"
        )
    actions = actions[observed]
    if actions.empty:
        raise UserError(
            f"no retention action between {start.date()} and {end.date()} has a fully observed {horizon_days}-day "
            "outcome"
        )
    outcomes = val.action_outcomes(
        actions, tables.churn_events, tables.customers, horizon_days, label, tables.interactions
    )
    by = ["location_id"]
    if tiers_from_model:
        try:
            outcomes["risk_tier"] = risk_tier_at_action(
                tables, actions.reset_index(drop=True), tiers_from_model, high, medium
            ).to_numpy()
            by.append("risk_tier")
        except USER_ERRORS as err:  # tiers are optional: no such model, or it cannot take this data; say so
            notes.append(f"no risk-tier breakdown: {err}")
    table = val.recovery_table(outcomes, tuple(by), n_boot=n_boot, seed=seed)
    overall = table.iloc[0]
    if overall["warning"]:
        notes.append(overall["warning"])
    return table, notes


def run_recover(
    data: Path,
    start: pd.Timestamp,
    end: pd.Timestamp,
    horizon_days: int,
    end_date,
    model_uri: str | None,
    out: Path,
    experiment: str,
    label: str = "events",
    reading: InputConfig = InputConfig(),
) -> dict:
    import mlflow

    from models.registry import use_experiment
    from pipelines.io.files import atomic_folder, load_validated, write_parquet, write_text
    from pipelines.reporting.html import recovery_report
    from pipelines.stages.snapshot import observation_end

    result = load_validated(Path(data), end_date, encoding=reading.encoding, timezone=reading.timezone)
    needed = "churn_events" if label == "events" else "interactions"
    if needed not in result.report:
        raise UserError(
            f"{data} has no {needed} table, so churn after an action cannot be seen"
            + (": for a transaction log, measure churn as inactivity (--label inactivity)" if label == "events" else "")
        )
    table, notes = recover(
        tables_from(result), observation_end(result), start, end, horizon_days, model_uri, label=label
    )
    for note in notes:
        log.warning(note)
    folder = Path(out) / f"recover_{start.date()}_{end.date()}"
    with atomic_folder(folder, "recovery.parquet") as work:  # the folder holds one complete run
        write_parquet(table, work / "recovery.parquet")
        write_text(recovery_report(table, start, end, horizon_days, str(data), notes), work / "report.html")
    overall = table.iloc[0].to_dict()
    use_experiment(experiment)
    with mlflow.start_run(run_name=f"recover-{start.date()}-{end.date()}"):
        mlflow.log_params(
            {
                "from": str(start.date()),
                "to": str(end.date()),
                "horizon_days": horizon_days,
                "data": str(data),
                "label": label,
            }
        )
        mlflow.log_metrics(
            {
                k: float(overall[k])
                for k in (
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
                if pd.notna(overall[k])
            }
        )
        mlflow.log_artifact(str(folder / "report.html"))
        mlflow.log_table(table.astype({c: object for c in ("segment", "value", "warning")}), "recovery.json")
    return {"folder": str(folder), "overall": overall, "notes": notes}
