"""Values as a careful analyst reads them (red-team pass): float ids, numeric booleans, time zones without a colon,
dates without a day, codes with leading zeros, huge numbers, bookkeeping column names fed back, MySQL's \\N, invisible
characters, and headers in camelCase or with a zero-width space. Each is read as documented, or refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.contract import DUPLICATE_CUSTOMER, TOO_LARGE, UNPARSEABLE, ContractError
from pipelines.io.files import validate_folder
from pipelines.io.normalise import HeaderError, parse_timestamps
from tests.builders import extract_folder as folder

END = pd.Timestamp("2024-06-30")
CUSTOMERS = "customer_id,signup_date,monthly_revenue\nc1,2024-01-01,10\nc2,2024-01-02,12\nc3,2024-01-03,14\n"


def validate(data: Path, **kwargs):
    result = validate_folder(data, END, None, **kwargs)
    for name, r in result.report.items():
        assert r.rows_read == r.rows_kept + r.rows_quarantined == r.rows_kept + len(result.quarantine[name]), name
    return result


def dates(*days: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(days)), dtype="datetime64[us]")


# --- 1. parquet ids stored as float, numeric booleans --------------------------------------------
@pytest.mark.parametrize("float_table", ["customers", "interactions"])
def test_float_ids_read_as_the_integers_they_are(tmp_path: Path, float_table):
    int_ids, float_ids = [101, 102, 103], [101.0, 102.0, np.nan]  # pandas writes an int column with a null as float64
    customers = pd.DataFrame(
        {
            "customer_id": float_ids if float_table == "customers" else int_ids,
            "signup_date": dates("2024-01-01", "2024-01-02", "2024-01-03"),
            "monthly_revenue": [10.0, 12.0, 14.0],
        }
    )
    events = pd.DataFrame(
        {
            "customer_id": float_ids if float_table == "interactions" else [101, 102, 102],
            "timestamp": dates(*["2024-02-01"] * 3),
            "channel": "web",
            "type": list("abc"),
        }
    )
    result = validate(folder(tmp_path, {"customers.parquet": customers, "interactions.parquet": events}))
    assert (
        list(result.tables["customers"]["customer_id"])
        == ["101", "102", "103"][: 2 if float_table == "customers" else 3]
    )
    assert set(result.tables["interactions"]["customer_id"]) == {"101", "102"}
    assert "unknown_customer" not in result.report["interactions"].by_reason
    assert result.report[float_table].normalised == {"float_to_text(customer_id)": 2}


def test_a_float_id_with_a_fraction_is_kept_as_written():
    from pipelines.io.normalise import normalise_text

    values, changes = normalise_text(pd.Series([7.0, 7.5, np.nan, -0.0]), "location_id")
    assert list(values[[0, 1, 3]]) == ["7", "7.5", "0"] and pd.isna(values[2])
    assert list(changes["float_to_text(location_id)"]) == [True, False, False, True]


def test_numeric_callback_requested_reads_one_and_zero(tmp_path: Path):
    feedback = pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3", "c1"],
            "timestamp": dates(*["2024-02-01"] * 4),
            "survey": "NPS",
            "score": [9, 3, 5, 7],
            "callback_requested": [1.0, 0.0, np.nan, 2.0],
        }
    )
    result = validate(folder(tmp_path, {"customers.csv": CUSTOMERS, "feedback.parquet": feedback}))
    assert list(result.tables["feedback"]["callback_requested"].astype(object).fillna("NA")) == [True, False, "NA"]
    assert list(result.quarantine["feedback"]["_detail"]) == [f"{UNPARSEABLE}(callback_requested)"]


# --- 2. naive timestamps and --timezone ------------------------------------------------------------------
def test_a_time_without_a_colon_is_a_time_in_the_configured_zone():
    raw = pd.Series(
        [
            "2024-02-01T10:00:00",
            "2024-02-01T10",
            "20240201T100000",
            "2024-02-01T1000",
            "2024-02-01 10:00:00",
            "2024-02-01",
            "20240201",
        ]
    )
    out = parse_timestamps(raw, "Europe/Berlin")  # CET is UTC+1 in February
    assert (out[:5] == pd.Timestamp("2024-02-01 09:00")).all()
    assert (out[5:] == pd.Timestamp("2024-02-01")).all()  # dates stay dates


def test_naive_datetimes_are_timestamps_when_the_column_has_a_time_of_day():
    mixed = parse_timestamps(pd.Series(pd.to_datetime(["2024-07-01 12:00", "2024-07-01 00:00", None])), "Europe/Berlin")
    assert list(mixed[:2]) == [
        pd.Timestamp("2024-07-01 10:00"),
        pd.Timestamp("2024-06-30 22:00"),
    ]  # midnight is shifted too
    assert pd.isna(mixed[2])
    midnights = parse_timestamps(pd.Series(pd.to_datetime(["2024-07-01", "2024-07-02"])), "Europe/Berlin")
    assert list(midnights) == [pd.Timestamp("2024-07-01"), pd.Timestamp("2024-07-02")]  # a date column stays


# --- 3. dates need a day -------------------------------------------------------------------------------------
def test_a_year_or_a_month_is_not_a_date(tmp_path: Path):
    customers = (
        "customer_id,signup_date,monthly_revenue\n"
        "c1,2023,10\nc2,2024-02,10\nc3,202402,10\nc4,20240103,10\nc5,2024/01/03,10\nc6,2024-1-3,10\nc7,2024-01-03T08:00,10\n"
    )
    result = validate(folder(tmp_path, {"customers.csv": customers}))
    q = result.quarantine["customers"]
    assert list(q["customer_id"]) == ["c1", "c2", "c3"]
    assert set(q["_detail"]) == {f"{UNPARSEABLE}(signup_date)"}
    kept = result.tables["customers"]
    assert list(kept["signup_date"][:3]) == [pd.Timestamp("2024-01-03")] * 3


def test_a_date_attribute_needs_a_day_too(tmp_path: Path):
    customers = "customer_id,signup_date,monthly_revenue,since\n" + "".join(
        f"c{i},2024-01-01,10,{'2020-0' + str(i % 9 + 1)}\n" for i in range(5)
    )
    result = validate(folder(tmp_path, {"customers.csv": customers}))
    assert result.attribute_types["since"] == "category"


# --- 4. codes with leading zeros -------------------------------------------------------------------------
def test_attribute_numbers_with_leading_zeros_are_codes(tmp_path: Path):
    customers = (
        "customer_id,signup_date,monthly_revenue,zip,phone,share\nc1,2024-01-01,10,01234,0049301234,0\n"
        "c2,2024-01-02,12,02134,0049302222,0.5\nc3,2024-01-03,14,10115,0049303333,0.25\n"
    )
    result = validate(folder(tmp_path, {"customers.csv": customers}))
    assert result.attribute_types == {"zip": "category", "phone": "category", "share": "number"}
    assert list(result.tables["customers"]["zip"]) == ["01234", "02134", "10115"]
    assert any("'zip'" in n and "'01234'" in n and "leading zero" in n for n in result.notes)
    assert not any("'share'" in n for n in result.notes)


def test_unique_codes_with_leading_zeros_are_identifiers(tmp_path: Path):
    # small and not consecutive: as numbers this would be a number column
    customers = "customer_id,signup_date,monthly_revenue,account\n" + "".join(
        f"c{i},2024-01-01,10,{i * 7:05d}\n" for i in range(30)
    )
    result = validate(folder(tmp_path, {"customers.csv": customers}))
    assert result.attribute_types["account"] == "identifier"
    assert result.tables["customers"]["account"][3] == "00021"


# --- 5. huge numbers, -0 --------------------------------------------------------------------------------------
def test_numbers_too_large_for_an_amount_are_quarantined(tmp_path: Path):
    customers = (
        "customer_id,signup_date,monthly_revenue,balance\n"
        + "".join(f"c{i},2024-01-01,10,{i}.5\n" for i in range(30))
        + "big1,2024-01-01,1e308,1\nbig2,2024-01-01,-0,1e20\nok,2024-01-01,1e15,-1e15\n"
    )
    events = (
        "customer_id,timestamp,channel,type,value\nc1,2024-02-01,web,a,1.7e308\nc1,2024-02-02,web,b,-2e16\n"
        "c1,2024-02-03,web,c,-0\n"
    )
    result = validate(folder(tmp_path, {"customers.csv": customers, "interactions.csv": events}))
    assert result.attribute_types["balance"] == "number"
    q = result.quarantine["customers"].set_index("customer_id")["_detail"]
    assert dict(q) == {"big1": f"{TOO_LARGE}(monthly_revenue)", "big2": f"{TOO_LARGE}(balance)"}
    assert result.report["interactions"].by_reason == {TOO_LARGE: 2}
    kept = result.tables["customers"].set_index("customer_id")
    assert (
        kept.loc["ok", "monthly_revenue"] == 1e15 and kept.loc["ok", "balance"] == -1e15
    )  # the bound itself is a number
    zero = result.tables["interactions"]["value"].iloc[0]
    assert zero == 0.0 and not np.signbit(zero)  # -0 is 0


def test_too_large_in_parquet_numbers_too(tmp_path: Path):
    customers = pd.DataFrame(
        {
            "customer_id": ["c1", "c2"],
            "signup_date": dates("2024-01-01", "2024-01-01"),
            "monthly_revenue": [1e300, -0.0],
        }
    )
    result = validate(folder(tmp_path, {"customers.parquet": customers}))
    assert result.report["customers"].by_reason == {TOO_LARGE: 1}
    assert not np.signbit(result.tables["customers"]["monthly_revenue"]).any()


# --- 6. the pipeline's own column names --------------------------------------------------------------------------
@pytest.mark.parametrize("column", ["_source_row", "_reason", "_detail", "_raw_line", "_malformed"])
def test_bookkeeping_column_names_are_refused_by_name(tmp_path: Path, capsys, column):
    events = f"customer_id,timestamp,channel,type,{column}\nc1,2024-02-01,web,a,x\nc2,2024-02-02,web,b,\n"
    data = folder(tmp_path, {"customers.csv": CUSTOMERS, "interactions.csv": events})
    with pytest.raises(
        HeaderError,
        match=rf"interactions\.csv: column '{column}' \(column 5\) is the pipeline's own bookkeeping "
        r"column.*quarantine file fed back",
    ):
        validate(data)
    assert main(["validate", "--data", str(data), "--out", str(tmp_path / "out"), "--end-date", "2024-06-30"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("churn validate: error: ") and "bookkeeping" in err[-1]


def test_a_quarantine_file_fed_back_is_refused(tmp_path: Path):
    customers = pd.DataFrame(
        {
            "_source_row": [4],
            "customer_id": ["c1"],
            "signup_date": dates("2024-01-01"),
            "monthly_revenue": [-1.0],
            "_reason": ["negative_monthly_revenue"],
            "_detail": ["x"],
        }
    )
    with pytest.raises(HeaderError, match="_source_row"):
        validate(folder(tmp_path, {"customers.parquet": customers}))


def test_rows_of_the_wrong_width_still_get_the_readers_columns(tmp_path: Path):
    events = "customer_id,timestamp,channel,type\nc1,2024-02-01,web,a\nc1,2024-02-02,web\n"
    result = validate(folder(tmp_path, {"customers.csv": CUSTOMERS, "interactions.csv": events}))
    assert list(result.quarantine["interactions"]["_raw_line"]) == ["c1,2024-02-02,web"]


# --- 7. \N, invisible characters, Unicode forms ----------------------------------------------------------------------
def test_mysql_null_is_a_missing_value(tmp_path: Path):
    customers = (
        "customer_id,signup_date,monthly_revenue,location_id,plan\nc1,2024-01-01,10,\\N,gold\nc2,2024-01-02,12,L1,\\N\n"
        "\\N,2024-01-03,14,L2,basic\n"
    )
    result = validate(folder(tmp_path, {"customers.csv": customers}))
    kept = result.tables["customers"]
    assert kept["location_id"].isna().tolist() == [True, False] and kept["plan"].isna().tolist() == [False, True]
    assert result.report["customers"].by_reason == {"missing_required_value": 1}
    assert result.report["customers"].normalised["null_token(location_id)"] == 1


def test_invisible_characters_and_unicode_forms_in_ids(tmp_path: Path):
    customers = (
        "customer_id,signup_date,monthly_revenue,location_id\n"
        "c1\u200b,2024-01-01,10,L1\nc1,2024-01-02,12,L1\n\ufeffc3,2024-01-03,14,L\u20602\nJos\u00e9,2024-01-03,14,L1\nc5\x00,2024-01-03,14,L1\n"
    )
    events = (
        "customer_id,timestamp,channel,type\n"
        "c3,2024-02-01,web,a\nJose\u0301,2024-02-01,web,b\nc5,2024-02-01,w\u200beb,c\n"
    )
    feedback = "customer_id,timestamp,survey,score,comment\nc3,2024-02-01,NPS,9,\u200bso\u200b-so \u00e9\n"
    result = validate(
        folder(tmp_path, {"customers.csv": customers, "interactions.csv": events, "feedback.csv": feedback})
    )
    assert result.report["customers"].by_reason == {DUPLICATE_CUSTOMER: 2}  # c1 with a zero-width space is c1
    assert list(result.tables["customers"]["customer_id"]) == ["c3", "Jos\u00e9", "c5"]
    assert list(result.tables["customers"]["location_id"]) == ["L2", "L1", "L1"]
    assert result.report["customers"].normalised == {"invisible(customer_id)": 3, "invisible(location_id)": 1}
    kept = result.tables["interactions"]
    assert list(kept["customer_id"]) == ["c3", "Jos\u00e9", "c5"] and list(kept["channel"]) == ["web"] * 3
    assert result.report["interactions"].normalised == {"unicode_nfc(customer_id)": 1, "invisible(channel)": 1}
    assert result.tables["feedback"]["comment"][0] == "\u200bso\u200b-so \u00e9"  # free text keeps its characters


# --- 8. headers -------------------------------------------------------------------------------------------------------
def test_a_zero_width_space_in_a_header_name_is_removed_with_a_note(tmp_path: Path):
    result = validate(
        folder(tmp_path, {"customers.csv": "customer_id\u200b,signup_date,monthly_revenue\nc1,2024-01-01,10\n"})
    )
    assert list(result.tables["customers"]["customer_id"]) == ["c1"]
    assert any("'customer_id\\u200b' read as 'customer_id'" in n and "U+200B" in n for n in result.notes)


@pytest.mark.parametrize(
    "header",
    [
        "customerID,SignupDate,MonthlyRevenue",
        "CustomerId,signupdate,monthly-revenue",
        "Customer Id,SIGNUP_DATE,monthly revenue",
    ],
)
def test_camel_case_and_unseparated_names_are_contract_columns(tmp_path: Path, header):
    result = validate(folder(tmp_path, {"customers.csv": f"{header}\nc1,2024-01-01,10\n"}))
    assert list(result.tables["customers"].columns[:3]) == ["customer_id", "signup_date", "monthly_revenue"]
    assert sum("read as the contract column" in n for n in result.notes) == 3


def test_two_spellings_of_one_contract_column_are_refused(tmp_path: Path):
    with pytest.raises(HeaderError, match="'customerID' and 'customer_id' both name the contract column 'customer_id'"):
        validate(
            folder(
                tmp_path, {"customers.csv": "customerID,customer_id,signup_date,monthly_revenue\nc1,c1,2024-01-01,10\n"}
            )
        )


def test_a_missing_column_error_shows_the_header_read(tmp_path: Path):
    with pytest.raises(
        ContractError,
        match=r"missing required column\(s\) \['monthly_revenue'\].*the header read has \['customer_id', "
        r"'signup_date', 'MonthlyCharges'\]",
    ):
        validate(folder(tmp_path, {"customers.csv": "customer_id,signup_date,MonthlyCharges\nc1,2024-01-01,10\n"}))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_partitions_bucket_each_id_as_validation_reads_it(tmp_path: Path, fmt):
    """Spellings of one id (spaces, a zero-width space, a decomposed accent, a float) meet in one bucket, as in
    memory."""
    from pipelines.engines.partitioned import validate_partitioned

    ids = [f"c{i}" for i in range(40)] + ["Jos\u00e9", "101"]
    customers = pd.DataFrame({"customer_id": ids, "signup_date": "2024-01-01", "monthly_revenue": "10"})
    spelled = [f" c{i} " if i % 3 == 0 else f"c{i}\u200b" if i % 3 == 1 else f"c{i}" for i in range(40)] + [
        "Jose\u0301",
        "101",
    ]
    events = pd.DataFrame(
        {
            "customer_id": spelled * 2,
            "timestamp": ["2024-02-01T10:00:00"] * 42 + ["2024-02-02T10:00:00"] * 42,
            "channel": "email",
            "type": "a",
        }
    )
    if fmt == "csv":
        files = {"customers.csv": customers.to_csv(index=False), "interactions.csv": events.to_csv(index=False)}
    else:  # an id column with a null, as pandas writes it: floats
        churn = pd.DataFrame({"customer_id": pd.Series([101.0, np.nan]), "churn_date": ["2024-03-01", "2024-03-02"]})
        files = {
            "customers.csv": customers.to_csv(index=False),
            "interactions.parquet": events,
            "churn_events.parquet": churn,
        }
    data = folder(tmp_path, files)
    whole = validate(data)
    assert whole.report["interactions"].rows_kept == len(events)  # every spelling found its customer
    if fmt == "parquet":
        assert whole.report["churn_events"].rows_kept == 1 and whole.tables["churn_events"]["customer_id"].tolist() == [
            "101"
        ]
    for buckets in (2, 5):
        parts = validate_partitioned(data, tmp_path / f"out{buckets}", END, buckets)
        for name, r in whole.report.items():
            p = parts.report[name]
            assert (r.rows_read, r.rows_kept, r.by_reason, r.normalised) == (
                p.rows_read,
                p.rows_kept,
                p.by_reason,
                p.normalised,
            ), name


ATTRS = "customer_id,signup_date,monthly_revenue,plan,age\nc1,2024-01-01,10,gold,31\nc2,2024-01-02,12,basic,45\n"


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("PLAN=exclude", "has no attribute column 'PLAN'; did you mean 'plan'?"),
        ("nosuch=number", "has no attribute column 'nosuch' (its attribute columns: plan, age)"),
        ("monthly_revenue=category", "'monthly_revenue' is a contract column"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "snapshot"])
def test_a_type_for_a_column_that_is_no_attribute_is_refused(tmp_path: Path, capsys, flag, message, command):
    """A typo in ``--attribute`` would leave the column typed as inferred (an exclusion unmade), silently."""
    data = folder(tmp_path, {"customers.csv": ATTRS})
    out = ["--out", str(tmp_path / ("out" if command == "validate" else "s.parquet"))]
    dates = ["--end-date", "2024-06-30"] + (["--as-of", "2024-03-01"] if command == "snapshot" else [])
    assert main([command, "--data", str(data), *out, *dates, "--attribute", flag]) == 2
    assert message in capsys.readouterr().err


def test_a_given_type_no_value_reads_as_is_a_structural_error(tmp_path: Path):
    data = folder(tmp_path, {"customers.csv": ATTRS})
    with pytest.raises(
        ContractError, match="column 'plan' has no value that can be read as number .* first value is 'gold'"
    ):
        validate_folder(data, END, {"plan": "number"})
    assert validate_folder(data, END, {"age": "number"}).attribute_types["age"] == "number"


def test_codes_of_closed_sets_excel_text_and_attribute_codes_are_read_as_meant(tmp_path: Path):
    customers = (
        "customer_id,signup_date,monthly_revenue,plan\n"
        '"=""00123""",2024-01-01,10,gold\nc2,2024-01-02,12,\u200fgold\nc3,2024-01-03,14,Jose\u0301\n'
    )
    actions = "customer_id,action_date,group\n00123,2024-02-01,Treatment\nc2,2024-02-01, CONTROL \nc3,2024-02-01,ctrl\n"
    feedback = "customer_id,timestamp,survey,score\nc2,2024-02-01,nps,9\nc3,2024-02-01,Csat,4\n"
    result = validate(
        folder(tmp_path, {"customers.csv": customers, "retention_actions.csv": actions, "feedback.csv": feedback})
    )
    assert result.tables["customers"]["customer_id"].tolist() == ["00123", "c2", "c3"]
    assert result.tables["customers"]["plan"].tolist() == ["gold", "gold", "Jos\u00e9"]
    assert result.tables["retention_actions"]["group"].tolist() == ["treatment", "control"]
    assert result.report["retention_actions"].by_reason == {"unknown_group": 1}  # 'ctrl' is not guessed
    assert result.tables["feedback"]["survey"].tolist() == ["NPS", "CSAT"]
    assert result.report["customers"].normalised == {
        "excel_text(customer_id)": 1,
        "invisible(plan)": 1,
        "unicode_nfc(plan)": 1,
    }
    assert result.report["retention_actions"].normalised["case(group)"] == 2


