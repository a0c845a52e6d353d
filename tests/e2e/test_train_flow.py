"""`churn train` as a data scientist runs it, the registry as a scorer reads it, the notebook as an analyst opens it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from pipelines.cli import main

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_the_latest_training_report_is_fetched_from_mlflow_for_a_browser(trained_default, tmp_path):
    from pipelines.reporting.fetch import fetch

    written = fetch(tmp_path, {"training": "test-default", "uplift": "no-such-experiment"})
    assert tmp_path / "training.html" in written  # the default model has no uplift run: only the training report
    assert f"v{trained_default.model_version}" in (tmp_path / "training.html").read_text()


def test_run_holds_every_artifact(trained_default):
    client = MlflowClient()
    run_id = trained_default.run_id
    run = client.get_run(run_id)
    # for analysts: the run lasts as long as the job, and its description gives the figures and the decision
    assert (run.info.end_time - run.info.start_time) / 1000 >= 0.9 * run.data.metrics["train_job_seconds"] > 10
    note = run.data.tags["mlflow.note.content"]
    assert f"churn-propensity v{trained_default.model_version}" in note and "promoted" in note
    assert f"{run.data.metrics['test_roc_auc']:.4f}" in note
    files = set()
    stack = [""]
    while stack:
        for f in client.list_artifacts(run_id, stack.pop()):
            (stack.append(f.path) if f.is_dir else files.add(f.path))
    for expected in (
        "plots/roc.png",
        "plots/pr.png",
        "plots/calibration.png",
        "plots/gains.png",
        "plots/feature_importance.png",
        "plots/shap_summary.png",
        "model_card.md",
        "training_report.html",
        "evaluation/segments.json",
        "validation/report.json",
        "config/resolved_config.json",
    ):
        assert expected in files, expected
    run = client.get_run(run_id)
    report = mlflow.artifacts.load_text(f"runs:/{run_id}/training_report.html")
    decision = "promoted to champion" if trained_default.promoted else "not promoted"
    assert f"churn-propensity v{trained_default.model_version} {decision}" in report.split("<h2>")[0]  # first
    assert f"{run.data.metrics['test_roc_auc']:.4f}" in report and report.count("data:image/png;base64,") == 6
    assert {i.dataset.name for i in run.inputs.dataset_inputs} >= {
        "customers",
        "interactions",
        "feedback",
        "training_snapshot",
    }
    assert all(len(i.dataset.digest) == 16 for i in run.inputs.dataset_inputs)
    assert run.data.tags["promotion_decision"] in ("promoted", "not_promoted") and run.data.tags["promotion_reason"]
    segments = client.load_table(run.info.experiment_id, "evaluation/segments.json", run_ids=[run_id])
    assert set(segments["segment"]) == {"tenure_band", "plan", "location_id"}
    example = json.loads(
        Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/model/input_example.json")).read_text()
    )
    assert "customer_id" not in json.dumps(example)


def test_champion_loads_in_a_separate_process_and_predicts_probabilities(trained_default, default_dataset, tmp_path):
    data, _, _ = default_dataset
    snap = tmp_path / "snap.parquet"
    assert (
        main(["snapshot", "--data", str(data), "--end-date", "2026-06-30", "--as-of", "2026-06-01", "--out", str(snap)])
        == 0
    )
    script = (
        "import mlflow, pandas as pd, sys\n"
        "m = mlflow.pyfunc.load_model('models:/churn-propensity@champion')\n"
        f"rows = pd.read_parquet({str(snap)!r})\n"
        "p = m.predict(rows)['churn_probability']\n"
        "assert len(p) == len(rows) and p.between(0, 1).all(), p.describe()\n"
        "print(len(p), float(p.mean()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=os.environ.copy(), cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-3000:]
    n, mean = out.stdout.split()
    assert int(n) > 1000 and 0.005 < float(mean) < 0.2


def test_second_run_registers_a_new_version_with_a_decision(trained_default, default_dataset, tmp_path, capsys):
    data, _, _ = default_dataset
    client = MlflowClient()
    # what this checks is the registry's decision, not the model: 2 search trials instead of 8 (~75 s less)
    shipped = (REPO / "pipelines" / "conf" / "train.yaml").read_text()
    assert "    trials: 8 " in shipped
    config = tmp_path / "train.yaml"
    config.write_text(shipped.replace("    trials: 8 ", "    trials: 2 "))
    argv = ["train", "--config", str(config), "--data", str(data), "--end-date", "2026-06-30"]
    assert main([*argv, "--experiment", "test-default"]) == 0
    out = capsys.readouterr().out
    assert "promotion:" in out and "make ui" in out
    versions = client.search_model_versions("name='churn-propensity'")
    newest = max(versions, key=lambda v: int(v.version))
    assert int(newest.version) == int(trained_default.model_version) + 1
    assert newest.tags["promotion_decision"] in ("promoted", "not_promoted")
    # the same data and seed with the first 2 of the champion's 8 trials: it cannot beat the champion
    assert (
        newest.tags["promotion_decision"] == "not_promoted"
        and "does not beat champion" in newest.tags["promotion_reason"]
    ), newest.tags["promotion_reason"]
    assert client.get_model_version_by_alias("churn-propensity", "challenger").version == newest.version


def test_notebook_runs_end_to_end(trained_default, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(REPO / "notebooks" / "review_experiments.ipynb", as_version=4)
    os.environ["CHURN_EXPERIMENT"] = "test-default"
    try:
        NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO / "notebooks")}}
        ).execute()
    finally:
        os.environ.pop("CHURN_EXPERIMENT", None)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = json.dumps([o.get("data", {}).get("text/plain", "") for o in outputs])
    assert trained_default.run_id in text and "champion v" in text and "tenure_band" in text
