"""Builders the test modules share: small typed tables, extract folders, the bad-input dataset, configs and checks.

Test modules import these from here, never from one another or from ``conftest.py`` (which holds the fixtures).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.build import Tables

END = pd.Timestamp("2026-06-30")  # the default synthetic data's extract date
BAD_DATASET_END = pd.Timestamp("2025-06-30")  # the extract date of :func:`bad_dataset`


def train_config(data: Path, **overrides):
    """The shipped YAML config pointed at ``data``, with overrides (dotted keys for sections)."""
    from pipelines.config import load_config

    return load_config(
        Path(__file__).resolve().parents[1] / "pipelines" / "conf" / "train.yaml", {"data": str(data), **overrides}
    )


# Scoring as the shipped score.yaml has it, less the regression adjustment of recent campaigns (value.adjust_recent):
# about 15 s a run on the default data that tests of drift and monitoring, which never read it, need not pay.
QUICK_SCORING = "value:\n  adjust_recent: false\n"


def quick_score_config(path: Path, extra: str = "") -> Path:
    """A score config at ``path``: the shipped defaults, no adjustment of recent campaigns, and ``extra`` YAML."""
    path.write_text(QUICK_SCORING + extra)
    return path


def make_tables(
    customers: pd.DataFrame,
    interactions: pd.DataFrame | None = None,
    feedback: pd.DataFrame | None = None,
    churn_events: pd.DataFrame | None = None,
    retention_actions: pd.DataFrame | None = None,
) -> Tables:
    """Typed tables from small inline frames (validated shapes, for unit tests)."""

    def frame(df, columns):
        if df is None:
            df = pd.DataFrame({c: [] for c in columns})
        df = df.copy()
        for c in df.columns:
            if c in ("signup_date", "timestamp", "churn_date", "action_date"):
                df[c] = pd.to_datetime(df[c], format="ISO8601").astype("datetime64[us]")
        return df

    return Tables(
        customers=frame(customers, ["customer_id", "signup_date", "monthly_revenue"]),
        interactions=frame(interactions, ["customer_id", "timestamp", "channel", "type", "value"]),
        feedback=frame(feedback, ["customer_id", "timestamp", "survey", "score", "callback_requested"]),
        churn_events=frame(churn_events, ["customer_id", "churn_date"]),
        retention_actions=frame(retention_actions, ["customer_id", "action_date", "group"]),
    )


def extract_folder(tmp_path: Path, files: dict[str, str | bytes | pd.DataFrame], name: str = "in") -> Path:
    """A dataset folder of hand-written extract files: text, raw bytes (odd encodings), or frames (written as
    parquet)."""
    out = tmp_path / name
    out.mkdir()
    for file, content in files.items():
        if isinstance(content, pd.DataFrame):
            content.to_parquet(out / file, index=False)
        else:
            (out / file).write_bytes(content if isinstance(content, bytes) else content.encode())
    return out


def assert_balanced(result) -> None:
    """Every table's accounting holds: rows read = kept + quarantined, and the quarantine holds every row set aside."""
    for name, r in result.report.items():
        assert r.rows_read == r.rows_kept + r.rows_quarantined, name
        if result.quarantine:
            assert r.rows_quarantined == len(result.quarantine[name]), name


