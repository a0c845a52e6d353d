"""``--engine spark``: the same contract and feature code, run per customer bucket on Spark.

Nothing here re-implements a rule or a feature. A local CSV file is read by
the reader every engine uses (:class:`pipelines.io.reading.TableReader`: quotes,
row widths, encodings, headers) and handed to Spark as parquet; parquet files
and CSV files on a cluster path are read by Spark. Every table is then
tagged with its name and source row, unioned and grouped by a customer bucket
(:func:`pipelines.engines.partitioned.bucket_of`, as validation reads the id);
``applyInArrow`` then hands each bucket to the very functions the pandas engine
runs on one machine (:mod:`pipelines.engines.partitioned`). The few
whole-dataset figures (latest date, peer-group revenue medians, readable
columns) come back as small "meta" rows and are combined on the driver, as the
partitioned engine does. ``churn validate`` gets each bucket's kept
tables back from the same pass (typed as validation leaves them) and writes them with Spark.

Scoring uses ``mlflow.pyfunc.spark_udf`` with the registered alias; the one row
per customer then comes to the driver for ranking, the action list, reason
codes and the report.

Paths may be anything Spark and Hadoop read (``s3a://``, ``abfss://``,
``hdfs://``, local). The master comes from ``spark-submit`` / the environment,
or ``CHURN_SPARK_MASTER``, else ``local[2]``.
"""

from __future__ import annotations

import atexit
import csv
import logging
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import reduce
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark import SparkConf, StorageLevel
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

from features.build import LABEL, Tables, build_features, feature_columns, prepare
from features.config import FeatureConfig
from features.transactions import calibration, purchase_calibration, whole_base_parameters
from pipelines.attributes import with_attribute_types
from pipelines.contract import (
    TABLES,
    ContractError,
    TableReport,
    ValidationResult,
    all_columns,
    check_columns,
    reference_end_of,
    require_raw_tables,
    run_today,
    validate_dataset,
)
from pipelines.engines.partitioned import bucket_of, combine, validate_bucket, whole_attribute_types
from pipelines.errors import UserError
from pipelines.io.files import (
    VALIDATED_MARKER,
    VALIDATED_TABLES,
    atomic_folder,
    is_validated_output,
    report_files,
    tables_from,
)
from pipelines.io.normalise import SOURCE_ROW, HeaderError, normalise_header
from pipelines.io.reading import TableReader, find_tables, no_dataset_folder, refuse_several
from pipelines.stages.snapshot import SnapshotStats, snapshot, snapshot_stats

# Spark workers import this module (and with it pandera, through pipelines.engines) when they unpickle the bucket
# functions, before any code of ours runs there: pipelines.compat.skip_pyspark_pandas() cannot run first in a worker.
# pandera's probe of pyspark.pandas then fails under pandas 3.1 before that module patches anything (one FutureWarning
# on each worker's stderr); the driver's entry points (the CLI, the test session) skip it as they should.

log = logging.getLogger(__name__)

TABLE = "_table"
BUCKET = "_bucket"
DEFAULT_BUCKETS = 16
META_SCHEMA = "kind string, tbl string, col string, text string, number double, row long"
META_FIELDS = [
    ("kind", pa.string()),
    ("tbl", pa.string()),
    ("col", pa.string()),
    ("text", pa.string()),
    ("number", pa.float64()),
    ("row", pa.int64()),
]  # META_SCHEMA in Arrow
KEPT = "kept"  # the meta rows' kind for the kept (validated, typed) rows, their source row in ``row``
PANDAS_3_WARNING = "PySpark does not yet fully support pandas >= 3.0.0"
SMALL_TABLES = tuple(name for name in TABLES if name != "interactions")  # what scoring reads on the driver


def buckets_for(partitions: int) -> int:
    """``--partitions`` is the bucket count; the default of 1 means "choose" on Spark."""
    return partitions if partitions > 1 else DEFAULT_BUCKETS


def spark_session(buckets: int) -> SparkSession:
    """The active session, or a new one: local[2] unless spark-submit or CHURN_SPARK_MASTER says otherwise."""
    # pyspark warns on any pandas >= 3; the parts used here (sql, Arrow UDFs, spark_udf) work on 3.1 (stack notes).
    warnings.filterwarnings("ignore", message=PANDAS_3_WARNING, category=FutureWarning)
    builder = SparkSession.builder.appName("churn")
    if not SparkConf().contains("spark.master"):  # not under spark-submit or a managed service
        master = os.environ.get("CHURN_SPARK_MASTER", "local[2]")
        builder = builder.master(master)
        if master.startswith("local"):
            os.environ.setdefault(
                "PYSPARK_PYTHON", sys.executable
            )  # local workers use this environment, not the system Python
    spark = (
        builder.config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(buckets))
        # Instants as parquet INT64 microseconds (pandas reads them as datetime64[us, UTC]), not the legacy INT96.
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _fs(spark, path: str):
    jvm = spark.sparkContext._jvm
    p = jvm.org.apache.hadoop.fs.Path(path)
    return p.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), p


