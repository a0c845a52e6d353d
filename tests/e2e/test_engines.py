"""One answer from every engine: Spark and customer partitions agree with the in-memory pandas run.

Spark runs in local mode. Without pyspark or Java these tests skip, unless
``CHURN_REQUIRE_SPARK`` is set (CI sets it), in which case they fail.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.cli import main
from tests.data.test_contract import bad_dataset

pytestmark = [pytest.mark.slow, pytest.mark.spark]
END = "2026-06-30"


@pytest.fixture(scope="module")
def spark_ready():
    missing = None
    if importlib.util.find_spec("pyspark") is None:
        missing = "pyspark is not installed (the spark extra)"
    elif shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        missing = "no Java runtime for Spark"
    if missing:
        if os.environ.get("CHURN_REQUIRE_SPARK"):
            pytest.fail(f"CHURN_REQUIRE_SPARK is set but {missing}")
        pytest.skip(missing)


def _numeric_equal(a: pd.DataFrame, b: pd.DataFrame, key: list[str], rtol: float) -> None:
    a = a.sort_values(key, ignore_index=True)
    b = b.sort_values(key, ignore_index=True)[list(a.columns)]
    assert len(a) == len(b)
    for col in a.columns:
        x, y = a[col], b[col]
        if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(x):
            np.testing.assert_allclose(x.to_numpy(dtype=float), y.to_numpy(dtype=float), rtol=rtol, atol=0, equal_nan=True, err_msg=col)
        else:
            assert (x.isna() == y.isna()).all() and (x[x.notna()].astype(str) == y[y.notna()].astype(str)).all(), col


def test_spark_validation_sets_aside_the_same_rows_for_the_same_reasons(spark_ready, tmp_path: Path):
    data = tmp_path / "raw"
    data.mkdir()
    for name, frame in bad_dataset().items():
        frame.to_csv(data / f"{name}.csv", index=False)
    # Header and file-name quirks every engine reads alike (the report, notes included, must be the same)
    feedback = (data / "feedback.csv").read_text().split("\n", 1)
    (data / "feedback.csv").unlink()
    (data / "Feedback.csv").write_text(feedback[0].replace("customer_id", " Customer_ID ") + "\n" + feedback[1])
    (data / "notes.md").write_text("not a table")
    # Spellings of one id that validation reads as that id: every engine must bucket them with it
    spellings = [" a", "a\u200b", "a ", "\u200ba", " b", "b\u200b", "b\t", "\u00a0b"]
    with open(data / "interactions.csv", "a", encoding="utf-8") as f:
        f.writelines(f'"{who}",2025-03-{i + 1:02d}T10:00:00,web,login,1\n' for i, who in enumerate(spellings))
    # Rows only the row-by-row reader reads right (a closing quote followed by text; a row of the wrong width):
    # Spark reads local CSV files through it too
    with open(data / "customers.csv", "a", encoding="utf-8") as f:
        f.write('q1,2024-01-01,5,"gold 12" screen\nq2,2024-01-01,5\n')
    argv = ["validate", "--data", str(data), "--end-date", "2025-06-30"]
    assert main([*argv, "--out", str(tmp_path / "pandas")]) == 0
    assert main([*argv, "--out", str(tmp_path / "spark"), "--engine", "spark", "--partitions", "3"]) == 0

    assert (tmp_path / "spark" / "report.json").read_text() == (tmp_path / "pandas" / "report.json").read_text()
    report = json.loads((tmp_path / "spark" / "report.json").read_text())
    assert report["ignored_files"] == ["notes.md"] and any("' Customer_ID '" in n for n in report["notes"])
    assert report["tables"]["interactions"]["normalised"]["trimmed(customer_id)"] >= 5
    assert report["tables"]["customers"]["by_reason"]["malformed_row"] == 2
    assert "unknown_customer" not in {r for r in pd.read_parquet(tmp_path / "spark" / "quarantine" / "interactions.parquet")["_reason"]} - {
        r for r in pd.read_parquet(tmp_path / "pandas" / "quarantine" / "interactions.parquet")["_reason"]}
    for name in bad_dataset():
        q_pandas = pd.read_parquet(tmp_path / "pandas" / "quarantine" / f"{name}.parquet")
        q_spark = pd.read_parquet(tmp_path / "spark" / "quarantine" / f"{name}.parquet")
        _numeric_equal(q_pandas[["_source_row", "_reason", "_detail"]], q_spark, ["_source_row"], 0)
        kept = pd.read_parquet(tmp_path / "spark" / "tables" / f"{name}.parquet")
        assert len(kept) == len(pd.read_parquet(tmp_path / "pandas" / "tables" / f"{name}.parquet"))


def test_spark_snapshot_has_the_same_features_and_labels(spark_ready, small_dataset, tmp_path: Path):
    data, _, _ = small_dataset
    argv = ["snapshot", "--data", str(data), "--end-date", END, "--as-of", "2026-01-01", "--as-of", "2026-04-01", "--as-of", "2026-06-01"]
    assert main([*argv, "--out", str(tmp_path / "pandas.parquet")]) == 0
    assert main([*argv, "--out", str(tmp_path / "spark.parquet"), "--engine", "spark", "--partitions", "4"]) == 0
    whole = pd.read_parquet(tmp_path / "pandas.parquet")
    spark = pd.read_parquet(tmp_path / "spark.parquet")
    assert whole["churned"].sum() > 50
    _numeric_equal(whole, spark, ["customer_id", "as_of"], 1e-12)


def test_scores_agree_across_engines(spark_ready, trained_default, small_dataset, tmp_path: Path):
    data, _, _ = small_dataset
    argv = ["score", "--as-of", "2026-04-01", "--data", str(data), "--end-date", END]
    runs = {"pandas": [], "partitions": ["--partitions", "3"], "spark": ["--engine", "spark", "--partitions", "4"]}
    scores = {}
    for name, extra in runs.items():
        assert main([*argv, "--out", str(tmp_path / name), *extra]) == 0
        scores[name] = pd.read_parquet(tmp_path / name / "as_of=2026-04-01" / "scores.parquet")
    base = scores["pandas"]
    assert len(base) > 1000 and base["in_action_list"].sum() > 20
    for name in ("partitions", "spark"):
        other = scores[name]
        np.testing.assert_allclose(other["churn_probability"], base["churn_probability"], rtol=0, atol=1e-9)
        same = [c for c in base.columns if c not in ("churn_probability", "model_run_id")]
        pd.testing.assert_frame_equal(other[same], base[same], check_dtype=False)


def test_every_engine_labels_up_to_the_extract_date_and_types_attributes_alike(spark_ready, tmp_path: Path):
    """A static extract whose latest churn is 2024-06-11, taken 2024-07-01, with CSV attributes (one a stray word
    among numbers): the same labels and attribute features from pandas, partitions and Spark."""
    data = tmp_path / "static"
    data.mkdir()
    n = 60
    pd.DataFrame({
        "customer_id": [f"K{i:03d}" for i in range(n)],
        "signup_date": ["2023-01-15"] * n,
        "monthly_revenue": [f"{20 + i % 7}.50" for i in range(n)],
        "Age": [str(30 + i % 10) for i in range(n - 1)] + ["forty"],
        "Balance": [f"{100.5 * (i % 5):.2f}" for i in range(n)],
        "Plan": ["a", "b", "c"] * (n // 3),
    }).to_csv(data / "customers.csv", index=False)
    pd.DataFrame({"customer_id": ["K001", "K002", "K003"], "churn_date": ["2024-06-03", "2024-06-08", "2024-06-11"]}).to_csv(
        data / "churn_events.csv", index=False)
    snaps = {}
    for name, extra in {"pandas": [], "partitions": ["--partitions", "3"], "spark": ["--engine", "spark", "--partitions", "2"]}.items():
        out = tmp_path / f"{name}.parquet"
        assert main(["snapshot", "--data", str(data), "--as-of", "2024-06-01", "--horizon-days", "30", "--end-date", "2024-07-01",
                     "--out", str(out), *extra]) == 0, name
        snaps[name] = pd.read_parquet(out)
    assert snaps["pandas"]["churned"].notna().all() and int(snaps["pandas"]["churned"].sum()) == 3
    assert snaps["pandas"]["Balance"].dtype == "float64" and snaps["pandas"]["Age"].dtype == "str"  # decided on the whole table
    for name in ("partitions", "spark"):
        _numeric_equal(snaps["pandas"], snaps[name], ["customer_id", "as_of"], rtol=1e-12)
