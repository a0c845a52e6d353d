"""`churn recover` on customer partitions measures what the in-memory run measures: the same recovery figures and
the same risk tier for every action, from a raw folder and from a validated one, and a quarantined row is counted.

(Spark: tests/e2e/test_engines.py.)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.cli import EXIT_INPUT, main
from pipelines.config import ScoreConfig, SearchConfig, load_config
from pipelines.errors import UserError
from pipelines.stages.recover import recover, recover_data, tiers_at_action
from pipelines.stages.snapshot import observation_end
from pipelines.stages.train import run_training
from tests.builders import END, assert_same_recovery_and_quarantine, recovered_on_each_engine, train_config

pytestmark = pytest.mark.slow
MODEL = "recover-engines@challenger"
PERIOD = (pd.Timestamp("2025-12-01"), pd.Timestamp("2026-03-31"))  # four monthly campaigns


@pytest.fixture(scope="module")
def model(small_dataset) -> str:
    """A model of the small dataset from a two-trial search: what is compared is the engines, not the model."""
    data, _, _ = small_dataset
    dates = {"start": "2025-08-01", "end": "2026-05-01", "step_months": 1}
    mlflow = {"mlflow.experiment": "test-recover-engines", "mlflow.registered_model": MODEL.split("@")[0]}
    config = train_config(data, end_date=str(END.date()), truth=None, horizon_days=30, as_of=dates, **mlflow)
    run_training(dataclasses.replace(config, model=dataclasses.replace(config.model, search=SearchConfig(trials=2))))
    return MODEL


def _config(data: Path, **overrides) -> ScoreConfig:
    settings = {"data": str(data), "end_date": str(END.date()), "model": MODEL, "recover.bootstrap.resamples": 200}
    return load_config(None, {**settings, **overrides}, ScoreConfig)


@dataclasses.dataclass(frozen=True)
class _Recorded:
    """A probability source that keeps what it returned, so that the test sees the probabilities recover ranked."""

    source: object
    seen: list

    def __call__(self, model, dates):
        self.seen.append(self.source(model, dates))
        return self.seen[-1]

    def snapshots(self, *args):  # the adjustment's prognostic score, as the source builds it
        return self.source.snapshots(*args)


def _measured(config: ScoreConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The recovery table, and each observed action with its customer's probability and tier on the action date."""
    with recover_data(config) as data:
        recorded = _Recorded(data.probabilities, [])
        recovered = recover(data.tables, observation_end(data.result), *PERIOD, config, recorded)
        actions = data.tables.retention_actions
    (scored,) = recorded.seen
    actions = actions[actions["action_date"].between(*PERIOD)].reset_index(drop=True)
    actions = actions.assign(risk_tier=tiers_at_action(actions, scored, config.risk_tiers).to_numpy())
    actions = actions.merge(scored, on=["customer_id", "action_date"], how="left")
    key = ["action_date", "customer_id", "group"]
    return recovered.table, actions[[*key, "risk_tier", "probability"]].sort_values(key, ignore_index=True)


@pytest.mark.parametrize(("label", "validate_partitions"), [("events", "1"), ("inactivity", "3")])
def test_recover_on_partitions_measures_what_memory_measures(
    model, small_dataset, tmp_path: Path, label: str, validate_partitions: str
):
    """From the raw folder and from a folder validated in memory (split again into buckets) or in 3 buckets (read as
    they are)."""
    data, _, _ = small_dataset
    validated = tmp_path / "validated"
    argv = ["validate", "--data", str(data), "--out", str(validated), "--end-date", str(END.date())]
    assert main([*argv, "--partitions", validate_partitions]) == 0
    table, tiers = _measured(_config(data, **{"recover.label": label}))
    assert set(table["segment"]) == {"overall", "location_id", "risk_tier"}
    assert {"high", "medium", "low"} <= set(tiers["risk_tier"]) and tiers["probability"].notna().mean() > 0.9
    for source in (data, validated):
        got_table, got_tiers = _measured(_config(source, partitions=3, **{"recover.label": label}))
        pd.testing.assert_frame_equal(got_table, table, check_exact=False, rtol=1e-9, atol=1e-9, obj=str(source))
        pd.testing.assert_series_equal(got_tiers["risk_tier"], tiers["risk_tier"], obj=str(source))
        np.testing.assert_allclose(got_tiers["probability"], tiers["probability"], rtol=0, atol=1e-9)


def test_a_row_quarantined_on_partitions_is_counted_not_lost(tmp_path: Path):
    assert_same_recovery_and_quarantine(
        recovered_on_each_engine(tmp_path, {"pandas": {}, "partitions": {"partitions": 3}})
    )


def test_churn_recover_takes_the_engine_and_partitions_from_flags_over_the_config(monkeypatch, tmp_path: Path):
    import pipelines.stages.recover as recover_stage

    seen = []

    def run(config, start, end):
        seen.append(config)
        raise UserError("seen")  # the run stops once its config is known

    monkeypatch.setattr(recover_stage, "run_recover", run)
    argv = ["recover", "--data", str(tmp_path), "--from", "2024-01-01", "--to", "2024-03-01"]
    for extra in (["--partitions", "4"], ["--engine", "spark"], []):
        assert main([*argv, *extra]) == EXIT_INPUT
    assert [(c.engine, c.partitions) for c in seen] == [("pandas", 4), ("spark", 1), ("pandas", 1)]
