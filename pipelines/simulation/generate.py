"""The ``generate`` stage's edge: run the simulation chunk by chunk and write dataset and truth."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from pipelines.io.files import ParquetAppender
from pipelines.simulation.synthetic import CHUNK_CUSTOMERS, SyntheticConfig, calendar, generate
from pipelines.simulation.truth import default_oracle_as_of, load_truth

log = logging.getLogger(__name__)

TARGETING_SHARE = 0.3  # the share of each campaign's customers the targeting comparison contacts


def write_synthetic(
    config: SyntheticConfig, out: Path, truth_out: Path, oracle_as_of: pd.Timestamp | None, horizon_days: int
) -> dict:
    """Write the dataset to ``out`` and its ground truth to ``truth_out``; return the summary."""
    out, truth_out = Path(out), Path(truth_out)
    out.mkdir(parents=True, exist_ok=True)
    truth_out.mkdir(parents=True, exist_ok=True)
    cal = calendar(config)
    writers = {
        name: ParquetAppender(out / f"{name}.parquet")
        for name in ("customers", "interactions", "feedback", "churn_events", "retention_actions")
    }
    truth_customers = ParquetAppender(truth_out / "customers.parquet")
    truth_actions = ParquetAppender(truth_out / "treatment_effects.parquet")
    cum = np.lib.format.open_memmap(
        truth_out / "cum_hazard.npy", mode="w+", dtype=np.float32, shape=(config.customers, cal.days + 1)
    )
    n_chunks = -(-config.customers // CHUNK_CUSTOMERS)
    try:
        for chunk in tqdm(generate(config), total=n_chunks, desc="generate", unit="chunk", disable=n_chunks < 2):
            for name, frame in chunk.tables.items():
                writers[name].append(frame)
            truth_customers.append(chunk.truth_customers)
            truth_actions.append(chunk.truth_actions)
            rows = chunk.truth_customers["truth_row"].to_numpy()
            cum[rows[0] : rows[-1] + 1] = chunk.cum_hazard
    finally:
        for w in (*writers.values(), truth_customers, truth_actions):
            w.close()
        cum.flush()
        del cum

    settings = asdict(config)
    plan = settings.pop("campaign_plan")  # a table: summarised, not written whole
    if plan is not None:
        settings["campaign_plan"] = {
            "dates": sorted(str(pd.Timestamp(d).date()) for d in plan["as_of"].unique()),
            "selected": int(plan["assigned_group"].isin(["treatment", "holdout"]).sum()),
        }
    summary = {
        "config": settings,
        "start_date": cal.start.date().isoformat(),
        "end_date": cal.end.date().isoformat(),
    }
    (truth_out / "summary.json").write_text(json.dumps(summary, indent=2))
    summary.update(describe(out, truth_out, oracle_as_of or default_oracle_as_of(cal.end, horizon_days), horizon_days))
    (truth_out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def describe(data: Path, truth_dir: Path, as_of: pd.Timestamp, horizon_days: int) -> dict:
    """Realism figures of a generated dataset, including the oracle ROC AUC."""
    truth = load_truth(truth_dir)
    customers = pd.read_parquet(data / "customers.parquet", columns=["customer_id", "signup_date"])
    churn = pd.read_parquet(data / "churn_events.parquet")
    feedback = pd.read_parquet(data / "feedback.parquet", columns=["customer_id"])
    churn_date = customers["customer_id"].map(churn.set_index("customer_id")["churn_date"])
    active = (customers["signup_date"] < as_of) & ~(churn_date < as_of)
    in_window = (churn_date >= as_of) & (churn_date < as_of + pd.Timedelta(days=horizon_days))
    month = (churn_date >= as_of) & (churn_date < as_of + pd.Timedelta(days=30))
    p = truth.churn_probability(customers.loc[active, "customer_id"], as_of, horizon_days)
    labels = in_window[active].to_numpy()
    treated = truth.actions[truth.actions["group"] == "treatment"]
    would_churn = treated["churned_within_90d_if_not_contacted"]
    return {
        "oracle_as_of": as_of.date().isoformat(),
        "oracle_horizon_days": horizon_days,
        "oracle_roc_auc": float(roc_auc_score(labels, p)),
        "active_customers": int(active.sum()),
        "label_prevalence": float(labels.mean()),
        "monthly_churn_rate": float(month[active].mean()),
        "share_never_answered_a_survey": float(1 - feedback["customer_id"].nunique() / len(customers)),
        "treated_customers": int(len(treated)),
        "save_rate_among_treated_who_would_churn": float(treated["saved"].sum() / max(int(would_churn.sum()), 1)),
        "harmed_treated": int(treated["harmed"].sum()),
        "mean_true_uplift_treated": float(treated["true_uplift"].mean()) if len(treated) else 0.0,
        "sleeping_dog_share_of_contacts": float(truth.actions["sleeping_dog"].mean()) if len(truth.actions) else 0.0,
        **_targeting(truth.actions, truth.start + pd.Timedelta(days=truth.cum_hazard.shape[1] - 1)),
    }


def _targeting(actions: pd.DataFrame, data_end: pd.Timestamp) -> dict:
    """What targeting each campaign by true effect, rather than by true risk, would save.

    Over the campaigns whose 90-day window lies inside the data (``data_end``:
    the day after the last one): the top ``TARGETING_SHARE`` of each campaign's
    customers (treatment and control alike) by ``true_uplift`` and by
    ``p_churn_if_not_contacted``, counted as expected net saves (the sum of the
    true uplift) and as realised ones (would have churned without the contact,
    minus would have churned with it); and the campaigns' mean group sizes.
    """
    if actions.empty:
        actions = actions.astype({"action_date": "datetime64[us]"})
    full = actions[actions["action_date"] + pd.Timedelta(days=90) <= data_end]
    net = full["churned_within_90d_if_not_contacted"].astype(int) - full["churned_within_90d_if_contacted"].astype(int)
    full = full.assign(net_save=net)
    saves = {"uplift": [0.0, 0], "risk": [0.0, 0]}
    for _, campaign in full.groupby("action_date"):
        k = int(round(TARGETING_SHARE * len(campaign)))
        for name, column in (("uplift", "true_uplift"), ("risk", "p_churn_if_not_contacted")):
            top = campaign.sort_values(column, ascending=False, kind="stable").head(k)
            saves[name][0] += float(top["true_uplift"].sum())
            saves[name][1] += int(top["net_save"].sum())
    control = full["group"] == "control"
    months = max(full["action_date"].nunique(), 1)
    return {
        "targeting_campaigns": int(full["action_date"].nunique()),
        "true_saves_top30_by_uplift": saves["uplift"][0],
        "true_saves_top30_by_risk": saves["risk"][0],
        "uplift_vs_risk_targeting_ratio": _ratio(saves["uplift"][0], saves["risk"][0]),
        "realised_saves_top30_by_uplift": saves["uplift"][1],
        "realised_saves_top30_by_risk": saves["risk"][1],
        "uplift_vs_risk_targeting_ratio_realised": _ratio(saves["uplift"][1], saves["risk"][1]),
        "treated_contacts_per_campaign": float((~control).sum() / months),
        "control_contacts_per_campaign": float(control.sum() / months),
        "control_churners_per_campaign": float(full.loc[control, "churned_within_90d"].sum() / months),
    }


def _ratio(a: float, b: float) -> float | None:
    """``a / b``, or None (null in the summary) where ``b`` is not positive."""
    return float(a / b) if b > 0 else None
