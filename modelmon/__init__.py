"""modelmon: real-time model performance monitoring on Apache Flink."""

__version__ = "0.1.0"
