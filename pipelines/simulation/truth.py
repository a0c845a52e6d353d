"""The synthetic data's ground truth as written beside it, read without importing the simulator.

Training reads it for the oracle ROC AUC (the true probabilities' ranking on the test date) when a truth folder
is given; the generator writes it (:mod:`pipelines.simulation.generate`). Only numpy, pandas and the files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.errors import UserError

TRUTH_HORIZON_DAYS = 90  # the generator's potential outcomes of each contact are over this many days


def true_churn_probability(cum_hazard: np.ndarray, rows: np.ndarray, start_day: int, horizon_days: int) -> np.ndarray:
    """True probability of churning in ``[start, start + horizon)`` given alive at start."""
    end_day = min(start_day + horizon_days, cum_hazard.shape[1] - 1)
    delta = cum_hazard[rows, end_day].astype(np.float64) - cum_hazard[rows, start_day].astype(np.float64)
    return 1.0 - np.exp(-delta)


@dataclass(frozen=True)
class GroundTruth:
    """What the generator knows and the pipeline never reads."""

    start: pd.Timestamp
    customers: pd.DataFrame  # customer_id, truth_row, latent values, churn days
    cum_hazard: np.ndarray  # memory-mapped (customers, days + 1)
    actions: pd.DataFrame

    def churn_probability(self, customer_id: pd.Series, as_of: pd.Timestamp, horizon_days: int) -> np.ndarray:
        """True probability that each customer churns in ``[as_of, as_of + horizon)``."""
        rows = self.customers.set_index("customer_id").loc[customer_id.to_numpy(), "truth_row"].to_numpy()
        day = int((pd.Timestamp(as_of) - self.start).days)
        if day < 0 or day >= self.cum_hazard.shape[1]:
            raise UserError(f"as-of {as_of} is outside the simulated window starting {self.start.date()}")
        return true_churn_probability(self.cum_hazard, rows, day, horizon_days)


def truth_folder(truth: str | None, data: str | Path) -> Path | None:
    """The ground truth of synthetic data: ``truth``, or with ``auto`` DATA_truth beside ``data`` if there is one;
    None for real data (``truth`` None, empty or ``none``, or no such folder)."""
    if truth in (None, "", "none"):
        return None
    if truth == "auto":
        candidate = Path(data).with_name(Path(data).name + "_truth")
        return candidate if (candidate / "summary.json").exists() else None
    return Path(truth)


def load_truth(folder: str | Path) -> GroundTruth:
    """The ground truth a generator run wrote beside its dataset (``DATA_truth``): for the oracle AUC and the tests."""
    folder = Path(folder)
    meta = json.loads((folder / "summary.json").read_text())
    return GroundTruth(
        start=pd.Timestamp(meta["start_date"]),
        customers=pd.read_parquet(folder / "customers.parquet"),
        cum_hazard=np.load(folder / "cum_hazard.npy", mmap_mode="r"),
        actions=pd.read_parquet(folder / "treatment_effects.parquet"),
    )


def default_oracle_as_of(end: pd.Timestamp, horizon_days: int) -> pd.Timestamp:
    """Latest first-of-month whose label window is fully inside the data."""
    last_start = end - pd.Timedelta(days=horizon_days - 1)
    return pd.Timestamp(year=last_start.year, month=last_start.month, day=1)
