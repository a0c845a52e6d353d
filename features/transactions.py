"""Purchase features for non-contractual businesses (transaction logs) and a buy-till-you-die model.

A retailer's log holds no churn events: a customer who stops buying simply
goes quiet, so the signal lies in the purchase rhythm. Each customer's
purchases strictly before the as-of date ``T`` are reduced to distinct purchase
*days* (several receipts on one day are one visit), and from them come:

* frequency: distinct purchase days in each of ``transaction_windows_days``
  and over the whole history; spend in the windows and mean spend per purchase;
* days since the first and the last purchase, the mean gap between purchase
  days and recency against that gap (a customer who buys every 10 days and has
  been away 40 is more overdue than one who buys every 60 days);
* BG/NBD (Fader, Hardie & Lee 2005): P(alive at T) and the expected number of
  purchase days in the next ``btyd_horizon_days`` days, from the model fitted
  by maximum likelihood on the purchase history strictly before T.

Everything is vectorised over the event arrays of :mod:`features.build`
(int64 microsecond timestamps, customer positions, type codes); nothing loops
over customers in Python.

Reference:
    Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). "Counting Your
    Customers" the Easy Way: An Alternative to the Pareto/NBD Model.
    *Marketing Science* 24(2), 275-284: the likelihood of (x, t_x, T) and
    the conditional expectation of future purchases. P(alive) as in Fader,
    Hardie & Lee, "Computing P(alive) using the BG/NBD model" (note, 2008).
    Fader & Hardie, "Overcoming the BG/NBD model's #NUM! error problem"
    (note, 2013) on the numerics of the hypergeometric term.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
from scipy import optimize, special
from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

from features import names
from features.config import FeatureConfig

log = logging.getLogger(__name__)

US_PER_DAY = 86_400_000_000  # int64 microseconds per day, the time unit of features.build
FIT_SEED = 2005  # seeds the sample of customers the BG/NBD is fitted on when there are more than the cap
MIN_FIT_CUSTOMERS = 50  # fewer customers with a purchase than this: no fit, BG/NBD features are NaN
_LOG_BOUND = 15.0  # log-parameters stay in [-15, 15]: exp(15) days is 9,000 years, far beyond any sensible value


class EventArrays(Protocol):
    """The interaction arrays of :class:`features.build.Prepared` (``p.interactions``)."""

    ts: np.ndarray  # int64 microseconds
    cust: np.ndarray  # int64 position in the customers table
    extra: dict[str, np.ndarray]  # "type" (int16 code over interaction_types + other), "value"


@dataclass(frozen=True)
class BGNBDParams:
    """BG/NBD parameters, time in days.

    Purchase rates while alive are Gamma(``r``, ``alpha``) across customers
    (mean ``r / alpha`` purchases a day); the probability of dropping out after
    each purchase is Beta(``a``, ``b``) across customers.
    """

    r: float
    alpha: float
    a: float
    b: float

    @property
    def fitted(self) -> bool:
        return bool(np.isfinite([self.r, self.alpha, self.a, self.b]).all())


# The whole base's answer when it could not be fitted (too few buyers, or no convergence): every partition's BG/NBD
# features are NaN, as they are in memory, instead of each partition fitting its own.
NOT_FITTED = BGNBDParams(float("nan"), float("nan"), float("nan"), float("nan"))


@dataclass(frozen=True)
class Calibration:
    """The BG/NBD sufficient statistics of a set of customers, as distinct rows with counts.

    ``x`` repeat purchase days, ``t_x`` days from the first to the last
    purchase day, ``age`` days from the first purchase day to T. Rows are
    sorted and distinct, so two calibrations of the same customers are equal
    whatever order the customers came in, and calibrations of disjoint
    customer partitions pool with :func:`pool_calibrations`.
    """

    x: np.ndarray
    t_x: np.ndarray
    age: np.ndarray
    count: np.ndarray  # customers with this (x, t_x, age)

    @property
    def customers(self) -> int:
        return int(self.count.sum())


def calibration(x: np.ndarray, t_x: np.ndarray, age: np.ndarray, count: np.ndarray | None = None) -> Calibration:
    """Collapse per-customer (or already counted) rows into a :class:`Calibration`."""
    stats = np.column_stack([np.asarray(x, float), np.asarray(t_x, float), np.asarray(age, float)])
    weights = np.ones(len(stats), dtype=np.int64) if count is None else np.asarray(count, dtype=np.int64)
    if stats.size == 0:
        empty = np.zeros(0)
        return Calibration(empty, empty, empty, np.zeros(0, dtype=np.int64))
    order = np.lexsort(stats.T[::-1])  # by x, then t_x, then T (np.unique(axis=0) does the same, 10x slower)
    stats, weights = stats[order], weights[order]
    start = np.flatnonzero(np.r_[True, np.any(stats[1:] != stats[:-1], axis=1)])
    rows = stats[start]
    return Calibration(rows[:, 0], rows[:, 1], rows[:, 2], np.add.reduceat(weights, start))


def pool_calibrations(parts: list[Calibration]) -> Calibration:
    """One calibration from those of disjoint customer sets (say, customer buckets)."""
    if not parts:
        return calibration(np.zeros(0), np.zeros(0), np.zeros(0))
    return calibration(
        np.concatenate([c.x for c in parts]),
        np.concatenate([c.t_x for c in parts]),
        np.concatenate([c.age for c in parts]),
        np.concatenate([c.count for c in parts]),
    )


def bgnbd_log_likelihood(params: BGNBDParams, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Log-likelihood of each customer's (x, t_x, T) under the BG/NBD (Fader, Hardie & Lee 2005).

    L = B(a, b+x)/B(a, b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+T)^(r+x))
        + [x > 0] B(a+1, b+x-1)/B(a, b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+t_x)^(r+x))

    computed as ``log A + log(1 + [x > 0] exp(D))``, ``D`` being the log-odds
    of :func:`_log_dropout_odds` (B(a+1, b+x-1) / B(a, b+x) = a / (b+x-1)),
    which never overflows.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_a = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) - (r + x) * np.log(alpha + age)
    log_a = log_a + special.betaln(a, b + x) - special.betaln(a, b)
    return log_a + np.logaddexp(0.0, _log_dropout_odds(params, x, t_x, age))


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Sum of products without BLAS: a threaded BLAS dot is slow on a busy machine and sums in an order that depends on
    it."""
    return float(np.sum(a * b))


