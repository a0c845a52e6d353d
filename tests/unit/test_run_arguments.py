"""Dates, horizons and output folders a run is given: refused by name when they cannot mean what they seem (issue
11)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.build import build_features
from features.config import FeatureConfig, FeatureError
from pipelines.cli import EXIT_INPUT, main
from pipelines.config import ConfigError, ScoreConfig, TrainConfig, iso_date, load_config
from tests.builders import make_tables


@pytest.mark.parametrize("text", ["04/03/2024", "2024", "June 30", "2024-02-30", "2024-06-01T00:00", "20240601", ""])
def test_a_date_is_yyyy_mm_dd_or_refused(text):
    with pytest.raises(ConfigError, match="expected YYYY-MM-DD"):
        iso_date(text, "end_date")


def test_an_iso_date_reads_as_that_day():
    assert iso_date(" 2024-06-30 ", "end_date") == pd.Timestamp("2024-06-30")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as-of", "04/03/2024"], "argument --as-of: not a date: '04/03/2024'"),
        (["--as-of", "2024-04-01", "--end-date", "June 30"], "argument --end-date: not a date"),
        (["--as-of", "2024-04-01", "--horizon-days", "0"], "argument --horizon-days: must be at least 1"),
        (["--as-of", "2024-04-01", "--horizon-days", "-30"], "argument --horizon-days: must be at least 1"),
    ],
)
def test_snapshot_refuses_ambiguous_dates_and_empty_horizons(tmp_path: Path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        main(["snapshot", "--data", str(tmp_path), "--out", str(tmp_path / "s.parquet"), *args])
    assert exit_.value.code == EXIT_INPUT
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("end_date: 06/30/2024\n", "end_date: '06/30/2024' is not a date"),
        ("horizon_days: 0\n", "horizon_days: expected a whole number of days, at least 1"),
        ("as_of:\n  dates: [2024-01-01, 2024-13-01]\n", r"as_of.dates\[1\]: '2024-13-01' is not a date"),
        ("as_of:\n  start: 2024\n  end: 2024-06-01\n", "as_of.start: '2024' is not a date"),
    ],
)
def test_train_config_refuses_dates_and_horizons_by_key(tmp_path: Path, text, message):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "c.yaml", kind=TrainConfig)


def test_score_config_refuses_a_bad_end_date_and_value_horizon(tmp_path: Path):
    (tmp_path / "s.yaml").write_text("end_date: '2024'\n")
    with pytest.raises(ConfigError, match="end_date: '2024' is not a date"):
        load_config(tmp_path / "s.yaml", kind=ScoreConfig)
    (tmp_path / "s.yaml").write_text("value:\n  horizon_days: -1\n")
    with pytest.raises(ConfigError, match="value.horizon_days"):
        load_config(tmp_path / "s.yaml", kind=ScoreConfig)


def _dataset(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "customers.csv").write_text("customer_id,signup_date,monthly_revenue\nc1,2024-01-01,10\n")
    return folder


@pytest.mark.parametrize("out", [".", ".."])
def test_validate_never_writes_over_its_own_input(tmp_path: Path, capsys, out):
    data = _dataset(tmp_path / "in")
    (data / "report.json").write_text("{}")  # a stray report would make the folder look like an earlier output
    assert main(["validate", "--data", str(data), "--out", str(data / out), "--end-date", "2024-06-30"]) == EXIT_INPUT
    assert "would delete the input" in capsys.readouterr().err
    assert (data / "customers.csv").exists()


def test_an_output_folder_holding_input_tables_is_refused(tmp_path: Path, capsys):
    data = _dataset(tmp_path / "in")
    other = _dataset(tmp_path / "other")
    (other / "report.json").write_text("{}")
    assert main(["validate", "--data", str(data), "--out", str(other), "--end-date", "2024-06-30"]) == EXIT_INPUT
    assert "holds input tables (customers.csv)" in capsys.readouterr().err
    assert (other / "customers.csv").exists()


@pytest.mark.parametrize("column", ["tenure_days", "churned", "as_of", "sample_weight", "days_since_last_interaction"])
def test_an_attribute_never_replaces_a_feature_or_the_label(column):
    customers = pd.DataFrame(
        {
            "customer_id": ["c1", "c2"],
            "signup_date": ["2024-01-01", "2024-01-02"],
            "monthly_revenue": [10.0, 12.0],
            column: [1.0, 2.0],
        }
    )
    with pytest.raises(FeatureError, match=f"customers column '{column}' has the name of a column the pipeline builds"):
        build_features(make_tables(customers), pd.Timestamp("2024-03-01"), FeatureConfig())
    excluded = build_features(
        make_tables(customers), pd.Timestamp("2024-03-01"), FeatureConfig(exclude_columns=(column,))
    )
    if column == "tenure_days":
        assert excluded["tenure_days"].tolist() == [60.0, 59.0]


def test_scoring_past_the_day_after_the_data_is_refused():
    from pipelines.contract import ValidationResult
    from pipelines.stages.score import ScoringError, _check_as_of

    result = ValidationResult({}, {}, {}, pd.Timestamp("2024-06-20"), pd.Timestamp("2024-07-01"), end_given=True)
    _check_as_of(pd.Timestamp("2024-07-02"), result)  # the day after the extract: the usual scoring date
    with pytest.raises(
        ScoringError, match=r"--as-of 2030-01-01 is after the data: .* observed up to 2024-07-01 \(the end date given\)"
    ):
        _check_as_of(pd.Timestamp("2030-01-01"), result)


def test_training_before_anyone_signed_up_says_so(tmp_path: Path):
    from pipelines.errors import UserError
    from pipelines.stages.train import run_training
    from tests.builders import train_config

    data = _dataset(tmp_path / "in")
    config = train_config(
        data, **{"as_of.dates": ["2023-06-01"], "end_date": "2024-07-01", "horizon_days": 30, "truth": None}
    )
    with pytest.raises(UserError, match=r"no customer is in the population at any as-of date \(2023-06-01\)"):
        run_training(config)


def test_recovery_without_retention_actions_says_so(tmp_path: Path, capsys):
    data = _dataset(tmp_path / "in")
    (data / "churn_events.csv").write_text("customer_id,churn_date\nc1,2024-05-01\n")
    args = [
        "recover",
        "--data",
        str(data),
        "--from",
        "2024-01-01",
        "--to",
        "2024-03-01",
        "--end-date",
        "2024-06-30",
        "--no-tiers",
    ]
    assert main([*args, "--out", str(tmp_path / "rec")]) == EXIT_INPUT
    assert "the dataset has no retention actions" in capsys.readouterr().err


def test_a_count_that_is_not_a_number_is_named(tmp_path: Path, capsys):
    with pytest.raises(SystemExit):
        main(
            [
                "snapshot",
                "--data",
                str(tmp_path),
                "--out",
                str(tmp_path / "s.parquet"),
                "--as-of",
                "2024-01-01",
                "--horizon-days",
                "abc",
            ]
        )
    assert "argument --horizon-days: expected a whole number, got 'abc'" in capsys.readouterr().err


def test_attribute_overrides_read_the_header_in_the_given_encoding(tmp_path: Path, capsys):
    data = tmp_path / "in"
    data.mkdir()
    (data / "customers.csv").write_bytes(
        "customer_id,signup_date,monthly_revenue,city\nc1,2024-01-01,10,Montr\xe9al\n".encode("latin-1")
    )
    args = [
        "validate",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "out"),
        "--end-date",
        "2024-06-30",
        "--encoding",
        "latin-1",
    ]
    assert main([*args, "--attribute", "city=category"]) == 0
    assert main([*args, "--attribute", "town=category"]) == EXIT_INPUT
    assert "has no attribute column 'town'" in capsys.readouterr().err


def test_a_configs_end_date_is_not_another_datasets(tmp_path: Path, caplog):
    import argparse

    from pipelines.cli import _own_end_date

    config = load_config(None, {"end_date": "2026-06-30"}, ScoreConfig)
    other = argparse.Namespace(data=tmp_path, end_date=None)
    assert _own_end_date(config, other).end_date is None
    assert "the config's end_date 2026-06-30 is its own dataset's" in caplog.text
    assert _own_end_date(config, argparse.Namespace(data=None, end_date=None)).end_date == "2026-06-30"
    given = argparse.Namespace(data=tmp_path, end_date=pd.Timestamp("2024-06-30"))
    assert _own_end_date(load_config(None, {"end_date": "2024-06-30"}, ScoreConfig), given).end_date == "2024-06-30"
