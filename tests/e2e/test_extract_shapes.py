"""The shapes of extract users bring (a static customer table, a transaction log, the full contract), from CSV and
from parquet, each through train, score and recover with the real commands."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from pipelines.cli import main

pytestmark = pytest.mark.slow
END = "2026-06-30"
SHAPES = {
    # a customer table with churn events (and the campaigns run on it): no event history at all
    "static": (("customers", "churn_events", "retention_actions"), "events"),
    # a transaction log: no surveys, no churn events; churn is inactivity
    "transactions": (("customers", "interactions", "retention_actions"), "inactivity"),
    "full": (("customers", "interactions", "feedback", "churn_events", "retention_actions"), "events"),
}


def _extract(source: Path, out: Path, tables: tuple[str, ...], fmt: str) -> Path:
    out.mkdir(parents=True)
    for name in tables:
        if fmt == "parquet":
            shutil.copy(source / f"{name}.parquet", out / f"{name}.parquet")
        else:
            frame = pd.read_parquet(source / f"{name}.parquet")
            for col in frame.columns:
                if pd.api.types.is_datetime64_any_dtype(frame[col]):
                    frame[col] = frame[col].dt.strftime("%Y-%m-%dT%H:%M:%S")  # what a warehouse export writes
            frame.to_csv(out / f"{name}.csv", index=False)
    return out


# Each shape once and each format at least once (every run trains a model: the suite's time budget is 10 minutes);
# the default-data tests cover the full contract from parquet.
@pytest.mark.parametrize(("shape", "fmt"), [("static", "csv"), ("transactions", "parquet"), ("full", "csv")])
def test_every_shape_trains_scores_and_recovers(small_dataset, tmp_path: Path, shape: str, fmt: str, capsys):
    source, _, _ = small_dataset
    tables, label = SHAPES[shape]
    data = _extract(source, tmp_path / "extract", tables, fmt)
    config = tmp_path / "train.yaml"
    model = f"shape-{shape}-{fmt}"
    shipped = (Path(__file__).resolve().parents[2] / "pipelines" / "conf" / "train.yaml").read_text()
    config.write_text(
        re.sub(r"\n    trials: \d+ ", "\n    trials: 3 ", shipped)
        .replace("data: ../../data/synthetic", f"data: {data}")
        .replace("truth: auto", "truth: null")
        .replace("  start: 2025-01-01", "  start: 2025-07-01")
        .replace("  step_months: 1", "  step_months: 3")
        .replace("registered_model: churn-propensity", f"registered_model: {model}")
        .replace("shap_sample: 2000", "shap_sample: 200")
    )
    assert "    trials: 3 " in config.read_text()  # a short search: this test is about shapes, not quality
    assert f"data: {data}" in config.read_text()
    assert main(["train", "--config", str(config), "--label", label, "--experiment", f"test-{model}"]) == 0
    out = capsys.readouterr().out
    assert "test ROC AUC" in out

    scores = tmp_path / "scores"
    assert (
        main(
            [
                "score",
                "--as-of",
                "2026-07-01",
                "--data",
                str(data),
                "--model",
                f"{model}@challenger",
                "--end-date",
                END,
                "--out",
                str(scores),
            ]
        )
        == 0
    )
    scored = pd.read_parquet(scores / "as_of=2026-07-01" / "scores.parquet")
    assert len(scored) > 500 and scored["churn_probability"].between(0, 1).all()

    assert (
        main(
            [
                "recover",
                "--data",
                str(data),
                "--from",
                "2025-07-01",
                "--to",
                "2026-03-31",
                "--end-date",
                END,
                "--model",
                f"{model}@challenger",
                "--label",
                label,
                "--out",
                str(tmp_path / "recovery"),
            ]
        )
        == 0
    )
    assert "saved customers" in capsys.readouterr().out