def _exists(spark, path: str) -> bool:
    fs, p = _fs(spark, path)
    return bool(fs.exists(p))


def _is_dir(spark, path: str) -> bool:
    """Whether ``path`` is a folder on its Hadoop file system."""
    fs, p = _fs(spark, path)
    return bool(fs.exists(p)) and bool(fs.getFileStatus(p).isDirectory())


def _is_file(spark, path: str) -> bool:
    """Whether ``path`` is a file on its Hadoop file system."""
    fs, p = _fs(spark, path)
    return bool(fs.exists(p)) and bool(fs.getFileStatus(p).isFile())


@contextmanager
def _output_folder(out, marker: str) -> Iterator[str]:
    """Where to write an output folder: a local one is built aside and replaced as a whole
    (:func:`pipelines.io.files.atomic_folder`); a cluster URI (``hdfs://``, ``s3a://``) is written in place by Spark."""
    text = str(out).rstrip("/")
    if "://" in text and not text.startswith("file://"):
        log.warning(
            "%s is written in place: a run killed midway leaves it incomplete (local folders are replaced whole)", text
        )
        yield text
        return
    with atomic_folder(Path(text.removeprefix("file://")), marker) as work:
        yield str(work)


def _write_text(spark, path: str, text: str) -> None:
    """A small text file on any Hadoop-compatible path (reports)."""
    fs, p = _fs(spark, path)
    stream = fs.create(p, True)
    try:
        stream.write(bytearray(text.encode()))
    finally:
        stream.close()


# --- reading -----------------------------------------------------------------------------
def read_tables(spark, data: str, noted: list | None = None) -> tuple[dict[str, DataFrame], dict[str, str]]:
    """Each contract table as a Spark DataFrame with ``_source_row`` (its row in the source), and its source path.

    A local folder's files are found as the other engines find them
    (:func:`pipelines.io.reading.find_tables`: loose names read with a note, near
    misses refused, other files listed); on a cluster URI only exact names are
    read. CSV headers are normalised as everywhere (trimmed, case-folded onto
    contract names, duplicates refused). ``noted``, when given, receives the
    notes and the ignored files (for the report).
    """
    data = str(data).rstrip("/")
    if not _is_dir(spark, data):
        raise no_dataset_folder(data)
    if is_validated_output(data, lambda p: _is_file(spark, p), lambda p: _is_dir(spark, p)):
        # the output of `churn validate`: Spark validates its tables again (same rows pass)
        data = f"{data}/{VALIDATED_TABLES}"
    frames, sources = {}, {}
    for name, path in _table_paths(spark, data, noted).items():
        df = _read_table(spark, name, path, noted)
        check_columns(pd.DataFrame(columns=[c for c in df.columns if c != SOURCE_ROW]), TABLES[name], path)
        frames[name], sources[name] = df, path
    require_raw_tables(frames)
    return frames, sources


def _read_table(spark, name: str, path: str, noted: list | None) -> DataFrame:
    """One table with ``_source_row``: parquet and CSV on a cluster path read by Spark, a local CSV file by the
    reader every engine uses."""
    try:
        if path.endswith(".parquet"):
            return _numbered_parquet(spark, path)
        if _local(path):
            return spark.read.parquet(_csv_as_parquet(path, name, noted))
        return _cluster_csv(spark, path, name, noted)
    except ContractError:
        raise
    except Exception as err:  # Spark's own message says what it could not read
        raise ContractError(f"{path}: cannot be read by Spark: {err}") from err


def _numbered_parquet(spark, path: str) -> DataFrame:
    """A parquet file or folder; ``_source_row`` is each row's index within its file, offset by the rows of the
    files before it (parts in name order)."""
    df = spark.read.parquet(path).select(
        "*", F.col("_metadata.file_path").alias("_file"), F.col("_metadata.row_index").alias("_row")
    )
    counts = df.groupBy("_file").count().toPandas().sort_values("_file")
    offsets = spark.createDataFrame(
        pd.DataFrame({"_file": counts["_file"], "_offset": counts["count"].cumsum() - counts["count"]}),
        "_file string, _offset long",
    )
    return (
        df.join(F.broadcast(offsets), "_file")
        .withColumn(SOURCE_ROW, F.col("_offset") + F.col("_row"))
        .drop("_file", "_row", "_offset")
    )


def _cluster_csv(spark, path: str, table: str, noted: list | None) -> DataFrame:
    """A CSV file on a cluster path, read by Spark with the header every engine reads (see :func:`_csv_names`);
    CSV carries no row index, so ``_source_row`` numbers the rows in file order."""
    text = spark.read.option("header", True).option("mode", "FAILFAST").csv(path)
    names = _csv_names(spark, path, table, len(text.columns), noted)
    df = text.rdd.zipWithIndex().map(lambda pair: (*pair[0], pair[1])).toDF([*names, SOURCE_ROW])
    return _drop_unnamed(df, path)