class _NegativeLogLikelihood:
    """Mean negative BG/NBD log-likelihood of weighted (x, t_x, T) rows and its gradient in the log-parameters.

    The gamma-function terms depend on x alone and the logarithms on T or t_x
    alone, so they are computed once per distinct value (a few hundred) and
    gathered; only the dropout term is computed per row. This keeps one
    evaluation near a millisecond at 50,000 customers, so the fit is cheap
    enough to run at every as-of date.
    """

    def __init__(self, x: np.ndarray, t_x: np.ndarray, age: np.ndarray, weight: np.ndarray) -> None:
        self.ux, xi = np.unique(x, return_inverse=True)
        self.uage, self.age_i = np.unique(age, return_inverse=True)
        self.utx, self.tx_i = np.unique(t_x, return_inverse=True)
        self.x, self.xi, self.weight = x, xi, weight / weight.sum()
        self.by_x = np.bincount(xi, weights=self.weight, minlength=self.ux.size)  # weight of each distinct x
        self.repeat = x > 0

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = np.exp(theta)
        ux, w, rep = self.ux, self.weight, self.repeat
        log_age = np.log(alpha + self.uage)[self.age_i]
        inv_age = (1.0 / (alpha + self.uage))[self.age_i]
        rx = r + self.x
        # Terms of x alone, weighted by how many rows have each x.
        gam = special.gammaln(r + ux) - special.gammaln(r) + special.betaln(a, b + ux) - special.betaln(a, b)
        ll = _dot(self.by_x, gam) + r * np.log(alpha) - _dot(w, rx * log_age)
        log_tx = np.log(alpha + self.utx)[self.tx_i[rep]]
        d = np.log(a) - np.log(b + self.x[rep] - 1) + rx[rep] * (log_age[rep] - log_tx)
        ll += _dot(w[rep], np.logaddexp(0.0, d))
        ws = w[rep] * special.expit(
            d
        )  # weight times the share of the likelihood from "dropped out after the last purchase"
        inv_tx = (1.0 / (alpha + self.utx))[self.tx_i[rep]]
        g_r = _dot(self.by_x, special.digamma(r + ux) - special.digamma(r)) + np.log(alpha) - _dot(w, log_age)
        g_r += _dot(ws, log_age[rep] - log_tx)
        g_alpha = r / alpha - _dot(w, rx * inv_age) + _dot(ws, rx[rep] * (inv_age[rep] - inv_tx))
        g_a = _dot(self.by_x, special.digamma(a + b) - special.digamma(a + b + ux)) + ws.sum() / a
        g_b = _dot(
            self.by_x,
            special.digamma(b + ux) - special.digamma(a + b + ux) - special.digamma(b) + special.digamma(a + b),
        )
        g_b -= _dot(ws, 1.0 / (b + self.x[rep] - 1))
        # d/d log(p) = p d/dp
        return -float(ll), -np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])


