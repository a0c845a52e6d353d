"""Synthetic customer-experience data with known ground truth.

The world is simulated day by day for a slice of customers at a time (so one
million customers fit in bounded memory):

* a latent satisfaction per customer mean-reverts to its own level, drifts and
  takes occasional shocks (a bad experience);
* usage events (logins, purchases) fall as satisfaction falls; support
  tickets, complaints, billing issues and failed payments rise;
* surveys are sent after some touchpoints and quarterly; a minority answers,
  and the very unhappy and very happy answer more often (response bias);
  detractors sometimes ask for a callback;
* a daily churn hazard depends on satisfaction, its recent fall, support
  trouble, tenure, price paid against the plan's list price, plan, contract,
  location, and a per-customer frailty that no feature can see;
* monthly retention campaigns contact a capped number of visibly at-risk
  customers (``contact_share`` of those alive), holding a random share
  (``control_share``) out as ``control``; each pick is drawn an action
  (retention_call, discount_offer or email_offer), control picks too.

The effect of a contact depends on where the customer's risk comes from. For
``CONTACT_EFFECT_DAYS`` after a treated contact the log hazard loses a share of
its *trouble* term (complaints, tickets, billing issues, failed payments, bad
survey answers and callback requests: service trouble a contact can fix) and a
share of its *price* term where positive (paying above the plan's list price,
which hurts monthly contracts most); the shares are per-customer draws
(``Responses``) times how much the action works on that driver (a call on
trouble, a discount on price, an email a little on both: ``ACTION_TROUBLE_FIX``,
``ACTION_PRICE_FIX``) times a per-customer, per-action affinity, at most
``MAX_FIX``. Frailty, tenure, usage drop and the other terms stay: the unseen
part of the risk does not respond at all. *Sleeping dogs* (two years' tenure or
more, low realised usage, at a contract decision: a monthly contract, or an
annual one within ``SLEEPING_DOG_RENEWAL_DAYS`` of its renewal anniversary, and
prone to it by a per-customer draw) are woken instead: the contact adds
``dog_harm`` times ``ACTION_DOG_HARM`` of the action times the affinity to their
log hazard, so they churn more. The best customers to contact are therefore not the riskiest.

A customer churns on the first day their cumulative hazard passes an Exp(1)
threshold drawn once. The same threshold applied to the hazard *without*
treatment gives the churn day had they not been contacted. For every contact
decision, treatment and control alike, the hazard over the next 90 days is
summed both with and without the contact's effect (the control rows with the
effect their drawn action would have had), which gives both potential outcomes
and both true probabilities (given alive on the action date, what is left of
the threshold is Exp(1)), hence the true individual effect. The ground truth,
kept in a separate folder the pipeline never reads, holds the cumulative hazard
for every customer and day, from which the true churn probability for any
as-of date and horizon is ``1 - exp(-(C[T+H] - C[T]))``, and those per-contact
outcomes (``_truth_actions``).

Code layout: ``_draw_customers`` draws the static ``Customers`` of a slice,
``World.start`` sets up the evolving ``World``, ``step`` advances it one day
(satisfaction, events, surveys, campaign, hazard), and ``_assemble_chunk``
turns customers and final world into the contract tables and the ground
truth. Every random draw comes from the slice's generator in a fixed order,
so a seed fixes the dataset byte for byte: keep that order when editing. The
contact responses alone come from a second generator, seeded by a child of the
slice's seed sequence and drawn once, before the first day, in the order
``Responses`` lists; the slice's own stream has the draws it had before they
existed. (It still moves on from the first day on which a contact changes who
is alive: how many customers a campaign or survey draws for depends on that.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.simulation import DRIFTS
from pipelines.simulation.truth import TRUTH_HORIZON_DAYS

log = logging.getLogger(__name__)

PLANS = ("basic", "standard", "premium")
PLAN_SHARE = (0.5, 0.35, 0.15)
PLAN_PRICE = (25.0, 45.0, 85.0)
PLAN_EFFECT = (0.45, 0.0, -0.5)
CHUNK_CUSTOMERS = 25_000
CONTACT_EFFECT_DAYS = 120
ACTIONS = ("retention_call", "discount_offer", "email_offer")
ACTION_SHARE = (0.5, 0.3, 0.2)
ACTION_COST = (12.0, 30.0, 2.0)
# How strongly each action works on each driver (multiplies the customer's own response):
# a call fixes service trouble, a discount answers price, an email does a little of both.
ACTION_TROUBLE_FIX = (1.0, 0.45, 0.2)
ACTION_PRICE_FIX = (0.35, 1.0, 0.2)
ACTION_DOG_HARM = (1.0, 0.6, 0.75)  # how much a contact wakes a sleeping dog
MAX_FIX = 0.95  # no contact removes all of a driver
SLEEPING_DOG_TENURE_DAYS = 730
SLEEPING_DOG_USAGE = 0.1  # realised daily usage (~365-day average) below which engagement is low
SLEEPING_DOG_RENEWAL_DAYS = 90  # an annual contract within this many days of its renewal anniversary
SLEEPING_DOG_PRONE = 0.35  # share of customers who would react badly to a contact at such a moment

# event type -> (channels, channel probabilities)
EVENT_CHANNELS: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "login": (("web", "app"), (0.45, 0.55)),
    "purchase": (("web", "app", "store"), (0.4, 0.35, 0.25)),
    "support_ticket": (("phone", "email", "chat"), (0.4, 0.25, 0.35)),
    "complaint": (("phone", "email", "social"), (0.5, 0.3, 0.2)),
    "billing_issue": (("phone", "email"), (0.6, 0.4)),
    "payment_failed": (("email",), (1.0,)),
}
EVENT_TYPES = tuple(EVENT_CHANNELS)

SATISFACTION_REVERSION = 1 / 90  # daily pull of satisfaction towards the customer's own level
SATISFACTION_NOISE = 0.035  # daily standard deviation of its drift
SHOCK_PROBABILITY = 1 / 900  # chance of a bad experience, per customer and day
TROUBLE_DECAY = float(np.exp(-1 / 90))  # daily decay of remembered trouble and bad answers
NEVER = 10**6  # distance, in days, of an event that has not happened

EventBatch = tuple[np.ndarray, int, int, np.ndarray]  # (customer rows, day, index into EVENT_TYPES, counts)
FEEDBACK_KEYS = ("idx", "day", "survey", "score", "callback", "bad")  # the arrays of one day's answers

COMMENTS_BAD = (
    "Waited too long on the phone",
    "Billing is confusing",
    "Thinking about cancelling",
    "Nobody solved my problem",
    "Too expensive for what I get",
)
COMMENTS_GOOD = ("Great service", "Quick and helpful", "Easy to use", "Happy with my plan")


# Known changes a dataset can be generated with from a date (``SyntheticConfig.drift``, one of ``DRIFTS``), for testing
# drift checks: ``survey_stop``: the survey programme stops (no NPS, CSAT or CES is sent); ``app_outage``: the app goes
# down, and only ``APP_OUTAGE_USAGE`` of log-ins and purchases still happen (on the web and in store).
APP_OUTAGE_USAGE = 0.35


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and seed of a synthetic dataset; the dynamics are fixed constants."""

    customers: int = 40_000
    months: int = 24
    seed: int = 42
    end_date: str = "2026-06-30"
    locations: int = 40
    base_daily_hazard: float = 0.00048
    contact_share: float = 0.05  # of alive customers, each monthly campaign (a few % is what retention programmes run)
    control_share: float = 0.3  # held out at random (10-30 % in practice): ~30 control churners a campaign to learn
    drift: str | None = None  # a known change injected from ``drift_from`` (one of ``DRIFTS``); None: none
    drift_from: str | None = None
    # The closed loop: campaigns from a decision log instead of the built-in rule on their dates (customer_id,
    # as_of, assigned_group treatment | holdout, as pipelines.io.decisions reads it); a customer assigned to
    # treatment is reached with probability ``reach_rate`` (a planned contact not made is not recorded).
    campaign_plan: pd.DataFrame | None = field(default=None, compare=False, hash=False, repr=False)
    reach_rate: float = 0.9

    def __post_init__(self) -> None:
        if self.drift is not None and self.drift not in DRIFTS:
            raise ValueError(f"drift must be one of {list(DRIFTS)} or None, got {self.drift!r}")
        if (self.drift is None) != (self.drift_from is None):
            raise ValueError("drift and drift_from go together: a change and the date it starts")
        if not 0 <= self.reach_rate <= 1:
            raise ValueError(f"reach_rate must be a share between 0 and 1, got {self.reach_rate}")

    def planned_on(self, date: pd.Timestamp) -> pd.DataFrame | None:
        """The decision log's picks for ``date`` (selected customers and their assigned groups), or None."""
        if self.campaign_plan is None:
            return None
        plan = self.campaign_plan
        today = plan[(pd.to_datetime(plan["as_of"]) == date) & (plan["assigned_group"].isin(["treatment", "holdout"]))]
        if "run_id" in today and today["run_id"].nunique() > 1:
            raise ValueError(
                f"the decision log holds {today['run_id'].nunique()} runs scored on {date.date()}: give one"
            )
        return today if len(today) else None

    def drifting(self, date: pd.Timestamp) -> str | None:
        """The injected change in force on ``date``, or None."""
        return self.drift if self.drift is not None and date >= pd.Timestamp(self.drift_from) else None


