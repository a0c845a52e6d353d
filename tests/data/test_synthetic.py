"""The built-in generator: valid under the contract, deterministic, and as hard as real churn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.contract import validate_dataset
from pipelines.io.files import read_dataset
from pipelines.simulation.synthetic import SyntheticConfig, generate
from pipelines.simulation.truth import load_truth


def test_generated_data_passes_the_contract(small_dataset):
    data, _, _ = small_dataset
    dataset = read_dataset(data)
    raw, sources = dataset.tables, dataset.sources
    r = validate_dataset(raw, sources, end_date=pd.Timestamp("2026-06-30"))
    assert r.quarantined_rows == 0
    assert set(r.tables) == {"customers", "interactions", "feedback", "churn_events", "retention_actions"}


def test_deterministic_for_a_seed():
    a = next(generate(SyntheticConfig(customers=300, months=6, seed=11)))
    b = next(generate(SyntheticConfig(customers=300, months=6, seed=11)))
    c = next(generate(SyntheticConfig(customers=300, months=6, seed=12)))
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    np.testing.assert_array_equal(a.cum_hazard, b.cum_hazard)
    # the ground truth too: contact responses, potential outcomes and true effects
    pd.testing.assert_frame_equal(a.truth_customers, b.truth_customers)
    pd.testing.assert_frame_equal(a.truth_actions, b.truth_actions)
    assert len(a.truth_actions) > 0
    assert not a.tables["interactions"].equals(c.tables["interactions"])
    assert not a.truth_customers["trouble_response"].equals(c.truth_customers["trouble_response"])


def test_truth_is_consistent_with_the_data(small_dataset):
    data, truth_dir, _ = small_dataset
    truth = load_truth(truth_dir)
    churn = pd.read_parquet(data / "churn_events.parquet")
    # every churn in the data is where the cumulative hazard crossed the threshold
    churned = truth.customers[truth.customers["churn_day"] >= 0]
    assert len(churned) == len(churn)
    # contact lowers the hazard of everyone but sleeping dogs: nobody else churns later had they never been contacted
    untreated = truth.customers["churn_day_if_never_contacted"].replace(-1, 10**9)
    observed = truth.customers["churn_day"].replace(-1, 10**9)
    a = truth.actions
    woken = truth.customers["customer_id"].isin(a.loc[a["sleeping_dog"] & (a["group"] == "treatment"), "customer_id"])
    assert (untreated <= observed)[~woken].all()
    assert not a.loc[a["group"] == "control", "saved"].any()
    p = truth.churn_probability(truth.customers["customer_id"], truth.start + pd.Timedelta(days=100), 90)
    assert ((p >= 0) & (p <= 1)).all()


def test_potential_outcomes_agree_with_what_was_observed(small_dataset):
    """Each group's observed outcome is its own potential outcome, with the probability the cumulative hazard gives."""
    _, truth_dir, _ = small_dataset
    truth = load_truth(truth_dir)
    a = truth.actions
    treated = (a["group"] == "treatment").to_numpy()
    assert treated.sum() > 100 and (~treated).sum() > 20
    observed = a["churned_within_90d"].to_numpy()
    np.testing.assert_array_equal(observed[treated], a["churned_within_90d_if_contacted"].to_numpy()[treated])
    np.testing.assert_array_equal(observed[~treated], a["churned_within_90d_if_not_contacted"].to_numpy()[~treated])
    assert not a.loc[~treated, ["saved", "harmed"]].to_numpy().any()
    if_not, if_contacted = a["churned_within_90d_if_not_contacted"], a["churned_within_90d_if_contacted"]
    pd.testing.assert_series_equal(a["saved"], treated & if_not & ~if_contacted, check_names=False)
    pd.testing.assert_series_equal(a["harmed"], treated & if_contacted & ~if_not, check_names=False)
    # the observed world's probability is the one of the group's own potential outcome
    rows = truth.customers.set_index("customer_id").loc[a["customer_id"], "truth_row"].to_numpy()
    day = (a["action_date"] - truth.start).dt.days.to_numpy()
    end = np.minimum(day + 90, truth.cum_hazard.shape[1] - 1)
    p_observed = -np.expm1(-(truth.cum_hazard[rows, end].astype(float) - truth.cum_hazard[rows, day].astype(float)))
    p_own = np.where(treated, a["p_churn_if_contacted"], a["p_churn_if_not_contacted"])
    np.testing.assert_allclose(p_observed, p_own, atol=1e-5)
    p1, p0, uplift = a["p_churn_if_contacted"], a["p_churn_if_not_contacted"], a["true_uplift"]
    assert ((p0 >= 0) & (p0 <= 1) & (p1 >= 0) & (p1 <= 1)).all()
    assert ((uplift >= -1) & (uplift <= 1)).all()
    np.testing.assert_allclose(uplift, p0 - p1)
    # a contact only ever helps, except a sleeping dog, whom it only ever harms
    assert (uplift[~a["sleeping_dog"]] >= 0).all()
    assert (uplift[a["sleeping_dog"]] < 0).all()


