"""The ``snapshot`` stage: validated tables to a stacked point-in-time training table."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from tqdm import tqdm

from features.build import LABEL, Tables, build_features, build_labels, prepare
from features.config import FeatureConfig
from features.schema import Snapshot
from pipelines.attributes import with_attribute_types
from pipelines.contract import ValidationResult
from pipelines.errors import UserError
from pipelines.io.files import tables_from

log = logging.getLogger(__name__)


def snapshot(
    tables: Tables,
    as_of_dates: list[pd.Timestamp],
    horizon_days: int,
    data_end: pd.Timestamp,
    config: FeatureConfig,
    progress: bool = False,
    sampler: Callable[[pd.Timestamp, pd.DataFrame], pd.DataFrame] | None = None,
    medians: dict[str, pd.Series] | None = None,
    btyd_params: dict | None = None,
) -> pd.DataFrame:
    """Features and labels for each as-of date, stacked; labels are NA where the window is not fully observed.

    ``sampler`` may thin each date's rows as soon as they are built, so that
    many dates over many customers never sit in memory in full. ``medians``
    and ``btyd_params`` are the whole customer base's peer-group revenue
    medians and BG/NBD parameters by date, given when ``tables`` hold one
    customer partition.
    """
    dates = sorted({pd.Timestamp(d) for d in as_of_dates})
    if not dates:
        raise UserError("snapshot needs at least one as-of date")
    prepared = prepare(tables, config, medians, btyd_params)
    parts = []
    for as_of in tqdm(dates, desc="snapshot", unit="as-of", disable=not progress):
        frame = build_features(prepared, as_of)
        if frame.empty:
            log.warning(
                "as-of %s: no customer is in the population (signed up before it, not churned%s): no rows",
                as_of.date(),
                ", active in the window" if config.label_source == "inactivity" else "",
            )
        frame[LABEL] = build_labels(prepared, frame, horizon_days, data_end)
        if sampler is not None:
            frame = sampler(as_of, frame)
        parts.append(frame)
        unlabelled = int(frame[LABEL].isna().sum())
        if unlabelled:
            log.info(
                "as-of %s: label window [%s, +%dd) not fully observed (observed up to %s): %d rows unlabelled",
                as_of.date(),
                as_of.date(),
                horizon_days,
                data_end.date(),
                unlabelled,
            )
    return Snapshot.validate(pd.concat(parts, ignore_index=True))


def snapshot_from_result(
    result: ValidationResult,
    as_of_dates,
    horizon_days: int,
    config: FeatureConfig,
    progress: bool = False,
    sampler=None,
) -> pd.DataFrame:
    end = observation_end(result)
    return snapshot(
        tables_from(result),
        as_of_dates,
        horizon_days,
        end,
        with_attribute_types(config, result.attribute_types),
        progress,
        sampler,
    )


def observation_end(result: ValidationResult) -> pd.Timestamp:
    """The last day labels are observed (see :attr:`ValidationResult.observation_end`).

    Says in the log which rule chose it.
    """
    end = result.observation_end
    if end is None:
        raise UserError(
            "the dataset holds no dated rows after validation and no end date was given; nothing to snapshot"
        )
    if not result.end_given:
        log.info(
            "no end date given: outcomes are taken as observed up to the latest row seen, %s "
            "(give --end-date, the extract date, when the extract was taken later)",
            end.date(),
        )
    return end


@dataclass(frozen=True)
class SnapshotStats:
    """What a snapshot holds: its rows, those with a label (a fully observed window), and the churners among them.

    Every engine counts with :func:`snapshot_stats`, on the whole table or on each of its parts, and adds the parts.
    """

    rows: int = 0
    labelled: int = 0
    positives: int = 0

    def __add__(self, other: SnapshotStats) -> SnapshotStats:
        return SnapshotStats(self.rows + other.rows, self.labelled + other.labelled, self.positives + other.positives)

    def to_dict(self, partitions: int) -> dict[str, int]:
        """The figures as the snapshot stages return them, with the number of customer ``partitions`` used."""
        return {"rows": self.rows, "labelled": self.labelled, "positives": self.positives, "partitions": partitions}


def snapshot_stats(frame: pd.DataFrame) -> SnapshotStats:
    """The rows, labelled rows and positive labels of a snapshot (or of one part of it): the one rule of what counts.

    A row is labelled where its label is not missing (:func:`snapshot` leaves it NA where the window is not fully
    observed).
    """
    labelled = frame[LABEL].notna()
    return SnapshotStats(len(frame), int(labelled.sum()), int(frame.loc[labelled, LABEL].sum()))
