import logging
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


@pytest.fixture(autouse=True)
def _modelmon_logs_reach_caplog() -> Iterator[None]:
    """The CLI gives modelmon's loggers a handler of their own (modelmon.logs); undo it after each test so
    caplog, which listens at the root, sees them in the next."""
    yield
    own = logging.getLogger("modelmon")
    own.handlers.clear()
    own.propagate = True
    own.setLevel(logging.NOTSET)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "modelmon"
