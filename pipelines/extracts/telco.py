"""Worked example: a static customer extract with a churn flag, converted into the contract.

IBM's Telco customer churn sample (``Telco-Customer-Churn.csv``, Apache-2.0;
7,043 customers of a fictional telecom over one quarter) has no dates at all:
one row per customer, ``tenure`` in months, ``Churn = Yes`` for customers who
left within the last month. Copy this module for your own extract; the mapping
is the whole of it:

=====================  ======================================================
contract               Telco column
=====================  ======================================================
customers.customer_id  ``customerID``
customers.signup_date  ``tenure`` months (and a day) before the as-of date T,
                       so every customer, tenure 0 included, is a customer at T
customers.monthly_     ``MonthlyCharges``
revenue
customers.<attribute>  every other column but ``tenure`` and ``Churn`` (typed
                       at validation: ``SeniorCitizen`` and ``TotalCharges``
                       numbers, ``Partner``/``Dependents``/... booleans, the
                       rest categories)
churn_events           one row per ``Churn = Yes``: a churn date inside the
                       month after T, spread over its days by customer id
=====================  ======================================================

The extract date E is when the file was taken; T = E - 30 days. Training
then uses one as-of date T, a 30-day horizon and ``end_date: E``
(``pipelines/conf/telco.yaml``): every customer without a churn event by E
has not churned. The label never becomes a feature: ``Churn`` is not copied
into ``customers``.

Run: ``python -m pipelines.extracts.telco --source Telco-Customer-Churn.csv --out data/telco``
(``make telco``), then ``churn train --config pipelines/conf/telco.yaml``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import pandas as pd

from pipelines.contract import ContractError

EXTRACT_DATE = pd.Timestamp("2024-07-01")
HORIZON_DAYS = 30
SOURCE_SHA256 = "16320c9c1ec72448db59aa0a26a0b95401046bef5d02fd3aeb906448e3055e91"
REQUIRED = ("customerID", "tenure", "MonthlyCharges", "Churn")


def to_contract(raw: pd.DataFrame, extract_date: pd.Timestamp = EXTRACT_DATE) -> dict[str, pd.DataFrame]:
    """The Telco table (all columns as text, as read from the CSV) as the contract's ``customers`` and
    ``churn_events``."""
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise ContractError(f"not the Telco customer table: missing column(s) {missing}")
    as_of = extract_date - pd.Timedelta(days=HORIZON_DAYS)
    tenure = pd.to_numeric(raw["tenure"], errors="raise").astype(int)
    signup = [as_of - pd.DateOffset(months=int(m)) - pd.Timedelta(days=1) for m in tenure]
    customers = pd.DataFrame(
        {
            "customer_id": raw["customerID"],
            "signup_date": [d.date().isoformat() for d in signup],
            "monthly_revenue": raw["MonthlyCharges"],
        }
    )
    attributes = raw.drop(columns=["customerID", "tenure", "MonthlyCharges", "Churn"])
    customers = pd.concat([customers, attributes], axis=1)
    churned = raw["Churn"].str.strip().str.lower() == "yes"
    offset = raw.loc[churned, "customerID"].map(
        lambda cid: int(hashlib.sha256(cid.encode()).hexdigest(), 16) % HORIZON_DAYS
    )
    churn_events = pd.DataFrame(
        {
            "customer_id": raw.loc[churned, "customerID"],
            "churn_date": [(as_of + pd.Timedelta(days=int(d))).date().isoformat() for d in offset],
        }
    )
    return {"customers": customers, "churn_events": churn_events.reset_index(drop=True)}


def convert(source: Path, out: Path, extract_date: pd.Timestamp = EXTRACT_DATE) -> dict[str, int]:
    """Read the Telco CSV, write ``customers.csv`` and ``churn_events.csv`` to ``out``; return the row counts."""
    raw = pd.read_csv(source, dtype=str, keep_default_na=False)
    tables = to_contract(raw, extract_date)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(out / f"{name}.csv", index=False)
    return {name: len(frame) for name, frame in tables.items()}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.extracts.telco", description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="Telco-Customer-Churn.csv")
    parser.add_argument(
        "--out", type=Path, default=Path("data/telco"), help="dataset folder to write (default data/telco)"
    )
    parser.add_argument(
        "--extract-date", type=pd.Timestamp, default=EXTRACT_DATE, help=f"E (default {EXTRACT_DATE.date()})"
    )
    args = parser.parse_args(argv)
    if not args.source.is_file():
        print(f"telco: error: {args.source} does not exist", file=sys.stderr)
        return 2
    if sha256(args.source) != SOURCE_SHA256:
        print(
            f"telco: warning: {args.source} is not the published file (sha256 differs); converting it anyway",
            file=sys.stderr,
        )
    counts = convert(args.source, args.out, args.extract_date)
    print(
        f"wrote {args.out}: {counts['customers']:,} customers, {counts['churn_events']:,} churn events; "
        f"train with one as-of date {(args.extract_date - pd.Timedelta(days=HORIZON_DAYS)).date()}, "
        f"horizon {HORIZON_DAYS} days, end date {args.extract_date.date()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
