"""Typed, frozen configuration loaded once from YAML; unknown keys are errors; relative paths are the file's."""

from __future__ import annotations

import codecs
import dataclasses
import os
import re
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import pandas as pd
import yaml

from features.config import FeatureConfig
from models.drift import DriftRule
from pipelines.attributes import ATTRIBUTE_TYPES, usable_features
from pipelines.errors import UserError

PATH = {"path": True}  # field metadata: a path, resolved against the config file's folder
PATH_WORDS = ("auto",)  # values of path fields that are not paths (truth: auto)
# train.yaml, score.yaml (which holds recover's section too): found from any working directory
DEFAULT_CONFIGS = Path(__file__).resolve().parent / "conf"


class ConfigError(UserError):
    """The config file says something the pipeline cannot use; names the key."""


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def iso_date(text: Any, where: str) -> pd.Timestamp:
    """A calendar date written ``YYYY-MM-DD`` (the one form a config or a flag takes), else :class:`ConfigError`.

    pandas would read ``04/03/2024`` month first, ``2024`` as 1 January and
    ``June 30`` in year 1; a date that decides labels is never guessed.
    """
    value = str(text).strip()
    if _ISO_DATE.match(value):
        try:
            return pd.Timestamp(value)
        except ValueError:
            pass
    raise ConfigError(f"{where}: {text!r} is not a date; expected YYYY-MM-DD, e.g. 2024-06-30")


def end_timestamp(end_date: str | None) -> pd.Timestamp | None:
    """A config's ``end_date`` (the extract date, checked when the config was read) as a date; None when not given."""
    return pd.Timestamp(end_date) if end_date else None


def _check_engine(engine: str, partitions: int) -> None:
    """``engine:`` and ``partitions:`` of a training or scoring config (recover reads the scoring config's)."""
    if engine not in ("pandas", "spark"):
        raise ConfigError(f"engine: expected 'pandas' or 'spark', got {engine!r}")
    if partitions < 1:
        raise ConfigError(f"partitions: expected at least 1, got {partitions}")


def _positive_days(value: int | None, where: str) -> None:
    if value is not None and value < 1:
        raise ConfigError(f"{where}: expected a whole number of days, at least 1, got {value}")


@dataclass(frozen=True)
class AsOfConfig:
    dates: tuple[str, ...] = ()
    start: str | None = None
    end: str | None = None
    step_months: int = 1

    def __post_init__(self) -> None:
        for i, d in enumerate(self.dates):
            iso_date(d, f"as_of.dates[{i}]")
        for key in ("start", "end"):
            if getattr(self, key) is not None:
                iso_date(getattr(self, key), f"as_of.{key}")
        if self.step_months < 1:
            raise ConfigError(f"as_of.step_months: expected at least 1, got {self.step_months}")

    def resolve(self) -> list[pd.Timestamp]:
        if self.dates:
            return sorted({pd.Timestamp(d) for d in self.dates})
        if not (self.start and self.end):
            raise ConfigError("as_of: give either `dates` or both `start` and `end`")
        return list(
            pd.date_range(pd.Timestamp(self.start), pd.Timestamp(self.end), freq=pd.DateOffset(months=self.step_months))
        )


@dataclass(frozen=True)
class FeaturesSection:
    windows_days: tuple[int, ...] = (30, 90, 180)
    exclude_columns: tuple[str, ...] = ()
    attribute_types: dict[str, str] = field(
        default_factory=dict
    )  # customer column -> number|boolean|date|category|identifier|exclude
    purchase_types: tuple[str, ...] = (
        "purchase",
    )  # interaction types that are purchases (transaction features); [] = none
    transaction_windows_days: tuple[int, ...] = (90, 180, 365)  # purchase-day and spend windows
    rate_baseline_days: int = 365  # long-run rate each interaction type's recent rate is compared with

    def __post_init__(self) -> None:
        wrong = {c: t for c, t in self.attribute_types.items() if t not in ATTRIBUTE_TYPES}
        if wrong:
            raise ConfigError(f"features.attribute_types: {wrong}: each type must be one of {list(ATTRIBUTE_TYPES)}")