def _local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _csv_as_parquet(path: str, table: str, noted: list | None) -> str:
    """A local CSV file read by the one reader every engine uses (:class:`pipelines.io.reading.TableReader`: quotes,
    row widths, encodings, headers), written as parquet with ``_source_row`` for Spark to read; the parquet lives
    in a temporary folder removed when the process ends (Spark reads it lazily until then)."""
    reader = TableReader(Path(path.removeprefix("file://")), table)
    folder = Path(tempfile.mkdtemp(prefix=f"churn-spark-{table}-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    start = 0
    for i, chunk in enumerate(reader.chunks(500_000)):
        chunk.insert(len(chunk.columns), SOURCE_ROW, np.arange(start, start + len(chunk), dtype=np.int64))
        start += len(chunk)
        schema = pa.schema([*((c, pa.string()) for c in chunk.columns[:-1]), (SOURCE_ROW, pa.int64())])  # text, as read
        pq.write_table(
            pa.Table.from_pandas(chunk, schema=schema, preserve_index=False), folder / f"part-{i:05d}.parquet"
        )
    if noted is not None:
        noted.extend(reader.notes)
    return f"file://{folder}"


def _table_paths(spark, data: str, noted: list | None) -> dict[str, str]:
    if "://" not in data or data.startswith("file://"):
        found = find_tables(Path(data.removeprefix("file://")))
        if noted is not None:
            noted.append(found)
        return {name: str(path) for name, path in found.tables.items()}
    paths = {}
    for name in TABLES:
        found = [p for p in (f"{data}/{name}.parquet", f"{data}/{name}.csv") if _exists(spark, p)]
        refuse_several(data, name, [p.rsplit("/", 1)[1] for p in found])
        if found:
            paths[name] = found[0]
    return paths


def _csv_names(spark, path: str, table: str, width: int, noted: list | None) -> list[str]:
    """The header of a CSV file as every engine reads it (:func:`pipelines.io.normalise.normalise_header`);
    names left empty by a trailing delimiter become ``_unnamed_N`` (see :func:`_drop_unnamed`)."""
    first = spark.read.text(path).first()
    raw = next(csv.reader([first[0] if first else ""]), [])
    raw = (raw + [""] * width)[:width]
    named = len(raw)
    while named > 1 and not raw[named - 1].strip():
        named -= 1
    names, notes = normalise_header(raw[:named], all_columns(TABLES[table].model), path)
    if noted is not None:
        noted.extend(notes)
    return [*names, *(f"_unnamed_{i}" for i in range(named, width))]


def _drop_unnamed(df: DataFrame, path: str) -> DataFrame:
    """Columns with no header name: dropped when they hold no value, refused when they do (as the other engines)."""
    for col in [c for c in df.columns if c.startswith("_unnamed_")]:
        if df.filter(F.col(col).isNotNull() & (F.trim(F.col(col)) != "")).limit(1).count():
            raise HeaderError(
                f"{path}: column {int(col.rsplit('_', 1)[1]) + 1} has no name in the header but holds values; name it "
                "in the header"
            )
        df = df.drop(col)
    return df


def _noted(noted: list) -> dict:
    """What :func:`read_tables` noted, as ``ValidationResult`` fields."""
    notes = [
        text for n in noted for text in ([n] if isinstance(n, str) else n.notes)
    ]  # in the order the pandas reader notes them
    return {
        "notes": tuple(notes),
        "ignored_files": tuple(i for n in noted if not isinstance(n, str) for i in n.ignored),
    }


def _bucketed(frames: dict[str, DataFrame], buckets: int) -> DataFrame:
    """All tables in one frame (columns unioned by name), tagged with table and customer bucket."""
    tagged = [df.withColumn(TABLE, F.lit(name)) for name, df in frames.items()]
    try:
        union = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), tagged)
    except AnalysisException as err:
        raise ContractError(
            f"tables share a column name with different types, which the spark engine cannot combine: {err}"
        ) from err
    return union.withColumn(BUCKET, _bucket_udf(buckets)(F.col("customer_id")))


def _bucket_udf(buckets: int):
    """The partitioned engine's bucket of each id (:func:`pipelines.engines.partitioned.bucket_of`), as a vectorised
    Spark UDF: ids are bucketed as validation reads them, so that spellings of one id meet in one bucket."""

    @F.pandas_udf("int")
    def bucket(ids: pd.Series) -> pd.Series:
        return pd.Series(bucket_of(ids, buckets), dtype="int32")

    return bucket


def _columns(frames: dict[str, DataFrame]) -> dict[str, list[str]]:
    return {name: [c for c in df.columns if c != SOURCE_ROW] for name, df in frames.items()}


