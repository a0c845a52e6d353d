"""``churn recover --run RUN_ID`` / ``--model-version V``: what the pipeline's own action lists recovered.

Each scoring run logs its decisions (``SCORES/decisions/``, :mod:`pipelines.io.decisions`): whom it selected and
which of them it held out at random. This stage joins one run's (or every run of one model version's) decisions with
what happened afterwards in the data: the churn outcome within ``recover.horizon_days`` of the scoring date, and
whether ``retention_actions`` records a contact in that window. The comparison is by *assigned* group (intention to
treat): a planned contact that was never made stays in the treatment group, so the figure is what the list saved as
it was carried out, and the contact rate says how much of it was. The churn probability each customer was scored
with is the adjustment's covariate: the model was trained before the scoring date, so it has seen none of these
outcomes. On the holdout, nobody was contacted because of the list: its realised churn is the model's calibration
as it scored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from models import adjustment as adj
from models import value as val
from models.decisions import HOLDOUT, TREATMENT
from models.evaluate import expected_calibration_error
from models.registry import describe_run, use_experiment, version_link
from pipelines.config import ScoreConfig
from pipelines.errors import UserError
from pipelines.io.decisions import read_decisions
from pipelines.io.files import atomic_folder, write_parquet, write_text
from pipelines.reporting.html import recovery_report
from pipelines.stages.recover import METRICS, recover_data, save_value_of, true_saves
from pipelines.stages.snapshot import observation_end

log = logging.getLogger(__name__)
ADJUSTMENT = "scoring-time"  # the covariate: the probability the list was ranked by, from a model trained before


@dataclass(frozen=True)
class LoopResult:
    """A closed-loop recovery: where it wrote, the figures overall and by segment, the holdout's calibration and
    what was carried out."""

    folder: Path
    overall: val.Recovery
    table: pd.DataFrame
    metrics: dict[str, float]
    notes: tuple[str, ...]
    model: tuple[str, str]
    true_saved_customers: float | None


def chosen_decisions(decisions: pd.DataFrame, run_id: str | None, model: str | None, version: str | None):
    """The selected decisions of one scoring run, or of every run of one model version (error: none)."""
    if run_id is not None:
        rows = decisions[decisions["run_id"] == run_id]
        what = f"scoring run {run_id}"
    else:
        rows = decisions[(decisions["model_name"] == model) & (decisions["model_version"] == str(version))]
        what = f"model {model} version {version}"
    if rows.empty:
        known = ", ".join(sorted(decisions["run_id"].unique())[:5])
        raise UserError(f"the decision log has no decisions of {what} (runs logged: {known}...)")
    selected = rows[rows["selected"]]
    if not (selected["assigned_group"] == HOLDOUT).any():
        raise UserError(f"{what} held nobody out (holdout.share 0): there is no control group to measure against")
    return selected.reset_index(drop=True), what


def _closed(selected: pd.DataFrame, horizon_days: int, data_end: pd.Timestamp) -> tuple[pd.DataFrame, str]:
    """The decisions whose outcome window the data holds, and a note of the runs left out (error: none closed)."""
    closes = pd.to_datetime(selected["as_of"]) + pd.Timedelta(days=horizon_days - 1)
    waiting = selected.loc[closes > data_end, "run_id"].unique()
    if len(waiting) == selected["run_id"].nunique():
        raise UserError(
            f"no outcome of these decisions is in yet: their {horizon_days}-day windows close "
            f"{closes.min().date()} at the earliest, the data ends {data_end.date()}"
        )
    if not len(waiting):
        return selected, ""
    note = f"{len(waiting)} scoring run(s) left out: their {horizon_days}-day outcome window is still open"
    return selected[closes <= data_end].reset_index(drop=True), note


def loop_outcomes(selected: pd.DataFrame, tables, horizon_days: int, label: str, data_end: pd.Timestamp):
    """One row per selected decision: group (treatment / control = holdout), churned within the horizon after the
    scoring date, revenue, location, tier, the scored probability (``prognostic``) and whether a contact was
    recorded in the window."""
    actions = pd.DataFrame(
        {
            "customer_id": selected["customer_id"].to_numpy(),
            "action_date": selected["as_of"].to_numpy(dtype="datetime64[us]"),
            "group": np.where(selected["assigned_group"] == TREATMENT, "treatment", "control"),
        }
    )
    out = val.action_outcomes(actions, tables.churn_events, tables.customers, horizon_days, label, tables.interactions)
    out["monthly_revenue"] = selected["monthly_revenue"].to_numpy()  # as scored: the value the list was ranked on
    out["location_id"] = selected["location_id"].to_numpy()
    out["risk_tier"] = selected["risk_tier"].to_numpy()
    out[adj.PROGNOSTIC] = selected["churn_probability"].to_numpy()
    out["predicted_uplift"] = selected["uplift"].to_numpy()
    out["contacted"] = _contacted(out, tables.retention_actions, horizon_days)
    return out


def _past_campaigns(tables, settings, data_end: pd.Timestamp) -> pd.DataFrame:
    """Every recorded campaign contact whose outcome window the data holds, as outcomes: what a save is worth is
    measured on all of them (their follow-up is longer than a single list's)."""
    actions = tables.retention_actions
    observed = actions[actions["action_date"] + pd.Timedelta(days=settings.horizon_days - 1) <= data_end]
    return val.action_outcomes(observed, tables.churn_events, tables.customers, settings.horizon_days, settings.label,
                               tables.interactions)  # fmt: skip


def _contacted(out: pd.DataFrame, actions: pd.DataFrame, horizon_days: int) -> np.ndarray:
    """Whether ``retention_actions`` records a treatment contact of each customer within the window."""
    treated = actions.loc[actions["group"] == "treatment", ["customer_id", "action_date"]].astype({"customer_id": str})
    pairs = (
        out[["customer_id", "action_date"]]
        .astype({"customer_id": str})
        .reset_index()
        .merge(treated.rename(columns={"action_date": "contact"}), on="customer_id")
    )
    within = (pairs["contact"] >= pairs["action_date"]) & (
        pairs["contact"] < pairs["action_date"] + pd.Timedelta(days=horizon_days)
    )
    hit = np.zeros(len(out), dtype=bool)
    hit[pairs.loc[within, "index"].to_numpy()] = True
    return hit


def loop_metrics(outcomes: pd.DataFrame) -> dict[str, float]:
    """The holdout's realised calibration and the list's execution: contact rates by group, realised against
    predicted churn on the holdout (mean, ECE, ROC AUC) and predicted uplift when targeting used one."""
    holdout = outcomes[outcomes["group"] == "control"]
    treated = outcomes[outcomes["group"] == "treatment"]
    y, p = holdout["churned"].to_numpy(int), holdout[adj.PROGNOSTIC].to_numpy(float)
    metrics = {
        "contact_rate_treatment": float(treated["contacted"].mean()) if len(treated) else float("nan"),
        "contact_rate_holdout": float(holdout["contacted"].mean()),
        "holdout_customers": float(len(holdout)),
        "holdout_realised_churn": float(y.mean()),
        "holdout_predicted_churn": float(p.mean()),
        "holdout_ece": expected_calibration_error(y, p),
    }
    if 0 < y.sum() < len(y):
        metrics["holdout_roc_auc"] = float(roc_auc_score(y, p))
    uplift = treated["predicted_uplift"].to_numpy(float)
    if len(uplift) and np.isfinite(uplift).all():
        metrics["predicted_saved_customers"] = float(uplift.sum())
    return metrics


def run_loop_recover(config: ScoreConfig, run_id: str | None = None, model_version: str | None = None) -> LoopResult:
    """Measure one run's or one model version's action lists against their holdout; write and log the result."""
    name = config.model.split("@")[0].split("/")[-1]
    selected, what = chosen_decisions(read_decisions(Path(config.out)), run_id, name, model_version)
    model = (str(selected["model_name"].iloc[0]), str(selected["model_version"].iloc[0]))
    settings = config.recover
    value_notes: list[str] = []
    with recover_data(config) as data:
        end = observation_end(data.result)
        selected, open_note = _closed(selected, settings.horizon_days, end)
        outcomes = loop_outcomes(selected, data.tables, settings.horizon_days, settings.label, end)
        # inactivity churn has no later churn date to follow: save_value_of says so whatever it is given
        past = _past_campaigns(data.tables, settings, end) if settings.label == "events" else outcomes
        worth = save_value_of(past, data.tables, end, config, value_notes)
    boot = settings.bootstrap
    rows = val.recovery_rows(
        outcomes, ("location_id", "risk_tier"), n_boot=boot.resamples, seed=boot.seed, level=boot.confidence,
        min_control=settings.min_control_customers, min_churners=settings.min_control_churners,
        adjustment=ADJUSTMENT, value_months=val.value_months(worth),
    )  # fmt: skip
    table = val.recovery_frame(rows, boot.confidence)
    metrics = loop_metrics(outcomes)
    notes = _notes(metrics, rows[0]) + tuple(value_notes) + ((open_note,) if open_note else ())
    truth = true_saves(config, outcomes)
    folder = Path(settings.out) / (f"loop_run_{run_id}" if run_id else f"loop_{model[0]}_v{model[1]}")
    with atomic_folder(folder, "recovery.parquet") as work:
        write_parquet(table, work / "recovery.parquet")
        write_parquet(outcomes, work / "outcomes.parquet")
        report = recovery_report(
            table, pd.Timestamp(selected["as_of"].min()), pd.Timestamp(selected["as_of"].max()),
            settings.horizon_days, f"{config.data}: the action lists of {what}", list(notes), boot.confidence,
            settings.power, settings.precision,
            "the churn probability each customer was scored with (a model trained before the scoring date)", truth,
            worth, f"Revenue recovered by the action lists of {what}",
            "treatment and holdout as the decision log assigned them (by intention to treat: a planned contact not "
            "made stays in treatment)",
        )  # fmt: skip
        write_text(report, work / "report.html")
    _log(config, what, run_id, model, rows[0], metrics, truth, folder, table)
    return LoopResult(folder, rows[0], table, metrics, notes, model, truth)


def _notes(metrics: dict[str, float], overall: val.Recovery) -> tuple[str, ...]:
    notes = [
        f"{metrics['contact_rate_treatment']:.0%} of the customers assigned to treatment were contacted in the window "
        "(retention_actions); the saving is the list's as carried out (by assigned group)",
        f"holdout: {metrics['holdout_realised_churn']:.1%} churned against {metrics['holdout_predicted_churn']:.1%} "
        f"predicted at scoring (ECE {metrics['holdout_ece']:.3f}"
        + (f", ROC AUC {metrics['holdout_roc_auc']:.3f}" if "holdout_roc_auc" in metrics else "")
        + ")",
    ]
    if metrics["contact_rate_holdout"] > 0:
        notes.append(
            f"{metrics['contact_rate_holdout']:.0%} of the holdout was contacted anyway: the saving is diluted"
        )
    if "predicted_saved_customers" in metrics:
        notes.append(
            f"the uplift model predicted {metrics['predicted_saved_customers']:,.1f} saves among the treatment group; "
            f"measured {overall.saved_customers:,.1f}"
        )
    if overall.warning:
        notes.append(overall.warning)
    return tuple(notes)


def _log(config, what, run_id, model, overall: val.Recovery, metrics, truth, folder: Path, table) -> None:
    """One run in ``recover.experiment`` against the model version: the figures, the holdout's calibration."""
    use_experiment(config.recover.experiment)
    with mlflow.start_run(run_name=f"loop-{run_id or f'v{model[1]}'}"):
        mlflow.log_params(
            {"decisions": what, "scoring_run": run_id or "", "model_version": model[1], "adjustment": ADJUSTMENT}
        )
        mlflow.set_tag("model_version_uri", f"models:/{model[0]}/{model[1]}")
        figures = {k: getattr(overall, k) for k in METRICS}  # the overall figures a period's recovery logs too
        mlflow.log_metrics({k: float(v) for k, v in {**figures, **metrics}.items() if pd.notna(v)})
        if truth is not None:
            mlflow.log_metric("true_saved_customers", truth)
        describe_run(
            f"The action lists of {what} ({version_link(*model)}): {overall.saved_customers:,.1f} saved "
            f"({overall.saved_low:,.1f} to {overall.saved_high:,.1f}) against their random holdout."
        )
        mlflow.log_artifact(str(folder / "report.html"))
        mlflow.log_dict(config.recover_dict(), "config/resolved_config.json")
