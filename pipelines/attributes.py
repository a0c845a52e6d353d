"""Customer attributes: the extra columns of ``customers``, typed once at validation.

A warehouse CSV carries every column as text. Left as text, ``Age`` or
``Balance`` would become categories with thousands of levels; so each extra
column is given one type here, from its values or from the config, and every
later stage (features, training, scoring) reads that type instead of guessing
again:

* ``number``: every given value reads as a number (integers, decimals, ``0/1``),
  and none is written with a leading zero: a column with ``01234`` or
  ``0049301234`` (a zip code, a phone number) is a code, so a category or an
  identifier, and the report notes why;
* ``boolean``: every given value is one of ``true/false``, ``yes/no``, ``t/f``, ``y/n``;
* ``date``: every given value is an ISO 8601 date or timestamp with at least a
  day (as :mod:`pipelines.io.normalise` reads dates; a feature becomes the days
  between it and the as-of date);
* ``category``: any other text (the logistic-regression model groups rare levels; LightGBM codes each level);
* ``identifier``: text different for every customer (a name, an account
  code), or unique whole numbers that run consecutively or are all 10,000 or
  more (a row number, an account number): reported and left out of the features;
* ``exclude``: set in the config; kept in the data, never a feature.

Inference is deliberately strict (every given value must read as the type):
one stray word in a column of numbers makes it a category, and the report
says so; the config can then force ``number``, and the values that do not
read are quarantined like any unreadable contract value. Values are read by
the rules of :mod:`pipelines.io.normalise`: a number attribute's infinite values
and those too large for an amount are refused like a contract number's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from features.config import FeatureConfig
from pipelines.errors import UserError
from pipelines.io.normalise import (
    FALSE_TEXT,
    TRUE_TEXT,
    normalise_text,
    null_token_mask,
    parse_booleans,
    parse_timestamps,
    read_numbers,
)

NUMBER, BOOLEAN, DATE, CATEGORY, IDENTIFIER, EXCLUDE = "number", "boolean", "date", "category", "identifier", "exclude"
ATTRIBUTE_TYPES = (NUMBER, BOOLEAN, DATE, CATEGORY, IDENTIFIER, EXCLUDE)
FEATURE_TYPES = (NUMBER, BOOLEAN, DATE, CATEGORY)  # the types that become model features
# Words that make a text column boolean (1/0 alone make it a number: see the module docstring).
TRUE_TOKENS = TRUE_TEXT - {"1"}
FALSE_TOKENS = FALSE_TEXT - {"0"}
MIN_ROWS_FOR_IDENTIFIER = 20  # below this, every column of a tiny table would look unique
# A number written with a leading zero (0123, 00, -01.5; not 0 or 0.5): a code, which a number would change.
_LEADING_ZERO = r"^[+-]?0[0-9]"
# Whole numbers of 16 digits or more (beyond 10^15, which no amount reaches): account or card numbers, codes.
_LONG_DIGITS = r"[+-]?[0-9]{16,}"


@dataclass(frozen=True)
class TypedAttributes:
    """Attribute columns in their types, the type of each, the given values that did not read as a forced type, and
    a note for each type inferred for a reason a reader may not expect (a number column with leading zeros)."""

    frame: pd.DataFrame
    types: dict[str, str]
    unparseable: dict[str, np.ndarray]
    notes: tuple[str, ...] = ()
    changed: dict[str, np.ndarray] = field(default_factory=dict)  # text normalisations of category columns, by counter


def attribute_columns(frame: pd.DataFrame, contract_columns: tuple[str, ...]) -> list[str]:
    """The extra columns of a customers table (internal ``_`` columns are not attributes)."""
    return [c for c in frame.columns if c not in contract_columns and not str(c).startswith("_")]


def decide_types(
    frame: pd.DataFrame, contract_columns: tuple[str, ...], forced: Mapping[str, str] | None = None
) -> TypedAttributes:
    """Every attribute column of a whole customers table typed (for engines that validate it in parts): the
    ``types`` every part is then given, and the ``notes`` of the whole-table decision for the report (the values
    themselves are read in each part)."""
    forced = dict(forced or {})
    types, notes = {}, []
    for col in attribute_columns(frame, contract_columns):
        kind, why = (forced[col], None) if forced.get(col) else _infer(frame[col])
        types[col] = kind
        if why:
            notes.append(_note(col, kind, why))
    return TypedAttributes(pd.DataFrame(index=frame.index), types, {}, tuple(notes))


def check_overrides(
    forced: Mapping[str, str], columns: list[str], contract_columns: tuple[str, ...], source: str, where: str
) -> None:
    """Refuse a type given (``where``: ``--attribute`` or ``features.attribute_types``) for a column that is not an
    attribute of ``source``: a typo would otherwise leave the column typed as inferred, an exclusion unmade."""
    attributes = attribute_columns(pd.DataFrame(columns=columns), contract_columns)
    for col, kind in forced.items():
        if col in contract_columns:
            raise UserError(
                f"{where} {col}={kind}: '{col}' is a contract column of {source}, whose type the contract fixes; "
                "only extra columns (customer attributes) take a type"
            )
        if col not in attributes:
            near = [c for c in attributes if c.casefold() == col.casefold()]
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise UserError(
                f"{where} {col}={kind}: {source} has no attribute column '{col}'{hint} (its attribute columns: "
                f"{', '.join(attributes) or 'none'})"
            )


def _note(col: str, kind: str, why: str) -> str:
    return (
        f"customer attribute '{col}' is typed {kind}, not number: {why}; if it is a quantity, set its type "
        f"(--attribute {col}=number)"
    )


def type_attributes(
    frame: pd.DataFrame, columns: list[str], forced: Mapping[str, str] | None = None, timezone: str = "UTC"
) -> TypedAttributes:
    """Type each of ``columns``: as ``forced`` says where it names the column, else as its values show; dates
    written without a zone are local times in ``timezone``, as the contract's."""
    forced = dict(forced or {})
    unknown = {c: t for c, t in forced.items() if t not in ATTRIBUTE_TYPES}
    if unknown:
        raise UserError(f"attribute types {unknown}: expected one of {list(ATTRIBUTE_TYPES)}")
    out: dict[str, pd.Series] = {}
    types: dict[str, str] = {}
    unparseable: dict[str, np.ndarray] = {}
    notes: list[str] = []
    changed: dict[str, np.ndarray] = {}
    for col in columns:
        values = frame[col]
        kind, why = (forced[col], None) if forced.get(col) else _infer(values)
        typed, failed = coerce(values, kind, timezone)
        if kind in (
            CATEGORY,
            IDENTIFIER,
        ):  # codes, read as the contract's text columns are (invisible characters, NFC, ...)
            typed, found = normalise_text(values.where(~_missing(values), None), col)
            changed.update({key: mask for key, mask in found.items() if mask.any()})
        out[col], types[col] = typed, kind
        if failed.any():
            unparseable[col] = failed
        if why:
            notes.append(_note(col, kind, why))
    return TypedAttributes(pd.DataFrame(out, index=frame.index), types, unparseable, tuple(notes), changed)


