"""Workarounds for the pinned stack, each with its reason."""

from __future__ import annotations

import sys


def skip_pyspark_pandas() -> None:
    """Keep pandera from importing ``pyspark.pandas``.

    With the ``spark`` extra installed, ``import pandera`` imports
    ``pyspark.pandas`` to detect it. Under pandas 3.1 that module is
    unsupported: it warns, patches pandas and costs ~0.7 s per process. The
    pipeline never uses it (Spark runs plain ``pyspark.sql`` and Arrow), so it
    is marked absent before pandera is first imported. Call it at entry points
    (the CLI, Spark workers, the test session), never at import time.
    """
    if "pandera" not in sys.modules:
        sys.modules.setdefault("pyspark.pandas", None)
