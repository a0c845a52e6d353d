"""Customer-partitioned processing: datasets larger than memory, one bucket of customers at a time.

Every contract rule and every feature reads one customer's rows only, except
three whole-dataset figures, which are combined across buckets:

- the dataset's latest validated date (labels are observed up to it),
- the peer-group revenue medians (``revenue_vs_plan_median``),
- whether a column has any readable value at all (a structural error).

So the input is split once, streaming, into ``buckets`` files per table by a
hash of ``customer_id``; each bucket is then validated and turned into features
with the very functions the in-memory path uses. Peak memory is set by the
largest bucket, not the dataset. The Spark engine runs the same per-bucket
functions inside ``applyInPandas``.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from features.build import Tables, build_features, peer_medians, prepare
from features.config import FeatureConfig
from features.transactions import purchase_calibration, whole_base_parameters
from pipelines.attributes import TypedAttributes, decide_types, with_attribute_types
from pipelines.config import InputConfig
from pipelines.contract import (
    TABLES,
    ContractError,
    TableReport,
    ValidationResult,
    all_columns,
    check_columns,
    require_raw_tables,
    run_today,
    validate_dataset,
)
from pipelines.errors import UserError
from pipelines.io.files import (
    BUCKETS_FILE,
    VALIDATED_MARKER,
    VALIDATED_TABLES,
    ParquetAppender,
    RawDataset,
    atomic_file,
    atomic_folder,
    bucket_layout,
    feature_tables,
    is_validated_output,
    parquet_parts,
    tables_from,
    validated_report,
    write_report,
    write_text,
    write_textual_parquet,
)
from pipelines.io.normalise import SOURCE_ROW, has_time_of_day, normalise_text
from pipelines.io.reading import TableReader, find_tables
from pipelines.stages.snapshot import SnapshotStats, snapshot, snapshot_stats

log = logging.getLogger(__name__)

CHUNK_ROWS = 1_000_000


def bucket_of(ids: pd.Series, buckets: int) -> np.ndarray:
    """Bucket of each customer id: a stable 64-bit hash modulo ``buckets`` (missing ids go to bucket 0).

    The id is hashed as validation will read it (:func:`pipelines.io.normalise.normalise_text`: trimmed, invisible
    characters removed, NFC, whole floats as integers), so that ``" c5"`` and ``"c5"``, or ``101.0`` and
    ``101``, land in one bucket and meet there as one customer.
    """
    text = normalise_text(ids, "customer_id")[0].fillna("").to_numpy(dtype=object)
    return (pd.util.hash_array(text) % np.uint64(buckets)).astype(np.int64)


def split_dataset(data: Path, work: Path, buckets: int, encoding: str = "utf-8") -> RawDataset:
    """Stream every table of ``data`` into ``work/NAME/part-BBBBB.parquet`` by customer bucket.

    Tables are read in chunks of rows exactly as :func:`pipelines.io.files.read_dataset` reads them whole.
    Each row keeps its position in the source file as ``_source_row``. Every
    bucket gets a file for every table present (possibly empty). Returns the
    source file of each table (for error messages), what reading noted, and the naive datetime columns that have a
    time of day somewhere (so that every bucket reads them as timestamps), without the frames.
    """
    found = find_tables(Path(data))
    sources: dict[str, str] = {}
    notes = list(found.notes)
    timed: dict[str, set[str]] = {}
    for name, path in found.tables.items():
        sources[name] = str(path)
        read_notes, read_timed = _split_table(path, name, work / name, buckets, encoding)
        notes.extend(read_notes)
        if read_timed is not None:
            timed[name] = read_timed
    require_raw_tables(sources)  # as validating the whole dataset refuses it, once every table has been read
    return RawDataset({}, sources, tuple(notes), found.ignored, {name: frozenset(cols) for name, cols in timed.items()})


def _split_table(path: Path, name: str, folder: Path, buckets: int, encoding: str) -> tuple[list[str], set[str] | None]:
    """Stream one table into ``folder/part-BBBBB.parquet`` by customer bucket, an empty part for a bucket without rows.

    Returns what reading noted and the naive datetime columns with a time of day in some chunk (``None`` when the
    reader gave no chunk).
    """
    writers: list[pq.ParquetWriter | None] = [None] * buckets
    schema: pa.Schema | None = None
    timed: set[str] | None = None
    offset = 0
    reader = TableReader(path, name, encoding)
    try:
        for chunk in reader.chunks(CHUNK_ROWS):
            check_columns(chunk, TABLES[name], str(path))
            timed = (timed or set()) | _timed_columns(chunk)
            chunk.insert(0, SOURCE_ROW, np.arange(offset, offset + len(chunk), dtype=np.int64))
            offset += len(chunk)
            schema = _write_by_bucket(chunk, folder, buckets, writers, schema)
    except UserError:
        raise  # already names the file
    except Exception as err:  # the parser's own message says what it could not read
        raise ContractError(f"{path}: cannot be parsed as {path.suffix[1:]}: {err}") from err
    finally:
        for w in writers:
            if w is not None:
                w.close()
    folder.mkdir(parents=True, exist_ok=True)
    for b in range(buckets):
        if writers[b] is None:
            pq.write_table(schema.empty_table(), folder / f"part-{b:05d}.parquet")
    return reader.notes, timed


def _timed_columns(chunk: pd.DataFrame) -> set[str]:
    """The naive datetime columns of a chunk with a time of day somewhere."""
    return {c for c in chunk.columns if pd.api.types.is_datetime64_any_dtype(chunk[c]) and has_time_of_day(chunk[c])}


def _write_by_bucket(
    chunk: pd.DataFrame, folder: Path, buckets: int, writers: list[pq.ParquetWriter | None], schema: pa.Schema | None
) -> pa.Schema:
    """Append a chunk's rows to the part of their bucket, in ``schema`` (the first chunk's when ``None``, returned);
    a bucket's writer is opened in ``writers`` by its first row (the caller closes them)."""
    bucket = bucket_of(chunk["customer_id"], buckets)
    order = np.argsort(bucket, kind="stable")
    table = pa.Table.from_pandas(chunk.iloc[order], preserve_index=False)
    schema = schema or table.schema
    table = table.cast(schema)
    start = 0
    for b, count in enumerate(np.bincount(bucket, minlength=buckets)):
        if count:
            if writers[b] is None:
                folder.mkdir(parents=True, exist_ok=True)
                writers[b] = pq.ParquetWriter(folder / f"part-{b:05d}.parquet", schema)
            writers[b].write_table(table.slice(start, count))
            start += count
    return schema


