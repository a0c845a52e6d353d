"""`churn monitor` as an analyst reads it: realised performance of each scoring run once its outcomes are in."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from pipelines.cli import EXIT_GATE, main
from tests.builders import quick_score_config

pytestmark = pytest.mark.slow
CLOSED, PENDING = "2026-03-01", "2026-07-01"  # a 90-day window closes by the extract date 2026-06-30; one does not


def _score(data: Path, out: Path, as_of: str, config: Path) -> int:
    argv = ["score", "--as-of", as_of, "--data", str(data), "--out", str(out), "--end-date", "2026-06-30"]
    return main([*argv, "--config", str(config)])


def _monitor(data: Path, scores: Path, out: Path, *extra: str) -> int:
    argv = ["monitor", "--data", str(data), "--scores", str(scores), "--out", str(out), "--end-date", "2026-06-30"]
    return main([*argv, *extra])


@pytest.fixture(scope="module")
def scored(trained_default, default_dataset, tmp_path_factory) -> tuple[Path, Path]:
    data, _, _ = default_dataset
    scores = tmp_path_factory.mktemp("monitor-scores")
    config = quick_score_config(tmp_path_factory.mktemp("monitor-config") / "score.yaml")  # monitoring never reads
    for as_of in (CLOSED, PENDING):  # recent campaigns' adjustment: not paid for here
        assert _score(data, scores, as_of, config) == 0
    return data, scores


def test_each_closed_run_is_measured_on_its_untreated_customers_and_logged(scored, tmp_path, capsys):
    data, scores = scored
    assert _monitor(data, scores, tmp_path) == 0
    out = capsys.readouterr().out
    assert f"{PENDING} churn-propensity" in out and "waiting for outcomes" in out
    client = MlflowClient()
    runs = client.search_runs(
        [client.get_experiment_by_name("churn-monitoring").experiment_id],
        f"params.as_of = '{CLOSED}'",
        order_by=["attributes.start_time DESC"],
    )
    assert runs and not client.search_runs(
        [client.get_experiment_by_name("churn-monitoring").experiment_id], f"params.as_of = '{PENDING}'"
    )  # nothing is measured before its window closes
    m, p = runs[0].data.metrics, runs[0].data.params
    assert 0.6 < m["realised_roc_auc"] <= 1 and 0 <= m["realised_ece"] < 0.05 and m["realised_lift_at_10"] > 1
    assert {"expected_roc_auc", "expected_ece"} <= set(m)  # the model's own test figures beside them
    scored_rows = len(pd.read_parquet(scores / f"as_of={CLOSED}" / "scores.parquet", columns=["customer_id"]))
    assert m["evaluated_customers"] + m["treated_set_aside"] == scored_rows and m["treated_set_aside"] > 0
    # the scoring run it measured carries the realised figures too, and the monitoring run names it
    scoring = client.get_run(p["scoring_run_id"])
    assert scoring.data.params["as_of"] == CLOSED and scoring.data.metrics["realised_roc_auc"] == m["realised_roc_auc"]
    html = (tmp_path / "report.html").read_text()
    for section in ("Every scoring run", "Realised against expected", "Reliability", "Promotion history"):
        assert section in html, section


def test_a_floor_on_realised_performance_fails_monitor_and_scoring_after_writing(scored, tmp_path):
    data, scores = scored
    config = quick_score_config(tmp_path / "score.yaml", "monitor:\n  min_roc_auc: 0.99\n")
    assert _monitor(data, scores, tmp_path / "mon", "--config", str(config)) == EXIT_GATE
    assert (tmp_path / "mon" / "report.html").exists()
    client = MlflowClient()
    experiment = client.get_experiment_by_name("churn-monitoring").experiment_id
    assert len(client.search_runs([experiment], f"params.as_of = '{CLOSED}'")) == 1  # measured once, not per rerun
    # scoring with a floor measures the runs whose outcomes are in and exits 1 after writing its own scores
    assert _score(data, scores, PENDING, config) == EXIT_GATE
    assert (scores / f"as_of={PENDING}" / "scores.parquet").exists()
