"""The three engines behind one interface, chosen in one place.

* :class:`InMemory` — pandas, the whole dataset in memory (the reference every other engine must match);
* :class:`Partitioned` — the same functions one customer bucket at a time (``--partitions N``), for data larger
  than memory on one machine;
* :class:`Spark` — the same functions in Spark workers through ``applyInArrow`` (``--engine spark``).

Each offers the same operations with the same result types: :meth:`Engine.validate` (contract, quarantine and
report, written to a folder), :meth:`Engine.snapshot` (stacked features and labels for as-of dates, written to a
parquet file or folder) and :meth:`Engine.score_inputs` (validation accounting, the features of every active
customer at one date, and the small tables scoring reads). The contract rules, features and messages live in the
modules they call (:mod:`pipelines.contract`, :mod:`features.build`, ...); an engine only decides where rows sit
while those run. :func:`engine_for` is the only place that picks one. :func:`validated_by` is where training and
recovery on an engine start: the data validated into a scratch folder (or a validated folder as it is), with its
accounting and quarantine; :meth:`Engine.buckets` says how many customer buckets work after it is split into.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Protocol

import numpy as np
import pandas as pd

from features.build import Tables, build_features, prepare
from features.config import FeatureConfig
from pipelines.config import InputConfig
from pipelines.contract import ValidationResult
from pipelines.engines.partitioned import features_partitioned, snapshot_partitioned, validate_partitioned
from pipelines.errors import UserError
from pipelines.io.files import (
    dataset_files,
    feature_tables,
    is_validated_output,
    load_validated,
    read_quarantine,
    tables_from,
    validate_folder,
    validated_report,
    warn_quarantined,
    write_parquet,
    write_validation,
)
from pipelines.stages.snapshot import SnapshotStats, snapshot_from_result, snapshot_stats

ENGINES = ("pandas", "spark")


@dataclass(frozen=True)
class Snapshot:
    """What a snapshot run wrote: its validation accounting and its figures."""

    result: ValidationResult
    stats: SnapshotStats
    partitions: int  # customer buckets the rows were built in (1: all at once)


@dataclass(frozen=True)
class ScoreInputs:
    """What scoring needs from the data at one as-of date."""

    result: ValidationResult
    features: pd.DataFrame  # one row per active customer
    tables: Tables  # the small validated tables (interactions may be absent or streamed)
    probability: np.ndarray | None  # already scored (Spark scores in its workers); None: the caller predicts
    seconds_validation: float  # time spent validating before the features were built (0: not separable)


@dataclass(frozen=True)
class Validated:
    """A validated folder and its accounting: the report it holds, with its quarantined rows read back."""

    folder: Path
    result: ValidationResult
    earlier: bool  # validated by an earlier run (``data`` was a validated folder): type-check what is read from it


class Engine(Protocol):
    """One set of operations, whatever runs them."""

    name: str

    def buckets(self) -> int: ...

    def validate(
        self,
        data: Path,
        out: Path,
        end_date: pd.Timestamp | None,
        attribute_types: dict[str, str],
        reading: InputConfig,
    ) -> ValidationResult: ...

    def snapshot(
        self,
        data: Path,
        out: Path,
        as_of: list[pd.Timestamp],
        horizon_days: int,
        end_date: pd.Timestamp | None,
        config: FeatureConfig,
        attribute_types: dict[str, str],
        reading: InputConfig,
    ) -> Snapshot: ...

    def score_inputs(
        self,
        data: Path,
        as_of: pd.Timestamp,
        end_date: pd.Timestamp | None,
        config: FeatureConfig,
        model_uri: str,
        work_root: Path,
        reading: InputConfig,
    ) -> ScoreInputs: ...


def engine_for(kind: str, partitions: int = 1) -> Engine:
    """The engine for ``--engine KIND --partitions N`` (``engine:``/``partitions:`` in a config)."""
    if kind not in ENGINES:
        raise UserError(f"engine must be one of {list(ENGINES)}, got {kind!r}")
    if partitions < 1:
        raise UserError(f"partitions must be at least 1, got {partitions}")
    if kind == "spark":
        return Spark(partitions)
    return Partitioned(partitions) if partitions > 1 else InMemory()


def validated_by(
    engine: Engine,
    data: Path,
    scratch: Path,
    end_date: pd.Timestamp | None,
    attribute_types: dict[str, str] | None,
    reading: InputConfig,
) -> Validated:
    """``data`` validated by ``engine`` into ``scratch/validated``, unless it is a validated folder already.

    Either way the accounting is the folder's report (its end date and attribute types checked against this run's)
    and the quarantined rows are read back from it, so that a run on any engine counts and keeps them as the
    in-memory engine does (and says in the log what it set aside, as :func:`pipelines.io.files.load_validated` does).
    Training and recovery on an engine start here.
    """
    folder, earlier = Path(data), is_validated_output(data)
    if not earlier:
        folder = Path(scratch) / "validated"
        warn_quarantined(engine.validate(Path(data), folder, end_date, attribute_types, reading))
    report = validated_report(folder, end_date, attribute_types)
    return Validated(folder, replace(ValidationResult.from_dict(report), quarantine=read_quarantine(folder)), earlier)


class InMemory:
    """pandas, every table in memory: the reference engine."""

    name = "pandas"

    def buckets(self) -> int:
        return 1

    def validate(self, data, out, end_date, attribute_types, reading):
        result = validate_folder(data, end_date, attribute_types, reading.encoding, reading.timezone)
        write_validation(result, out)
        return result

    def snapshot(self, data, out, as_of, horizon_days, end_date, config, attribute_types, reading):
        result = load_validated(data, end_date, attribute_types, reading.encoding, reading.timezone)
        table = snapshot_from_result(result, as_of, horizon_days, config, progress=True)
        write_parquet(table, out)
        return Snapshot(result, snapshot_stats(table), 1)

    def score_inputs(self, data, as_of, end_date, config, model_uri, work_root, reading):
        attribute_types = dict(config.attribute_types or ())  # customer attributes read as the model was trained
        started = time.perf_counter()
        if is_validated_output(data):
            # Validated earlier: the accounting from its report, interactions streamed into the feature arrays.
            result = ValidationResult.from_dict(validated_report(data, end_date, attribute_types))
            tables = feature_tables(dataset_files(data / "tables"), check=True)
            validation = 0.0
        else:
            result = load_validated(data, end_date, attribute_types, reading.encoding, reading.timezone)
            tables = tables_from(result)
            validation = time.perf_counter() - started  # timed apart on this path
        features = build_features(prepare(tables, config), as_of)
        return ScoreInputs(result, features, tables, None, validation)


@dataclass(frozen=True)
class Partitioned:
    """The in-memory functions one customer bucket (``hash(customer_id) mod N``) at a time."""

    partitions: int
    name = "pandas"

    def buckets(self) -> int:
        return self.partitions

    def validate(self, data, out, end_date, attribute_types, reading):
        return validate_partitioned(
            data, out, end_date, self.partitions, progress=True, attribute_types=attribute_types,
            encoding=reading.encoding, timezone=reading.timezone,
        )  # fmt: skip

    def snapshot(self, data, out, as_of, horizon_days, end_date, config, attribute_types, reading):
        _refuse_forced_types(attribute_types)
        result, stats = snapshot_partitioned(
            data, out, as_of, horizon_days, end_date, self.partitions, config, progress=True, reading=reading
        )
        return _written(result, stats)

    def score_inputs(self, data, as_of, end_date, config, model_uri, work_root, reading):
        result, features, tables = features_partitioned(
            data, as_of, end_date, self.partitions, config, work_root, reading=reading
        )
        return ScoreInputs(result, features, tables, None, 0.0)


@dataclass(frozen=True)
class Spark:
    """The in-memory functions in Spark workers (``applyInArrow``), one customer bucket per group."""

    partitions: int
    name = "spark"

    def buckets(self) -> int:
        return _spark().buckets_for(self.partitions)

    def validate(self, data, out, end_date, attribute_types, reading):
        _spark_reads_defaults(reading)
        return _spark().validate_spark(data, out, end_date, self.partitions, attribute_types=attribute_types)

    def snapshot(self, data, out, as_of, horizon_days, end_date, config, attribute_types, reading):
        _spark_reads_defaults(reading)
        _refuse_forced_types(attribute_types)
        result, stats = _spark().snapshot_spark(
            data, out, as_of, horizon_days, end_date, self.partitions, config, progress=True
        )
        return _written(result, stats)

    def score_inputs(self, data, as_of, end_date, config, model_uri, work_root, reading):
        _spark_reads_defaults(reading)
        result, features, tables, probability = _spark().score_inputs_spark(
            data, as_of, end_date, self.partitions, config, model_uri
        )
        return ScoreInputs(result, features, tables, probability, 0.0)


def _spark() -> ModuleType:
    """:mod:`pipelines.engines.spark`, imported when the Spark engine runs: pyspark is an optional extra (``spark``),
    and nothing else needs it."""
    from pipelines.engines import spark

    return spark


def _written(result: ValidationResult, stats: dict) -> Snapshot:
    """A snapshot result from the figures the partitioned and Spark snapshots return."""
    return Snapshot(result, SnapshotStats(stats["rows"], stats["labelled"], stats["positives"]), stats["partitions"])


def _spark_reads_defaults(reading: InputConfig) -> None:
    """The Spark engine reads CSV as UTF-8 and naive timestamps as UTC; other settings are refused, not ignored."""
    if reading != InputConfig():
        raise UserError(
            "the spark engine reads CSV files as UTF-8 with naive timestamps in UTC; "
            f"{reading} needs the pandas engine (engine pandas, with partitions N for data larger than memory)"
        )


def _refuse_forced_types(attribute_types: dict[str, str]) -> None:
    """Snapshots on partitions or Spark take attribute types from a validated folder, not from flags."""
    if attribute_types:
        raise UserError(
            "--attribute and features.attribute_types are read by the in-memory engine; with partitions or Spark, "
            "validate with --attribute first (churn validate), then snapshot from the validated folder"
        )
