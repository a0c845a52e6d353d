"""Reading a dataset folder the way a careful analyst would, and refusing by name when in doubt.

* **Which files.** ``NAME.csv`` or ``NAME.parquet`` (a file, or a folder of
  parquet parts) for each contract table. A file whose name is a table's only
  after case-folding (``Feedback.csv``) is read, with a note; a name one or two
  letters off a missing table (``interaction.csv``), or a table's name with
  another format (``customers.xlsx``), is refused by name; every other file is
  listed in the report as ignored.
* **CSV.** UTF-8 with or without a byte-order mark unless another encoding is
  configured; an undecodable byte is refused naming the file and line. Every
  value is read as text (validation types it). Quoted fields may hold
  delimiters and newlines; blank lines are skipped. A row with more fields
  than the header whose extra fields are all empty (a trailing comma) is read
  without them; any other row whose width differs from the header's is kept
  aside whole, never shifted: its raw text goes to ``_raw_line`` and what is
  wrong to ``_malformed``, and validation quarantines it as ``malformed_row``.
* **Headers** are normalised by :func:`pipelines.normalise.normalise_header`.

Well-formed files are parsed by Arrow's CSV reader; a file with any row of
the wrong width is read again by Python's ``csv`` module (several times
slower), which knows each row's line and raw text.
"""

from __future__ import annotations

import csv
import re
import difflib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipelines.contract import TABLES, ContractError, all_columns
from pipelines.normalise import drop_unnamed, normalise_header

log = logging.getLogger(__name__)

RAW_LINE, MALFORMED_DETAIL = "_raw_line", "_malformed"
SUFFIXES = (".parquet", ".csv")
# pandas stores an unnamed index as a column of this name: row order, not data; a named index is read as a column
# (pandas metadata is ignored when converting, so that no column is turned back into an index)
_PANDAS_INDEX = re.compile(r"^__index_level_\d+__$")
BLOCK_BYTES = 1 << 22


@dataclass(frozen=True)
class DatasetFiles:
    """The contract tables found in a folder, notes about names read loosely, and the files ignored."""

    tables: dict[str, Path]
    notes: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()


