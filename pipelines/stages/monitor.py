"""The ``monitor`` stage: how each scoring run's model actually did, once the run's label window has closed.

For every ``OUT/as_of=DATE/scores.parquet`` under the scoring config's ``out`` folder: the model's horizon and label
come from its training run; when ``DATE + horizon`` is observed in the data (``end_date``), each scored customer's
outcome is labelled as training labels it, customers whom a retention contact treated in the window are set aside
(a contact changes the outcome the score predicted; control and uncontacted customers stay), and the realised ROC
AUC, PR AUC, log loss, calibration (ECE, reliability by decile), lift and the realised against the expected churn
rate are logged: one ``churn-monitoring`` run per scoring date (params: the model version and the scoring run), the
same ``realised_*`` figures on the scoring run itself. Runs still waiting for outcomes are listed as pending. The
report shows realised against expected (the model's test figures) over time, per model version, beside the
registry's promotion history. Runs in memory: the outcome tables are small, and the scores are one file per date.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from models import evaluate as ev
from models import value as val
from models.registry import tracking_uri, use_experiment
from pipelines.config import MonitorConfig, ScoreConfig, end_timestamp
from pipelines.errors import UserError
from pipelines.io.files import load_validated, tables_from, write_text
from pipelines.reporting.html import monitoring_report
from pipelines.stages.snapshot import observation_end

log = logging.getLogger(__name__)

FOLDER = re.compile(r"^as_of=(\d{4}-\d{2}-\d{2})$")
REALISED = ("roc_auc", "pr_auc", "log_loss", "ece", "lift_at_10", "prevalence")  # compared with the test's
SCORE_COLUMNS = ["customer_id", "churn_probability", "model_name", "model_version", "model_run_id"]


@dataclass(frozen=True)
class RunPerformance:
    """One scoring run: its realised figures once its window has closed, or why not yet."""

    as_of: pd.Timestamp
    model: str  # NAME vVERSION
    status: str  # closed | pending
    reason: str
    customers: int  # scored
    evaluated: int  # untreated customers whose outcome is known
    realised: dict[str, float]  # realised_* (empty while pending)
    expected: dict[str, float]  # the model's test figures, expected_*
    reliability: pd.DataFrame | None
    scoring_run_id: str | None
    monitoring_run_id: str | None


@dataclass(frozen=True)
class MonitorResult:
    runs: list[RunPerformance]
    report: Path
    breaches: list[str]  # floors the latest closed run falls below, in words
    tracking_uri: str


def run_monitor(config: ScoreConfig) -> MonitorResult:
    """Measure every scoring run under ``config.out`` whose label window has closed; log, report, check the floors."""
    folders = scoring_folders(Path(config.out))
    if not folders:
        raise UserError(f"no scoring runs under {config.out} (folders as_of=YYYY-MM-DD with scores.parquet)")
    result = load_validated(Path(config.data), end_timestamp(config.end_date), None, config.input.encoding,
                            config.input.timezone)  # fmt: skip
    tables, observed_to = tables_from(result), observation_end(result)
    runs = [_measure(config, as_of, folder, tables, observed_to) for as_of, folder in folders]
    closed = [r for r in runs if r.status == "closed"]
    breaches = floor_breaches(config.monitor, closed[-1]) if closed else []
    report = Path(config.monitor.out) / "report.html"
    write_text(monitoring_report(runs, _promotion_history(runs), observed_to, config.monitor, breaches), report)
    return MonitorResult(runs, report, breaches, tracking_uri())


def scoring_folders(out: Path) -> list[tuple[pd.Timestamp, Path]]:
    """The scoring runs' folders under ``out``, oldest first."""
    if not out.is_dir():
        return []
    found = []
    for path in out.iterdir():
        match = FOLDER.match(path.name)
        if not match or not (path / "scores.parquet").exists():
            continue
        try:
            found.append((pd.Timestamp(match.group(1)), path))
        except ValueError:
            log.warning("%s is not a scoring run's folder (%s is not a date): left out", path, match.group(1))
    return sorted(found)


