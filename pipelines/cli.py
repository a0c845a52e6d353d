"""The ``churn`` command: thin wrappers that parse, load config, call a stage and report.

Exit codes: 0 success; 1 the run finished but failed a gate (``--strict`` with
quarantined rows, a drift or promotion gate); 2 bad input, config or usage: any
:data:`pipelines.errors.USER_ERRORS` (one-line reason on stderr); 3 anything
else, a bug in the pipeline (one line on stderr, the traceback in the log);
75 another scoring run holds the lock (a scheduler may retry).
"""

from __future__ import annotations

import argparse
import codecs
import dataclasses
import logging
import shutil
import sys
from pathlib import Path
from typing import Any, get_args, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from features.config import FeatureConfig
from pipelines.attributes import ATTRIBUTE_TYPES
from pipelines.compat import skip_pyspark_pandas
from pipelines.config import (
    DEFAULT_CONFIGS,
    ConfigError,
    InputConfig,
    ScoreConfig,
    TrainConfig,
    UpliftConfig,
    iso_date,
    load_config,
)
from pipelines.errors import USER_ERRORS, UserError
from pipelines.simulation import DRIFTS

# The one rule for imports below the top: each command's handler imports the stage modules it runs, and only those,
# on entry. They import pandera (which must come after skip_pyspark_pandas() in main), MLflow, LightGBM or the
# simulator (which the runtime never loads), so `churn validate --help` and the other commands never pay for what they
# do not run. Everything else is imported here.

log = logging.getLogger("churn")

EXIT_OK, EXIT_GATE, EXIT_INPUT, EXIT_BUG = 0, 1, 2, 3
EXIT_BUSY = 75  # sysexits EX_TEMPFAIL: another run holds the lock; a scheduler may retry
DEFAULT_DATA = Path("data/synthetic")
LABELS = get_args(get_type_hints(TrainConfig)["label"])  # events, inactivity: the label sources the configs take


