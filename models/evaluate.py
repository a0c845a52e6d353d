"""Metrics, segment tables and plots of churn probabilities against realised labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

TOP_SHARES = (5, 10, 20)


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """ECE over equal-frequency bins: the count-weighted mean |mean(p) - mean(y)|.

    Equal-frequency bins, because with a few percent churners equal-width bins
    would put nearly every customer in the first bin and hide miscalibration.
    """
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    total = 0.0
    for idx in np.array_split(order, bins):
        if idx.size:
            total += idx.size * abs(p[idx].mean() - y[idx].mean())
    return float(total / max(y.size, 1))


def top_share_metrics(y: np.ndarray, p: np.ndarray, share_pct: int) -> tuple[float, float]:
    """(lift, capture) among the top ``share_pct`` % ranked by probability."""
    y = np.asarray(y, dtype=float)
    k = max(1, int(round(len(y) * share_pct / 100)))
    top = np.argsort(-np.asarray(p), kind="stable")[:k]
    base = y.mean()
    captured = y[top].sum() / max(y.sum(), 1.0)
    lift = (y[top].mean() / base) if base > 0 else float("nan")
    return float(lift), float(captured)


def classification_metrics(y: np.ndarray, p: np.ndarray, prefix: str) -> dict[str, float]:
    """The logged metric names: ``{prefix}roc_auc``, ``pr_auc``, ``log_loss``, ``brier``, ``ece``, lift and capture at
    5/10/20."""
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    out = {
        f"{prefix}roc_auc": float(roc_auc_score(y, p)),
        f"{prefix}pr_auc": float(average_precision_score(y, p)),
        f"{prefix}log_loss": float(log_loss(y, p, labels=[0, 1])),
        f"{prefix}brier": float(brier_score_loss(y, p)),
        f"{prefix}ece": expected_calibration_error(y, p),
        f"{prefix}prevalence": float(y.mean()),
        f"{prefix}rows": float(len(y)),
    }
    for share in TOP_SHARES:
        lift, capture = top_share_metrics(y, p, share)
        out[f"{prefix}lift_at_{share}"] = lift
        out[f"{prefix}capture_at_{share}"] = capture
    return out


def tenure_band(tenure_days: pd.Series) -> pd.Series:
    return pd.cut(
        tenure_days,
        [-np.inf, 90, 365, 730, np.inf],
        labels=["0-3 months", "3-12 months", "1-2 years", "2+ years"],
        right=False,
    ).astype(str)


def segment_table(frame: pd.DataFrame, y: np.ndarray, p: np.ndarray, segments: dict[str, pd.Series]) -> pd.DataFrame:
    """Rows, churners, mean probability, churn rate, ROC AUC and ECE per segment value."""
    rows = []
    for name, values in segments.items():
        data = pd.DataFrame({"segment_value": values.to_numpy(), "y": y, "p": p})
        for value, g in data.groupby("segment_value", sort=True):
            both = g["y"].nunique() == 2
            rows.append(
                {
                    "segment": name,
                    "value": str(value),
                    "rows": len(g),
                    "churners": int(g["y"].sum()),
                    "churn_rate": float(g["y"].mean()),
                    "mean_probability": float(g["p"].mean()),
                    "roc_auc": float(roc_auc_score(g["y"], g["p"])) if both else float("nan"),
                    "ece": expected_calibration_error(g["y"].to_numpy(), g["p"].to_numpy(), bins=5),
                }
            )
    return pd.DataFrame(rows)


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    order = np.argsort(p, kind="stable")
    parts = [
        {"mean_probability": float(np.mean(p[idx])), "observed_rate": float(np.mean(y[idx])), "rows": int(idx.size)}
        for idx in np.array_split(order, bins)
        if idx.size
    ]
    return pd.DataFrame(parts)


def gains(y: np.ndarray, p: np.ndarray, points: int = 50) -> pd.DataFrame:
    order = np.argsort(-np.asarray(p), kind="stable")
    ys = np.asarray(y, dtype=float)[order]
    cum = np.cumsum(ys) / max(ys.sum(), 1.0)
    share = np.arange(1, len(ys) + 1) / len(ys)
    pick = np.unique(np.linspace(0, len(ys) - 1, points).astype(int))
    return pd.DataFrame(
        {"share_contacted": share[pick], "share_of_churners": cum[pick], "lift": cum[pick] / share[pick]}
    )


# --- plots (matplotlib figures; the caller logs them) ----------------------------------
def figure(width: float = 5.5, height: float = 4.5) -> tuple[Figure, Axes]:
    """A figure and its axes: the one place plots are started, for the training artifacts here and the HTML
    reports (pipelines.reporting.html).

    A plain :class:`~matplotlib.figure.Figure`, not pyplot's: it renders without a GUI backend and is not kept in
    pyplot's global list of open figures, so a batch job neither needs a display nor has figures to close, and a
    notebook's own backend is left alone.
    """
    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def plot_roc(y, curves: dict[str, np.ndarray]):
    fig, ax = figure()
    for name, p in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def plot_pr(y, curves: dict[str, np.ndarray]):
    fig, ax = figure()
    for name, p in curves.items():
        prec, rec, _ = precision_recall_curve(y, p)
        ax.plot(rec, prec, label=f"{name} (AP {average_precision_score(y, p):.3f})")
    ax.axhline(np.mean(y), color="grey", lw=0.8, ls="--", label="prevalence")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (test)")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def plot_calibration(y, curves: dict[str, np.ndarray]):
    fig, ax = figure()
    top = 0.0
    for name, p in curves.items():
        r = reliability(np.asarray(y), np.asarray(p))
        ax.plot(
            r["mean_probability"],
            r["observed_rate"],
            marker="o",
            label=f"{name} (ECE {expected_calibration_error(y, p):.4f})",
        )
        top = max(top, r["mean_probability"].max(), r["observed_rate"].max())
    ax.plot([0, top], [0, top], color="grey", lw=0.8, ls="--")
    ax.set(xlabel="mean predicted probability (decile)", ylabel="observed churn rate", title="Reliability (test)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def plot_gains(y, curves: dict[str, np.ndarray]):
    fig, ax = figure()
    for name, p in curves.items():
        g = gains(np.asarray(y), np.asarray(p))
        ax.plot(g["share_contacted"], g["share_of_churners"], label=name)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="random")
    ax.set(
        xlabel="share of customers contacted (by risk)",
        ylabel="share of churners reached",
        title="Cumulative gains (test)",
    )
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def plot_importance(importance: pd.Series, measure: str = "total gain", family: str = "lightgbm", top: int = 25):
    fig, ax = figure()
    imp = importance.sort_values().tail(top)
    ax.barh(imp.index, imp.to_numpy())
    name = {"lightgbm": "LightGBM", "logistic_regression": "Logistic regression"}.get(family, family)
    ax.set(xlabel=measure, title=f"{name} feature importance")
    ax.tick_params(axis="y", labelsize=7)
    fig.set_size_inches(6.5, 7)
    fig.tight_layout()
    return fig


def plot_shap_summary(contrib: pd.DataFrame, values: pd.DataFrame, top: int = 20):
    """Beeswarm-style summary: each dot a customer, x its SHAP value, colour the feature's rank."""
    fig, ax = figure()
    order = contrib.abs().mean().sort_values(ascending=False).head(top).index[::-1]
    rng = np.random.default_rng(0)
    for i, name in enumerate(order):
        x = contrib[name].to_numpy()
        v = pd.to_numeric(values[name], errors="coerce")
        colour = v.rank(pct=True).fillna(0.5).to_numpy()
        ax.scatter(x, i + rng.uniform(-0.3, 0.3, x.size), c=colour, cmap="coolwarm", s=4, alpha=0.6, linewidths=0)
    ax.set_yticks(range(len(order)), order, fontsize=7)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set(
        xlabel="SHAP value (log-odds, before calibration)", title="SHAP summary (sample of test rows; red = high value)"
    )
    fig.set_size_inches(7, 7)
    fig.tight_layout()
    return fig