def _measure(config: ScoreConfig, as_of: pd.Timestamp, folder: Path, tables, observed_to) -> RunPerformance:
    scores = pd.read_parquet(folder / "scores.parquet", columns=SCORE_COLUMNS)
    if scores.empty:
        return _waiting(as_of, "", 0, {}, None, f"{folder / 'scores.parquet'} has no rows")
    name, version, model_run = (str(scores[c].iloc[0]) for c in ("model_name", "model_version", "model_run_id"))
    model, scoring_run = f"{name} v{version}", _scoring_run(config.experiment, as_of, model_run, folder.parent)
    trained = _training_run(model_run)
    if trained is None:  # its horizon and label are unknown: measuring with a guess could label every outcome wrong
        reason = f"the training run {model_run} is not in {tracking_uri()}: its horizon and label are unknown"
        return _waiting(as_of, model, len(scores), {}, scoring_run, reason)
    horizon, label = int(trained.data.params["horizon_days"]), trained.data.params["label"]
    expected = {f"expected_{k}": trained.data.metrics[f"test_{k}"] for k in REALISED
                if f"test_{k}" in trained.data.metrics}  # fmt: skip
    closes = as_of + pd.Timedelta(days=horizon - 1)
    if closes > observed_to:
        reason = f"{horizon}-day window closes {closes.date()}, outcomes observed to {observed_to.date()}"
        return _waiting(as_of, model, len(scores), expected, scoring_run, reason)
    y, p, treated = _outcomes(scores, tables, as_of, horizon, label)
    keep = ~treated
    if len(np.unique(y[keep])) < 2:
        reason = f"{int(keep.sum())} untreated customers with a single outcome: nothing to rank"
        return _waiting(as_of, model, len(scores), expected, scoring_run, reason)
    realised = {
        **{f"realised_{k}": v for k, v in ev.classification_metrics(y[keep], p[keep], "").items() if k in REALISED},
        "realised_mean_probability": float(p[keep].mean()),
        "evaluated_customers": float(keep.sum()),
        "treated_set_aside": float(treated.sum()),
    }
    reliability = ev.reliability(y[keep], p[keep])
    params = {"as_of": str(as_of.date()), "model_name": name, "model_version": version, "model_run_id": model_run,
              "scoring_run_id": scoring_run or "", "horizon_days": horizon, "label": label,
              "observed_to": str(observed_to.date())}  # fmt: skip
    run_id = _measured_before(config.monitor.experiment, params)
    if run_id is None:  # measured once per run, date and extract: a rerun reports, it does not log again
        run_id = _log(config, params, {**realised, **expected}, reliability)
        if scoring_run:  # the scoring run carries its own realised figures too
            MlflowClient().log_batch(scoring_run, metrics=[Metric(k, v, int(time.time() * 1000), 0)
                                                           for k, v in realised.items()])  # fmt: skip
    reason = f"{int(treated.sum())} treated customers set aside; {int(keep.sum())} evaluated"
    return RunPerformance(as_of, model, "closed", reason, len(scores), int(keep.sum()), realised, expected,
                          reliability, scoring_run, run_id)  # fmt: skip


def _waiting(as_of, model: str, customers: int, expected: dict, scoring_run: str | None, reason: str):
    """A scoring run not measured (yet), and why."""
    return RunPerformance(as_of, model, "pending", reason, customers, 0, {}, expected, None, scoring_run, None)


