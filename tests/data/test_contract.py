"""The data contract: each kind of bad input gets its reason, nothing is lost, structure errors are precise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.keys import positions
from pipelines import contract as c
from pipelines.contract import ContractError, validate_dataset
from pipelines.io.files import read_dataset, write_validation
from tests.builders import BAD_DATASET_END as END
from tests.builders import bad_dataset


@pytest.fixture(scope="module")
def result():
    return validate_dataset(bad_dataset(), end_date=END)


EXPECTED = {
    "customers": {c.DUPLICATE_CUSTOMER: 2, c.NEGATIVE_REVENUE: 1, c.MISSING_VALUE: 1, c.UNPARSEABLE: 1},
    "interactions": {c.DUPLICATE_EVENT: 1, c.BEFORE_1970: 1, c.AFTER_END: 1, c.UNKNOWN_CUSTOMER: 1, c.MISSING_VALUE: 1},
    "feedback": {c.SCORE_OUT_OF_RANGE: 2, c.UNKNOWN_SURVEY: 1, c.UNPARSEABLE: 1},
    "churn_events": {c.CHURN_BEFORE_SIGNUP: 1, c.UNKNOWN_CUSTOMER: 1},
    "retention_actions": {c.NEGATIVE_COST: 1, c.UNKNOWN_GROUP: 1},
}


@pytest.mark.parametrize("table", sorted(EXPECTED))
def test_each_bad_row_gets_its_reason(result, table):
    assert result.report[table].by_reason == EXPECTED[table]


def test_accounting_holds_and_rows_are_kept(result):
    for name, frame in bad_dataset().items():
        r = result.report[name]
        assert r.rows_read == len(frame)
        assert r.balanced()
        assert len(result.tables[name]) == r.rows_kept
        assert len(result.quarantine[name]) == r.rows_quarantined == sum(r.by_reason.values())


def test_quarantine_keeps_original_values_and_row_numbers(result):
    q = result.quarantine["customers"].set_index("_source_row")
    assert q.loc[7, "signup_date"] == "not a date"  # the original text, not NaT
    assert q.loc[7, "_reason"] == c.UNPARSEABLE and "signup_date" in q.loc[7, "_detail"]
    assert q.loc[4, "monthly_revenue"] == "-5"
    assert set(result.quarantine["customers"]["customer_id"].dropna()) == {"dup", "neg", "x"}


def test_row_with_several_problems_lists_them_all(result):
    q = result.quarantine["feedback"].set_index("_source_row")
    # 'maybe' is not a boolean; the NPS score 7 is fine: one reason only
    assert q.loc[4, "_detail"] == f"{c.UNPARSEABLE}(callback_requested)"
    interactions = result.quarantine["interactions"].set_index("_source_row")
    assert interactions.loc[4, "_reason"] == c.UNKNOWN_CUSTOMER


def test_valid_rows_are_typed(result):
    kept = result.tables["feedback"]
    assert kept["timestamp"].dtype == "datetime64[us]"
    assert kept["callback_requested"].dtype == "boolean"
    assert list(kept["survey"]) == ["CSAT"]


def test_events_of_quarantined_customers_are_set_aside_too():
    data = bad_dataset()
    data["interactions"] = pd.DataFrame(
        {"customer_id": ["dup"], "timestamp": ["2025-01-01"], "channel": ["web"], "type": ["login"]}
    )
    r = validate_dataset(data, end_date=END)
    assert r.report["interactions"].by_reason == {c.UNKNOWN_CUSTOMER: 1}


def test_timestamps_after_today_are_impossible_without_an_end_date():
    data = bad_dataset()
    r = validate_dataset(data, today=pd.Timestamp("2030-01-01"))
    assert c.AFTER_END in r.report["interactions"].by_reason  # 2099
    assert r.report["interactions"].by_reason.get(c.AFTER_END) == 1


# --- structural problems stop the run with a precise message ----------------------------
def test_missing_required_table():
    data = bad_dataset()
    del data["customers"]
    with pytest.raises(
        ContractError, match=r"missing required table 'customers'.*customers\.parquet or customers\.csv"
    ):
        validate_dataset(data, end_date=END)


def test_missing_required_column_names_file_and_column():
    data = bad_dataset()
    data["feedback"] = data["feedback"].drop(columns="score")
    with pytest.raises(ContractError, match=r"feedback\.csv: missing required column\(s\) \['score'\]"):
        validate_dataset(data, {k: f"{k}.csv" for k in data}, end_date=END)


def test_column_with_no_readable_value():
    data = bad_dataset()
    data["customers"]["monthly_revenue"] = "free"
    with pytest.raises(
        ContractError,
        match=r"customers\.csv: column 'monthly_revenue' has no value that can be read as a number; first value is "
        r"'free'",
    ):
        validate_dataset(data, {k: f"{k}.csv" for k in data}, end_date=END)


def test_unparseable_file(tmp_path: Path):
    (tmp_path / "customers.parquet").write_text("this is not parquet")
    with pytest.raises(ContractError, match=r"customers\.parquet: cannot be parsed as parquet"):
        read_dataset(tmp_path)


def test_both_formats_present_is_ambiguous(tmp_path: Path):
    (tmp_path / "customers.csv").write_text("customer_id,signup_date,monthly_revenue\na,2024-01-01,1\n")
    (tmp_path / "customers.parquet").write_text("x")
    with pytest.raises(ContractError, match="keep one"):
        read_dataset(tmp_path)


def test_csv_round_trip_and_outputs(tmp_path: Path):
    src = tmp_path / "in"
    src.mkdir()
    for name, frame in bad_dataset().items():
        frame.to_csv(src / f"{name}.csv", index=False)
    dataset = read_dataset(src)
    raw, sources = dataset.tables, dataset.sources
    r = validate_dataset(raw, sources, end_date=END)
    assert {k: v.by_reason for k, v in r.report.items()} == EXPECTED
    write_validation(r, tmp_path / "out")
    q = pd.read_parquet(tmp_path / "out" / "quarantine" / "customers.parquet")
    assert len(q) == 5 and {"_source_row", "_reason", "_detail"} <= set(q.columns)
    assert (tmp_path / "out" / "report.json").exists() and "accounting holds" in (
        tmp_path / "out" / "report.txt"
    ).read_text()
    kept = pd.read_parquet(tmp_path / "out" / "tables" / "customers.parquet")
    assert sorted(kept["customer_id"]) == ["a", "b", "late"]


def test_exact_duplicates_match_a_full_row_comparison():
    """The sort-based candidate search finds exactly what comparing whole rows finds, first copy kept."""
    rng = np.random.default_rng(7)
    n = 5_000
    frame = pd.DataFrame(
        {
            "customer_id": rng.choice(["a", "b", "c", "d"], n),
            "timestamp": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 40, n), unit="D"),
            "type": rng.choice(["login", "complaint"], n),
            "value": rng.integers(0, 3, n).astype(float),
        }
    )
    frame.loc[10, "timestamp"] = pd.NaT
    frame.loc[11] = frame.loc[10]  # equal rows with a missing timestamp are duplicates too
    customer = positions(frame["customer_id"], np.array(["a", "b", "c"]))  # "d" is unknown: -1
    found = c._exact_duplicates(frame, customer, "timestamp")
    expected = frame.duplicated(keep="first").to_numpy()
    assert found.sum() > 100 and (found == expected).all()