@dataclass
class SyntheticChunk:
    """One slice of customers: contract tables plus their ground truth."""

    tables: dict[str, pd.DataFrame]
    truth_customers: pd.DataFrame
    cum_hazard: np.ndarray  # (n, days + 1) float32, C at the start of each day
    truth_actions: pd.DataFrame


@dataclass(frozen=True)
class Calendar:
    """First and last day of the simulated window, and its length in days."""

    start: pd.Timestamp
    end: pd.Timestamp
    days: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", int((self.end - self.start).days) + 1)


def calendar(config: SyntheticConfig) -> Calendar:
    """Window of the dataset: ``months`` months ending on ``end_date`` inclusive."""
    end = pd.Timestamp(config.end_date)
    start = end + pd.Timedelta(days=1) - pd.DateOffset(months=config.months)
    return Calendar(start=pd.Timestamp(start), end=end)


def generate(config: SyntheticConfig) -> Iterator[SyntheticChunk]:
    """Yield the dataset one customer slice at a time (deterministic for a seed)."""
    cal = calendar(config)
    n_chunks = -(-config.customers // CHUNK_CUSTOMERS)
    seeds = np.random.SeedSequence(config.seed).spawn(n_chunks + 1)
    location_rng = np.random.default_rng(seeds[-1])
    location_effect = location_rng.normal(0.0, 0.1, config.locations)
    for k in range(n_chunks):
        first = k * CHUNK_CUSTOMERS
        n = min(CHUNK_CUSTOMERS, config.customers - first)
        # The contact responses come from a child of the slice's seed: the slice's own stream is untouched.
        effect_rng = np.random.default_rng(seeds[k].spawn(1)[0])
        yield _simulate_chunk(config, cal, first, n, np.random.default_rng(seeds[k]), effect_rng, location_effect)


@dataclass(frozen=True)
class Responses:
    """How each customer would respond to a retention contact, drawn once from the slice's effect generator.

    Drawn in this order: ``trouble_response``, ``price_response``, ``action_affinity``, ``dog_prone``,
    ``dog_harm``. A contact with action ``a`` removes ``min(trouble_response * ACTION_TROUBLE_FIX[a] *
    action_affinity[a], MAX_FIX)`` of the hazard's trouble term and the like (with ``price_response``,
    ``ACTION_PRICE_FIX``) of its positive price term; a sleeping dog instead gets ``dog_harm *
    ACTION_DOG_HARM[a] * action_affinity[a]`` added to the log hazard.
    """

    trouble_response: np.ndarray  # share of the trouble term a fully effective contact removes
    price_response: np.ndarray  # share of the positive price term a fully effective contact removes
    action_affinity: np.ndarray  # (n, len(ACTIONS)): how this customer takes each kind of action
    dog_prone: np.ndarray  # would resent a contact when settled, disengaged and at a contract decision
    dog_harm: np.ndarray  # log-hazard added by a contact that wakes them


def _draw_responses(n: int, rng: np.random.Generator) -> Responses:
    """The contact responses of a slice's customers (in the order ``Responses`` lists)."""
    return Responses(
        trouble_response=rng.beta(1.2, 1.8, n),
        price_response=rng.beta(1.2, 1.8, n),
        action_affinity=np.exp(rng.normal(0.0, 0.6, (n, len(ACTIONS)))),
        dog_prone=rng.random(n) < SLEEPING_DOG_PRONE,
        dog_harm=rng.uniform(0.4, 1.1, n),
    )


@dataclass(frozen=True)
class Customers:
    """Per-customer draws made once, before the first simulated day.

    Together with the day's random draws they fix everything that happens to
    a customer; the world state (``World``) is what evolves from them.
    """

    ids: np.ndarray  # "C0000001", ...
    signup_day: np.ndarray  # day index; negative: signed up before the window
    plan: np.ndarray  # index into PLANS
    monthly_revenue: np.ndarray  # price paid, list price times a personal ratio
    annual: np.ndarray  # annual contract (else monthly)
    invoice: np.ndarray  # pays by invoice (else card)
    location: np.ndarray  # index of the location
    satisfaction_level: np.ndarray  # the level satisfaction mean-reverts to
    initial_satisfaction: np.ndarray  # satisfaction on the first day
    activity: np.ndarray  # expected daily usage at neutral satisfaction
    frailty: np.ndarray  # log-hazard offset no feature can see
    threshold: np.ndarray  # Exp(1): churn once the cumulative hazard passes it
    static_log_hazard: np.ndarray  # the part of the log hazard that never changes
    price_log_hazard: np.ndarray  # its price term where positive (paying above list): what a contact can address
    experience_weight: np.ndarray  # how much trouble and bad answers weigh
    responses: Responses  # how they would respond to a contact (from the separate effect generator)

    @property
    def n(self) -> int:
        """Number of customers in the slice."""
        return int(self.ids.size)


def _draw_customers(
    config: SyntheticConfig,
    days: int,
    first: int,
    n: int,
    rng: np.random.Generator,
    effect_rng: np.random.Generator,
    location_effect: np.ndarray,
) -> Customers:
    """Draw the static attributes of customers ``first .. first + n - 1``.

    The order of the draws is part of the dataset's identity for a seed: do
    not reorder them. Their contact responses come from ``effect_rng``.
    """
    existing = rng.random(n) < 0.65
    signup_day = np.where(
        existing,
        -rng.integers(1, 4 * 365, n),  # signed up before the window
        rng.integers(0, days - 30, n),  # joined during the window
    )
    plan = rng.choice(3, n, p=PLAN_SHARE)
    price_ratio = np.exp(rng.normal(0.0, 0.12, n))
    annual = rng.random(n) < 0.3
    invoice = rng.random(n) < 0.3
    location = rng.integers(0, config.locations, n)
    mu = rng.normal(0.0, 0.7, n)
    s = mu + rng.normal(0.0, 0.3, n)
    activity = np.exp(rng.normal(np.log(45 / 365), 0.35, n))
    frailty = rng.normal(0.0, 0.15, n)
    rng.random(n)  # once a "persuadable" flag; still drawn so that the rest of the stream stays as it was
    threshold = rng.exponential(1.0, n)
    local = location_effect[location]
    static_log_hazard = _static_log_hazard(config, plan, price_ratio, annual, invoice, local) + frailty
    return Customers(
        ids=np.array([f"C{first + i:07d}" for i in range(n)], dtype=object),
        signup_day=signup_day,
        plan=plan,
        monthly_revenue=np.round(np.asarray(PLAN_PRICE)[plan] * price_ratio, 2),
        annual=annual,
        invoice=invoice,
        location=location,
        satisfaction_level=mu,
        initial_satisfaction=s,
        activity=activity,
        frailty=frailty,
        threshold=threshold,
        static_log_hazard=static_log_hazard,
        price_log_hazard=np.maximum(_price_log_hazard(price_ratio, annual), 0.0),
        # Annual contracts blunt the effect of trouble and bad experiences (interactions
        # that a linear model on the features cannot represent, as in real churn).
        experience_weight=np.where(annual, 0.5, 1.2),
        responses=_draw_responses(n, effect_rng),
    )


def _static_log_hazard(
    config: SyntheticConfig,
    plan: np.ndarray,
    price_ratio: np.ndarray,
    annual: np.ndarray,
    invoice: np.ndarray,
    location_effect: np.ndarray,
) -> np.ndarray:
    """Log daily hazard from what never changes (before frailty is added)."""
    return (
        np.log(config.base_daily_hazard)
        + np.asarray(PLAN_EFFECT)[plan]
        + np.where(annual, -1.8, 0.0)
        + np.where(invoice, 0.35, 0.0)
        + _price_log_hazard(price_ratio, annual)
        + location_effect
    )


def _price_log_hazard(price_ratio: np.ndarray, annual: np.ndarray) -> np.ndarray:
    """The log hazard's price term: paying above the plan's list price raises it, below lowers it."""
    # customers on annual contracts are locked in: price hurts them far less
    return np.where(annual, 1.5, 6.0) * np.log(price_ratio)


@dataclass
class World:
    """What evolves day by day for a slice of customers, and what has been recorded so far.

    ``step`` advances it by one day, in place. Arrays have one entry per
    customer; days are indices into the calendar.
    """

    satisfaction: np.ndarray  # latent, today
    satisfaction_long: np.ndarray  # its ~60-day average: a fall below it raises the hazard
    shock_memory: np.ndarray  # decaying count of recent shocks: they drive tickets and complaints
    trouble: np.ndarray  # decaying weighted count of tickets, complaints, billing issues, failed payments
    bad_answers: np.ndarray  # decaying count of bad survey answers
    usage_short: np.ndarray  # realised daily usage, ~45-day average
    usage_long: np.ndarray  # realised daily usage, ~365-day average
    recent_flag_day: np.ndarray  # last day with a visible risk signal (complaint, failed payment)
    detractor_or_callback_day: np.ndarray  # last day with a bad survey answer
    last_contact_day: np.ndarray  # last day picked by a campaign (treatment or control)
    contact_until: np.ndarray  # last day a treated customer's contact still changes the hazard
    # What the latest pick's contact does, or would do for a control customer (see ``_contact_shift``):
    fix_trouble: np.ndarray  # share of the trouble term it removes
    fix_price: np.ndarray  # share of the positive price term it removes
    harm: np.ndarray  # log hazard it adds (sleeping dogs only)
    cum_hazard: np.ndarray  # (n, days + 1) float32: observed cumulative hazard at the start of each day
    cum_observed: np.ndarray  # observed cumulative hazard now (float64: it is summed daily)
    cum_untreated: np.ndarray  # cumulative hazard now had no contact ever been made
    churn_day: np.ndarray  # day of churn; past the window while not churned
    churn_day_untreated: np.ndarray  # the same had no contact ever been made
    events: list[EventBatch] = field(default_factory=list)
    feedback: list[dict[str, np.ndarray]] = field(default_factory=list)  # from _surveys
    actions: list[dict[str, np.ndarray]] = field(default_factory=list)  # from _campaign

    @classmethod
    def start(cls, customers: Customers, days: int) -> World:
        """The world before day 0: nothing has happened yet."""
        n = customers.n
        s = customers.initial_satisfaction.copy()
        usage = customers.activity * np.exp(0.8 * s)  # expected daily usage, tracked from realised events
        return cls(
            satisfaction=s,
            satisfaction_long=s.copy(),
            shock_memory=np.zeros(n),
            trouble=np.zeros(n),
            bad_answers=np.zeros(n),
            usage_short=usage,
            usage_long=usage.copy(),
            recent_flag_day=np.full(n, -NEVER),
            detractor_or_callback_day=np.full(n, -NEVER),
            last_contact_day=np.full(n, -NEVER),
            contact_until=np.full(n, -1),
            fix_trouble=np.zeros(n),
            fix_price=np.zeros(n),
            harm=np.zeros(n),
            cum_hazard=np.zeros((n, days + 1), dtype=np.float32),
            cum_observed=np.zeros(n),
            cum_untreated=np.zeros(n),
            churn_day=np.full(n, days + NEVER),
            churn_day_untreated=np.full(n, days + NEVER),
        )


@dataclass(frozen=True)
class Day:
    """One simulated day: its index, its date and who is in the world."""

    t: int
    date: pd.Timestamp
    live: np.ndarray  # signed up by today, churned or not (the untreated world still runs)
    alive: np.ndarray  # signed up and not churned before today


def _simulate_chunk(
    config: SyntheticConfig,
    cal: Calendar,
    first: int,
    n: int,
    rng: np.random.Generator,
    effect_rng: np.random.Generator,
    location_effect: np.ndarray,
) -> SyntheticChunk:
    """Simulate customers ``first .. first + n - 1`` over the window: draw them, step each day, assemble."""
    customers = _draw_customers(config, cal.days, first, n, rng, effect_rng, location_effect)
    world = World.start(customers, cal.days)
    for t in range(cal.days):
        step(world, customers, config, rng, t, cal.start + pd.Timedelta(days=t))
    return _assemble_chunk(cal, rng, first, customers, world)


def step(
    world: World, customers: Customers, config: SyntheticConfig, rng: np.random.Generator, t: int, date: pd.Timestamp
) -> None:
    """Advance ``world`` by day ``t`` (``date``), in place.

    The sub-steps run in a fixed order, each drawing from ``rng``: satisfaction,
    events, surveys, the monthly campaign, then hazard and churn. That order is
    part of the dataset's identity for a seed.
    """
    live = customers.signup_day <= t
    day = Day(t=t, date=date, live=live, alive=live & (world.churn_day > t))
    drift = config.drifting(date)
    _move_satisfaction(world, customers, rng)
    counts = _events(world, customers, rng, day, APP_OUTAGE_USAGE if drift == "app_outage" else 1.0)
    _answer_surveys(world, customers, rng, day, counts, sending=drift != "survey_stop")
    planned = config.planned_on(date)
    if planned is not None:  # the pipeline's own action list, with its holdout
        _run_campaign(world, customers, config, rng, day, planned)
    elif date.day == 1 and t >= 90:  # monthly retention campaign on the first of the month, after 3 months
        _run_campaign(world, customers, config, rng, day)
    _accumulate_hazard(world, customers, day)


def _move_satisfaction(world: World, customers: Customers, rng: np.random.Generator) -> None:
    """Satisfaction mean-reverts to the customer's level, drifts and takes occasional shocks."""
    n = customers.n
    s = world.satisfaction
    shock = rng.random(n) < SHOCK_PROBABILITY
    s = (
        s
        + SATISFACTION_REVERSION * (customers.satisfaction_level - s)
        + SATISFACTION_NOISE * rng.standard_normal(n)
        - shock * rng.uniform(0.5, 1.5, n)
    )
    world.satisfaction = s
    world.satisfaction_long = world.satisfaction_long + (s - world.satisfaction_long) / 60
    world.shock_memory = 0.85 * world.shock_memory + shock


def _season(date: pd.Timestamp) -> float:
    """Usage multiplier of a date: a yearly wave, and more on weekends."""
    return 1.0 + 0.15 * np.sin(2 * np.pi * (date.day_of_year - 30) / 365) + (0.1 if date.day_of_week >= 5 else 0.0)


def _event_rates(world: World, customers: Customers, season: float) -> dict[str, np.ndarray]:
    """Expected count of each event type today: usage rises with satisfaction, trouble falls."""
    s, activity, shock_k, invoice = world.satisfaction, customers.activity, world.shock_memory, customers.invoice
    return {
        "login": activity * 0.8 * np.exp(0.8 * s) * season,
        "purchase": activity * 0.2 * np.exp(0.6 * s) * season,
        "support_ticket": 0.010 * np.exp(-0.7 * s) + 0.25 * shock_k,
        "complaint": 0.0015 * np.exp(-1.2 * s) + 0.06 * shock_k,
        "billing_issue": 0.0015 + 0.0015 * invoice,
        "payment_failed": 0.0006 + 0.004 * invoice,
    }


def _events(
    world: World, customers: Customers, rng: np.random.Generator, day: Day, usage: float = 1.0
) -> dict[str, np.ndarray]:
    """Draw today's events, record those of alive customers, and update usage and trouble.

    ``usage`` scales today's log-ins and purchases (an outage). Returns the counts per event type for every customer
    (zero for those not live).
    """
    rates = _event_rates(world, customers, _season(day.date))
    rates["login"], rates["purchase"] = rates["login"] * usage, rates["purchase"] * usage
    counts = {}
    for j, name in enumerate(EVENT_TYPES):
        c = rng.poisson(rates[name] * day.live)
        counts[name] = c
        idx = np.flatnonzero(c * day.alive)
        if idx.size:
            world.events.append((idx, day.t, j, c[idx]))
    world.trouble = world.trouble * TROUBLE_DECAY + (
        counts["support_ticket"] + 2 * counts["complaint"] + counts["billing_issue"] + counts["payment_failed"]
    )
    used = counts["login"] + counts["purchase"]
    world.usage_short += (used - world.usage_short) / 45
    world.usage_long += (used - world.usage_long) / 365
    visible_trouble = day.alive & ((counts["complaint"] > 0) | (counts["payment_failed"] > 0))
    world.recent_flag_day = np.where(visible_trouble, day.t, world.recent_flag_day)
    return counts


def _answer_surveys(
    world: World,
    customers: Customers,
    rng: np.random.Generator,
    day: Day,
    counts: dict[str, np.ndarray],
    sending: bool = True,
) -> None:
    """Send (unless not ``sending``) and answer today's surveys; bad answers raise the hazard and flag the customer."""
    fb = _surveys(rng, day, world.satisfaction, counts, customers.annual, sending)
    if fb is None:
        return
    bad = fb["bad"]
    world.detractor_or_callback_day[fb["idx"][bad]] = day.t
    np.add.at(world.bad_answers, fb["idx"][bad], 1.0)
    world.feedback.append(fb)


def _run_campaign(
    world: World,
    customers: Customers,
    config: SyntheticConfig,
    rng: np.random.Generator,
    day: Day,
    planned: pd.DataFrame | None = None,
) -> None:
    """Contact today's campaign picks; treatment changes their hazard for ``CONTACT_EFFECT_DAYS``.

    Every pick, control included, gets the effect its drawn action would have
    (``fix_trouble``, ``fix_price``, ``harm``): the truth needs it for both
    potential outcomes. Opens the pick's 90-day truth window (``h0``, ``h1``:
    the hazard summed without and with the contact, filled by ``_accumulate_hazard``).
    """
    act = (
        _campaign(config, rng, day, world)
        if planned is None
        else _planned_campaign(planned, customers, config, rng, day)
    )
    if act is None:
        return
    idx, a = act["idx"], act["planned"]
    r = customers.responses
    dog = _sleeping_dog(world, customers, day.t, idx)
    affinity = r.action_affinity[idx, a]
    world.fix_trouble[idx] = np.where(
        dog, 0.0, np.minimum(r.trouble_response[idx] * np.asarray(ACTION_TROUBLE_FIX)[a] * affinity, MAX_FIX)
    )
    world.fix_price[idx] = np.where(
        dog, 0.0, np.minimum(r.price_response[idx] * np.asarray(ACTION_PRICE_FIX)[a] * affinity, MAX_FIX)
    )
    world.harm[idx] = np.where(dog, r.dog_harm[idx] * np.asarray(ACTION_DOG_HARM)[a] * affinity, 0.0)
    world.last_contact_day[idx] = day.t
    treated = idx[act["treatment"]]
    world.contact_until[treated] = day.t + CONTACT_EFFECT_DAYS
    act["sleeping_dog"] = dog
    act["remaining"] = customers.threshold[idx] - world.cum_observed[idx]  # > 0: alive today
    act["h0"] = np.zeros(idx.size)
    act["h1"] = np.zeros(idx.size)
    world.actions.append(act)


def _sleeping_dog(world: World, customers: Customers, t: int, idx: np.ndarray) -> np.ndarray:
    """Which of the picks ``idx`` a contact today would wake rather than keep.

    Settled (two years' tenure or more), disengaged (low realised usage) and at
    a contract decision (an annual contract near its renewal anniversary; a
    monthly one can leave any month), and prone to it (a per-customer draw).
    """
    tenure = t - customers.signup_day[idx]
    to_renewal = (-tenure) % 365
    at_decision = ~customers.annual[idx] | (to_renewal <= SLEEPING_DOG_RENEWAL_DAYS)
    return (
        (tenure >= SLEEPING_DOG_TENURE_DAYS)
        & (world.usage_long[idx] < SLEEPING_DOG_USAGE)
        & at_decision
        & customers.responses.dog_prone[idx]
    )


def _contact_shift(world: World, customers: Customers, trouble_term: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Change of the log hazard of customers ``idx`` while their latest pick's contact works.

    It removes a share of the trouble term (complaints, tickets, billing
    issues, bad answers) and of the positive price term, and adds the harm
    done to a sleeping dog; frailty and the other terms stay.
    """
    return (
        -world.fix_trouble[idx] * trouble_term[idx]
        - world.fix_price[idx] * customers.price_log_hazard[idx]
        + world.harm[idx]
    )


def _log_hazard(world: World, customers: Customers, tenure: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Today's log daily hazard (before treatment), and its trouble term (what a contact can fix).

    The hazard is the static part plus what the world made of it.
    """
    tenure_effect = np.select([tenure < 90, tenure < 365], [1.5, 0.7], -np.minimum(0.3 * (tenure - 365) / 365, 0.8))
    # Usage drop: realised recent usage against the customer's own longer-run level.
    usage_drop = np.clip(np.log((world.usage_long + 0.03) / (world.usage_short + 0.03)), -1.5, 2.5)
    s = world.satisfaction
    trouble_term = customers.experience_weight * (0.7 * np.log1p(world.trouble) + 1.0 * np.log1p(world.bad_answers))
    log_hazard = (
        customers.static_log_hazard
        + tenure_effect
        - 0.15 * s
        + 0.3 * (world.satisfaction_long - s)
        # a usage drop says more about a new customer than about a settled one
        + np.where(tenure < 365, 3.0, 1.6) * usage_drop
        + trouble_term
    )
    return log_hazard, trouble_term


def _accumulate_hazard(world: World, customers: Customers, day: Day) -> None:
    """Add today's hazard, with and without treatment, and churn those whose total passes their threshold."""
    t = day.t
    tenure = t - customers.signup_day
    world.bad_answers *= TROUBLE_DECAY
    log_hazard, trouble_term = _log_hazard(world, customers, tenure)
    h_untreated = np.minimum(np.exp(log_hazard), 0.5) * day.live

    def contacted(idx: np.ndarray) -> np.ndarray:
        shift = _contact_shift(world, customers, trouble_term, idx)
        return np.minimum(np.exp(log_hazard[idx] + shift), 0.5) * day.live[idx]

    h = h_untreated.copy()
    treated_now = np.flatnonzero(world.contact_until >= t)
    h[treated_now] = contacted(treated_now)
    for act in world.actions:
        if act["day"][0] <= t < act["day"][0] + TRUTH_HORIZON_DAYS:  # the campaigns whose truth window is open
            if act["day"][0] == t:  # the addressable terms on the action date: which drives the risk
                act["trouble_term"] = trouble_term[act["idx"]]
                act["price_term"] = customers.price_log_hazard[act["idx"]]
            act["h0"] += h_untreated[act["idx"]]
            act["h1"] += contacted(act["idx"])
    world.cum_observed += h
    world.cum_untreated += h_untreated
    world.cum_hazard[:, t + 1] = world.cum_observed
    newly = day.alive & (world.cum_observed >= customers.threshold) & (tenure > 0)
    world.churn_day = np.where(newly, t, world.churn_day)
    still_in_untreated = day.live & (world.churn_day_untreated > t)
    newly_untreated = still_in_untreated & (world.cum_untreated >= customers.threshold) & (tenure > 0)
    world.churn_day_untreated = np.where(newly_untreated, t, world.churn_day_untreated)


def _surveys(
    rng: np.random.Generator,
    day: Day,
    s: np.ndarray,
    counts: dict[str, np.ndarray],
    annual: np.ndarray,
    sending: bool = True,
) -> dict[str, np.ndarray] | None:
    """Today's survey answers: CES after support, CSAT after purchases, quarterly NPS.

    Returns arrays (customer row, day, survey, score, callback, bad) of equal
    length, or None when nobody answered. Not ``sending``: the same draws, nobody asked.
    """
    n = s.size
    t, date, alive = day.t, day.date, day.alive & sending
    sent_ces = alive & (counts["support_ticket"] > 0) & (rng.random(n) < 0.3)
    sent_csat = alive & (counts["purchase"] > 0) & (rng.random(n) < 0.1)
    sent_nps = alive & (date.day == 15) & (date.month % 3 == 0) & (rng.random(n) < 0.35)
    parts = []
    for survey, sent in (("CES", sent_ces), ("CSAT", sent_csat), ("NPS", sent_nps)):
        # response bias: the very unhappy and the very happy answer more
        p_respond = np.clip(0.08 * (1 + 0.8 * np.abs(s)) * np.where(annual, 1.2, 1.0), 0, 0.6)
        idx = np.flatnonzero(sent & (rng.random(n) < p_respond))
        if idx.size:
            parts.append((survey, idx))
    if not parts:
        return None
    survey = np.concatenate([np.full(i.size, name, dtype=object) for name, i in parts])
    idx = np.concatenate([i for _, i in parts])
    si = s[idx]
    raw = np.select(
        [survey == "NPS", survey == "CSAT"],
        [7.2 + 2.2 * si + rng.normal(0, 1.4, idx.size), 3.7 + 0.9 * si + rng.normal(0, 0.7, idx.size)],
        4.9 + 1.1 * si + rng.normal(0, 0.9, idx.size),
    )
    hi = np.select([survey == "NPS", survey == "CSAT"], [10, 5], 7)
    lo = np.where(survey == "NPS", 0, 1)
    score = np.clip(np.round(raw), lo, hi).astype(int)
    bad = np.select([survey == "NPS", survey == "CSAT"], [score <= 6, score <= 2], score <= 3)
    callback = bad & (rng.random(idx.size) < 0.25)
    return {"idx": idx, "day": np.full(idx.size, t), "survey": survey, "score": score, "callback": callback, "bad": bad}


def _campaign(
    config: SyntheticConfig, rng: np.random.Generator, day: Day, world: World
) -> dict[str, np.ndarray] | None:
    """Pick up to the campaign's capacity of visibly at-risk customers; hold a random share out as control.

    Visible risk: a complaint or failed payment, or a bad survey answer, in the
    last 30 days, or much recent trouble; nobody is picked twice within 180 days.
    Returns arrays (customer row, day, treatment, planned action index, action, cost), or None.
    """
    t, alive = day.t, day.alive
    eligible = (
        alive
        & (t - world.last_contact_day > 180)
        & ((t - world.recent_flag_day <= 30) | (t - world.detractor_or_callback_day <= 30) | (world.trouble > 2.5))
    )
    idx = np.flatnonzero(eligible)
    capacity = int(config.contact_share * alive.sum())
    if idx.size == 0 or capacity == 0:
        return None
    if idx.size > capacity:
        idx = np.sort(rng.choice(idx, capacity, replace=False))
    treatment = rng.random(idx.size) >= config.control_share
    planned = rng.choice(len(ACTIONS), idx.size, p=ACTION_SHARE)  # control too: what it would have got
    action = np.asarray(ACTIONS, dtype=object)[planned]
    cost = np.asarray(ACTION_COST)[planned]
    return {
        "idx": idx,
        "day": np.full(idx.size, t),
        "treatment": treatment,
        "planned": planned,
        "action": np.where(treatment, action, "holdout"),
        "cost": np.where(treatment, cost, 0.0),
        "recorded": np.ones(idx.size, dtype=bool),
    }


def _planned_campaign(
    planned: pd.DataFrame, customers: Customers, config: SyntheticConfig, rng: np.random.Generator, day: Day
) -> dict[str, np.ndarray] | None:
    """Today's picks from a decision log, those of this chunk alive today: holdout customers are the control group;
    treatment customers are reached with probability ``reach_rate`` (the others are neither contacted nor
    recorded: a planned contact not made)."""
    rows = pd.Index(customers.ids).get_indexer(planned["customer_id"].astype(str))
    found = rows >= 0
    idx, assigned = rows[found], (planned["assigned_group"].to_numpy() == "treatment")[found]
    alive = day.alive[idx]
    idx, assigned = idx[alive], assigned[alive]
    if idx.size == 0:
        return None
    order = np.argsort(idx, kind="stable")
    idx, assigned = idx[order], assigned[order]
    reached = assigned & (rng.random(idx.size) < config.reach_rate)
    planned_action = rng.choice(len(ACTIONS), idx.size, p=ACTION_SHARE)
    action = np.asarray(ACTIONS, dtype=object)[planned_action]
    return {
        "idx": idx,
        "day": np.full(idx.size, day.t),
        "treatment": reached,
        "planned": planned_action,
        "action": np.where(reached, action, "holdout"),
        "cost": np.where(reached, np.asarray(ACTION_COST)[planned_action], 0.0),
        "recorded": reached | ~assigned,
    }


def _assemble_chunk(
    cal: Calendar, rng: np.random.Generator, first: int, customers: Customers, world: World
) -> SyntheticChunk:
    """The chunk's contract tables and ground truth, from the customers and the final world."""
    return SyntheticChunk(
        tables=_assemble_tables(cal, rng, customers, world),
        truth_customers=_truth_customers(cal, first, customers, world),
        cum_hazard=world.cum_hazard,
        truth_actions=_truth_actions(cal, customers, world),
    )


def _dates(cal: Calendar, days: np.ndarray) -> pd.DatetimeIndex:
    """Dates of day indices, in the contract's microsecond resolution."""
    return (cal.start + pd.to_timedelta(days, unit="D")).astype("datetime64[us]")


def _assemble_tables(
    cal: Calendar, rng: np.random.Generator, customers: Customers, world: World
) -> dict[str, pd.DataFrame]:
    """The five contract tables of the chunk.

    Interactions draw their times and details from ``rng`` before feedback
    draws its delays and comments: that order is part of the output for a seed.
    """
    ids = customers.ids
    interactions = _interaction_table(cal, rng, ids, world.events)
    feedback = _feedback_table(cal, rng, ids, world.churn_day, world.feedback)
    return {
        "customers": _customer_table(cal, customers),
        "interactions": interactions,
        "feedback": feedback,
        "churn_events": _churn_table(cal, ids, world.churn_day),
        "retention_actions": _action_table(cal, ids, world.actions),
    }


def _customer_table(cal: Calendar, customers: Customers) -> pd.DataFrame:
    """The ``customers`` table: one row per customer with their static attributes."""
    return pd.DataFrame(
        {
            "customer_id": customers.ids,
            "signup_date": _dates(cal, customers.signup_day),
            "monthly_revenue": customers.monthly_revenue,
            "location_id": np.array([f"L{x:03d}" for x in customers.location], dtype=object),
            "plan": np.asarray(PLANS, dtype=object)[customers.plan],
            "contract": np.where(customers.annual, "annual", "monthly"),
            "payment_method": np.where(customers.invoice, "invoice", "card_auto"),
        }
    )


def _expand_events(batches: list[EventBatch]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One (customer row, day, type index) per event, from the per-day (rows, day, type, counts) batches."""
    if not batches:
        empty = np.zeros(0, dtype=int)
        return empty, empty, empty
    idx = np.concatenate([p[0] for p in batches])
    day = np.concatenate([np.full(p[0].size, p[1]) for p in batches])
    typ = np.concatenate([np.full(p[0].size, p[2]) for p in batches])
    cnt = np.concatenate([p[3] for p in batches])
    return np.repeat(idx, cnt), np.repeat(day, cnt), np.repeat(typ, cnt)


def _event_details(rng: np.random.Generator, typ: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Channel of each event, and its value: amount of a purchase, minutes of a login, ticket or complaint."""
    channel = np.empty(typ.size, dtype=object)
    value = np.full(typ.size, np.nan)
    for j, name in enumerate(EVENT_TYPES):
        m = typ == j
        chans, probs = EVENT_CHANNELS[name]
        channel[m] = rng.choice(np.asarray(chans, dtype=object), m.sum(), p=probs)
        if name == "purchase":
            value[m] = np.round(np.exp(rng.normal(np.log(30), 0.6, m.sum())), 2)
        elif name in ("login", "support_ticket", "complaint"):
            value[m] = np.round(np.exp(rng.normal(np.log(6), 0.7, m.sum())), 1)  # minutes
    return channel, value


def _interaction_table(
    cal: Calendar, rng: np.random.Generator, ids: np.ndarray, batches: list[EventBatch]
) -> pd.DataFrame:
    """The ``interactions`` table: one row per event, at a random time of its day, in time order."""
    idx, day, typ = _expand_events(batches)
    seconds = rng.integers(6 * 3600, 23 * 3600, idx.size)
    channel, value = _event_details(rng, typ)
    timestamp = cal.start + pd.to_timedelta(day, unit="D") + pd.to_timedelta(seconds, unit="s")
    return pd.DataFrame(
        {
            "customer_id": ids[idx],
            "timestamp": timestamp.astype("datetime64[us]"),
            "channel": channel,
            "type": np.asarray(EVENT_TYPES, dtype=object)[typ],
            "value": value,
        }
    ).sort_values(["timestamp", "customer_id"], kind="stable", ignore_index=True)


def _comments(rng: np.random.Generator, bad: np.ndarray) -> np.ndarray:
    """A free-text comment on about 30% of answers, matching the answer's mood; None elsewhere."""
    n = bad.size
    comment = np.full(n, None, dtype=object)
    has_comment = rng.random(n) < 0.3
    bad_pick = rng.choice(np.asarray(COMMENTS_BAD, dtype=object), n)
    good_pick = rng.choice(np.asarray(COMMENTS_GOOD, dtype=object), n)
    comment[has_comment] = np.where(bad, bad_pick, good_pick)[has_comment]
    return comment


def _feedback_table(
    cal: Calendar, rng: np.random.Generator, ids: np.ndarray, churn_day: np.ndarray, parts: list[dict[str, np.ndarray]]
) -> pd.DataFrame:
    """The ``feedback`` table: answered a few hours after the touchpoint, never after churn or the window."""
    if parts:
        f = {k: np.concatenate([p[k] for p in parts]) for k in FEEDBACK_KEYS}
    else:
        f = {k: np.zeros(0, dtype=int) for k in FEEDBACK_KEYS}
    delay = rng.integers(3600, 20 * 3600, f["idx"].size)
    answered = cal.start + pd.to_timedelta(f["day"], unit="D") + pd.to_timedelta(23 * 3600 + delay, unit="s")
    answered_day = f["day"] + 1 + delay // 86400
    keep = (answered_day < churn_day[f["idx"]]) & (answered_day < cal.days)
    comment = _comments(rng, f["bad"])
    touchpoint = np.select([f["survey"] == "CES", f["survey"] == "CSAT"], ["support", "purchase"], "relationship")
    feedback = pd.DataFrame(
        {
            "customer_id": ids[f["idx"]],
            "timestamp": np.asarray(answered, dtype="datetime64[us]"),
            "survey": f["survey"].astype(object),
            "score": f["score"].astype("int64"),
            "comment": comment,
            "callback_requested": f["callback"].astype(bool),
            "touchpoint": touchpoint.astype(object),
        }
    )
    return feedback[keep].sort_values(["timestamp", "customer_id"], kind="stable", ignore_index=True)


def _churn_table(cal: Calendar, ids: np.ndarray, churn_day: np.ndarray) -> pd.DataFrame:
    """The ``churn_events`` table: one row per customer who churned inside the window."""
    churned = churn_day < cal.days
    return pd.DataFrame({"customer_id": ids[churned], "churn_date": _dates(cal, churn_day[churned])}).sort_values(
        ["churn_date", "customer_id"], kind="stable", ignore_index=True
    )


def _action_table(cal: Calendar, ids: np.ndarray, parts: list[dict[str, np.ndarray]]) -> pd.DataFrame:
    """The ``retention_actions`` table: every campaign pick, treatment or control (holdout)."""
    if not parts:
        return pd.DataFrame(
            {
                "customer_id": [],
                "action_date": pd.Series([], dtype="datetime64[us]"),
                "group": [],
                "action": [],
                "cost": [],
            }
        )
    a = {k: np.concatenate([p[k] for p in parts]) for k in ("idx", "day", "treatment", "action", "cost")}
    recorded = np.concatenate([p["recorded"] for p in parts])
    return pd.DataFrame(
        {
            "customer_id": ids[a["idx"]],
            "action_date": _dates(cal, a["day"]),
            "group": np.where(a["treatment"], "treatment", "control").astype(object),
            "action": a["action"].astype(object),
            "cost": a["cost"].astype(float),
        }
    )[recorded].reset_index(drop=True)


def _truth_customers(cal: Calendar, first: int, customers: Customers, world: World) -> pd.DataFrame:
    """Ground truth per customer: latent values and churn days, observed and had they never been contacted."""
    D = cal.days
    return pd.DataFrame(
        {
            "customer_id": customers.ids,
            "truth_row": np.arange(first, first + customers.n),
            "satisfaction_level": customers.satisfaction_level,
            "frailty": customers.frailty,
            "trouble_response": customers.responses.trouble_response,
            "price_response": customers.responses.price_response,
            "dog_prone": customers.responses.dog_prone,
            "churn_day": np.where(world.churn_day < D, world.churn_day, -1),
            "churn_day_if_never_contacted": np.where(world.churn_day_untreated < D, world.churn_day_untreated, -1),
        }
    )


def _truth_actions(cal: Calendar, customers: Customers, world: World) -> pd.DataFrame:
    """Both potential outcomes of every contact decision (treatment and control) over the following 90 days.

    A customer churns once the cumulative hazard passes their threshold; given
    alive on the action date, what is left of it is Exp(1) (memoryless). Over
    the window (cut at the end of the data) the hazard was summed both without
    the contact (``h0``: contacts are at least 180 days apart and work for 120,
    so that is the untreated hazard) and with the effect of the drawn action
    (``h1``, for control rows too), so each outcome is ``remaining <= H`` and
    each probability ``1 - exp(-H)``.
    """
    columns = [
        "customer_id",
        "action_date",
        "group",
        "action",
        "sleeping_dog",
        "effect_driver",
        "churned_within_90d",
        "churned_within_90d_if_contacted",
        "churned_within_90d_if_not_contacted",
        "p_churn_if_contacted",
        "p_churn_if_not_contacted",
        "true_uplift",
        "saved",
        "harmed",
    ]
    if not world.actions:
        return pd.DataFrame(columns=columns)
    a = {k: np.concatenate([p[k] for p in world.actions]) for k in world.actions[0]}
    idx, day, treat = a["idx"], a["day"], a["treatment"]
    churn_day = world.churn_day[idx]
    churned = (churn_day >= day) & (churn_day < day + TRUTH_HORIZON_DAYS)
    if_contacted = a["remaining"] <= a["h1"]
    if_not = a["remaining"] <= a["h0"]
    p1, p0 = -np.expm1(-a["h1"]), -np.expm1(-a["h0"])
    # which addressable term of the hazard was larger on the action date (or that the contact wakes them)
    driver = np.select(
        [a["sleeping_dog"], a["trouble_term"] + a["price_term"] <= 0.0, a["trouble_term"] >= a["price_term"]],
        ["sleeping_dog", "none", "trouble"],
        "price",
    )
    frame = pd.DataFrame(
        {
            "customer_id": customers.ids[idx],
            "action_date": _dates(cal, day),
            "group": np.where(treat, "treatment", "control"),
            "action": np.asarray(ACTIONS, dtype=object)[a["planned"]],  # drawn for control rows too
            "sleeping_dog": a["sleeping_dog"],
            "effect_driver": driver.astype(object),
            "churned_within_90d": churned,
            "churned_within_90d_if_contacted": if_contacted,
            "churned_within_90d_if_not_contacted": if_not,
            "p_churn_if_contacted": p1,
            "p_churn_if_not_contacted": p0,
            "true_uplift": p0 - p1,
            "saved": treat & if_not & ~if_contacted,
            "harmed": treat & if_contacted & ~if_not,
        }
    )
    return frame[columns]