@dataclass(frozen=True)
class _Input:
    """A dataset as the Spark stages read it, before any validation."""

    frames: dict[str, DataFrame]  # each table, with ``_source_row``
    sources: dict[str, str]  # each table's source path (for messages)
    columns: dict[str, list[str]]  # each table's own columns
    union: DataFrame  # every row, tagged with its table and customer bucket
    attribute_types: dict[str, str]  # the customer attribute types, decided on the whole customers table
    noted: list  # what reading and the type decision noted (for the report)


def _read_input(spark, data, buckets: int, forced: dict[str, str] | None) -> _Input:
    """Read every table of ``data``, bucket the rows and decide the customer attribute types (``forced`` first)."""
    noted: list = []
    frames, sources = read_tables(spark, str(data), noted)
    columns = _columns(frames)
    union = _bucketed(frames, buckets)
    return _Input(frames, sources, columns, union, _attribute_types(frames, forced, noted), noted)


# --- what runs in each bucket (in the Spark workers) ---------------------------------------
def _split(table: pa.Table, columns: dict[str, list[str]]) -> dict[str, pd.DataFrame]:
    """One bucket's Arrow rows back into the contract's tables, in source order, with their own columns."""
    out = {}
    for name, cols in columns.items():
        part = table.filter(pc.equal(table.column(TABLE), name)).select([*cols, SOURCE_ROW]).sort_by(SOURCE_ROW)
        out[name] = part.to_pandas()
    return out


def _attribute_types(frames: dict[str, DataFrame], forced: dict[str, str] | None, noted: list) -> dict[str, str]:
    """Customer attribute types decided on the driver from the whole customers table, so that every bucket agrees;
    what the decision notes joins ``noted`` (the report's notes)."""
    decided = whole_attribute_types(frames["customers"].drop(SOURCE_ROW).toPandas(), forced)
    noted.extend(decided.notes)
    return decided.types


def _meta_rows(result: ValidationResult, peer_groups: tuple[str, ...], with_quarantine: bool) -> pa.Table:
    """A bucket's accounting, latest date, readable columns, peer revenues and (optionally) quarantined row ids."""
    rows: dict[str, list] = {k: [] for k in ("kind", "tbl", "col", "text", "number", "row")}

    def add(kind, tbl=None, col=None, text=None, number=None, row=None):
        for k, v in zip(rows, (kind, tbl, col, text, number, row), strict=True):
            rows[k].append(v)

    for name, rep in result.report.items():
        add("read", name, row=rep.rows_read)
        for reason, n in rep.by_reason.items():
            add("reason", name, text=reason, row=n)
        for change, n in rep.normalised.items():
            add("normalised", name, text=change, row=n)
    if result.data_end is not None:
        add("end", text=result.data_end.isoformat())
    for (name, col), message in result.unreadable.items():
        add("unreadable", name, col, message)
    for name, col in result.readable:
        add("readable", name, col)
    customers = result.tables.get("customers")
    for col in peer_groups:
        if customers is not None and col in customers:
            keys = customers[col].astype(object)
            for key, revenue in zip(keys, customers["monthly_revenue"].to_numpy(dtype=float), strict=True):
                if pd.notna(key):
                    add("peer", None, col, str(key), float(revenue))
    if with_quarantine:
        for name, q in result.quarantine.items():
            for source_row, reason, detail in zip(q[SOURCE_ROW], q["_reason"], q["_detail"], strict=True):
                add("quarantine", name, detail, reason, None, int(source_row))
    return pa.table(rows, schema=pa.schema(META_FIELDS))


def _btyd_rows(validated: ValidationResult, config: FeatureConfig, dates) -> pa.Table:
    """A bucket's BG/NBD calibration for each as-of date, as meta rows (``x|t_x|age`` in ``text``, customers in
    ``row``)."""
    rows: dict[str, list] = {k: [] for k in ("kind", "tbl", "col", "text", "number", "row")}
    prepared = prepare(tables_from(validated), config)
    for d in dates:
        cal = purchase_calibration(prepared.interactions, len(prepared.customers), d, config)
        for x, t_x, age, count in zip(cal.x, cal.t_x, cal.age, cal.count, strict=True):
            for k, v in zip(
                rows,
                ("btyd", d.isoformat(), None, f"{float(x)!r}|{float(t_x)!r}|{float(age)!r}", None, int(count)),
                strict=True,
            ):
                rows[k].append(v)
    return pa.table(rows, schema=pa.schema(META_FIELDS))


def _kept_columns(kept: dict[str, pa.Schema]) -> dict[str, dict[str, str]]:
    """The column of the meta rows that carries each (table, column) of the kept tables: ``_k0``, ``_k1``, ..."""
    names, i = {}, 0
    for name, schema in kept.items():
        names[name] = {}
        for col in schema.names:
            names[name][col], i = f"_k{i}", i + 1
    return names


