"""Rules of the code's layout that a reviewer would otherwise have to remember."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return out


def test_no_test_module_imports_another_or_conftest():
    """Shared builders live in tests/builders.py; fixtures in conftest.py, which pytest loads itself."""
    offenders = {}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        wrong = {m for m in _imported_modules(path) if m.startswith("tests") and m != "tests.builders"}
        wrong |= {m for m in _imported_modules(path) if m.split(".")[-1] == "conftest"}
        if wrong:
            offenders[str(path.relative_to(ROOT))] = sorted(wrong)
    assert offenders == {}


def test_the_runtime_never_imports_the_simulator_the_benchmark_or_duckdb():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import pipelines.cli, pipelines.stages.train, pipelines.stages.score, pipelines.stages.recover\n"
        "import pipelines.engines.partitioned\n"
        "pipelines.cli.build_parser()\n"  # every subcommand's options, as each run of `churn` builds them
        "print(sorted(m for m in sys.modules if m.startswith(('pipelines.simulation.synthetic', "
        "'pipelines.simulation.generate', 'pipelines.benchmark', 'duckdb'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