def _outcomes(scores: pd.DataFrame, tables, as_of: pd.Timestamp, horizon: int, label: str):
    """Churned within the horizon (as training labels it), the score, and whether a contact treated the customer in
    the window."""
    keys = scores[["customer_id"]].assign(action_date=as_of, group="scored")
    outcome = val.action_outcomes(keys, tables.churn_events, tables.customers, horizon, label, tables.interactions)
    actions = tables.retention_actions
    window = (
        (actions["group"] == "treatment")
        & (actions["action_date"] >= as_of)
        & (actions["action_date"] < as_of + pd.Timedelta(days=horizon))
    )
    treated = scores["customer_id"].isin(actions.loc[window, "customer_id"]).to_numpy()
    return outcome["churned"].to_numpy(dtype=int), scores["churn_probability"].to_numpy(dtype=float), treated


def floor_breaches(monitor: MonitorConfig, latest: RunPerformance) -> list[str]:
    """The configured floors the latest closed run falls below, in words."""
    out, r = [], latest.realised
    if monitor.min_roc_auc is not None and r["realised_roc_auc"] < monitor.min_roc_auc:
        out.append(f"realised ROC AUC {r['realised_roc_auc']:.3f} on {latest.as_of.date()} < {monitor.min_roc_auc}")
    if monitor.max_ece is not None and r["realised_ece"] > monitor.max_ece:
        out.append(f"realised ECE {r['realised_ece']:.4f} on {latest.as_of.date()} > {monitor.max_ece}")
    return out


def _training_run(run_id: str):
    try:
        return MlflowClient().get_run(run_id)
    except MlflowException:
        log.warning("the training run %s is not in %s: its scoring runs are not measured", run_id, tracking_uri())
        return None


def _scoring_run(experiment: str, as_of: pd.Timestamp, model_run: str, out: Path) -> str | None:
    """The latest scoring run of this date, model and output folder, if the store has one."""
    here = str(out.resolve())
    runs = _runs_with(experiment, {"as_of": str(as_of.date()), "model_run_id": model_run})
    mine = [r for r in runs if r.data.params.get("out", here) == here]  # runs before `out` was logged: by date
    return mine[0].info.run_id if mine else None


def _measured_before(experiment: str, params: dict) -> str | None:
    """The monitoring run that already measured this scoring run on this extract, if any."""
    runs = _runs_with(experiment, {k: params[k] for k in ("as_of", "model_run_id", "observed_to")})
    same = [r for r in runs if r.data.params.get("scoring_run_id", "") == params["scoring_run_id"]]
    return same[0].info.run_id if same else None


def _runs_with(experiment: str, params: dict[str, str]) -> list:
    """The runs of ``experiment`` with these parameter values, newest first (none when it does not exist yet)."""
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    query = " and ".join(f"params.{k} = '{v}'" for k, v in params.items())
    return client.search_runs([found.experiment_id], query, order_by=["attributes.start_time DESC"])


def _log(config: ScoreConfig, params: dict, metrics: dict[str, float], reliability: pd.DataFrame) -> str:
    use_experiment(config.monitor.experiment)
    with mlflow.start_run(run_name=f"monitor-{params['as_of']}") as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        mlflow.set_tags({"model_version": f"{params['model_name']} v{params['model_version']}"})
        mlflow.log_table(reliability, "realised/reliability.json")
    return run.info.run_id


def _promotion_history(runs: list[RunPerformance]) -> pd.DataFrame:
    """Every version of the monitored models: when it was registered, the decision and why."""
    rows = []
    client = MlflowClient()
    for name in sorted({r.model.rsplit(" v", 1)[0] for r in runs}):
        try:
            versions = client.search_model_versions(f"name='{name}'")
        except MlflowException:
            continue
        for v in sorted(versions, key=lambda v: int(v.version)):
            rows.append({
                "model": f"{name} v{v.version}",
                "registered": pd.Timestamp(v.creation_timestamp, unit="ms").strftime("%Y-%m-%d %H:%M"),
                "decision": v.tags.get("promotion_decision", ""),
                "reason": v.tags.get("promotion_reason", ""),
            })  # fmt: skip
    return pd.DataFrame(rows, columns=["model", "registered", "decision", "reason"])
