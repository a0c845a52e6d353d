"""Reading raw extracts and writing outputs: table discovery and CSV/parquet reading (reading), value and header
normalisation of raw text (normalise), validated folders, atomic outputs and parquet/CSV writers (files)."""
