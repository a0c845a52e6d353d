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

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import reduce
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.config import FeatureConfig
from pipelines.attributes import with_attribute_types
from pipelines.errors import UserError
from pipelines.io.normalise import SOURCE_ROW  # pyarrow and pandas only: safe before skip_pyspark_pandas()

# Spark workers import this module to run the bucket functions: it must not import pandera
# (through pipelines.contract) before skip_pyspark_pandas() has run there, so those imports are local.

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
KEPT = "kept"  # the meta rows' kind for the kept (validated, typed) rows of ``churn validate``
PANDAS_3_WARNING = "PySpark does not yet fully support pandas >= 3.0.0"


def buckets_for(partitions: int) -> int:
    """``--partitions`` is the bucket count; the default of 1 means "choose" on Spark."""
    return partitions if partitions > 1 else DEFAULT_BUCKETS


def spark_session(buckets: int):
    """The active session, or a new one: local[2] unless spark-submit or CHURN_SPARK_MASTER says otherwise."""
    from pipelines.compat import skip_pyspark_pandas

    skip_pyspark_pandas()
    # pyspark warns on any pandas >= 3; the parts used here (sql, Arrow UDFs, spark_udf) work on 3.1 (stack notes).
    warnings.filterwarnings("ignore", message=PANDAS_3_WARNING, category=FutureWarning)
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

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
    from pathlib import Path

    from pipelines.io.files import atomic_folder

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
def read_tables(spark, data: str, noted: list | None = None) -> tuple[dict, dict[str, str]]:
    """Each contract table as a Spark DataFrame with ``_source_row`` (its row in the source), and its source path.

    A local folder's files are found as the other engines find them
    (:func:`pipelines.io.reading.find_tables`: loose names read with a note, near
    misses refused, other files listed); on a cluster URI only exact names are
    read. CSV headers are normalised as everywhere (trimmed, case-folded onto
    contract names, duplicates refused). ``noted``, when given, receives the
    notes and the ignored files (for the report).
    """
    from pyspark.sql import functions as F

    from pipelines.contract import TABLES, ContractError, _check_columns, require_raw_tables
    from pipelines.io.files import VALIDATED_TABLES, is_validated_output
    from pipelines.io.reading import no_dataset_folder

    data = str(data).rstrip("/")
    if not _is_dir(spark, data):
        raise no_dataset_folder(data)
    if is_validated_output(data, lambda p: _is_file(spark, p), lambda p: _is_dir(spark, p)):
        # the output of `churn validate`: Spark validates its tables again (same rows pass)
        data = f"{data}/{VALIDATED_TABLES}"
    frames, sources = {}, {}
    for name, path in _table_paths(spark, data, noted).items():
        try:
            if path.endswith(".parquet"):
                df = spark.read.parquet(path)
                # Row within the file, offset by the rows of the files before it (parts in name order).
                df = df.select(
                    "*", F.col("_metadata.file_path").alias("_file"), F.col("_metadata.row_index").alias("_row")
                )
                counts = df.groupBy("_file").count().toPandas().sort_values("_file")
                offsets = spark.createDataFrame(
                    pd.DataFrame({"_file": counts["_file"], "_offset": counts["count"].cumsum() - counts["count"]}),
                    "_file string, _offset long",
                )
                df = (
                    df.join(F.broadcast(offsets), "_file")
                    .withColumn(SOURCE_ROW, F.col("_offset") + F.col("_row"))
                    .drop("_file", "_row", "_offset")
                )
            elif _local(path):
                df = spark.read.parquet(_csv_as_parquet(path, name, noted))
            else:
                text = spark.read.option("header", True).option("mode", "FAILFAST").csv(path)
                names = _csv_names(spark, path, name, len(text.columns), noted)
                # CSV carries no row index: number rows in file order.
                df = text.rdd.zipWithIndex().map(lambda pair: (*pair[0], pair[1])).toDF([*names, SOURCE_ROW])
                df = _drop_unnamed(df, path)
        except ContractError:
            raise
        except Exception as err:  # Spark's own message says what it could not read
            raise ContractError(f"{path}: cannot be read by Spark: {err}") from err
        _check_columns(pd.DataFrame(columns=[c for c in df.columns if c != SOURCE_ROW]), TABLES[name], path)
        frames[name], sources[name] = df, path
    require_raw_tables(frames)
    return frames, sources


