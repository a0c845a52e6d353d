"""The `churn` command as users and schedulers call it: help, outputs, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from features.config import FeatureError
from models.errors import ModelInputError
from pipelines.cli import EXIT_BUG, EXIT_GATE, EXIT_INPUT, main
from pipelines.config import ConfigError

CHURN = [sys.executable, "-m", "pipelines.cli"]


@pytest.mark.parametrize("command", ["generate", "validate", "snapshot", "train", "score", "recover"])
def test_every_subcommand_has_help(command):
    out = subprocess.run([*CHURN, command, "--help"], capture_output=True, text=True, check=True)
    assert "usage: churn " + command in out.stdout


def test_generate_prints_and_saves_the_oracle(tmp_path: Path, capsys):
    assert (
        main(
            [
                "generate",
                "--customers",
                "500",
                "--months",
                "8",
                "--seed",
                "1",
                "--out",
                str(tmp_path / "d"),
                "--horizon-days",
                "60",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "oracle ROC AUC" in out and "horizon 60d" in out
    summary = json.loads((tmp_path / "d_truth" / "summary.json").read_text())
    assert 0.5 < summary["oracle_roc_auc"] <= 1.0
    assert summary["oracle_horizon_days"] == 60
    assert not (tmp_path / "d" / "summary.json").exists()  # truth stays out of the dataset


def test_validate_snapshot_round_trip(small_dataset, tmp_path: Path, capsys):
    data, _, _ = small_dataset
    assert (
        main(["validate", "--data", str(data), "--out", str(tmp_path / "v"), "--end-date", "2026-06-30", "--strict"])
        == 0
    )
    assert "accounting holds" in capsys.readouterr().out
    out = tmp_path / "snap.parquet"
    args = ["snapshot", "--data", str(data), "--end-date", "2026-06-30", "--horizon-days", "90", "--out", str(out)]
    assert main([*args, "--as-of", "2026-02-01", "--as-of", "2026-03-01", "--as-of", "2026-05-01"]) == 0
    snap = pd.read_parquet(out)
    assert sorted(snap["as_of"].unique()) == list(pd.to_datetime(["2026-02-01", "2026-03-01", "2026-05-01"]))
    # 2026-05-01 + 90 days reaches past 2026-06-30: built for scoring, not labelled
    assert snap.loc[snap["as_of"] == "2026-05-01", "churned"].isna().all()
    assert snap.loc[snap["as_of"] < "2026-05-01", "churned"].notna().all()


def test_strict_fails_after_writing_the_report(tmp_path: Path, capsys):
    data = tmp_path / "bad"
    data.mkdir()
    (data / "customers.csv").write_text("customer_id,signup_date,monthly_revenue\na,2024-01-01,10\nb,2024-01-01,-3\n")
    code = main(["validate", "--data", str(data), "--out", str(tmp_path / "v"), "--end-date", "2025-01-01", "--strict"])
    assert code == EXIT_GATE
    assert "1 row(s) quarantined" in capsys.readouterr().err
    assert json.loads((tmp_path / "v" / "report.json").read_text())["tables"]["customers"]["by_reason"] == {
        "negative_monthly_revenue": 1
    }


def test_structural_error_is_one_line_and_nonzero(tmp_path: Path):
    data = tmp_path / "bad"
    data.mkdir()
    (data / "customers.csv").write_text("customer_id,monthly_revenue\na,10\n")
    proc = subprocess.run(
        [*CHURN, "validate", "--data", str(data), "--out", str(tmp_path / "v")], capture_output=True, text=True
    )
    assert proc.returncode == EXIT_INPUT
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("churn validate: error:") and "customers.csv" in last and "signup_date" in last


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("features.windows_days: bad"), EXIT_INPUT),
        (FeatureError("customers has no column 'Age'"), EXIT_INPUT),
        (ModelInputError("no churners"), EXIT_INPUT),
        (FileNotFoundError("no such file: x.yaml"), EXIT_INPUT),
        (PermissionError(13, "Permission denied", "customers.csv"), EXIT_INPUT),  # a file the user may not read
        (IsADirectoryError(21, "Is a directory", "customers.csv"), EXIT_INPUT),
        (ValueError("internal: cannot reshape"), EXIT_BUG),  # a bug is not bad input, whatever its class
        (KeyError("lgbm"), EXIT_BUG),
    ],
)
def test_user_errors_exit_2_and_bugs_exit_3(tmp_path: Path, monkeypatch, capsys, error, code):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr("pipelines.engines.InMemory.validate", fail)
    assert main(["validate", "--data", str(tmp_path), "--out", str(tmp_path / "v")]) == code
    err = capsys.readouterr().err
    assert (
        err.strip().splitlines()[-1].startswith("churn validate: error: " + ("unexpected " if code == EXIT_BUG else ""))
    )


def test_snapshot_builds_the_features_the_training_config_sets(small_dataset, tmp_path: Path):
    """churn snapshot reads the feature settings of the training config, so it and churn train build the same table."""
    data, _, _ = small_dataset
    config = tmp_path / "train.yaml"
    config.write_text("horizon_days: 60\nfeatures:\n  windows_days: [14, 60]\n  exclude_columns: [plan]\n")
    out = tmp_path / "snap.parquet"
    args = ["snapshot", "--data", str(data), "--end-date", "2026-06-30", "--as-of", "2026-03-01", "--out", str(out)]
    assert main([*args, "--config", str(config)]) == 0
    snap = pd.read_parquet(out)
    assert "n_interactions_14d" in snap and "n_interactions_30d" not in snap
    assert "rate_trend_login_14d_vs_365d" in snap and "plan" not in snap
    assert "btyd_expected_purchases_60d" in snap  # the config's horizon
    assert main([*args, "--config", str(config), "--horizon-days", "30"]) == 0  # a flag overrides the config
    assert "btyd_expected_purchases_30d" in pd.read_parquet(out)
