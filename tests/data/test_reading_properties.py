"""Property tests: CSV text with warehouse quirks is always accounted for, read as documented, and never crashes the
run.

Hypothesis writes customers and interactions files with stray spaces around
ids and headers, header names in other cases, null tokens, infinite and
unreadable numbers, mixed time-zone designators, trailing commas, rows a field
short or long, quoted delimiters and newlines, CRLF line ends and a byte-order
mark, and runs ``churn validate`` on them. For every table, read = kept +
quarantined; every kept row equals its input after the documented
normalisation; and the command exits 0, or 2 where a column holds nothing
readable at all (never 3).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.cli import main

NULLS = ["", "NULL", "null", "N/A", "NA", "NaN", "None", "#N/A", " none "]
OFFSETS = {"": 0, "Z": 0, "+02:00": 2, "-0500": -5, " UTC": 0}

spaces = st.sampled_from(["", " ", "  ", "\t"])
header_case = st.sampled_from([str.lower, str.upper, str.title])


@st.composite
def customer_row(draw, i: int) -> dict:
    revenue = draw(
        st.one_of(
            st.integers(0, 500).map(str), st.sampled_from(["inf", "-Infinity", "1e309", "abc", *NULLS]), st.just("12.5")
        )
    )
    return {
        "id": f"c{i}",
        "pad": (draw(spaces), draw(spaces)),
        "signup": draw(st.sampled_from(["2024-01-01", "2024-01-15T08:00:00Z", "2024-02-01", "not a date", "NULL"])),
        "revenue": revenue,
        "shape": draw(st.sampled_from(["ok", "ok", "ok", "trailing", "short", "long"])),
    }


@st.composite
def event_row(draw, j: int, ids: int) -> dict:
    return {
        "id": f"c{draw(st.integers(0, ids + 2))}",  # a few ids no customer has
        "pad": (draw(spaces), draw(spaces)),
        "day": draw(st.integers(1, 28)),
        "hour": draw(st.integers(0, 23)),
        "designator": draw(st.sampled_from(list(OFFSETS))),
        "channel": draw(st.sampled_from(["email", " web ", "phone, mobile", "multi\nline", *NULLS[:4]])),
        "type": f"t{j}",  # unique: finds each kept row's input
        "value": draw(st.sampled_from(["1", "2.5", "-3", "inf", "Infinity", "", "NULL", "x"])),
        "shape": draw(st.sampled_from(["ok", "ok", "ok", "ok", "trailing", "short", "long"])),
    }


def csv_line(fields: list[str], shape: str) -> list[str]:
    if shape == "trailing":
        return [*fields, "", ""]
    if shape == "short":
        return fields[:-1]
    if shape == "long":
        return [*fields, "surplus"]
    return fields


def write_csv(path: Path, header: list[str], rows: list[list[str]], crlf: bool, bom: bool) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(("\ufeff" if bom else "").encode() + buffer.getvalue().encode())


def is_null(text: str) -> bool:
    return text.strip().lower() in {"", "null", "n/a", "na", "nan", "none", "#n/a"}


def expected_event(row: dict) -> dict:
    hours = row["hour"] - OFFSETS[row["designator"]]
    return {
        "customer_id": row["id"],
        "timestamp": pd.Timestamp(f"2024-03-{row['day']:02d}") + pd.Timedelta(hours=hours),
        "channel": row["channel"].strip(),
        "value": None if is_null(row["value"]) else float(row["value"]),
    }


def unreadable_everywhere(rows: list[dict], key: str, unreadable: set[str]) -> bool:
    """Every row is well-formed and holds a value in ``key`` that cannot be read: the contract refuses the column."""
    return bool(rows) and all(r["shape"] in ("ok", "trailing") and r[key] in unreadable for r in rows)


def structural(customers: list[dict], events: list[dict]) -> bool:
    return (
        unreadable_everywhere(customers, "revenue", {"abc"})
        or unreadable_everywhere(customers, "signup", {"not a date"})
        or unreadable_everywhere(events, "value", {"x"})
    )


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(data=st.data(), crlf=st.booleans(), bom=st.booleans(), case=header_case, pad=spaces)
def test_quirky_csv_is_accounted_for_and_read_as_documented(tmp_path_factory, data, crlf, bom, case, pad):
    n = data.draw(st.integers(1, 12), label="customers")
    customers = [data.draw(customer_row(i)) for i in range(n)]
    events = [data.draw(event_row(j, n)) for j in range(data.draw(st.integers(0, 30), label="events"))]
    folder = tmp_path_factory.mktemp("quirks")
    write_csv(
        folder / "customers.csv",
        [f"{pad}{case('customer_id')}", "signup_date", f"monthly_revenue{pad}"],
        [csv_line([f"{c['pad'][0]}{c['id']}{c['pad'][1]}", c["signup"], c["revenue"]], c["shape"]) for c in customers],
        crlf,
        bom,
    )
    write_csv(
        folder / "interactions.csv",
        ["customer_id", "timestamp", "channel", "type", "value"],
        [
            csv_line(
                [
                    f"{e['pad'][0]}{e['id']}{e['pad'][1]}",
                    f"2024-03-{e['day']:02d}T{e['hour']:02d}:00:00{e['designator']}",
                    e["channel"],
                    e["type"],
                    e["value"],
                ],
                e["shape"],
            )
            for e in events
        ],
        crlf,
        bom,
    )
    out = folder / "out"
    code = main(["validate", "--data", str(folder), "--out", str(out), "--end-date", "2024-06-30"])
    if structural(customers, events):
        assert code == 2 and not out.exists()  # a column nothing in can be read is refused by name, nothing written
        return
    assert code == 0

    report = json.loads((out / "report.json").read_text())["tables"]
    read = {"customers": len(customers), "interactions": len(events)}
    for name, counts in report.items():
        quarantined = pd.read_parquet(out / "quarantine" / f"{name}.parquet")
        kept = pd.read_parquet(out / "tables" / f"{name}.parquet")
        assert counts["rows_read"] == read[name] == len(kept) + len(quarantined), name
        assert counts["rows_quarantined"] == len(quarantined) and counts["rows_kept"] == len(kept), name
        assert sorted(quarantined["_source_row"]) == sorted(set(quarantined["_source_row"])), name

    kept_customers = pd.read_parquet(out / "tables" / "customers.parquet")
    good = {
        c["id"]
        for c in customers
        if c["shape"] in ("ok", "trailing")
        and c["signup"] in ("2024-01-01", "2024-01-15T08:00:00Z", "2024-02-01")
        and c["revenue"].replace(".", "").isdigit()
    }
    assert (
        set(kept_customers["customer_id"]) == good
    )  # ids trimmed; every row with a problem set aside, every good one kept

    kept_events = pd.read_parquet(out / "tables" / "interactions.parquet")
    by_type = {e["type"]: e for e in events}
    for row in kept_events.to_dict("records"):
        source = by_type[row["type"]]
        assert source["shape"] in ("ok", "trailing") and source["id"] in good
        expected = expected_event(source)
        assert row["customer_id"] == expected["customer_id"]
        assert row["timestamp"] == expected["timestamp"]
        assert row["channel"] == expected["channel"] and not is_null(row["channel"])
        assert row["value"] == expected["value"] or (pd.isna(row["value"]) and is_null(source["value"]))
    rejected = {
        e["type"]
        for e in events
        if e["shape"] in ("short", "long")
        or e["id"] not in good
        or is_null(e["channel"])
        or e["value"] in ("inf", "Infinity", "x")
    }
    assert not rejected & set(kept_events["type"])
