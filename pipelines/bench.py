"""Benchmarks (not timed tests): wall time, CPU time and peak memory of each stage.

Each stage runs in its own child process so that peak RSS belongs to that
stage alone. Results are printed as a table and saved to ``data/bench/results.json``.

    python -m pipelines.bench [--customers 100000] [--months 24] [--as-of-count 12]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

BENCH_DIR = Path("data/bench")
END = "2026-06-30"


def run_stage(name: str, argv: list[str]) -> dict:
    """Run ``churn ARGV`` in a child process; return wall, CPU and peak RSS of that child."""
    code = (
        "import json, resource, sys, time\n"
        "from pipelines.cli import main\n"
        "t = time.perf_counter()\n"
        f"rc = main({argv!r})\n"
        "u = resource.getrusage(resource.RUSAGE_SELF)\n"
        "print(json.dumps({'rc': rc, 'wall_s': time.perf_counter() - t, 'cpu_s': u.ru_utime + u.ru_stime, 'peak_rss_mb': u.ru_maxrss / 1024}), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"benchmark stage {name} failed:\n{proc.stderr[-2000:]}")
    result = json.loads(lines[-1])
    if result["rc"] != 0:
        raise SystemExit(f"benchmark stage {name} exited {result['rc']}:\n{proc.stderr[-2000:]}")
    return {"stage": name, **{k: v for k, v in result.items() if k != "rc"}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--as-of-count", type=int, default=12, help="monthly as-of dates (default 12)")
    args = parser.parse_args(argv)

    data = BENCH_DIR / f"c{args.customers}_m{args.months}"
    results = []
    if not (data / "customers.parquet").exists():
        results.append(run_stage("generate", ["generate", "--customers", str(args.customers), "--months", str(args.months), "--out", str(data)]))
    results.append(run_stage("validate", ["validate", "--data", str(data), "--out", str(BENCH_DIR / "validated"), "--end-date", END]))
    last = pd.Timestamp(END) - pd.Timedelta(days=89)
    dates = pd.date_range(end=pd.Timestamp(year=last.year, month=last.month, day=1), periods=args.as_of_count, freq="MS")
    snap_args = ["snapshot", "--data", str(data), "--end-date", END, "--horizon-days", "90", "--out", str(BENCH_DIR / "snapshot.parquet")]
    for d in dates:
        snap_args += ["--as-of", d.date().isoformat()]
    results.append(run_stage(f"snapshot x{len(dates)} (validate + features + labels)", snap_args))

    rows = pd.read_parquet(BENCH_DIR / "snapshot.parquet", columns=["as_of"]).shape[0]
    interactions = pd.read_parquet(data / "interactions.parquet", columns=["customer_id"]).shape[0]
    report = {"customers": args.customers, "months": args.months, "interactions": interactions, "snapshot_rows": rows, "stages": results}
    (BENCH_DIR / "results.json").write_text(json.dumps(report, indent=2))
    print(f"{args.customers:,} customers, {interactions:,} interactions, {len(dates)} as-of dates -> {rows:,} snapshot rows")
    print(f"{'stage':<48}{'wall s':>9}{'cpu s':>9}{'peak RSS MB':>13}")
    for r in results:
        print(f"{r['stage']:<48}{r['wall_s']:>9.1f}{r['cpu_s']:>9.1f}{r['peak_rss_mb']:>13.0f}")
    print(f"saved {BENCH_DIR / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
