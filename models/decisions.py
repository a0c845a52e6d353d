"""The closed loop's decisions: a random holdout reserved from every action list, and the decision log's schema.

A scoring run's action list is what the plan selects. Before anyone is contacted, a random ``share`` of it is held
out (not contacted), stratified by location and risk tier so that both groups look alike where it matters; later,
``churn recover --run`` compares the two groups' churn as a randomised experiment on the pipeline's own decisions.

Within each stratum of n selected customers, ``floor(share x n + U)`` are held out (U uniform for the stratum), the
customers with the lowest draws: each customer's probability of being held out is exactly ``share``, whatever the
stratum's size (a plain ``round`` would never hold anyone out of a stratum of four). The draws are hashes of the
customer id (or stratum), the as-of date and a seed, so a rerun assigns the same groups whatever the row order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

TREATMENT, HOLDOUT, NOT_SELECTED = "treatment", "holdout", ""
STRATA = ("location_id", "risk_tier")


class Decisions(pa.DataFrameModel):
    """One scoring run's decisions, one row per scored customer: the decision log's rows (append-only)."""

    run_id: Series[str] = pa.Field(nullable=False)
    model_name: Series[str]
    model_version: Series[str]
    customer_id: Series[str] = pa.Field(nullable=False)
    as_of: Series[pd.Timestamp] = pa.Field(nullable=False)
    churn_probability: Series[float] = pa.Field(ge=0, le=1)
    uplift: Series[float] = pa.Field(nullable=True, ge=-1, le=1)  # NaN: targeting did not use an uplift model
    priority_rank: Series[int] = pa.Field(ge=1)
    selected: Series[bool]
    assigned_group: Series[str] = pa.Field(isin=[TREATMENT, HOLDOUT, NOT_SELECTED])
    assignment_probability: Series[float] = pa.Field(nullable=True, ge=0, le=1)  # of being held out; NaN: not selected
    location_id: Series[str] = pa.Field(nullable=True)
    risk_tier: Series[str] = pa.Field(isin=["high", "medium", "low"])
    monthly_revenue: Series[float] = pa.Field(ge=0)

    class Config:
        strict = True
        unique = ["run_id", "customer_id"]

    @pa.dataframe_check
    def groups_follow_selection(cls, frame: pd.DataFrame) -> pd.Series:
        """Selected customers are assigned a group with its probability; the others neither."""
        selected = frame["selected"]
        return (selected == (frame["assigned_group"] != NOT_SELECTED)) & (
            selected == frame["assignment_probability"].notna()
        )


def hashed_uniform(keys: pd.Series, as_of: pd.Timestamp, seed: int) -> np.ndarray:
    """A number in [0, 1) per key (a customer id, a stratum), fixed by the key, the date and the seed (SipHash of the
    key): the same whatever the engine, the partitioning or the row order. Training's negative sampling, recovery's
    row cap and the holdout draw from it."""
    key = f"{seed % 10**8:08d}{pd.Timestamp(as_of):%Y%m%d}"  # SipHash takes a 16-character key
    hashed = pd.util.hash_array(keys.astype(str).to_numpy(dtype=object), hash_key=key, categorize=False)
    return (hashed >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def assign_holdout(
    scores: pd.DataFrame, selected: np.ndarray, share: float, as_of: pd.Timestamp, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``assigned_group`` (treatment, holdout, or "" when not selected) and ``assignment_probability``
    (``share`` for the selected, NaN for the others), holding out within strata of location and risk tier."""
    selected = np.asarray(selected, dtype=bool)
    group = np.full(len(scores), NOT_SELECTED, dtype=object)
    probability = np.where(selected, float(share), np.nan)
    group[selected] = TREATMENT
    if share <= 0 or not selected.any():
        return group, probability
    picked = scores.loc[selected, [c for c in STRATA if c in scores]].astype(object).fillna("__none__").astype(str)
    stratum = picked.apply("|".join, axis=1) if len(picked.columns) else pd.Series("all", index=picked.index)
    frame = pd.DataFrame(
        {
            "row": np.flatnonzero(selected),
            "stratum": stratum.to_numpy(),
            "draw": hashed_uniform(scores.loc[selected, "customer_id"], as_of, seed),
        }
    ).sort_values(["stratum", "draw", "row"], kind="stable")
    sizes = frame.groupby("stratum", sort=False)["row"].transform("size").to_numpy()
    offsets = hashed_uniform(frame["stratum"], as_of, seed + 1)
    held = frame.groupby("stratum", sort=False).cumcount().to_numpy() < np.floor(share * sizes + offsets)
    group[frame["row"].to_numpy()[held]] = HOLDOUT
    return group, probability