def _with_kept(
    rows: pa.Table,
    validated: ValidationResult,
    raw: dict[str, pd.DataFrame],
    names: dict[str, dict[str, str]],
    schema: pa.Schema,
) -> pa.Table:
    """A bucket's meta rows followed by the kept rows of the tables ``names`` holds (kind ``kept``, their table in
    ``tbl``, their source row in ``row``), in the declared ``schema``."""
    parts = [rows]
    for name in names:
        own = pa.schema([schema.field(wide).with_name(col) for col, wide in names[name].items()])
        typed = pa.Table.from_pandas(validated.tables[name], schema=own, preserve_index=False)
        typed = typed.rename_columns(list(names[name].values()))
        for col, tag in (("kind", KEPT), ("tbl", name)):
            typed = typed.append_column(col, pa.array([tag] * len(typed), pa.string()))
        typed = typed.append_column("row", pa.array(_kept_rows(raw[name], validated.quarantine[name]), pa.int64()))
        parts.append(typed)
    return pa.concat_tables(parts, promote_options="default").select(schema.names).cast(schema)


def _kept_rows(raw: pd.DataFrame, quarantine: pd.DataFrame) -> np.ndarray:
    """The source row of each kept row: validation keeps the rows it does not quarantine, in the order it read them."""
    rows = raw[SOURCE_ROW].to_numpy()
    return rows[~np.isin(rows, quarantine[SOURCE_ROW].to_numpy())]


# --- the whole dataset's figures, on the driver ----------------------------------------------
def _whole_base_btyd(meta: DataFrame, config: FeatureConfig) -> dict:
    """The buckets' BG/NBD calibrations pooled by as-of date and fitted once on the driver."""
    rows = meta.filter(F.col("kind") == "btyd").select("tbl", "text", "row").toPandas()
    calibrations = {}
    for day, group in rows.groupby("tbl"):
        stats = group["text"].str.split("|", expand=True).astype(float).to_numpy()
        calibrations[pd.Timestamp(day)] = [calibration(stats[:, 0], stats[:, 1], stats[:, 2], group["row"].to_numpy())]
    return whole_base_parameters(calibrations, config)


def _meta(
    read: _Input,
    end_date: pd.Timestamp | None,
    today: pd.Timestamp,
    peer_groups: tuple[str, ...],
    with_quarantine: bool,
    btyd: tuple[FeatureConfig, list] | None = None,
    kept: dict[str, pa.Schema] | None = None,
) -> tuple[DataFrame, ValidationResult, dict[str, pd.Series]]:
    """Run validation in every bucket; return the meta rows (cached), the combined result and the peer-group medians.

    With ``btyd`` (feature config, as-of dates), each bucket also returns its BG/NBD calibrations
    (see :func:`_whole_base_btyd`).
    With ``kept`` (the schema of each table to keep, as validation keeps it: see :func:`_kept_schemas`), each bucket
    also returns those tables' kept rows in those types, kind ``kept``, each table's columns in the meta columns
    :func:`_kept_columns` names.
    """
    columns, sources, types = read.columns, read.sources, read.attribute_types  # what the workers get, not ``read``
    schema, names, arrow_schema = _meta_schema(kept)

    def run(table):
        raw = _split(table, columns)
        validated = validate_bucket(raw, sources, end_date, today, types)
        rows = _meta_rows(validated, peer_groups, with_quarantine)
        rows = pa.concat_tables([rows, _btyd_rows(validated, *btyd)]) if btyd else rows
        return rows if kept is None else _with_kept(rows, validated, raw, names, arrow_schema)

    meta = read.union.groupBy(BUCKET).applyInArrow(run, schema).persist(StorageLevel.MEMORY_AND_DISK)
    return meta, _accounting(meta, columns, end_date, today, types), _peer_medians(meta)


def _meta_schema(kept: dict[str, pa.Schema] | None) -> tuple:
    """The meta rows' Spark schema, the meta column of each kept column and the schema in Spark's own Arrow types
    (string, not large_string; the session's zone): widened by the kept tables' columns when there are any."""
    if kept is None:
        return META_SCHEMA, {}, None
    names = _kept_columns(kept)
    wide = [kept[name].field(col).with_name(column) for name in names for col, column in names[name].items()]
    schema = from_arrow_schema(pa.schema([*META_FIELDS, *wide]))
    return schema, names, to_arrow_schema(schema, timezone="UTC")


def _accounting(
    meta: DataFrame, columns: dict[str, list[str]], end_date, today: pd.Timestamp, attribute_types: dict[str, str]
) -> ValidationResult:
    """The buckets' per-kind facts rebuilt into one accounting, combined exactly as the partitioned engine does."""
    small = (
        meta.filter(~F.col("kind").isin("peer", "quarantine", "btyd", KEPT))
        .select(*(f for f, _ in META_FIELDS))
        .toPandas()
    )
    report = {name: _table_report(small, name) for name in TABLES if name in columns}
    ends = small.loc[small["kind"] == "end", "text"]
    unreadable = {(r.tbl, r.col): r.text for r in small[small["kind"] == "unreadable"].itertuples()}
    readable = {(r.tbl, r.col) for r in small[small["kind"] == "readable"].itertuples()}
    part = ValidationResult(
        {},
        {},
        report,
        pd.Timestamp(max(ends)) if len(ends) else None,
        reference_end_of(end_date, today),
        unreadable,
        readable,
        end_date is not None,
        attribute_types,
    )
    return combine([part])


