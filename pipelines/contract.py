"""The data contract: pandera models of the input tables and the validation stage.

Validation is a pure function from raw frames (as read from disk) to validated
frames, quarantined rows and an accounting report. Structural problems (a
missing table or column, a column none of whose values can be read) raise
:class:`ContractError`; row-level problems send the row to quarantine with a
reason and never stop the run. How each value is read (null tokens, text,
numbers, booleans, dates) is :mod:`pipelines.io.normalise`'s rule; this module
applies it to the contract's columns and counts what it changed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from features.keys import positions
from pipelines.attributes import NUMBER, TypedAttributes, attribute_columns, type_attributes
from pipelines.errors import UserError
from pipelines.io.normalise import (
    MALFORMED_DETAIL,
    RAW_LINE,
    SOURCE_ROW,
    canonical_case,
    delimiter_hint,
    normalise_text,
    null_token_mask,
    parse_booleans,
    parse_timestamps,
    read_numbers,
)

log = logging.getLogger(__name__)

SCORE_RANGE = {"NPS": (0, 10), "CSAT": (1, 5), "CES": (1, 7)}
GROUPS = ("treatment", "control")
EARLIEST = pd.Timestamp("1970-01-01")


class ContractError(UserError):
    """A structural problem that stops validation: names the file, column and expectation."""


# --- reasons a row is quarantined (stable codes: reports and tests use them) ----
MISSING_VALUE = "missing_required_value"
UNPARSEABLE = "unparseable_value"
DUPLICATE_CUSTOMER = "duplicate_customer_id"
UNKNOWN_SURVEY = "unknown_survey"
SCORE_OUT_OF_RANGE = "score_out_of_range"
BEFORE_1970 = "timestamp_before_1970"
AFTER_END = "timestamp_after_dataset_end"
NEGATIVE_REVENUE = "negative_monthly_revenue"
NEGATIVE_COST = "negative_cost"
UNKNOWN_GROUP = "unknown_group"
UNKNOWN_CUSTOMER = "unknown_customer"
CHURN_BEFORE_SIGNUP = "churn_before_signup"
DUPLICATE_EVENT = "duplicate_event"
MALFORMED = "malformed_row"
NON_FINITE = "non_finite_value"
TOO_LARGE = "number_too_large"  # magnitude above pipelines.io.normalise.LARGEST_NUMBER

READER_COLUMNS = (RAW_LINE, MALFORMED_DETAIL)
# Contract text columns of free text: trimmed, but their characters are kept as written.
FREE_TEXT = frozenset({"comment"})
# Codes of a closed set, read in the contract's case whatever case the extract writes them in (Treatment, nps).
CANONICAL_CASE = {"group": "lower", "survey": "upper"}


# --- the contract as pandera models -------------------------------------------------
class Customers(pa.DataFrameModel):
    """One row per customer; extra columns are customer attributes."""

    customer_id: Series[str] = pa.Field(nullable=False)
    signup_date: Series[pd.Timestamp] = pa.Field(nullable=False)
    monthly_revenue: Series[float] = pa.Field(nullable=False)
    location_id: Series[str] | None = pa.Field(nullable=True)

    class Config:
        strict = False

    @pa.check("monthly_revenue", name=NEGATIVE_REVENUE)
    def _revenue_not_negative(cls, s: Series[float]) -> Series[bool]:
        return s >= 0

    @pa.check("customer_id", name=DUPLICATE_CUSTOMER)
    def _unique_id(cls, s: Series[str]) -> Series[bool]:
        return ~s.duplicated(keep=False)


class Interactions(pa.DataFrameModel):
    """Touchpoint events: one row per interaction."""

    customer_id: Series[str] = pa.Field(nullable=False)
    timestamp: Series[pd.Timestamp] = pa.Field(nullable=False)
    channel: Series[str] = pa.Field(nullable=False)
    type: Series[str] = pa.Field(nullable=False)
    value: Series[float] | None = pa.Field(nullable=True)

    class Config:
        strict = False


class Feedback(pa.DataFrameModel):
    """Survey answers (NPS 0-10, CSAT 1-5, CES 1-7)."""

    customer_id: Series[str] = pa.Field(nullable=False)
    timestamp: Series[pd.Timestamp] = pa.Field(nullable=False)
    survey: Series[str] = pa.Field(nullable=False)
    score: Series[float] = pa.Field(nullable=False)
    comment: Series[str] | None = pa.Field(nullable=True)
    callback_requested: Series[pd.BooleanDtype] | None = pa.Field(nullable=True)
    touchpoint: Series[str] | None = pa.Field(nullable=True)

    class Config:
        strict = False

    @pa.check("survey", name=UNKNOWN_SURVEY)
    def _known_survey(cls, s: Series[str]) -> Series[bool]:
        return s.isin(list(SCORE_RANGE))

    @pa.dataframe_check(name=SCORE_OUT_OF_RANGE)
    def _score_in_range(cls, df: pd.DataFrame) -> Series[bool]:
        lo = df["survey"].map({k: v[0] for k, v in SCORE_RANGE.items()})
        hi = df["survey"].map({k: v[1] for k, v in SCORE_RANGE.items()})
        # Unknown surveys are reported as such, not twice.
        return lo.isna() | df["score"].isna() | ((df["score"] >= lo) & (df["score"] <= hi))


class ChurnEvents(pa.DataFrameModel):
    """Cancellations: one row per churn."""

    customer_id: Series[str] = pa.Field(nullable=False)
    churn_date: Series[pd.Timestamp] = pa.Field(nullable=False)

    class Config:
        strict = False


class RetentionActions(pa.DataFrameModel):
    """Retention contacts, with a randomised ``control`` hold-out."""

    customer_id: Series[str] = pa.Field(nullable=False)
    action_date: Series[pd.Timestamp] = pa.Field(nullable=False)
    group: Series[str] = pa.Field(nullable=False)
    action: Series[str] | None = pa.Field(nullable=True)
    cost: Series[float] | None = pa.Field(nullable=True)

    class Config:
        strict = False

    @pa.check("group", name=UNKNOWN_GROUP)
    def _known_group(cls, s: Series[str]) -> Series[bool]:
        return s.isin(GROUPS)

    @pa.check("cost", name=NEGATIVE_COST)
    def _cost_not_negative(cls, s: Series[float]) -> Series[bool]:
        return s.isna() | (s >= 0)


@dataclass(frozen=True)
class TableSpec:
    model: type[pa.DataFrameModel]
    required: bool
    dates: tuple[str, ...]
    numbers: tuple[str, ...] = ()
    integers: tuple[str, ...] = ()
    booleans: tuple[str, ...] = ()


TABLES: dict[str, TableSpec] = {
    "customers": TableSpec(Customers, True, ("signup_date",), ("monthly_revenue",)),
    "interactions": TableSpec(Interactions, False, ("timestamp",), ("value",)),
    "feedback": TableSpec(Feedback, False, ("timestamp",), (), ("score",), ("callback_requested",)),
    "churn_events": TableSpec(ChurnEvents, False, ("churn_date",)),
    "retention_actions": TableSpec(RetentionActions, False, ("action_date",), ("cost",)),
}


def required_columns(model: type[pa.DataFrameModel]) -> list[str]:
    """Columns a table must have: the model's non-optional fields."""
    schema = model.to_schema()
    return [name for name, col in schema.columns.items() if col.required]


