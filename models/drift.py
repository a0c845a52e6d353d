"""Population stability index (PSI) of features and scores against the training reference, flagged only when it
is beyond chance for the sample sizes and the feature matters to the score.

The reference is one as-of date (the shape of a scoring date: "days since" and tenure features of a stack of dates
differ from any single date by construction). Under no drift, PSI times ``1 / (1/n + 1/m)`` is approximately
chi-squared with ``bins - 1`` degrees of freedom (Yurdakul and Naranjo, "Statistical properties of the population
stability index", Journal of Risk Model Validation 2020), so a check is flagged only when its PSI passes both the
practical threshold and that distribution's ``1 - significance`` quantile: on small samples chance alone makes
large PSIs. A feature's share of the model's mean absolute contribution (SHAP for LightGBM, coefficient x value for
the linear model) on the reference rows says whether its drift can move the score; below ``min_importance`` it is
reported, not flagged. The score's own distribution is always a check, and so is its mean (the expected churn
rate), whose move matters to a business long before its distribution's PSI reaches a feature's threshold.

Data completeness is a check of its own: each data feed's rows per customer in the days before the date
(:func:`features.feeds.feed_counts`) against the reference date's. A feed that falls by more than ``feed_drop`` of
its rate, beyond Poisson chance (an exact conditional binomial test), is flagged whatever the model makes of it: a
stopped feed is a broken pipeline upstream, and the next model trained on it would learn the outage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binomtest, chi2, norm

from features.feeds import FEED_DAYS

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


SCORE = "churn_probability"  # the score's distribution check in the drift table
MEAN = "mean_churn_probability"  # the expected churn rate's check: what a business reads off the score
FEED = "feed "  # the name prefix of a data feed's completeness check: ``feed feedback:NPS``
MIN_FEED_ROWS = 30  # a feed with fewer rows at the reference is too thin to judge


@dataclass(frozen=True)
class DriftRule:
    """When a check is flagged: PSI above ``psi_warning`` and beyond chance at ``significance`` for the two sample
    sizes, and (features) at least ``min_importance`` of the model's attention."""

    psi_warning: float = 0.2
    significance: float = 0.001
    min_importance: float = 0.01
    mean_change: float = 0.2  # relative change of the mean churn probability that is flagged (beyond chance too)
    feed_drop: float = 0.5  # relative fall of a data feed's rows per customer that is flagged (beyond chance too)


def build_reference(
    X: pd.DataFrame,
    scores: np.ndarray,
    categorical: tuple[str, ...],
    importance: pd.Series | None = None,
    as_of: pd.Timestamp | None = None,
    feeds: dict[str, int] | None = None,
    feed_days: int = FEED_DAYS,
) -> dict:
    """Each feature's and the score's bins and shares on the reference rows, how many rows, their date, each
    feature's share of the model's importance (``importance``: any non-negative measure, normalised here) and each
    data feed's rows in the window before the date (``feeds``, :func:`features.feeds.feed_counts`)."""
    features = {c: (categorical_reference(X[c]) if c in categorical else numeric_reference(X[c])) for c in X.columns}
    score = np.asarray(scores, dtype=float)
    reference = {
        "features": features,
        "score": numeric_reference(pd.Series(score)),
        "score_mean": float(score.mean()),
        "score_std": float(score.std()),
        "rows": int(len(X)),
    }
    if as_of is not None:
        reference["as_of"] = str(pd.Timestamp(as_of).date())
    if feeds is not None:
        reference["feeds"] = {k: int(v) for k, v in feeds.items()}
        reference["feed_days"] = int(feed_days)
    if importance is not None:
        total = float(importance.clip(lower=0).sum())
        reference["importance"] = {c: float(max(importance.get(c, 0.0), 0.0) / total) if total > 0 else 0.0
                                   for c in X.columns}  # fmt: skip
    return reference


def chance_threshold(n_reference: int, n_current: int, bins: int, significance: float) -> float:
    """The PSI that chance alone exceeds with probability ``significance`` between samples of these sizes."""
    if n_reference <= 0 or n_current <= 0 or bins < 2:
        return 0.0
    return float(chi2.ppf(1 - significance, bins - 1) * (1 / n_reference + 1 / n_current))


