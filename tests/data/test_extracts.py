"""Warehouse extracts as users bring them: the extract date ends observation, CSV attributes are typed once,
and the inactivity population is configurable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.build import build_features
from features.config import FeatureConfig
from pipelines.attributes import infer_type
from pipelines.cli import main
from pipelines.config import ConfigError
from pipelines.contract import ContractError, validate_dataset
from pipelines.io.files import load_validated, read_dataset, write_validation
from pipelines.stages.snapshot import snapshot_from_result
from tests.builders import make_tables


def write(folder: Path, **tables: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


@pytest.fixture
def static_extract(tmp_path: Path) -> Path:
    """A customer table and churn events only; the latest churn is 2024-06-11, the extract was taken 2024-07-01."""
    n = 40
    customers = pd.DataFrame(
        {
            "customer_id": [f"K{i:03d}" for i in range(n)],
            "signup_date": ["2023-01-15"] * n,
            "monthly_revenue": [f"{20 + i % 7}.50" for i in range(n)],
        }
    )
    churn = pd.DataFrame(
        {"customer_id": ["K001", "K002", "K003"], "churn_date": ["2024-06-03", "2024-06-08", "2024-06-11"]}
    )
    return write(tmp_path / "static", customers=customers, churn_events=churn)


def test_extract_date_ends_observation_not_the_latest_row(static_extract: Path, tmp_path: Path):
    as_of = [pd.Timestamp("2024-06-01")]
    given = load_validated(static_extract, pd.Timestamp("2024-07-01"))
    assert given.data_end == pd.Timestamp("2024-06-11") and given.observation_end == pd.Timestamp("2024-07-01")
    labelled = snapshot_from_result(given, as_of, 30, FeatureConfig())
    assert labelled["churned"].notna().all() and int(labelled["churned"].sum()) == 3

    # Without an end date the latest row seen stands in: the 30-day window is not observed.
    unknown = load_validated(static_extract)
    assert unknown.observation_end == pd.Timestamp("2024-06-11")
    assert snapshot_from_result(unknown, as_of, 30, FeatureConfig())["churned"].isna().all()


@pytest.mark.parametrize("partitions", ["1", "3"])
def test_snapshot_command_labels_up_to_the_extract_date_in_every_engine(
    static_extract: Path, tmp_path: Path, partitions: str
):
    out = tmp_path / "snap.parquet"
    code = main(
        [
            "snapshot",
            "--data",
            str(static_extract),
            "--as-of",
            "2024-06-01",
            "--horizon-days",
            "30",
            "--end-date",
            "2024-07-01",
            "--partitions",
            partitions,
            "--out",
            str(out),
        ]
    )
    assert code == 0
    snap = pd.read_parquet(out)
    assert len(snap) == 40 and snap["churned"].notna().all() and int(snap["churned"].sum()) == 3


def test_validation_report_says_how_observation_ends(static_extract: Path, tmp_path: Path):
    dataset = read_dataset(static_extract)
    raw, sources = dataset.tables, dataset.sources
    write_validation(validate_dataset(raw, sources, end_date=pd.Timestamp("2024-07-01")), tmp_path / "v")
    report = json.loads((tmp_path / "v" / "report.json").read_text())
    assert report["end_date_given"] is True and report["observation_end"].startswith("2024-07-01")
    assert report["data_end"].startswith("2024-06-11")
    # A validated folder keeps the rule: labels observed up to the end date it was validated with.
    assert load_validated(tmp_path / "v").observation_end == pd.Timestamp("2024-07-01")


BANK = pd.DataFrame(
    {
        "customer_id": [f"B{i:03d}" for i in range(30)],
        "signup_date": ["2022-03-01"] * 30,
        "monthly_revenue": ["10"] * 30,
        "RowNumber": [str(i + 1) for i in range(30)],
        "Surname": [f"Name{i}" for i in range(30)],
        "Age": [str(18 + 2 * i) for i in range(30)],  # unique in this small table, yet a measurement
        "AccountNo": [str(15_634_602 + 7 * i) for i in range(30)],
        "Balance": [f"{1000.25 * (i % 4):.2f}" for i in range(30)],
        "IsActiveMember": [str(i % 2) for i in range(30)],
        "HasCard": ["Yes", "no"] * 15,
        "Geography": ["France", "Spain", "Germany"] * 10,
        "LastReview": ["2024-01-01", "", "2024-05-20"] * 10,
        "Score": [str(i % 9) for i in range(29)] + ["n/a"],
    }
)


def test_csv_attributes_are_typed_once_at_validation():
    result = validate_dataset({"customers": BANK}, end_date=pd.Timestamp("2024-06-30"))
    assert result.attribute_types == {
        "RowNumber": "identifier",
        "Surname": "identifier",
        "Age": "number",
        "AccountNo": "identifier",
        "Balance": "number",
        "IsActiveMember": "number",
        "HasCard": "boolean",
        "Geography": "category",
        "LastReview": "date",
        "Score": "number",
    }
    customers = result.tables["customers"]
    assert customers["Age"].dtype == "float64" and customers["LastReview"].dtype == "datetime64[us]"
    assert customers["Score"].isna().sum() == 1  # a null token is a missing value, not a reason to make it text
    assert "customer attributes: " in result.to_text()


def test_attribute_features_follow_their_types():
    result = validate_dataset({"customers": BANK}, end_date=pd.Timestamp("2024-06-30"))
    snap = snapshot_from_result(result, [pd.Timestamp("2024-06-01")], 30, FeatureConfig())
    assert (
        "RowNumber" not in snap and "Surname" not in snap and "AccountNo" not in snap
    )  # identifiers are reported and left out
    for col in ("Age", "Balance", "IsActiveMember", "HasCard", "Score"):
        assert snap[col].dtype == "float64", col
    assert snap["HasCard"].tolist()[:2] == [1.0, 0.0]
    assert snap["Geography"].dtype == "str"
    days = snap["days_since_LastReview"].to_numpy()
    assert days[0] == (pd.Timestamp("2024-06-01") - pd.Timestamp("2024-01-01")).days and np.isnan(days[1])


def test_a_date_on_or_after_the_as_of_date_is_not_yet_known():
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "signup_date": ["2024-01-01"] * 2,
            "monthly_revenue": [1.0, 2.0],
            "renewal": pd.to_datetime(["2024-07-01", "2024-05-01"]).astype("datetime64[us]"),
        }
    )
    f = build_features(
        make_tables(customers), pd.Timestamp("2024-06-01"), FeatureConfig(attribute_types=(("renewal", "date"),))
    )
    assert np.isnan(f["days_since_renewal"].iloc[0]) and f["days_since_renewal"].iloc[1] == 31


def test_config_forces_a_type_and_unreadable_values_are_quarantined():
    bank = BANK.assign(Age=[str(30 + i % 10) for i in range(29)] + ["forty"])
    assert infer_type(bank["Age"]) == "category"  # one word among numbers: strict inference says text
    result = validate_dataset(
        {"customers": bank},
        end_date=pd.Timestamp("2024-06-30"),
        attribute_types={"Age": "number", "Geography": "exclude"},
    )
    assert result.attribute_types["Age"] == "number" and result.attribute_types["Geography"] == "exclude"
    q = result.quarantine["customers"]
    assert (
        q["_source_row"].tolist() == [29]
        and q["_reason"].tolist() == ["unparseable_value"]
        and q["Age"].tolist() == ["forty"]
    )
    snap = snapshot_from_result(result, [pd.Timestamp("2024-06-01")], 30, FeatureConfig())
    assert "Geography" not in snap and snap["Age"].dtype == "float64"


def test_a_validated_folder_with_other_types_is_refused_by_name(tmp_path: Path):
    write_validation(validate_dataset({"customers": BANK}, end_date=pd.Timestamp("2024-06-30")), tmp_path / "v")
    with pytest.raises(ContractError, match="'Age' is number there, category here"):
        load_validated(tmp_path / "v", attribute_types={"Age": "category"})
    assert load_validated(tmp_path / "v", attribute_types={"Age": "number"}).attribute_types["Age"] == "number"


def test_partitioned_validation_types_every_bucket_alike(tmp_path: Path):
    """A column whose text value lands in one bucket must not be a number in the others."""
    data = write(tmp_path / "d", customers=BANK.assign(Age=[str(30 + i % 10) for i in range(29)] + ["forty"]))
    assert (
        main(
            [
                "validate",
                "--data",
                str(data),
                "--out",
                str(tmp_path / "v"),
                "--end-date",
                "2024-06-30",
                "--partitions",
                "4",
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "v" / "report.json").read_text())
    assert report["attribute_types"]["Age"] == "category"
    assert pd.read_parquet(tmp_path / "v" / "tables" / "customers.parquet")["Age"].dtype == "str"


def test_inactivity_population_is_configurable():
    customers = pd.DataFrame(
        {"customer_id": ["recent", "lapsed", "never"], "signup_date": ["2023-01-01"] * 3, "monthly_revenue": [1.0] * 3}
    )
    interactions = pd.DataFrame(
        {
            "customer_id": ["recent", "lapsed"],
            "timestamp": ["2024-05-20", "2023-06-01"],
            "channel": ["web", "store"],
            "type": ["purchase", "purchase"],
            "value": [10.0, 20.0],
        }
    )
    tables = make_tables(customers, interactions)
    as_of = pd.Timestamp("2024-06-01")
    recent_only = build_features(tables, as_of, FeatureConfig(label_source="inactivity", inactivity_active_days=180))
    everyone = build_features(tables, as_of, FeatureConfig(label_source="inactivity", inactivity_active_days=None))
    assert recent_only["customer_id"].tolist() == ["recent"]
    assert sorted(everyone["customer_id"]) == ["lapsed", "never", "recent"]


def test_population_and_attribute_types_reach_the_feature_config():
    from pipelines.config import load_config

    config = load_config(
        None,
        {
            "label": "inactivity",
            "population": {"active_within_days": None},
            "features": {"attribute_types": {"Age": "number"}, "exclude_columns": ["Geography"]},
        },
    )
    features = config.feature_config({"Age": "number", "Geography": "category", "Surname": "identifier"})
    assert features.inactivity_active_days is None and features.label_source == "inactivity"
    assert features.attribute_types == (("Age", "number"),)
    with pytest.raises(ConfigError, match="attribute_types"):
        load_config(None, {"features": {"attribute_types": {"Age": "integer"}}})
