"""Training builds its rows with the configured engine, and the engine never changes which rows it trains on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.config import ConfigError
from pipelines.stages.train import TrainingData, load_training_data, negative_sampler
from tests.builders import END, train_config

DATES = {"start": "2025-08-01", "end": "2026-05-01", "step_months": 1}


def _config(data: Path, **overrides):
    return train_config(data, end_date=str(END.date()), truth=None, as_of=DATES, horizon_days=30, **overrides)


def _same_training_rows(a: TrainingData, b: TrainingData) -> None:
    pd.testing.assert_frame_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.w, b.w)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(a.split, part), getattr(b.split, part))
    assert a.validation.to_dict() == b.validation.to_dict()
    assert a.feature_config == b.feature_config


def test_customer_partitions_train_on_the_same_rows_as_the_whole_dataset(small_dataset):
    data, _, _ = small_dataset
    whole = load_training_data(_config(data))
    assert (whole.w > 1).any(), "non-churners on training dates are sampled: the test covers the sampler"
    _same_training_rows(whole, load_training_data(_config(data, partitions=3)))


def test_the_input_row_order_does_not_change_the_training_rows(small_dataset, tmp_path: Path):
    data, _, _ = small_dataset
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    for file in data.glob("*.parquet"):
        frame = pd.read_parquet(file)
        frame.sample(frac=1.0, random_state=3).to_parquet(shuffled / file.name, index=False)
    _same_training_rows(load_training_data(_config(data)), load_training_data(_config(shuffled)))


def test_training_from_a_validated_folder_on_partitions_keeps_its_quarantine(tmp_path: Path, small_dataset):
    from pipelines.cli import main

    data, _, _ = small_dataset
    raw = tmp_path / "raw"
    raw.mkdir()
    for file in data.glob("*.parquet"):
        pd.read_parquet(file).to_csv(raw / f"{file.stem}.csv", index=False)
    with (raw / "churn_events.csv").open("a") as f:
        f.write("c-unknown,not a date\n")  # set aside: the training run must carry it, whatever the engine
    whole = load_training_data(_config(raw))
    parts = load_training_data(_config(raw, partitions=2))
    assert whole.validation.report["churn_events"].rows_quarantined == 1
    set_aside = {name: q for name, q in whole.validation.quarantine.items() if len(q)}
    assert set(parts.validation.quarantine) == set(set_aside) == {"churn_events"}
    for name, q in set_aside.items():
        pd.testing.assert_frame_equal(
            q.astype(str).sort_values("_source_row", ignore_index=True),
            parts.validation.quarantine[name].astype(str).sort_values("_source_row", ignore_index=True),
        )
    assert (
        main(["validate", "--data", str(raw), "--out", str(tmp_path / "validated"), "--end-date", str(END.date())]) == 0
    )
    _same_training_rows(parts, load_training_data(_config(tmp_path / "validated", partitions=2)))


def test_which_non_churners_are_sampled_depends_on_the_customer_not_the_row_order():
    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(5_000)], "churned": pd.array([0] * 5_000, "Int8")})
    sample = negative_sampler([pd.Timestamp("2025-01-01")], 0.3, seed=5)
    kept = set(sample(pd.Timestamp("2025-01-01"), frame)["customer_id"])
    reversed_kept = set(sample(pd.Timestamp("2025-01-01"), frame.iloc[::-1])["customer_id"])
    assert kept == reversed_kept
    assert 0.27 < len(kept) / 5_000 < 0.33
    half = set(sample(pd.Timestamp("2025-01-01"), frame.iloc[:2_500])["customer_id"])
    assert half == {c for c in kept if int(c[1:]) < 2_500}  # a customer's draw does not depend on the others
    later = negative_sampler([pd.Timestamp("2025-02-01")], 0.3, seed=5)(pd.Timestamp("2025-02-01"), frame)
    assert set(later["customer_id"]) != kept  # another date draws afresh


@pytest.mark.parametrize("key, value", [("engine", "duckdb"), ("partitions", 0)])
def test_the_training_engine_is_checked_where_the_config_is_read(key: str, value):
    with pytest.raises(ConfigError, match=key):
        replace(train_config("unused"), **{key: value})


def test_churn_train_takes_the_engine_and_partitions_from_flags_over_the_config(monkeypatch, tmp_path: Path):
    import pipelines.stages.train as train
    from pipelines.cli import main

    seen = []
    monkeypatch.setattr(train, "run_training", seen.append)
    monkeypatch.setattr(train, "format_summary", lambda result: "trained")
    assert main(["train", "--data", str(tmp_path), "--partitions", "4"]) == 0
    assert main(["train", "--data", str(tmp_path), "--engine", "spark"]) == 0
    assert main(["train", "--data", str(tmp_path)]) == 0
    assert [(c.engine, c.partitions) for c in seen] == [("pandas", 4), ("spark", 1), ("pandas", 1)]
