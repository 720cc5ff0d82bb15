"""Market data at rest: Arrow schemas, the Parquet lake, import, validation and generation."""
