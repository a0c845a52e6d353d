"""Drift as a scheduled scoring job meets it: quiet on the default data, loud where a known change was injected."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from models.drift import FEED
from pipelines.cli import EXIT_GATE, main
from pipelines.simulation.generate import write_synthetic
from pipelines.simulation.synthetic import SyntheticConfig
from tests.builders import quick_score_config

pytestmark = pytest.mark.slow
AS_OF = "2026-07-01"
SINCE = "2026-04-15"  # after the model's reference date (2026-04-01), before scoring


def _score(data: Path, out: Path, settings: str = "") -> int:
    """``churn score`` without the adjustment of recent campaigns (drift never reads it), with ``settings`` YAML."""
    out.mkdir(parents=True, exist_ok=True)
    config = quick_score_config(out / "score.yaml", settings)
    argv = ["score", "--as-of", AS_OF, "--data", str(data), "--out", str(out), "--end-date", "2026-06-30"]
    return main([*argv, "--config", str(config)])


def _latest_run():
    client = MlflowClient()
    runs = client.search_runs(
        [client.get_experiment_by_name("churn-scoring").experiment_id], order_by=["attributes.start_time DESC"]
    )
    return runs[0]


def _drift_table(run) -> dict[str, dict]:
    import mlflow

    table = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/drift/psi.json")
    rows = [dict(zip(table["columns"], r, strict=True)) for r in table["data"]]
    return {r["name"]: r for r in rows}


def _drifted(tmp_path: Path, drift: str) -> Path:
    """The default dataset (same seed: the same world up to the change) with ``drift`` from ``SINCE``."""
    config = SyntheticConfig(drift=drift, drift_from=SINCE)
    write_synthetic(config, tmp_path / "data", tmp_path / "data_truth", None, 90)
    return tmp_path / "data"


def test_the_default_data_flags_at_most_two_checks(trained_default, default_dataset, tmp_path):
    data, _, _ = default_dataset
    assert _score(data, tmp_path) == 0
    run = _latest_run()
    assert run.data.metrics["drift_flagged_checks"] <= 2
    assert run.data.metrics["drift_checks"] > 50  # every feature, the score's distribution and its mean were checked
    feeds = {name: row for name, row in _drift_table(run).items() if name.startswith(FEED)}
    assert {f"{FEED}interactions:login", f"{FEED}feedback:NPS"} <= set(feeds)  # every data feed's completeness
    assert not any(row["flagged"] for row in feeds.values())


def test_an_app_outage_is_flagged_in_the_usage_features_and_the_expected_churn_rate(trained_default, tmp_path, capsys):
    data = _drifted(tmp_path, "app_outage")
    assert _score(data, tmp_path / "scores") == 0
    assert "drift flagged" in capsys.readouterr().out
    run = _latest_run()
    table = _drift_table(run)
    flagged = {name for name, row in table.items() if row["flagged"]}
    assert {"n_login_30d", "mean_churn_probability", f"{FEED}interactions:login"} <= flagged, flagged
    assert "moves the score" in table["n_login_30d"]["note"]
    assert table["mean_churn_probability"]["change"] > 0.2  # customers who cannot use the app look likelier to leave
    assert run.data.metrics["drift_flagged_checks"] == len(flagged)
    # the gate: with fail_on_drift the run still writes its scores, then exits 1
    assert _score(data, tmp_path / "gated", "drift:\n  fail_on_drift: true\n") == EXIT_GATE
    assert (tmp_path / "gated" / f"as_of={AS_OF}" / "scores.parquet").exists()


def test_a_stopped_survey_programme_is_flagged_as_stopped_feeds_though_its_features_barely_move_the_score(
    trained_default, tmp_path
):
    data = _drifted(tmp_path, "survey_stop")
    assert _score(data, tmp_path / "scores") == 0
    table = _drift_table(_latest_run())
    nps = table["nps_days_since_last"]
    assert nps["psi"] > nps["threshold"] and not nps["flagged"] and "barely moves the score" in nps["note"]
    assert not table["mean_churn_probability"]["flagged"] and not table["churn_probability"]["flagged"]
    for survey in ("NPS", "CSAT"):  # the programme stopped: its feeds are flagged whatever the model makes of them
        feed = table[f"{FEED}feedback:{survey}"]
        assert feed["flagged"] and feed["change"] < -0.9 and "stopped or thinned" in feed["note"], feed
    assert not table[f"{FEED}interactions:login"]["flagged"]  # the other feeds still deliver
