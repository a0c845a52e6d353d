"""Reading a dataset folder the way a careful analyst would, and refusing by name when in doubt.

* **Which files.** ``NAME.csv`` or ``NAME.parquet`` (a file, or a folder of
  parquet parts; a folder named ``NAME.csv`` is refused) for each contract
  table. A file whose name is a table's only after case-folding
  (``Feedback.csv``) is read, with a note; a name one or two letters off a
  missing table (``interaction.csv``), a table's name with another format
  (``customers.xlsx``), or a compressed table (``interactions.csv.gz``,
  ``customers.zip``: decompress it) is refused by name; every other file,
  those whose name starts with ``.`` or ``_`` included (never read, never
  refused), is listed in the report as ignored.
* **Encoding.** UTF-8 with or without a byte-order mark unless another encoding
  is configured; an undecodable byte is refused naming the file and line, and
  a file that starts with a UTF-16 or UTF-32 byte-order mark is refused unless
  that encoding is configured. Where a single-byte encoding is configured
  (latin-1, iso-8859-*, cp1252, windows-125x), a file that starts with a UTF-8
  byte-order mark, or is valid UTF-8 and holds non-ASCII text, is read as UTF-8;
  and where latin-1 is configured, a file holding bytes 0x80-0x9f (control
  codes in latin-1, quotes, dashes and the euro sign in cp1252) is read as
  cp1252; each with a note.
* **CSV.** The header must be the first line: a blank or whitespace-only file
  is refused as empty, a blank first line or one that looks like a comment
  (``# exported ...``) is refused as such. Every value is read as text
  (validation types it). Quoted fields may hold delimiters and newlines (the
  header's too); blank lines are skipped. A file that ends inside a quoted
  field (a quote that is never closed) is refused naming the line where the
  quote opens, so that the lines after it are never read as one value. A row
  with more fields than the header whose extra fields are all empty (a
  trailing comma) is read without them; any other row whose width differs
  from the header's, or whose closing quote is followed by other text
  (``"gold 12" screen``), is kept aside whole, never shifted or altered: its
  raw text goes to ``_raw_line`` and what is wrong to ``_malformed`` (with the
  line range when a stray quote merged several lines), and validation
  quarantines it as ``malformed_row``.
* **Headers** are normalised by :func:`pipelines.io.normalise.normalise_header`.

Well-formed files are parsed by Arrow's CSV reader. A file with any row of the
wrong width, a header over several lines, quotes that may not pair up (an odd
number of them, or a quoted value followed by more text), a last value holding a
line break, or anything else Arrow cannot parse (a field larger than its
block in the first rows) is read by Python's ``csv`` module in strict mode
(several times slower, fields up to :data:`FIELD_CHARS` characters), which
knows each row's lines and raw text. Only a file with nothing but line breaks
after its header is a table with no row.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipelines.contract import TABLES, ContractError, all_columns, required_columns
from pipelines.io.normalise import MALFORMED_DETAIL, RAW_LINE, drop_unnamed, normalise_header

log = logging.getLogger(__name__)

SUFFIXES = (".parquet", ".csv")
COMPRESSED = (".gz", ".gzip", ".tgz", ".zip", ".bz2", ".xz", ".zst", ".lz4", ".7z", ".rar")
# pandas stores an unnamed index as a column of this name: row order, not data; a named index is read as a column
# (pandas metadata is ignored when converting, so that no column is turned back into an index)
_PANDAS_INDEX = re.compile(r"^__index_level_\d+__$")
BLOCK_BYTES = 1 << 22
FIELD_CHARS = (
    1 << 26
)  # the longest field the row-by-row reader accepts (64 Mi characters; Arrow's block size is no limit there)
# Encodings (as codecs names them) in which every byte is a character, so that real text in them is almost never valid
# UTF-8.
_SINGLE_BYTE = re.compile(r"^(iso8859-\d+|cp125\d)$")
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_NOT_C1 = bytes(b for b in range(256) if not 0x80 <= b <= 0x9F)
_CP1252_UNDEFINED = frozenset(b"\x81\x8d\x8f\x90\x9d")
# A quoted field closed before its end (``"gold 12" screen``), which Arrow would read silently as ``gold 12 screen``.
# A quote inside an unquoted field (``O"Brien``, Excel's ``="00123"``) is read alike by Arrow and by the csv module.
_STRAY_QUOTE = r'(?:\A|[,\r\n])"(?:[^"]|"")*"[^,\r\n"]'
# The complete fields at the start of a record, up to a quoted field that is never closed.
_CLOSED_FIELDS = re.compile(r'(?:(?:"(?:[^"]++|"")*+"|[^",\r\n][^,\r\n]*+)?+,)*+')
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# A word with a UTF-8 multi-byte character (two to four bytes of the right shape), e.g. b"Z\xc3\xbcrich".
_UTF8_WORD = re.compile(
    rb"[A-Za-z]*(?:[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3})[A-Za-z]*"
)


@dataclass(frozen=True)
class DatasetFiles:
    """The contract tables found in a folder, notes about names read loosely, and the files ignored."""

    tables: dict[str, Path]
    notes: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()


def no_dataset_folder(folder: Path | str) -> ContractError:
    """The error for a dataset path that is not a folder (every engine's, local or on a cluster)."""
    return ContractError(f"dataset folder {folder} does not exist or is not a folder")


def refuse_several(folder: Path | str, name: str, files: list[str]) -> None:
    """Refuse a table that more than one file of ``folder`` holds (every engine's rule, local or on a cluster).

    Args:
        folder: the dataset folder.
        name: the contract table.
        files: the names of the files in ``folder`` that hold it.
    """
    if len(files) > 1:
        raise ContractError(f"{folder}: {', '.join(files)} are all the table '{name}'; keep one")


def find_tables(folder: Path) -> DatasetFiles:
    """The file of each contract table in ``folder`` (see the module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise no_dataset_folder(folder)
    exact, loose, others, hidden = {}, {}, [], []
    for path in sorted(folder.iterdir()):
        name, suffix = _split_name(path)
        if path.name.startswith((".", "_")):
            hidden.append(
                path
            )  # never a table (macOS' ._customers.csv, Spark's _SUCCESS), and never refused as a near name
        elif suffix.lower() in COMPRESSED:
            _refuse_compressed(path)
            others.append(path)
        elif suffix in SUFFIXES and name in TABLES:
            exact.setdefault(name, []).append(path)
        elif suffix.lower() in SUFFIXES and name.casefold() in TABLES:
            loose.setdefault(name.casefold(), []).append(path)
        else:
            others.append(path)
    tables, notes = _pick_tables(folder, exact, loose)
    ignored = sorted([*_not_near(others, set(TABLES) - set(tables)), *(p.name for p in hidden)])
    if ignored:
        never = "; names starting with '.' or '_' are never read as tables" if hidden else ""
        notes.append(f"{folder}: ignored file(s) that are not contract tables: {', '.join(ignored)}{never}")
    for note in notes:
        log.warning("%s", note)
    return DatasetFiles(tables, tuple(notes), tuple(ignored))


def _pick_tables(folder: Path, exact: dict, loose: dict) -> tuple[dict[str, Path], list[str]]:
    tables: dict[str, Path] = {}
    notes: list[str] = []
    for name in TABLES:
        found = exact.get(name, []) + loose.get(name, [])
        refuse_several(folder, name, [p.name for p in found])
        if not found:
            continue
        tables[name] = found[0]
        if found[0].is_dir() and found[0].suffix.lower() != ".parquet":
            raise ContractError(
                f"{found[0]} is a folder, not a CSV file: only a parquet table may be a folder of parts "
                f"({name}.parquet/); write the table as one file {name}.csv"
            )
        if name not in exact:
            notes.append(f"{found[0]}: read as the table '{name}' (the file name differs in case)")
    return tables, notes


def _not_near(others: list[Path], missing: set[str]) -> list[str]:
    """The names of ``others``, refusing any that is probably meant as a missing table."""
    for path in others:
        name, suffix = _split_name(path)
        near = _near_table(name, missing)
        if near and (suffix.lower() in SUFFIXES or name.casefold() == near):
            raise ContractError(
                f"{path}: not a contract table name, but close to the missing table '{near}': "
                f"rename it {near}.csv or {near}.parquet (the contract reads CSV or parquet), "
                "or move it out of the folder"
            )
    return [p.name for p in others]


def _refuse_compressed(path: Path) -> None:
    """A compressed file whose name without the compression suffix is a table's (``interactions.csv.gz``) is refused."""
    inner = Path(path.stem)
    name = inner.stem.casefold() if inner.suffix.lower() in (*SUFFIXES, ".tar") else inner.name.casefold()
    if name not in TABLES:
        return
    target = f"{name}{inner.suffix.lower()}" if inner.suffix.lower() in SUFFIXES else f"{name}.csv or {name}.parquet"
    raise ContractError(
        f"{path}: compressed tables are not read; decompress it to {target} (or move it out of the folder)"
    )


def _split_name(path: Path) -> tuple[str, str]:
    return path.stem, path.suffix


def _near_table(name: str, missing: set[str]) -> str | None:
    """A missing table ``name`` is probably meant as: equal after case-folding, or one or two letters off."""
    folded = name.casefold().replace("-", "_").replace(" ", "_")
    for table in sorted(missing):
        if folded == table or (len(folded) >= 4 and difflib.SequenceMatcher(None, folded, table).ratio() >= 0.85):
            return table
    return None


class TableReader:
    """One table file, read whole or in chunks of rows, as described in the module docstring.

    ``notes`` says what was normalised in the header and which encoding was read where it is not the configured one
    (after the header is read, which the constructor does).
    """

    def __init__(self, path: Path, table: str, encoding: str = "utf-8") -> None:
        self.path, self.table = Path(path), table
        self.source = str(path)
        self._contract = all_columns(TABLES[table].model)
        self.csv = self.path.suffix.lower() == ".csv"
        self.encoding, encoding_notes = _file_encoding(self.path, encoding) if self.csv else (encoding, [])
        raw_names = self._csv_header() if self.csv else self._parquet_names()
        self._raw_names = list(raw_names)
        trailing = 0
        while self.csv and len(raw_names) > 1 and not raw_names[-1].strip():
            raw_names, trailing = raw_names[:-1], trailing + 1  # a trailing delimiter on the header line
        names, notes = normalise_header(raw_names, self._contract, self.source)
        self.names, self.notes = names, [*encoding_notes, *notes]
        if trailing:
            self.notes.append(
                f"{self.source}: {trailing} empty name(s) at the end of the header ignored (a trailing delimiter)"
            )
        if self.csv:
            self._refuse_comment_line()

    def _parquet_names(self) -> list[str]:
        try:
            self._parts = parquet_parts(self.path)
            # one schema for every part (a column all null in one part takes the others' type), in every read
            self._schema = pa.unify_schemas([_flat_schema(p) for p in self._parts], promote_options="default")
            return self._schema.names
        except ContractError:
            raise
        except Exception as err:  # the parser's own message says what it could not read
            raise ContractError(f"{self.path}: cannot be parsed as parquet: {err}") from err

    def read(self) -> pd.DataFrame:
        chunks = list(self.chunks(None))
        return chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)

    def chunks(self, rows: int | None) -> Iterator[pd.DataFrame]:
        """The table in frames of about ``rows`` rows (``None``: one frame)."""
        if not self.csv:
            yield from self._parquet(rows)
            return
        why = self._why_row_by_row()
        if why is None:
            yield from self._arrow(rows)
        else:
            log.warning("%s: %s; reading it row by row", self.source, why)
            yield from self._python(rows)

    # --- parquet ----------------------------------------------------------------------
    def _parquet(self, rows: int | None) -> Iterator[pd.DataFrame]:
        try:
            columns = self._raw_names
            if rows is None:
                tables = [
                    pq.read_table(part, columns=columns).select(columns).cast(self._schema) for part in self._parts
                ]
                whole = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
                yield self._finish(whole.to_pandas(ignore_metadata=True))
                return
            yielded = False
            for part in self._parts:
                for batch in pq.ParquetFile(part).iter_batches(batch_size=rows, columns=columns):
                    yield self._finish(batch.select(columns).cast(self._schema).to_pandas(ignore_metadata=True))
                    yielded = True
            if not yielded:  # no row: one empty frame with the table's columns
                yield self._finish(self._schema.empty_table().to_pandas(ignore_metadata=True))
        except ContractError:
            raise
        except Exception as err:  # the parser's own message says what it could not read
            raise ContractError(f"{self.path}: cannot be parsed as parquet: {err}") from err

    # --- CSV: the header ----------------------------------------------------------------
    def _text_encoding(self) -> str:
        return "utf-8-sig" if self.encoding.lower().replace("_", "-") in ("utf-8", "utf8") else self.encoding

    def _open(self):
        _allow_long_fields()
        return open(self.path, encoding=self._text_encoding(), newline="")

    def _csv_header(self) -> list[str]:
        """The header record; notes how many lines it spans and whether anything but line breaks follows it."""
        try:
            with self._open() as f:
                lines = _LineCapture(f)
                fields, _, self._header_lines, self._header_text = next(
                    _strict_records(self.path, lines), ([], 1, 1, "")
                )
                following = next((line for line in lines if line.strip("\r\n")), None)
                self._rows_follow = following is not None
                if not fields or not any(v.strip() for v in fields):
                    self._refuse_blank_header(
                        following is None or not (following.strip() or any(line.strip() for line in f))
                    )
        except UnicodeDecodeError as err:
            raise self._undecodable(err) from err
        if isinstance(fields, str):
            raise ContractError(
                f"{self.path}: the header cannot be parsed as csv: {_lines(1, self._header_lines)}: {fields}"
            )
        return fields

    def _refuse_blank_header(self, whole_file_blank: bool) -> None:
        example = ",".join(self._contract)
        if whole_file_blank:
            raise ContractError(f"{self.path}: empty file; expected a header line naming the columns, e.g. {example}")
        raise ContractError(
            f"{self.path}: line 1 is blank; the header naming the columns (e.g. {example}) must be the first line"
        )

    def _refuse_comment_line(self) -> None:
        """A first line such as ``# exported by ...``, or Excel's delimiter hint ``sep=;``, where the header should
        be."""
        first = _LINE_BREAK.split(self._header_text, 1)[0]
        excel = re.fullmatch(r"\s*sep=.?\s*", first)
        if not (excel or self._raw_names[0].strip().startswith("#")):
            return
        required = required_columns(TABLES[self.table].model)
        if all(c in self.names for c in required):
            return
        what = "is Excel's delimiter hint" if excel else "looks like a comment"
        raise ContractError(
            f"{self.path}: line 1 {what} ({first[:80]!r}), not the header: the header naming the columns "
            f"(at least {','.join(required)}) must be the first line; remove the line(s) above it"
        )

    # --- CSV: Arrow, for well-formed files ----------------------------------------------------
    def _arrow_reader(self, invalid=None) -> pacsv.CSVStreamingReader:
        width = len(self.names)
        return pacsv.open_csv(
            self.path,
            read_options=pacsv.ReadOptions(
                autogenerate_column_names=True,
                skip_rows=1,
                block_size=BLOCK_BYTES,
                use_threads=False,
                encoding=self._arrow_encoding(),
            ),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={f"f{i}": pa.string() for i in range(width)}, null_values=[""], strings_can_be_null=True
            ),
        )

    def _arrow_encoding(self) -> str:
        return "utf8" if self._text_encoding() == "utf-8-sig" else self.encoding

    def _why_row_by_row(self) -> str | None:
        """Why Arrow's reader cannot be trusted with this file (``None``: it can)."""
        if self._header_lines > 1:
            return "its header spans more than one line"
        try:
            if self._quotes_may_not_pair():
                return "its quotes may not all pair up (an odd number of them, or a quoted value followed by more text)"
        except UnicodeDecodeError as err:
            raise self._undecodable(err) from err
        return self._well_formed()

    def _quotes_may_not_pair(self) -> bool:
        """One pass over the file (fast: Arrow's regular expressions; bytes where the encoding writes ASCII as
        ASCII)."""
        as_bytes = _ascii_compatible(self.encoding)
        quote, tail, count = ('"', "", 0) if not as_bytes else (b'"', b"", 0)
        with open(self.path, "rb") if as_bytes else self._open() as f:
            while block := f.read(BLOCK_BYTES):
                found = block.count(quote)
                count += found
                if (found or quote in tail) and _matches(tail + block, _STRAY_QUOTE):
                    return True
                tail = block[-2:]
        return count % 2 == 1

    def _well_formed(self) -> str | None:
        """``None`` when every row has the header's width and Arrow reads the file, else why not (one fast pass)."""
        found: list[int] = []

        def invalid(row) -> str:
            found.append(row.actual_columns)
            return "error"

        last = None
        try:
            reader = self._arrow_reader(invalid)
            if reader.schema.names != [f"f{i}" for i in range(len(self.names))]:
                return "some rows have more or fewer fields than the header"  # the first data row
            for batch in reader:
                last = batch if batch.num_rows else last
        except pa.ArrowInvalid as err:
            if found:
                return "some rows have more or fewer fields than the header"
            if _no_rows(err) and not self._rows_follow:
                return None
            if _undecodable_in_arrow(err):
                raise self._undecodable(err) from err
            return f"Arrow's reader cannot parse it ({str(err).splitlines()[0]})"
        except UnicodeDecodeError as err:
            raise self._undecodable(err) from err
        if last is not None and _line_break_in(last.column(last.num_columns - 1)[-1].as_py()):
            return "its last value holds a line break (which a quote never closed would give)"
        return None

    def _arrow(self, rows: int | None) -> Iterator[pd.DataFrame]:
        batches: list[pa.RecordBatch] = []
        count, yielded = 0, False
        try:
            for batch in self._arrow_reader():
                batches.append(batch)
                count += batch.num_rows
                if rows is not None and count >= rows:
                    yield self._frame(pa.Table.from_batches(batches))
                    batches, count, yielded = [], 0, True
        except pa.ArrowInvalid as err:
            if not _no_rows(err):
                raise self._arrow_error(err) from err
        if batches or not yielded:  # at least one frame, so that an empty table keeps its columns
            schema = pa.schema([(f"f{i}", pa.string()) for i in range(len(self.names))])
            yield self._frame(pa.Table.from_batches(batches, schema=schema))

    def _frame(self, table: pa.Table) -> pd.DataFrame:
        frame = table.to_pandas()
        frame.columns = self.names
        return self._finish(frame)

    # --- CSV: Python's csv module, row by row ---------------------------------------------------
    def _python(self, rows: int | None) -> Iterator[pd.DataFrame]:
        batch = _Rows(len(self.names))
        yielded = False
        try:
            with self._open() as f:
                records = _strict_records(self.path, _LineCapture(f))
                next(records)  # the header
                for fields, first, last, text in records:
                    batch.add(fields, first, last, text)
                    if rows is not None and len(batch.records) >= rows:
                        yield self._rows_frame(batch)
                        batch, yielded = _Rows(len(self.names)), True
        except UnicodeDecodeError as err:
            raise self._undecodable(err) from err
        if batch.records or not yielded:
            yield self._rows_frame(batch)

    def _rows_frame(self, batch: _Rows) -> pd.DataFrame:
        frame = pd.DataFrame(batch.records, columns=range(len(self.names)), dtype="str")
        frame.columns = self.names
        frame[RAW_LINE] = pd.Series(batch.raw_lines, dtype="str")
        frame[MALFORMED_DETAIL] = pd.Series(batch.details, dtype="str")
        return self._finish(frame)

    def _finish(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not self.csv:
            frame.columns = self.names
        frame, notes = drop_unnamed(frame, self.source)
        for note in notes:
            if note not in self.notes:
                self.notes.append(note)
        return frame

    # --- errors -----------------------------------------------------------------------
    def _arrow_error(self, err: Exception) -> ContractError:
        if _undecodable_in_arrow(err):
            return self._undecodable(err)
        return ContractError(f"{self.path}: cannot be parsed as csv: {err}")

    def _undecodable(self, err: Exception) -> ContractError:
        """Name the first line that does not decode in the configured encoding."""
        codec = self._text_encoding()
        with open(self.path, "rb") as f:
            for number, line in enumerate(f, start=1):
                try:
                    line.decode(codec if number == 1 else codec.replace("-sig", ""))
                except UnicodeDecodeError as bad:
                    byte = line[bad.start]
                    return ContractError(
                        f"{self.path}: line {number} is not valid {self.encoding} (byte 0x{byte:02x} at position "
                        f"{bad.start + 1}); if the file uses another encoding, name it (input.encoding in the config, "
                        "or --encoding, e.g. latin-1 or cp1252)"
                    )
        return ContractError(f"{self.path}: cannot be decoded as {self.encoding}: {err}")


class _Rows:
    """Records read row by row: values, and for a malformed record its raw text and what is wrong."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.records: list[list[str | None]] = []
        self.raw_lines: list[str | None] = []
        self.details: list[str | None] = []

    def add(self, fields: list[str] | str, first: int, last: int, text: str) -> None:
        """``fields`` is the record's values, or (a string) why it cannot be read."""
        if isinstance(fields, list):
            if not fields:
                return  # a blank line
            if len(fields) > self.width and not any(v.strip() for v in fields[self.width :]):
                fields = fields[: self.width]  # trailing empty fields (a trailing comma)
            if len(fields) == self.width:
                self.records.append([v if v != "" else None for v in fields])
                self.raw_lines.append(None)
                self.details.append(None)
                return
            fields = f"{len(fields)} field(s) where the header has {self.width}"
        self.records.append([None] * self.width)
        self.raw_lines.append(text.rstrip("\r\n"))
        self.details.append(f"{_lines(first, last)}: {fields}")


def _strict_records(path: Path, lines: _LineCapture) -> Iterator[tuple[list[str] | str, int, int, str]]:
    """Each record of ``lines``: its fields (or, as a string, why they cannot be read), first and last line, raw text.

    A quoted field that is never closed, or a field over :data:`FIELD_CHARS`, is refused (a ContractError).
    """
    records = csv.reader(lines, strict=True)
    while True:
        try:
            fields = next(records)
        except StopIteration:
            return
        except csv.Error as err:
            first, last, text = lines.take()
            _refuse_unclosed(path, err, first, text)
            why = (
                "a quoted value is followed by other text before the delimiter"
                if "expected after" in str(err)
                else "cannot be parsed"
            )
            yield f"{why} ({err})", first, last, text
            continue
        yield (fields, *lines.take())


def _refuse_unclosed(path: Path, err: csv.Error, first: int, text: str) -> None:
    """The file ends inside a quoted field, or a field is longer than the reader accepts: refused, naming the line."""
    message = str(err)
    if "end of data" not in message and "field limit" not in message:
        return
    end = _CLOSED_FIELDS.match(text).end()
    line = first + len(_LINE_BREAK.findall(text, 0, end))
    if "end of data" in message:
        raise ContractError(
            f"{path}: line {line}: a quoted field opens here and is never closed (the file ends inside it, so every "
            "later line would be read as part of one value); close the quote, "
            'or double it ("") where it is part of the value'
        )
    opened = " (a quote opens there: is it never closed?)" if text[end : end + 1] == '"' else ""
    raise ContractError(f"{path}: line {line}: a field is longer than {FIELD_CHARS >> 20} Mi characters{opened}")


class _LineCapture:
    """The lines a ``csv.reader`` consumes, so that each record's raw text and line numbers are known."""

    def __init__(self, lines) -> None:
        self._lines = iter(lines)
        self._buffer: list[str] = []
        self._line = 0
        self._first = 1

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self._line += 1
        self._buffer.append(line)
        return line

    def take(self) -> tuple[int, int, str]:
        """The first and last line of the lines consumed since the last call, and their text."""
        text, first = "".join(self._buffer), self._first
        self._buffer, self._first = [], self._line + 1
        return first, max(first, self._line), text


def _lines(first: int, last: int) -> str:
    return f"line {first}" if first == last else f"lines {first}-{last}"


def _allow_long_fields() -> None:
    if csv.field_size_limit() < FIELD_CHARS:
        csv.field_size_limit(FIELD_CHARS)


def _matches(block: str | bytes, pattern: str) -> bool:
    return pc.any(
        pc.match_substring_regex(
            pa.array([block], pa.large_binary() if isinstance(block, bytes) else pa.large_string()), pattern
        )
    ).as_py()


def _ascii_compatible(encoding: str) -> bool:
    """Whether ``encoding`` writes quotes, commas and line breaks as those ASCII bytes, and no other character with
    them."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return False
    return name in ("utf-8", "utf-8-sig", "ascii") or bool(_SINGLE_BYTE.match(name))


def _line_break_in(value) -> bool:
    return isinstance(value, str) and ("\n" in value or "\r" in value)


def _no_rows(err: Exception) -> bool:
    """Arrow's error for a CSV file with a header and no row; also what it says when it cannot find where the first row
    ends (a field larger than its block, a quote never closed), so it is a table with no row only if nothing follows the
    header."""
    return "Empty CSV file" in str(err)


def _undecodable_in_arrow(err: Exception) -> bool:
    return "UTF8" in str(err) or "UTF-8" in str(err)


# --- encodings ------------------------------------------------------------------------------------
def _file_encoding(path: Path, configured: str) -> tuple[str, list[str]]:
    """The encoding to read ``path`` in, and a note where it is not ``configured`` (see the module docstring)."""
    try:
        codec = codecs.lookup(configured).name
    except LookupError:
        return configured, []
    with open(path, "rb") as f:
        head = f.read(4)
    for bom, name in _WIDE_BOMS:
        if head.startswith(bom) and not codec.startswith(name.lower()):
            raise ContractError(
                f"{path}: starts with a {name} byte-order mark, so it looks {name}, not {configured}: name its "
                f"encoding (input.encoding in the config, or --encoding {name.lower()})"
            )
    if not _SINGLE_BYTE.match(codec):
        return configured, []
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", [
            f"{path}: read as UTF-8, not the configured {configured}: it starts with a UTF-8 byte-order mark"
        ]
    utf8, c1, mixed = _utf8_and_c1(path)
    if utf8:
        return "utf-8", [
            f"{path}: read as UTF-8, not the configured {configured}: it is valid UTF-8 and holds non-ASCII text"
        ]
    if mixed:
        raise ContractError(
            f"{path}: mixes encodings: some text is UTF-8 ({mixed!r} ...) and some is not, so no one encoding reads "
            f"every line (as {configured}, the UTF-8 text would become mojibake such as 'ZÃ¼rich'); re-export the file "
            "in one encoding"
        )
    if codec == "iso8859-1" and c1 and not c1 & _CP1252_UNDEFINED:
        return "cp1252", [
            f"{path}: read as cp1252, not the configured {configured}: it holds bytes 0x80-0x9f, control codes in "
            "latin-1 but quotes, dashes and the euro sign in cp1252"
        ]
    return configured, []


def _utf8_and_c1(path: Path) -> tuple[bool, set[int], str]:
    """Whether the file is valid UTF-8 holding non-ASCII text, which bytes 0x80-0x9f it holds, and the first UTF-8
    multi-byte word found (``""`` for none: a single-byte text almost never holds one) (one pass)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8, ascii_only, c1, word = True, True, set(), ""
    with open(path, "rb") as f:
        while block := f.read(BLOCK_BYTES):
            ascii_only = ascii_only and block.isascii()
            c1.update(block.translate(None, _NOT_C1))
            if not word and not block.isascii() and (found := _UTF8_WORD.search(block)):
                word = found.group().decode("utf-8", errors="replace")
            if utf8:
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    utf8 = False
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    return utf8 and not ascii_only, c1, word


# --- parquet parts ------------------------------------------------------------------------------------
def parquet_parts(path: Path) -> list[Path]:
    """The parts of a parquet table (the file itself, or a folder's ``*.parquet`` files in name order), refusing by
    name a layout that engines would read differently or that would lose columns: a folder that also holds
    subfolders (nested or hive-partitioned, ``region=EU/``) or other files, parts whose columns or types differ
    (a null-typed column matches any type), and nested values (lists, structs, maps). Names starting with ``_`` or
    ``.`` (``_SUCCESS``, checksums) are not parts."""
    path = Path(path)
    if not path.is_dir():
        _flat_schema(path)
        return [path]
    parts, others = [], []
    for entry in sorted(path.iterdir()):
        if entry.name.startswith(("_", ".")):
            continue
        if entry.is_file() and entry.suffix == ".parquet":
            parts.append(entry)
        else:
            others.append(entry.name + ("/" if entry.is_dir() else ""))
    if others:
        raise ContractError(
            f"{path}: a parquet table folder may hold only its .parquet parts, but it also holds "
            f"{', '.join(others[:5])}{' ...' if len(others) > 5 else ''} (a nested or hive-partitioned folder, or "
            "another file): write the table as one folder of parts, or move the others out"
        )
    if not parts:
        raise ContractError(f"{path}: a folder with no parquet part")
    first = _flat_schema(parts[0])
    for part in parts[1:]:
        _same_columns(first, _flat_schema(part), parts[0], part)
    return parts


def _flat_schema(part: Path) -> pa.Schema:
    """A part's schema without pandas' index columns; nested values are refused by column."""
    try:
        schema = pq.read_schema(part)
    except Exception as err:  # the parser's own message says what it could not read
        raise ContractError(f"{part}: cannot be parsed as parquet: {err}") from err
    schema = pa.schema([f for f in schema if not _PANDAS_INDEX.match(f.name)])
    for f in schema:
        if pa.types.is_nested(f.type):
            raise ContractError(
                f"{part}: column '{f.name}' holds {f.type} values; the contract reads flat columns (text, numbers, "
                "dates, booleans): flatten it into columns, or drop it"
            )
    return schema


def _same_columns(first: pa.Schema, other: pa.Schema, first_part: Path, part: Path) -> None:
    if sorted(first.names) != sorted(other.names):
        raise ContractError(
            f"{part}: columns {other.names} differ from the first part's ({first_part.name}: {first.names}); "
            "every part of a table must have the same columns"
        )
    for a in first:
        b = other.field(a.name)
        if a.type != b.type and not (pa.types.is_null(a.type) or pa.types.is_null(b.type)):
            raise ContractError(
                f"{part}: column '{a.name}' is {b.type} where the first part ({first_part.name}) has {a.type}; "
                "every part of a table must give a column one type"
            )