class Fail(UserError):
    """A failure with a one-line reason and an exit code."""

    def __init__(self, message: str, code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.code = code


def _date(text: str) -> pd.Timestamp:
    try:
        return iso_date(text, "date")
    except ConfigError as err:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (expected YYYY-MM-DD, e.g. 2024-06-30)") from err


def _times(ratio: float | None) -> str:
    """A ratio as ``1.66x``, or ``n/a`` where it is undefined."""
    return "n/a" if ratio is None else f"{ratio:.2f}x"


# --- subcommands ---------------------------------------------------------------------
def cmd_generate(args: argparse.Namespace) -> int:
    from pipelines.simulation.generate import write_synthetic
    from pipelines.simulation.synthetic import SyntheticConfig

    if (args.drift is None) != (args.drift_from is None):
        raise Fail("--drift and --drift-from go together: the change to inject and the date it starts")
    plan = None
    if args.decisions is not None:  # the pipeline's own action lists run the campaigns on their dates
        from pipelines.io.decisions import read_decisions

        plan = read_decisions(args.decisions)
    config = SyntheticConfig(
        customers=args.customers, months=args.months, seed=args.seed, end_date=args.end_date, drift=args.drift,
        drift_from=None if args.drift_from is None else str(args.drift_from.date()), campaign_plan=plan,
        reach_rate=args.reach_rate,
    )  # fmt: skip
    truth = args.truth_out or args.out.with_name(args.out.name + "_truth")
    if truth.resolve() == args.out.resolve():
        raise Fail("--truth-out must differ from --out: the pipeline must never read the ground truth")
    log.info(
        "generating %d customers over %d months (seed %d) into %s",
        config.customers,
        config.months,
        config.seed,
        args.out,
    )
    summary = write_synthetic(config, args.out, truth, args.oracle_as_of, args.horizon_days)
    print(
        f"wrote {args.out} (ground truth in {truth})\n"
        f"  oracle ROC AUC at {summary['oracle_as_of']}, horizon {args.horizon_days}d: "
        f"{summary['oracle_roc_auc']:.4f}\n"
        f"  active customers {summary['active_customers']:,}; label prevalence {summary['label_prevalence']:.3%}; "
        f"monthly churn {summary['monthly_churn_rate']:.3%}\n"
        f"  never answered a survey: {summary['share_never_answered_a_survey']:.1%}; "
        f"saved among treated who would churn: {summary['save_rate_among_treated_who_would_churn']:.1%}\n"
        f"  contacts: {summary['treated_contacts_per_campaign']:,.0f} treated and "
        f"{summary['control_contacts_per_campaign']:,.0f} control a campaign "
        f"({summary['control_churners_per_campaign']:,.1f} control churners); "
        f"sleeping dogs {summary['sleeping_dog_share_of_contacts']:.1%}; "
        f"mean true uplift treated {summary['mean_true_uplift_treated']:.2%}\n"
        f"  top 30% of each campaign by true uplift saves {summary['true_saves_top30_by_uplift']:,.1f} "
        f"(realised {summary['realised_saves_top30_by_uplift']:,}), by true risk "
        f"{summary['true_saves_top30_by_risk']:,.1f} (realised {summary['realised_saves_top30_by_risk']:,}): "
        f"{_times(summary['uplift_vs_risk_targeting_ratio'])} "
        f"(realised {_times(summary['uplift_vs_risk_targeting_ratio_realised'])})"
    )
    if config.drift:
        print(f"  injected drift: {config.drift} from {config.drift_from}")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from pipelines.engines import engine_for
    from pipelines.io.files import check_attribute_overrides, check_output_apart

    check_output_apart(args.out, args.data)
    forced = dict(args.attribute or [])
    check_attribute_overrides(args.data, forced, "--attribute", args.encoding)
    engine = engine_for(args.engine, args.partitions)
    result = engine.validate(args.data, args.out, args.end_date, forced, InputConfig(args.encoding, args.timezone))
    print(result.to_text())
    print(f"wrote validated tables, quarantine and report to {args.out}")
    if args.strict and result.quarantined_rows:
        raise Fail(f"--strict: {result.quarantined_rows} row(s) quarantined; see {args.out / 'report.txt'}", EXIT_GATE)
    return EXIT_OK


def _snapshot_features(args: argparse.Namespace) -> tuple[FeatureConfig, int, dict[str, str]]:
    """The feature settings, horizon and forced attribute types of ``churn snapshot``: those of the training config
    (``--config``), so that a snapshot has the features ``churn train`` builds, with the flags given overriding it."""
    overrides = {"label": args.label, "horizon_days": args.horizon_days}
    if hasattr(args, "active_within_days"):  # given on the command line (null included)
        overrides["population"] = {"active_within_days": args.active_within_days}
    train = load_config(args.config, overrides)
    forced = {**train.features.attribute_types, **dict(args.attribute or [])}
    # attribute_types None: as validation decides them, with the forced ones applied
    return train.feature_config_to_type(), train.horizon_days, forced


def cmd_snapshot(args: argparse.Namespace) -> int:
    from pipelines.engines import engine_for
    from pipelines.io.files import check_attribute_overrides

    reading = InputConfig(args.encoding, args.timezone)
    config, horizon_days, forced = _snapshot_features(args)
    check_attribute_overrides(args.data, forced, "--attribute", args.encoding)
    engine = engine_for(args.engine, args.partitions)
    written = engine.snapshot(args.data, args.out, args.as_of, horizon_days, args.end_date, config, forced, reading)
    if args.strict and written.result.quarantined_rows:
        if args.out.is_dir():  # Spark writes a folder of parts, the other engines one file
            shutil.rmtree(args.out)
        else:
            args.out.unlink(missing_ok=True)
        raise Fail(
            f"--strict: {written.result.quarantined_rows} row(s) quarantined; run 'churn validate' to see them",
            EXIT_GATE,
        )
    stats = written.stats
    where = f" in {written.partitions} customer partition(s)" if written.partitions > 1 else ""
    if stats.labelled:
        figures = f"{stats.labelled:,} labelled, prevalence {stats.positives / stats.labelled:.3%}"
    elif stats.rows:
        figures = "no as-of date has a fully observed label window"
    else:
        figures = "no customer is in the population at any as-of date"
    print(f"wrote {args.out}: {stats.rows:,} rows for {len(set(args.as_of))} as-of date(s){where}; {figures}")
    return EXIT_OK


def _dataset_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config keys of the flags train, score and recover share: the dataset, its extract date, how it is read."""
    return {
        "data": str(args.data) if args.data else None,
        "end_date": args.end_date.date().isoformat() if args.end_date else None,
        "input.encoding": args.encoding,
        "input.timezone": args.timezone,
    }


def _scale_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config keys of the flags train, score and recover share from :func:`_scale_options`."""
    return {"partitions": args.partitions, "engine": args.engine}


def cmd_train(args: argparse.Namespace) -> int:
    from pipelines.stages.train import format_summary, run_training

    overrides = {
        **_dataset_overrides(args),
        "horizon_days": args.horizon_days,
        "label": args.label,
        "mlflow.experiment": args.experiment,
        "as_of": {"dates": [d.date().isoformat() for d in args.as_of]} if args.as_of else None,
        **_scale_overrides(args),
    }
    config = _own_end_date(load_config(args.config, overrides, TrainConfig), args)
    print(format_summary(run_training(config)))
    return EXIT_OK


def cmd_train_uplift(args: argparse.Namespace) -> int:
    from pipelines.stages.uplift import format_summary, has_campaigns, run_uplift_training

    overrides = {
        **_dataset_overrides(args),
        "horizon_days": args.horizon_days,
        "label": args.label,
        "mlflow.experiment": args.experiment,
    }
    config = _own_end_date(load_config(args.config, overrides, UpliftConfig), args)
    if args.if_campaigns and not has_campaigns(config):
        print(f"no retention campaigns with a control group in {config.data}: no uplift model trained")
        return EXIT_OK
    print(format_summary(run_uplift_training(config)))
    return EXIT_OK


def _own_end_date(config, args: argparse.Namespace):
    """A config's ``end_date`` is its own dataset's extract date: with ``--data`` and no ``--end-date``, it is not
    this dataset's, and the latest row seen stands in (said in the log) instead of a date from another extract."""
    if args.data and not args.end_date and config.end_date is not None:
        log.warning(
            "--data %s without --end-date: the config's end_date %s is its own dataset's, so it is not used; outcomes "
            "are observed up to the latest row seen (give --end-date, the extract date)",
            args.data,
            config.end_date,
        )
        return dataclasses.replace(config, end_date=None)
    return config


def cmd_score(args: argparse.Namespace) -> int:
    from pipelines.stages.score import ScoringBusy, ScoringError, run_scoring

    overrides = {
        **_dataset_overrides(args),
        "model": args.model,
        "uplift_model": args.uplift_model if args.uplift_model != "none" else None,
        "out": str(args.out) if args.out else None,
        **_scale_overrides(args),
    }
    config = _own_end_date(load_config(args.config, overrides, ScoreConfig), args)
    if args.uplift_model == "none":
        config = dataclasses.replace(config, uplift_model=None)
    try:
        s = run_scoring(config, args.as_of, csv=args.csv)
    except ScoringError as err:
        raise Fail(str(err)) from err
    except ScoringBusy as err:
        raise Fail(str(err), EXIT_BUSY) from err
    print(
        f"scored {s.rows:,} customers with {s.model} into {s.folder} in {s.seconds_total:.1f} s "
        f"(features {s.seconds_features:.1f} s, predict {s.seconds_predict:.1f} s, "
        f"reason codes {s.seconds_reasons:.1f} s)\n"
        f"  annual revenue at risk ${s.annual_revenue_at_risk:,.0f}; "
        f"action list {s.action_list:,} customers ({s.held_out:,} held out at random: do not contact them); "
        f"contacting the other {s.contacted.customers:,} is expected to save "
        f"{s.contacted.expected_customers_saved:,.1f} worth ${s.contacted.expected_revenue_recovered:,.0f} of revenue "
        f"kept (a save keeps "
        f"{s.save_value_months:.1f} months; the whole list {s.expected_customers_saved:,.1f})\n"
        f"  save rate {s.save_rate:.1%} ({s.save_rate_source})"
    )
    r = s.recent
    if "recent_saved_customers" in r:
        plain = (
            f", adjusted ({s.recent_adjustment} score); plain difference in means "
            f"{r['recent_unadjusted_saved_customers']:,.1f} ({r['recent_unadjusted_saved_low']:,.1f} to "
            f"{r['recent_unadjusted_saved_high']:,.1f})"
            if s.recent_adjustment
            else ", the plain difference in means (not adjusted)"
        )
        print(
            f"  recent campaigns measured {r['recent_saved_customers']:,.1f} saved customers "
            f"({r['recent_saved_low']:,.1f} to {r['recent_saved_high']:,.1f}){plain}"
        )
    if s.uplift_model:
        print(
            f"  targeted by uplift ({s.uplift_model}): {s.do_not_contact:,} customers would churn more if contacted "
            f"(do not contact); the churn ranking's plan would expect {s.risk_plan_customers_saved:,.1f} saves"
        )
    if s.drift_flagged:
        print(f"  drift flagged (see the report's drift section): {', '.join(s.drift_flagged)}")
        if config.drift.fail_on_drift:
            raise Fail(f"drift above threshold in {len(s.drift_flagged)} check(s); scores were written", EXIT_GATE)
    if config.monitor.has_floor:  # a floor on realised performance: measure the runs whose outcomes are in
        from pipelines.stages.monitor import run_monitor

        return _report_monitoring(run_monitor(config))
    return EXIT_OK


def cmd_recover(args: argparse.Namespace) -> int:
    from pipelines.stages.recover import run_recover

    loop = args.run is not None or args.model_version is not None
    if loop and (args.from_ or args.to or (args.run and args.model_version)):
        raise Fail("give --from and --to (a period's campaigns), or --run, or --model-version (the pipeline's lists)")
    if not loop and (args.from_ is None or args.to is None):
        raise Fail("recover needs --from and --to (a period's retention actions), or --run / --model-version")
    if not loop and args.to < args.from_:
        raise Fail(f"--to {args.to.date()} is before --from {args.from_.date()}")
    overrides = {
        **_dataset_overrides(args),
        "model": args.model,
        "recover.horizon_days": args.horizon_days,
        "recover.label": args.label,
        "recover.out": str(args.out) if args.out else None,
        "recover.experiment": args.experiment,
        "recover.tiers": False if args.no_tiers else None,
        **_scale_overrides(args),
    }
    config = _own_end_date(load_config(args.config, overrides, ScoreConfig), args)
    if args.scores is not None:
        config = dataclasses.replace(config, out=str(args.scores))
    if loop:
        return _loop_recover(config, args)
    run = run_recover(config, args.from_, args.to)
    o = run.overall
    print(
        f"retention actions {args.from_.date()}..{args.to.date()}: {o.treated:,} treated, {o.control:,} control\n"
        + _saved_lines(o, config.recover.bootstrap.confidence)
        + f"; naive every-contact-saves figure ${o.naive_revenue:,.0f}\n  report: {run.folder}/report.html"
    )
    if run.save_value is not None:
        print(f"  value of a save: {run.save_value.sentence()}")
    if run.true_saved_customers is not None:
        print(f"  synthetic data: the generator's true net saves of these contacts are {run.true_saved_customers:,.0f}")
    for note in run.notes:
        print(f"  warning: {note}")
    return EXIT_OK


def cmd_monitor(args: argparse.Namespace) -> int:
    from pipelines.stages.monitor import run_monitor

    overrides = {
        **_dataset_overrides(args),
        "out": str(args.scores) if args.scores else None,
        "monitor.out": str(args.out) if args.out else None,
        "monitor.experiment": args.experiment,
    }
    config = _own_end_date(load_config(args.config, overrides, ScoreConfig), args)
    return _report_monitoring(run_monitor(config))


def _report_monitoring(result) -> int:
    """Print what monitoring measured; exit 1 when the latest measured run is below a configured floor."""
    closed = [r for r in result.runs if r.status == "closed"]
    print(f"monitored {len(result.runs)} scoring run(s): {len(closed)} with outcomes in; report: {result.report}")
    for r in result.runs:
        if r.status == "closed":
            m = {**r.realised, **r.expected}
            print(
                f"  {r.as_of.date()} {r.model}: realised ROC AUC {m['realised_roc_auc']:.3f} (test "
                f"{m.get('expected_roc_auc', float('nan')):.3f}), ECE {m['realised_ece']:.4f}, churn rate "
                f"{m['realised_prevalence']:.2%} against {m['realised_mean_probability']:.2%} predicted ({r.reason})"
            )
        else:
            print(f"  {r.as_of.date()} {r.model}: waiting for outcomes ({r.reason})")
    if result.breaches:
        raise Fail("realised performance below the floor: " + "; ".join(result.breaches), EXIT_GATE)
    return EXIT_OK


# --- argument types ------------------------------------------------------------------
def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from err
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _days_or_none(text: str) -> int | None:
    if text.lower() in ("none", "null", "all"):
        return None
    return _positive(text)


def _attribute_type(text: str) -> tuple[str, str]:
    column, sep, kind = text.partition("=")
    if not sep or not column or kind not in ATTRIBUTE_TYPES:
        raise argparse.ArgumentTypeError(
            f"expected COLUMN=TYPE with TYPE one of {', '.join(ATTRIBUTE_TYPES)}, got {text!r}"
        )
    return column, kind


def _encoding(text: str) -> str:
    try:
        return codecs.lookup(text).name
    except LookupError as err:
        raise argparse.ArgumentTypeError(f"unknown encoding {text!r} (e.g. utf-8, latin-1, cp1252)") from err


def _timezone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise argparse.ArgumentTypeError(
            f"unknown time zone {text!r} (an IANA name such as UTC or Europe/Berlin)"
        ) from err
    return text


# --- shared options: each flag defined once for every command that takes it ---------
def _config_option(p: argparse.ArgumentParser, name: str, help: str) -> None:
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIGS / name, help=help)


