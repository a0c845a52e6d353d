"""Structure of raw files (pipelines/io/reading.py): every row is read or refused by name, never lost into another.

Quotes that are never closed, fields larger than Arrow's block, headers over two lines, names the folder
scan used to skip, compressed tables, folders named like CSV files, files in another encoding than the
configured one, and first lines that are not the header.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.contract import MALFORMED, ContractError
from pipelines.engines.partitioned import validate_partitioned
from pipelines.io.files import validate_folder
from pipelines.io.reading import BLOCK_BYTES, MALFORMED_DETAIL, RAW_LINE, TableReader
from tests.builders import assert_balanced as balanced
from tests.builders import extract_folder as folder

END = pd.Timestamp("2024-06-30")
HEADER = "customer_id,signup_date,monthly_revenue"
CUSTOMERS = f"{HEADER}\nc1,2024-01-01,10\nc2,2024-01-02,12\nc3,2024-01-03,14\n"
EVENTS = "customer_id,timestamp,channel,type"


def validate(data: Path, **kwargs):
    return validate_folder(data, END, None, **kwargs)


def exit_code(tmp_path: Path, data: Path, *args: str) -> int:
    return main(["validate", "--data", str(data), "--out", str(tmp_path / "out"), "--end-date", "2024-06-30", *args])


def plans(n: int) -> str:
    return "".join(f"c{i},2024-01-{i:02d},{10 + i},plan{i}\n" for i in range(3, n + 1))


# --- quotes that are never closed ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, line",
    [
        (
            f'{HEADER},plan\nc1,2024-01-01,10,basic\nc2,2024-01-02,12,"gold\n' + plans(20),
            3,
        ),  # in the last column: one kept value
        (
            f'{HEADER}\nc1,2024-01-01,10\nc2,"2024-01-02,12\nc3,2024-01-03,14\nc4,2024-01-04,16\n',
            3,
        ),  # in another column
        (
            f'{HEADER},plan\nc1,2024-01-01,10,O"Brien\nc2,2024-01-02,12,"gold\n' + plans(6),
            3,
        ),  # an even number of quotes
        (
            f'{HEADER},plan\nc1,2024-01-01,10,screen 12"\nc2,2024-01-02,12,"gold\n' + plans(6),
            3,
        ),  # even, and no quote between letters
        (
            f'{HEADER},plan\nc1,2024-01-01,10,basic\nc2,2024-01-02,12,"gold',
            3,
        ),  # on the last line, no line break after it
        (
            f'{HEADER},plan\nc1,2024-01-01,10,basic\nc2,"2024-01-02\n",12,"gold\n' + plans(5),
            4,
        ),  # after a value over two lines
    ],
    ids=[
        "last-column",
        "middle-column",
        "even-quote-count",
        "even-no-stray-quote",
        "last-line",
        "after-multiline-value",
    ],
)
def test_a_quote_never_closed_is_refused_naming_the_line_it_opens(tmp_path: Path, text, line):
    data = folder(tmp_path, {"customers.csv": text})
    with pytest.raises(
        ContractError, match=rf"customers\.csv: line {line}: a quoted field opens here and is never closed"
    ):
        validate(data)
    assert exit_code(tmp_path, data) == 2


def test_a_quote_never_closed_in_the_first_row_is_not_an_empty_table(tmp_path: Path):
    """Arrow finds no row end in its first block: that is not "no rows" (it read 0 rows and exit 0)."""
    events = f'{EVENTS},value,note\nc1,2024-02-01T10:00:00,web,login,1,"Customer said ""hi\n' + "".join(
        f"c1,2024-02-{d:02d}T10:00:00,web,login,1,ok\n" for d in range(2, 28)
    )
    data = folder(tmp_path, {"customers.csv": CUSTOMERS, "interactions.csv": events})
    with pytest.raises(
        ContractError, match=r"interactions\.csv: line 2: a quoted field opens here and is never closed"
    ):
        validate(data)


def test_a_field_larger_than_arrows_block_is_read(tmp_path: Path):
    big = "x" * (BLOCK_BYTES + (1 << 20))
    text = f'{HEADER},notes\nc1,2024-01-01,10,"{big}"\nc2,2024-01-02,12,b\n'
    result = validate(folder(tmp_path, {"customers.csv": text}))
    kept = result.tables["customers"]
    assert list(kept["customer_id"]) == ["c1", "c2"]
    assert kept["notes"].str.len().tolist() == [len(big), 1]
    assert result.report["customers"].rows_read == 2


def test_a_header_only_file_is_an_empty_table(tmp_path: Path):
    result = validate(folder(tmp_path, {"customers.csv": CUSTOMERS, "interactions.csv": f"{EVENTS}\n\n\n"}))
    assert result.report["interactions"].rows_read == 0


def test_a_stray_quote_that_closes_later_says_which_lines_it_merged(tmp_path: Path):
    text = f'{HEADER}\nc1,2024-01-01,10\nc2,"2024-01-02,12\nc3,2024-01-03,14\nc4,2024-01-04",16,x\nc5,2024-01-05,18\n'
    result = validate(folder(tmp_path, {"customers.csv": text}))
    balanced(result)
    assert list(result.tables["customers"]["customer_id"]) == ["c1", "c5"]
    q = result.quarantine["customers"]
    assert list(q["_reason"]) == [MALFORMED]
    assert q[MALFORMED_DETAIL][0] == "lines 3-5: 4 field(s) where the header has 3"
    assert q[RAW_LINE][0] == 'c2,"2024-01-02,12\nc3,2024-01-03,14\nc4,2024-01-04",16,x'


@pytest.mark.parametrize("value", ['"gold 12" screen', '"a"b'])
def test_a_closing_quote_followed_by_text_is_kept_aside_not_altered(tmp_path: Path, value):
    """Arrow reads ``"gold 12" screen`` as ``gold 12 screen``: the quotes would vanish from a kept value."""
    text = f'{HEADER},plan\nc1,2024-01-01,10,O"Brien\nc2,2024-01-02,12,{value}\nc3,2024-01-03,14,x\n'
    result = validate(folder(tmp_path, {"customers.csv": text}))
    balanced(result)
    kept = result.tables["customers"]
    assert list(kept["plan"]) == ['O"Brien', "x"]  # a quote inside an unquoted value is part of it
    q = result.quarantine["customers"]
    assert list(q["_reason"]) == [MALFORMED] and q[RAW_LINE][0] == f"c2,2024-01-02,12,{value}"
    assert q[MALFORMED_DETAIL][0].startswith("line 3: a quoted value is followed by other text")


# --- headers -------------------------------------------------------------------------------------------
def test_a_header_over_two_lines_skips_exactly_the_header(tmp_path: Path):
    text = '"customer\nid",signup_date,monthly_revenue\nc1,2024-01-01,10\nc2,2024-01-02,12\n'
    result = validate(folder(tmp_path, {"customers.csv": text}))
    assert list(result.tables["customers"]["customer_id"]) == ["c1", "c2"]
    assert result.report["customers"].rows_read == 2 and result.quarantined_rows == 0


@pytest.mark.parametrize(
    "text, match",
    [
        ("   \n  \n", r"customers\.csv: empty file; expected a header line"),
        ("\n\n", r"customers\.csv: empty file"),
        (f"\n{CUSTOMERS}", r"customers\.csv: line 1 is blank; the header naming the columns .* must be the first line"),
        (
            f"# exported by warehouse 2024-06-30\n{CUSTOMERS}",
            r"customers\.csv: line 1 looks like a comment \('# exported by warehouse 2024-06-30'\)",
        ),
    ],
    ids=["whitespace", "line-breaks", "blank-first-line", "comment"],
)
def test_a_first_line_that_is_not_the_header_is_named(tmp_path: Path, text, match):
    data = folder(tmp_path, {"customers.csv": text})
    with pytest.raises(ContractError, match=match):
        validate(data)
    assert exit_code(tmp_path, data) == 2


# --- which files -------------------------------------------------------------------------------------------
def test_names_starting_with_a_dot_or_underscore_are_listed_as_ignored(tmp_path: Path):
    events = f"{EVENTS}\nc1,2024-02-01,email,open\n"
    files = {
        "customers.csv": CUSTOMERS,
        "_interactions.csv": events,
        ".churn_events.csv": "customer_id,churn_date\n",
        "._customers.csv": b"\x00\x05",
    }
    result = validate(folder(tmp_path, files))
    assert result.ignored_files == ("._customers.csv", ".churn_events.csv", "_interactions.csv")
    assert any("_interactions.csv" in n for n in result.to_dict()["notes"])
    assert set(result.tables) == {"customers"}


def test_macos_junk_is_never_refused_as_a_near_name(tmp_path: Path):
    data = folder(tmp_path, {"._customers.csv": b"\x00\x05", "._interaction.csv": b"\x00"})
    with pytest.raises(ContractError, match="missing required table 'customers'"):
        validate(data)


@pytest.mark.parametrize(
    "name, target",
    [
        ("interactions.csv.gz", "interactions.csv"),
        ("customers.csv.gz", "customers.csv"),
        ("Customers.CSV.GZ", "customers.csv"),
        ("feedback.csv.bz2", "feedback.csv"),
        ("customers.parquet.gz", "customers.parquet"),
        ("customers.zip", "customers.csv or customers.parquet"),
        ("customers.tar.gz", "customers.csv or customers.parquet"),
    ],
)
def test_compressed_tables_are_refused_by_name(tmp_path: Path, name, target):
    files = (
        {name: b"\x1f\x8b"}
        if name.startswith(("customers", "Customers"))
        else {"customers.csv": CUSTOMERS, name: b"\x1f\x8b"}
    )
    data = folder(tmp_path, files)
    with pytest.raises(ContractError, match=rf"{name}: compressed tables are not read; decompress it to {target}"):
        validate(data)
    assert exit_code(tmp_path, data) == 2


def test_other_compressed_files_are_listed_as_ignored(tmp_path: Path):
    result = validate(folder(tmp_path, {"customers.csv": CUSTOMERS, "notes.txt.gz": b"\x1f\x8b"}))
    assert result.ignored_files == ("notes.txt.gz",)


def test_a_folder_named_like_a_csv_table_is_refused(tmp_path: Path):
    data = folder(tmp_path, {})
    (data / "customers.csv").mkdir()
    (data / "customers.csv" / "part-0.csv").write_text(CUSTOMERS)
    with pytest.raises(
        ContractError,
        match=r"customers\.csv is a folder, not a CSV file: only a parquet table may be a folder of parts",
    ):
        validate(data)
    assert exit_code(tmp_path, data) == 2


# --- encodings ------------------------------------------------------------------------------------------
MUNICH = f"{HEADER},city\nc1,2024-01-01,10,M\u00fcnchen\nJos\u00e9,2024-01-02,12,K\u00f6ln\n"
SHOP = f"{EVENTS}\nc1,2024-02-01,Gesch\u00e4ft,a\nJos\u00e9,2024-02-01,web,b\n"


@pytest.mark.parametrize("encoding", ["latin-1", "iso8859-1", "cp1252", "windows-1252"])
@pytest.mark.parametrize("bom", [b"", codecs.BOM_UTF8])
def test_a_utf8_file_among_single_byte_ones_is_read_as_utf8_with_a_note(tmp_path: Path, encoding, bom):
    data = folder(tmp_path, {"customers.csv": MUNICH.encode("latin-1"), "interactions.csv": bom + SHOP.encode("utf-8")})
    result = validate(data, encoding=encoding)
    balanced(result)
    assert list(result.tables["customers"]["city"]) == ["München", "Köln"]
    assert list(result.tables["interactions"]["channel"]) == ["Geschäft", "web"]
    assert result.quarantined_rows == 0  # José is one customer in both files
    assert [n for n in result.notes if "read as UTF-8" in n and "interactions.csv" in n]
    assert not [n for n in result.notes if "customers.csv" in n]


def test_an_ascii_file_keeps_the_configured_encoding(tmp_path: Path):
    reader = TableReader(folder(tmp_path, {"customers.csv": CUSTOMERS}) / "customers.csv", "customers", "latin-1")
    assert reader.encoding == "latin-1" and reader.notes == []


def test_c1_bytes_under_latin1_are_read_as_cp1252_with_a_note(tmp_path: Path):
    text = (
        f"{HEADER},plan\nc1,2024-01-01,10,\u201cgold\u201d\n"
        "c2,2024-01-02,12,silver\u2019s \u20ac\nc3,2024-01-03,14,caf\u00e9\n"
    )
    result = validate(folder(tmp_path, {"customers.csv": text.encode("cp1252")}), encoding="latin-1")
    assert list(result.tables["customers"]["plan"]) == ["\u201cgold\u201d", "silver\u2019s \u20ac", "café"]
    assert [n for n in result.notes if "read as cp1252" in n]


def test_latin1_with_bytes_cp1252_lacks_stays_latin1(tmp_path: Path):
    text = f"{HEADER},plan\nc1,2024-01-01,10,a\x81b\n".encode("latin-1")
    result = validate(folder(tmp_path, {"customers.csv": text}), encoding="latin-1")
    assert list(result.tables["customers"]["plan"]) == ["a\x81b"]


@pytest.mark.parametrize("bom, codec", [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")])
@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_a_utf16_file_is_refused_as_utf16(tmp_path: Path, bom, codec, encoding):
    data = folder(tmp_path, {"customers.csv": bom + CUSTOMERS.encode(codec)})
    with pytest.raises(
        ContractError,
        match=r"customers\.csv: starts with a UTF-16 byte-order mark, so it looks UTF-16.*--encoding utf-16",
    ):
        validate(data, encoding=encoding)
    assert list(validate(data, encoding="utf-16").tables["customers"]["customer_id"]) == ["c1", "c2", "c3"]


# --- both engines read these files alike -----------------------------------------------------------------------
def test_partitioned_engine_reads_the_row_by_row_cases_alike(tmp_path: Path):
    customers = '"customer\nid",signup_date,monthly_revenue,notes\n' + "".join(
        f"c{i},2024-01-01,{i},n{i}\n" for i in range(30)
    )
    customers += f'c30,2024-01-01,1,"{"y" * (BLOCK_BYTES + 10)}"\nc31,2024-01-01,2,"gold 12" screen\n'
    events = (
        f"{EVENTS}\n"
        + "".join(f'c{i % 31},2024-02-01,email,"t{i}"\n' for i in range(50))
        + 'c1,"2024-02-02,web\nc2,2024-02-03",web,x,y\n'
    )
    data = folder(tmp_path, {"customers.csv": customers, "interactions.csv": events})
    whole = validate(data)
    parts = validate_partitioned(data, tmp_path / "out", END, 3)
    balanced(whole)
    assert whole.report["customers"].by_reason == {MALFORMED: 1}
    assert whole.report["interactions"].by_reason == {MALFORMED: 1}
    for name, r in whole.report.items():
        p = parts.report[name]
        assert (r.rows_read, r.rows_kept, r.by_reason) == (p.rows_read, p.rows_kept, p.by_reason), name


# --- parquet folders ----------------------------------------------------------------------------------
def _parts(tmp_path: Path, *frames: pd.DataFrame, extra: dict[str, str] | None = None) -> Path:
    data = tmp_path / "in"
    (data / "customers.parquet").mkdir(parents=True)
    for i, frame in enumerate(frames):
        frame.to_parquet(data / "customers.parquet" / f"part-{i}.parquet", index=False)
    for name, text in (extra or {}).items():
        (data / "customers.parquet" / name).parent.mkdir(parents=True, exist_ok=True)
        (data / "customers.parquet" / name).write_text(text)
    return data


def _customers(ids, **extra) -> pd.DataFrame:
    return pd.DataFrame(
        {"customer_id": ids, "signup_date": pd.Timestamp("2024-01-01"), "monthly_revenue": 10.0, **extra}
    )


@pytest.mark.parametrize(
    ("frames", "extra", "message"),
    [
        (
            (_customers(["a"], plan=["x"]), _customers(["b"], region=["EU"])),
            None,
            r"part-1.parquet: columns .* differ from the first part's",
        ),
        ((_customers(["a"]), _customers(["b"]).drop(columns="monthly_revenue")), None, "differ from the first part's"),
        ((_customers(["a"]), _customers([2])), None, "column 'customer_id' is int64 where the first part"),
        ((_customers(["a"]),), {"README.txt": "x"}, "may hold only its .parquet parts, but it also holds README.txt"),
        ((_customers(["a"]),), {"region=EU/part-9.parquet": "x"}, r"also holds region=EU/"),
        ((_customers(["a"], tags=[["p", "q"]]),), None, "column 'tags' holds list<element: string> values"),
    ],
    ids=["other-columns", "missing-required", "other-type", "other-file", "hive-folder", "nested-values"],
)
@pytest.mark.parametrize("partitions", [1, 3])
def test_parquet_folders_every_engine_would_read_differently_are_refused_by_name(
    tmp_path: Path, frames, extra, message, partitions
):
    data = _parts(tmp_path, *frames, extra=extra)
    with pytest.raises(ContractError, match=message):
        if partitions == 1:
            validate(data)
        else:
            validate_partitioned(data, tmp_path / "out", END, partitions)


def test_parquet_parts_with_an_all_null_column_are_one_table(tmp_path: Path):
    data = _parts(
        tmp_path,
        _customers(["a"], plan=[None]),
        _customers(["b"], plan=["gold"]),
        extra={"_SUCCESS": "", ".part-0.crc": ""},
    )
    result = validate(data)
    plan = result.tables["customers"].set_index("customer_id")["plan"]
    assert pd.isna(plan["a"]) and plan["b"] == "gold" and result.report["customers"].rows_kept == 2


@pytest.mark.parametrize("hint", ["sep=,", "sep=;", "sep=\t"])
def test_excels_delimiter_hint_line_is_named(tmp_path: Path, hint):
    data = folder(tmp_path, {"customers.csv": f"{hint}\n{CUSTOMERS}"})
    with pytest.raises(ContractError, match="line 1 is Excel's delimiter hint"):
        validate(data)


def test_parts_with_an_all_null_column_read_alike_in_partitions(tmp_path: Path):
    data = _parts(tmp_path, _customers(["a", "b"], plan=[None, None]), _customers(["c", "d"], plan=["x", "y"]))
    whole = validate(data)
    parts = validate_partitioned(data, tmp_path / "out", END, 2)
    assert parts.report["customers"].rows_kept == whole.report["customers"].rows_kept == 4
    written = pd.read_parquet(tmp_path / "out" / "tables" / "customers.parquet").sort_values("customer_id")
    assert written["plan"].isna().tolist() == [True, True, False, False]


def test_excel_text_and_quotes_inside_values_stay_on_the_fast_reader(tmp_path: Path, caplog):
    events = f"{EVENTS}\n" + "".join(f'="{i:05d}",2024-02-01,web,O"Brien says ""hi""\n' for i in range(4))
    reader = TableReader(folder(tmp_path, {"interactions.csv": events}) / "interactions.csv", "interactions")
    assert reader._why_row_by_row() is None
    assert reader.read()["customer_id"].tolist() == [f'="{i:05d}"' for i in range(4)]  # validation unwraps it


def test_parts_with_the_same_columns_in_another_order_are_one_table(tmp_path: Path):
    data = _parts(
        tmp_path,
        _customers(["a"], plan=["x"]),
        _customers(["b"], plan=["y"])[["plan", "monthly_revenue", "signup_date", "customer_id"]],
    )
    for result in (validate(data), validate_partitioned(data, tmp_path / "out", END, 2)):
        assert result.report["customers"].rows_kept == 2 and not result.report["customers"].by_reason


def test_a_carried_column_of_dates_keeps_its_type_in_buckets_without_rows(tmp_path: Path):
    import datetime as dt

    data = folder(tmp_path, {"customers.csv": CUSTOMERS})
    pd.DataFrame(
        {
            "customer_id": ["c1"],
            "action_date": [dt.date(2024, 2, 1)],
            "group": ["treatment"],
            "due": [dt.date(2024, 4, 1)],
        }
    ).to_parquet(data / "retention_actions.parquet", index=False)
    validate_partitioned(data, tmp_path / "out", END, 4)
    kept = pd.read_parquet(tmp_path / "out" / "tables" / "retention_actions.parquet")
    assert kept["due"].tolist() == [dt.date(2024, 4, 1)]
