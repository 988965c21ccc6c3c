"""Jinja2 templates of the Flink SQL job, one statement per file (rendered by modelmon.render)."""