def _data_option(p: argparse.ArgumentParser, override: bool = False, validated: bool = True) -> None:
    """``--data``: a default folder, or (``override``) the config's ``data``; ``validated``: validate's output too."""
    what = "dataset folder, or a folder churn validate wrote" if validated else "dataset folder"
    if override:
        p.add_argument("--data", type=Path, help=f"override: {what}")
    else:
        p.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"{what} (default {DEFAULT_DATA})")


def _as_of_option(p: argparse.ArgumentParser, help: str, many: bool = False, required: bool = False) -> None:
    p.add_argument("--as-of", type=_date, action="append" if many else "store", required=required, help=help)


def _end_date_option(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--end-date", type=_date, help=help)


def _horizon_option(
    p: argparse.ArgumentParser, help: str = "override: label horizon", default: int | None = None
) -> None:
    p.add_argument("--horizon-days", type=_positive, default=default, help=help)


def _label_option(p: argparse.ArgumentParser, help: str = "override: label source") -> None:
    p.add_argument("--label", choices=LABELS, help=help)


def _experiment_option(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--experiment", help=help)


def _model_option(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--model", help=help)


def _strict_option(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--strict", action="store_true", help=help)


def _attribute_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--attribute",
        type=_attribute_type,
        action="append",
        metavar="COLUMN=TYPE",
        help="type of a customer attribute column instead of the inferred one (number, boolean, date, category, "
        "identifier, exclude); repeat for several",
    )


def _input_options(p: argparse.ArgumentParser, override: bool = False) -> None:
    """``--encoding`` and ``--timezone``; with ``override`` they default to the config's ``input:`` section."""
    default = " (default: the config's input.encoding)" if override else " (default utf-8, with or without BOM)"
    p.add_argument(
        "--encoding", type=_encoding, default=None if override else "utf-8", help="encoding of the CSV files" + default
    )
    default = " (default: the config's input.timezone)" if override else " (default UTC)"
    p.add_argument(
        "--timezone",
        type=_timezone,
        default=None if override else "UTC",
        help="time zone of timestamps written without Z or an offset; dates stay dates" + default,
    )


def _scale_options(p: argparse.ArgumentParser, default_partitions: int | None = 1) -> None:
    p.add_argument(
        "--partitions",
        type=_positive,
        default=default_partitions,
        help="customer buckets processed one at a time, for data larger than memory (default 1: all at once; "
        "with --engine spark, the number of buckets)",
    )
    p.add_argument(
        "--engine",
        choices=("pandas", "spark"),
        default=None if default_partitions is None else "pandas",
        help="pandas on this machine (default) or spark (needs the spark extra)",
    )


# --- one parser per command ----------------------------------------------------------
Subparsers = Any  # argparse's _SubParsersAction, which it does not name publicly


def _generate_parser(sub: Subparsers) -> None:
    p = sub.add_parser("generate", help="write a synthetic CX dataset and its ground truth")
    p.add_argument("--customers", type=int, default=40_000)
    p.add_argument("--months", type=int, default=24)
    p.add_argument("--seed", type=int, default=42)
    # the synthetic data's own last day, handed to the simulator as text: not the pipeline's --end-date
    p.add_argument("--end-date", default="2026-06-30", help="last day of the data (default 2026-06-30)")
    p.add_argument("--out", type=Path, default=DEFAULT_DATA, help=f"dataset folder (default {DEFAULT_DATA})")
    p.add_argument("--truth-out", type=Path, help="ground-truth folder (default: OUT_truth beside OUT)")
    p.add_argument(
        "--oracle-as-of", type=_date, help="as-of date of the oracle AUC (default: latest fully labelled month)"
    )
    _horizon_option(p, "label horizon of the oracle AUC (default 90)", default=90)
    p.add_argument(
        "--drift", choices=DRIFTS, help="inject a known change from --drift-from, to test drift checks: survey_stop "
        "(no survey is sent) or app_outage (most log-ins and purchases stop); default none",
    )  # fmt: skip
    p.add_argument("--drift-from", type=_date, help="first day of the injected change (with --drift)")
    p.add_argument(
        "--decisions", type=Path, help="a scores folder whose decision log runs the campaigns on its dates (the "
        "closed loop: holdout customers are the control group); the same world otherwise",
    )  # fmt: skip
    p.add_argument(
        "--reach-rate", type=float, default=0.9, help="with --decisions: share of planned contacts made (default 0.9)"
    )
    p.set_defaults(func=cmd_generate)


def _validate_parser(sub: Subparsers) -> None:
    p = sub.add_parser("validate", help="check a dataset against the contract; write tables, quarantine and report")
    _data_option(p, validated=False)
    p.add_argument("--out", type=Path, default=Path("data/validated"), help="output folder (default data/validated)")
    _end_date_option(p, "the dataset's last date (extract date); later timestamps are impossible (default: today)")
    _strict_option(p, "exit 1 if any row is quarantined (after writing the report)")
    _attribute_options(p)
    _input_options(p)
    _scale_options(p)
    p.set_defaults(func=cmd_validate)


def _snapshot_parser(sub: Subparsers) -> None:
    p = sub.add_parser("snapshot", help="build point-in-time features and labels for one or more as-of dates")
    _data_option(p)
    _as_of_option(p, "as-of date; repeat for several", many=True, required=True)
    _config_option(
        p,
        "train.yaml",
        "training config whose feature settings, horizon, label and population the snapshot uses, so that it "
        "has the features churn train builds (default pipelines/conf/train.yaml); the flags below override it",
    )
    _horizon_option(p)
    _label_option(p)
    p.add_argument(
        "--active-within-days",
        type=_days_or_none,
        default=argparse.SUPPRESS,
        metavar="N|none",
        help="override, with --label inactivity: customers with an interaction in the N days before T "
        "(population.active_within_days); none: every customer signed up before T",
    )
    _end_date_option(p, "the extract date: outcomes are observed up to it (default: the latest row seen)")
    _strict_option(p, "fail if any row is quarantined")
    _attribute_options(p)
    _input_options(p)
    p.add_argument("--out", type=Path, required=True, help="output parquet file")
    _scale_options(p)
    p.set_defaults(func=cmd_snapshot)


def _train_parser(sub: Subparsers) -> None:
    p = sub.add_parser("train", help="train, evaluate, log to MLflow, register and decide promotion")
    _config_option(
        p,
        "train.yaml",
        "YAML config; relative paths in it are relative to its folder (default: the package's conf/train.yaml)",
    )
    _data_option(p, override=True)
    _as_of_option(p, "override: as-of date(s); repeat for several", many=True)
    _end_date_option(p, "override: the extract date; outcomes are observed up to it")
    _horizon_option(p)
    _label_option(p)
    _experiment_option(p, "override: MLflow experiment name")
    _input_options(p, override=True)
    _scale_options(p, default_partitions=None)  # defaults come from the config
    p.set_defaults(func=cmd_train)


def _train_uplift_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "train-uplift",
        help="learn who a retention contact keeps from randomised campaigns; log, register churn-uplift, promote",
    )
    _config_option(
        p,
        "uplift.yaml",
        "YAML config; relative paths in it are relative to its folder (default: the package's conf/uplift.yaml)",
    )
    _data_option(p, override=True)
    _end_date_option(p, "override: the extract date; outcomes are observed up to it")
    _horizon_option(p, "override: churn window after each action date (horizon_days)")
    _label_option(p)
    _experiment_option(p, "override: MLflow experiment name")
    _input_options(p, override=True)
    p.add_argument(
        "--if-campaigns",
        action="store_true",
        help="exit 0 without training when the data has no retention campaigns with a control group (make train)",
    )
    p.set_defaults(func=cmd_train_uplift)


def _score_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "score",
        help="score active customers at an as-of date with a registered model; write scores, action list and report",
    )
    _as_of_option(p, "as-of date (features use data strictly before it)", required=True)
    _config_option(
        p,
        "score.yaml",
        "YAML config; relative paths in it are relative to its folder (default: the package's conf/score.yaml)",
    )
    _data_option(p, override=True)
    _model_option(p, "override: registered model NAME@ALIAS (default churn-propensity@champion)")
    p.add_argument(
        "--uplift-model",
        metavar="NAME@ALIAS",
        help="override: uplift model targeting uses when it exists (default churn-uplift@champion); none: never",
    )
    p.add_argument("--out", type=Path, help="override: output root (scores go to OUT/as_of=DATE/)")
    _end_date_option(p, "override: the dataset's last date")
    p.add_argument("--csv", action="store_true", help="also write scores.csv, safe to open in a spreadsheet")
    _input_options(p, override=True)
    _scale_options(p, default_partitions=None)  # defaults come from the config
    p.set_defaults(func=cmd_score)


def _loop_recover(config: ScoreConfig, args: argparse.Namespace) -> int:
    """``churn recover --run`` / ``--model-version``: the pipeline's own action lists against their holdout."""
    from pipelines.stages.loop import run_loop_recover

    result = run_loop_recover(config, args.run, args.model_version)
    o = result.overall
    print(
        f"action lists of {result.model[0]} v{result.model[1]}: {o.treated:,} assigned to treatment, {o.control:,} "
        "held out\n" + _saved_lines(o, config.recover.bootstrap.confidence) + f"\n  report: {result.folder}/report.html"
    )
    if result.true_saved_customers is not None:
        print(f"  synthetic data: the true net saves in the treatment group {result.true_saved_customers:,.0f}")
    for note in result.notes:
        print(f"  note: {note}")
    return EXIT_OK


def _saved_lines(o, confidence: float) -> str:
    """A measured recovery's saved customers (adjusted, with the plain figure) and revenue kept, as recover prints."""
    from pipelines.reporting.html import money

    return (
        f"  saved customers {o.saved_customers:,.1f} ({confidence:.0%} interval {o.saved_low:,.1f} to "
        f"{o.saved_high:,.1f}{_adjusted_by(o)})\n"
        f"  revenue kept {money(o.revenue_recovered)} ({money(o.revenue_low)} to {money(o.revenue_high)})"
    )


def _adjusted_by(o) -> str:
    """How the saving was adjusted, and the plain difference in means beside it ("" when it was not adjusted)."""
    if not o.adjustment:
        return ""
    return (
        f", adjusted on a {o.adjustment} churn score; plain difference in means {o.unadjusted_saved_customers:,.1f}, "
        f"{o.unadjusted_saved_low:,.1f} to {o.unadjusted_saved_high:,.1f}"
    )


def _recover_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "recover", help="measure saved customers and revenue recovered by past retention actions (treatment vs control)"
    )
    _config_option(
        p,
        "score.yaml",
        "the scoring config, whose data, end_date, input, engine, partitions, model and risk_tiers recover shares and "
        "whose recover: section holds its own settings; relative paths in it are relative to its folder (default: the "
        "package's conf/score.yaml)",
    )
    _data_option(p, override=True)
    p.add_argument("--from", dest="from_", type=_date, help="first action date (with --to: a period's actions)")
    p.add_argument("--to", type=_date, help="last action date")
    p.add_argument("--run", help="instead: the action list of this scoring run (its MLflow run id) against its holdout")
    p.add_argument("--model-version", help="instead: every action list scored by this version of the config's model")
    p.add_argument("--scores", type=Path, help="override: the scores folder holding the decision log (out)")
    _horizon_option(p, "override: churn window after each action (recover.horizon_days, default 90)")
    _end_date_option(p, "override: the extract date; outcomes are observed up to it")
    _model_option(p, "override: model whose risk tiers split the result (default churn-propensity@champion)")
    p.add_argument("--no-tiers", action="store_true", help="skip the risk-tier breakdown (recover.tiers: false)")
    _label_option(
        p,
        "override: churn after an action: a churn event (recover.label events, the default) or no interaction "
        "within the horizon (inactivity, for transaction logs)",
    )
    p.add_argument("--out", type=Path, help="override: output root (recover.out, default data/recovery)")
    _input_options(p, override=True)
    _experiment_option(p, "override: MLflow experiment (recover.experiment, default churn-recovery)")
    _scale_options(p, default_partitions=None)  # defaults come from the config, shared with score
    p.set_defaults(func=cmd_recover)


