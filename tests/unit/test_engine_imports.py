"""pyspark is an optional extra: only choosing the Spark engine imports it (pipelines/engines/__init__.py)."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _loaded_after(imports: str) -> list[str]:
    """Modules of pyspark and of the Spark engine loaded by ``imports`` in a fresh interpreter, started as the CLI
    starts (pyspark.pandas kept out first: pipelines/compat.py)."""
    code = (
        "import sys\n"
        "from pipelines.compat import skip_pyspark_pandas\n"
        "skip_pyspark_pandas()\n"
        f"{imports}\n"
        "print(sorted(m for m, module in sys.modules.items() if module is not None\n"
        "             and m.startswith(('pyspark', 'pipelines.engines.spark'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return ast.literal_eval(out.stdout.strip())


def test_the_engines_validate_and_snapshot_do_not_import_pyspark():
    imports = (
        "import pipelines.cli, pipelines.engines, pipelines.engines.partitioned, pipelines.stages.snapshot\n"
        "from pipelines.engines import engine_for\n"
        "engine_for('spark', 2)"  # choosing is not running: the module is imported by the engine's operations
    )
    assert _loaded_after(imports) == []


def test_scoring_and_training_do_not_import_the_spark_engine():
    # mlflow imports pyspark itself when it is installed (mlflow.types.schema), so only the engine is checked here.
    loaded = _loaded_after("import pipelines.stages.score, pipelines.stages.train, pipelines.stages.recover")
    assert [m for m in loaded if m.startswith("pipelines.engines.spark")] == []
