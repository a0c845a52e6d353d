"""Benchmarks (not timed tests): wall time, CPU time and peak memory of each stage, against DuckDB.

Each stage runs in its own child process so that its peak RSS is its own.
For every size it measures: validate, snapshot (12 monthly as-of dates:
validation + features + labels), the feature stage alone for one as-of date,
the same per-customer window aggregates computed by DuckDB straight from the
parquet files (the reference), train (full and with sampled non-churners), and
score (with reason codes for the action list). Results are printed as tables
and saved to ``data/bench/results.json``.

    python -m pipelines.benchmark.bench                      # 100k customers (a few minutes)
    python -m pipelines.benchmark.bench --sizes 100k,300k,1M # the cost curve
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from features import names
from features.build import INTERACTION_COLUMNS, US_PER_DAY, build_features, prepare
from features.config import FeatureConfig
from pipelines.errors import UserError

BENCH_DIR = Path("data/bench")
END = "2026-06-30"
AS_OF = "2026-04-01"
SCORE_AS_OF = "2026-07-01"
SCORE_MODEL = "bench-churn@challenger"


# --- the two feature engines measured against each other ------------------------------------
def feature_stage(data: str, as_of: str) -> int:
    """Our feature stage for one as-of date, from the parquet files (validation excluded).

    The same reader and feature code as scoring from a validated folder: the
    interactions are streamed into the feature arrays, never one frame.
    """
    # Here, not at the top: every stage's child process imports this module, and the reader's contract checks
    # (pandera) would add about 0.5 s to the DuckDB reference, which never reads through it.
    from pipelines.io.files import dataset_files, feature_tables

    return len(build_features(prepare(feature_tables(dataset_files(Path(data))), FeatureConfig()), pd.Timestamp(as_of)))


def duckdb_sql(data: str, as_of: str, config: FeatureConfig) -> str:
    """The same per-customer window aggregates as SQL, generated from the same feature config.

    Every column has the name of the feature it computes, taken from ``features.names``, so the reference and our
    feature stage can be compared column by column (counts of customers with no events are NULL here, 0 there).
    The query is one template, kept whole so that it reads as the SQL it is; its select lists are built apart.
    """
    t = f"TIMESTAMP '{as_of}'"
    return f"""
        WITH i AS (
            SELECT customer_id, {", ".join(_interaction_columns(t, config))}
            FROM (SELECT customer_id, timestamp AS ts, type, channel, value \
FROM read_parquet('{data}/interactions.parquet') WHERE timestamp < {t})
            GROUP BY customer_id),
        f AS (
            SELECT customer_id, {", ".join(_survey_columns(t))}
            FROM (SELECT customer_id, timestamp AS ts, survey, score \
FROM read_parquet('{data}/feedback.parquet') WHERE timestamp < {t})
            GROUP BY customer_id)
        SELECT c.customer_id, i.*, f.*
        FROM read_parquet('{data}/customers.parquet') c
        LEFT JOIN i USING (customer_id) LEFT JOIN f USING (customer_id)
        WHERE c.signup_date < {t}
          AND c.customer_id NOT IN (SELECT customer_id \
FROM read_parquet('{data}/churn_events.parquet') WHERE churn_date < {t})
    """


def _days_since(t: str, where: str = "") -> str:
    """SQL: days from the latest event (of those ``where`` keeps) to the as-of timestamp ``t``."""
    latest = f"max(ts) FILTER (WHERE {where})" if where else "max(ts)"
    return f"(epoch_us({t}) - epoch_us({latest})) / {US_PER_DAY}"


def _among(column: str, known: tuple[str, ...], name: str) -> str:
    """SQL: ``column`` equal to ``name``, or none of ``known`` for ``other``."""
    values = ", ".join(f"'{x}'" for x in known)
    return f"{column} NOT IN ({values})" if name == names.OTHER else f"{column} = '{name}'"


def _interaction_columns(t: str, config: FeatureConfig) -> list[str]:
    """SQL select items of the interaction features: window counts and sums, channel shares, recency."""
    cols = []
    for w in config.windows_days:
        win = f"ts >= {t} - INTERVAL {w} DAY"
        cols.append(f"count(*) FILTER (WHERE {win}) AS {names.InteractionCount(w).name}")
        cols.append(f"coalesce(sum(value) FILTER (WHERE {win}), 0) AS {names.ValueSum(w).name}")
        for name in names.type_names(config):
            kind = _among("type", config.interaction_types, name)
            cols.append(f"count(*) FILTER (WHERE {win} AND {kind}) AS {names.TypeCount(name, w).name}")
    mid = config.windows_days[1]
    recent = f"ts >= {t} - INTERVAL {mid} DAY"
    for ch in names.channel_names(config):
        channel = _among("channel", config.channels, ch)
        cols.append(
            f"count(*) FILTER (WHERE {recent} AND {channel}) / greatest(count(*) FILTER (WHERE {recent}), 1) "
            f"AS {names.ChannelShare(ch, mid).name}"
        )
    cols.append(f"{_days_since(t)} AS {names.DaysSinceLast('interaction').name}")
    cols += [
        f"{_days_since(t, f'type = {x!r}')} AS {names.DaysSinceLast(x).name}"
        for x in names.RECENCY_TYPES
        if x in config.interaction_types
    ]
    return cols


def _survey_columns(t: str) -> list[str]:
    """SQL select items of the survey features: count, mean, latest score and recency of each survey."""
    cols = []
    for s in names.SURVEYS:
        cols += [
            f"count(*) FILTER (WHERE survey = '{s}') AS {names.SurveyStat(s, 'count').name}",
            f"avg(score) FILTER (WHERE survey = '{s}') AS {names.SurveyStat(s, 'mean').name}",
            f"arg_max(score, ts) FILTER (WHERE survey = '{s}') AS {names.SurveyStat(s, 'latest').name}",
            f"{_days_since(t, f'survey = {s!r}')} AS {names.SurveyStat(s, 'days_since_last').name}",
        ]
    return cols


def export_plain_model(model_uri: str, path: str) -> None:
    """The registered model's preprocessing step and raw LightGBM booster, for the plain-predict reference."""
    # Here, not at the top: the timed stages import this module, and mlflow (models.registry) and sklearn with
    # lightgbm (models.estimators) would add seconds to the references that do not use them.
    from models.estimators import LGBM, PRE
    from models.registry import load_model

    model = load_model(model_uri).model
    if model.family != "lightgbm":
        raise UserError(f"{model_uri} is a {model.family} model; the plain-predict reference needs a LightGBM booster")
    pipeline = model.pipeline
    with open(path, "wb") as handle:
        pickle.dump(
            (pipeline.named_steps[PRE], pipeline.named_steps[LGBM].booster_, model.spec, model.feature_config),
            handle,
        )