def infer_type(values: pd.Series) -> str:
    """The narrowest type every given value of ``values`` reads as (see the module docstring)."""
    return _infer(values)[0]


def _infer(values: pd.Series) -> tuple[str, str | None]:
    """:func:`infer_type`, and why a column of numbers is not typed ``number`` (leading zeros), else ``None``."""
    if pd.api.types.is_bool_dtype(values):
        return BOOLEAN, None
    if pd.api.types.is_datetime64_any_dtype(values):
        return DATE, None
    if pd.api.types.is_numeric_dtype(values):
        return (IDENTIFIER if _whole_and_unique(values.dropna()) else NUMBER), None
    text = _given_text(values)
    if text.empty:
        return CATEGORY, None
    lowered = text.str.lower()
    if lowered.isin(TRUE_TOKENS | FALSE_TOKENS).all() and lowered.nunique() <= 2:
        return BOOLEAN, None
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all():
        zeros = text[text.str.contains(_LEADING_ZERO)]
        if len(zeros):
            return (
                _code(text),
                f"values such as {zeros.min()!r} have a leading zero (a code such as a zip or phone number, which a "
                "number would change)",
            )
        digits = text[text.str.fullmatch(_LONG_DIGITS)]
        if len(digits):
            return (
                _code(text),
                f"values such as {digits.min()!r} are 16 or more digits (a code such as an account or card number, not "
                "an amount)",
            )
        return (IDENTIFIER if _whole_and_unique(numbers) else NUMBER), None
    if _dates(text).notna().all():
        return DATE, None
    return _code(text), None