@pytest.mark.slow
def test_effects_differ_by_driver_action_and_customer(default_dataset):
    """Trouble- and price-driven customers respond, by action, most to what addresses their risk; sleeping dogs churn
    more; and customers alike on every feature still differ."""
    _, truth_dir, _ = default_dataset
    truth = load_truth(truth_dir)
    a = truth.actions
    dogs = a[a["sleeping_dog"]]
    assert len(dogs) > 100 and (dogs["true_uplift"] < 0).all()
    assert dogs["churned_within_90d_if_contacted"].mean() > dogs["churned_within_90d_if_not_contacted"].mean()
    by = a[~a["sleeping_dog"]].groupby(["effect_driver", "action"])["true_uplift"].mean()
    assert by["trouble", "retention_call"] > by["trouble", "discount_offer"] > by["trouble", "email_offer"] > 0
    assert by["price", "discount_offer"] > by["price", "retention_call"] > by["price", "email_offer"] > 0
    # individual responses, which no feature shows, drive much of the effect of the same action on the same driver
    responses = truth.customers.set_index("customer_id")[["trouble_response", "price_response"]]
    assert ((responses > 0) & (responses < 1)).all().all() and (responses.std() > 0.15).all()
    helped = a[(a["effect_driver"] == "trouble") & (a["action"] == "retention_call") & ~a["sleeping_dog"]]
    relative = helped["true_uplift"] / helped["p_churn_if_not_contacted"]
    response = helped["customer_id"].map(responses["trouble_response"])
    assert np.corrcoef(relative, response)[0, 1] > 0.3


@pytest.mark.slow
def test_targeting_by_true_effect_beats_targeting_by_true_risk(default_dataset):
    """The summary's uplift targets of the default data: the uplift ranking is no copy of the churn ranking."""
    _, truth_dir, s = default_dataset
    assert 0.05 <= s["sleeping_dog_share_of_contacts"] <= 0.10
    assert s["mean_true_uplift_treated"] > 0
    assert s["uplift_vs_risk_targeting_ratio"] >= 1.5
    assert s["uplift_vs_risk_targeting_ratio_realised"] >= 1.5
    assert s["true_saves_top30_by_uplift"] >= 1.5 * s["true_saves_top30_by_risk"] > 0
    # the summary's figure, recounted from the truth for one campaign
    a = load_truth(truth_dir).actions
    campaign = a[a["action_date"] == a["action_date"].min()]
    k = round(0.3 * len(campaign))
    by_uplift = campaign.nlargest(k, "true_uplift")["true_uplift"].sum()
    by_risk = campaign.nlargest(k, "p_churn_if_not_contacted")["true_uplift"].sum()
    assert by_uplift > by_risk
    # real programmes: a few per cent of the base a month, 10-30 % held out, enough control churners to learn from
    held_out = s["control_contacts_per_campaign"] / (
        s["control_contacts_per_campaign"] + s["treated_contacts_per_campaign"]
    )
    assert 300 <= s["treated_contacts_per_campaign"] <= 1_500
    assert 0.10 <= held_out <= 0.30 + 0.02  # the random draw around the configured share
    assert s["control_churners_per_campaign"] >= 20


@pytest.mark.slow
def test_default_data_is_as_hard_as_real_churn(default_dataset):
    """The realism targets of the developers' guide, at default settings."""
    _, _, s = default_dataset
    assert 0.01 <= s["monthly_churn_rate"] <= 0.03
    assert 0.04 <= s["label_prevalence"] <= 0.10
    assert 0.80 <= s["oracle_roc_auc"] <= 0.90
    assert s["share_never_answered_a_survey"] > 0.5
    assert 0.10 <= s["save_rate_among_treated_who_would_churn"] <= 0.30


def _events_by_day(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    out = table[["customer_id", *keys]].assign(day=table["timestamp"].dt.floor("D"))
    return out.sort_values(["customer_id", "day", *keys], ignore_index=True)


def _tables(**drift) -> dict[str, pd.DataFrame]:
    return next(generate(SyntheticConfig(customers=1_500, months=12, seed=5, **drift))).tables


def test_injected_drift_changes_only_what_it_names_and_only_from_its_date():
    start = pd.Timestamp("2026-03-01")
    plain = _tables()
    for drift in ("survey_stop", "app_outage"):
        drifted = _tables(drift=drift, drift_from=str(start.date()))
        for name, keys in (("interactions", ["type"]), ("feedback", ["survey", "score"])):
            # the same world up to the change (channels, times of day and comments are drawn after the simulation)
            before = [_events_by_day(t[t["timestamp"] < start], keys) for t in (plain[name], drifted[name])]
            pd.testing.assert_frame_equal(*before)
        late = start + pd.Timedelta(days=2)  # answers come up to a day after the touchpoint
        after = {k: t[t["timestamp"] >= late] for k, t in drifted.items() if k in ("interactions", "feedback")}
        plain_after = {k: t[t["timestamp"] >= late] for k, t in plain.items() if k in ("interactions", "feedback")}
        if drift == "survey_stop":
            assert after["feedback"].empty and len(plain_after["feedback"]) > 50
        else:
            logins = [(t["type"] == "login").sum() for t in (after["interactions"], plain_after["interactions"])]
            assert 0.25 < logins[0] / logins[1] < 0.45  # APP_OUTAGE_USAGE of log-ins still happen
    with pytest.raises(ValueError, match="go together"):
        SyntheticConfig(drift="survey_stop")
    with pytest.raises(ValueError, match="must be one of"):
        SyntheticConfig(drift="price_war", drift_from="2026-01-01")