def _table_report(small: pd.DataFrame, name: str) -> TableReport:
    """One table's rows read, kept and quarantined (by reason), and its normalised values, summed over the buckets."""
    reads = small[(small["kind"] == "read") & (small["tbl"] == name)]["row"].sum()
    reasons = small[(small["kind"] == "reason") & (small["tbl"] == name)].groupby("text")["row"].sum()
    changed = small[(small["kind"] == "normalised") & (small["tbl"] == name)].groupby("text")["row"].sum()
    quarantined = int(reasons.sum())
    return TableReport(
        int(reads),
        int(reads) - quarantined,
        quarantined,
        {str(k): int(v) for k, v in reasons.items()},
        {str(k): int(v) for k, v in changed.items()},
    )


def _peer_medians(meta: DataFrame) -> dict[str, pd.Series]:
    """The peer-group revenue medians of every validated customer (the buckets' peer rows, grouped by Spark)."""
    return {
        col: group.set_index("text")["median"]
        for col, group in meta.filter(F.col("kind") == "peer")
        .groupBy("col", "text")
        .agg(F.median("number").alias("median"))
        .toPandas()
        .groupby("col")
    }


def _collect_kept(meta: DataFrame, kept: dict[str, pa.Schema], typed: dict[str, pd.DataFrame]) -> dict:
    """The kept rows of each table in ``kept``, on the driver in source order, in the pandas types validation gives
    them (``typed``: see :func:`_typed_empty`)."""
    out = {}
    for name, wide in _kept_columns(kept).items():
        rows = meta.filter((F.col("kind") == KEPT) & (F.col("tbl") == name))
        table = rows.select("row", *(F.col(column).alias(col) for col, column in wide.items())).toArrow()
        table = table.sort_by("row").drop_columns(["row"])
        pandas_types = pa.Schema.from_pandas(typed[name], preserve_index=False).metadata
        out[name] = table.replace_schema_metadata(pandas_types).to_pandas()
    return out


# --- stages ---------------------------------------------------------------------------------
def validate_spark(
    data,
    out,
    end_date: pd.Timestamp | None,
    partitions: int,
    today: pd.Timestamp | None = None,
    attribute_types: dict[str, str] | None = None,
) -> ValidationResult:
    """``churn validate --engine spark``: kept rows and quarantine (original values, reasons) as Spark parquet folders.

    The kept rows are what validation made of them in each bucket (typed, normalised, reader columns dropped), in the
    types :func:`_kept_schemas` declares up front: the tables the other engines write, in another row order.
    """
    buckets = buckets_for(partitions)
    spark = spark_session(buckets)
    today = run_today(today)  # the driver's clock, not each worker's
    read = _read_input(spark, data, buckets, attribute_types)
    typed = _typed_empty(read, end_date, today)
    kept = _kept_schemas(typed, read.frames)
    meta, result, _ = _meta(read, end_date, today, (), with_quarantine=True, kept=kept)
    result = replace(result, **_noted(read.noted))
    with _output_folder(out, VALIDATED_MARKER) as work:
        _write_validated(meta, read, _kept_columns(kept), work)
        meta.unpersist()
        _with_pandas_types(work, typed)
        for file, text in report_files(result).items():
            _write_text(spark, f"{work}/{file}", text)
    return result


def _write_validated(meta: DataFrame, read: _Input, names: dict[str, dict[str, str]], work: str) -> None:
    """Each table's kept rows (typed and normalised by validation in each bucket, reader columns dropped) and its
    quarantined rows (original values, reason, detail) as parquet folders under ``work``."""
    bad = meta.filter(F.col("kind") == "quarantine").select(
        F.col("tbl").alias(TABLE),
        F.col("row").alias(SOURCE_ROW),
        F.col("text").alias("_reason"),
        F.col("col").alias("_detail"),
    )
    for name, cols in read.columns.items():
        good = meta.filter((F.col("kind") == KEPT) & (F.col("tbl") == name))
        good = good.select(*(F.col(wide).alias(col) for col, wide in names[name].items()))
        good.write.mode("overwrite").parquet(f"{work}/{VALIDATED_TABLES}/{name}.parquet")
        rows = read.union.filter(F.col(TABLE) == name)
        keys = bad.filter(F.col(TABLE) == name).drop(TABLE)
        rows.join(keys, SOURCE_ROW).select(SOURCE_ROW, *cols, "_reason", "_detail").orderBy(SOURCE_ROW).write.mode(
            "overwrite"
        ).parquet(f"{work}/quarantine/{name}.parquet")