def all_columns(model: type[pa.DataFrameModel]) -> list[str]:
    return list(model.to_schema().columns)


# --- results -------------------------------------------------------------------------
@dataclass
class TableReport:
    rows_read: int
    rows_kept: int
    rows_quarantined: int
    by_reason: dict[str, int] = field(default_factory=dict)
    # Values changed by a documented normalisation, e.g. ``trimmed(customer_id)``, ``null_token(channel)``.
    normalised: dict[str, int] = field(default_factory=dict)

    def balanced(self) -> bool:
        return self.rows_read == self.rows_kept + self.rows_quarantined


@dataclass
class ValidationResult:
    """Validated tables, quarantined rows (original values plus reasons) and the accounting."""

    tables: dict[str, pd.DataFrame]
    quarantine: dict[str, pd.DataFrame]
    report: dict[str, TableReport]
    data_end: pd.Timestamp | None
    reference_end: pd.Timestamp
    # With ``defer_unreadable``: (table, column) -> error for columns none of whose values could be read
    # here, and the (table, column) pairs that had a readable value. A partitioned run decides on the whole.
    unreadable: dict[tuple[str, str], str] = field(default_factory=dict)
    readable: set[tuple[str, str]] = field(default_factory=set)
    # Whether ``reference_end`` is an end date the user gave (the extract date) rather than today's date.
    end_given: bool = False
    # Type of each extra column of ``customers`` (see pipelines.attributes), decided once here.
    attribute_types: dict[str, str] = field(default_factory=dict)
    # What reading the folder noted (names read loosely, columns dropped) and the files that are not contract tables.
    notes: tuple[str, ...] = ()
    ignored_files: tuple[str, ...] = ()
    timezone: str = "UTC"  # the zone of timestamps written without a designator

    @property
    def observation_end(self) -> pd.Timestamp | None:
        """The last day outcomes are observed: the extract date when one was given, else the latest row seen.

        A customer with no churn event by the extract date has not churned, so
        a label window that closes by then is fully observed even when the
        latest churn event is earlier. Without an end date, the latest dated
        row stands in (today would call every recent window observed).
        """
        return self.reference_end if self.end_given else self.data_end

    @property
    def quarantined_rows(self) -> int:
        return sum(r.rows_quarantined for r in self.report.values())

    def to_dict(self) -> dict:
        return {
            "data_end": None if self.data_end is None else self.data_end.isoformat(),
            "reference_end": self.reference_end.isoformat(),
            "end_date_given": self.end_given,
            "observation_end": None if self.observation_end is None else self.observation_end.isoformat(),
            "attribute_types": dict(self.attribute_types),
            "timezone": self.timezone,
            "notes": list(self.notes),
            "ignored_files": list(self.ignored_files),
            "tables": {
                name: {
                    "rows_read": r.rows_read,
                    "rows_kept": r.rows_kept,
                    "rows_quarantined": r.rows_quarantined,
                    "by_reason": dict(sorted(r.by_reason.items(), key=lambda kv: (-kv[1], kv[0]))),
                    "normalised": dict(sorted(r.normalised.items())),
                    "balanced": r.balanced(),
                }
                for name, r in self.report.items()
            },
        }

    @classmethod
    def from_dict(cls, report: dict, tables: dict[str, pd.DataFrame] | None = None) -> ValidationResult:
        """The accounting as :meth:`to_dict` wrote it (``report.json``), around already validated ``tables``."""
        data_end = report.get("data_end")
        return cls(
            tables or {},
            {},
            {
                name: TableReport(
                    t["rows_read"],
                    t["rows_kept"],
                    t["rows_quarantined"],
                    dict(t["by_reason"]),
                    dict(t.get("normalised", {})),
                )
                for name, t in report["tables"].items()
            },
            None if data_end is None else pd.Timestamp(data_end),
            pd.Timestamp(report["reference_end"]),
            end_given=bool(report.get("end_date_given", False)),
            attribute_types=dict(report.get("attribute_types", {})),
            notes=tuple(report.get("notes", ())),
            ignored_files=tuple(report.get("ignored_files", ())),
            timezone=report.get("timezone", "UTC"),
        )

    def to_text(self) -> str:
        lines = [
            "Validation report",
            f"  data ends {self.data_end.date() if self.data_end is not None else 'n/a'}; "
            f"timestamps later than {self.reference_end.date()} + 1 day are impossible",
            f"  outcomes observed up to {self.observation_end.date() if self.observation_end is not None else 'n/a'} "
            f"({'the end date given' if self.end_given else 'no end date given: the latest row seen'})",
            f"  {'table':<18}{'read':>12}{'kept':>12}{'quarantined':>13}",
        ]
        for name, r in self.report.items():
            lines.append(f"  {name:<18}{r.rows_read:>12,}{r.rows_kept:>12,}{r.rows_quarantined:>13,}")
            for reason, count in sorted(r.by_reason.items()):
                lines.append(f"  {'':<18}  - {reason}: {count:,}")
            for change, count in sorted(r.normalised.items()):
                lines.append(f"  {'':<18}  normalised {change}: {count:,}")
        if self.attribute_types:
            by_type: dict[str, list[str]] = {}
            for col, kind in self.attribute_types.items():
                by_type.setdefault(kind, []).append(col)
            lines.append(
                "  customer attributes: " + "; ".join(f"{kind} {', '.join(cols)}" for kind, cols in by_type.items())
            )
        for note in self.notes:
            lines.append(f"  note: {note}")
        ok = all(r.balanced() for r in self.report.values())
        lines.append(f"  accounting {'holds' if ok else 'DOES NOT HOLD'}: read = kept + quarantined for every table")
        return "\n".join(lines)


