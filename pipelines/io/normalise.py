"""How raw warehouse values and headers are read: one place for each rule, shared by every engine.

* **Null tokens.** Empty text and ``NULL``, ``null``, ``N/A``, ``NA``,
  ``NaN``, ``None``, ``#N/A``, ``nil``, MySQL's ``\\N`` (any case, surrounding
  spaces ignored) mean "no value" in every column, text included.
* **Text.** Contract text columns are trimmed of surrounding spaces. Those that
  name or code something (every one but free text such as ``comment``) also
  lose invisible characters (zero-width and other format characters, Unicode
  category Cf such as U+200B and U+FEFF, and NUL) and are put in Unicode NFC,
  so ``c1\\u200b`` is ``c1`` and a decomposed ``é`` is the composed one. A
  float column (parquet stores an integer column with a null as float) gives
  its whole numbers as integers: ``101.0`` is ``"101"``. Each change is
  counted per column (``trimmed``, ``invisible``, ``unicode_nfc``,
  ``float_to_text``).
* **Numbers.** Text or numbers read as float64; ``-0`` is ``0``. An infinite
  value (``inf``, ``1e309``) or one whose magnitude exceeds
  :data:`LARGEST_NUMBER` (``1e15``: no amount or duration is that large, and a
  few ``1e308`` make a sum infinite) is read but flagged, and validation
  refuses the row.
* **Booleans.** ``true/false``, ``yes/no``, ``t/f``, ``y/n``, ``1/0`` (any
  case); numbers ``1`` and ``0``; anything else does not read.
* **Dates and timestamps.** ISO 8601 with at least day precision
  (``YYYY-MM-DD``, ``YYYYMMDD``, ``YYYY/MM/DD``): ``2023`` or ``2024-02`` does
  not read. A value has a time when the date is followed by ``T`` or a space
  and a digit (``2024-02-01T10:00``, ``20240201T1000``, ``2024-02-01T10``). A
  timestamp with a designator (``Z``, ``UTC``, ``+HH:MM``, ``+HHMM``, ``+HH``)
  is converted to UTC value by value, so one column may mix designators; a
  timestamp without one is in the configured time zone (UTC unless the config
  names another) and converted to UTC; a date without a time stays that date.
  Datetimes without a zone (parquet) are decided per column: if any value has
  a time of day, every value is a timestamp (midnight included) and is
  converted; a column of midnights is dates and stays. Every timestamp is
  stored as naive UTC.
* **Headers.** Names are trimmed of spaces and invisible characters (a
  byte-order mark, a zero-width space), with a note; a name that appears twice
  is refused; the pipeline's own bookkeeping names (:data:`RESERVED_COLUMNS`:
  a quarantine file fed back) are refused; a name that is a contract column
  only after folding case and removing spaces, ``-`` and ``_``
  (``Customer_ID``, ``customer id``, ``customerID``, ``SignupDate``) is read as
  that column, with a note in the report.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.errors import UserError

# Text a warehouse or spreadsheet writes for "no value" (``\N``: MySQL's SELECT ... INTO OUTFILE).
NULL_TOKENS = frozenset({"", "null", "n/a", "na", "nan", "none", "#n/a", "nil", "\\n"})
TRUE_TEXT = frozenset({"true", "1", "yes", "y", "t"})
FALSE_TEXT = frozenset({"false", "0", "no", "n", "f"})
# Larger magnitudes are no amount or duration: a handful of them make a sum infinite.
LARGEST_NUMBER = 1e15
# Columns the pipeline adds itself (quarantine bookkeeping, the CSV reader's malformed rows): never input columns.
# Columns the CSV reader adds to a row whose width differs from the header's (see pipelines.io.reading).
RAW_LINE, MALFORMED_DETAIL = "_raw_line", "_malformed"
# Each row's position in its source file: the quarantine's row numbers, and the column the partitioned and Spark
# engines carry through their buckets so that a part reports the rows of the whole file.
SOURCE_ROW = "_source_row"
RESERVED_COLUMNS = (
    SOURCE_ROW,
    "_reason",
    "_detail",
    RAW_LINE,
    MALFORMED_DETAIL,  # quarantine bookkeeping, the reader's malformed rows
    "_table",
    "_bucket",
    "_file",
    "_row",
    "_offset",  # the Spark engine's working columns
)
DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}

# Patterns are written for pyarrow's RE2 (no \d, \s or $), so that they run vectorised on text columns.
# A date with at least day precision: YYYY-MM-DD (or YYYY-M-D), YYYY/MM/DD, YYYYMMDD.
_DAY = r"^[0-9]{4}(?:-[0-9]{1,2}-[0-9]{1,2}|/[0-9]{1,2}/[0-9]{1,2}|[0-9]{4})"
_DAY_PRECISION = _DAY + r"(?:[^0-9]|\Z)"
# A date followed by a time of day (T or a space, then a digit).
_TIMED = _DAY + r"[T ][0-9]"
# A time of day followed by a designator: Z, UTC/GMT, or an offset (+02:00, +0200, +02).
_DESIGNATOR = _TIMED + r".*[0-9] *(?:[zZ]|UTC|GMT|utc|gmt|[+-][0-9]{2}(?::?[0-9]{2})?)\Z"
_NAMED_UTC = r" *(?:UTC|GMT|utc|gmt)\Z"


class HeaderError(UserError):
    """A header the pipeline will not guess about: names the file and the column."""


def null_token_mask(values: pd.Series) -> np.ndarray:
    """Given text values that mean "no value" (see :data:`NULL_TOKENS`); missing values are not counted."""
    if not (values.dtype == object or pd.api.types.is_string_dtype(values)):
        return np.zeros(len(values), dtype=bool)
    text = values.astype("str")
    plain = text.str.strip().str.lower()
    found = (values.notna() & plain.isin(NULL_TOKENS)).to_numpy(dtype=bool).copy()
    # a token behind invisible characters or Excel's ="..." (NULL\u200b, ="") means no value too; only values with
    # '=', NUL or a character beyond ASCII can be one
    odd = (
        values.notna()
        & ~plain.isin(NULL_TOKENS)
        & (plain.str.contains("=", regex=False) | ~plain.str.isascii() | plain.str.contains("\x00", regex=False))
    ).to_numpy(dtype=bool)
    if odd.any():
        cleaned = plain[odd].str.replace(_INVISIBLE.pattern, "", regex=True).str.strip()
        cleaned = cleaned.str.replace(_EXCEL_WRAPPED, r"\1", regex=True).str.strip()
        found[odd] = cleaned.isin(NULL_TOKENS).to_numpy(dtype=bool)
    return found


# --- text -------------------------------------------------------------------------------------
def normalise_text(raw: pd.Series, column: str, visible: bool = True) -> tuple[pd.Series, dict[str, np.ndarray]]:
    """``raw`` as text (``str``, missing stays missing) by the module's text rule, and which values each
    normalisation changed, keyed by its counter (``trimmed(column)``, ...). ``visible``: also remove invisible
    characters and compose to NFC (not for free text)."""
    changes: dict[str, np.ndarray] = {}
    if pd.api.types.is_float_dtype(raw):
        text, changes[f"float_to_text({column})"] = _float_text(raw)
    else:
        text = raw.astype("str")
    if visible:
        text = _visible_text(text, column, changes)
        text = _excel_text(text, column, changes)
    trimmed = text.str.strip()
    changes[f"trimmed({column})"] = (text.notna() & (trimmed != text)).fillna(False).to_numpy(dtype=bool)
    return trimmed.where(raw.notna(), None).astype("str"), changes


_EXCEL_WRAPPED = r'^=" *((?:[^"]|"")*?) *"$'


def _excel_text(text: pd.Series, column: str, changes: dict[str, np.ndarray]) -> pd.Series:
    """Excel's way to keep a code as text, ``="00123"``, read as the code it wraps (``00123``)."""
    candidate = text.str.contains('="', regex=False, na=False)  # cheap: the pattern runs on these only
    wrapped = np.zeros(len(text), dtype=bool)
    if candidate.any():
        wrapped[candidate.to_numpy(dtype=bool)] = (
            text[candidate].str.strip().str.match(_EXCEL_WRAPPED, na=False).to_numpy(dtype=bool)
        )
    changes[f"excel_text({column})"] = wrapped
    if not wrapped.any():
        return text
    text = text.copy()
    text[wrapped] = text[wrapped].str.strip().str.slice(2, -1).str.replace('""', '"', regex=False)
    return text


