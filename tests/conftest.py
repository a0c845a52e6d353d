"""Shared fixtures: generated datasets live in pytest's temporary folders, never in the repo."""

from __future__ import annotations

from pipelines.compat import skip_pyspark_pandas

skip_pyspark_pandas()  # before anything imports pandera (see pipelines/compat.py)

import fcntl
import json
import os
from collections.abc import Callable
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
    config = SyntheticConfig(customers=2_000, months=12, seed=7)
    return _generated_once(tmp_path_factory, "small", config)


@pytest.fixture(scope="session")
def default_dataset(tmp_path_factory) -> tuple[Path, Path, dict]:
    """The default synthetic dataset (what `make data` writes), generated once per test run."""
    return _generated_once(tmp_path_factory, "default", SyntheticConfig())


def _generated_once(tmp_path_factory, name: str, config: SyntheticConfig) -> tuple[Path, Path, dict]:
    """A generated dataset shared by every xdist worker of this run: the first to take the lock writes it.

    Tests only read these folders (those that change a dataset copy it first), so sharing is safe.
    """
    root = _run_folder(tmp_path_factory) / f"dataset-{name}"

    def write(folder: Path) -> dict:
        return write_synthetic(config, folder / "synthetic", folder / "synthetic_truth", None, 90)

    summary = _once(root, write)
    return root / "synthetic", root / "synthetic_truth", summary


def _run_folder(tmp_path_factory) -> Path:
    """This test run's temporary root: shared by its xdist workers (each has a subfolder), its own otherwise."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _once(folder: Path, make: Callable[[Path], dict]) -> dict:
    """``make(folder)``'s JSON result, computed by the first process to get here and read back by the others.

    An fcntl lock (as scoring's output lock) rather than a library: the dev environment has no filelock.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    done = folder.parent / f"{folder.name}.json"
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            done.write_text(json.dumps(make(folder)))
    return json.loads(done.read_text())
