"""Reading and writing at the edges: dataset folders, validated output, atomic writes."""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.build import INTERACTION_COLUMNS, EventBatches, Tables
from pipelines.attributes import check_overrides
from pipelines.contract import (
    TABLES,
    ContractError,
    ValidationResult,
    all_columns,
    check_table,
    check_validated,
    require_tables,
    validate_dataset,
)
from pipelines.errors import UserError
from pipelines.io.reading import TableReader, find_tables, parquet_parts

log = logging.getLogger(__name__)

BUCKETS_FILE = "_buckets.json"  # in each table folder the partitioned engine writes (readers skip "_" files)
BATCH_ROWS = 500_000
VALIDATED_MARKER = "report.json"  # the report every complete validate output holds
VALIDATED_TABLES = "tables"  # the folder of kept tables beside it
REPORT_TEXT = "report.txt"  # the report for people


def dataset_files(folder: Path) -> dict[str, Path]:
    """The file of each contract table present in ``folder`` (see :func:`pipelines.io.reading.find_tables`)."""
    return find_tables(folder).tables


@dataclass(frozen=True)
class RawDataset:
    """A dataset folder's tables as read (text for CSV), each table's source file, and notes about the reading."""

    tables: dict[str, pd.DataFrame]
    sources: dict[str, str]
    notes: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    # per table, the naive datetime columns with a time of day somewhere (decided on the whole table when it is split)
    timed_columns: dict[str, frozenset[str]] = field(default_factory=dict)


def read_dataset(folder: Path, encoding: str = "utf-8") -> RawDataset:
    """Read every contract table present in ``folder`` (see :mod:`pipelines.io.reading`).

    CSV columns are read as text so that validation sees, and quarantine keeps,
    the original values.
    """
    found = find_tables(folder)
    raw, sources, notes = {}, {}, list(found.notes)
    for name, path in found.tables.items():
        reader = TableReader(path, name, encoding)
        raw[name], sources[name] = reader.read(), str(path)
        notes.extend(reader.notes)
    return RawDataset(raw, sources, tuple(notes), found.ignored)


def check_attribute_overrides(
    data: Path | str, forced: dict[str, str] | None, where: str, encoding: str = "utf-8"
) -> None:
    """Types given by the user name attribute columns of the dataset's customers table (raw or validated, a local
    folder; a cluster path is checked by Spark's own reading); see :func:`pipelines.attributes.check_overrides`."""
    text = str(data)
    if not forced or ("://" in text and not text.startswith("file://")):
        return
    data = Path(text.removeprefix("file://"))
    if is_validated_output(data):
        path = parquet_parts(data / VALIDATED_TABLES / "customers.parquet")[0]
        columns = pq.read_schema(path).names
    else:
        path = find_tables(data).tables.get("customers") if data.is_dir() else None
        if path is None:
            return  # validation names the missing folder or table
        columns = TableReader(path, "customers", encoding).names
    check_overrides(forced, columns, tuple(all_columns(TABLES["customers"].model)), str(path), where)


def is_validated_output(
    folder: Path | str,
    is_file: Callable[[str], bool] | None = None,
    is_dir: Callable[[str], bool] | None = None,
) -> bool:
    """Whether ``folder`` is what ``churn validate`` writes (``tables/`` and ``report.json``), not a raw dataset.

    Args:
        folder: a local folder, or any path the given ``is_file`` and ``is_dir`` answer for.
        is_file, is_dir: whether a path is a file or a folder; default: on the local file system. The Spark engine
            passes its Hadoop file system's answers, so that one rule decides on cluster paths too.
    """
    is_file = is_file or (lambda path: Path(path).is_file())
    is_dir = is_dir or (lambda path: Path(path).is_dir())
    root = str(folder).rstrip("/")
    return is_file(f"{root}/{VALIDATED_MARKER}") and is_dir(f"{root}/{VALIDATED_TABLES}")


