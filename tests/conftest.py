"""Shared fixtures: generated datasets live in pytest's temporary folders, never in the repo."""

from __future__ import annotations

from pipelines.compat import skip_pyspark_pandas

skip_pyspark_pandas()  # before anything imports pandera (see pipelines/compat.py)

import contextlib
import dataclasses
import fcntl
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import mlflow
import pytest

from pipelines.simulation.generate import write_synthetic
from pipelines.simulation.synthetic import SyntheticConfig
from tests.builders import train_config


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory):
    """Every test logs to a throwaway SQLite store and artifact folder, never the repository's."""
    root = tmp_path_factory.mktemp("mlflow")
    with _mlflow_env(f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri()):
        yield root


@pytest.fixture(scope="session")
def trained_default(default_dataset, mlflow_store, tmp_path_factory):
    """`make train`'s job on the default synthetic data, run once per test run and shared by the xdist workers.

    The first worker to ask trains into a store of its own beside the shared datasets; every worker then switches
    to a copy of that store's database (``mlflow_store`` is only this worker's until then: what ran before stays in
    the old one). The copied runs read their artifacts from the first store's folder, which only gains new runs'.
    Saves one ~100 s training per worker that needs the model.
    """
    from pipelines.stages.train import TrainingResult, run_training

    data, _, _ = default_dataset
    template = _run_folder(tmp_path_factory) / "trained-default"

    def train(folder: Path) -> dict:
        folder.mkdir(parents=True, exist_ok=True)
        with _mlflow_env(f"sqlite:///{folder / 'mlflow.db'}", (folder / "artifacts").as_uri()):
            return dataclasses.asdict(run_training(train_config(data, **{"mlflow.experiment": "test-default"})))

    result = TrainingResult(**_once(template, train))  # the first worker trains under the lock, the others wait
    own = mlflow_store / "with-trained-default.db"
    source, copy = sqlite3.connect(template / "mlflow.db"), sqlite3.connect(own)
    try:
        source.backup(copy)
    finally:
        source.close()
        copy.close()
    _point_mlflow_at(f"sqlite:///{own}")
    return dataclasses.replace(result, tracking_uri=f"sqlite:///{own}")  # this worker's store, never the template


@contextlib.contextmanager
def _mlflow_env(tracking_uri: str, artifact_root: str):
    """MLflow's tracking store and the project's artifact root set to these for the block, restored after.

    Both the variables and MLflow's own setting: the pipeline calls ``mlflow.set_tracking_uri``, which outranks the
    variable for every later ``MlflowClient()``.
    """
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "CHURN_ARTIFACT_ROOT")}
    _point_mlflow_at(tracking_uri)
    os.environ["CHURN_ARTIFACT_ROOT"] = artifact_root
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        mlflow.set_tracking_uri(saved["MLFLOW_TRACKING_URI"])


def _point_mlflow_at(tracking_uri: str) -> None:
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    mlflow.set_tracking_uri(tracking_uri)


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
