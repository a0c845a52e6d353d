"""One place picks the engine; every engine offers the same operations."""

import pytest

from pipelines.engines import InMemory, Partitioned, Spark, engine_for
from pipelines.errors import UserError


def test_engine_for_picks_by_kind_and_partitions():
    assert isinstance(engine_for("pandas"), InMemory)
    assert engine_for("pandas", 3) == Partitioned(3)
    assert engine_for("spark", 1) == Spark(1) and engine_for("spark", 4) == Spark(4)
    for wrong in (("dask", 1), ("pandas", 0)):
        with pytest.raises(UserError):
            engine_for(*wrong)


@pytest.mark.parametrize("engine", [InMemory(), Partitioned(2), Spark(2)])
def test_every_engine_offers_the_same_operations(engine):
    for operation in ("validate", "snapshot", "score_inputs"):
        assert callable(getattr(engine, operation))
    assert engine.name in ("pandas", "spark")