def _code(text: pd.Series) -> str:
    """Text that is no number, boolean or date: an identifier when different for every customer, else a category."""
    return IDENTIFIER if len(text) >= MIN_ROWS_FOR_IDENTIFIER and text.is_unique else CATEGORY


def coerce(values: pd.Series, kind: str, timezone: str = "UTC") -> tuple[pd.Series, np.ndarray]:
    """``values`` in the dtype of ``kind``, and which given values did not read as it.

    Numbers are float64, booleans pandas ``boolean``, dates ``datetime64[us]``
    (offsets converted to UTC), everything else text with missing values as NA.
    """
    missing = _missing(values)
    if kind == NUMBER:
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        numbers = read_numbers(values if numeric else _text(values).where(~missing))
        # an infinite or too large attribute is not read (validation says which); the given value fails
        typed = numbers.values.where(~(numbers.infinite | numbers.too_large), np.nan)
    elif kind == BOOLEAN:
        typed = parse_booleans(values)
    elif kind == DATE:
        given = values if pd.api.types.is_datetime64_any_dtype(values) else _text(values).where(~missing)
        typed = parse_timestamps(given, timezone)  # naive UTC, by the contract's rule
    else:
        typed = _text(values).where(~missing).astype("str")
    failed = (~missing & typed.isna()).to_numpy()
    return typed, failed


def usable_features(types: Mapping[str, str], exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """The attribute columns that become features, with their types."""
    return {c: t for c, t in types.items() if t in FEATURE_TYPES and c not in exclude}


def _text(values: pd.Series) -> pd.Series:
    return values.astype("str").str.strip()


def _missing(values: pd.Series) -> pd.Series:
    if (
        pd.api.types.is_numeric_dtype(values)
        or pd.api.types.is_bool_dtype(values)
        or pd.api.types.is_datetime64_any_dtype(values)
    ):
        return values.isna()
    return values.isna() | pd.Series(null_token_mask(values), index=values.index)


def _given_text(values: pd.Series) -> pd.Series:
    return _text(values[~_missing(values)])


def _whole_and_unique(numbers: pd.Series) -> bool:
    """Whole numbers different for every customer that run consecutively (a row number) or are large (an account
    number); a measurement such as age can be unique in a small table, but is neither."""
    n = numbers.to_numpy(dtype=float)
    if len(n) < MIN_ROWS_FOR_IDENTIFIER or not np.all(n == np.round(n)) or not numbers.is_unique:
        return False
    return bool(n.max() - n.min() == len(n) - 1 or n.min() >= 10_000)


def _dates(text: pd.Series) -> pd.Series:
    return parse_timestamps(text)


def with_attribute_types(config: FeatureConfig, types: Mapping[str, str]) -> FeatureConfig:
    """``config`` with the attribute features validation decided, unless it already names them (a trained model's)."""
    if config.attribute_types is not None:
        return config
    return replace(config, attribute_types=tuple(usable_features(types, config.exclude_columns).items()))
