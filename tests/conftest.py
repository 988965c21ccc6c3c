from collections.abc import Iterator
from pathlib import Path

import pytest

from modelmon.kafka_local import LocalKafka
from tests.kafka_helpers import start_broker


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """One real KRaft broker for the whole session (integration and e2e tiers), on test ports; every test
    uses its own topics."""
    yield from start_broker(tmp_path_factory.mktemp("kafka"))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "modelmon"