def validated_report(
    folder: Path, end_date: pd.Timestamp | None, attribute_types: dict[str, str] | None = None
) -> dict:
    """``report.json`` of a validated folder; its end date and customer attribute types must be the ones this run
    asks for (when it asks)."""
    report = json.loads((Path(folder) / VALIDATED_MARKER).read_text())
    found = report.get("attribute_types", {})
    differ = {
        col: (found.get(col, "absent"), kind) for col, kind in (attribute_types or {}).items() if found.get(col) != kind
    }
    if differ:
        detail = "; ".join(f"'{col}' is {was} there, {kind} here" for col, (was, kind) in differ.items())
        raise ContractError(
            f"{folder} was validated with other customer attribute types than this run needs ({detail}): "
            "validate the raw dataset again with these types (churn validate --attribute COLUMN=TYPE), or pass the raw "
            "dataset folder"
        )
    validated_end = pd.Timestamp(report["reference_end"])
    if end_date is not None and pd.Timestamp(end_date) != validated_end:
        raise ContractError(
            f"{folder} was validated with end date {validated_end.date()}, but this run asks for "
            f"{pd.Timestamp(end_date).date()}: run 'churn validate --end-date {pd.Timestamp(end_date).date()}' again, "
            f"or leave out --end-date to use {validated_end.date()}"
        )
    return report


def read_validated(
    folder: Path, end_date: pd.Timestamp | None = None, attribute_types: dict[str, str] | None = None
) -> ValidationResult:
    """The tables and accounting that ``churn validate`` wrote to ``folder``, type-checked against the contract.

    Row-level validation is not repeated: a scheduled job validates once and
    then snapshots or scores from the validated folder.
    """
    report = validated_report(folder, end_date, attribute_types)
    tables, sources = {}, {}
    for name, path in dataset_files(Path(folder) / VALIDATED_TABLES).items():
        if path.suffix != ".parquet":
            raise ContractError(
                f"{path}: validated tables are parquet; this folder was not written by 'churn validate'"
            )
        tables[name], sources[name] = pd.read_parquet(path), str(path)
    check_validated(tables, sources)
    return ValidationResult.from_dict(report, tables)


def feature_tables(files: dict[str, Path], check: bool = False) -> Tables:
    """The feature stage's input from parquet tables (a file or a folder of parts each).

    Interactions stay on disk and are streamed in batches of the columns the
    features use (:class:`features.build.EventBatches`); the other tables,
    one row per customer, survey answer or action, are read as frames.
    ``check`` type-checks every table, and every batch of interactions,
    against the contract: for tables an earlier ``churn validate`` wrote.
    """
    sources = {name: str(path) for name, path in files.items()}
    for path in files.values():
        if Path(path).suffix != ".parquet":
            raise ContractError(
                f"{path}: the feature stage reads parquet tables; validate the dataset first (churn validate)"
            )
    if check:
        require_tables(files, sources)
    frames = {}
    for name, path in files.items():
        if name != "interactions":
            frames[name] = pd.read_parquet(path)
            if check:
                check_table(name, frames[name], sources[name])
    tables = tables_from(frames)
    if "interactions" not in files:
        return tables
    parts = parquet_parts(files["interactions"])
    present = pq.read_schema(parts[0]).names if parts else []
    columns = [c for c in INTERACTION_COLUMNS if c in present]

    # Text columns arrive dictionary-encoded (categoricals): ids and codes are then looked up once per distinct value.
    text = [c for c in ("customer_id", "channel", "type") if c in columns]

    def batches() -> Iterator[pd.DataFrame]:
        for part in parts:
            for batch in pq.ParquetFile(part, read_dictionary=text).iter_batches(
                batch_size=BATCH_ROWS, columns=columns
            ):
                frame = batch.to_pandas()
                if check:
                    check_table("interactions", frame, str(part))
                yield frame

    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
    return replace(tables, interactions=EventBatches(rows, batches))


def bucket_layout(tables: Path) -> int | None:
    """The number of customer buckets when every table under ``tables`` is a folder of one part per bucket,
    as the partitioned engine writes them (``BUCKETS_FILE`` in each); ``None`` for any other layout."""
    counts = set()
    for path in dataset_files(Path(tables)).values():
        marker = path / BUCKETS_FILE
        if not marker.is_file():
            return None
        n = int(json.loads(marker.read_text())["buckets"])
        if sorted(p.name for p in path.glob("part-*.parquet")) != [f"part-{b:05d}.parquet" for b in range(n)]:
            return None
        counts.add(n)
    return counts.pop() if len(counts) == 1 else None


