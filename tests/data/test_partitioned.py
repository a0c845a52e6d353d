"""Customer partitions change how much sits in memory, never the result: same quarantine, features and labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.config import FeatureConfig
from pipelines.contract import ContractError, validate_dataset
from pipelines.engines.partitioned import bucket_of, snapshot_partitioned, validate_partitioned
from pipelines.io.files import read_dataset, tables_from
from pipelines.stages.snapshot import snapshot, snapshot_stats
from tests.builders import BAD_DATASET_END as END
from tests.builders import END as SYNTH_END
from tests.builders import bad_dataset, same_rows


def write_csv_dataset(folder: Path, tables: dict[str, pd.DataFrame]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


@pytest.mark.parametrize("buckets", [1, 3, 7])
def test_partitioned_validation_matches_in_memory(tmp_path: Path, buckets: int):
    data = write_csv_dataset(tmp_path / "raw", bad_dataset())
    dataset = read_dataset(data)
    raw, sources = dataset.tables, dataset.sources
    whole = validate_dataset(raw, sources, end_date=END)
    parts = validate_partitioned(data, tmp_path / "out", END, buckets)

    assert parts.to_dict() == whole.to_dict()
    for name in raw:
        quarantined = pd.read_parquet(tmp_path / "out" / "quarantine" / f"{name}.parquet")
        same_rows(whole.quarantine[name].astype(str), quarantined.astype(str), ["_source_row"])
        kept = pd.read_parquet(tmp_path / "out" / "tables" / f"{name}.parquet")
        key = [
            c
            for c in whole.tables[name].columns
            if c in ("customer_id", "timestamp", "churn_date", "action_date", "survey")
        ]
        same_rows(whole.tables[name].astype(str), kept.astype(str), key)


def test_column_unreadable_everywhere_is_structural_but_one_readable_value_is_enough(tmp_path: Path):
    tables = bad_dataset()
    tables["churn_events"]["churn_date"] = "soon"
    with pytest.raises(
        ContractError, match=r"churn_events.csv: column 'churn_date' has no value that can be read as a date"
    ):
        validate_partitioned(write_csv_dataset(tmp_path / "a", tables), tmp_path / "out_a", END, 3)

    tables["churn_events"].loc[1, "churn_date"] = "2025-03-01"  # one readable value, in one bucket only
    parts = validate_partitioned(write_csv_dataset(tmp_path / "b", tables), tmp_path / "out_b", END, 3)
    dataset = read_dataset(tmp_path / "b")
    raw, sources = dataset.tables, dataset.sources
    assert parts.to_dict() == validate_dataset(raw, sources, end_date=END).to_dict()


def test_buckets_keep_each_customer_whole():
    ids = pd.Series([f"C{i:05d}" for i in range(1000)] * 3)
    b = bucket_of(ids, 8)
    assert b.min() >= 0 and b.max() < 8
    assert pd.DataFrame({"id": ids, "b": b}).groupby("id")["b"].nunique().max() == 1
    assert np.bincount(b).min() > 60  # spread, not lumped


def test_partitioned_snapshot_matches_in_memory(small_dataset, tmp_path: Path):
    data, _, _ = small_dataset
    config = FeatureConfig()
    dates = [pd.Timestamp("2026-01-01"), pd.Timestamp("2026-04-01"), pd.Timestamp("2026-06-01")]
    dataset = read_dataset(data)
    raw, sources = dataset.tables, dataset.sources
    result = validate_dataset(raw, sources, end_date=SYNTH_END)
    whole = snapshot(tables_from(result), dates, 90, result.data_end, config)

    _, stats = snapshot_partitioned(data, tmp_path / "snap.parquet", dates, 90, SYNTH_END, 4, config)
    parts = pd.read_parquet(tmp_path / "snap.parquet")
    assert stats["rows"] == len(whole) == len(parts)
    assert stats["positives"] == int(whole["churned"].sum())
    assert stats == snapshot_stats(whole).to_dict(4)  # one count, whole or by bucket
    assert 0 < stats["positives"] < stats["labelled"] < stats["rows"]
    same_rows(whole, parts, ["customer_id", "as_of"])
    assert not any(p.name.startswith(".work") for p in tmp_path.iterdir())


@pytest.mark.parametrize("tables", [{}, {"feedback": "customer_id,timestamp,survey,score\nc1,2024-01-01,NPS,5\n"}])
def test_partitions_refuse_a_dataset_as_the_in_memory_run_does(tmp_path: Path, tables: dict[str, str]):
    """A missing dataset folder, or one without its customers table: the same error, naming what was expected (the
    partitioned run used to fail on its own work folder instead)."""
    data = tmp_path / ("raw" if tables else "absent")
    for name, text in tables.items():
        data.mkdir(exist_ok=True)
        (data / f"{name}.csv").write_text(text)
    with pytest.raises(ContractError) as whole:
        dataset = read_dataset(data)
        validate_dataset(dataset.tables, dataset.sources, end_date=END)
    with pytest.raises(ContractError) as parts:
        validate_partitioned(data, tmp_path / "out", END, 3)
    assert str(parts.value) == str(whole.value)
    assert ("customers.parquet or customers.csv" if tables else "does not exist") in str(whole.value)
