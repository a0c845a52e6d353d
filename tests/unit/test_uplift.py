"""Uplift meta-learners and metrics (models/uplift.py): the metrics match scikit-uplift, the learners find who a
contact keeps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from models.errors import ModelInputError
from models.estimators import FeatureSpec
from models.uplift import (
    LEARNERS,
    UpliftModel,
    auuc,
    bootstrap_metrics,
    features_ceiling,
    learner,
    policy_value,
    qini_coefficient,
    qini_curve,
    uplift_at,
)

# 16 customers with ties in the score; the expected figures are scikit-uplift 0.5.1's qini_auc_score,
# uplift_auc_score and uplift_at_k(strategy="overall", k=0.5) on the same arrays with retention as the outcome.
CHURNED = np.array([1, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 1], bool)
TREATED = np.array([1, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 0, 1], bool)
SCORE = np.array([0.9, 0.8, 0.8, 0.7, 0.6, 0.5, 0.5, 0.4, 0.3, 0.3, 0.2, 0.1, 0.1, 0, -0.1, -0.2])


def test_metrics_match_scikit_uplift():
    assert qini_coefficient(CHURNED, TREATED, SCORE) == pytest.approx(-0.03943661971830981, abs=1e-12)
    assert auuc(CHURNED, TREATED, SCORE) == pytest.approx(-0.051713286713286705, abs=1e-12)
    assert uplift_at(CHURNED, TREATED, SCORE, 0.5) == pytest.approx(-0.06666666666666665, abs=1e-12)


def test_qini_is_one_for_the_perfect_ranking_and_zero_without_one():
    retained, treated = (~CHURNED).astype(float), TREATED.astype(float)
    perfect = retained * treated - retained * (1 - treated)  # treated who stayed first, control who stayed last
    assert qini_coefficient(CHURNED, TREATED, perfect) == pytest.approx(1.0)
    assert qini_coefficient(CHURNED, TREATED, np.zeros(CHURNED.size)) == pytest.approx(0.0)


def test_qini_curve_counts_customers_kept():
    # top 4: treated rows 0, 1 (1 churned), control rows 2, 3 (1 churned): kept = 1 - 1 * 2 / 2 = 0
    x, y = qini_curve(CHURNED, TREATED, SCORE)
    assert x[0] == 0 and y[0] == 0
    assert y[list(x).index(4)] == pytest.approx(0.0)
    assert x[-1] == CHURNED.size


def _risk(frame: pd.DataFrame) -> pd.Series:
    return 0.06 + 0.03 * frame["trouble"] + 0.25 * (frame["price"] > 1)


def _campaign(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Contacts where service trouble makes a contact work, price drives risk but not the effect, and a quiet segment
    is pushed out: the riskiest customers are not the ones a contact keeps."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "trouble": rng.exponential(1.0, n),
            "price": rng.normal(0.0, 1.0, n),
            "quiet": rng.random(n),
            "plan": rng.choice(["basic", "premium"], n),
        }
    )
    base = _risk(frame)
    effect = np.clip(0.05 * frame["trouble"], 0, 0.15) - 0.08 * (frame["quiet"] > 0.9)
    treated = rng.random(n) < 0.8
    p = np.clip(base - treated * effect, 0.005, 0.95)
    return frame, treated, rng.random(n) < p, effect.to_numpy()


@pytest.mark.parametrize("name", LEARNERS)
def test_each_learner_ranks_customers_by_their_true_effect(name):
    frame, treated, churned, effect = _campaign(12_000, seed=3)
    spec = FeatureSpec(("trouble", "price", "quiet"), ("plan",))
    model = UpliftModel(spec, name, seed=1).fit(frame, treated, churned)
    test, t_test, y_test, true_test = _campaign(8_000, seed=4)
    predicted = model.uplift(test)
    assert spearmanr(predicted, true_test).statistic > 0.35  # noisy: a contact changes few outcomes
    # ranking by the learned uplift keeps more customers than ranking by the risk without contact
    assert qini_coefficient(y_test, t_test, predicted) > qini_coefficient(y_test, t_test, _risk(test).to_numpy())


def test_the_features_ceiling_learns_the_true_effect_and_skips_unknown_ones():
    frame, _, _, effect = _campaign(6_000, seed=7)
    test, _, _, true_test = _campaign(3_000, seed=8)
    spec = FeatureSpec(("trouble", "price", "quiet"), ("plan",))
    known = effect.copy()
    known[:500] = np.nan  # contacts the truth has no effect for are left out, not learned as zero
    ceiling = features_ceiling(spec, frame, known, test, seed=0)
    # fitted to the noise-free effect, it ranks far better than any learner can from outcomes (> 0.35 above)
    assert ceiling.shape == (3_000,) and spearmanr(ceiling, true_test).statistic > 0.9


def test_bootstrap_interval_covers_the_estimate():
    frame, treated, churned, effect = _campaign(4_000, seed=5)
    ci = bootstrap_metrics(churned, treated, effect, resamples=50, seed=0)
    for interval in ci.values():
        assert interval.low <= interval.value <= interval.high
    assert ci["qini"].value > 0


def test_a_group_without_churners_is_refused():
    frame, treated, churned, _ = _campaign(500, seed=6)
    with pytest.raises(ModelInputError, match="control group needs churners"):
        UpliftModel(FeatureSpec(("trouble",), ()), "t_learner").fit(frame, treated, churned & treated)
    with pytest.raises(ModelInputError, match="must be one of"):
        learner("s_learner")


def test_policy_value_interval_covers_the_true_saves_over_random_assignments():
    # fixed potential outcomes; only the campaign's random assignment changes between repetitions
    rng = np.random.default_rng(11)
    n = 3_000
    p0 = rng.uniform(0.02, 0.4, n)
    p1 = np.clip(p0 - rng.normal(0.05, 0.08, n), 0, 1)
    u = rng.random(n)
    y0, y1 = u < p0, u < p1
    selected = p0 - p1 > np.quantile(p0 - p1, 0.7)  # a policy that does not look at the outcomes
    truth = float((y0[selected].astype(float) - y1[selected]).sum())
    covered, widths = 0, {"ipw": [], "dr": []}
    for _ in range(300):
        treated = rng.random(n) < 0.8
        churned = np.where(treated, y1, y0)
        ipw = policy_value(churned, treated, selected, 0.8)
        dr = policy_value(churned, treated, selected, 0.8, outcome_models=(p0, p1))
        covered += ipw.low <= truth <= ipw.high
        widths["ipw"].append(ipw.high - ipw.low)
        widths["dr"].append(dr.high - dr.low)
    assert covered / 300 >= 0.93
    assert np.mean(widths["dr"]) < 0.9 * np.mean(widths["ipw"])  # good outcome models tighten it
