"""The ``churn`` command: thin wrappers that parse, load config, call a stage and report.

Exit codes: 0 success; 1 the run finished but failed a gate (``--strict`` with
quarantined rows); 2 bad input or usage (one-line reason on stderr); 3 an
unexpected error (traceback logged).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import pandas as pd

log = logging.getLogger("churn")

EXIT_OK, EXIT_GATE, EXIT_INPUT, EXIT_BUG = 0, 1, 2, 3
DEFAULT_DATA = Path("data/synthetic")


class Fail(Exception):
    """A failure with a one-line reason and an exit code."""

    def __init__(self, message: str, code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.code = code


def _date(text: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(text).normalize()
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (expected YYYY-MM-DD)") from err


# --- subcommands ---------------------------------------------------------------------
def cmd_generate(args: argparse.Namespace) -> int:
    from pipelines.generate import write_synthetic
    from pipelines.synthetic import SyntheticConfig

    config = SyntheticConfig(customers=args.customers, months=args.months, seed=args.seed, end_date=args.end_date)
    truth = args.truth_out or args.out.with_name(args.out.name + "_truth")
    if truth.resolve() == args.out.resolve():
        raise Fail("--truth-out must differ from --out: the pipeline must never read the ground truth")
    log.info("generating %d customers over %d months (seed %d) into %s", config.customers, config.months, config.seed, args.out)
    summary = write_synthetic(config, args.out, truth, args.oracle_as_of, args.horizon_days)
    print(
        f"wrote {args.out} (ground truth in {truth})\n"
        f"  oracle ROC AUC at {summary['oracle_as_of']}, horizon {args.horizon_days}d: {summary['oracle_roc_auc']:.4f}\n"
        f"  active customers {summary['active_customers']:,}; label prevalence {summary['label_prevalence']:.3%}; "
        f"monthly churn {summary['monthly_churn_rate']:.3%}\n"
        f"  never answered a survey: {summary['share_never_answered_a_survey']:.1%}; "
        f"saved among treated who would churn: {summary['save_rate_among_treated_who_would_churn']:.1%}"
    )
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from pipelines.contract import validate_dataset
    from pipelines.io import read_dataset, write_validation

    raw, sources = read_dataset(args.data)
    result = validate_dataset(raw, sources, end_date=args.end_date)
    write_validation(result, args.out)
    print(result.to_text())
    print(f"wrote validated tables, quarantine and report to {args.out}")
    if args.strict and result.quarantined_rows:
        raise Fail(f"--strict: {result.quarantined_rows} row(s) quarantined; see {args.out / 'report.txt'}", EXIT_GATE)
    return EXIT_OK


def cmd_snapshot(args: argparse.Namespace) -> int:
    from features.config import FeatureConfig
    from pipelines.io import write_parquet
    from pipelines.snapshot import load_validated, snapshot_from_result

    result = load_validated(args.data, args.end_date)
    if args.strict and result.quarantined_rows:
        raise Fail(f"--strict: {result.quarantined_rows} row(s) quarantined; run 'churn validate' to see them", EXIT_GATE)
    config = FeatureConfig(label_source=args.label)
    table = snapshot_from_result(result, args.as_of, args.horizon_days, config, progress=True)
    write_parquet(table, args.out)
    labelled = table["churned"].notna()
    print(
        f"wrote {args.out}: {len(table):,} rows x {table.shape[1]} columns for {table['as_of'].nunique()} as-of date(s); "
        f"{int(labelled.sum()):,} labelled, prevalence {table.loc[labelled, 'churned'].astype(float).mean():.3%}"
        if labelled.any()
        else f"wrote {args.out}: {len(table):,} rows (no as-of date has a fully observed label window)"
    )
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from pipelines.config import load_config
    from pipelines.train import format_summary, run_training

    overrides = {
        "data": str(args.data) if args.data else None,
        "horizon_days": args.horizon_days,
        "label": args.label,
        "mlflow.experiment": args.experiment,
        "as_of": {"dates": [d.date().isoformat() for d in args.as_of]} if args.as_of else None,
    }
    config = load_config(args.config, overrides)
    summary = run_training(config)
    print(format_summary(summary))
    return EXIT_OK


# --- parser --------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="churn", description="Churn-propensity pipeline: validate, snapshot, train, score.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("generate", help="write a synthetic CX dataset and its ground truth")
    p.add_argument("--customers", type=int, default=40_000)
    p.add_argument("--months", type=int, default=24)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--end-date", default="2026-06-30", help="last day of the data (default 2026-06-30)")
    p.add_argument("--out", type=Path, default=DEFAULT_DATA, help=f"dataset folder (default {DEFAULT_DATA})")
    p.add_argument("--truth-out", type=Path, help="ground-truth folder (default: OUT_truth beside OUT)")
    p.add_argument("--oracle-as-of", type=_date, help="as-of date of the oracle AUC (default: latest fully labelled month)")
    p.add_argument("--horizon-days", type=int, default=90, help="label horizon of the oracle AUC (default 90)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("validate", help="check a dataset against the contract; write tables, quarantine and report")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"dataset folder (default {DEFAULT_DATA})")
    p.add_argument("--out", type=Path, default=Path("data/validated"), help="output folder (default data/validated)")
    p.add_argument("--end-date", type=_date, help="the dataset's last date (extract date); later timestamps are impossible (default: today)")
    p.add_argument("--strict", action="store_true", help="exit 1 if any row is quarantined (after writing the report)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("snapshot", help="build point-in-time features and labels for one or more as-of dates")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"dataset folder (default {DEFAULT_DATA})")
    p.add_argument("--as-of", type=_date, action="append", required=True, help="as-of date; repeat for several")
    p.add_argument("--horizon-days", type=int, default=90)
    p.add_argument("--label", choices=("events", "inactivity"), default="events", help="label source (default events)")
    p.add_argument("--end-date", type=_date, help="the dataset's last date (default: today)")
    p.add_argument("--strict", action="store_true", help="fail if any row is quarantined")
    p.add_argument("--out", type=Path, required=True, help="output parquet file")
    p.set_defaults(func=cmd_snapshot)

    p = sub.add_parser("train", help="train, evaluate, log to MLflow, register and decide promotion")
    p.add_argument("--config", type=Path, default=Path("pipelines/conf/train.yaml"), help="YAML config (default pipelines/conf/train.yaml)")
    p.add_argument("--data", type=Path, help="override: dataset folder")
    p.add_argument("--as-of", type=_date, action="append", help="override: as-of date(s); repeat for several")
    p.add_argument("--horizon-days", type=int, help="override: label horizon")
    p.add_argument("--label", choices=("events", "inactivity"), help="override: label source")
    p.add_argument("--experiment", help="override: MLflow experiment name")
    p.set_defaults(func=cmd_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from pipelines.config import ConfigError
    from pipelines.contract import ContractError

    try:
        return args.func(args)
    except Fail as err:
        print(f"churn {args.command}: error: {err}", file=sys.stderr)
        return err.code
    except (ContractError, ConfigError, ValueError, FileNotFoundError) as err:
        log.debug("details", exc_info=True)
        print(f"churn {args.command}: error: {err}", file=sys.stderr)
        return EXIT_INPUT
    except Exception as err:  # noqa: BLE001 - the one place that turns a crash into an exit code
        log.exception("unexpected failure")
        print(f"churn {args.command}: error: unexpected {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