def drift_table(
    reference: dict,
    X: pd.DataFrame,
    scores: np.ndarray,
    rule: DriftRule | None = None,
    feeds: dict[str, int] | None = None,
) -> pd.DataFrame:
    """Every feature's and the score's check, largest PSI first: ``psi``, ``threshold`` (the practical one or
    chance's, whichever is higher), ``importance`` (share; NaN when the reference has none), ``flagged`` and
    ``note`` (what moved, by how much, and whether it moves the score); then the expected churn rate's and, when
    both the reference and ``feeds`` (the scoring date's :func:`features.feeds.feed_counts`) have them, each data
    feed's (``change``: the relative move of the rate).

    A reference written before sizes and importances were stored counts as large and every feature as important.
    """
    rule = rule or DriftRule()
    n_ref, importance = int(reference.get("rows", 0)), reference.get("importance")
    checks = [(c, ref, X[c]) for c, ref in reference["features"].items() if c in X]
    checks.append((SCORE, reference["score"], pd.Series(scores)))
    rows = []
    for name, ref, values in checks:
        actual = shares(ref, values)
        value = psi(ref["expected"], actual)
        chance = chance_threshold(n_ref, len(values), int(np.count_nonzero(np.asarray(ref["expected"]) > 0)),
                                  rule.significance) if n_ref else 0.0  # fmt: skip
        share = np.nan if name == SCORE or importance is None else float(importance.get(name, 0.0))
        rows.append({"name": name, "psi": value, "threshold": max(rule.psi_warning, chance), "importance": share})
    table = pd.DataFrame(rows)
    drifted = table["psi"] > table["threshold"]
    matters = table["importance"].isna() | (table["importance"] >= rule.min_importance)
    table["flagged"] = drifted & matters
    table["note"] = [_note(r, d, m, rule) for r, d, m in zip(table.itertuples(), drifted, matters, strict=True)]
    if "score_mean" in reference:
        table = pd.concat([table, pd.DataFrame([_mean_check(reference, np.asarray(scores, float), rule)])])
    if feeds is not None and reference.get("feeds"):
        table = pd.concat([table, pd.DataFrame(feed_checks(reference, feeds, len(X), rule))])
    table["change"] = table.get("change", np.nan)
    order = np.lexsort((-table["psi"].fillna(-1).to_numpy(), ~table["flagged"].to_numpy(dtype=bool)))
    return table.iloc[order].reset_index(drop=True)


def _mean_check(reference: dict, scores: np.ndarray, rule: DriftRule) -> dict:
    """The mean churn probability against the reference's: flagged when it moved by more than ``mean_change`` of
    itself and by more than chance (a two-sided z-test at ``significance``)."""
    before, now = reference["score_mean"], float(scores.mean())
    change = now / before - 1 if before > 0 else np.nan
    se = np.sqrt(reference["score_std"] ** 2 / max(reference.get("rows", 0), 1) + scores.var() / max(len(scores), 1))
    beyond_chance = abs(now - before) > norm.ppf(1 - rule.significance / 2) * se
    flagged = bool(abs(change) > rule.mean_change and beyond_chance)
    words = f"expected churn rate {now:.2%} against {before:.2%} at the reference ({change:+.0%})"
    note = f"{words}: moved" if flagged else f"{words}: stable"
    return {"name": MEAN, "psi": np.nan, "threshold": rule.mean_change, "importance": np.nan, "flagged": flagged,
            "note": note, "change": change}  # fmt: skip


def feed_checks(reference: dict, feeds: dict[str, int], rows: int, rule: DriftRule) -> list[dict]:
    """Each reference feed's rows per customer now against then: flagged when it fell by more than ``feed_drop``
    and an exact test of equal rates (the current count given both, binomial) rejects at ``significance``."""
    n_ref = int(reference.get("rows", 0))
    checks = []
    for name, before in sorted(reference["feeds"].items()):
        now = int(feeds.get(name, 0))
        if before < MIN_FEED_ROWS or not n_ref or not rows:
            continue
        rate_before, rate_now = before / n_ref, now / rows
        change = rate_now / rate_before - 1
        test = binomtest(now, now + before, rows / (rows + n_ref), alternative="less")
        flagged = bool(change < -rule.feed_drop and test.pvalue < rule.significance)
        words = (
            f"{rate_now:.3f} rows per customer in the {reference.get('feed_days')} days before, against "
            f"{rate_before:.3f} at the reference ({change:+.0%})"
        )
        verdict = "the feed stopped or thinned: check the source before trusting features built on it"
        note = f"{words}: {verdict if flagged else 'complete'}"
        checks.append({"name": f"{FEED}{name}", "psi": np.nan, "threshold": rule.feed_drop, "importance": np.nan,
                       "flagged": flagged, "note": note, "change": change})  # fmt: skip
    return checks


def _note(row, drifted: bool, matters: bool, rule: DriftRule) -> str:
    """A check's verdict in words."""
    if not drifted:
        return "stable"
    moved = f"PSI {row.psi:.2f} > {row.threshold:.2f}"
    if row.name == SCORE:
        return f"the score's distribution moved ({moved})"
    if np.isnan(row.importance):
        return f"moved ({moved})"
    share = f"{row.importance:.1%} of the model's attention"
    if matters:
        return f"moved ({moved}) and moves the score ({share})"
    return f"moved ({moved}) but barely moves the score ({share}, under {rule.min_importance:.0%}): not flagged"