# --- the stage -----------------------------------------------------------------------
def run_today(today: pd.Timestamp | None = None) -> pd.Timestamp:
    """The run's clock: ``today`` when given (tests inject it), else the current date.

    Every engine resolves it once, where the run starts (Spark on the driver, not in each worker), so that every
    part of one run reads one date.
    """
    return pd.Timestamp.today().normalize() if today is None else pd.Timestamp(today)


def reference_end_of(end_date: pd.Timestamp | None, today: pd.Timestamp | None = None) -> pd.Timestamp:
    """The dataset's last date: the end date given (the extract date), else :func:`run_today`.

    Timestamps more than a day after it are impossible (:data:`AFTER_END`).
    """
    return pd.Timestamp(end_date) if end_date is not None else run_today(today)


def require_raw_tables(names) -> None:
    """Refuse a raw dataset without a required table, or with a table the contract does not have.

    Args:
        names: the names of the tables read from the dataset folder.
    """
    for name, spec in TABLES.items():
        if spec.required and name not in names:
            raise ContractError(
                f"missing required table '{name}': expected {name}.parquet or {name}.csv in the dataset folder"
            )
    unknown = sorted(set(names) - set(TABLES))
    if unknown:
        raise ContractError(f"unknown table(s) {unknown}: the contract has {sorted(TABLES)}")


