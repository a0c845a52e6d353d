"""The DuckDB reference of the benchmark computes the features it is named after, as our feature stage does."""

import numpy as np
import pandas as pd
import pytest

from features import names
from features.build import build_features
from features.config import FeatureConfig
from pipelines.benchmark.bench import duckdb_sql
from tests.builders import make_tables

T = pd.Timestamp("2025-07-01")
COUNTS = (names.InteractionCount, names.ValueSum, names.TypeCount, names.ChannelShare)  # NULL in SQL without events


def _tables(seed: int = 7):
    rng = np.random.default_rng(seed)
    n, m, k = 40, 600, 120
    ids = [f"c{i}" for i in range(n)]
    day = pd.Timedelta(days=1)
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "signup_date": [str((T - day * int(d)).date()) for d in rng.integers(-20, 700, n)],
            "monthly_revenue": rng.uniform(5, 90, n),
        }
    )
    stamps = T - pd.to_timedelta(rng.integers(1, 400 * 24 * 60, m), unit="min")
    interactions = pd.DataFrame(
        {
            "customer_id": rng.choice(ids, m),
            "timestamp": stamps.astype(str),
            "channel": rng.choice(["web", "app", "fax"], m),
            "type": rng.choice(["login", "complaint", "support_ticket", "mystery"], m),
            "value": np.where(rng.random(m) < 0.2, np.nan, rng.uniform(0, 40, m)),
        }
    )
    # distinct feedback times: the latest answer is one answer
    answered = T - pd.to_timedelta(rng.choice(np.arange(1, 500 * 24), k, replace=False), unit="h")
    feedback = pd.DataFrame(
        {
            "customer_id": rng.choice(ids, k),
            "timestamp": answered.astype(str),
            "survey": rng.choice(["NPS", "CSAT", "CES"], k),
            "score": rng.integers(0, 11, k).astype(float),
            "callback_requested": False,
        }
    )
    churn = pd.DataFrame(
        {"customer_id": ids[:4], "churn_date": ["2025-03-01", "2025-06-30", "2025-07-01", "2025-09-01"]}
    )
    return make_tables(customers, interactions, feedback, churn)


def test_the_duckdb_reference_computes_our_features(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    tables = _tables()
    for name in ("customers", "interactions", "feedback", "churn_events"):
        getattr(tables, name).to_parquet(tmp_path / f"{name}.parquet", index=False)
    config = FeatureConfig(
        interaction_types=("login", "complaint", "support_ticket"), channels=("web", "app"), purchase_types=()
    )
    ref = duckdb.connect().sql(duckdb_sql(str(tmp_path), str(T.date()), config)).df()
    ref = ref.loc[:, ~ref.columns.duplicated()].set_index("customer_id").sort_index()
    ref = ref.drop(columns=[c for c in ref.columns if c.startswith("customer_id")])  # the joined tables' keys
    ours = build_features(tables, T, config).set_index("customer_id").sort_index()
    features = {f.name: f for f in names.catalog(config) if f.name in ref.columns}
    assert len(features) == len(ref.columns) > 30  # every reference column is one of our features
    assert list(ref.index) == list(ours.index)
    for name, feature in features.items():
        got = ref[name].astype(float)
        if isinstance(feature, COUNTS) or (isinstance(feature, names.SurveyStat) and feature.stat == "count"):
            got = got.fillna(0.0)
        np.testing.assert_allclose(got.to_numpy(), ours[name].to_numpy(dtype=float), rtol=1e-9, err_msg=name)