def plain_predict_stage(data: str, as_of: str, plain_model: str) -> int:
    """The scoring reference: the feature build from the parquet files and a plain LightGBM predict on its rows.

    No validation, registry, calibration, ranking, reason codes, report or
    tracking: what scoring would cost if it were only features and trees.
    """
    from pipelines.io.files import dataset_files, feature_tables  # here for the DuckDB reference (see feature_stage)

    with open(plain_model, "rb") as handle:
        pre, booster, spec, config = pickle.load(handle)
    features = build_features(prepare(feature_tables(dataset_files(Path(data))), config), pd.Timestamp(as_of))
    return len(booster.predict(pre.transform(spec.frame(features))))


def duckdb_stage(data: str, as_of: str) -> int:
    """The DuckDB reference: the same aggregates straight from the parquet files, on 2 threads."""
    import duckdb  # here: kept out of our own stages' child processes, which import this module too

    con = duckdb.connect()
    con.execute("SET threads = 2")
    return con.sql(duckdb_sql(data, as_of, FeatureConfig())).to_arrow_table().num_rows


# --- measurement --------------------------------------------------------------------------
@dataclass(frozen=True)
class StageResult:
    """One stage in its own process: wall time, CPU time and peak RSS."""

    stage: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float


def _child(name: str, code: str, env: dict | None = None) -> StageResult:
    """Run ``code`` in a fresh interpreter; return its wall time, CPU time and peak RSS."""
    wrapper = textwrap.dedent(
        """
        import json, resource, sys, time
        t = time.perf_counter()
        from pipelines.compat import skip_pyspark_pandas
        skip_pyspark_pandas()  # as the churn command does
        {code}
        u = resource.getrusage(resource.RUSAGE_SELF)
        print("BENCH" + json.dumps({{"wall_s": time.perf_counter() - t, "cpu_s": u.ru_utime + u.ru_stime, \
"peak_rss_mb": u.ru_maxrss / 1024}}), file=sys.stderr)
        """
    ).format(code=code)
    proc = subprocess.run(
        [sys.executable, "-c", wrapper], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    lines = [line[5:] for line in proc.stderr.splitlines() if line.startswith("BENCH")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"benchmark stage {name} failed:\n{proc.stderr[-3000:]}")
    return StageResult(name, **json.loads(lines[-1]))


def _cli(name: str, argv: list[str], env: dict | None = None) -> StageResult:
    return _child(name, f"from pipelines.cli import main\nrc = main({argv!r})\nassert rc == 0, rc", env)


def _size(text: str) -> int:
    text = text.strip().lower()
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text[:-1] if factor > 1 else text) * factor)