def fit_bgnbd(data: Calibration, max_customers: int = 50_000, seed: int = FIT_SEED) -> BGNBDParams | None:
    """Maximum-likelihood BG/NBD parameters; ``None`` (with a logged warning) when the fit fails.

    The log-likelihood is minimised over log-parameters with L-BFGS-B and its
    analytic gradient. Above ``max_customers`` customers, a seeded sample of
    that many is drawn from the calibration's rows (without replacement, a
    multivariate hypergeometric draw over the distinct rows): the sample, and
    so the fit, depends only on which (x, t_x, T) the customers have, never on
    their order or on how they were partitioned.
    """
    count = data.count
    if data.customers > max_customers:
        count = np.random.default_rng(seed).multivariate_hypergeometric(count, max_customers, method="marginals")
    keep = count > 0
    x, t_x, age, w = data.x[keep], data.t_x[keep], data.age[keep], count[keep].astype(float)
    total = w.sum()
    objective = _NegativeLogLikelihood(x, t_x, age, w)
    # Start at a rate that matches the mean purchase frequency, a moderate dropout probability (1/3).
    mean_rate = _dot(w, x + 1) / max(_dot(w, age), 1.0)
    start = np.log([1.0, 1.0 / max(mean_rate, 1e-6), 1.0, 2.0])
    start = np.clip(start, -_LOG_BOUND + 1, _LOG_BOUND - 1)
    # One BLAS thread: L-BFGS-B's vector steps on 4 parameters are tiny, and a threaded BLAS waking its threads
    # for each of them made the fit 4x slower on a busy 2-core machine.
    with np.errstate(all="ignore"), threadpool_limits(1, user_api="blas"):
        result = optimize.minimize(
            objective, start, jac=True, method="L-BFGS-B", bounds=[(-_LOG_BOUND, _LOG_BOUND)] * 4
        )
    gradient = np.asarray(result.jac, dtype=float)
    # L-BFGS-B may stop on a line-search failure at a point that is optimal to machine precision: accept a flat
    # gradient.
    converged = (
        (result.success or np.max(np.abs(gradient)) < 1e-5)
        and np.isfinite(result.fun)
        and np.all(np.isfinite(result.x))
    )
    if not converged:
        log.warning(
            "BG/NBD fit did not converge on %d customers (%s); BG/NBD features are NaN", int(total), result.message
        )
        return None
    r, alpha, a, b = np.exp(result.x)
    return BGNBDParams(float(r), float(alpha), float(a), float(b))


