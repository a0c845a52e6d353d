"""MLflow tracking location, model registry and the champion/challenger decision."""

from __future__ import annotations

import logging
import os
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.tracking.context.registry import resolve_tags
from packaging.requirements import InvalidRequirement, Requirement

from models.errors import ModelInputError, ModelNotFoundError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
CHAMPION, CHALLENGER = "champion", "challenger"


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set (a shared server), else a SQLite file at the repository root."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{REPO_ROOT / 'mlflow.db'}"


def artifact_root() -> str:
    """Where new experiments keep artifacts: beside the SQLite file unless a server decides."""
    return os.environ.get("CHURN_ARTIFACT_ROOT") or (REPO_ROOT / "mlartifacts").as_uri()


def use_experiment(name: str) -> str:
    """Point MLflow at the tracking store and the experiment (created with an explicit artifact location)."""
    mlflow.set_tracking_uri(tracking_uri())
    client = MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        experiment_id = client.create_experiment(name, artifact_location=f"{artifact_root()}/{name}")
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def start_job_run(experiment_id: str, run_name: str, started: float):
    """The job's MLflow run, begun when the job began (``started``: ``time.time()``), so that the run's duration in
    the UI is the job's, not the few seconds of logging at its end. Use as ``with start_job_run(...) as run:``."""
    client = MlflowClient()
    tags = resolve_tags()  # the user, source and git commit mlflow.start_run would record
    created = client.create_run(experiment_id, start_time=int(started * 1000), tags=tags, run_name=run_name)
    try:
        return mlflow.start_run(run_id=created.info.run_id)
    except Exception:
        client.set_terminated(created.info.run_id, "FAILED")  # never a run left RUNNING by a start that failed
        raise


def describe_run(text: str) -> None:
    """The active run's description (markdown), which the MLflow UI shows at the top of the run's page."""
    mlflow.set_tag("mlflow.note.content", text)


def version_link(name: str, version: str) -> str:
    """A markdown link to a registered model version's page in the MLflow UI."""
    return f"[{name} v{version}](#/models/{name}/versions/{version})"


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    champion_version: str | None
    champion_metric: float | None


def champion_version(client: MlflowClient, name: str) -> str | None:
    try:
        return client.get_model_version_by_alias(name, CHAMPION).version
    except MlflowException:
        return None


def decide(
    client: MlflowClient,
    name: str,
    primary_metric: str,
    metrics: dict[str, float],
    baseline_metrics: dict[str, float],
    test_frame: pd.DataFrame,
    y_test: np.ndarray,
    metric_fn,
    min_improvement: float,
    max_ece: float,
) -> Decision:
    """Promote when the challenger beats the champion on the same test snapshot and stays calibrated.

    Without a champion, it must beat the baseline instead. ``metric_fn(y, p)``
    returns the primary metric for the champion's predictions.
    """
    value = metrics[primary_metric]
    ece = metrics["test_ece"]
    version = champion_version(client, name)
    if ece > max_ece:
        return Decision(False, f"test_ece {ece:.4f} exceeds the bound {max_ece}", version, None)
    if version is None:
        base = baseline_metrics[f"baseline_{primary_metric}"]
        beats = "beats" if value > base else "does not beat"
        reason = f"no champion yet; {primary_metric} {value:.4f} {beats} the baseline's {base:.4f}"
        return Decision(value > base, reason, None, None)
    try:
        p = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}").predict(test_frame)["churn_probability"].to_numpy()
    except (ModelInputError, MlflowException) as err:
        # The champion cannot take this snapshot (its feature columns are missing, its input schema differs) or
        # cannot be loaded: "cannot compare", decided against the baseline and said so. Any other error is a bug
        # and stops the run rather than quietly changing the decision.
        base = baseline_metrics[f"baseline_{primary_metric}"]
        return Decision(
            value > base,
            f"champion v{version} cannot score this test snapshot ({type(err).__name__}: {str(err)[:200]}); "
            f"decided against the baseline: {primary_metric} {value:.4f} vs {base:.4f}",
            version,
            None,
        )
    return _against_champion(primary_metric, value, version, float(metric_fn(y_test, p)), min_improvement)


