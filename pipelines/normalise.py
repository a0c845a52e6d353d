"""How raw warehouse values and headers are read: one place for each rule, shared by every engine.

* **Null tokens.** Empty text and ``NULL``, ``null``, ``N/A``, ``NA``,
  ``NaN``, ``None``, ``#N/A``, ``nil`` (any case, surrounding spaces ignored)
  mean "no value" in every column, text included.
* **Timestamps.** ISO 8601 dates and timestamps. A timestamp with a designator
  (``Z``, ``UTC``, ``+HH:MM``, ``+HHMM``, ``+HH``) is converted to UTC value by
  value, so one column may mix designators; a timestamp without one is in the
  configured time zone (UTC unless the config names another) and converted
  to UTC; a date without a time stays that date. Every timestamp is stored as
  naive UTC.
* **Headers.** Names are trimmed of spaces (and a stray byte-order mark); a
  name that appears twice is refused; a name that is a contract column only
  after case-folding (``Customer_ID``, ``customer id``) is read as that
  column, with a note in the report.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipelines.errors import UserError

# Text a warehouse or spreadsheet writes for "no value".
NULL_TOKENS = frozenset({"", "null", "n/a", "na", "nan", "none", "#n/a", "nil"})
# A time of day followed by a designator: Z, UTC/GMT, or an offset (+02:00, +0200, +02).
_DESIGNATOR = re.compile(r"^\d{4}-?\d\d-?\d\d[T ]\d.*\d\s*(?:[zZ]|UTC|GMT|utc|gmt|[+-]\d\d(?::?\d\d)?)$")
_NAMED_UTC = re.compile(r"\s*(?:UTC|GMT|utc|gmt)$")
DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


class HeaderError(UserError):
    """A header the pipeline will not guess about: names the file and the column."""


def null_token_mask(values: pd.Series) -> np.ndarray:
    """Given text values that mean "no value" (see :data:`NULL_TOKENS`); missing values are not counted."""
    if not (values.dtype == object or pd.api.types.is_string_dtype(values)):
        return np.zeros(len(values), dtype=bool)
    text = values.astype("str")
    return (values.notna() & text.str.strip().str.lower().isin(NULL_TOKENS)).to_numpy()


def parse_timestamps(raw: pd.Series, timezone: str = "UTC") -> pd.Series:
    """``raw`` (text, or already datetimes) as naive-UTC ``datetime64[us]``; ``NaT`` where a value does not read.

    See the module docstring for the rule. A local time that does not exist or is ambiguous in ``timezone``
    (a daylight-saving change) does not read either: it is quarantined rather than guessed.
    """
    if pd.api.types.is_datetime64_any_dtype(raw):
        values = raw
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        elif timezone != "UTC":
            values = _local_to_utc(values, timezone, has_time=values.notna() & (values != values.dt.normalize()))
        return values.astype("datetime64[us]")
    text = raw.astype("str").str.strip().where(raw.notna(), None)
    designated = text.str.contains(_DESIGNATOR, na=False)
    out = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[us]")
    if designated.any():
        aware = text[designated].str.replace(_NAMED_UTC, "Z", regex=True)
        out[designated] = pd.to_datetime(aware, errors="coerce", format="ISO8601", utc=True).dt.tz_localize(None).astype("datetime64[us]")
    naive = ~designated & text.notna()
    if naive.any():
        # utc=True only so that a designator the pattern missed is converted rather than an error; naive values are unchanged by it.
        parsed = pd.to_datetime(text[naive], errors="coerce", format="ISO8601", utc=True).dt.tz_localize(None)
        if timezone != "UTC":
            parsed = _local_to_utc(parsed, timezone, has_time=text[naive].str.contains(":", regex=False))
        out[naive] = parsed.astype("datetime64[us]")
    return out


def _local_to_utc(values: pd.Series, timezone: str, has_time: pd.Series) -> pd.Series:
    """Local wall-clock times in ``timezone`` as naive UTC; dates without a time stay as they are."""
    out = values.copy()
    timed = has_time.fillna(False).to_numpy(dtype=bool) & values.notna().to_numpy()
    if timed.any():
        local = values[timed].dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
        out[timed] = local.dt.tz_convert("UTC").dt.tz_localize(None)
    return out


def finite_numbers(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """``raw`` as float64 (``NaN`` where a value does not read as a number) and which values are infinite
    (``inf``, ``-Infinity``, ``1e309``): validation refuses those rows (``non_finite_value``)."""
    values = pd.to_numeric(raw, errors="coerce").astype(float)
    return values, np.isinf(values.to_numpy())


def _fold(name: str) -> str:
    return re.sub(r"[\s\-_]+", "_", name.casefold()).strip("_")


def normalise_header(columns: Sequence, contract: Sequence[str], source: str) -> tuple[list[str], list[str]]:
    """Header names as the pipeline reads them, and a note for each name it changed (see the module docstring).

    Empty names are kept as ``""`` here: whether such a column may be dropped depends on its values
    (:func:`drop_unnamed`).
    """
    original = [str(c) for c in columns]
    names = [c.replace("\ufeff", "").strip() for c in original]
    notes = [f"{source}: header name {o!r} read as {n!r} (surrounding spaces removed)" for o, n in zip(original, names) if o != n and n]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if not name:
            continue
        if name in seen:
            raise HeaderError(
                f"{source}: column '{name}' appears twice in the header (columns {seen[name] + 1} and {i + 1}); rename or remove one"
            )
        seen[name] = i
    folded = {_fold(c): c for c in contract}
    for i, name in enumerate(names):
        target = folded.get(_fold(name)) if name else None
        if target is None or target == name:
            continue
        if target in seen:
            raise HeaderError(
                f"{source}: columns '{name}' and '{names[seen[target]]}' both name the contract column '{target}' "
                "(they differ only in case or spacing); keep one"
            )
        notes.append(f"{source}: column '{name}' read as the contract column '{target}' (the name differs in case or spacing)")
        names[i], seen[target] = target, i
    return names, notes


def drop_unnamed(frame: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list[str]]:
    """Columns with no header name (a trailing comma on the header line): dropped when they hold no value, refused when they do."""
    unnamed = [i for i, c in enumerate(frame.columns) if c == ""]
    if not unnamed:
        return frame, []
    for i in unnamed:
        column = frame.iloc[:, i]
        given = column.notna().to_numpy() & ~null_token_mask(column)
        if given.any():
            first = int(np.flatnonzero(given)[0])
            raise HeaderError(
                f"{source}: column {i + 1} has no name in the header but holds values (first {column.iloc[first]!r}, data row {first + 1}); "
                "name it in the header"
            )
    keep = [i for i in range(frame.shape[1]) if i not in unnamed]
    return frame.iloc[:, keep], [f"{source}: {len(unnamed)} column(s) with no header name and no value ignored (a trailing delimiter)"]


def delimiter_hint(columns: Sequence) -> str:
    """A hint when a header looks separated by something other than commas (``;``, tab, ``|``), else ``""``."""
    text = ",".join(str(c) for c in columns)
    for delimiter, name in DELIMITERS.items():
        if delimiter in text:
            return (
                f"; the header looks {name}-separated ({delimiter!r}): the contract reads comma-separated CSV, "
                "so export the file with commas as the delimiter"
            )
    return ""
