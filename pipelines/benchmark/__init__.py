"""`make bench`: every stage timed against a DuckDB reference. Needs the dev dependencies (duckdb); not shipped in
the wheel."""
