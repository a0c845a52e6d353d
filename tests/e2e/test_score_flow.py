"""`churn score` and `churn recover` as a scheduler and an analyst run them."""

from __future__ import annotations

import fcntl
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from pipelines.cli import EXIT_BUSY, EXIT_INPUT, main
from pipelines.stages.score import lock_path

pytestmark = pytest.mark.slow
AS_OF = "2026-07-01"


def _score(data: Path, out: Path, *extra: str) -> int:
    return main(["score", "--as-of", AS_OF, "--data", str(data), "--out", str(out), "--end-date", "2026-06-30", *extra])


def test_scores_are_complete_idempotent_and_spreadsheet_safe(trained_default, default_dataset, tmp_path, capsys):
    data, _, _ = default_dataset
    assert _score(data, tmp_path, "--csv") == 0
    folder = tmp_path / f"as_of={AS_OF}"
    first = (folder / "scores.parquet").read_bytes()
    scores = pd.read_parquet(folder / "scores.parquet")
    expected = {
        "customer_id",
        "as_of",
        "churn_probability",
        "risk_tier",
        "monthly_revenue",
        "annual_revenue_at_risk",
        "expected_net_value_of_contact",
        "priority_rank",
        "reason_1",
        "reason_2",
        "reason_3",
        "recent_detractor",
        "open_callback_request",
        "model_name",
        "model_version",
        "model_run_id",
    }
    assert expected <= set(scores.columns)
    assert scores["customer_id"].is_unique and scores["churn_probability"].between(0, 1).all()
    assert scores["priority_rank"].tolist() == list(range(1, len(scores) + 1))
    action = scores[scores["in_action_list"]]
    assert (
        len(action) > 100
        and action["reason_1"].notna().all()
        and scores.loc[~scores["in_action_list"], "reason_1"].isna().all()
    )
    assert (action["expected_net_value_of_contact"] > 0).all()
    assert action.groupby("location_id").size().max() <= 25
    html = (folder / "report.html").read_text()
    for section in (
        "Risk distribution",
        "Top segments",
        "Top reasons",
        "Targeting plan",
        "Profit curve",
        "Measured revenue recovered",
        "NPS weighted by revenue",
        "Drift",
    ):
        assert section in html, section
    summary_box = html.split("</div>")[0]  # a save's value from recent campaigns' follow-up, in the summary
    assert "<b>Value of a save:</b> a save is worth" in summary_box
    # recent campaigns' saving regression-adjusted as churn recover adjusts it, the plain difference in means beside it
    assert "Adjusted as <code>churn recover</code> adjusts it" in summary_box
    assert "against the plain difference in means of" in summary_box
    assert 'src="http' not in html and "<link" not in html and "<script" not in html  # self-contained
    assert "data:image/png;base64," in html
    csv = pd.read_csv(folder / "scores.csv", dtype=str)
    assert len(csv) == len(scores)
    capsys.readouterr()
    assert _score(data, tmp_path, "--csv") == 0
    assert (folder / "scores.parquet").read_bytes() == first
    runs = MlflowClient().search_runs([MlflowClient().get_experiment_by_name("churn-scoring").experiment_id])
    assert {"psi_score", "psi_max_feature", "rows_scored", "quarantined_rows_interactions", "score_mean"} <= set(
        runs[0].data.metrics
    )
    assert 6 < runs[0].data.metrics["save_value_months"] < 12  # re-churn after a save is counted
    m = runs[0].data.metrics  # recent campaigns' figures under churn recover's names: adjusted, and plain beside
    held = int((scores["assigned_group"] == "holdout").sum())  # the contacts' figures leave the holdout out
    assert m["contacted_customers"] == len(action) - held and m["contacted_cost"] == 15.0 * (len(action) - held)
    treatment = action[action["assigned_group"] == "treatment"]
    assert m["contacted_expected_customers_saved"] == pytest.approx(
        treatment["churn_probability"].sum() * m["save_rate"]
    )
    held_rows = action[action["assigned_group"] == "holdout"]
    assert m["holdout_forgone_saves"] == pytest.approx(held_rows["churn_probability"].sum() * m["save_rate"])
    assert m["recent_saved_low"] <= m["recent_saved_customers"] <= m["recent_saved_high"]
    assert (
        m["recent_unadjusted_saved_low"] <= m["recent_unadjusted_saved_customers"] <= m["recent_unadjusted_saved_high"]
    )
    assert (
        m["recent_saved_high"] - m["recent_saved_low"]
        < m["recent_unadjusted_saved_high"] - m["recent_unadjusted_saved_low"]
    )
    version = str(scores["model_version"].iloc[0])
    assert runs[0].data.tags["model_version_uri"] == f"models:/churn-propensity/{version}"
    assert (
        f"[churn-propensity v{version}](#/models/churn-propensity/versions/{version})"
        in (runs[0].data.tags["mlflow.note.content"])
    )  # the run's description links to the model version it used
    resolved = mlflow.artifacts.load_dict(f"{runs[0].info.artifact_uri}/config/resolved_config.json")
    assert resolved["model"] == "churn-propensity@champion" and "risk_tiers" in resolved  # the run's own settings