def _typed_empty(read: _Input, end_date, today) -> dict[str, pd.DataFrame]:
    """Each table as validation keeps it, with no rows: its columns and types are those of every bucket's kept rows
    (the contract's types, the decided attribute types, other columns as read; reader columns dropped)."""
    return validate_dataset(
        _empty_tables(read.frames), read.sources, end_date=end_date, today=today, attribute_types=read.attribute_types
    ).tables


def _kept_schemas(typed: dict[str, pd.DataFrame], frames: dict[str, DataFrame]) -> dict[str, pa.Schema]:
    """The Arrow schema of each kept table (``typed``: see :func:`_typed_empty`); a column whose type only its values
    tell pandas (an extra column of dates or decimals, held as objects) keeps the type Spark read it in."""
    out = {}
    for name, frame in typed.items():
        schema, read = pa.Schema.from_pandas(frame, preserve_index=False).remove_metadata(), _arrow_schema(frames[name])
        for i, field in enumerate(schema):
            if pa.types.is_null(field.type) and field.name in read.names:
                schema = schema.set(i, field.with_type(read.field(field.name).type))
        out[name] = schema
    return out


def _with_pandas_types(folder: str, typed: dict[str, pd.DataFrame]) -> None:
    """Give the parts of a local ``folder/tables/NAME.parquet`` the pandas metadata of their types where Arrow alone
    does not restore them (a ``boolean`` column with missing values reads back as objects), as the other engines write.

    Spark writes no such metadata, so these parts are streamed once into a copy that has it (and their ``.crc``
    removed). A cluster URI is left as Spark wrote it: pandas does not read it, and Spark reads the types as they are.
    """
    if not _local(folder):
        return
    for name, frame in typed.items():
        schema = pa.Schema.from_pandas(frame, preserve_index=False)
        if schema.remove_metadata().empty_table().to_pandas().dtypes.equals(frame.dtypes):
            continue
        parts = Path(folder.removeprefix("file://"), VALIDATED_TABLES, f"{name}.parquet").glob("part-*.parquet")
        for part in sorted(parts):
            tmp = part.with_name(f".{part.name}.tmp")
            with (
                pq.ParquetFile(part) as written,
                pq.ParquetWriter(tmp, written.schema_arrow.with_metadata(schema.metadata)) as writer,
            ):
                for batch in written.iter_batches():
                    writer.write_batch(batch)
            os.replace(tmp, part)
            part.with_name(f".{part.name}.crc").unlink(missing_ok=True)


def _empty_tables(frames: dict[str, DataFrame]) -> dict[str, pd.DataFrame]:
    """Each table with no rows but its real column types (what a bucket without that table's rows sees)."""
    return {name: _arrow_schema(df).empty_table().to_pandas() for name, df in frames.items()}


def _arrow_schema(df: DataFrame) -> pa.Schema:
    """A table's columns as Spark hands them to Python (instants in the session's zone, UTC)."""
    return to_arrow_schema(df.drop(SOURCE_ROW).schema, timezone="UTC")


@dataclass(frozen=True)
class _Validated:
    """The whole dataset validated by bucket: what every bucket's feature build needs, and the tables kept for the
    driver."""

    read: _Input
    typed: dict[str, pd.DataFrame]  # each table as validation keeps it, with no rows (see _typed_empty)
    result: ValidationResult  # the accounting, with what reading noted
    medians: dict[str, pd.Series]  # peer-group revenue medians
    btyd: dict  # BG/NBD parameters by as-of date
    config: FeatureConfig  # with the decided customer attribute types
    kept: dict[str, pd.DataFrame]  # the validated tables named by ``keep``, on the driver


def _validated(
    spark, data, end_date, partitions: int, config: FeatureConfig, dates: list, today, keep: tuple[str, ...]
) -> _Validated:
    """Validate every bucket once for the whole-data figures (and the kept rows of the tables in ``keep``)."""
    read = _read_input(spark, data, buckets_for(partitions), dict(config.attribute_types or ()))
    typed = _typed_empty(read, end_date, today)
    kept = {name: schema for name, schema in _kept_schemas(typed, read.frames).items() if name in keep} or None
    btyd = (config, dates) if config.purchase_types and "interactions" in read.frames else None
    meta, result, medians = _meta(read, end_date, today, config.peer_groups, False, btyd, kept)
    params = _whole_base_btyd(meta, config)
    tables = _collect_kept(meta, kept, typed) if kept else {}
    meta.unpersist()
    result = replace(result, **_noted(read.noted))
    if result.observation_end is None:
        raise UserError("the dataset holds no dated rows after validation and no end date was given; nothing to build")
    return _Validated(read, typed, result, medians, params, with_attribute_types(config, read.attribute_types), tables)


