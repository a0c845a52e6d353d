"""Copy the latest training and uplift reports out of MLflow into a folder, for a browser or ``make screenshots``.

The training report and the uplift report live in their MLflow runs (``training_report.html``,
``uplift_report.html``); the scoring, recovery and monitoring reports are files already. Usage:
``python -m pipelines.reporting.fetch --out data/screenshots`` writes ``training.html`` and ``uplift.html`` (one
for each experiment that has a run with its report).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from models.registry import tracking_uri
from pipelines.config import TrainConfig, UpliftConfig, load_config

REPORTS = {"training": (TrainConfig, "training_report.html"), "uplift": (UpliftConfig, "uplift_report.html")}


def latest_report(experiment: str, artifact: str) -> str | None:
    """The run id of the newest finished run in ``experiment`` that logged ``artifact``, or None."""
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = client.search_runs([found.experiment_id], "attributes.status = 'FINISHED'", order_by=["start_time DESC"])
    for run in runs:
        if artifact in {a.path for a in client.list_artifacts(run.info.run_id)}:
            return run.info.run_id
    return None


def fetch(out: Path, experiments: dict[str, str | None] | None = None) -> list[Path]:
    """Write each experiment's latest report into ``out``; return the files written.

    ``experiments`` names the experiment of ``training`` and ``uplift`` runs; missing or None: the default config's.
    """
    mlflow.set_tracking_uri(tracking_uri())
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (kind, artifact) in REPORTS.items():
        experiment = (experiments or {}).get(name) or load_config(None, kind=kind).mlflow.experiment
        run_id = latest_report(experiment, artifact)
        if run_id is None:
            print(
                f"no finished run with {artifact} in experiment {experiment}: run `make train` first", file=sys.stderr
            )
            continue
        local = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/{artifact}")
        written.append(Path(shutil.copyfile(local, out / f"{name}.html")))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for training.html and uplift.html")
    for name in REPORTS:
        parser.add_argument(f"--{name}-experiment", help=f"the {name} runs' MLflow experiment (default: its config's)")
    args = parser.parse_args(argv)
    for path in fetch(args.out, {"training": args.training_experiment, "uplift": args.uplift_experiment}):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
