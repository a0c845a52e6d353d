"""Self-contained HTML reports (scoring, recovery)."""