def p_alive(params: BGNBDParams, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """P(alive at T | x, t_x, T); 1 for customers with no repeat purchase (they have had no chance to drop out)."""
    return special.expit(-_log_dropout_odds(params, x, t_x, age))


def _log_dropout_odds(params: BGNBDParams, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """log[(a / (b+x-1)) ((alpha+T) / (alpha+t_x))^(r+x)] for x > 0; -inf (never dropped out) for x = 0."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    out = np.full(np.shape(x), -np.inf)
    repeat = x > 0
    xr = x[repeat]
    out[repeat] = (
        np.log(a) - np.log(b + xr - 1) + (r + xr) * (np.log(alpha + age[repeat]) - np.log(alpha + t_x[repeat]))
    )
    return out


def expected_purchases(
    params: BGNBDParams, horizon: float, x: np.ndarray, t_x: np.ndarray, age: np.ndarray
) -> np.ndarray:
    """Expected repeat purchase days in the next ``horizon`` days (Fader, Hardie & Lee 2005).

    E[Y(t) | x, t_x, T] = (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x)
    2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))] * P(alive). Values the
    hypergeometric function cannot give (non-finite, or negative from
    cancellation) are NaN.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    rx = r + x
    z = horizon / (alpha + age + horizon)
    with np.errstate(all="ignore"):
        shrink = np.exp(rx * (np.log(alpha + age) - np.log(alpha + age + horizon)))
        bracket = 1.0 - shrink * special.hyp2f1(rx, b + x, a + b + x - 1, z)
        out = (a + b + x - 1) / (a - 1) * bracket * p_alive(params, x, t_x, age)
    return np.where(np.isfinite(out) & (out >= 0), out, np.nan)


@dataclass(frozen=True)
class _History:
    """Each customer's purchase history strictly before T (arrays over all customers)."""

    n_days: np.ndarray  # distinct purchase days
    first_day: np.ndarray  # first purchase day (days since 1970), valid where n_days > 0
    last_day: np.ndarray
    first_ts: np.ndarray  # int64 us
    last_ts: np.ndarray
    n_purchases: np.ndarray
    value_total: np.ndarray
    days_in: dict[int, np.ndarray]  # distinct purchase days in each window
    value_in: dict[int, np.ndarray]  # spend in each window


def purchase_codes(config: FeatureConfig) -> np.ndarray:
    """Type codes (positions in ``config.interaction_types``) that count as purchases."""
    return np.array([config.interaction_types.index(name) for name in config.purchase_types], dtype=np.int16)


