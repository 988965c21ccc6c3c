"""Pure metric math for the Flink scalar UDFs that run once per aggregated window row (no PyFlink import)."""