def read_bucket(work: Path, bucket: int) -> dict[str, pd.DataFrame]:
    """The tables of one bucket written by :func:`split_dataset` (or by :func:`validate_partitioned`)."""
    out = {}
    for name in TABLES:  # the contract's order, as the in-memory path reports it
        folder = next((f for f in (Path(work) / name, Path(work) / f"{name}.parquet") if f.is_dir()), None)
        if folder is not None:
            out[name] = pd.read_parquet(folder / f"part-{bucket:05d}.parquet")
    return out


def validate_bucket(
    raw: dict[str, pd.DataFrame],
    sources: dict[str, str],
    end_date: pd.Timestamp | None,
    today: pd.Timestamp | None = None,
    attribute_types: dict[str, str] | None = None,
    timezone: str = "UTC",
    timed_columns: dict[str, frozenset[str]] | None = None,
) -> ValidationResult:
    """Validate one bucket; ``_source_row`` (from the split) becomes the quarantine's row numbers.

    ``attribute_types`` must type every customer attribute (see :func:`whole_attribute_types`), and
    ``timed_columns`` name the datetime columns with a time of day in the whole table (:func:`split_dataset`), so
    that every bucket reads a column the same way.
    """
    rows = {name: frame[SOURCE_ROW].to_numpy() for name, frame in raw.items()}
    frames = {name: frame.drop(columns=SOURCE_ROW) for name, frame in raw.items()}
    return validate_dataset(
        frames,
        sources,
        end_date=end_date,
        today=today,
        source_rows=rows,
        defer_unreadable=True,
        attribute_types=attribute_types,
        timezone=timezone,
        timed_columns=timed_columns,
    )


