"""The decision log on disk: one parquet file per scoring run under ``SCORES/decisions/``, written once, never
replaced (append-only), read back as one table checked against :class:`models.decisions.Decisions`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from models.decisions import Decisions
from pipelines.errors import UserError
from pipelines.io.files import write_parquet

FOLDER = "decisions"


def decision_rows(scores: pd.DataFrame, run_id: str) -> pd.DataFrame:
    """A scoring run's scores as decision-log rows (:class:`Decisions`)."""
    uplift = scores["uplift"] if "uplift" in scores else pd.Series(np.nan, index=scores.index)
    location = scores["location_id"] if "location_id" in scores else pd.Series(None, index=scores.index, dtype=object)
    frame = pd.DataFrame(
        {
            "run_id": run_id,
            "model_name": scores["model_name"].astype(str),
            "model_version": scores["model_version"].astype(str),
            "customer_id": scores["customer_id"].astype(str),
            "as_of": scores["as_of"],
            "churn_probability": scores["churn_probability"].astype(float),
            "uplift": uplift.astype(float),
            "priority_rank": scores["priority_rank"].astype("int64"),
            "selected": scores["in_action_list"].astype(bool),
            "assigned_group": scores["assigned_group"].astype(str),
            "assignment_probability": scores["assignment_probability"].astype(float),
            "location_id": location.astype(object).astype("str"),  # missing stays missing
            "risk_tier": scores["risk_tier"].astype(str),
            "monthly_revenue": scores["monthly_revenue"].astype(float),
        }
    )
    return Decisions.validate(frame)


def append_decisions(scores_folder: Path, scores: pd.DataFrame, run_id: str) -> Path:
    """Write one run's decisions as ``decisions/run_id=RUN.parquet`` (atomically); a run's file is never replaced."""
    path = Path(scores_folder) / FOLDER / f"run_id={run_id}.parquet"
    if path.exists():
        raise UserError(f"the decision log already holds run {run_id} ({path}); decisions are never rewritten")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_parquet(decision_rows(scores, run_id), path)
    return path


def read_decisions(scores_folder: Path) -> pd.DataFrame:
    """Every run's decisions in the log, checked against :class:`Decisions` (error: none logged yet)."""
    folder = Path(scores_folder) / FOLDER
    files = sorted(folder.glob("run_id=*.parquet")) if folder.is_dir() else []
    if not files:
        raise UserError(f"no decision log under {folder}: run churn score first (each run appends its decisions)")
    frames = []
    for file in files:
        try:
            frames.append(Decisions.validate(pd.read_parquet(file)))
        except Exception as err:  # a damaged or foreign file: name it, do not guess
            raise UserError(f"{file} is not a decision-log file: {err}") from err
    return pd.concat(frames, ignore_index=True)