@contextmanager
def atomic_file(path: Path):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    Readers see the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextmanager
def atomic_folder(path: Path, marker: str) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``path`` to build an output folder in; on success it takes ``path``'s place.

    So an output folder holds exactly one complete run, the earlier one or the
    new one, even when the process is killed midway: a killed run leaves only
    its hidden sibling ``.NAME.partial-PID-XXXX``, which the next run into the
    same folder removes (once that process is gone). On Linux the two folders
    are swapped in one step (``renameat2`` with ``RENAME_EXCHANGE``, through
    ctypes since Python has no binding); elsewhere the old folder is renamed
    aside first, so for an instant ``path`` is absent, never half written.

    ``marker`` is a file every complete run of this output holds (``report.json``
    for validate): an existing non-empty folder without it is not an earlier
    run's output, and is refused rather than replaced.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and (not path.is_dir() or (any(path.iterdir()) and not (path / marker).exists())):
        raise UserError(
            f"{path} exists and is not the output of an earlier run (it has no {marker}); "
            "outputs replace the whole folder, so name a new or empty folder"
        )
    held = _input_tables_in(path)
    if held:
        raise UserError(
            f"{path} holds input tables ({', '.join(held)}): an output replaces the whole folder, "
            "so it would delete them; name another output folder"
        )
    _remove_stale_partials(path)
    tmp = path.parent / f".{path.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        yield tmp
        _swap_into_place(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # after a swap, the earlier run


def _input_tables_in(path: Path) -> list[str]:
    """The contract table files at the top of ``path`` (a dataset folder, never an output to replace)."""
    if not path.is_dir():
        return []
    names = {f"{t}{s}" for t in TABLES for s in (".csv", ".parquet")}
    return sorted(p.name for p in path.iterdir() if p.name.casefold() in names)


def check_output_apart(out: Path, data: Path) -> None:
    """Refuse an output folder that is the input folder or holds it: replacing it would delete the input."""
    out_abs, data_abs = Path(out).resolve(), Path(data).resolve()
    if out_abs == data_abs or out_abs in data_abs.parents:
        raise UserError(
            f"--out {out} is the dataset folder {data} or a folder above it: an output replaces the whole folder, "
            "so it would delete the input; name another output folder"
        )


def _swap_into_place(new: Path, path: Path) -> None:
    if not path.exists():
        os.rename(new, path)
        return
    if _exchange(new, path):
        return
    aside = path.parent / f".{path.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
    os.rename(path, aside)
    os.rename(new, path)
    shutil.rmtree(aside, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where that is not available."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False  # the file system cannot exchange: rename aside instead
    raise OSError(code, os.strerror(code), str(b))


def _remove_stale_partials(path: Path) -> None:
    """Remove what runs into ``path`` that were killed left behind (their process is gone)."""
    for stale in path.parent.glob(f".{path.name}.partial-*"):
        pid = stale.name.rsplit("-", 2)[-2]
        if pid.isdigit() and not _alive(int(pid)):
            log.info("removing %s, left by a run that did not finish", stale)
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    with atomic_file(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_file(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_text(text: str, path: Path) -> None:
    with atomic_file(path) as tmp:
        Path(tmp).write_text(text)


def write_validation(result: ValidationResult, out: Path) -> None:
    """Validated tables under ``OUT/tables``, quarantine under ``OUT/quarantine``, reports beside them.

    The folder is replaced as a whole (:func:`atomic_folder`): nothing of an earlier run stays beside the new one.
    """
    with atomic_folder(Path(out), VALIDATED_MARKER) as work:
        for name, frame in result.tables.items():
            write_parquet(frame, work / VALIDATED_TABLES / f"{name}.parquet")
        for name, frame in result.quarantine.items():
            write_textual_parquet(frame, work / "quarantine" / f"{name}.parquet")
        write_report(result, work)


def read_quarantine(folder: Path) -> dict[str, pd.DataFrame]:
    """The quarantined rows of a validated folder, by table (a file, or a folder of parts as partitions and Spark
    write them); tables with none are left out."""
    out = {}
    for path in sorted((Path(folder) / "quarantine").glob("*.parquet")):
        frame = pd.read_parquet(path)
        if len(frame):
            out[path.stem] = frame
    return out


def report_files(result: ValidationResult) -> dict[str, str]:
    """The validation report's files and their text: ``report.json`` (read back by :func:`validated_report`) and
    ``report.txt``; every engine writes these."""
    return {
        VALIDATED_MARKER: json.dumps(result.to_dict(), indent=2) + "\n",
        REPORT_TEXT: result.to_text() + "\n",
    }


def write_report(result: ValidationResult, out: Path) -> None:
    """The validation accounting as ``report.json`` and ``report.txt`` in the local folder ``out``."""
    for name, text in report_files(result).items():
        write_text(text, Path(out) / name)


def write_textual_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Quarantined rows: original values, as text where a column mixes types."""
    write_parquet(_textual(frame), path)


def _textual(frame: pd.DataFrame) -> pd.DataFrame:
    """Quarantined originals can mix types in one column; keep them as text so they always write."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = out[col].map(lambda v: None if v is None or (isinstance(v, float) and pd.isna(v)) else str(v))
    return out


def tables_from(result: ValidationResult | dict[str, pd.DataFrame]) -> Tables:
    """The validated tables as the feature stage's input, with empty frames for absent tables."""
    frames = result.tables if isinstance(result, ValidationResult) else result

    def table(name: str) -> pd.DataFrame:
        if name in frames:
            return frames[name]
        return pd.DataFrame({c: pd.Series([], dtype=_empty_dtype(name, c)) for c in all_columns(TABLES[name].model)})

    return Tables(**{name: table(name) for name in TABLES})


def _empty_dtype(table: str, column: str) -> str:
    spec = TABLES[table]
    if column in spec.dates:
        return "datetime64[us]"
    if column in spec.numbers or column in spec.integers:
        return "float64"
    if column in spec.booleans:
        return "boolean"
    return "str"


class ParquetAppender:
    """Append frames with one schema to a parquet file, for chunked generation."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._writer: pq.ParquetWriter | None = None

    def append(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.path, table.schema)
        self._writer.write_table(table.cast(self._writer.schema))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def load_validated(
    data: Path,
    end_date: pd.Timestamp | None = None,
    attribute_types: dict[str, str] | None = None,
    encoding: str = "utf-8",
    timezone: str = "UTC",
) -> ValidationResult:
    """Read a dataset folder and validate it (the same contract for training and scoring).

    A folder that ``churn validate`` wrote is read as it is, type-checked but
    not validated row by row again. ``attribute_types`` fix the types of
    customer attribute columns (from the config, or the model being scored);
    ``encoding`` is the CSV files' and ``timezone`` the zone of timestamps
    written without one (see :mod:`pipelines.io.reading`, :mod:`pipelines.io.normalise`).
    """
    if is_validated_output(data):
        return read_validated(data, end_date, attribute_types)
    result = validate_folder(Path(data), end_date, attribute_types, encoding, timezone)
    warn_quarantined(result)
    return result


def warn_quarantined(result: ValidationResult) -> None:
    """Say in the log how many rows of each table validation set aside, and why."""
    for name, report in result.report.items():
        if report.rows_quarantined:
            log.warning(
                "%s: %d of %d rows quarantined %s", name, report.rows_quarantined, report.rows_read, report.by_reason
            )


def validate_folder(
    data: Path,
    end_date: pd.Timestamp | None,
    attribute_types: dict[str, str] | None,
    encoding: str = "utf-8",
    timezone: str = "UTC",
) -> ValidationResult:
    """Read a raw dataset folder and validate it in memory, with what reading it noted carried into the report."""
    dataset = read_dataset(Path(data), encoding)
    return validate_dataset(
        dataset.tables,
        dataset.sources,
        end_date=end_date,
        attribute_types=attribute_types,
        timezone=timezone,
        notes=dataset.notes,
        ignored_files=dataset.ignored,
    )