@dataclass(frozen=True)
class PopulationConfig:
    """Who is scored and labelled at T with an ``inactivity`` label.

    With ``events`` labels: everyone signed up and not churned.
    """

    active_within_days: int | None = (
        180  # an interaction in the N days before T; null = every customer who signed up before T
    )

    def __post_init__(self) -> None:
        if self.active_within_days is not None and self.active_within_days < 1:
            raise ConfigError(
                f"population.active_within_days: expected at least 1 or null, got {self.active_within_days}"
            )


@dataclass(frozen=True)
class SplitConfig:
    test_share: float = 0.25
    validation_share: float = 0.2
    cv_folds: int = 5


@dataclass(frozen=True)
class SearchConfig:
    """The LightGBM search's budget.

    It stops at ``trials`` trials or after ``timeout_seconds``, whichever comes first. The defaults are
    ``train.yaml``'s, so a config that leaves the section out (``telco.yaml``) searches as the shipped one does.
    """

    trials: int = 8
    timeout_seconds: float = 75.0
    seed: int | None = None  # None: the top-level seed

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise ConfigError(f"model.search.trials: expected at least 1, got {self.trials}")
        if self.timeout_seconds <= 0:
            raise ConfigError(f"model.search.timeout_seconds: expected a positive number, got {self.timeout_seconds}")


@dataclass(frozen=True)
class ModelConfig:
    calibration: Literal["sigmoid", "isotonic"] = "sigmoid"
    class_weight: Literal["balanced"] | None = None
    early_stopping_rounds: int = 50
    negative_sample_rate: float = 1.0
    # 100 trees (LightGBM's default) would cap early stopping; bagging needs subsample_freq; one thread (train.yaml)
    params: dict[str, Any] = field(default_factory=lambda: {"n_estimators": 3000, "subsample_freq": 1, "n_jobs": 1})
    search: SearchConfig = field(default_factory=SearchConfig)


@dataclass(frozen=True)
class BaselineConfig:
    C: tuple[float, ...] = (0.01, 0.1, 1.0)  # tried on the validation rows; one number is a list of one

    def __post_init__(self) -> None:
        if not self.C or any(isinstance(c, bool) or not isinstance(c, (int, float)) or c <= 0 for c in self.C):
            raise ConfigError(f"baseline.C: expected positive numbers, got {list(self.C)}")


@dataclass(frozen=True)
class PromotionConfig:
    primary_metric: str = "test_roc_auc"
    min_improvement: float = 0.002
    max_ece: float = 0.03


@dataclass(frozen=True)
class InputConfig:
    """How raw CSV extracts are read: their encoding and the time zone of timestamps written without one."""

    encoding: str = "utf-8"  # UTF-8 with or without a byte-order mark; e.g. latin-1, cp1252 for other exports
    timezone: str = "UTC"  # an IANA zone (Europe/Berlin): naive timestamps are local times there, converted to UTC

    def __post_init__(self) -> None:
        try:
            codecs.lookup(self.encoding)
        except LookupError as err:
            raise ConfigError(
                f"input.encoding: {self.encoding!r} is not an encoding Python knows (e.g. utf-8, latin-1, cp1252)"
            ) from err
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
            raise ConfigError(
                f"input.timezone: {self.timezone!r} is not an IANA time zone (e.g. UTC, Europe/Berlin)"
            ) from err


@dataclass(frozen=True)
class MlflowConfig:
    experiment: str = "churn-propensity"
    registered_model: str = "churn-propensity"