def _bench_config(folder: Path, data: Path, negative_sample_rate: float) -> Path:
    """A training config for the benchmark: 12 monthly as-of dates, one LightGBM candidate."""
    path = folder / f"train_{negative_sample_rate}.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            data: {data}
            end_date: {END}
            as_of: {{start: 2025-04-01, end: 2026-04-01, step_months: 1}}
            model:
              negative_sample_rate: {negative_sample_rate}
              params: {{n_estimators: 2000, learning_rate: 0.05, subsample: 0.8, subsample_freq: 1, \
colsample_bytree: 0.7, reg_lambda: 5.0, n_jobs: 2,
                        num_leaves: 15, min_child_samples: 200}}
              search: {{trials: 1}}   # every tuned parameter is fixed above: one LightGBM fit, \
timed the same on every run
            baseline: {{C: 0.1}}
            mlflow: {{experiment: bench, registered_model: bench-churn}}
            shap_sample: 500
            """
        )
    )
    return path


def partitions_for(customers: int) -> int:
    """Customer buckets for a size: about 100k customers per bucket keeps each stage near 2-3 GB."""
    return max(1, -(-customers // 100_000))


@dataclass(frozen=True)
class SizeResult:
    """Every stage at one size, and the ratios the README quotes (``results.json`` holds one per size)."""

    customers: int
    partitions: int
    interaction_rows: int
    interaction_input_mb: float
    stages: list[StageResult]
    feature_time_ratio_vs_duckdb: float
    feature_peak_ratio_vs_duckdb: float
    feature_peak_over_input_columns: float
    score_time_ratio_vs_plain_predict: float | None
    sampling: dict[str, dict[str, float]]  # negative sample rate -> test metrics of the model it trained


def bench_size(customers: int, train: bool, store: Path, partitions: int | None = None) -> SizeResult:
    """Every stage at one size; trains only when ``train``, scores whenever a model was trained into ``store``."""
    data = BENCH_DIR / f"c{customers}_m24"
    parts = partitions or partitions_for(customers)
    scale = ["--partitions", str(parts)]
    results = [] if (data / "customers.parquet").exists() else [_generate(customers, data)]
    rows, input_mb = pq.ParquetFile(data / "interactions.parquet").metadata.num_rows, _input_mb(data)
    validated = BENCH_DIR / "validated"
    results += _prepare_stages(data, validated, scale)
    ours, duck = _feature_stages(data)
    results += [ours, duck]
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{store}/mlflow.db", "CHURN_ARTIFACT_ROOT": Path(store, "art").as_uri()}
    metrics = {}
    if train:
        trained, metrics = _train_stages(customers, data, store, env)
        results += trained
    score = plain_ref = None
    if (store / "plain_model.pkl").exists():  # sizes too big to train here score with the model of a smaller size
        score, plain_ref = _score_stages(data, validated, store, scale, env)
        results += [score, plain_ref]
    return SizeResult(
        customers=customers,
        partitions=parts,
        interaction_rows=rows,
        interaction_input_mb=input_mb,
        stages=results,
        feature_time_ratio_vs_duckdb=ours.wall_s / duck.wall_s,
        feature_peak_ratio_vs_duckdb=ours.peak_rss_mb / duck.peak_rss_mb,
        feature_peak_over_input_columns=ours.peak_rss_mb / input_mb,
        score_time_ratio_vs_plain_predict=score.wall_s / plain_ref.wall_s if score else None,
        sampling={
            str(rate): {k: m[k] for k in ("test_roc_auc", "test_ece", "test_rows")} for rate, m in metrics.items()
        },
    )


def _generate(customers: int, data: Path) -> StageResult:
    return _cli("generate", ["generate", "--customers", str(customers), "--out", str(data)])


def _input_mb(data: Path) -> float:
    """In-memory (Arrow) size of the interaction columns the feature stage needs, read one column at a time."""
    path = data / "interactions.parquet"
    return sum(pq.read_table(path, columns=[c]).nbytes for c in INTERACTION_COLUMNS) / 2**20


def _prepare_stages(data: Path, validated: Path, scale: list[str]) -> list[StageResult]:
    """Validate into ``validated``, then a 12-date snapshot from it."""
    validate = _cli("validate", ["validate", "--data", str(data), "--out", str(validated), "--end-date", END, *scale])
    # Snapshot and score read the validated buckets, as a scheduled job does after `churn validate`.
    dates = [d.date().isoformat() for d in pd.date_range(end=AS_OF, periods=12, freq="MS")]
    snap = [
        "snapshot",
        "--data",
        str(validated),
        "--end-date",
        END,
        "--out",
        str(BENCH_DIR / "snapshot.parquet"),
        *scale,
    ]
    for d in dates:
        snap += ["--as-of", d]
    return [validate, _cli("snapshot x12 (features+labels)", snap)]


def _feature_stages(data: Path) -> tuple[StageResult, StageResult]:
    """Our feature stage and the DuckDB reference, for one as-of date."""
    ours = _child(
        "features, 1 as-of (ours)",
        f"from pipelines.benchmark.bench import feature_stage\nfeature_stage({str(data)!r}, {AS_OF!r})",
    )
    duck = _child(
        "features, 1 as-of (DuckDB reference)",
        f"from pipelines.benchmark.bench import duckdb_stage\nduckdb_stage({str(data)!r}, {AS_OF!r})",
    )
    return ours, duck


def _train_stages(customers: int, data: Path, store: Path, env: dict) -> tuple[list[StageResult], dict]:
    """Train with every negative kept, then sampled at 0.2; export the last model for the plain-predict reference."""
    results, metrics = [], {}
    for rate in (1.0, 0.2):
        cfg = _bench_config(store, data.resolve(), rate)
        out = store / f"m{customers}_{rate}.json"
        code = (
            "import json\nfrom pipelines.config import load_config\n"
            "from pipelines.stages.train import run_training\n"
            f"s = run_training(load_config({str(cfg)!r}))\n"
            f"open({str(out)!r}, 'w').write(json.dumps(s.metrics))"
        )
        results.append(_child(f"train, negatives sampled at {rate:g}", code, env))
        metrics[rate] = json.loads(out.read_text())
    _child(
        "export plain model",
        "from pipelines.benchmark.bench import export_plain_model\n"
        f"export_plain_model({SCORE_MODEL!r}, {str(store / 'plain_model.pkl')!r})",
        env,
    )
    return results, metrics


def _score_stages(
    data: Path, validated: Path, store: Path, scale: list[str], env: dict
) -> tuple[StageResult, StageResult]:
    """Scoring from the validated folder, then the features + plain LightGBM predict reference."""
    argv = ["score", "--as-of", SCORE_AS_OF, "--data", str(validated), "--end-date", END, "--model", SCORE_MODEL]
    score = _cli("score, 1 as-of (with reason codes)", [*argv, "--out", str(BENCH_DIR / "scores"), *scale], env)
    plain_ref = _child(
        "features + plain LightGBM predict (reference)",
        "from pipelines.benchmark.bench import plain_predict_stage\n"
        f"plain_predict_stage({str(data)!r}, {SCORE_AS_OF!r}, {str(store / 'plain_model.pkl')!r})",
    )
    return score, plain_ref


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    sizes = sorted(_size(s) for s in args.sizes.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        report = [
            bench_size(n, not args.no_train and n <= _size(args.train_max), Path(tmp), args.partitions) for n in sizes
        ]
    (BENCH_DIR / "results.json").write_text(json.dumps([asdict(r) for r in report], indent=2))
    for r in report:
        _print_size(r)
    if len(report) > 1:
        _print_cost_curve(report)
    print(f"\nsaved {BENCH_DIR / 'results.json'}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.benchmark.bench", description="Stage benchmarks against a DuckDB reference."
    )
    parser.add_argument(
        "--sizes", default="100k", help="comma-separated customer counts, e.g. 100k,300k,1M (default 100k)"
    )
    parser.add_argument(
        "--no-train",
        action="store_true",
        help="skip the train stages (score still runs when an earlier size trained a model)",
    )
    parser.add_argument(
        "--train-max",
        default="300k",
        help="largest size that trains in the benchmark (default 300k); larger sizes score with its model",
    )
    parser.add_argument(
        "--partitions", type=int, help="customer buckets for every size (default: one per 100k customers)"
    )
    return parser


def _print_size(r: SizeResult) -> None:
    """One size's stage table and ratios."""
    print(
        f"\n{r.customers:,} customers in {r.partitions} partition(s), {r.interaction_rows:,} interactions "
        f"({r.interaction_input_mb:.0f} MB of needed columns)"
    )
    print(f"  {'stage':<42}{'wall s':>9}{'cpu s':>9}{'peak RSS MB':>13}")
    for s in r.stages:
        print(f"  {s.stage:<42}{s.wall_s:>9.1f}{s.cpu_s:>9.1f}{s.peak_rss_mb:>13.0f}")
    print(
        f"  feature stage vs DuckDB: time x{r.feature_time_ratio_vs_duckdb:.2f}, peak memory "
        f"x{r.feature_peak_ratio_vs_duckdb:.2f}; peak / input columns x{r.feature_peak_over_input_columns:.2f}"
    )
    if r.score_time_ratio_vs_plain_predict is not None:
        print(
            f"  scoring (validated input, reason codes, report, MLflow run) vs features + plain LightGBM predict: "
            f"time x{r.score_time_ratio_vs_plain_predict:.2f}"
        )
    if r.sampling:
        full, sampled = r.sampling.get("1.0"), r.sampling.get("0.2")
        print(
            f"  sampled training (negatives at 0.2, weighted): test ROC AUC {sampled['test_roc_auc']:.4f} vs "
            f"{full['test_roc_auc']:.4f} without sampling (difference "
            f"{sampled['test_roc_auc'] - full['test_roc_auc']:+.4f}); ECE {sampled['test_ece']:.4f}"
        )


def _print_cost_curve(report: list[SizeResult]) -> None:
    """Wall seconds per million interaction rows of each stage, across the sizes."""
    print("\ncost curve (wall seconds per million interaction rows)")
    stages = [s.stage for s in report[0].stages if s.stage != "generate"]
    print(f"  {'stage':<42}" + "".join(f"{r.customers:>12,}" for r in report))
    for name in stages:
        cells = []
        for r in report:
            s = next((x for x in r.stages if x.stage == name), None)
            cells.append(f"{s.wall_s / (r.interaction_rows / 1e6):>12.2f}" if s else f"{'':>12}")
        print(f"  {name:<42}" + "".join(cells))


if __name__ == "__main__":
    sys.exit(main())