@dataclass(frozen=True)
class _Run:
    """What every table of one validation is checked with (see :func:`validate_dataset`)."""

    latest_allowed: pd.Timestamp
    defer_unreadable: bool
    attribute_types: dict[str, str] | None
    timezone: str
    timed_columns: dict[str, frozenset[str]]


@dataclass
class _Checked:
    """One table after its own rules: typed values, reasons per row, normalisations, and its readable columns."""

    frame: pd.DataFrame
    reasons: _Reasons
    normalised: dict[str, int]
    unreadable: dict[str, str] = field(default_factory=dict)  # column -> error (with ``defer_unreadable``)
    readable: list[str] = field(default_factory=list)


def validate_dataset(
    raw: dict[str, pd.DataFrame],
    sources: dict[str, str] | None = None,
    end_date: pd.Timestamp | None = None,
    today: pd.Timestamp | None = None,
    source_rows: dict[str, np.ndarray] | None = None,
    defer_unreadable: bool = False,
    attribute_types: dict[str, str] | None = None,
    timezone: str = "UTC",
    notes: Sequence[str] = (),
    ignored_files: Sequence[str] = (),
    timed_columns: dict[str, frozenset[str]] | None = None,
) -> ValidationResult:
    """Check raw tables against the contract.

    Each table is first checked on its own (:func:`_check_own_rules`), then
    against the customers that survived theirs (:func:`_referential_reasons`);
    the rows with a reason are quarantined (:func:`_split_table`).

    Args:
        raw: table name to frame as read (text columns may hold unparsed strings).
        sources: table name to file name, used in error messages.
        end_date: the dataset's last date (the extract date). Timestamps more
            than a day after it are quarantined. Defaults to ``today``.
        today: the clock, injectable for tests; defaults to the current date.
        source_rows: table name to each row's position in its source file, when
            ``raw`` holds only part of it (one customer partition); quarantine
            reports these as ``_source_row``.
        defer_unreadable: record, rather than raise, a column none of whose
            values can be read: in one partition that is not yet an error.
        attribute_types: types of extra ``customers`` columns that are not
            inferred from their values (from the config, from the model being
            scored, or decided once for all partitions); see
            :mod:`pipelines.attributes`. A given value that does not read as
            its column's type is quarantined as unparseable.
        timezone: the zone of timestamps written without a designator
            (see :mod:`pipelines.io.normalise`).
        notes, ignored_files: what reading the folder noted, for the report.
        timed_columns: per table, the naive datetime columns that have a time
            of day somewhere in the whole table, when ``raw`` holds only part of
            it (one customer bucket): they are timestamps in every part.
    """
    sources = sources or {name: name for name in raw}
    reference_end = reference_end_of(end_date, today)
    require_raw_tables(raw)
    run = _Run(reference_end + pd.Timedelta(days=1), defer_unreadable, attribute_types, timezone, timed_columns or {})
    checked, attributes = _check_tables(raw, sources, run)
    _referential_reasons(checked, sources)
    split = _split_tables(raw, checked, source_rows)
    return ValidationResult(
        split.tables,
        split.quarantine,
        split.report,
        _data_end(split.tables),
        reference_end,
        {(name, col): msg for name, t in checked.items() for col, msg in t.unreadable.items()},
        {(name, col) for name, t in checked.items() for col in t.readable},
        end_date is not None,
        attributes.types,
        (*notes, *attributes.notes),
        tuple(ignored_files),
        timezone,
    )


def _check_tables(
    raw: dict[str, pd.DataFrame], sources: dict[str, str], run: _Run
) -> tuple[dict[str, _Checked], TypedAttributes]:
    """Every table checked on its own rules, and the customers' typed attributes (a required table: always there)."""
    checked: dict[str, _Checked] = {}
    typed: dict[str, TypedAttributes | None] = {}
    for name, frame in raw.items():
        checked[name], typed[name] = _check_own_rules(name, frame, sources[name], run)
    return checked, typed["customers"]


@dataclass(frozen=True)
class _Split:
    """Each table's kept rows, quarantined rows (original values plus reasons) and accounting."""

    tables: dict[str, pd.DataFrame]
    quarantine: dict[str, pd.DataFrame]
    report: dict[str, TableReport]


def _split_tables(
    raw: dict[str, pd.DataFrame], checked: dict[str, _Checked], source_rows: dict[str, np.ndarray] | None
) -> _Split:
    tables, quarantine, report = {}, {}, {}
    for name, table in checked.items():
        rows = None if source_rows is None else np.asarray(source_rows[name])
        tables[name], quarantine[name], report[name] = _split_table(raw[name], table, rows)
    return _Split(tables, quarantine, report)


