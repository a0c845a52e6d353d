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
    if isinstance(values.dtype, pd.CategoricalDtype):  # look up each category once, then take by code
        return _by_category(values, positions(pd.Series(values.cat.categories, dtype="str"), universe))
    arr = pa.array(values.astype("str"), from_pandas=True)
    value_set = pa.array(pd.Series(universe, dtype="str"), from_pandas=True).cast(arr.type)
    found = pc.index_in(arr, value_set=value_set)
    return pc.fill_null(found, -1).to_numpy().astype(np.int64)


class KeyLookup:
    """Positions of keys in one fixed universe, for many batches of values: the universe is hashed once.

    Each batch is first reduced to its distinct values in Arrow; only those are
    looked up in the universe's (cached) hash table. :func:`positions` hashes
    the universe on every call, which dominates when a large event table comes
    in hundreds of batches.
    """

    def __init__(self, universe) -> None:
        self._index = pd.Index(pd.Series(universe, dtype="str").to_numpy(dtype=object))
        self._universe = None if self._index.is_unique else universe  # the first match wins, as in positions()

    def __call__(self, values: pd.Series) -> np.ndarray:
        if self._universe is not None or len(values) == 0:
            return positions(values, self._index if self._universe is None else self._universe)
        if isinstance(values.dtype, pd.CategoricalDtype):
            return _by_category(
                values, self._index.get_indexer(values.cat.categories.astype("str").to_numpy(dtype=object))
            )
        encoded = pc.dictionary_encode(pa.array(values.astype("str"), from_pandas=True))
        found = self._index.get_indexer(encoded.dictionary.to_numpy(zero_copy_only=False))
        codes = pc.fill_null(encoded.indices, -1).to_numpy()
        return np.where(codes >= 0, found[codes], -1).astype(np.int64)


def _by_category(values: pd.Series, found: np.ndarray) -> np.ndarray:
    """Positions of categorical ``values`` from the positions ``found`` of their categories (-1 for missing)."""
    codes = values.cat.codes.to_numpy()
    return np.where(codes >= 0, np.asarray(found, dtype=np.int64)[np.maximum(codes, 0)], -1).astype(np.int64)