def whole_attribute_types(customers: pd.DataFrame, forced: dict[str, str] | None) -> TypedAttributes:
    """Customer attribute types decided on the whole customers table (one row per customer), before any bucket
    (``.types`` for the buckets, ``.notes`` for the report)."""
    return decide_types(
        customers.drop(columns=[SOURCE_ROW], errors="ignore"), tuple(all_columns(TABLES["customers"].model)), forced
    )


def combine(results: list[ValidationResult]) -> ValidationResult:
    """The whole dataset's accounting from per-bucket results (tables and quarantine stay on disk)."""
    unreadable = {k: v for r in results for k, v in r.unreadable.items()}
    readable = set().union(*(r.readable for r in results))
    for key in sorted(set(unreadable) - readable):
        raise ContractError(unreadable[key])
    report: dict[str, TableReport] = {}
    for r in results:
        for name, t in r.report.items():
            acc = report.setdefault(name, TableReport(0, 0, 0, {}, {}))
            acc.rows_read += t.rows_read
            acc.rows_kept += t.rows_kept
            acc.rows_quarantined += t.rows_quarantined
            for reason, n in t.by_reason.items():
                acc.by_reason[reason] = acc.by_reason.get(reason, 0) + n
            for change, n in t.normalised.items():
                acc.normalised[change] = acc.normalised.get(change, 0) + n
    ends = [r.data_end for r in results if r.data_end is not None]
    first = results[0]
    return ValidationResult(
        {},
        {},
        report,
        max(ends) if ends else None,
        first.reference_end,
        end_given=first.end_given,
        attribute_types=first.attribute_types,
    )


def validate_partitioned(
    data: Path,
    out: Path,
    end_date: pd.Timestamp | None,
    buckets: int,
    today: pd.Timestamp | None = None,
    progress: bool = False,
    attribute_types: dict[str, str] | None = None,
    encoding: str = "utf-8",
    timezone: str = "UTC",
) -> ValidationResult:
    """Validate ``data`` bucket by bucket into ``OUT/tables/NAME.parquet/`` and ``OUT/quarantine/NAME.parquet/``.

    Each output is a folder of ``part-BBBBB.parquet`` files (as Spark writes
    them; ``read_dataset`` and pandas read it as one table). The report is the
    same as the in-memory path's; outputs replace the previous ones only when
    every bucket succeeded, as a whole (:func:`pipelines.io.files.atomic_folder`).
    """
    today = run_today(today)  # one clock for every bucket
    with atomic_folder(Path(out), VALIDATED_MARKER) as work:
        raw = work / ".raw"  # the input split by bucket; removed before the folder takes its place
        read = split_dataset(data, raw, buckets, encoding)
        sources = read.sources
        decided = whole_attribute_types(pd.read_parquet(raw / "customers"), attribute_types)
        types = decided.types
        results = []
        for b in tqdm(range(buckets), desc="validate", unit="bucket", disable=not progress):
            r = validate_bucket(read_bucket(raw, b), sources, end_date, today, types, timezone, read.timed_columns)
            for name, frame in r.tables.items():
                _write_kept_part(
                    frame, work / VALIDATED_TABLES / f"{name}.parquet" / f"part-{b:05d}.parquet", raw / name
                )
            for name, frame in r.quarantine.items():
                # Parts hold rows; a table with none gets one empty part (empty frames cannot carry the types).
                if len(frame) or (b == buckets - 1 and not (work / "quarantine" / f"{name}.parquet").exists()):
                    write_textual_parquet(frame, work / "quarantine" / f"{name}.parquet" / f"part-{b:05d}.parquet")
            results.append(_accounting_only(r))
        result = replace(
            combine(results), notes=(*read.notes, *decided.notes), ignored_files=read.ignored, timezone=timezone
        )
        for name in TABLES:  # snapshot and score read these buckets as they are (see for_each_bucket)
            if (work / VALIDATED_TABLES / f"{name}.parquet").is_dir():
                write_text(
                    json.dumps({"buckets": buckets, "key": "customer_id"}) + "\n",
                    work / VALIDATED_TABLES / f"{name}.parquet" / BUCKETS_FILE,
                )
        shutil.rmtree(raw)
        write_report(result, work)
    return result


