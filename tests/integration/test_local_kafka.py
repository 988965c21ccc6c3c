"""`modelmon kafka start|stop|status` against a real broker of its own (not the session's)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from kafka import KafkaConsumer

from modelmon.cli import cli
from tests.kafka_helpers import TEST_KAFKA_PORT, broker_config

pytestmark = pytest.mark.integration


def test_start_is_idempotent_and_stop_is_clean(tmp_path: Path) -> None:
    port = TEST_KAFKA_PORT + 10
    raw = broker_config(tmp_path / "data").model_dump(mode="json")
    raw["kafka"]["bootstrap_servers"] = f"127.0.0.1:{port}"
    raw["kafka"]["partitions"] = 3
    raw["local_kafka"].update(port=port, controller_port=port + 1)
    config_file = tmp_path / "modelmon.yaml"
    config_file.write_text(yaml.safe_dump(raw))
    runner = CliRunner()

    def modelmon(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, ["--config", str(config_file), *args])
        return result.exit_code, result.output

    assert modelmon("kafka", "status")[0] == 1
    try:
        code, output = modelmon("kafka", "start")
        assert code == 0, output
        assert "running" in output and "created topics: predictions, labels" in output
        assert (tmp_path / "data" / "kafka" / "data" / "meta.properties").exists()
        pid = output.split("pid ")[1].split(")")[0]
        code, again = modelmon("kafka", "start")
        assert code == 0 and f"pid {pid}" in again and "created topics" not in again

        consumer = KafkaConsumer(bootstrap_servers=f"127.0.0.1:{port}")
        partitions = {topic: len(consumer.partitions_for_topic(topic)) for topic in ("predictions", "labels")}
        consumer.close()
        assert partitions == {"predictions": 3, "labels": 3}
        assert modelmon("kafka", "status") == (0, again.splitlines()[0] + "\n")
    finally:
        code, output = modelmon("kafka", "stop")
    assert code == 0 and "stopped" in output
    assert modelmon("kafka", "status")[0] == 1
    # Restart on the formatted storage: topics survive.
    try:
        code, output = modelmon("kafka", "start")
        assert code == 0 and "created topics" not in output
    finally:
        modelmon("kafka", "stop")