def _monitor_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "monitor", help="realised performance of past scoring runs once their outcomes are in; exit 1 below a floor"
    )
    _config_option(
        p,
        "score.yaml",
        "the scoring config, whose data, end_date, input and out (the scoring runs' folder) monitor shares and whose "
        "monitor: section holds its own settings (default: the package's conf/score.yaml)",
    )
    _data_option(p, override=True)
    _end_date_option(p, "override: the extract date; outcomes are observed up to it")
    p.add_argument("--scores", type=Path, help="override: the scoring runs' folder (out, default data/scores)")
    p.add_argument("--out", type=Path, help="override: where the report goes (monitor.out, default data/monitoring)")
    _input_options(p, override=True)
    _experiment_option(p, "override: MLflow experiment (monitor.experiment, default churn-monitoring)")
    p.set_defaults(func=cmd_monitor)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="churn", description="Churn-propensity pipeline: validate, snapshot, train, score."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _generate_parser, _validate_parser, _snapshot_parser, _train_parser, _train_uplift_parser, _score_parser,
        _recover_parser,
        _monitor_parser,
    ):  # fmt: skip
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    skip_pyspark_pandas()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.func(args)
    except Fail as err:
        print(f"churn {args.command}: error: {err}", file=sys.stderr)
        return err.code
    except USER_ERRORS as err:
        log.debug("details", exc_info=True)
        print(f"churn {args.command}: error: {err}", file=sys.stderr)
        return EXIT_INPUT
    except Exception as err:  # noqa: BLE001 - the one place that turns a crash into an exit code
        log.exception("unexpected failure")
        print(f"churn {args.command}: error: unexpected {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