def test_a_value_that_is_a_null_token_once_cleaned_is_missing(tmp_path: Path):
    customers = CUSTOMERS + 'NULL\u200b,2024-01-04,10\n"=""""",2024-01-05,10\n\u2060,2024-01-06,10\n'
    result = validate(folder(tmp_path, {"customers.csv": customers}))
    assert result.report["customers"].by_reason == {"missing_required_value": 3}
    assert result.report["customers"].normalised["null_token(customer_id)"] == 3


def test_long_digit_codes_are_codes_and_amounts_in_exponent_form_are_numbers(tmp_path: Path):
    customers = "customer_id,signup_date,monthly_revenue,card,balance\n" + "".join(
        f"c{i},2024-01-01,10,{4000123412341234 + (i % 3)},{i}e3\n" for i in range(30)
    )
    result = validate(folder(tmp_path, {"customers.csv": customers}))
    assert result.attribute_types == {"card": "category", "balance": "number"}
    assert result.tables["customers"]["card"][0] == "4000123412341234"
    assert any("'card'" in n and "16 or more digits" in n for n in result.notes)


def test_date_attributes_follow_the_configured_zone_and_joiners_stay(tmp_path: Path):
    customers = (
        "customer_id,signup_date,monthly_revenue,joined_at,name\n"
        "c1,2024-01-01,10,2024-01-02T00:30:00,\u0645\u06cc\u200c\u0631\n"
    )
    result = validate(folder(tmp_path, {"customers.csv": customers}), timezone="Europe/Berlin")
    assert result.tables["customers"]["joined_at"][0] == pd.Timestamp(
        "2024-01-01 23:30"
    )  # as the contract's timestamps
    assert (
        result.tables["customers"]["name"][0] == "\u0645\u06cc\u200c\u0631"
    )  # a zero-width non-joiner is part of the word