def test_scoring_a_validated_folder_gives_the_same_scores(trained_default, default_dataset, tmp_path, capsys):
    """Validate once (in 3 customer buckets), then score from the validated folder: the same bytes as from the raw
    extract."""
    data, _, _ = default_dataset
    assert _score(data, tmp_path / "raw") == 0
    assert (
        main(
            [
                "validate",
                "--data",
                str(data),
                "--out",
                str(tmp_path / "validated"),
                "--end-date",
                "2026-06-30",
                "--partitions",
                "3",
            ]
        )
        == 0
    )
    for partitions in ("1", "3"):
        out = tmp_path / f"from_validated_{partitions}"
        assert _score(tmp_path / "validated", out, "--partitions", partitions) == 0
        assert (out / f"as_of={AS_OF}" / "scores.parquet").read_bytes() == (
            tmp_path / "raw" / f"as_of={AS_OF}" / "scores.parquet"
        ).read_bytes()
        report = (out / f"as_of={AS_OF}" / "report.html").read_text().split("</div>")[0]
        # in memory recent campaigns are regression-adjusted; one bucket at a time they are the plain difference
        assert ("Adjusted as <code>churn recover</code>" in report) == (partitions == "1"), partitions
        assert ("This is the plain difference in means (not adjusted" in report) == (partitions == "3"), partitions
    assert (
        main(
            [
                "score",
                "--as-of",
                AS_OF,
                "--data",
                str(tmp_path / "validated"),
                "--out",
                str(tmp_path / "x"),
                "--end-date",
                "2026-05-31",
            ]
        )
        == EXIT_INPUT
    )
    assert "validated with end date 2026-06-30" in capsys.readouterr().err


def test_missing_alias_fails_before_writing(trained_default, default_dataset, tmp_path, capsys):
    data, _, _ = default_dataset
    assert _score(data, tmp_path, "--model", "churn-propensity@nobody") == EXIT_INPUT
    assert "has the alias 'nobody'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_scoring_reads_the_columns_the_model_was_trained_on(trained_default, small_dataset, tmp_path, capsys, caplog):
    """A new customer column is not a feature of the model (it is named in the log); a missing one stops the run before
    writing."""
    data, _, _ = small_dataset
    changed = tmp_path / "changed"
    shutil.copytree(data, changed)
    customers = pd.read_parquet(changed / "customers.parquet")
    customers.assign(loyalty_tier="gold").to_parquet(changed / "customers.parquet")
    assert _score(changed, tmp_path / "new_column") == 0
    assert "loyalty_tier" in caplog.text and "not a feature of model" in caplog.text
    customers.drop(columns=["contract"]).to_parquet(changed / "customers.parquet")
    out = tmp_path / "out"
    capsys.readouterr()
    assert _score(changed, out) == EXIT_INPUT
    assert "customers has no column 'contract'" in capsys.readouterr().err
    assert not out.exists()


def test_second_concurrent_run_fails_clearly(trained_default, default_dataset, tmp_path, capsys):
    data, _, _ = default_dataset
    folder = tmp_path / f"as_of={AS_OF}"
    tmp_path.mkdir(parents=True, exist_ok=True)
    with open(lock_path(folder), "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert _score(data, tmp_path) == EXIT_BUSY
    assert "another scoring run" in capsys.readouterr().err
    assert not (folder / "scores.parquet").exists() and not (tmp_path / "decisions").exists()  # nor a decision


def test_recover_reports_saves_with_intervals_covering_truth(trained_default, default_dataset, tmp_path, capsys):
    data, truth_dir, _ = default_dataset
    args = [
        "recover",
        "--data",
        str(data),
        "--from",
        "2025-07-01",
        "--to",
        "2026-03-31",
        "--end-date",
        "2026-06-30",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    assert "saved customers" in capsys.readouterr().out
    table = pd.read_parquet(tmp_path / "recover_2025-07-01_2026-03-31" / "recovery.parquet")
    assert set(table["segment"]) == {"overall", "location_id", "risk_tier"}
    overall = table.iloc[0]
    truth = pd.read_parquet(truth_dir / "treatment_effects.parquet")
    window = truth[
        (truth["action_date"] >= "2025-07-01")
        & (truth["action_date"] <= "2026-03-31")
        & (truth["group"] == "treatment")
    ]
    assert overall["treated"] == len(window)
    net_saves = window["saved"].sum() - window["harmed"].sum()  # what it measures: sleeping dogs count against it
    assert overall["saved_low"] <= net_saves <= overall["saved_high"]
    report = (tmp_path / "recover_2025-07-01_2026-03-31" / "report.html").read_text()
    assert "<b>Design:</b>" in report.split("</div>")[0]  # the power calculation, in the summary
    client = MlflowClient()
    run = client.search_runs(
        [client.get_experiment_by_name("churn-recovery").experiment_id], order_by=["attributes.start_time DESC"]
    )[0]
    version = client.get_model_version_by_alias("churn-propensity", "champion").version
    assert run.data.tags["model_version_uri"] == f"models:/churn-propensity/{version}"  # the tiers' model, linked
    assert f"Saved customers {overall['saved_customers']:,.1f}" in run.data.tags["mlflow.note.content"]
    m = run.data.metrics  # the design's power: what it detects, and the groups the next campaign needs
    assert 0 < m["min_detectable_saved"] < overall["treated"] and m["min_detectable_rate"] < 0.1
    assert overall["saved_customers"] > 0 and m["control_needed"] > 0 and m["treated_needed"] > 0
    # regression-adjusted on a score from before the first action, the plain difference in means beside it
    assert run.data.params["adjustment"] == overall["adjustment"] == "pre-period model"
    assert m["true_saved_customers"] == net_saves
    assert m["unadjusted_saved_low"] <= m["unadjusted_saved_customers"] <= m["unadjusted_saved_high"]
    assert m["saved_high"] - m["saved_low"] < m["unadjusted_saved_high"] - m["unadjusted_saved_low"]
    assert "plain difference in means" in report
    assert f"true net saves of these contacts are <b>{net_saves:,.0f}" in report
    outcomes = pd.read_parquet(tmp_path / "recover_2025-07-01_2026-03-31" / "outcomes.parquet")
    assert len(outcomes) == overall["treated"] + overall["control"] and outcomes["prognostic"].between(0, 1).all()