def _against_champion(
    primary_metric: str, value: float, version: str, champ: float, min_improvement: float
) -> Decision:
    """Promote when the challenger's ``value`` beats the champion's ``champ`` by at least ``min_improvement``."""
    if value >= champ + min_improvement:
        reason = f"{primary_metric} {value:.4f} beats champion v{version} ({champ:.4f}) by >= {min_improvement}"
        return Decision(True, reason, version, champ)
    reason = f"{primary_metric} {value:.4f} does not beat champion v{version} ({champ:.4f}) by {min_improvement}"
    return Decision(False, reason, version, champ)


@dataclass(frozen=True)
class LoadedModel:
    """A registered model version, loaded: the pyfunc, the ChurnModel inside it and where it came from."""

    pyfunc: object
    model: object  # models.pyfunc.ChurnModel
    name: str
    version: str
    run_id: str


def load_model(uri: str) -> LoadedModel:
    """Load ``NAME@ALIAS`` from the registry; a missing alias is a clear error.

    The alias is resolved once and that version's artifacts are loaded (``models:/NAME@ALIAS`` would make pyfunc ask
    the registry again). MLflow's own check of the model's environment is replaced by
    :func:`warn_on_environment_mismatch`, which gives the same warnings for a fraction of its cost.
    """
    if "@" not in uri:
        raise ModelNotFoundError(f"--model must be NAME@ALIAS (e.g. churn-propensity@champion), got {uri!r}")
    name, alias = uri.split("@", 1)
    mlflow.set_tracking_uri(tracking_uri())
    try:
        version = MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException as err:
        raise ModelNotFoundError(
            f"no model version of {name!r} has the alias {alias!r} in {tracking_uri()}: train and promote one first"
        ) from err
    local = Path(mlflow.artifacts.download_artifacts(version.source))
    pyfunc = mlflow.pyfunc.load_model(str(local), suppress_warnings=True)
    warn_on_environment_mismatch(local, pyfunc.metadata.flavors.get("python_function", {}).get("python_version"))
    return LoadedModel(pyfunc, pyfunc.unwrap_python_model(), name, str(version.version), version.run_id)


def warn_on_environment_mismatch(model_dir: Path, python_version: str | None) -> None:
    """Warn when the running Python or an installed package differs from what the model was logged with.

    The warnings ``mlflow.pyfunc.load_model`` gives, without its first step: it maps every installed distribution to
    its modules (about 0.4 s here) when the model's pinned requirements need only their own versions.
    """
    running = platform.python_version()
    if python_version is None:
        log.warning("the model does not say which Python it was logged with; running Python %s", running)
    elif python_version.split(".")[:2] != running.split(".")[:2]:
        log.warning("the model was logged with Python %s and may not load in Python %s", python_version, running)
    requirements = model_dir / "requirements.txt"
    lines = requirements.read_text().splitlines() if requirements.exists() else []
    mismatched = [m for m in map(_requirement_mismatch, lines) if m is not None]
    if mismatched:
        log.warning(
            "the model's dependencies differ from this Python environment: %s; "
            "mlflow.pyfunc.get_model_dependencies(model_uri) gives the model's environment",
            "; ".join(mismatched),
        )


def _requirement_mismatch(line: str) -> str | None:
    """``PACKAGE (current: VERSION, required: LINE)`` when the installed package does not satisfy ``line``."""
    try:
        requirement = Requirement(line.strip())
    except InvalidRequirement:  # a blank line, comment, option, path or URL: nothing to compare
        return None
    if requirement.marker and not requirement.marker.evaluate():
        return None
    try:
        installed = mlflow.__version__ if requirement.name == "mlflow" else metadata.version(requirement.name)
    except metadata.PackageNotFoundError:
        installed = None
    if installed is not None and requirement.specifier.contains(installed):
        return None
    return f"{requirement.name} (current: {installed or 'uninstalled'}, required: {line.strip()})"
