"""Population stability index (PSI) of features and scores against the training reference."""

from __future__ import annotations

import numpy as np
import pandas as pd

EPS = 1e-4
MISSING = "__missing__"


def numeric_reference(values: pd.Series, bins: int = 10) -> dict:
    """Decile edges of the training values and the share of rows in each bin (missing values get their own bin)."""
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    finite = v[~np.isnan(v)]
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])) if finite.size else np.array([])
    return {"kind": "numeric", "edges": edges.tolist(), "expected": _numeric_shares(v, edges).tolist()}


def _numeric_shares(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    nan = np.isnan(v)
    idx = np.searchsorted(edges, v[~nan], side="right")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(float)
    counts = np.append(counts, nan.sum())
    return counts / max(len(v), 1)


def categorical_reference(values: pd.Series, top: int = 50) -> dict:
    shares = values.astype(object).where(values.notna(), MISSING).astype(str).value_counts(normalize=True)
    kept = shares.head(top)
    return {
        "kind": "categorical",
        "categories": kept.index.tolist(),
        "expected": kept.tolist() + [max(0.0, 1 - kept.sum())],
    }


def shares(reference: dict, values: pd.Series) -> np.ndarray:
    """Shares of ``values`` in the reference's bins."""
    if reference["kind"] == "numeric":
        return _numeric_shares(
            pd.to_numeric(values, errors="coerce").to_numpy(dtype=float), np.asarray(reference["edges"])
        )
    v = values.astype(object).where(values.notna(), MISSING).astype(str)
    cats = reference["categories"]
    counts = v.value_counts()
    known = np.array([counts.get(c, 0) for c in cats], dtype=float)
    other = len(v) - known.sum()
    return np.append(known, other) / max(len(v), 1)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.clip(np.asarray(expected, dtype=float), EPS, None)
    a = np.clip(np.asarray(actual, dtype=float), EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def build_reference(X: pd.DataFrame, scores: np.ndarray, categorical: tuple[str, ...]) -> dict:
    features = {c: (categorical_reference(X[c]) if c in categorical else numeric_reference(X[c])) for c in X.columns}
    return {"features": features, "score": numeric_reference(pd.Series(scores))}


def drift_table(reference: dict, X: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    """PSI of every feature and of the score; sorted with the largest drift first."""
    rows = [
        {"name": c, "psi": psi(ref["expected"], shares(ref, X[c]))}
        for c, ref in reference["features"].items()
        if c in X
    ]
    rows.append(
        {
            "name": "churn_probability",
            "psi": psi(reference["score"]["expected"], shares(reference["score"], pd.Series(scores))),
        }
    )
    return pd.DataFrame(rows).sort_values("psi", ascending=False, ignore_index=True)
