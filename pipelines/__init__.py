"""The Flink job and its entry points (minicluster via `modelmon run`, `flink run -py pipelines/job.py`)."""
