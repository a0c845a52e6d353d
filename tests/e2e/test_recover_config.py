"""`churn recover --config`: its own `recover:` section of the scoring config, flags over it, the resolved config
logged with the run."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from pipelines.cli import EXIT_INPUT, main

PERIOD = ["--from", "2024-01-01", "--to", "2024-03-01"]


def _dataset(folder: Path) -> Path:
    """200 customers, one action each on 2024-02-01: 100 treated (10 churn), 100 controls (25 churn)."""
    folder.mkdir(parents=True)
    ids = [f"c{i:03d}" for i in range(200)]
    pd.DataFrame(
        {"customer_id": ids, "signup_date": "2023-01-01", "monthly_revenue": 10.0, "location_id": ["L1", "L2"] * 100}
    ).to_csv(folder / "customers.csv", index=False)
    pd.DataFrame(
        {"customer_id": ids, "action_date": "2024-02-01", "group": ["treatment"] * 100 + ["control"] * 100}
    ).to_csv(folder / "retention_actions.csv", index=False)
    churned = ids[:10] + ids[100:125]
    pd.DataFrame({"customer_id": churned, "churn_date": "2024-02-15"}).to_csv(folder / "churn_events.csv", index=False)
    return folder


def _config(folder: Path, recover_section: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "nightly.yaml"
    path.write_text(f"data: ../in\nend_date: 2024-06-30\nrecover:\n{recover_section}")
    return path


def test_recover_reads_its_section_flags_override_it_and_the_run_logs_the_resolved_config(tmp_path, capsys):
    _dataset(tmp_path / "in")
    section = (
        "  out: results\n"
        "  experiment: test-recover-config\n"
        "  horizon_days: 60\n"
        "  bootstrap:\n    resamples: 200\n    confidence: 0.9\n    seed: 7\n"
    )
    config = _config(tmp_path / "conf", section)
    assert main(["recover", "--config", str(config), *PERIOD, "--horizon-days", "30", "--no-tiers"]) == 0
    assert "90% interval" in capsys.readouterr().out  # the section's confidence
    folder = tmp_path / "conf" / "results" / "recover_2024-01-01_2024-03-01"  # recover.out is the file's path
    table = pd.read_parquet(folder / "recovery.parquet")
    assert table.iloc[0]["saved_customers"] == (0.25 - 0.10) * 100
    assert set(table["segment"]) == {"overall", "location_id"}  # --no-tiers over recover.tiers: true

    client = MlflowClient()
    run = client.search_runs([client.get_experiment_by_name("test-recover-config").experiment_id])[0]
    assert run.data.params["horizon_days"] == "30"  # the flag over the file's 60
    resolved = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/config/resolved_config.json")
    # the keys recover reads (its own and those it shares with scoring, engine and partitions too), no scoring-only ones
    assert set(resolved) == {"data", "end_date", "input", "engine", "partitions", "model", "risk_tiers", "save_value",
                             "recover"}  # fmt: skip
    assert resolved["data"] == str(tmp_path / "in") and resolved["end_date"] == "2024-06-30"
    assert resolved["recover"]["horizon_days"] == 30 and resolved["recover"]["tiers"] is False
    assert resolved["recover"]["bootstrap"] == {"resamples": 200, "confidence": 0.9, "seed": 7}
    assert resolved["recover"]["out"] == str(tmp_path / "conf" / "results")


def test_an_unknown_key_in_the_recover_section_is_refused_by_name(tmp_path, capsys):
    _dataset(tmp_path / "in")
    config = _config(tmp_path / "conf", "  bootstrap:\n    level: 0.9\n")
    assert main(["recover", "--config", str(config), *PERIOD, "--no-tiers"]) == EXIT_INPUT
    assert "recover.bootstrap: unknown key(s) ['level']" in capsys.readouterr().err
    assert not (tmp_path / "conf" / "results").exists()