def test_numbers_and_flags_behind_hidden_nulls_or_float_text(tmp_path: Path):
    events = 'customer_id,timestamp,channel,type,value\nc1,2024-02-01,web,a,\u200bnull\nc2,2024-02-01,web,b,=""\n'
    feedback = (
        "customer_id,timestamp,survey,score,callback_requested\nc1,2024-02-01,NPS,9,1.0\nc2,2024-02-01,NPS,3,0.0\n"
    )
    result = validate(
        folder(tmp_path, {"customers.csv": CUSTOMERS, "interactions.csv": events, "feedback.csv": feedback})
    )
    assert result.report["interactions"].rows_kept == 2 and result.tables["interactions"]["value"].isna().all()
    assert result.tables["feedback"]["callback_requested"].tolist() == [True, False]


def test_a_file_mixing_utf8_and_latin1_is_refused(tmp_path: Path):
    text = "customer_id,signup_date,monthly_revenue,city\n" + "".join(
        f"c{i},2024-01-01,10,Z\u00fcrich\n" for i in range(5)
    )
    data = folder(tmp_path, {"customers.csv": text.encode() + "c9,2024-01-01,10,Gen\u00e8ve\n".encode("latin-1")})
    with pytest.raises(ContractError, match=r"mixes encodings: some text is UTF-8 \('Z\u00fcrich'"):
        validate(data, encoding="latin-1")


