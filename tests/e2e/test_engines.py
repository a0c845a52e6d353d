"""One answer from every engine: Spark and customer partitions agree with the in-memory pandas run.

Spark runs in local mode. Without pyspark or Java these tests skip, unless
``CHURN_REQUIRE_SPARK`` is set (CI sets it), in which case they fail.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.config import DEFAULT_CONFIGS, SearchConfig
from pipelines.stages.train import load_training_data, run_training
from tests.builders import END as SYNTH_END
from tests.builders import assert_same_recovery_and_quarantine, bad_dataset, recovered_on_each_engine, train_config

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
            np.testing.assert_allclose(
                x.to_numpy(dtype=float), y.to_numpy(dtype=float), rtol=rtol, atol=0, equal_nan=True, err_msg=col
            )
        else:
            assert (x.isna() == y.isna()).all() and (x[x.notna()].astype(str) == y[y.notna()].astype(str)).all(), col


def _same_kept_tables(expected: Path, got: Path) -> None:
    """Two `churn validate` outputs keep the same tables: the same columns, dtypes and values (rows in any order)."""
    names = sorted(p.name for p in (expected / "tables").glob("*.parquet"))
    assert names == sorted(p.name for p in (got / "tables").glob("*.parquet"))
    for name in names:
        want, have = (pd.read_parquet(folder / "tables" / name) for folder in (expected, got))
        assert list(have.columns) == list(want.columns), name
        assert dict(have.dtypes) == dict(want.dtypes), name
        order = list(want.columns)
        pd.testing.assert_frame_equal(
            have.sort_values(order, ignore_index=True), want.sort_values(order, ignore_index=True), obj=f"{got}: {name}"
        )


def _same_snapshot_from(outputs: dict[str, Path], tmp_path: Path, argv: list[str]) -> None:
    """`churn snapshot` (the in-memory engine) from each validated folder gives the snapshot of the first."""
    snaps = {}
    for name, folder in outputs.items():
        assert (
            main(["snapshot", "--data", str(folder), *argv, "--out", str(tmp_path / f"snapshot-{name}.parquet")]) == 0
        ), name
        snaps[name] = pd.read_parquet(tmp_path / f"snapshot-{name}.parquet").sort_values(
            ["customer_id", "as_of"], ignore_index=True
        )
    first, *others = snaps
    assert len(snaps[first])
    for name in others:
        pd.testing.assert_frame_equal(snaps[name], snaps[first], obj=name)


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
    assert "unknown_customer" not in {
        r for r in pd.read_parquet(tmp_path / "spark" / "quarantine" / "interactions.parquet")["_reason"]
    } - {r for r in pd.read_parquet(tmp_path / "pandas" / "quarantine" / "interactions.parquet")["_reason"]}
    for name in bad_dataset():
        q_pandas = pd.read_parquet(tmp_path / "pandas" / "quarantine" / f"{name}.parquet")
        q_spark = pd.read_parquet(tmp_path / "spark" / "quarantine" / f"{name}.parquet")
        _numeric_equal(q_pandas[["_source_row", "_reason", "_detail"]], q_spark, ["_source_row"], 0)
    # Kept rows are typed and normalised alike (ids trimmed, booleans, dates), so the in-memory engine
    # reads either output
    _same_kept_tables(tmp_path / "pandas", tmp_path / "spark")
    assert pd.read_parquet(tmp_path / "spark" / "tables" / "feedback.parquet")["callback_requested"].dtype == "boolean"
    _same_snapshot_from(
        {"pandas": tmp_path / "pandas", "spark": tmp_path / "spark"},
        tmp_path,
        ["--as-of", "2025-02-15", "--horizon-days", "30", "--end-date", "2025-06-30"],
    )


def test_spark_validation_keeps_the_same_typed_tables(spark_ready, tmp_path: Path):
    """What validation normalises (ids, null tokens, offsets, numbers written with spaces, typed customer attributes,
    extra columns as text or in their parquet types) is written alike by every engine, and snapshots alike from each."""
    data = tmp_path / "raw"
    data.mkdir()
    n = 30
    ids = [f"c{i}" for i in range(n)]
    spelled = [f" {c} " if i % 3 == 0 else f"{c}\u200b" if i % 3 == 1 else c for i, c in enumerate(ids)]
    pd.DataFrame(
        {
            "customer_id": spelled,
            "signup_date": ["2024-01-02T23:30:00-05:00" if i % 2 else "2024-01-01" for i in range(n)],
            "monthly_revenue": [" 12 " if i % 4 == 0 else "NULL" if i == 5 else f"{10 + i}.5" for i in range(n)],
            "vip": ["yes", "no", ""] * (n // 3),
            "age": [str(20 + i % 7) for i in range(n)],
            "renewal": ["2025-01-01T01:00:00+02:00", "NULL", "2025-02-01"] * (n // 3),
            "plan": ["gold", "silver", "NULL"] * (n // 3),
        }
    ).to_csv(data / "customers.csv", index=False)
    rows = [
        (
            spelled[i],
            f"2024-0{2 + k}-0{1 + i % 9}T10:00:00{['Z', '-05:00', ''][k]}",
            [" app ", "web", "NULL"][k],
            ["login", "purchase", "login"][k],
            ["3", "NULL", " 4.5 "][k],
            ["NULL", "hi", "x"][k],
        )
        for i in range(n)
        for k in range(3)
    ]
    pd.DataFrame(rows, columns=["customer_id", "timestamp", "channel", "type", "value", "note"]).to_csv(
        data / "interactions.csv", index=False
    )
    pd.DataFrame(
        {
            "customer_id": ids[:9],
            "timestamp": ["2024-03-10T12:00:00+01:00"] * 9,
            "survey": ["NPS", "CSAT", "CES"] * 3,
            "score": ["9", "4", "2"] * 3,
            "callback_requested": ["true", "", "no"] * 3,
            "comment": ["  fine ", "NULL", "ok"] * 3,
        }
    ).to_csv(data / "feedback.csv", index=False)
    pd.DataFrame({"customer_id": [" c1", "c2 "], "churn_date": ["2024-04-10", "2024-04-20T02:00:00+03:00"]}).to_csv(
        data / "churn_events.csv", index=False
    )
    # A parquet table keeps its types: an instant with its zone, a whole number with missing values
    pd.DataFrame(
        {
            "customer_id": [" c3", "c4", "c5"],
            "action_date": pd.to_datetime(
                ["2024-03-01T05:00:00+02:00", "2024-03-02", "2024-03-03"], utc=True, format="ISO8601"
            ),
            "group": ["treatment", "control", "treatment"],
            "cost": [1.5, None, 2.0],
            "batch": pd.array([7, None, 9], dtype="Int64"),
            "sent_at": pd.to_datetime(["2024-03-01T05:00:00Z", None, "2024-03-03T06:00:00Z"], utc=True).astype(
                "datetime64[us, UTC]"
            ),
        }
    ).to_parquet(data / "retention_actions.parquet", index=False)

    argv = ["validate", "--data", str(data), "--end-date", "2024-06-30"]
    runs = {"pandas": [], "partitions": ["--partitions", "3"], "spark": ["--engine", "spark", "--partitions", "3"]}
    for name, extra in runs.items():
        assert main([*argv, "--out", str(tmp_path / name), *extra]) == 0, name
    kept = pd.read_parquet(tmp_path / "spark" / "tables" / "customers.parquet").set_index("customer_id")
    assert kept.loc["c0", "monthly_revenue"] == 12.0 and kept.loc["c1", "signup_date"] == pd.Timestamp(
        "2024-01-03T04:30:00"
    )
    assert kept["vip"].dtype == "boolean" and kept["vip"].isna().any() and kept["age"].dtype == "float64"
    assert kept.loc["c0", "renewal"] == pd.Timestamp("2024-12-31T23:00:00") and kept["plan"].isna().any()
    for name in ("partitions", "spark"):
        _same_kept_tables(tmp_path / "pandas", tmp_path / name)
    _same_snapshot_from(
        {name: tmp_path / name for name in runs},
        tmp_path,
        ["--as-of", "2024-03-15", "--as-of", "2024-04-01", "--horizon-days", "30", "--end-date", "2024-06-30"],
    )


def test_spark_snapshot_has_the_same_features_and_labels(spark_ready, small_dataset, tmp_path: Path):
    data, _, _ = small_dataset
    argv = [
        "snapshot",
        "--data",
        str(data),
        "--end-date",
        END,
        "--as-of",
        "2026-01-01",
        "--as-of",
        "2026-04-01",
        "--as-of",
        "2026-06-01",
    ]
    assert main([*argv, "--out", str(tmp_path / "pandas.parquet")]) == 0
    assert main([*argv, "--out", str(tmp_path / "spark.parquet"), "--engine", "spark", "--partitions", "4"]) == 0
    whole = pd.read_parquet(tmp_path / "pandas.parquet")
    spark = pd.read_parquet(tmp_path / "spark.parquet")
    assert whole["churned"].sum() > 50
    _numeric_equal(whole, spark, ["customer_id", "as_of"], 1e-12)


def test_scores_agree_across_engines(spark_ready, small_dataset, tmp_path: Path):
    """A model trained on the small dataset (two search trials: what is compared is the engines, not the model)."""
    data, _, _ = small_dataset
    dates = {"start": "2025-08-01", "end": "2026-05-01", "step_months": 1}
    mlflow = {"mlflow.experiment": "test-engines", "mlflow.registered_model": "engines"}
    config = train_config(data, end_date=END, truth=None, horizon_days=30, as_of=dates, **mlflow)
    run_training(dataclasses.replace(config, model=dataclasses.replace(config.model, search=SearchConfig(trials=2))))
    # The configured save rate, not one measured on this small data's campaigns (75 control customers measure 0 %,
    # which empties the action list): the reason codes of the action list are compared too.
    shipped = (DEFAULT_CONFIGS / "score.yaml").read_text()
    conf = tmp_path / "score.yaml"
    conf.write_text(shipped.replace("measure_save_rate: true", "measure_save_rate: false"))
    argv = ["score", "--as-of", "2026-04-01", "--data", str(data), "--end-date", END, "--model", "engines@challenger"]
    argv += ["--config", str(conf)]
    runs = {"pandas": [], "partitions": ["--partitions", "3"], "spark": ["--engine", "spark", "--partitions", "4"]}
    scores = {}
    for name, extra in runs.items():
        assert main([*argv, "--out", str(tmp_path / name), *extra]) == 0
        scores[name] = pd.read_parquet(tmp_path / name / "as_of=2026-04-01" / "scores.parquet")
    base = scores["pandas"]
    assert len(base) > 1000 and base["in_action_list"].sum() >= 10  # and their reason codes, holdout and groups
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
    pd.DataFrame(
        {
            "customer_id": [f"K{i:03d}" for i in range(n)],
            "signup_date": ["2023-01-15"] * n,
            "monthly_revenue": [f"{20 + i % 7}.50" for i in range(n)],
            "Age": [str(30 + i % 10) for i in range(n - 1)] + ["forty"],
            "Balance": [f"{100.5 * (i % 5):.2f}" for i in range(n)],
            "Plan": ["a", "b", "c"] * (n // 3),
        }
    ).to_csv(data / "customers.csv", index=False)
    pd.DataFrame(
        {"customer_id": ["K001", "K002", "K003"], "churn_date": ["2024-06-03", "2024-06-08", "2024-06-11"]}
    ).to_csv(data / "churn_events.csv", index=False)
    snaps = {}
    for name, extra in {
        "pandas": [],
        "partitions": ["--partitions", "3"],
        "spark": ["--engine", "spark", "--partitions", "2"],
    }.items():
        out = tmp_path / f"{name}.parquet"
        assert (
            main(
                [
                    "snapshot",
                    "--data",
                    str(data),
                    "--as-of",
                    "2024-06-01",
                    "--horizon-days",
                    "30",
                    "--end-date",
                    "2024-07-01",
                    "--out",
                    str(out),
                    *extra,
                ]
            )
            == 0
        ), name
        snaps[name] = pd.read_parquet(out)
    assert snaps["pandas"]["churned"].notna().all() and int(snaps["pandas"]["churned"].sum()) == 3
    assert (
        snaps["pandas"]["Balance"].dtype == "float64" and snaps["pandas"]["Age"].dtype == "str"
    )  # decided on the whole table
    for name in ("partitions", "spark"):
        _numeric_equal(snaps["pandas"], snaps[name], ["customer_id", "as_of"], rtol=1e-12)


@pytest.mark.parametrize("tables", [{}, {"feedback": "customer_id,timestamp,survey,score\nc1,2024-01-01,NPS,5\n"}])
def test_every_engine_refuses_a_dataset_with_one_message(spark_ready, tmp_path: Path, tables: dict[str, str]):
    """A missing dataset folder, or one without its customers table: pandas, partitions and Spark give one error
    (Spark used to say only 'does not exist', and the partitioned run failed on its work folder)."""
    from pipelines.contract import ContractError, validate_dataset
    from pipelines.engines.partitioned import validate_partitioned
    from pipelines.engines.spark import read_tables, spark_session
    from pipelines.io.files import read_dataset

    data = tmp_path / ("raw" if tables else "absent")
    for name, text in tables.items():
        data.mkdir(exist_ok=True)
        (data / f"{name}.csv").write_text(text)

    def in_memory():
        dataset = read_dataset(data)
        validate_dataset(dataset.tables, dataset.sources, end_date=pd.Timestamp(END))

    runs = {
        "pandas": in_memory,
        "partitions": lambda: validate_partitioned(data, tmp_path / "out", pd.Timestamp(END), 3),
        "spark": lambda: read_tables(spark_session(2), str(data)),
    }
    messages = {}
    for name, run in runs.items():
        with pytest.raises(ContractError) as err:
            run()
        messages[name] = str(err.value)
    assert len(set(messages.values())) == 1, messages


def test_spark_trains_on_the_rows_the_in_memory_engine_trains_on(spark_ready, small_dataset):
    """`churn train --engine spark`: validation, snapshot and sampling give the in-memory rows, in its order."""
    data, _, _ = small_dataset
    dates = {"start": "2025-08-01", "end": "2026-05-01", "step_months": 1}
    config = train_config(data, end_date=str(SYNTH_END.date()), truth=None, as_of=dates, horizon_days=30)
    whole = load_training_data(config)
    spark = load_training_data(dataclasses.replace(config, engine="spark", partitions=3))
    pd.testing.assert_frame_equal(whole.X, spark.X, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(whole.y, spark.y)
    np.testing.assert_array_equal(whole.w, spark.w)
    assert spark.validation.to_dict() == whole.validation.to_dict()


def test_spark_recovers_what_memory_recovers_and_counts_the_quarantined_row(spark_ready, tmp_path: Path):
    """`churn recover --engine spark`: Spark validates, the driver measures (tiers: the partitioned bucket loop, see
    tests/e2e/test_recover_engines.py); the figures and the quarantine are the in-memory run's."""
    runs = recovered_on_each_engine(tmp_path, {"pandas": {}, "spark": {"engine": "spark", "partitions": 2}})
    assert_same_recovery_and_quarantine(runs)