@dataclass(frozen=True)
class TrainConfig:
    data: str = field(default="data/synthetic", metadata=PATH)
    end_date: str | None = None
    truth: str | None = field(default="auto", metadata=PATH)
    input: InputConfig = field(default_factory=InputConfig)
    as_of: AsOfConfig = field(default_factory=AsOfConfig)
    horizon_days: int = 90
    label: Literal["events", "inactivity"] = "events"
    population: PopulationConfig = field(default_factory=PopulationConfig)
    features: FeaturesSection = field(default_factory=FeaturesSection)
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    promotion: PromotionConfig = field(default_factory=PromotionConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    seed: int = 42
    shap_sample: int = 2000
    engine: str = "pandas"  # how the snapshot is built: "pandas" or "spark" (needs the spark extra)
    partitions: int = 1  # customer buckets built one at a time (1 = the whole dataset in memory)

    def __post_init__(self) -> None:
        if self.end_date is not None:
            iso_date(self.end_date, "end_date")
        _positive_days(self.horizon_days, "horizon_days")
        _check_engine(self.engine, self.partitions)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def feature_config_to_type(self) -> FeatureConfig:
        """The feature settings before validation has typed the customer attributes (``attribute_types`` None): what
        an engine's snapshot takes, applying the types its validation decides."""
        return dataclasses.replace(self.feature_config({}), attribute_types=None)

    def feature_config(self, attribute_types: dict[str, str]) -> FeatureConfig:
        """The feature stage's settings (:func:`feature_config`) for this config's label, population and horizon.

        ``attribute_types`` are the customer attribute types validation decided
        (with this config's ``features.attribute_types`` applied).
        """
        return feature_config(self, attribute_types)


def feature_config(config: TrainConfig | UpliftConfig, attribute_types: dict[str, str]) -> FeatureConfig:
    """The one place where a training config (churn or uplift: the same keys) becomes the feature stage's settings."""
    return FeatureConfig(
        windows_days=config.features.windows_days,
        exclude_columns=config.features.exclude_columns,
        label_source=config.label,
        inactivity_active_days=config.population.active_within_days,
        attribute_types=tuple(usable_features(attribute_types, config.features.exclude_columns).items()),
        purchase_types=config.features.purchase_types,
        transaction_windows_days=config.features.transaction_windows_days,
        rate_baseline_days=config.features.rate_baseline_days,
        btyd_horizon_days=config.horizon_days,  # expected purchases over the label's horizon
    )


@dataclass(frozen=True)
class UpliftSection:
    """``churn train-uplift``'s own settings: which learners compete, how campaigns are split, how it is judged."""

    learners: tuple[str, ...] = ("t_learner", "x_learner", "dr_learner", "interaction")  # best validation Qini wins
    test_campaigns: int = 3  # the latest campaign dates with observed outcomes: the test
    validation_campaigns: int = 3  # the dates before them whose outcome windows close by the test: the choice
    capacity_share: float = 0.3  # share of a campaign's customers a policy contacts (the true-saves comparison)
    risk_model: str | None = "churn-propensity@champion"  # the churn ranking uplift is compared with (None: own)
    params: dict[str, Any] = field(default_factory=dict)  # LightGBM parameters over models.uplift.DEFAULT_PARAMS
    resamples: int = 200  # bootstrap resamples of the test metrics' intervals
    confidence: float = 0.95  # their level
    cv_folds: int = 5  # one campaign date only: cross-validated Qini on the training customers

    def __post_init__(self) -> None:
        known = ("t_learner", "x_learner", "dr_learner", "interaction")
        unknown = sorted(set(self.learners) - set(known))
        if not self.learners or unknown:
            raise ConfigError(f"uplift.learners: expected some of {list(known)}, got {unknown}")
        for key in ("test_campaigns", "validation_campaigns", "resamples"):
            if getattr(self, key) < 1:
                raise ConfigError(f"uplift.{key}: expected at least 1, got {getattr(self, key)}")
        for key in ("capacity_share", "confidence"):
            if not 0 < getattr(self, key) < 1:
                raise ConfigError(f"uplift.{key}: expected a share between 0 and 1, got {getattr(self, key)}")


@dataclass(frozen=True)
class UpliftConfig:
    """``churn train-uplift`` (``pipelines/conf/uplift.yaml``): the keys it shares with ``train.yaml`` mean the same."""

    data: str = field(default="data/synthetic", metadata=PATH)
    end_date: str | None = None
    truth: str | None = field(default="auto", metadata=PATH)
    input: InputConfig = field(default_factory=InputConfig)
    horizon_days: int = 90  # churn within this many days of the action date
    label: Literal["events", "inactivity"] = "events"
    population: PopulationConfig = field(default_factory=PopulationConfig)
    features: FeaturesSection = field(default_factory=FeaturesSection)
    uplift: UpliftSection = field(default_factory=UpliftSection)
    mlflow: MlflowConfig = field(
        default_factory=lambda: MlflowConfig(experiment="churn-uplift", registered_model="churn-uplift")
    )
    seed: int = 42

    def __post_init__(self) -> None:
        if self.end_date is not None:
            iso_date(self.end_date, "end_date")
        _positive_days(self.horizon_days, "horizon_days")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ValueConfig:
    save_rate: float = 0.2
    measure_save_rate: bool = True
    measurement_days: int = 365
    horizon_days: int = 90
    contact_cost: float = 15.0
    capacity_per_location: int | None = 25
    budget: float | None = None
    adjust_recent: bool = True  # regression-adjust recent campaigns' saving in memory (as recover.adjustment)

    def __post_init__(self) -> None:
        _positive_days(self.measurement_days, "value.measurement_days")
        _positive_days(self.horizon_days, "value.horizon_days")


@dataclass(frozen=True)
class HoldoutConfig:
    """The random holdout every scoring run reserves from its action list (:mod:`models.decisions`): ``share`` of the
    selected customers, stratified by location and risk tier, not to be contacted; 0 holds nobody out."""

    share: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.share < 1:
            raise ConfigError(f"holdout.share: expected a share in [0, 1), got {self.share}")


@dataclass(frozen=True)
class SaveValueConfig:
    """What a save is worth (:func:`models.value.save_value`): paying months over ``months`` from the survival of
    past campaigns' customers after their outcome window, and a lifetime view over ``lifetime_months`` discounted at
    ``discount_rate`` a year. Scoring's expected value of a contact and recover's revenue use it."""

    months: int = 12
    lifetime_months: int = 60
    discount_rate: float = 0.1

    def __post_init__(self) -> None:
        for key in ("months", "lifetime_months"):
            if getattr(self, key) < 1:
                raise ConfigError(f"save_value.{key}: expected at least 1 month, got {getattr(self, key)}")
        if not 0 <= self.discount_rate < 1:
            raise ConfigError(f"save_value.discount_rate: expected a yearly rate in [0, 1), got {self.discount_rate}")


@dataclass(frozen=True)
class TierConfig:
    """Risk tiers as shares of the scored customers, highest probability first; the rest are ``low``.

    One definition for scoring, which assigns them, and ``churn recover``, which breaks its result down by them.
    """

    high: float = 0.10
    medium: float = 0.20

    def __post_init__(self) -> None:
        for key in ("high", "medium"):
            if not 0 <= getattr(self, key) <= 1:
                raise ConfigError(f"risk_tiers.{key}: expected a share between 0 and 1, got {getattr(self, key)}")
        if self.high + self.medium > 1:
            raise ConfigError(f"risk_tiers: high + medium is {self.high + self.medium}, more than every customer")


@dataclass(frozen=True)
class BootstrapConfig:
    """Percentile-bootstrap intervals of a measured recovery (treatment and control resampled separately)."""

    resamples: int = 2000
    confidence: float = 0.95  # the intervals' level
    seed: int = 0

    def __post_init__(self) -> None:
        if self.resamples < 1:
            raise ConfigError(f"recover.bootstrap.resamples: expected at least 1, got {self.resamples}")
        if not 0 < self.confidence < 1:
            raise ConfigError(f"recover.bootstrap.confidence: expected a share between 0 and 1, got {self.confidence}")


@dataclass(frozen=True)
class AdjustmentConfig:
    """Regression adjustment of the measured saving on a prognostic churn score (:mod:`models.adjustment`).

    ``pre_period`` trains the score on ``pre_period_dates`` monthly snapshots whose label windows close before the
    first action measured; ``cross_fit`` scores the action rows out of fold (``folds``, grouped by customer);
    ``auto`` takes the first when its snapshots hold at least ``min_churners`` churners, else the second when the
    action rows do; ``none`` reports the plain difference in means only.
    """

    method: Literal["auto", "pre_period", "cross_fit", "none"] = "auto"
    pre_period_dates: int = 6
    folds: int = 5
    min_churners: int = 100
    max_rows: int = 250_000  # pre-period rows the model is trained on at most (a random share of customers beyond)
    seed: int = 0

    def __post_init__(self) -> None:
        for key, least in (("pre_period_dates", 1), ("folds", 2), ("min_churners", 1), ("max_rows", 1000)):
            if getattr(self, key) < least:
                raise ConfigError(f"recover.adjustment.{key}: expected at least {least}, got {getattr(self, key)}")


@dataclass(frozen=True)
class RecoverConfig:
    """``churn recover``'s own settings: the ``recover:`` section of the scoring config.

    Recover shares the rest with scoring: ``data``, ``end_date``, ``input``, ``engine`` and ``partitions`` (where it
    runs), ``model`` (whose risk tiers split the result) and ``risk_tiers``, so that a tier means the same in the
    scores and in the measured recovery.
    """

    out: str = field(default="data/recovery", metadata=PATH)  # results go to OUT/recover_FROM_TO/
    experiment: str = "churn-recovery"
    horizon_days: int = 90  # churn window after each action
    label: Literal["events", "inactivity"] = "events"  # churn after an action: a churn event, or no interaction
    tiers: bool = True  # break the result down by the risk tier `model` gave each customer on the action date
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    min_control_customers: int = 50  # fewer customers in a control group, or fewer churners among them, and the
    min_control_churners: int = 5  # measurement warns that it cannot say anything
    power: float = 0.8  # the power calculation: the saving detected this often is the design's minimum detectable
    precision: float = 0.25  # ... and the next campaign is sized for an interval of +- this share of the saving
    adjustment: AdjustmentConfig = field(default_factory=AdjustmentConfig)
    truth: str | None = field(default="auto", metadata=PATH)  # synthetic data's ground truth (auto: DATA_truth)

    def __post_init__(self) -> None:
        _positive_days(self.horizon_days, "recover.horizon_days")
        for key in ("power", "precision"):
            if not 0 < getattr(self, key) < 1:
                raise ConfigError(f"recover.{key}: expected a share between 0 and 1, got {getattr(self, key)}")
        for key in ("min_control_customers", "min_control_churners"):
            if getattr(self, key) < 0:
                raise ConfigError(f"recover.{key}: expected a count, at least 0, got {getattr(self, key)}")


@dataclass(frozen=True)
class MonitorConfig:
    """``churn monitor``'s settings (the ``monitor:`` section of the scoring config): realised performance of past
    scoring runs once their label windows have closed, and the floors below which it, and scoring, exit 1."""

    out: str = field(default="data/monitoring", metadata=PATH)  # the report goes to OUT/report.html
    experiment: str = "churn-monitoring"
    min_roc_auc: float | None = None  # floor on the latest closed run's realised ROC AUC; None: no floor
    max_ece: float | None = None  # ceiling on its realised expected calibration error; None: none

    def __post_init__(self) -> None:
        for key in ("min_roc_auc", "max_ece"):
            value = getattr(self, key)
            if value is not None and not 0 <= value <= 1:
                raise ConfigError(f"monitor.{key}: expected a number between 0 and 1 or null, got {value}")

    @property
    def has_floor(self) -> bool:
        return self.min_roc_auc is not None or self.max_ece is not None


@dataclass(frozen=True)
class DriftConfig:
    """When scoring flags drift (:class:`models.drift.DriftRule`) and whether a flag fails the run."""

    psi_warning: float = 0.2
    significance: float = 0.001
    min_importance: float = 0.01
    mean_change: float = 0.2
    feed_drop: float = 0.5
    fail_on_drift: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.significance < 1:
            raise ConfigError(f"drift.significance: expected a probability between 0 and 1, got {self.significance}")
        if not 0 <= self.min_importance < 1:
            raise ConfigError(f"drift.min_importance: expected a share in [0, 1), got {self.min_importance}")
        if self.mean_change <= 0:
            raise ConfigError(f"drift.mean_change: expected a relative change above 0, got {self.mean_change}")
        if not 0 < self.feed_drop < 1:
            raise ConfigError(f"drift.feed_drop: expected a relative fall between 0 and 1, got {self.feed_drop}")

    @property
    def rule(self) -> DriftRule:
        return DriftRule(self.psi_warning, self.significance, self.min_importance, self.mean_change, self.feed_drop)


@dataclass(frozen=True)
class ScoreConfig:
    data: str = field(default="data/synthetic", metadata=PATH)
    end_date: str | None = None
    input: InputConfig = field(default_factory=InputConfig)
    model: str = "churn-propensity@champion"
    uplift_model: str | None = "churn-uplift@champion"  # target by predicted uplift when it exists; None: never
    out: str = field(default="data/scores", metadata=PATH)
    experiment: str = "churn-scoring"
    partitions: int = 1  # customer buckets processed one at a time (1 = whole dataset in memory)
    engine: str = "pandas"  # "pandas" on this machine, or "spark" (needs the spark extra)
    population: PopulationConfig | None = None  # None: the population the model was trained on
    value: ValueConfig = field(default_factory=ValueConfig)
    save_value: SaveValueConfig = field(default_factory=SaveValueConfig)
    holdout: HoldoutConfig = field(default_factory=HoldoutConfig)
    risk_tiers: TierConfig = field(default_factory=TierConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    recover: RecoverConfig = field(default_factory=RecoverConfig)  # churn recover's own section
    monitor: MonitorConfig = field(default_factory=MonitorConfig)  # churn monitor's own section

    def __post_init__(self) -> None:
        if self.end_date is not None:
            iso_date(self.end_date, "end_date")
        _check_engine(self.engine, self.partitions)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def recover_dict(self) -> dict:
        """The keys ``churn recover`` reads, resolved: what its run logs as its config (scoring's own stay out)."""
        resolved = self.to_dict()
        keys = ("data", "end_date", "input", "engine", "partitions", "model", "risk_tiers", "save_value", "recover")
        return {key: resolved[key] for key in keys}


def _resolve_paths(kind: type, raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """The file's relative paths (fields marked ``PATH``, in sections too) made absolute against ``base``; URIs and
    words stay."""
    out = dict(raw)
    hints = get_type_hints(kind)
    for f in dataclasses.fields(kind):
        value = out.get(f.name)
        if dataclasses.is_dataclass(hints[f.name]) and isinstance(value, dict):
            out[f.name] = _resolve_paths(hints[f.name], value, base)
        elif (
            f.metadata.get("path")
            and isinstance(value, str)
            and value not in PATH_WORDS
            and "://" not in value
            and not Path(value).is_absolute()
        ):
            out[f.name] = os.path.normpath(base / value)
    return out


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {raw!r}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"{where or 'config'}: unknown key(s) {unknown}; expected some of {sorted(names)}")
    kwargs = {}
    for key, value in raw.items():
        kwargs[key] = _value(hints[key], value, f"{where}.{key}" if where else key)
    return cls(**kwargs)


def _value(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value or {}, where)
    origin = get_origin(hint)
    if origin is Literal:
        if value not in get_args(hint):
            raise ConfigError(f"{where}: {value!r} is not one of {list(get_args(hint))}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if origin is tuple:
        if hint == tuple[float, ...] and isinstance(value, (int, float)) and not isinstance(value, bool):
            return (float(value),)  # a list of numbers may be written as one number
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(value)
    args = [a for a in get_args(hint) if a is not type(None)]
    if value is None:
        if type(None) in get_args(hint):
            return None
        raise ConfigError(f"{where}: a value is required")
    if len(args) == 1 and get_origin(hint) is not None and dataclasses.is_dataclass(args[0]):
        return _build(args[0], value, where)
    if len(args) == 1 and get_origin(hint) is not None and get_origin(args[0]) is Literal:
        return _value(args[0], value, where)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if len(args) == 1 and get_origin(hint) is not None and args[0] in (int, float, bool):
        return _value(args[0], value, where)
    if hint is int and not (isinstance(value, int) and not isinstance(value, bool)):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if str in args or hint is str:
        return str(value)  # YAML reads 2026-06-30 as a date; keep dates as ISO text
    return value


class _TextDates(yaml.SafeLoader):
    """YAML's safe loader with dates left as text: the config checks them itself (:func:`iso_date`), so that
    ``2024-13-01`` is refused by key instead of failing inside the YAML parser."""


_TextDates.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_config(path: Path | None, overrides: dict[str, Any] | None = None, kind: type = TrainConfig):
    """Read the YAML file (or defaults when ``path`` is None) and apply non-None overrides.

    Relative paths in the file resolve against the file's folder, so a config
    means the same from any working directory (cron runs from ``/``); paths in
    ``overrides`` (command-line flags) are the caller's, relative to the working
    directory.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            raw = yaml.load(path.read_text(), Loader=_TextDates) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of keys, got {type(raw).__name__}")
        raw = _resolve_paths(kind, raw, path.absolute().parent)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        *sections, leaf = key.split(".")  # "recover.bootstrap.seed": the key seed of recover's bootstrap section
        target = raw
        for section in sections:
            if target.get(section) is None:  # absent, or written as an empty section
                target[section] = {}
            target = target[section]
            if not isinstance(target, dict):
                raise ConfigError(f"{key}: {section} is not a section of mappings, got {target!r}")
        target[leaf] = value
    return _build(kind, raw, "")
