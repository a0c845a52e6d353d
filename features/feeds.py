"""How many rows each data feed delivered before a date: the input of drift's data-completeness checks.

A feed is one kind of row of one event table: an interaction type (``interactions:login``) or a survey
(``feedback:NPS``). A feed that stops (an app outage, a survey programme switched off, a broken export) shows as a
fall in its rows per customer, whatever the model makes of the features built from it.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

FEEDS = {"interactions": "type", "feedback": "survey"}  # event table -> the column whose values are its feeds
FEED_DAYS = 30  # the window before the date that is counted


def feed_counts(tables: Mapping[str, object], as_of: pd.Timestamp, days: int = FEED_DAYS) -> dict[str, int]:
    """Rows of each feed stamped in ``[as_of - days, as_of)``, by ``table:kind``.

    Tables the data lacks are absent, and so are tables handed over in batches (the partitioned engine's
    :class:`features.build.EventBatches`: counting them would read the largest table twice); a kind with no rows in
    the window is absent too, and reads as zero against a reference that had it.
    """
    start = as_of - pd.Timedelta(days=days)
    counts: dict[str, int] = {}
    for table, column in FEEDS.items():
        frame = tables.get(table)
        if not isinstance(frame, pd.DataFrame) or column not in frame or "timestamp" not in frame:
            continue
        window = frame.loc[(frame["timestamp"] >= start) & (frame["timestamp"] < as_of), column]
        counts |= {f"{table}:{kind}": int(n) for kind, n in window.astype(str).value_counts().items()}
    return counts
