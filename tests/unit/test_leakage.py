"""Property tests: features at T see only rows strictly before T; labels only [T, T+H)."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from features.build import Tables, build_features, build_labels, prepare
from features.config import FeatureConfig
from pipelines.simulation.synthetic import SyntheticConfig, generate

T = pd.Timestamp("2026-01-01")
H = 60
END = pd.Timestamp("2026-06-30")
CONFIGS = {"events": FeatureConfig(), "inactivity": FeatureConfig(label_source="inactivity")}


@cache
def base_tables() -> Tables:
    """A small slice of real synthetic data (300 customers), built on first use."""
    chunk = next(generate(SyntheticConfig(customers=300, months=18, seed=3)))
    return Tables(**chunk.tables)


def features(tables: Tables, config: FeatureConfig) -> pd.DataFrame:
    return build_features(prepare(tables, config), T).sort_values("customer_id", ignore_index=True)


offsets = st.integers(min_value=0, max_value=400 * 86_400)  # seconds at or after T
customer_pick = st.integers(min_value=0, max_value=299)


@st.composite
def future_changes(draw):
    """Rows to add at or after T, and a seed choosing existing rows at or after T to drop or move."""
    n_int = draw(st.integers(0, 15))
    n_fb = draw(st.integers(0, 8))
    return {
        "interactions": [
            (
                draw(customer_pick),
                draw(offsets),
                draw(st.sampled_from(["web", "phone", "app"])),
                draw(st.sampled_from(["login", "complaint", "support_ticket", "purchase", "weird"])),
                draw(st.floats(0, 500)),
            )
            for _ in range(n_int)
        ],
        "feedback": [
            (
                draw(customer_pick),
                draw(offsets),
                draw(st.sampled_from(["NPS", "CSAT", "CES"])),
                draw(st.integers(1, 5)),
                draw(st.booleans()),
            )
            for _ in range(n_fb)
        ],
        "churn": [(draw(customer_pick), draw(offsets)) for _ in range(draw(st.integers(0, 5)))],
        "actions": [(draw(customer_pick), draw(offsets)) for _ in range(draw(st.integers(0, 5)))],
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


def _at(offset_seconds: int, start: pd.Timestamp = T) -> pd.Timestamp:
    return start + pd.Timedelta(seconds=offset_seconds)


def _perturb_existing(frame: pd.DataFrame, column: str, start: pd.Timestamp, rng: np.random.Generator) -> pd.DataFrame:
    """Drop some rows stamped at or after ``start`` and move others to other times at or after it."""
    late = frame[column] >= start
    drop = late & (rng.random(len(frame)) < 0.3)
    out = frame.loc[~drop].copy()
    move = (out[column] >= start) & (rng.random(len(out)) < 0.3)
    out.loc[move, column] = start + pd.to_timedelta(rng.integers(0, 300 * 86_400, int(move.sum())), unit="s")
    return out.reset_index(drop=True)


def apply_changes(tables: Tables, changes: dict, start: pd.Timestamp) -> Tables:
    ids = tables.customers["customer_id"].to_numpy()
    rng = np.random.default_rng(changes["seed"])
    add_int = pd.DataFrame(
        [
            {"customer_id": ids[c], "timestamp": _at(o, start), "channel": ch, "type": ty, "value": v}
            for c, o, ch, ty, v in changes["interactions"]
        ],
        columns=["customer_id", "timestamp", "channel", "type", "value"],
    )
    add_fb = pd.DataFrame(
        [
            {
                "customer_id": ids[c],
                "timestamp": _at(o, start),
                "survey": s,
                "score": float(sc),
                "comment": None,
                "callback_requested": cb,
                "touchpoint": "x",
            }
            for c, o, s, sc, cb in changes["feedback"]
        ],
        columns=tables.feedback.columns,
    )
    add_churn = pd.DataFrame(
        [{"customer_id": ids[c], "churn_date": _at(o, start).normalize()} for c, o in changes["churn"]],
        columns=["customer_id", "churn_date"],
    )
    add_act = pd.DataFrame(
        [
            {
                "customer_id": ids[c],
                "action_date": _at(o, start).normalize(),
                "group": "treatment",
                "action": "call",
                "cost": 1.0,
            }
            for c, o in changes["actions"]
        ],
        columns=tables.retention_actions.columns,
    )

    def merged(old, new, col):
        old = _perturb_existing(old, col, start, rng)
        new = new.astype({col: "datetime64[us]"}) if len(new) else new
        return pd.concat([old, new], ignore_index=True) if len(new) else old

    return replace(
        tables,
        interactions=merged(tables.interactions, add_int, "timestamp"),
        feedback=merged(tables.feedback, add_fb, "timestamp"),
        churn_events=merged(tables.churn_events, add_churn, "churn_date"),
        retention_actions=merged(tables.retention_actions, add_act, "action_date"),
    )


@settings(max_examples=40, deadline=None)
@given(changes=future_changes(), label_source=st.sampled_from(sorted(CONFIGS)))
def test_rows_at_or_after_as_of_never_change_features(changes, label_source):
    config = CONFIGS[label_source]
    before = features(base_tables(), config)
    after = features(apply_changes(base_tables(), changes, T), config)
    pd.testing.assert_frame_equal(before, after)


@settings(max_examples=30, deadline=None)
@given(changes=future_changes(), label_source=st.sampled_from(sorted(CONFIGS)))
def test_labels_read_only_the_label_window(changes, label_source):
    config = CONFIGS[label_source]
    p = prepare(base_tables(), config)
    frame = build_features(p, T)
    labels = build_labels(p, frame, H, END)
    # Changes at or after T + H must not move any label ...
    changed = apply_changes(base_tables(), changes, T + pd.Timedelta(days=H))
    assert build_labels(prepare(changed, config), frame, H, END).equals(labels)


def test_label_window_is_actually_read():
    """The property above would pass for a constant label: show that [T, T+H) matters."""
    tables = base_tables()
    p = prepare(tables, FeatureConfig())
    frame = build_features(p, T)
    labels = build_labels(p, frame, H, END)
    survivor = frame.loc[labels.to_numpy() == 0, "customer_id"].iloc[0]
    churn = pd.concat(
        [
            tables.churn_events,
            pd.DataFrame({"customer_id": [survivor], "churn_date": [T + pd.Timedelta(days=H - 1)]}).astype(
                {"churn_date": "datetime64[us]"}
            ),
        ],
        ignore_index=True,
    )
    relabelled = build_labels(prepare(replace(tables, churn_events=churn), FeatureConfig()), frame, H, END)
    assert relabelled[frame["customer_id"] == survivor].iloc[0] == 1
    assert int(labels.sum()) > 0
