"""The feature table's contract: the type at the boundary between features and models."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series


class Snapshot(pa.DataFrameModel):
    """One row per customer and as-of date; features are the other columns."""

    customer_id: Series[str] = pa.Field(nullable=False)
    as_of: Series[pd.Timestamp] = pa.Field(nullable=False)
    tenure_days: Series[float] = pa.Field(ge=0)
    monthly_revenue: Series[float] = pa.Field(ge=0)
    churned: Series[pd.Int8Dtype] = pa.Field(nullable=True, isin=[0, 1])

    class Config:
        strict = False

    @pa.dataframe_check(name="one_row_per_customer_and_as_of")
    def _unique_key(cls, df: pd.DataFrame) -> Series[bool]:
        return ~df.duplicated(subset=["customer_id", "as_of"], keep=False)


class Features(Snapshot):
    """The same table before labels are attached (scoring input)."""

    churned: Series[pd.Int8Dtype] | None = pa.Field(nullable=True, isin=[0, 1])  # type: ignore[assignment]