def _write_kept_part(frame: pd.DataFrame, path: Path, raw: Path) -> None:
    """One bucket's kept rows. A column pandas cannot type without values (a carried extra column of dates, say, in
    a bucket with no row) takes its type from the input, so that every part of the table has one schema."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    untyped = [f.name for f in table.schema if pa.types.is_null(f.type)]
    if untyped:
        source = pq.read_schema(next(raw.glob("part-*.parquet")))
        for col in (c for c in untyped if c in source.names and not pa.types.is_null(source.field(c).type)):
            i = table.schema.get_field_index(col)
            table = table.set_column(i, col, pa.nulls(len(table), source.field(col).type))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def _accounting_only(r: ValidationResult) -> ValidationResult:
    """Drop a bucket's frames once written, so that memory holds one bucket at a time."""
    return replace(r, tables={}, quarantine={})


@contextmanager
def _workdir(beside: Path):
    beside.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=beside, prefix=".work-"))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def whole_base_medians(validated: Path, config: FeatureConfig) -> dict[str, pd.Series]:
    """Peer-group revenue medians of every validated customer (a few columns of the customers table)."""
    if not config.peer_groups:
        return {}
    schema = pq.read_schema(parquet_parts(Path(validated) / "customers.parquet")[0])
    cols = ["monthly_revenue", *[c for c in config.peer_groups if c in schema.names]]
    customers = pd.read_parquet(Path(validated) / "customers.parquet", columns=cols)
    return peer_medians(customers, config)


def whole_base_btyd(folders: dict[str, Path], buckets: int, config: FeatureConfig, as_of_dates, check: bool) -> dict:
    """BG/NBD parameters of the whole customer base for each as-of date: each bucket's purchase calibration, pooled,
    fitted once.

    A first pass over the buckets' interactions (streamed), so that every
    bucket scores with the parameters the in-memory run fits.
    """
    if not config.purchase_types or "interactions" not in folders:
        return {}
    dates = sorted({pd.Timestamp(d) for d in as_of_dates})
    calibrations: dict[pd.Timestamp, list] = {d: [] for d in dates}
    for b in range(buckets):
        prepared = prepare(
            feature_tables({name: folder / f"part-{b:05d}.parquet" for name, folder in folders.items()}, check), config
        )
        for d in dates:
            calibrations[d].append(purchase_calibration(prepared.interactions, len(prepared.customers), d, config))
    return whole_base_parameters(calibrations, config)


def for_each_bucket(
    data: Path,
    end_date: pd.Timestamp | None,
    buckets: int,
    config: FeatureConfig,
    build: Callable[[Tables, ValidationResult, dict[str, pd.Series], dict], None],
    work_root: Path,
    progress: bool = False,
    as_of_dates=(),
    reading: InputConfig = InputConfig(),
) -> tuple[ValidationResult, int]:
    """Validate ``data`` by bucket, then call ``build(bucket tables, whole-data result, medians, BG/NBD parameters)``
    for each bucket (the last two are whole-base figures; the parameters are fitted for each of ``as_of_dates``).

    The validated buckets live in a work folder under ``work_root``, removed at
    the end. When ``data`` is the output of ``churn validate --partitions N``,
    its N buckets are read as they are: no split and no second validation
    (each bucket is type-checked against the contract). Returns the
    accounting and the number of buckets used.
    """
    data = Path(data)
    attribute_types = dict(config.attribute_types or ())  # the model's (scoring) or the config's (snapshot)
    if is_validated_output(data):
        report = validated_report(data, end_date, attribute_types)
        found = bucket_layout(data / VALIDATED_TABLES)
        if found:
            if found != buckets:
                log.info("%s holds %d customer buckets; using them (not %d)", data, found, buckets)
            result = ValidationResult.from_dict(report)
            _build_buckets(data / VALIDATED_TABLES, found, result, config, build, progress, as_of_dates, check=True)
            return result, found
        # Validated as one table: its tables are a clean dataset to split.
        end_date, data = pd.Timestamp(report["reference_end"]), data / VALIDATED_TABLES
    with _workdir(Path(work_root)) as work:
        target = work / "validated"
        result = validate_partitioned(
            data,
            target,
            end_date,
            buckets,
            progress=progress,
            attribute_types=attribute_types,
            encoding=reading.encoding,
            timezone=reading.timezone,
        )
        _build_buckets(target / VALIDATED_TABLES, buckets, result, config, build, progress, as_of_dates)
    return result, buckets


