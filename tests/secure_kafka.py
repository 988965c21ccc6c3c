"""A real broker that accepts only SASL_SSL: TLS with a certificate from a throwaway CA (trustme) and SASL
PLAIN users, on ports of its own. The config it returns reaches it with `kafka.security` alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization

from modelmon.config import Config
from modelmon.kafka_local import LocalKafka
from modelmon.kafka_security import jaas_quoted
from tests.kafka_helpers import TEST_KAFKA_PORT

SECURE_PORT = TEST_KAFKA_PORT + 20
USER, PASSWORD = "modelmon", "s3cret 'quoted' \"and\" ;semicolon\\"
PASSWORD_ENV = "MODELMON_TEST_KAFKA_PASSWORD"


def secure_config(data_dir: Path, cafile: Path) -> Config:
    return Config.model_validate(
        {
            "kafka": {
                "bootstrap_servers": f"127.0.0.1:{SECURE_PORT}",
                "security": {
                    "protocol": "SASL_SSL",
                    "sasl_mechanism": "PLAIN",
                    "username": USER,
                    "password": {"env": PASSWORD_ENV},
                    "ssl_cafile": str(cafile),
                },
            },
            "local_kafka": {"port": SECURE_PORT, "controller_port": SECURE_PORT + 1},
            "paths": {"data_dir": str(data_dir)},
        }
    )


def start_secure_broker(root: Path) -> Iterator[tuple[LocalKafka, Config]]:
    """Yields the broker and a config that reaches it (PASSWORD_ENV must be set by the caller)."""
    root.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cafile = root / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    # Kafka's PEM key store wants the key as PKCS#8, followed by the certificate chain.
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    keystore = root / "broker.pem"
    keystore.write_bytes(pkcs8 + b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    cfg = secure_config(root / "data", cafile)
    jaas = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="broker" password="broker-secret" user_broker="broker-secret" user_{USER}={jaas_quoted(PASSWORD)};'
    )
    broker = LocalKafka(
        cfg,
        listener_settings={
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(keystore),
            # The broker talks to itself over this listener too, and checks at start-up that it can.
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(cafile),
            "sasl.enabled.mechanisms": "PLAIN",
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            "listener.name.sasl_ssl.plain.sasl.jaas.config": jaas,
        },
    )
    broker.start()
    try:
        yield broker, cfg
    finally:
        broker.stop()
