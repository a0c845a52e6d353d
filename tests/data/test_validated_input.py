"""Snapshot and score can read what `churn validate` wrote: the same result as from the raw files, checked at the
boundary."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.config import FeatureConfig
from pipelines.contract import ContractError, validate_dataset
from pipelines.engines.partitioned import snapshot_partitioned, validate_partitioned
from pipelines.io.files import bucket_layout, load_validated, read_dataset, tables_from, write_validation
from pipelines.stages.snapshot import snapshot
from tests.builders import END as SYNTH_END
from tests.builders import same_rows

DATES = [pd.Timestamp("2026-01-01"), pd.Timestamp("2026-05-01")]


@pytest.fixture(scope="module")
def from_raw(small_dataset):
    data, _, _ = small_dataset
    dataset = read_dataset(data)
    raw, sources = dataset.tables, dataset.sources
    result = validate_dataset(raw, sources, end_date=SYNTH_END)
    return result, snapshot(tables_from(result), DATES, 90, result.data_end, FeatureConfig())


def test_validated_folder_gives_the_raw_result_without_validating_again(small_dataset, from_raw, tmp_path: Path):
    result, expected = from_raw
    write_validation(result, tmp_path / "v")
    again = load_validated(tmp_path / "v", SYNTH_END)
    assert again.to_dict() == result.to_dict() and not again.quarantine  # accounting from report.json
    pd.testing.assert_frame_equal(snapshot(tables_from(again), DATES, 90, again.data_end, FeatureConfig()), expected)
    # Without --end-date the validated folder's own end date is used.
    assert load_validated(tmp_path / "v").reference_end == SYNTH_END


@pytest.mark.parametrize(("validated_with", "asked"), [(3, 5), (1, 4)])
def test_partitioned_runs_use_validated_buckets_or_split_validated_tables(
    small_dataset, from_raw, tmp_path: Path, validated_with: int, asked: int
):
    data, _, _ = small_dataset
    result, expected = from_raw
    if validated_with > 1:
        validate_partitioned(data, tmp_path / "v", SYNTH_END, validated_with)
        assert bucket_layout(tmp_path / "v" / "tables") == validated_with
    else:
        write_validation(result, tmp_path / "v")
        assert bucket_layout(tmp_path / "v" / "tables") is None
    got, stats = snapshot_partitioned(
        tmp_path / "v", tmp_path / "snap.parquet", DATES, 90, None, asked, FeatureConfig()
    )
    assert got.to_dict()["tables"] == result.to_dict()["tables"]
    assert stats["partitions"] == (validated_with if validated_with > 1 else asked)
    same_rows(expected, pd.read_parquet(tmp_path / "snap.parquet"), ["customer_id", "as_of"])


def test_validated_folder_with_another_end_date_is_refused(from_raw, tmp_path: Path):
    write_validation(from_raw[0], tmp_path / "v")
    with pytest.raises(ContractError, match=r"validated with end date 2026-06-30, but this run asks for 2026-03-31"):
        load_validated(tmp_path / "v", pd.Timestamp("2026-03-31"))


def test_validated_table_changed_afterwards_fails_the_contract_check(from_raw, tmp_path: Path):
    write_validation(from_raw[0], tmp_path / "v")
    path = tmp_path / "v" / "tables" / "customers.parquet"
    customers = pd.read_parquet(path)
    customers.loc[0, "monthly_revenue"] = -1.0
    customers.to_parquet(path, index=False)
    with pytest.raises(ContractError, match=r"customers\.parquet: not a table that 'churn validate' wrote"):
        load_validated(tmp_path / "v", SYNTH_END)


def test_streamed_interactions_are_type_checked_batch_by_batch(from_raw, tmp_path: Path):
    from features.build import build_features, prepare
    from pipelines.io.files import dataset_files, feature_tables

    write_validation(from_raw[0], tmp_path / "v")
    path = tmp_path / "v" / "tables" / "interactions.parquet"
    interactions = pd.read_parquet(path)
    interactions.loc[len(interactions) - 1, "channel"] = None
    interactions.to_parquet(path, index=False)
    tables = feature_tables(dataset_files(tmp_path / "v" / "tables"), check=True)
    with pytest.raises(ContractError, match=r"interactions\.parquet: not a table that 'churn validate' wrote"):
        build_features(prepare(tables, FeatureConfig()), DATES[0])


def test_dictionary_encoded_text_columns_must_hold_text(from_raw, tmp_path: Path):
    from features.build import build_features, prepare
    from pipelines.io.files import dataset_files, feature_tables

    write_validation(from_raw[0], tmp_path / "v")
    path = tmp_path / "v" / "tables" / "interactions.parquet"
    interactions = pd.read_parquet(path)
    interactions["type"] = 7  # numbers where the contract has text
    interactions.to_parquet(path, index=False)
    tables = feature_tables(dataset_files(tmp_path / "v" / "tables"), check=True)
    with pytest.raises(
        ContractError, match=r"interactions\.parquet: not a table that 'churn validate' wrote.*'type'.*got int64"
    ):
        build_features(prepare(tables, FeatureConfig()), DATES[0])