def _purchases_before(events: EventArrays, codes: np.ndarray, t: int, block: int) -> np.ndarray:
    """Indices of purchase events stamped before ``t``, found a block at a time (no mask over the whole history)."""
    if codes.size == 0:
        return np.zeros(0, dtype=np.int64)
    found = []
    types = events.extra["type"]
    for start in range(0, events.ts.size, block):
        part = slice(start, start + block)
        is_purchase = types[part] == codes[0]
        for code in codes[1:]:
            is_purchase |= types[part] == code
        found.append(np.flatnonzero(is_purchase & (events.ts[part] < t)) + start)
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def _history(events: EventArrays, n_customers: int, t: int, config: FeatureConfig, block: int) -> _History:
    idx = _purchases_before(events, purchase_codes(config), t, block)
    cust, ts, value = events.cust[idx], events.ts[idx], events.extra["value"][idx]
    day = ts // US_PER_DAY
    age = (t - ts) / US_PER_DAY  # > 0
    windows = config.transaction_windows_days
    days_in: dict[int, np.ndarray] = {}
    value_in = {w: np.bincount(cust, weights=value * (age <= w), minlength=n_customers) for w in windows}
    first_day = np.zeros(n_customers, dtype=np.int64)
    last_day = np.zeros(n_customers, dtype=np.int64)
    first_ts = np.full(n_customers, np.iinfo(np.int64).max, dtype=np.int64)
    last_ts = np.full(n_customers, np.iinfo(np.int64).min, dtype=np.int64)
    if idx.size:
        # One int64 key per (customer, day): sorted once, distinct days are where the key changes.
        day0 = int(day.min())
        span = int(day.max()) - day0 + 1
        key = cust * span + (day - day0)
        order = np.argsort(key)
        key = key[order]
        pair = key[np.r_[True, key[1:] != key[:-1]]]
        pair_cust, pair_day = pair // span, pair % span + day0
        n_days = np.bincount(pair_cust, minlength=n_customers)
        # Pairs are sorted by customer, then day: a customer's first and last pairs hold its first and last days.
        starts = np.flatnonzero(np.r_[True, pair_cust[1:] != pair_cust[:-1]])
        ends = np.r_[starts[1:] - 1, pair.size - 1]
        first_day[pair_cust[starts]] = pair_day[starts]
        last_day[pair_cust[ends]] = pair_day[ends]
        np.minimum.at(first_ts, cust, ts)
        np.maximum.at(last_ts, cust, ts)
        age_sorted = age[order]
        for w in windows:
            k = key[age_sorted <= w]
            days_in[w] = (
                np.bincount(k[np.r_[True, k[1:] != k[:-1]]] // span, minlength=n_customers)
                if k.size
                else np.zeros(n_customers, np.int64)
            )
    else:
        n_days = np.zeros(n_customers, dtype=np.int64)
        days_in = {w: np.zeros(n_customers, dtype=np.int64) for w in windows}
    return _History(
        n_days,
        first_day,
        last_day,
        first_ts,
        last_ts,
        np.bincount(cust, minlength=n_customers),
        np.bincount(cust, weights=value, minlength=n_customers),
        days_in,
        value_in,
    )


def _calibration_arrays(h: _History, t: int, who: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) in days of customers ``who`` (all with a purchase): T runs from the start of the first purchase
    day."""
    x = (h.n_days[who] - 1).astype(float)
    t_x = (h.last_day[who] - h.first_day[who]).astype(float)
    age = (t - h.first_day[who] * US_PER_DAY) / US_PER_DAY
    return x, t_x, age


def purchase_calibration(
    events: EventArrays, n_customers: int, as_of: pd.Timestamp, config: FeatureConfig, block: int = 1 << 20
) -> Calibration:
    """The BG/NBD calibration (purchases strictly before ``as_of``) of every customer with a purchase.

    For customer partitions (``p = features.build.prepare(bucket, ...)``):
    pool the buckets' ``purchase_calibration(p.interactions,
    len(p.customers), as_of, config)`` with :func:`pool_calibrations`, fit
    once with :func:`fit_bgnbd` and pass the parameters in
    ``Prepared.btyd_params``; every partition then scores with the parameters
    of the whole base, as the in-memory run does.
    """
    t = int(pd.Timestamp(as_of).to_datetime64().astype("datetime64[us]").astype(np.int64))
    h = _history(events, n_customers, t, config, block)
    return calibration(*_calibration_arrays(h, t, np.flatnonzero(h.n_days > 0)))


def purchase_features(
    events: EventArrays,
    n_customers: int,
    rows: np.ndarray,
    t: int,
    config: FeatureConfig,
    block: int = 1 << 20,
    params: BGNBDParams | None = None,
) -> dict[str, np.ndarray]:
    """Purchase features of customers ``rows`` (positions in the customers table) at ``t``, from purchases strictly
    before it.

    Args:
        events: the interaction arrays; ``config.purchase_types`` say which type codes are purchases.
        n_customers: length of the customers table the positions index.
        rows: positions of the snapshot's customers, in snapshot order.
        t: the as-of time, int64 microseconds.
        config: windows, purchase types, BG/NBD horizon and sample cap.
        block: events scanned at a time for the whole-history pass.
        params: BG/NBD parameters to use instead of fitting them on these
            events (the whole base's, when ``events`` hold one partition).

    Returns:
        Feature name to one value per row: counts and spend are 0 and the
        other features NaN for a customer with no purchase before ``t``. With
        ``purchase_types`` empty, nothing.
    """
    if not config.purchase_types:
        return {}
    h = _history(events, n_customers, t, config, block)
    n_days = h.n_days[rows]
    has = n_days > 0
    out: dict[str, np.ndarray] = {}
    for w in config.transaction_windows_days:
        out[names.PurchaseDays(w).name] = h.days_in[w][rows].astype(float)
    out[names.PURCHASE_DAYS_TOTAL.name] = n_days.astype(float)
    for w in config.transaction_windows_days:
        out[names.PurchaseValue(w).name] = h.value_in[w][rows].astype(float)  # bincount of no rows is int64
    n_purchases = h.n_purchases[rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        out[names.PURCHASE_VALUE_MEAN.name] = np.where(n_purchases > 0, h.value_total[rows] / n_purchases, np.nan)
        out[names.DAYS_SINCE_FIRST_PURCHASE.name] = np.where(has, (t - h.first_ts[rows]) / US_PER_DAY, np.nan)
        since_last = np.where(has, (t - h.last_ts[rows]) / US_PER_DAY, np.nan)
        out[names.DAYS_SINCE_LAST_PURCHASE.name] = since_last
        # The mean of the gaps between consecutive purchase days telescopes to (last - first) / (days - 1).
        gap = np.where(n_days > 1, (h.last_day[rows] - h.first_day[rows]) / (n_days - 1), np.nan)
        out[names.PURCHASE_GAP_MEAN_DAYS.name] = gap
        out[names.PURCHASE_RECENCY_VS_GAP.name] = since_last / gap
    out.update(_btyd_features(h, rows, has, t, config, params))
    return out


def _btyd_features(
    h: _History, rows: np.ndarray, has: np.ndarray, t: int, config: FeatureConfig, params: BGNBDParams | None
) -> dict[str, np.ndarray]:
    n = rows.size
    alive = np.full(n, np.nan)
    expected = np.full(n, np.nan)
    horizon = config.btyd_horizon_days
    columns = [f.name for f in names.btyd_features(config)]  # P(alive), then expected purchases
    if not has.any():  # nobody in the snapshot has bought yet: nothing to fit or score
        return dict(zip(columns, (alive, expected), strict=True))
    if params is not None and not params.fitted:  # the whole base could not be fitted (:data:`NOT_FITTED`)
        return dict(zip(columns, (alive, expected), strict=True))
    if params is None:
        buyers = np.flatnonzero(h.n_days > 0)
        if buyers.size < MIN_FIT_CUSTOMERS:
            log.debug(
                "BG/NBD not fitted: %d customer(s) with a purchase, fewer than %d", buyers.size, MIN_FIT_CUSTOMERS
            )
            return dict(zip(columns, (alive, expected), strict=True))
        params = fit_bgnbd(calibration(*_calibration_arrays(h, t, buyers)), config.btyd_fit_customers)
        if params is None:
            return dict(zip(columns, (alive, expected), strict=True))
    x, t_x, age = _calibration_arrays(h, t, rows[has])
    alive[has] = p_alive(params, x, t_x, age)
    expected[has] = expected_purchases(params, float(horizon), x, t_x, age)
    if np.isnan(expected[has]).any():
        log.warning(
            "BG/NBD expected purchases undefined for %d customer(s) (parameters %s); left NaN",
            int(np.isnan(expected[has]).sum()),
            params,
        )
    return dict(zip(columns, (alive, expected), strict=True))


def whole_base_parameters(
    calibrations: Mapping[pd.Timestamp, list[Calibration]], config: FeatureConfig
) -> dict[pd.Timestamp, BGNBDParams | None]:
    """BG/NBD parameters for each as-of date, fitted once on the pooled calibrations of every customer partition, by
    the in-memory rule: :data:`NOT_FITTED` with fewer than ``MIN_FIT_CUSTOMERS`` buyers or when the fit fails."""
    return {as_of: _whole_base_fit(pool_calibrations(parts), config) for as_of, parts in calibrations.items()}


def _whole_base_fit(pooled: Calibration, config: FeatureConfig) -> BGNBDParams:
    if pooled.customers < MIN_FIT_CUSTOMERS:
        return NOT_FITTED
    return fit_bgnbd(pooled, config.btyd_fit_customers) or NOT_FITTED
