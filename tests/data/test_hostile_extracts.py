"""Warehouse quirks (issue 11): each is read correctly or refused by name, and nothing is lost, shifted or mixed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.contract import MALFORMED, NON_FINITE, UNKNOWN_CUSTOMER, ContractError
from pipelines.engines.partitioned import validate_partitioned
from pipelines.errors import UserError
from pipelines.io.files import validate_folder
from pipelines.io.normalise import parse_timestamps
from tests.builders import assert_balanced as balanced
from tests.builders import extract_folder as folder

END = pd.Timestamp("2024-06-30")
CUSTOMERS = "customer_id,signup_date,monthly_revenue\nc1,2024-01-01,10\nc2,2024-01-02,12\nc3,2024-01-03,14\n"


def validate(data: Path, **kwargs):
    return validate_folder(data, END, None, **kwargs)


# --- timestamps -------------------------------------------------------------------------------
def test_mixed_designators_are_converted_to_utc_per_value(tmp_path: Path):
    events = (
        "customer_id,timestamp,channel,type\n"
        "c1,2024-02-01T10:00:00,email,a\n"
        "c1,2024-02-01T10:00:00Z,email,b\n"
        "c1,2024-02-01T12:00:00+02:00,email,c\n"
        "c1,2024-02-01T0500-0500,email,d\n"
        "c1,2024-02-01 10:00:00 UTC,email,e\n"
        "c1,2024-02-01,email,f\n"
    )
    result = validate(folder(tmp_path, {"customers.csv": CUSTOMERS, "interactions.csv": events}))
    kept = result.tables["interactions"].set_index("type")["timestamp"]
    assert list(kept.index) == list("abcdef")
    assert (kept[list("abcde")] == pd.Timestamp("2024-02-01 10:00")).all()
    assert kept["f"] == pd.Timestamp("2024-02-01")


def test_naive_timestamps_follow_the_configured_zone_and_dates_stay_dates():
    raw = pd.Series(["2024-07-01T12:00:00", "2024-07-01", "2024-07-01T12:00:00Z", "2024-03-31T02:30:00", None])
    out = parse_timestamps(raw, "Europe/Berlin")
    assert out[0] == pd.Timestamp("2024-07-01 10:00")  # CEST is UTC+2
    assert out[1] == pd.Timestamp("2024-07-01")  # a date is not shifted
    assert out[2] == pd.Timestamp("2024-07-01 12:00")  # a designator wins over the zone
    assert pd.isna(out[3])  # does not exist in Berlin (clocks jump 02:00 -> 03:00): refused, not guessed
    assert pd.isna(out[4])


def test_timezone_option_reaches_validation(tmp_path: Path):
    events = "customer_id,timestamp,channel,type\nc1,2024-05-01T12:00:00,email,a\n"
    result = validate(
        folder(tmp_path, {"customers.csv": CUSTOMERS, "interactions.csv": events}), timezone="America/New_York"
    )
    assert result.tables["interactions"]["timestamp"][0] == pd.Timestamp("2024-05-01 16:00")  # EDT is UTC-4
    assert result.to_dict()["timezone"] == "America/New_York"


# --- row width ----------------------------------------------------------------------------------
@pytest.mark.parametrize("ids", [["c1", "c2", "c3"], ["101", "102", "103"]])
def test_trailing_comma_on_data_rows_shifts_nothing(tmp_path: Path, ids):
    text = "customer_id,signup_date,monthly_revenue\n" + "".join(
        f"{i},2024-01-0{k + 1},{10 + k},\n" for k, i in enumerate(ids)
    )
    result = validate(folder(tmp_path, {"customers.csv": text}))
    kept = result.tables["customers"]
    assert list(kept["customer_id"]) == ids
    assert list(kept["monthly_revenue"]) == [10.0, 11.0, 12.0]
    assert result.quarantined_rows == 0


def test_trailing_comma_on_the_header_too(tmp_path: Path):
    text = "customer_id,signup_date,monthly_revenue,\nc1,2024-01-01,10,\nc2,2024-01-02,11,x\n"
    result = validate(folder(tmp_path, {"customers.csv": text}))
    assert list(result.tables["customers"]["customer_id"]) == ["c1"]
    q = result.quarantine["customers"]
    assert list(q["_reason"]) == [MALFORMED] and q["_raw_line"][0] == "c2,2024-01-02,11,x"
    assert any("trailing delimiter" in n for n in result.notes)


def test_rows_of_the_wrong_width_are_kept_aside_whole_with_their_text(tmp_path: Path):
    events = (
        "customer_id,timestamp,channel,type\n"
        "c1,2024-02-01,email,open\n"
        "c1,2024-02-02,email\n"  # a field short
        '"c2","2024-02-03","web","note, with comma"\n'
        "c2,2024-02-04,web,open,surplus\n"  # a value too many
        'c3,2024-02-05,web,"multi\nline"\n'
    )
    result = validate(folder(tmp_path, {"customers.csv": CUSTOMERS, "interactions.csv": events}))
    balanced(result)
    kept = result.tables["interactions"]
    assert list(kept["type"]) == ["open", "note, with comma", "multi\nline"]
    q = result.quarantine["interactions"]
    assert list(q["_reason"]) == [MALFORMED, MALFORMED]
    assert list(q["_source_row"]) == [1, 3]
    assert list(q["_raw_line"]) == ["c1,2024-02-02,email", "c2,2024-02-04,web,open,surplus"]
    assert list(q["_malformed"]) == [
        "line 3: 3 field(s) where the header has 4",
        "line 5: 5 field(s) where the header has 4",
    ]
    assert list(q["_detail"]) == [MALFORMED, MALFORMED]  # no second reason for values that are not in their columns


# --- numbers ---------------------------------------------------------------------------------------
def test_infinite_numbers_are_quarantined(tmp_path: Path):
    customers = CUSTOMERS + "c4,2024-01-04,inf\nc5,2024-01-05,1e309\nc6,2024-01-06,-Infinity\n"
    events = (
        "customer_id,timestamp,channel,type,value\nc1,2024-02-01,email,open,Infinity\nc1,2024-02-02,email,open,2.5\n"
    )
    actions = "customer_id,action_date,group,cost\nc2,2024-03-01,treatment,inf\n"
    feedback = "customer_id,timestamp,survey,score\nc3,2024-03-01,NPS,1e400\n"
    result = validate(
        folder(
            tmp_path,
            {
                "customers.csv": customers,
                "interactions.csv": events,
                "retention_actions.csv": actions,
                "feedback.csv": feedback,
            },
        )
    )
    balanced(result)
    assert result.report["customers"].by_reason == {NON_FINITE: 3}
    assert np.isfinite(result.tables["customers"]["monthly_revenue"]).all()
    for table in ("interactions", "retention_actions", "feedback"):
        assert result.report[table].by_reason == {NON_FINITE: 1}, table
    assert list(result.tables["interactions"]["value"]) == [2.5]


def test_infinite_attribute_is_quarantined(tmp_path: Path):
    customers = (
        "customer_id,signup_date,monthly_revenue,balance\n"
        + "".join(f"c{i},2024-01-01,10,{i}.5\n" for i in range(30))
        + "c99,2024-01-01,10,inf\n"
    )
    result = validate(folder(tmp_path, {"customers.csv": customers}))
    assert result.attribute_types["balance"] == "number"
    assert result.report["customers"].by_reason == {NON_FINITE: 1}


# --- null tokens and identifiers ----------------------------------------------------------------------------
def test_null_tokens_mean_missing_in_text_columns_too(tmp_path: Path):
    customers = CUSTOMERS + "NULL,2024-01-04,10\n"
    events = (
        "customer_id,timestamp,channel,type,note\n"
        "c1,2024-02-01,NULL,open,x\nc1,2024-02-02,email,N/A,x\nc1,2024-02-03,email,open,#N/A\n"
        "c1,2024-02-04,email,open, none \n"
    )
    result = validate(folder(tmp_path, {"customers.csv": customers, "interactions.csv": events}))
    balanced(result)
    assert result.report["customers"].by_reason == {"missing_required_value": 1}
    assert result.report["interactions"].by_reason == {"missing_required_value": 2}
    assert result.tables["interactions"]["note"].isna().all()  # an extra text column: the tokens are missing values
    assert result.report["interactions"].normalised["null_token(note)"] == 2


def test_identifiers_are_trimmed_and_counted(tmp_path: Path):
    customers = "customer_id,signup_date,monthly_revenue\n c5 ,2024-01-01,10\nc6,2024-01-01,10\n"
    events = "customer_id,timestamp,channel,type\nc5,2024-02-01,email,open\n c6,2024-02-01,email,open\n"
    result = validate(folder(tmp_path, {"customers.csv": customers, "interactions.csv": events}))
    assert result.quarantined_rows == 0
    assert list(result.tables["customers"]["customer_id"]) == ["c5", "c6"]
    assert UNKNOWN_CUSTOMER not in result.report["interactions"].by_reason
    assert result.report["customers"].normalised == {"trimmed(customer_id)": 1}
    assert result.report["interactions"].normalised == {"trimmed(customer_id)": 1}


def test_a_duplicate_after_trimming_is_a_duplicate(tmp_path: Path):
    customers = "customer_id,signup_date,monthly_revenue\nc5,2024-01-01,10\n c5,2024-01-01,10\n"
    result = validate(folder(tmp_path, {"customers.csv": customers}))
    assert result.report["customers"].by_reason == {"duplicate_customer_id": 2}


# --- headers -------------------------------------------------------------------------------------------
def test_headers_are_trimmed_and_case_folded_with_a_note(tmp_path: Path):
    feedback = "Customer_ID, timestamp ,survey,score, callback_requested\nc1,2024-02-01,NPS,9,yes\n"
    result = validate(folder(tmp_path, {"customers.csv": CUSTOMERS, "feedback.csv": feedback}))
    kept = result.tables["feedback"]
    assert list(kept.columns) == ["customer_id", "timestamp", "survey", "score", "callback_requested"]
    assert bool(kept["callback_requested"][0]) is True
    assert sum("feedback.csv" in n for n in result.notes) == 3


@pytest.mark.parametrize(
    "header, match",
    [
        (
            "customer_id,signup_date,monthly_revenue,monthly_revenue",
            r"customers\.csv: column 'monthly_revenue' appears twice in the header \(columns 3 and 4\)",
        ),
        (
            "customer_id,signup_date,monthly_revenue,Monthly_Revenue",
            r"customers\.csv: columns 'Monthly_Revenue' and 'monthly_revenue' both name",
        ),
        ("customer_id,signup_date,monthly_revenue , monthly_revenue", r"column 'monthly_revenue' appears twice"),
    ],
)
def test_duplicate_headers_are_refused_by_name(tmp_path: Path, header, match):
    with pytest.raises(UserError, match=match):
        validate(folder(tmp_path, {"customers.csv": header + "\nc1,2024-01-01,10,11\n"}))


def test_delimiter_hint(tmp_path: Path):
    with pytest.raises(ContractError, match="semicolon-separated"):
        validate(folder(tmp_path, {"customers.csv": "customer_id;signup_date;monthly_revenue\nc1;2024-01-01;10\n"}))
    with pytest.raises(ContractError, match="tab-separated"):
        validate(
            folder(
                tmp_path, {"customers.csv": "customer_id\tsignup_date\tmonthly_revenue\nc1\t2024-01-01\t10\n"}, "tabs"
            )
        )


# --- files -----------------------------------------------------------------------------------------------
def test_file_names_in_another_case_are_read_with_a_note(tmp_path: Path):
    events = "customer_id,timestamp,channel,type\nc1,2024-02-01,email,open\n"
    result = validate(folder(tmp_path, {"Customers.CSV": CUSTOMERS, "Interactions.csv": events, "readme.txt": "hello"}))
    assert set(result.tables) == {"customers", "interactions"}
    assert len(result.tables["interactions"]) == 1
    assert result.ignored_files == ("readme.txt",)
    report = result.to_dict()
    assert report["ignored_files"] == ["readme.txt"] and any("Interactions.csv" in n for n in report["notes"])


@pytest.mark.parametrize(
    "name", ["interaction.csv", "churn_event.csv", "retention-actions.csv", "Feedbacks.csv", "customers.xlsx"]
)
def test_near_miss_file_names_are_refused_by_name(tmp_path: Path, name):
    files = {"customers.csv": CUSTOMERS, name: "x\n"} if name != "customers.xlsx" else {name: "x"}
    with pytest.raises(ContractError, match=rf"{name}: not a contract table name, but close to the missing table"):
        validate(folder(tmp_path, files))


def test_two_files_for_one_table_are_refused(tmp_path: Path):
    with pytest.raises(ContractError, match="keep one"):
        validate(folder(tmp_path, {"customers.csv": CUSTOMERS, "CUSTOMERS.csv": CUSTOMERS}))


# --- encodings ----------------------------------------------------------------------------------------
def test_undecodable_byte_is_refused_naming_file_and_line(tmp_path: Path):
    text = (
        CUSTOMERS.replace("monthly_revenue\n", "monthly_revenue,city\n").replace("10\n", "10,Berlin\n", 1)
        + "c4,2024-01-04,10,M\xfcnchen\n"
    ).encode("latin-1")
    data = folder(tmp_path, {"customers.csv": text})
    with pytest.raises(ContractError, match=r"customers\.csv: line 5 is not valid utf-8 \(byte 0xfc"):
        validate(data)
    result = validate(data, encoding="latin-1")
    assert result.tables["customers"]["city"].iloc[-1] == "München"


def test_utf8_with_bom_and_crlf(tmp_path: Path):
    text = "\ufeff" + CUSTOMERS.replace("\n", "\r\n")
    result = validate(folder(tmp_path, {"customers.csv": text.encode("utf-8")}))
    assert list(result.tables["customers"]["customer_id"]) == ["c1", "c2", "c3"]


# --- the engines agree; the command exits 2 on every refusal -----------------------------------------------------
def hostile(tmp_path: Path) -> Path:
    customers = (
        "customer_id, signup_date ,Monthly_Revenue,plan,\n"
        + "".join(f"c{i},2024-01-{i % 28 + 1:02d},{10 + i},{'basic' if i % 2 else 'NULL'},\n" for i in range(40))
        + " c40 ,2024-01-01,inf,basic,\nc41,2024-01-01,10\n"
    )
    events = "customer_id,timestamp,channel,type,value\n" + "".join(
        f"c{i % 42},2024-02-{i % 28 + 1:02d}T10:00:00{['', 'Z', '+02:00'][i % 3]},"
        f"{'NULL' if i % 17 == 0 else 'email'},open,{'inf' if i % 23 == 0 else i}\n"
        for i in range(300)
    )
    return folder(tmp_path, {"customers.csv": customers, "Interactions.csv": events, "notes.md": "x"}, "hostile")


def test_partitioned_engine_reads_hostile_extracts_as_the_in_memory_one(tmp_path: Path):
    data = hostile(tmp_path)
    whole = validate(data)
    parts = validate_partitioned(data, tmp_path / "out", END, 3)
    balanced(whole)
    for name, r in whole.report.items():
        p = parts.report[name]
        assert (r.rows_read, r.rows_kept, r.by_reason, r.normalised) == (
            p.rows_read,
            p.rows_kept,
            p.by_reason,
            p.normalised,
        ), name
    assert parts.notes == whole.notes and parts.ignored_files == whole.ignored_files
    for name, frame in whole.tables.items():
        written = pd.read_parquet(tmp_path / "out" / "tables" / f"{name}.parquet")
        key = list(frame.columns[:2])
        pd.testing.assert_frame_equal(
            written[frame.columns].sort_values(key).reset_index(drop=True),
            frame.sort_values(key).reset_index(drop=True),
            check_dtype=False,
        )
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["tables"]["customers"]["by_reason"] == whole.report["customers"].by_reason


@pytest.mark.parametrize(
    "files",
    [
        {"customers.csv": "customer_id;signup_date;monthly_revenue\nc1;2024-01-01;10\n"},
        {"customers.csv": "customer_id,signup_date,monthly_revenue,monthly_revenue\nc1,2024-01-01,10,1\n"},
        {"customers.csv": CUSTOMERS, "interaction.csv": "x\n"},
        {"customers.csv": "customer_id,signup_date,monthly_revenue\nc1,2024-01-01,caf\xe9\n".encode("latin-1")},
        {"customers.csv": ""},
        {"customers.csv": "customer_id,signup_date,monthly_revenue\nc1,2024-01-01,free\n"},
    ],
    ids=["semicolons", "duplicate-header", "near-miss-name", "latin-1", "empty-file", "no-readable-number"],
)
def test_refusals_exit_2_with_one_line(tmp_path: Path, capsys, files):
    data = folder(tmp_path, files)
    assert main(["validate", "--data", str(data), "--out", str(tmp_path / "out"), "--end-date", "2024-06-30"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("churn validate: error: ") and "unexpected" not in err[-1]


@pytest.mark.parametrize("partitions", ["1", "2"])
def test_snapshot_reads_with_the_input_options(tmp_path: Path, partitions):
    """``--encoding`` and ``--timezone`` reach every engine's reader (train and score take them from ``input:``)."""
    customers = "customer_id,signup_date,monthly_revenue,city\n" + "".join(
        f"c{i},2024-01-0{i + 1},10,M\xfcnchen\n" for i in range(4)
    )
    events = "customer_id,timestamp,channel,type,value\n" + "".join(
        f"c{i},2024-03-31T23:30:00,email,open,1\n" for i in range(4)
    )
    data = folder(tmp_path, {"customers.csv": customers.encode("latin-1"), "interactions.csv": events})
    out = tmp_path / "snap.parquet"
    args = [
        "snapshot",
        "--data",
        str(data),
        "--as-of",
        "2024-04-01",
        "--out",
        str(out),
        "--end-date",
        "2024-06-30",
        "--partitions",
        partitions,
    ]
    assert main(args) == 2  # not UTF-8
    assert main([*args, "--encoding", "latin-1", "--timezone", "Europe/Berlin"]) == 0
    snap = pd.read_parquet(out)
    assert set(snap["city"]) == {"München"}
    # 23:30 in Berlin is 21:30 UTC on 31 March (summer time): 2.5 hours before T, not the 0.5 a UTC reading gives
    assert np.allclose(snap["days_since_last_interaction"], 2.5 / 24)