def _build_buckets(
    tables: Path,
    buckets: int,
    result: ValidationResult,
    config: FeatureConfig,
    build,
    progress: bool,
    as_of_dates,
    check: bool = False,
) -> None:
    if result.observation_end is None:
        raise ContractError(
            "the dataset holds no dated rows after validation and no end date was given; nothing to build"
        )
    medians = whole_base_medians(tables, config)
    folders = {name: Path(tables) / f"{name}.parquet" for name in TABLES if (Path(tables) / f"{name}.parquet").is_dir()}
    # check: tables validated by an earlier run are type-checked at this boundary
    btyd = whole_base_btyd(folders, buckets, config, as_of_dates, check)
    for b in tqdm(range(buckets), desc="features", unit="bucket", disable=not progress):
        build(
            feature_tables({name: folder / f"part-{b:05d}.parquet" for name, folder in folders.items()}, check),
            result,
            medians,
            btyd,
        )


def features_partitioned(
    data: Path,
    as_of: pd.Timestamp,
    end_date: pd.Timestamp | None,
    buckets: int,
    config: FeatureConfig,
    work_root: Path,
    progress: bool = False,
    reading: InputConfig = InputConfig(),
) -> tuple[ValidationResult, pd.DataFrame, Tables]:
    """Features of every customer active at ``as_of``, built bucket by bucket, plus the small validated tables.

    Scoring needs one row per customer (not per event) in memory; the events
    themselves never are in full. The returned tables hold everything but
    interactions (which only the features read).
    """
    parts: list[pd.DataFrame] = []
    small: dict[str, list[pd.DataFrame]] = {}

    def build(tables: Tables, result: ValidationResult, medians: dict[str, pd.Series], btyd: dict) -> None:
        parts.append(
            build_features(prepare(tables, with_attribute_types(config, result.attribute_types), medians, btyd), as_of)
        )
        for name in ("customers", "feedback", "churn_events", "retention_actions"):
            small.setdefault(name, []).append(getattr(tables, name))

    result, _ = for_each_bucket(data, end_date, buckets, config, build, work_root, progress, [as_of], reading)
    features = pd.concat(parts, ignore_index=True)
    tables = tables_from({name: pd.concat(frames, ignore_index=True) for name, frames in small.items()})
    return result, features, tables


def snapshot_partitioned(
    data: Path,
    out: Path,
    as_of_dates: list[pd.Timestamp],
    horizon_days: int,
    end_date: pd.Timestamp | None,
    buckets: int,
    config: FeatureConfig,
    sampler=None,
    progress: bool = False,
    reading: InputConfig = InputConfig(),
) -> tuple[ValidationResult, dict]:
    """Write the stacked snapshot of every bucket to one parquet file, never holding more than a bucket."""
    counted = []  # each bucket's SnapshotStats
    with atomic_file(Path(out)) as tmp:
        appender = ParquetAppender(Path(tmp))

        def build(tables: Tables, result: ValidationResult, medians: dict[str, pd.Series], btyd: dict) -> None:
            typed = with_attribute_types(config, result.attribute_types)
            frame = snapshot(
                tables,
                as_of_dates,
                horizon_days,
                result.observation_end,
                typed,
                sampler=sampler,
                medians=medians,
                btyd_params=btyd,
            )
            counted.append(snapshot_stats(frame))
            appender.append(frame)

        try:
            result, used = for_each_bucket(
                data, end_date, buckets, config, build, Path(out).parent, progress, as_of_dates, reading
            )
        finally:
            appender.close()
    return result, sum(counted, SnapshotStats()).to_dict(used)