def _local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _csv_as_parquet(path: str, table: str, noted: list | None) -> str:
    """A local CSV file read by the one reader every engine uses (:class:`pipelines.io.reading.TableReader`: quotes,
    row widths, encodings, headers), written as parquet with ``_source_row`` for Spark to read; the parquet lives
    in a temporary folder removed when the process ends (Spark reads it lazily until then)."""
    import atexit
    import shutil
    import tempfile

    from pipelines.io.reading import TableReader

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
    from pipelines.contract import TABLES
    from pipelines.io.reading import refuse_several

    if "://" not in data or data.startswith("file://"):
        from pipelines.io.reading import find_tables

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
    import csv

    from pipelines.contract import TABLES, all_columns
    from pipelines.io.normalise import normalise_header

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


def _drop_unnamed(df, path: str):
    """Columns with no header name: dropped when they hold no value, refused when they do (as the other engines)."""
    from pyspark.sql import functions as F

    from pipelines.io.normalise import HeaderError

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


def _bucketed(frames: dict, buckets: int):
    """All tables in one frame (columns unioned by name), tagged with table and customer bucket."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    from pipelines.contract import ContractError

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
    from pyspark.sql import functions as F

    from pipelines.engines.partitioned import bucket_of

    @F.pandas_udf("int")
    def bucket(ids: pd.Series) -> pd.Series:
        return pd.Series(bucket_of(ids, buckets), dtype="int32")

    return bucket


def _columns(frames: dict) -> dict[str, list[str]]:
    return {name: [c for c in df.columns if c != SOURCE_ROW] for name, df in frames.items()}


# --- what runs in each bucket (in the Spark workers) ---------------------------------------
def _split(table, columns: dict[str, list[str]]) -> dict[str, pd.DataFrame]:
    """One bucket's Arrow rows back into the contract's tables, in source order, with their own columns."""
    import pyarrow.compute as pc

    out = {}
    for name, cols in columns.items():
        part = table.filter(pc.equal(table.column(TABLE), name)).select([*cols, SOURCE_ROW]).sort_by(SOURCE_ROW)
        out[name] = part.to_pandas()
    return out


def _validate(table, columns, sources, end_date, today, attribute_types):
    from pipelines.compat import skip_pyspark_pandas

    skip_pyspark_pandas()
    from pipelines.engines.partitioned import validate_bucket

    return validate_bucket(_split(table, columns), sources, end_date, today, attribute_types)


def _attribute_types(frames, forced: dict[str, str] | None, noted: list) -> dict[str, str]:
    """Customer attribute types decided on the driver from the whole customers table, so that every bucket agrees;
    what the decision notes joins ``noted`` (the report's notes)."""
    from pipelines.engines.partitioned import whole_attribute_types

    decided = whole_attribute_types(frames["customers"].drop(SOURCE_ROW).toPandas(), forced)
    noted.extend(decided.notes)
    return decided.types


def _meta_rows(result, peer_groups: tuple[str, ...], with_quarantine: bool):
    """A bucket's accounting, latest date, readable columns, peer revenues and (optionally) quarantined row ids."""
    import pyarrow as pa

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


def _btyd_rows(validated, config: FeatureConfig, dates):
    """A bucket's BG/NBD calibration for each as-of date, as meta rows (``x|t_x|age`` in ``text``, customers in
    ``row``)."""
    import pyarrow as pa

    from features.build import prepare
    from features.transactions import purchase_calibration
    from pipelines.io.files import tables_from

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


def _with_kept(rows, tables: dict[str, pd.DataFrame], names: dict[str, dict[str, str]], schema):
    """A bucket's meta rows followed by its kept rows (kind ``kept``, their table in ``tbl``), in the declared
    ``schema``."""
    import pyarrow as pa

    parts = [rows]
    for name, frame in tables.items():
        own = pa.schema([schema.field(wide).with_name(col) for col, wide in names[name].items()])
        typed = pa.Table.from_pandas(frame, schema=own, preserve_index=False)
        typed = typed.rename_columns(list(names[name].values()))
        for col, tag in (("kind", KEPT), ("tbl", name)):
            typed = typed.append_column(col, pa.array([tag] * len(typed), pa.string()))
        parts.append(typed)
    return pa.concat_tables(parts, promote_options="default").select(schema.names).cast(schema)


def _whole_base_btyd(meta, config: FeatureConfig) -> dict:
    """The buckets' BG/NBD calibrations pooled by as-of date and fitted once on the driver."""
    from pyspark.sql import functions as F

    from features.transactions import calibration, whole_base_parameters

    rows = meta.filter(F.col("kind") == "btyd").select("tbl", "text", "row").toPandas()
    calibrations = {}
    for day, group in rows.groupby("tbl"):
        stats = group["text"].str.split("|", expand=True).astype(float).to_numpy()
        calibrations[pd.Timestamp(day)] = [calibration(stats[:, 0], stats[:, 1], stats[:, 2], group["row"].to_numpy())]
    return whole_base_parameters(calibrations, config)


def _meta(
    spark,
    union,
    columns,
    sources,
    end_date,
    today,
    peer_groups,
    with_quarantine: bool,
    attribute_types: dict[str, str],
    btyd: tuple[FeatureConfig, list] | None = None,
    kept: dict[str, pa.Schema] | None = None,
):
    """Run validation in every bucket; return the meta rows (cached) and the combined result, medians and data end.

    With ``btyd`` (feature config, as-of dates), each bucket also returns its BG/NBD calibrations
    (see :func:`_whole_base_btyd`).
    With ``kept`` (the schema of each table as validation keeps it: see :func:`_kept_schemas`), each bucket also returns
    its kept rows in those types, kind ``kept``, each table's columns in the meta columns :func:`_kept_columns` names.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    from pipelines.contract import TABLES, ValidationResult, reference_end_of
    from pipelines.engines.partitioned import combine

    def run(table):
        import pyarrow as pa

        validated = _validate(table, columns, sources, end_date, today, attribute_types)
        rows = _meta_rows(validated, peer_groups, with_quarantine)
        rows = pa.concat_tables([rows, _btyd_rows(validated, *btyd)]) if btyd else rows
        return rows if kept is None else _with_kept(rows, validated.tables, names, arrow_schema)

    schema = META_SCHEMA
    if kept is not None:
        names = _kept_columns(kept)
        wide = [kept[name].field(col).with_name(column) for name in names for col, column in names[name].items()]
        schema = from_arrow_schema(pa.schema([*META_FIELDS, *wide]))
        arrow_schema = to_arrow_schema(
            schema, timezone="UTC"
        )  # Spark's own Arrow types (string, not large_string); the session's zone
    meta = union.groupBy(BUCKET).applyInArrow(run, schema).persist(StorageLevel.MEMORY_AND_DISK)
    small = (
        meta.filter(~F.col("kind").isin("peer", "quarantine", "btyd", KEPT))
        .select(*(f for f, _ in META_FIELDS))
        .toPandas()
    )
    reference_end = reference_end_of(end_date, today)
    # Rebuild per-kind facts into one ValidationResult-shaped accounting, then combine exactly as the partitioned engine
    # does.
    from pipelines.contract import TableReport

    report = {}
    for name in [n for n in TABLES if n in columns]:
        reads = small[(small["kind"] == "read") & (small["tbl"] == name)]["row"].sum()
        reasons = small[(small["kind"] == "reason") & (small["tbl"] == name)].groupby("text")["row"].sum()
        changed = small[(small["kind"] == "normalised") & (small["tbl"] == name)].groupby("text")["row"].sum()
        quarantined = int(reasons.sum())
        report[name] = TableReport(
            int(reads),
            int(reads) - quarantined,
            quarantined,
            {str(k): int(v) for k, v in reasons.items()},
            {str(k): int(v) for k, v in changed.items()},
        )
    ends = small.loc[small["kind"] == "end", "text"]
    unreadable = {(r.tbl, r.col): r.text for r in small[small["kind"] == "unreadable"].itertuples()}
    readable = {(r.tbl, r.col) for r in small[small["kind"] == "readable"].itertuples()}
    part = ValidationResult(
        {},
        {},
        report,
        pd.Timestamp(max(ends)) if len(ends) else None,
        reference_end,
        unreadable,
        readable,
        end_date is not None,
        attribute_types,
    )
    result = combine([part])
    medians = {
        col: group.set_index("text")["median"]
        for col, group in meta.filter(F.col("kind") == "peer")
        .groupBy("col", "text")
        .agg(F.median("number").alias("median"))
        .toPandas()
        .groupby("col")
    }
    return meta, result, medians


# --- stages ---------------------------------------------------------------------------------
def validate_spark(
    data, out, end_date: pd.Timestamp | None, partitions: int, today: pd.Timestamp | None = None, attribute_types=None
):
    """``churn validate --engine spark``: kept rows and quarantine (original values, reasons) as Spark parquet folders.

    The kept rows are what validation made of them in each bucket (typed, normalised, reader columns dropped), in the
    types :func:`_kept_schemas` declares up front: the tables the other engines write, in another row order.
    """
    from pyspark.sql import functions as F

    from pipelines.contract import run_today
    from pipelines.io.files import VALIDATED_MARKER, VALIDATED_TABLES, report_files

    buckets = buckets_for(partitions)
    spark = spark_session(buckets)
    today = run_today(today)  # the driver's clock, not each worker's
    noted: list = []
    frames, sources = read_tables(spark, str(data), noted)
    columns = _columns(frames)
    union = _bucketed(frames, buckets)
    types = _attribute_types(frames, attribute_types, noted)
    typed = _typed_empty(frames, sources, end_date, today, types)
    kept = _kept_schemas(typed, frames)
    meta, result, _ = _meta(
        spark, union, columns, sources, end_date, today, (), with_quarantine=True, attribute_types=types, kept=kept
    )
    result = replace(result, **_noted(noted))
    bad = meta.filter(F.col("kind") == "quarantine").select(
        F.col("tbl").alias(TABLE),
        F.col("row").alias(SOURCE_ROW),
        F.col("text").alias("_reason"),
        F.col("col").alias("_detail"),
    )
    names = _kept_columns(kept)
    with _output_folder(out, VALIDATED_MARKER) as work:
        for name, cols in columns.items():
            # Kept rows as every engine writes them: typed and normalised by validation (in each bucket), reader columns
            # dropped.
            good = meta.filter((F.col("kind") == KEPT) & (F.col("tbl") == name))
            good = good.select(*(F.col(wide).alias(col) for col, wide in names[name].items()))
            good.write.mode("overwrite").parquet(f"{work}/{VALIDATED_TABLES}/{name}.parquet")
            # Quarantined rows with their original values.
            rows = union.filter(F.col(TABLE) == name)
            keys = bad.filter(F.col(TABLE) == name).drop(TABLE)
            rows.join(keys, SOURCE_ROW).select(SOURCE_ROW, *cols, "_reason", "_detail").orderBy(SOURCE_ROW).write.mode(
                "overwrite"
            ).parquet(f"{work}/quarantine/{name}.parquet")
        meta.unpersist()
        _with_pandas_types(work, typed)
        for file, text in report_files(result).items():
            _write_text(spark, f"{work}/{file}", text)
    return result


def _typed_empty(frames: dict, sources, end_date, today, attribute_types) -> dict[str, pd.DataFrame]:
    """Each table as validation keeps it, with no rows: its columns and types are those of every bucket's kept rows
    (the contract's types, the decided attribute types, other columns as read; reader columns dropped)."""
    from pipelines.contract import validate_dataset

    return validate_dataset(
        _empty_tables(frames), sources, end_date=end_date, today=today, attribute_types=attribute_types
    ).tables


def _kept_schemas(typed: dict[str, pd.DataFrame], frames: dict) -> dict[str, pa.Schema]:
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
    from pipelines.io.files import VALIDATED_TABLES

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


def _empty_tables(frames: dict) -> dict[str, pd.DataFrame]:
    """Each table with no rows but its real column types (what a bucket without that table's rows sees)."""
    return {name: _arrow_schema(df).empty_table().to_pandas() for name, df in frames.items()}


def _arrow_schema(df):
    """A table's columns as Spark hands them to Python (instants in the session's zone, UTC)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(df.drop(SOURCE_ROW).schema, timezone="UTC")


def _feature_frames(spark, data, end_date, partitions, config: FeatureConfig, build, as_of_dates, today=None):
    """Validate by bucket for the whole-data figures, then run ``build(tables, data_end, medians, config with attribute
    types, BG/NBD parameters by date)`` in every bucket."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    from pipelines.contract import run_today
    from pipelines.io.files import tables_from as tables_of

    buckets = buckets_for(partitions)
    today = run_today(today)  # the driver's clock, not each worker's
    noted: list = []
    frames, sources = read_tables(spark, str(data), noted)
    columns = _columns(frames)
    union = _bucketed(frames, buckets)
    types = _attribute_types(frames, dict(config.attribute_types or ()), noted)
    dates = sorted({pd.Timestamp(d) for d in as_of_dates})
    meta, result, medians = _meta(
        spark,
        union,
        columns,
        sources,
        end_date,
        today,
        config.peer_groups,
        with_quarantine=False,
        attribute_types=types,
        btyd=(config, dates) if config.purchase_types and "interactions" in frames else None,
    )
    btyd = _whole_base_btyd(meta, config)
    config = with_attribute_types(config, types)
    meta.unpersist()
    result = replace(result, **_noted(noted))
    if result.observation_end is None:
        raise UserError("the dataset holds no dated rows after validation and no end date was given; nothing to build")
    data_end = (
        result.observation_end
    )  # labels are observed up to the extract date (see ValidationResult.observation_end)

    # The output's schema: the same build on a bucket with no rows.
    empty = _typed_empty(frames, sources, end_date, today, types)
    spark_schema = from_arrow_schema(
        pa.Schema.from_pandas(build(tables_of(empty), data_end, medians, config, btyd), preserve_index=False)
    )
    arrow_schema = to_arrow_schema(spark_schema, timezone="UTC")  # Spark's own Arrow types (string, not large_string)

    def run(table):  # in a worker: everything it needs is imported after _validate's skip_pyspark_pandas()
        validated = _validate(table, columns, sources, end_date, today, types)
        from pipelines.io.files import tables_from

        frame = build(tables_from(validated), data_end, medians, config, btyd)
        return pa.Table.from_pandas(frame, schema=arrow_schema, preserve_index=False)

    return union.groupBy(BUCKET).applyInArrow(run, spark_schema), result


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
):
    """``churn snapshot --engine spark``: the stacked snapshot as a Spark parquet folder at ``out``."""

    if sampler is not None:
        raise UserError("the spark engine's snapshot does not sample non-churners")
    spark = spark_session(buckets_for(partitions))
    dates = sorted({pd.Timestamp(d) for d in as_of_dates})

    def build(tables, data_end, medians, typed_config, btyd):
        from pipelines.stages.snapshot import snapshot  # imported where it runs (see the note at the top)

        return snapshot(tables, dates, horizon_days, data_end, typed_config, medians=medians, btyd_params=btyd)

    features, result = _feature_frames(spark, data, end_date, partitions, config, build, dates)
    with _output_folder(out, "_SUCCESS") as work:  # Spark's own marker of a complete write
        features.write.mode("overwrite").parquet(work)
    return result, _snapshot_stats(spark.read.parquet(str(out))).to_dict(buckets_for(partitions))


def _snapshot_stats(written):
    """:func:`pipelines.stages.snapshot.snapshot_stats` of each Arrow batch of the written snapshot, in the workers,
    added up on the driver."""
    from features.build import LABEL
    from pipelines.stages.snapshot import SnapshotStats

    def count(batches):
        from pipelines.compat import skip_pyspark_pandas

        skip_pyspark_pandas()
        from pipelines.stages.snapshot import SnapshotStats, snapshot_stats

        total = SnapshotStats()
        for batch in batches:
            total += snapshot_stats(batch.to_pandas())
        yield pa.RecordBatch.from_pydict(
            {"rows": [total.rows], "labelled": [total.labelled], "positives": [total.positives]}
        )

    parts = written.select(LABEL).mapInArrow(count, "rows long, labelled long, positives long").collect()
    return sum((SnapshotStats(p["rows"], p["labelled"], p["positives"]) for p in parts), SnapshotStats())


def score_inputs_spark(
    data, as_of: pd.Timestamp, end_date, partitions: int, config: FeatureConfig, model_uri: str, tracking_uri: str
):
    """Features of every active customer built on Spark and scored there by ``spark_udf`` with the registered alias.

    Returns the validation accounting, the features (one row per customer, on
    the driver) with ``churn_probability``, and the small validated tables.
    """
    import mlflow
    from pyspark.sql import functions as F

    from features.build import build_features, feature_columns, prepare
    from pipelines.contract import validate_dataset
    from pipelines.io.files import tables_from

    spark = spark_session(buckets_for(partitions))

    def build(tables, _data_end, medians, typed_config, btyd):
        return build_features(prepare(tables, typed_config, medians, btyd), as_of)

    features, result = _feature_frames(spark, data, end_date, partitions, config, build, [as_of])
    mlflow.set_tracking_uri(tracking_uri)
    predict = mlflow.pyfunc.spark_udf(spark, f"models:/{model_uri}", result_type="double", env_manager="local")
    inputs = feature_columns(pd.DataFrame(columns=features.columns))
    scored = features.withColumn("churn_probability", predict(F.struct(*[F.col(c) for c in inputs])))
    frame = scored.toPandas().sort_values("customer_id", ignore_index=True)
    # Small tables for the report and the save-rate measurement; interactions stay on the cluster.
    frames, sources = read_tables(spark, str(data))
    small = {name: df.drop(SOURCE_ROW).toPandas() for name, df in frames.items() if name != "interactions"}
    tables = tables_from(
        validate_dataset(small, sources, end_date=end_date, attribute_types=dict(config.attribute_types or ())).tables
    )
    probability = frame.pop("churn_probability").to_numpy(dtype=float)
    return result, frame, tables, probability