def bad_dataset() -> dict[str, pd.DataFrame]:
    """Text tables as a CSV extract would arrive, with one row of each kind of problem."""
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "dup", "dup", "neg", None, "late", "x"],
            "signup_date": [
                "2024-01-01",
                "2024-02-01",
                "2024-01-01",
                "2024-03-01",
                "2024-01-01",
                "2024-01-01",
                "2024-05-01",
                "not a date",
            ],
            "monthly_revenue": ["10", "20", "3", "3", "-5", "4", "5", "6"],
            "plan": ["basic"] * 8,
        }
    )
    interactions = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "ghost", "a", "b"],
            "timestamp": [
                "2025-01-01T10:00:00",
                "2025-01-01T10:00:00",
                "1960-05-01",
                "2099-01-01",
                "2025-01-02",
                "2025-07-01",
                None,
            ],
            "channel": ["web"] * 7,
            "type": ["login"] * 7,
            "value": ["1", "1", "2", "3", "4", "5", "6"],
        }
    )
    feedback = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "b"],
            "timestamp": ["2025-02-01"] * 5,
            "survey": ["NPS", "CSAT", "XYZ", "CES", "NPS"],
            "score": ["11", "3", "5", "0", "7"],
            "callback_requested": ["true", "no", None, "false", "maybe"],
        }
    )
    churn = pd.DataFrame({"customer_id": ["a", "b", "ghost"], "churn_date": ["2023-06-01", "2025-03-01", "2025-03-01"]})
    actions = pd.DataFrame(
        {
            "customer_id": ["a", "b", "b"],
            "action_date": ["2025-01-01", "2025-01-01", "2025-02-01"],
            "group": ["treatment", "control", "placebo"],
            "cost": ["-1", "0", "3"],
        }
    )
    return {
        "customers": customers,
        "interactions": interactions,
        "feedback": feedback,
        "churn_events": churn,
        "retention_actions": actions,
    }


def same_rows(a: pd.DataFrame, b: pd.DataFrame, key: list[str]) -> None:
    a = a.sort_values(key, ignore_index=True)
    b = b.sort_values(key, ignore_index=True)[list(a.columns)]
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def recovery_dataset(folder: Path) -> Path:
    """200 customers with one action each on 2024-02-01 (100 treated, 10 churn; 100 controls, 25 churn), and one
    action row validation sets aside (its group is neither treatment nor control)."""
    folder.mkdir(parents=True)
    ids = [f"c{i:03d}" for i in range(200)]
    pd.DataFrame(
        {"customer_id": ids, "signup_date": "2023-01-01", "monthly_revenue": 10.0, "location_id": ["L1", "L2"] * 100}
    ).to_csv(folder / "customers.csv", index=False)
    groups = ["treatment"] * 100 + ["control"] * 100
    pd.DataFrame({"customer_id": [*ids, "c000"], "action_date": "2024-02-01", "group": [*groups, "placebo"]}).to_csv(
        folder / "retention_actions.csv", index=False
    )
    churned = ids[:10] + ids[100:125]
    pd.DataFrame({"customer_id": churned, "churn_date": "2024-02-15"}).to_csv(folder / "churn_events.csv", index=False)
    return folder


def recovered_on_each_engine(tmp_path: Path, engines: dict[str, dict]) -> dict:
    """``run_recover`` of :func:`recovery_dataset` on each engine (``engine``/``partitions`` keys; no tiers: it has no
    model), by name."""
    from pipelines.config import ScoreConfig, load_config
    from pipelines.stages.recover import run_recover

    data = recovery_dataset(tmp_path / "in")
    runs = {}
    for name, scale in engines.items():
        config = load_config(
            None,
            {"data": str(data), "end_date": "2024-06-30", "recover.tiers": False, "recover.out": str(tmp_path / name),
             "recover.experiment": "test-recover-engines", "recover.bootstrap.resamples": 200, **scale},
            ScoreConfig,
        )  # fmt: skip
        runs[name] = run_recover(config, pd.Timestamp("2024-01-01"), pd.Timestamp("2024-03-01"))
    return runs


def assert_same_recovery_and_quarantine(runs: dict) -> None:
    """Every run measured the in-memory figures and counted, and kept, the quarantined action."""
    base = runs["pandas"]
    assert base.overall.saved_customers == pytest.approx((0.25 - 0.10) * 100)
    table = pd.read_parquet(base.folder / "recovery.parquet")
    for name, run in runs.items():
        actions = run.validation.report["retention_actions"]
        assert (actions.rows_read, actions.rows_quarantined) == (201, 1), name
        assert run.validation.quarantine["retention_actions"]["group"].tolist() == ["placebo"], name
        pd.testing.assert_frame_equal(pd.read_parquet(run.folder / "recovery.parquet"), table, obj=name)