def canonical_case(values: pd.Series, column: str, case: str) -> tuple[pd.Series, np.ndarray]:
    """Codes of a closed set written in another case (``Treatment``, ``nps``) as the contract spells them; and which
    values changed (counted as ``case(column)``)."""
    folded = values.str.lower() if case == "lower" else values.str.upper()
    return folded, (values.notna() & (folded != values)).fillna(False).to_numpy(dtype=bool)


def _float_text(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Floats as text, whole numbers (exact in a float) as integers: ``101.0`` is ``"101"``."""
    values = raw.to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(values) & (values == np.round(values)) & (np.abs(values) <= 2.0**53)
    text = pd.Series(np.where(whole, values, 0).astype(np.int64), index=raw.index).astype("str").where(whole)
    other = ~whole & ~np.isnan(values)
    if other.any():  # fractions, infinities, huge values: as pandas writes them (converting every float is slow)
        text[other] = raw[other].astype("str")
    return text, whole


# Characters that show nothing and mean nothing in a code: NUL, soft hyphen, zero-width space, left-to-right and
# right-to-left marks, word joiner, byte-order mark, bidirectional embeddings and isolates. Zero-width (non-)joiners
# are left alone: they are part of words in Persian and Indic scripts, and of emoji.
_INVISIBLE = re.compile("[\x00\u00ad\u200b\u200e\u200f\u2060\ufeff\u202a-\u202e\u2066-\u2069]")
_INVISIBLE_RE2 = (
    r"[\x{0}\x{AD}\x{200B}\x{200E}\x{200F}\x{2060}\x{FEFF}\x{202A}-\x{202E}\x{2066}-\x{2069}]"  # the same, for Arrow
)
# What NFC may change: combining marks, Hangul jamo, and the singletons that NFC replaces (ohm, kelvin, angstrom signs).
_MAY_COMPOSE_RE2 = r"[\p{M}\x{1100}-\x{11FF}\x{2126}\x{212A}\x{212B}]"


def _visible_text(text: pd.Series, column: str, changes: dict[str, np.ndarray]) -> pd.Series:
    """``text`` without invisible characters, in NFC. The values that may need either are found by Arrow's regular
    expressions over the whole column; only those few are changed one by one."""
    arr = pa.array(text, type=pa.large_string(), from_pandas=True)
    hidden = pc.fill_null(pc.match_substring_regex(arr, _INVISIBLE_RE2), False)
    decomposed = pc.fill_null(pc.match_substring_regex(arr, _MAY_COMPOSE_RE2), False)
    odd = pc.or_(hidden, decomposed).to_numpy(zero_copy_only=False)
    invisible, composed = np.zeros(len(text), dtype=bool), np.zeros(len(text), dtype=bool)
    if odd.any():
        before = text[odd].tolist()
        cleaned = [without_invisible(v) for v in before]
        nfc = [unicodedata.normalize("NFC", v) for v in cleaned]
        invisible[odd] = [a != b for a, b in zip(before, cleaned, strict=True)]
        composed[odd] = [a != b for a, b in zip(cleaned, nfc, strict=True)]
        text = text.copy()
        text[odd] = nfc
    changes[f"invisible({column})"], changes[f"unicode_nfc({column})"] = invisible, composed
    return text


def without_invisible(value: str) -> str:
    """``value`` without the characters of :data:`_INVISIBLE`."""
    return _INVISIBLE.sub("", value)


# --- numbers and booleans ---------------------------------------------------------------------
@dataclass(frozen=True)
class Numbers:
    """A column read as numbers: float64 (``NaN`` where a value is not a number), and the values validation refuses."""

    values: pd.Series
    infinite: np.ndarray  # inf, -Infinity, 1e309
    too_large: np.ndarray  # finite, magnitude above LARGEST_NUMBER


def read_numbers(raw: pd.Series) -> Numbers:
    """``raw`` (text or numbers) as :class:`Numbers`; ``-0`` is read as ``0``."""
    values = pd.to_numeric(raw, errors="coerce").astype(float) + 0.0  # -0.0 + 0.0 is 0.0
    v = values.to_numpy()
    infinite = np.isinf(v)
    with np.errstate(invalid="ignore"):
        too_large = ~infinite & (np.abs(v) > LARGEST_NUMBER)
    return Numbers(values, infinite, too_large)


def parse_booleans(raw: pd.Series) -> pd.Series:
    """``raw`` as pandas ``boolean`` (see the module docstring); ``NA`` where a value does not read."""
    if pd.api.types.is_bool_dtype(raw):
        return raw.astype("boolean")
    out = pd.Series(pd.NA, index=raw.index, dtype="boolean")
    if pd.api.types.is_numeric_dtype(raw):
        values = raw.to_numpy(dtype=float, na_value=np.nan)
        out[values == 1] = True
        out[values == 0] = False
        return out
    text = raw.astype("str").str.strip().str.lower()
    number = pd.to_numeric(text, errors="coerce")  # 1.0 and 0.0, as a float column exports them
    out[(text.isin(TRUE_TEXT) | (number == 1)).to_numpy()] = True
    out[(text.isin(FALSE_TEXT) | (number == 0)).to_numpy()] = False
    return out


# --- dates and timestamps ---------------------------------------------------------------------
def parse_timestamps(raw: pd.Series, timezone: str = "UTC", timed: bool = False) -> pd.Series:
    """``raw`` (text, or already datetimes) as naive-UTC ``datetime64[us]``; ``NaT`` where a value does not read.

    See the module docstring for the rule. A local time that does not exist or is ambiguous in ``timezone``
    (a daylight-saving change) does not read either: it is quarantined rather than guessed.
    """
    if pd.api.types.is_datetime64_any_dtype(raw):
        return _datetimes_to_utc(raw, timezone, timed)
    text = raw.astype("str").str.strip().where(raw.notna(), None)
    daily = text.str.contains(_DAY_PRECISION, na=False).to_numpy(dtype=bool)
    designated = daily & text.str.contains(_DESIGNATOR, na=False).to_numpy(dtype=bool)
    out = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[us]")
    if designated.any():
        aware = text[designated].str.replace(_NAMED_UTC, "Z", regex=True)
        out[designated] = (
            pd.to_datetime(aware, errors="coerce", format="ISO8601", utc=True)
            .dt.tz_localize(None)
            .astype("datetime64[us]")
        )
    naive = daily & ~designated
    if naive.any():
        # utc=True only so that a designator the pattern missed is converted rather than an error; naive values are
        # unchanged by it.
        parsed = pd.to_datetime(text[naive], errors="coerce", format="ISO8601", utc=True).dt.tz_localize(None)
        if timezone != "UTC":
            parsed = _local_to_utc(parsed, timezone, has_time=text[naive].str.contains(_TIMED, na=False))
        out[naive] = parsed.astype("datetime64[us]")
    return out


def _datetimes_to_utc(values: pd.Series, timezone: str, timed: bool = False) -> pd.Series:
    """Datetimes as naive UTC: aware ones converted; naive ones local in ``timezone`` when the column has a time of day
    (``timed``: it has one elsewhere, when ``values`` are one part of the column, a customer bucket)."""
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    elif timezone != "UTC":
        timed = timed or has_time_of_day(values)
        values = _local_to_utc(values, timezone, has_time=pd.Series(timed, index=values.index))
    return values.astype("datetime64[us]")


def has_time_of_day(values: pd.Series) -> bool:
    """Whether any of the naive datetimes ``values`` is not at midnight (the column is timestamps, not dates)."""
    return bool((values.notna() & (values != values.dt.normalize())).any())


def _local_to_utc(values: pd.Series, timezone: str, has_time: pd.Series) -> pd.Series:
    """Local wall-clock times in ``timezone`` as naive UTC; dates without a time stay as they are."""
    out = values.copy()
    timed = has_time.fillna(False).to_numpy(dtype=bool) & values.notna().to_numpy()
    if timed.any():
        local = values[timed].dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
        out[timed] = local.dt.tz_convert("UTC").dt.tz_localize(None)
    return out


# --- headers ----------------------------------------------------------------------------------
def _fold(name: str) -> str:
    return re.sub(r"[\s\-_]+", "", name.casefold())


def _clean_name(name: str) -> tuple[str, list[str]]:
    """A header name without invisible characters and surrounding spaces, and what was removed."""
    visible = without_invisible(name)
    removed = []
    if visible != name:
        codes = sorted({f"U+{ord(c):04X}" for c in name if c not in visible})
        removed.append(f"invisible character(s) {', '.join(codes)} removed")
    if visible.strip() != visible:
        removed.append("surrounding spaces removed")
    return visible.strip(), removed


def normalise_header(columns: Sequence, contract: Sequence[str], source: str) -> tuple[list[str], list[str]]:
    """Header names as the pipeline reads them, and a note for each name it changed (see the module docstring).

    Empty names are kept as ``""`` here: whether such a column may be dropped depends on its values
    (:func:`drop_unnamed`).
    """
    names, notes = [], []
    for original in (str(c) for c in columns):
        name, removed = _clean_name(original)
        if removed and name:
            notes.append(f"{source}: header name {original!r} read as {name!r} ({'; '.join(removed)})")
        names.append(name)
    _refuse_reserved(names, source)
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if not name:
            continue
        if name in seen:
            raise HeaderError(
                f"{source}: column '{name}' appears twice in the header (columns {seen[name] + 1} and {i + 1}); rename "
                "or remove one"
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
                "(they differ only in case, spaces, '-' or '_'); keep one"
            )
        notes.append(
            f"{source}: column '{name}' read as the contract column '{target}' (the name differs in case, spaces, '-' "
            "or '_')"
        )
        names[i], seen[target] = target, i
    return names, notes


def _refuse_reserved(names: Sequence[str], source: str) -> None:
    for i, name in enumerate(names):
        if name.casefold() in RESERVED_COLUMNS:
            raise HeaderError(
                f"{source}: column '{name}' (column {i + 1}) is the pipeline's own bookkeeping column "
                f"(it adds {', '.join(RESERVED_COLUMNS)} itself); a quarantine file fed back? rename or drop the column"
            )


def drop_unnamed(frame: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list[str]]:
    """Columns with no header name (a trailing comma on the header line): dropped when they hold no value, refused when
    they do."""
    unnamed = [i for i, c in enumerate(frame.columns) if c == ""]
    if not unnamed:
        return frame, []
    for i in unnamed:
        column = frame.iloc[:, i]
        given = column.notna().to_numpy() & ~null_token_mask(column)
        if given.any():
            first = int(np.flatnonzero(given)[0])
            raise HeaderError(
                f"{source}: column {i + 1} has no name in the header but holds values (first {column.iloc[first]!r}, "
                f"data row {first + 1}); name it in the header"
            )
    keep = [i for i in range(frame.shape[1]) if i not in unnamed]
    return frame.iloc[:, keep], [
        f"{source}: {len(unnamed)} column(s) with no header name and no value ignored (a trailing delimiter)"
    ]


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
