"""The HTML reports' summary blocks: each page states what its run decided before any detail."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import value as val
from models.evaluate import figure
from pipelines.reporting.html import Verdict, recovery_decision, recovery_report, training_report

CARD = """# Model card: churn-propensity

## Data
- Dataset `data/synthetic`, 1,000 rows.

## Test metrics (never seen by any fitting or tuning step)
| metric | model | baseline | champion |
|---|---|---|---|
| test_roc_auc | 0.8100 | 0.8000 | |
"""

METRICS = {
    "test_roc_auc": 0.81,
    "baseline_test_roc_auc": 0.80,
    "champion_test_roc_auc": 0.805,
    "test_pr_auc": 0.3,
    "test_ece": 0.004,
    "baseline_test_ece": 0.006,
    "test_lift_at_10": 3.1,
    "test_capture_at_10": 0.31,
}


def _outcomes(control_rate: float, treated_rate: float, n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = np.array(["treatment", "control"] * n)
    churned = rng.random(2 * n) < np.where(group == "control", control_rate, treated_rate)
    return pd.DataFrame({"group": group, "churned": churned, "monthly_revenue": 50.0})


@pytest.mark.parametrize(
    ("control_rate", "treated_rate", "expected", "attention"),
    [(0.30, 0.10, "Measured saving", False), (0.20, 0.20, "Not yet a measurable saving", True)],
)
def test_the_recovery_decision_credits_revenue_only_when_the_interval_excludes_zero(
    control_rate, treated_rate, expected, attention
):
    table = val.recovery_frame(val.recovery_rows(_outcomes(control_rate, treated_rate), (), n_boot=300))
    sentence, needs_attention = recovery_decision(table)
    assert sentence.startswith(f"<b>{expected}") and needs_attention is attention
    assert (table.iloc[0]["saved_low"] > 0) is not attention
    assert "95% interval" in sentence and "of revenue kept" in sentence
    no_control = _outcomes(0.2, 0.2).query("group == 'treatment'")
    sentence, needs_attention = recovery_decision(val.recovery_frame(val.recovery_rows(no_control, (), n_boot=10)))
    assert sentence.startswith("<b>Not measured:</b>") and "nan" not in sentence and needs_attention


def test_the_recovery_report_opens_with_its_decision_the_naive_figure_and_the_run_notes():
    table = val.recovery_frame(val.recovery_rows(_outcomes(0.2, 0.2), (), n_boot=200))
    page = recovery_report(table, pd.Timestamp("2025-07-01"), pd.Timestamp("2026-03-31"), 90, "d", ["3 rows set aside"])
    summary = page.split("<div class='summary attention'>")[1].split("</div>")[0]
    assert "Not yet a measurable saving" in summary and "Do not book the naive" in summary
    assert "3 rows set aside" in summary
    assert page.index("class='summary") < page.index("<table")  # the decision before any detail
    empty = recovery_report(table.head(0), pd.Timestamp("2025-07-01"), pd.Timestamp("2026-03-31"), 90, "d", [])
    assert "nothing measured yet" in empty


def test_the_training_report_states_the_promotion_renders_the_card_and_inlines_the_plots():
    fig, ax = figure()
    ax.plot([0, 1], [0, 1])
    page = training_report(
        CARD, Verdict("churn-propensity", "3", False, "0.81 does not beat 0.805 + 0.01"), "lightgbm", METRICS,
        {"plots/roc.png": fig},
    )  # fmt: skip
    summary = page.split("<div class='summary attention'>")[1].split("</div>")[0]
    assert "churn-propensity v3 not promoted" in summary and "0.81 does not beat 0.805 + 0.01" in summary
    assert "Test ROC AUC <b>0.8100</b> (baseline 0.8000, champion 0.8050)" in summary
    assert "<h2>Data</h2>" in page and "<td>test_roc_auc</td>" in page  # the Markdown card as HTML, its table too
    assert "Model card: churn-propensity" not in page  # the card's own title gives way to the report's
    assert page.count("data:image/png;base64,") == 1 and "<script" not in page
    promoted = training_report(CARD, Verdict("churn-propensity", "4", True, "first"), "lightgbm", METRICS, {})
    assert "<div class='summary'>" in promoted and "v4 promoted to champion" in promoted
