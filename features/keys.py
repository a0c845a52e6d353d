"""Key lookups shared by validation and features, hashed in Arrow rather than in Python objects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def positions(values: pd.Series, universe) -> np.ndarray:
    """Position of each value in ``universe`` (-1 when absent or missing)."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    arr = pa.array(values.astype("str"), from_pandas=True)
    value_set = pa.array(pd.Series(universe, dtype="str"), from_pandas=True).cast(arr.type)
    found = pc.index_in(arr, value_set=value_set)
    return pc.fill_null(found, -1).to_numpy().astype(np.int64)