def test_float_looking_csv_ids_are_kept_but_named(tmp_path: Path, caplog):
    customers = "customer_id,signup_date,monthly_revenue\n101,2024-01-01,10\n1.0,2024-01-01,10\n"
    churn = "customer_id,churn_date\n101.0,2024-03-01\n1.0,2024-03-01\n"
    result = validate(folder(tmp_path, {"customers.csv": customers, "churn_events.csv": churn}))
    assert result.tables["churn_events"]["customer_id"].tolist() == ["1.0"]  # an id of its own
    assert result.report["churn_events"].by_reason == {"unknown_customer": 1}
    assert "ids such as '101.0' that are customer ids written as floats" in caplog.text


def test_partitions_decide_timestamps_on_the_whole_column(tmp_path: Path):
    """A bucket whose values are all at midnight still holds timestamps when the column has times elsewhere."""
    from pipelines.engines.partitioned import validate_partitioned

    ids = [f"c{i}" for i in range(12)]
    customers = pd.DataFrame({"customer_id": ids, "signup_date": "2024-01-01", "monthly_revenue": "10"})
    stamps = [pd.Timestamp("2024-03-01 09:30")] + [pd.Timestamp("2024-03-01")] * 11  # one time of day, then midnights
    events = pd.DataFrame(
        {"customer_id": ids, "timestamp": pd.Series(stamps, dtype="datetime64[us]"), "channel": "web", "type": "a"}
    )
    data = folder(tmp_path, {"customers.csv": customers.to_csv(index=False), "interactions.parquet": events})
    whole = validate_folder(data, END, None, timezone="America/New_York")
    expected = whole.tables["interactions"].set_index("customer_id")["timestamp"]
    assert (expected.drop("c0") == pd.Timestamp("2024-03-01 05:00")).all()  # midnight in New York, as UTC
    validate_partitioned(data, tmp_path / "out", END, 6, timezone="America/New_York")
    got = pd.read_parquet(tmp_path / "out" / "tables" / "interactions.parquet").set_index("customer_id")["timestamp"]
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_dtype=False)
