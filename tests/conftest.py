"""Shared fixtures: generated datasets live in pytest's temporary folders, never in the repo."""

from __future__ import annotations

from pipelines.compat import skip_pyspark_pandas

skip_pyspark_pandas()  # before anything imports pandera (see pipelines/compat.py)

import os
from pathlib import Path

import pytest

from pipelines.simulation.generate import write_synthetic
from pipelines.simulation.synthetic import SyntheticConfig
from tests.builders import train_config


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


@pytest.fixture(scope="session")
def trained_default(default_dataset):
    """`make train`'s job on the default synthetic data, run once per session."""
    from pipelines.stages.train import run_training

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