def find_tables(folder: Path) -> DatasetFiles:
    """The file of each contract table in ``folder`` (see the module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ContractError(f"dataset folder {folder} does not exist or is not a folder")
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith((".", "_")))
    exact, loose, others = {}, {}, []
    for path in entries:
        name, suffix = _split_name(path)
        if suffix in SUFFIXES and name in TABLES:
            exact.setdefault(name, []).append(path)
        elif suffix.lower() in SUFFIXES and name.casefold() in TABLES:
            loose.setdefault(name.casefold(), []).append(path)
        else:
            others.append(path)
    tables: dict[str, Path] = {}
    notes: list[str] = []
    for name in TABLES:
        found = exact.get(name, []) + loose.get(name, [])
        if len(found) > 1:
            raise ContractError(f"{folder}: {', '.join(p.name for p in found)} are all the table '{name}'; keep one")
        if found:
            tables[name] = found[0]
            if name not in exact:
                notes.append(f"{found[0]}: read as the table '{name}' (the file name differs in case)")
    ignored = []
    for path in others:
        name, suffix = _split_name(path)
        near = _near_table(name, set(TABLES) - set(tables))
        if near and (suffix.lower() in SUFFIXES or name.casefold() == near):
            raise ContractError(
                f"{path}: not a contract table name, but close to the missing table '{near}': "
                f"rename it {near}.csv or {near}.parquet (the contract reads CSV or parquet), or move it out of the folder"
            )
        ignored.append(path.name)
    if ignored:
        notes.append(f"{folder}: ignored file(s) that are not contract tables: {', '.join(ignored)}")
    for note in notes:
        log.warning("%s", note)
    return DatasetFiles(tables, tuple(notes), tuple(ignored))


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

    ``notes`` says what was normalised in the header (after the header is read, which the constructor does).
    """

    def __init__(self, path: Path, table: str, encoding: str = "utf-8") -> None:
        self.path, self.table, self.encoding = Path(path), table, encoding
        self.source = str(path)
        self._contract = all_columns(TABLES[table].model)
        self.csv = self.path.suffix.lower() == ".csv"
        raw_names = self._csv_header() if self.csv else self._parquet_names()
        self._raw_names = list(raw_names)
        trailing = 0
        while self.csv and len(raw_names) > 1 and not raw_names[-1].strip():
            raw_names, trailing = raw_names[:-1], trailing + 1  # a trailing delimiter on the header line
        names, notes = normalise_header(raw_names, self._contract, self.source)
        self.names, self.notes = names, list(notes)
        if trailing:
            self.notes.append(f"{self.source}: {trailing} empty name(s) at the end of the header ignored (a trailing delimiter)")

    def _parquet_names(self) -> list[str]:
        try:
            return [n for n in pq.read_schema(_first_part(self.path)).names if not _PANDAS_INDEX.match(n)]
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
        elif self._well_formed():
            yield from self._arrow(rows)
        else:
            log.warning("%s: some rows have more or fewer fields than the header; reading it row by row", self.source)
            yield from self._python(rows)

    # --- parquet ----------------------------------------------------------------------
    def _parquet(self, rows: int | None) -> Iterator[pd.DataFrame]:
        try:
            columns = self._raw_names
            if rows is None:
                yield self._finish(pq.read_table(self.path, columns=columns).to_pandas(ignore_metadata=True))
                return
            yielded = False
            for part in _parts(self.path):
                for batch in pq.ParquetFile(part).iter_batches(batch_size=rows, columns=columns):
                    yield self._finish(batch.to_pandas(ignore_metadata=True))
                    yielded = True
            if not yielded:  # no row: one empty frame with the table's columns
                empty = pq.read_schema(_first_part(self.path)).empty_table().select(columns)
                yield self._finish(empty.to_pandas(ignore_metadata=True))
        except ContractError:
            raise
        except Exception as err:  # the parser's own message says what it could not read
            raise ContractError(f"{self.path}: cannot be parsed as parquet: {err}") from err

    # --- CSV --------------------------------------------------------------------------
    def _text_encoding(self) -> str:
        return "utf-8-sig" if self.encoding.lower().replace("_", "-") in ("utf-8", "utf8") else self.encoding

    def _csv_header(self) -> list[str]:
        try:
            with open(self.path, encoding=self._text_encoding(), newline="") as f:
                header = next(csv.reader(f), None)
        except UnicodeDecodeError as err:
            raise self._undecodable(err) from err
        if not header:
            raise ContractError(f"{self.path}: empty file; expected a header line naming the columns, e.g. {','.join(self._contract)}")
        return header

    def _arrow_reader(self, invalid=None) -> pacsv.CSVStreamingReader:
        width = len(self.names)
        return pacsv.open_csv(
            self.path,
            read_options=pacsv.ReadOptions(
                autogenerate_column_names=True, skip_rows=1, block_size=BLOCK_BYTES, use_threads=False, encoding=self._arrow_encoding()
            ),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={f"f{i}": pa.string() for i in range(width)}, null_values=[""], strings_can_be_null=True
            ),
        )

    def _arrow_encoding(self) -> str:
        return "utf8" if self._text_encoding() == "utf-8-sig" else self.encoding

    def _well_formed(self) -> bool:
        """Whether every row has the header's width (one fast pass that stops at the first row that does not)."""
        found: list[int] = []

        def invalid(row) -> str:
            found.append(row.actual_columns)
            return "error"

        try:
            reader = self._arrow_reader(invalid)
            if reader.schema.names != [f"f{i}" for i in range(len(self.names))]:
                return False  # the first data row has another width than the header
            for _ in reader:
                pass
        except pa.ArrowInvalid as err:
            if found:
                return False
            if _no_rows(err):
                return True
            raise self._arrow_error(err) from err
        except UnicodeDecodeError as err:
            raise self._undecodable(err) from err
        return True

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

    def _python(self, rows: int | None) -> Iterator[pd.DataFrame]:
        width = len(self.names)
        records: list[list[str | None]] = []
        raw_lines: list[str | None] = []
        details: list[str | None] = []
        yielded = False
        try:
            with open(self.path, encoding=self._text_encoding(), newline="") as f:
                lines = _LineCapture(f)
                reader = csv.reader(lines)
                next(reader)
                lines.take()
                for fields in reader:
                    first_line, text = lines.take()
                    if not fields:
                        continue  # a blank line
                    if len(fields) > width and not any(v.strip() for v in fields[width:]):
                        fields = fields[:width]  # trailing empty fields (a trailing comma)
                    if len(fields) == width:
                        records.append([v if v != "" else None for v in fields])
                        raw_lines.append(None)
                        details.append(None)
                    else:
                        records.append([None] * width)
                        raw_lines.append(text.rstrip("\r\n"))
                        details.append(f"line {first_line}: {len(fields)} field(s) where the header has {width}")
                    if rows is not None and len(records) >= rows:
                        yield self._rows_frame(records, raw_lines, details)
                        records, raw_lines, details, yielded = [], [], [], True
        except UnicodeDecodeError as err:
            raise self._undecodable(err) from err
        except csv.Error as err:
            raise ContractError(f"{self.path}: cannot be parsed as csv: {err}") from err
        if records or not yielded:
            yield self._rows_frame(records, raw_lines, details)

    def _rows_frame(self, records, raw_lines, details) -> pd.DataFrame:
        frame = pd.DataFrame(records, columns=range(len(self.names)), dtype="str")
        frame.columns = self.names
        frame[RAW_LINE] = pd.Series(raw_lines, dtype="str")
        frame[MALFORMED_DETAIL] = pd.Series(details, dtype="str")
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
        if "UTF8" in str(err) or "UTF-8" in str(err):
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
                        f"{self.path}: line {number} is not valid {self.encoding} (byte 0x{byte:02x} at position {bad.start + 1}); "
                        "if the file uses another encoding, name it (input.encoding in the config, or --encoding, e.g. latin-1 or cp1252)"
                    )
        return ContractError(f"{self.path}: cannot be decoded as {self.encoding}: {err}")


class _LineCapture:
    """The lines a ``csv.reader`` consumes, so that each record's raw text and first line number are known."""

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

    def take(self) -> tuple[int, str]:
        text, first = "".join(self._buffer), self._first
        self._buffer, self._first = [], self._line + 1
        return first, text


def _no_rows(err: Exception) -> bool:
    """Arrow's error for a CSV file with a header and no row (which is a table with no row, not an error)."""
    return "Empty CSV file" in str(err)


def _parts(path: Path) -> list[Path]:
    if not path.is_dir():
        return [path]
    return [p for p in sorted(path.glob("*.parquet")) if not p.name.startswith(("_", "."))]


def _first_part(path: Path) -> Path:
    parts = _parts(Path(path))
    if not parts:
        raise ContractError(f"{path}: a folder with no parquet part")
    return parts[0]