def _check_own_rules(name: str, frame: pd.DataFrame, source: str, run: _Run) -> tuple[_Checked, TypedAttributes | None]:
    """One table's columns, values and pandera checks: each row's reasons, in the order they are reported.

    A row of the wrong width (kept aside whole by the reader) has one reason: its values are not in their columns.
    Returns the customers' typed attributes too (``None`` for other tables).
    """
    spec = TABLES[name]
    check_columns(frame, spec, source)
    c = _coerce(frame, spec, source, run.timezone, run.timed_columns.get(name, frozenset()))
    malformed = c.frame[MALFORMED_DETAIL].notna().to_numpy() if MALFORMED_DETAIL in c.frame.columns else None
    checked = _Checked(c.frame, _Reasons(len(frame), only=malformed), c.normalised)
    _defer_or_raise(checked, c.problems, c.good, run.defer_unreadable)
    if malformed is not None:
        checked.reasons.add(malformed, MALFORMED, "", exclusive=True)
    refused = dict(c.refused)
    typed = _type_customer_attributes(frame, checked, refused, source, run) if name == "customers" else None
    _schema_reasons(checked.frame, spec, checked.reasons, _add_refusals(checked.reasons, refused))
    for col in spec.dates:
        ts = checked.frame[col]
        checked.reasons.add((ts < EARLIEST).to_numpy(), BEFORE_1970, col)
        checked.reasons.add((ts > run.latest_allowed).to_numpy(), AFTER_END, col)
    return checked, typed


def _defer_or_raise(checked: _Checked, problems: dict[str, str], good: list[str], defer: bool) -> None:
    """Columns none of whose values read: an error now, or (``defer``) recorded for the whole dataset to decide."""
    if problems and not defer:
        raise ContractError(next(iter(problems.values())))
    checked.unreadable.update(problems)
    checked.readable.extend(good)


def _type_customer_attributes(
    frame: pd.DataFrame, checked: _Checked, refused: dict[str, dict[str, np.ndarray]], source: str, run: _Run
) -> TypedAttributes:
    """Type the customers' extra columns (:mod:`pipelines.attributes`) into ``checked``; the values that do not read
    as their column's type join ``refused``."""
    typed = type_attributes(
        frame, attribute_columns(frame, tuple(all_columns(Customers))), run.attribute_types, run.timezone
    )
    for col in typed.types:
        checked.frame[col] = typed.frame[col]
    for key, mask in typed.changed.items():
        _count(checked.normalised, key, mask)
    for reason, masks in _attribute_refusals(frame, typed).items():
        refused[reason] = {**refused[reason], **masks}
    problems, good = _unreadable_attributes(frame, typed, set(run.attribute_types or ()), source)
    _defer_or_raise(checked, problems, good, run.defer_unreadable)
    return typed


def _referential_reasons(checked: dict[str, _Checked], sources: dict[str, str]) -> None:
    """Rows of other tables whose customer did not survive the customers' own checks, churns before signup, and
    exact duplicate events."""
    customers = checked["customers"]
    good_customers = ~customers.reasons.bad()
    good_ids = customers.frame["customer_id"].to_numpy()[good_customers]
    good_signup = customers.frame["signup_date"].to_numpy()[good_customers]
    for name, table in checked.items():
        if name == "customers":
            continue
        frame, reasons = table.frame, table.reasons
        customer = positions(frame["customer_id"], good_ids)
        unknown = (customer < 0) & frame["customer_id"].notna().to_numpy()
        reasons.add(unknown, UNKNOWN_CUSTOMER, "customer_id")
        _warn_float_ids(frame["customer_id"][unknown], good_ids, sources[name])
        if name == "churn_events":
            signup = np.full(len(frame), np.datetime64("NaT"), dtype=good_signup.dtype)
            signup[customer >= 0] = good_signup[customer[customer >= 0]]
            reasons.add(frame["churn_date"].to_numpy() < signup, CHURN_BEFORE_SIGNUP, "churn_date")
        reasons.add(_exact_duplicates(frame, customer, TABLES[name].dates[0]), DUPLICATE_EVENT, "")


def _split_table(
    raw: pd.DataFrame, checked: _Checked, source_rows: np.ndarray | None
) -> tuple[pd.DataFrame, pd.DataFrame, TableReport]:
    """The kept rows (typed, reader columns dropped), the quarantined rows (original values, ``_source_row``,
    ``_reason``, ``_detail``) and the table's accounting."""
    frame, r = checked.frame, checked.reasons
    bad = r.bad()
    rows = np.flatnonzero(bad)
    kept = frame.loc[~bad].reset_index(drop=True) if bad.any() else frame
    kept = kept.drop(columns=[c for c in READER_COLUMNS if c in kept.columns])
    q = raw.iloc[rows].copy()
    q.insert(0, SOURCE_ROW, rows if source_rows is None else source_rows[rows])
    q["_reason"], q["_detail"] = r.describe(rows)
    counts = q["_reason"].value_counts()
    report = TableReport(
        rows_read=len(frame),
        rows_kept=int((~bad).sum()),
        rows_quarantined=int(bad.sum()),
        by_reason={str(k): int(v) for k, v in counts.items()},
        normalised=checked.normalised,
    )
    return kept, q.reset_index(drop=True), report


