"""The local broker's cluster id is one the storage tool's argument parser accepts."""

from __future__ import annotations

import base64
import uuid

import pytest

from modelmon import kafka_local


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0xF8 encodes to "-" as its first base64 character: the first draw is one the parser would take for an option.
    draws = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x10" + bytes(15))])
    monkeypatch.setattr(kafka_local.uuid, "uuid4", lambda: next(draws))
    cluster_id = kafka_local.new_cluster_id()
    assert cluster_id == base64.urlsafe_b64encode(b"\x10" + bytes(15)).decode().rstrip("=")
    assert len(cluster_id) == 22


def test_cluster_ids_are_url_safe_base64_of_sixteen_bytes() -> None:
    for _ in range(500):
        cluster_id = kafka_local.new_cluster_id()
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
