"""The history table: every final metrics row, as the Parquet files the Flink job writes, registered in a
Delta Lake log (`sync`), compacted and expired (`maintenance`), read back and plotted (`query`, `plot`)."""
