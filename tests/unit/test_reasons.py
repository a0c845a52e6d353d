"""Reason codes: the top risk-raising features of each row, in words, read from the right cells."""

import numpy as np
import pandas as pd

from models.reasons import describe, top_reasons


def test_top_reasons_picks_the_largest_positive_contributions_of_each_row():
    contributions = pd.DataFrame(
        {"n_complaint_30d": [0.9, -0.1], "nps_latest": [0.5, 0.2], "tenure_days": [-0.3, 0.8], "plan": [0.1, -0.2]},
        index=[10, 11],
    )
    values = pd.DataFrame(
        {"n_complaint_30d": [3.0, 0.0], "nps_latest": [2.0, np.nan], "tenure_days": [900.0, 40.0], "plan": ["basic", "pro"]},
        index=[10, 11],
    )
    out = top_reasons(contributions, values)
    assert list(out.index) == [10, 11]
    assert out.loc[10].tolist() == [
        "3 complaint(s) in the last 30 days (raises risk)",
        "latest NPS score 2 (raises risk)",
        "plan: basic (raises risk)",
    ]
    # Only two features raise the second row's risk: the third reason is empty.
    assert out.loc[11, "reason_1"] == "new customer (40 days) (raises risk)"
    assert out.loc[11, "reason_2"] == "no NPS answer on record (raises risk)"
    assert pd.isna(out.loc[11, "reason_3"])


def test_describe_reads_missing_and_text_values_without_failing():
    assert describe("days_since_last_interaction", pd.NA, 1.0) == "no interaction recorded (raises risk)"
    assert describe("recent_detractor", True, 1.0) == "gave a poor survey answer recently (raises risk)"
    assert describe("nps_category_latest", "detractor", 0.4) == "latest NPS answer: detractor (raises risk)"