def _feature_frames(
    spark, data, end_date, partitions: int, config: FeatureConfig, build, as_of_dates, today=None, keep=()
) -> tuple[DataFrame, _Validated]:
    """Validate by bucket for the whole-data figures, then run ``build(tables, data_end, medians, config with attribute
    types, BG/NBD parameters by date)`` in every bucket; returns its rows (a Spark frame) and the validation."""
    today = run_today(today)  # the driver's clock, not each worker's
    whole = _validated(
        spark, data, end_date, partitions, config, sorted({pd.Timestamp(d) for d in as_of_dates}), today, keep
    )
    # labels are observed up to the extract date (see ValidationResult.observation_end)
    data_end, medians, typed_config, btyd = whole.result.observation_end, whole.medians, whole.config, whole.btyd
    # The output's schema: the same build on a bucket with no rows.
    empty = build(tables_from(whole.typed), data_end, medians, typed_config, btyd)
    spark_schema = from_arrow_schema(pa.Schema.from_pandas(empty, preserve_index=False))
    arrow_schema = to_arrow_schema(spark_schema, timezone="UTC")  # Spark's own Arrow types (string, not large_string)
    columns, sources, types = whole.read.columns, whole.read.sources, whole.read.attribute_types

    def run(table):
        validated = validate_bucket(_split(table, columns), sources, end_date, today, types)
        frame = build(tables_from(validated), data_end, medians, typed_config, btyd)
        return pa.Table.from_pandas(frame, schema=arrow_schema, preserve_index=False)

    return whole.read.union.groupBy(BUCKET).applyInArrow(run, spark_schema), whole


def snapshot_spark(
    data,
    out,
    as_of_dates,
    horizon_days: int,
    end_date,
    partitions: int,
    config: FeatureConfig,
    sampler=None,
    progress: bool = False,
) -> tuple[ValidationResult, dict]:
    """``churn snapshot --engine spark``: the stacked snapshot as a Spark parquet folder at ``out``."""
    if sampler is not None:
        raise UserError("the spark engine's snapshot does not sample non-churners")
    spark = spark_session(buckets_for(partitions))
    dates = sorted({pd.Timestamp(d) for d in as_of_dates})

    def build(tables, data_end, medians, typed_config, btyd):
        return snapshot(tables, dates, horizon_days, data_end, typed_config, medians=medians, btyd_params=btyd)

    features, whole = _feature_frames(spark, data, end_date, partitions, config, build, dates)
    with _output_folder(out, "_SUCCESS") as work:  # Spark's own marker of a complete write
        features.write.mode("overwrite").parquet(work)
    return whole.result, _snapshot_stats(spark.read.parquet(str(out))).to_dict(buckets_for(partitions))


def _snapshot_stats(written: DataFrame) -> SnapshotStats:
    """:func:`pipelines.stages.snapshot.snapshot_stats` of each Arrow batch of the written snapshot, in the workers,
    added up on the driver."""

    def count(batches):
        total = SnapshotStats()
        for batch in batches:
            total += snapshot_stats(batch.to_pandas())
        yield pa.RecordBatch.from_pydict(
            {"rows": [total.rows], "labelled": [total.labelled], "positives": [total.positives]}
        )

    parts = written.select(LABEL).mapInArrow(count, "rows long, labelled long, positives long").collect()
    return sum((SnapshotStats(p["rows"], p["labelled"], p["positives"]) for p in parts), SnapshotStats())


def score_inputs_spark(
    data, as_of: pd.Timestamp, end_date, partitions: int, config: FeatureConfig, model_uri: str
) -> tuple[ValidationResult, pd.DataFrame, Tables, np.ndarray]:
    """Features of every active customer built on Spark and scored there by ``spark_udf`` with the registered alias.

    Returns the validation accounting, the features (one row per customer, on
    the driver) with ``churn_probability``, and the small validated tables: the
    rows validation kept in the workers, brought to the driver in source order
    (interactions stay on the cluster).
    """
    # Only scoring needs MLflow: the Spark workers import this module for the bucket functions of every stage, and
    # mlflow would add about 40 MB and a second or two to each of them (and to validate and snapshot on the driver).
    import mlflow

    from models.registry import tracking_uri

    spark = spark_session(buckets_for(partitions))

    def build(tables, _data_end, medians, typed_config, btyd):
        return build_features(prepare(tables, typed_config, medians, btyd), as_of)

    features, whole = _feature_frames(spark, data, end_date, partitions, config, build, [as_of], keep=SMALL_TABLES)
    mlflow.set_tracking_uri(tracking_uri())
    predict = mlflow.pyfunc.spark_udf(spark, f"models:/{model_uri}", result_type="double", env_manager="local")
    inputs = feature_columns(pd.DataFrame(columns=features.columns))
    scored = features.withColumn("churn_probability", predict(F.struct(*[F.col(c) for c in inputs])))
    frame = scored.toPandas().sort_values("customer_id", ignore_index=True)
    probability = frame.pop("churn_probability").to_numpy(dtype=float)
    return whole.result, frame, tables_from(whole.kept), probability