def _warn_float_ids(unknown: pd.Series, good_ids: np.ndarray, source: str) -> None:
    """Warn when ids refused as unknown are customer ids written as floats (``101.0`` for ``101``: a text export of a
    float column); they are not changed, since ``1.0`` may be an id of its own."""
    floats = unknown[unknown.str.fullmatch(r"[+-]?[0-9]+\.0+", na=False)]
    if floats.empty:
        return
    known = positions(floats.str.replace(r"\.0+$", "", regex=True), good_ids) >= 0
    if known.any():
        log.warning(
            "%s: %d row(s) refused as unknown_customer have ids such as %r that are customer ids written as floats: "
            "export the id column as text (or as integers), then validate again",
            source,
            int(known.sum()),
            floats[known].iloc[0],
        )


def _add_refusals(reasons: _Reasons, refused: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Add the refused values as reasons; returns, per column, every value refused (for :func:`_schema_reasons`)."""
    every: dict[str, np.ndarray] = {}
    for reason in (NON_FINITE, TOO_LARGE, UNPARSEABLE):
        for col, mask in refused[reason].items():
            reasons.add(mask, reason, col)
            every[col] = every.get(col, False) | mask
    return every


def _attribute_refusals(frame: pd.DataFrame, typed: TypedAttributes) -> dict[str, dict[str, np.ndarray]]:
    """Per reason and attribute column, the given values that did not read as the column's type: a number attribute's
    infinite or too large values are refused as such, everything else as unparseable."""
    out: dict[str, dict[str, np.ndarray]] = {NON_FINITE: {}, TOO_LARGE: {}, UNPARSEABLE: {}}
    for col, failed in typed.unparseable.items():
        if typed.types[col] == NUMBER:
            numbers = read_numbers(frame[col])
            for reason, mask in ((NON_FINITE, failed & numbers.infinite), (TOO_LARGE, failed & numbers.too_large)):
                if mask.any():
                    out[reason][col] = mask
                failed = failed & ~mask
        if failed.any():
            out[UNPARSEABLE][col] = failed
    return out


def _unreadable_attributes(
    frame: pd.DataFrame, typed: TypedAttributes, given_types: set[str], source: str
) -> tuple[dict[str, str], list[str]]:
    """Attribute columns given a type (by the config, a flag or the model) that none of their given values reads as,
    with the error for each (a structural problem, as for a contract column), and those in which some value reads."""
    problems, good = {}, []
    for col, kind in typed.types.items():
        if col not in given_types:
            continue  # an inferred type reads every value
        given = frame[col].notna().to_numpy() & ~null_token_mask(frame[col])
        failed = typed.unparseable.get(col, np.zeros(len(frame), dtype=bool))
        if given.any() and (failed | ~given).all():
            problems[col] = (
                f"{source}: column '{col}' has no value that can be read as {kind} (the type given for it); "
                f"first value is {frame[col][given].iloc[0]!r}"
            )
        else:
            good.append(col)
    return problems, good


def check_validated(tables: dict[str, pd.DataFrame], sources: dict[str, str]) -> None:
    """Tables that ``validate`` wrote must still satisfy the contract's types and checks.

    Reading validated output skips the row-level work (parsing, duplicates,
    references, quarantine); this is the type check at that boundary, and
    anything that fails it is an error, not a quarantine.
    """
    require_tables(tables, sources)
    for name, frame in tables.items():
        check_table(name, frame, sources[name])


def require_tables(tables, sources: dict[str, str]) -> None:
    for name, spec in TABLES.items():
        if spec.required and name not in tables:
            raise ContractError(f"validated output has no '{name}' table: expected it among {sorted(sources.values())}")


def check_table(name: str, frame: pd.DataFrame, source: str) -> None:
    """One validated table (or one batch of it) against the contract; see :func:`check_validated`.

    Text columns may arrive dictionary-encoded (categoricals of text, as
    ``pipelines.io.files.feature_tables`` reads them): their categories must be text,
    and every other check of the contract runs on them as it is.
    """
    encoded = tuple(c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype))
    for col in encoded:
        if not pd.api.types.is_string_dtype(frame[col].cat.categories):
            raise ContractError(
                f"{source}: column '{col}' holds {frame[col].cat.categories.dtype} values; the contract expects text"
            )
    try:
        _schema_for(name, encoded).validate(frame)
    except (pa.errors.SchemaError, pa.errors.SchemaErrors) as err:
        raise ContractError(
            f"{source}: not a table that 'churn validate' wrote, or changed since: {err}. "
            "Validate the raw dataset again (churn validate), or pass the raw dataset folder instead"
        ) from err


@cache
def _schema_for(name: str, encoded: tuple[str, ...]) -> pa.DataFrameSchema:
    """The table's contract, with the dtype of dictionary-encoded text columns checked apart (by
    :func:`check_table`)."""
    schema = TABLES[name].model.to_schema()
    return schema.update_columns({c: {"dtype": None} for c in encoded if c in schema.columns}) if encoded else schema


def _data_end(tables: dict[str, pd.DataFrame]) -> pd.Timestamp | None:
    """The latest date present in the validated tables (labels are observed up to it)."""
    ends = [
        tables[name][col].max()
        for name, spec in TABLES.items()
        if name in tables and len(tables[name])
        for col in spec.dates
    ]
    ends = [e for e in ends if pd.notna(e)]
    return pd.Timestamp(max(ends)).normalize() if ends else None


def check_columns(frame: pd.DataFrame, spec: TableSpec, source: str) -> None:
    """Refuse a table without its required columns, naming the file, what is missing and what was read (every
    engine checks each chunk or bucket it reads with this)."""
    missing = [c for c in required_columns(spec.model) if c not in frame.columns]
    if missing:
        read = [str(c) for c in frame.columns if c not in READER_COLUMNS]
        shown = ", ".join(repr(c) for c in read[:12]) + (f", ... ({len(read)} in all)" if len(read) > 12 else "")
        raise ContractError(
            f"{source}: missing required column(s) {missing}; expected at least {required_columns(spec.model)}; "
            f"the header read has [{shown}]{delimiter_hint(frame.columns)}"
        )


class _Reasons:
    """Problems found in one table, kept as row masks; text is made only for the rows set aside."""

    def __init__(self, n: int, only: np.ndarray | None = None) -> None:
        self.n = n
        self.items: list[tuple[str, str, np.ndarray]] = []  # (reason, label with column, mask)
        self.only = only  # rows whose one reason is set with ``exclusive`` (malformed rows): no other reason is added

    def add(self, mask: np.ndarray, reason: str, column: str, exclusive: bool = False) -> None:
        mask = np.asarray(mask, dtype=bool)
        if self.only is not None and not exclusive:
            mask = mask & ~self.only
        if mask.any():
            self.items.append((reason, f"{reason}({column})" if column else reason, mask))

    def bad(self) -> np.ndarray:
        out = np.zeros(self.n, dtype=bool)
        for _, _, mask in self.items:
            out |= mask
        return out

    def describe(self, rows: np.ndarray) -> tuple[list[str], list[str]]:
        """Primary reason (the first found) and every problem, for each of ``rows``."""
        labels: list[list[str]] = [[] for _ in rows]
        primary: list[str | None] = [None] * len(rows)
        for reason, label, mask in self.items:
            for j in np.flatnonzero(mask[rows]):
                labels[j].append(label)
                if primary[j] is None:
                    primary[j] = reason
        return primary, ["; ".join(x) for x in labels]


def _exact_duplicates(frame: pd.DataFrame, customer: np.ndarray, time_col: str) -> np.ndarray:
    """Every copy after the first of a row equal in all columns.

    Equal rows share customer and timestamp, so only rows whose (customer,
    timestamp) pair repeats are compared column by column. The pairs are found
    by sorting one 64-bit mix of the two (a collision only adds a candidate that
    the exact comparison rejects), which is several times faster on millions of
    rows than a hash table over the pairs.
    """
    t = frame[time_col].to_numpy(dtype="datetime64[us]").astype(np.int64).view(np.uint64)
    with np.errstate(over="ignore"):
        key = (t * np.uint64(0x9E3779B97F4A7C15)) ^ np.asarray(customer, dtype=np.int64).view(np.uint64)
    ordered = np.sort(key)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    out = np.zeros(len(frame), dtype=bool)
    if repeated.size:
        maybe = np.isin(key, np.unique(repeated))
        out[np.flatnonzero(maybe)] = frame.loc[maybe].duplicated(keep="first").to_numpy()
    return out


@dataclass(frozen=True)
class _Coerced:
    """A table with its contract columns in their types, and what reading the values found."""

    frame: pd.DataFrame
    # per reason (UNPARSEABLE, NON_FINITE, TOO_LARGE) and column: the given values refused for it
    refused: dict[str, dict[str, np.ndarray]]
    problems: dict[str, str]  # per typed column in which no given value reads: the error
    good: list[str]  # typed columns in which some value reads (a partitioned run combines these)
    normalised: dict[str, int]  # values changed by a documented normalisation, per kind and column


def _coerce(
    frame: pd.DataFrame, spec: TableSpec, source: str, timezone: str = "UTC", timed: frozenset[str] = frozenset()
) -> _Coerced:
    """Cast contract columns to their types (see :mod:`pipelines.io.normalise` for the rules).

    Null tokens mean missing in every column. Contract text columns are
    normalised as text (free text keeps its characters); other text columns keep their values.
    """
    out = frame.copy()
    refused: dict[str, dict[str, np.ndarray]] = {UNPARSEABLE: {}, NON_FINITE: {}, TOO_LARGE: {}}
    problems: dict[str, str] = {}
    good: list[str] = []
    normalised: dict[str, int] = {}
    contract = all_columns(spec.model)
    for col in [c for c in contract if c in frame.columns]:
        raw = frame[col]
        tokens = null_token_mask(raw)
        _count(normalised, f"null_token({col})", tokens & _non_blank(raw))
        given = raw.notna().to_numpy() & ~tokens
        raw = raw.where(given, None)
        values, flagged, expected = _read_column(raw, col, spec, timezone, normalised, col in timed)
        # text always reads (a value missing only once cleaned is a null token, counted as one)
        failed = given & values.isna().to_numpy() if expected is not None else np.zeros(len(frame), dtype=bool)
        for mask in flagged.values():
            failed &= ~mask
        if expected is not None and len(frame):
            if given.any() and failed.all():
                example = raw[given].iloc[0]
                example = example.item() if isinstance(example, np.generic) else example  # 5, not np.int64(5)
                problems[col] = (
                    f"{source}: column '{col}' has no value that can be read as {expected}; first value is {example!r}"
                )
            else:
                good.append(col)
        for reason, mask in {UNPARSEABLE: failed, **flagged}.items():
            if mask.any():
                refused[reason][col] = mask
        out[col] = values
    if spec.model is not Customers:  # customers' other columns are typed as attributes
        for col in [c for c in frame.columns if c not in contract and not str(c).startswith("_")]:
            tokens = null_token_mask(frame[col])
            if tokens.any():
                out[col] = frame[col].where(~tokens, None)
                _count(normalised, f"null_token({col})", tokens & _non_blank(frame[col]))
    return _Coerced(out, refused, problems, good, normalised)


def _read_column(
    raw: pd.Series, col: str, spec: TableSpec, timezone: str, normalised: dict[str, int], timed: bool = False
) -> tuple[pd.Series, dict[str, np.ndarray], str | None]:
    """One contract column in its type, the values read but refused (infinite, too large), and what a value must read
    as (``None`` for text, which always reads); text normalisations are counted in ``normalised``."""
    if col in spec.dates:
        return (
            parse_timestamps(raw, timezone, timed),
            {},
            "a date or timestamp (ISO 8601 with a day, e.g. 2025-03-31 or 2025-03-31T14:05:00)",
        )
    if col in spec.numbers or col in spec.integers:
        numbers = read_numbers(raw)
        values = numbers.values
        if col in spec.integers:
            values = values.where(values.isna() | (values == np.round(values)), np.nan)
        return (
            values,
            {NON_FINITE: numbers.infinite, TOO_LARGE: numbers.too_large},
            "an integer" if col in spec.integers else "a number",
        )
    if col in spec.booleans:
        return parse_booleans(raw), {}, "true/false (or 1/0)"
    values, changes = normalise_text(raw, col, visible=col not in FREE_TEXT)
    if col in CANONICAL_CASE:
        values, changes[f"case({col})"] = canonical_case(values, col, CANONICAL_CASE[col])
    for key, mask in changes.items():
        _count(normalised, key, mask)
    return values, {}, None


def _non_blank(values: pd.Series) -> np.ndarray:
    return (values.astype("str").str.strip() != "").fillna(False).to_numpy(dtype=bool)


def _count(counts: dict[str, int], key: str, mask: np.ndarray) -> None:
    n = int(np.count_nonzero(mask))
    if n:
        counts[key] = counts.get(key, 0) + n


def _schema_reasons(
    frame: pd.DataFrame, spec: TableSpec, reasons: _Reasons, unparseable: dict[str, np.ndarray]
) -> None:
    """Run the pandera model lazily and turn its failure cases into row reasons."""
    try:
        spec.model.validate(frame, lazy=True)
        return
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
    cases = cases[cases["index"].notna()]
    # A dataframe-level check reports each failing row once per column: keep one.
    cases.loc[cases["check"] == SCORE_OUT_OF_RANGE, "column"] = "score"
    cases = cases.drop_duplicates(subset=["check", "column", "index"])
    n = len(frame)
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        rows = np.zeros(n, dtype=bool)
        rows[group["index"].astype(int).to_numpy()] = True
        column = "" if pd.isna(column) or column == spec.model.__name__ else str(column)
        if check == "not_nullable":
            # A value that was given but could not be read is already reported as unparseable.
            rows &= ~unparseable.get(column, np.zeros(n, dtype=bool))
            reasons.add(rows, MISSING_VALUE, column)
        else:
            reasons.add(rows, str(check), column)
