"""Output folders hold exactly one complete run, the earlier or the new one: re-runs, failures and a killed process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.cli import EXIT_INPUT, main
from pipelines.io.files import atomic_folder

CHURN = [sys.executable, "-m", "pipelines.cli"]


def listing(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (parquet written twice from the same frame is byte-identical)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def partials(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.partial-*"))


@pytest.mark.parametrize("partitions", [1, 3])
def test_validating_into_a_used_folder_leaves_only_the_new_run(small_dataset, tmp_path, partitions):
    data, _, _ = small_dataset
    out = tmp_path / "validated"
    engine = ["--partitions", str(partitions)]
    assert main(["validate", "--data", str(data), "--out", str(out), "--end-date", "2026-06-30", *engine]) == 0
    assert {p.name for p in (out / "tables").iterdir()} == {
        "customers.parquet",
        "interactions.parquet",
        "feedback.parquet",
        "churn_events.parquet",
        "retention_actions.parquet",
    }
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    for name in ("customers", "churn_events"):
        shutil.copy(data / f"{name}.parquet", fewer / f"{name}.parquet")
    assert main(["validate", "--data", str(fewer), "--out", str(out), "--end-date", "2026-06-30", *engine]) == 0
    assert {p.name for p in (out / "tables").iterdir()} == {"customers.parquet", "churn_events.parquet"}
    assert {p.name for p in (out / "quarantine").iterdir()} <= {"customers.parquet", "churn_events.parquet"}
    assert not partials(out) and sorted(p.name for p in tmp_path.iterdir()) == ["fewer", "validated"]


def test_a_folder_that_is_not_an_earlier_output_is_refused_and_left_alone(small_dataset, tmp_path, capsys):
    data, _, _ = small_dataset
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["validate", "--data", str(data), "--out", str(out)]) == EXIT_INPUT
    assert "is not the output of an earlier run" in capsys.readouterr().err
    assert listing(out) == {"notes.txt": b"keep me"} and not partials(out)


def test_a_failure_midway_leaves_the_earlier_run(tmp_path):
    out = tmp_path / "out"
    with atomic_folder(out, "done") as work:
        (work / "done").write_text("first")
    with pytest.raises(RuntimeError), atomic_folder(out, "done") as work:
        (work / "done").write_text("second")
        (work / "half").write_text("x")
        raise RuntimeError("killed")
    assert listing(out) == {"done": b"first"} and not partials(out)


def test_a_killed_validate_leaves_the_earlier_run_and_the_next_run_cleans_up(small_dataset, tmp_path):
    """SIGKILL ``churn validate`` while it writes its output: the folder still holds the earlier run, whole."""
    data, _, _ = small_dataset
    out = tmp_path / "validated"
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    shutil.copy(data / "customers.parquet", fewer / "customers.parquet")
    assert main(["validate", "--data", str(fewer), "--out", str(out), "--end-date", "2026-06-30"]) == 0
    before = listing(out)

    killed_midway = False
    for _ in range(3):  # the kill lands while the output is written; retried if the run finished first
        run = subprocess.Popen(
            [*CHURN, "validate", "--data", str(data), "--out", str(out), "--end-date", "2026-06-30"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while run.poll() is None and not partials(out):
            time.sleep(0.001)
        if run.poll() is None:
            os.kill(run.pid, signal.SIGKILL)
            run.wait()
            killed_midway = True
            break
        assert run.returncode == 0
        assert main(["validate", "--data", str(fewer), "--out", str(out), "--end-date", "2026-06-30"]) == 0
    assert killed_midway, "the run finished before it could be killed three times"
    assert listing(out) == before  # the earlier run, complete, nothing of the killed one
    assert len(partials(out)) == 1  # what the killed run left, hidden beside the folder

    assert main(["validate", "--data", str(data), "--out", str(out), "--end-date", "2026-06-30"]) == 0
    assert not partials(out)  # removed by the next run (its process is gone)
    assert len(list((out / "tables").iterdir())) == 5
