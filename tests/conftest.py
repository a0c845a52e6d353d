"""Shared fixtures: generated datasets live in pytest's temporary folders, never in the repo."""

from __future__ import annotations

from pipelines.compat import skip_pyspark_pandas

skip_pyspark_pandas()  # before anything imports pandera (see pipelines/compat.py)

import os
from pathlib import Path

import pandas as pd
import pytest

from features.build import Tables
from pipelines.generate import write_synthetic
from pipelines.synthetic import SyntheticConfig

END = pd.Timestamp("2026-06-30")


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory):
    """Every test logs to a throwaway SQLite store and artifact folder, never the repository's."""
    root = tmp_path_factory.mktemp("mlflow")
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "CHURN_ARTIFACT_ROOT")}
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    os.environ["CHURN_ARTIFACT_ROOT"] = (root / "artifacts").as_uri()
    yield root
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def train_config(data: Path, **overrides):
    """The shipped YAML config pointed at ``data``, with overrides (dotted keys for sections)."""
    from pipelines.config import load_config

    return load_config(
        Path(__file__).resolve().parents[1] / "pipelines" / "conf" / "train.yaml", {"data": str(data), **overrides}
    )


@pytest.fixture(scope="session")
def trained_default(default_dataset):
    """`make train`'s job on the default synthetic data, run once per session."""
    from pipelines.train import run_training

    data, _, _ = default_dataset
    return run_training(train_config(data, **{"mlflow.experiment": "test-default"}))


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A small synthetic dataset (2,000 customers, 12 months) with its ground truth."""
    root = tmp_path_factory.mktemp("small")
    config = SyntheticConfig(customers=2_000, months=12, seed=7)
    summary = write_synthetic(config, root / "synthetic", root / "synthetic_truth", None, 90)
    return root / "synthetic", root / "synthetic_truth", summary


@pytest.fixture(scope="session")
def default_dataset(tmp_path_factory) -> tuple[Path, Path, dict]:
    """The default synthetic dataset (what `make data` writes), generated once per session."""
    root = tmp_path_factory.mktemp("default")
    summary = write_synthetic(SyntheticConfig(), root / "synthetic", root / "synthetic_truth", None, 90)
    return root / "synthetic", root / "synthetic_truth", summary


def make_tables(
    customers: pd.DataFrame,
    interactions: pd.DataFrame | None = None,
    feedback: pd.DataFrame | None = None,
    churn_events: pd.DataFrame | None = None,
    retention_actions: pd.DataFrame | None = None,
) -> Tables:
    """Typed tables from small inline frames (validated shapes, for unit tests)."""

    def frame(df, columns):
        if df is None:
            df = pd.DataFrame({c: [] for c in columns})
        df = df.copy()
        for c in df.columns:
            if c in ("signup_date", "timestamp", "churn_date", "action_date"):
                df[c] = pd.to_datetime(df[c], format="ISO8601").astype("datetime64[us]")
        return df

    return Tables(
        customers=frame(customers, ["customer_id", "signup_date", "monthly_revenue"]),
        interactions=frame(interactions, ["customer_id", "timestamp", "channel", "type", "value"]),
        feedback=frame(feedback, ["customer_id", "timestamp", "survey", "score", "callback_requested"]),
        churn_events=frame(churn_events, ["customer_id", "churn_date"]),
        retention_actions=frame(retention_actions, ["customer_id", "action_date", "group"]),
    )


def extract_folder(tmp_path: Path, files: dict[str, str | bytes | pd.DataFrame], name: str = "in") -> Path:
    """A dataset folder of hand-written extract files: text, raw bytes (odd encodings), or frames (written as
    parquet)."""
    out = tmp_path / name
    out.mkdir()
    for file, content in files.items():
        if isinstance(content, pd.DataFrame):
            content.to_parquet(out / file, index=False)
        else:
            (out / file).write_bytes(content if isinstance(content, bytes) else content.encode())
    return out


def assert_balanced(result) -> None:
    """Every table's accounting holds: rows read = kept + quarantined, and the quarantine holds every row set aside."""
    for name, r in result.report.items():
        assert r.rows_read == r.rows_kept + r.rows_quarantined, name
        if result.quarantine:
            assert r.rows_quarantined == len(result.quarantine[name]), name
