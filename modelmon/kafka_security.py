"""One set of Kafka security settings (`kafka.security`), spoken in the two dialects that need it: Kafka's Java
client properties for Flink's connector (rendered into the SQL) and kafka-python's options for modelmon's own
producers, consumers and admin clients.

The password is read from its environment variable or file only here, when a client or a job is built; the
SQL that `modelmon render` prints carries a marker naming where the password comes from instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelmon.config import ConfigError, KafkaConfig, KafkaSecurityConfig

# flink-sql-connector-kafka relocates the Kafka client into this package, and a JAAS line names a login
# module by class: the unshaded name fails with "No LoginModule found" and the job restarts forever.
_SHADED = "org.apache.flink.kafka.shaded."
_LOGIN_MODULES = {
    "PLAIN": f"{_SHADED}org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": f"{_SHADED}org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": f"{_SHADED}org.apache.kafka.common.security.scram.ScramLoginModule",
}


def password(security: KafkaSecurityConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The SASL password, read now; a missing one fails naming the field."""
    if security.password is None:
        return None
    try:
        return security.password.resolve(environ)
    except ConfigError as exc:
        raise ConfigError(f"config field kafka.security.password: {exc}") from None


def redacted(security: KafkaSecurityConfig) -> str:
    """What stands for the password in printed SQL."""
    assert security.password is not None
    return f"<redacted: {security.password.describe()}>"


def scrub(text: str, kafka: KafkaConfig, environ: Mapping[str, str] | None = None) -> str:
    """`text` (e.g. the SQL client's echo of the statements it ran) with the password, in every form the SQL
    holds it (raw, JAAS-escaped, as a SQL literal), replaced by the redaction marker."""
    security = kafka.security
    if security.password is None:
        return text
    try:
        secret = password(security, environ)
    except ConfigError:
        return text
    assert secret is not None
    jaas = jaas_quoted(secret)[1:-1]
    forms = {secret, jaas, secret.replace("'", "''"), jaas.replace("'", "''")}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, redacted(security))
    return text


def jaas_quoted(value: str) -> str:
    """A value as a double-quoted JAAS option (for the connector here; for a broker's user list in tests)."""
    # Kafka parses sasl.jaas.config with a StreamTokenizer: inside double quotes a backslash escapes.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def connector_properties(
    kafka: KafkaConfig, *, reveal: bool, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Kafka client properties for Flink's connector (each becomes 'properties.<key>' in a table's WITH).

    With reveal=False the password is replaced by a marker naming its source: for printing, never for running.
    """
    security = kafka.security
    if security.protocol == "PLAINTEXT":
        return {}
    properties: dict[str, str] = {"security.protocol": security.protocol}
    if security.sasl_mechanism is not None:
        assert security.username is not None
        secret = password(security, environ) if reveal else redacted(security)
        assert secret is not None
        properties["sasl.mechanism"] = security.sasl_mechanism
        properties["sasl.jaas.config"] = (
            f"{_LOGIN_MODULES[security.sasl_mechanism]} required "
            f"username={jaas_quoted(security.username)} password={jaas_quoted(secret)};"
        )
    if security.ssl_cafile is not None:
        properties["ssl.truststore.type"] = "PEM"
        properties["ssl.truststore.location"] = str(security.ssl_cafile)
    if security.protocol.endswith("SSL") and not security.ssl_check_hostname:
        properties["ssl.endpoint.identification.algorithm"] = ""
    return properties


def client_options(kafka: KafkaConfig, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for kafka-python's KafkaProducer, KafkaConsumer and KafkaAdminClient."""
    security = kafka.security
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers.split(","),
        "security_protocol": security.protocol,
    }
    if security.sasl_mechanism is not None:
        options |= {
            "sasl_mechanism": security.sasl_mechanism,
            "sasl_plain_username": security.username,
            "sasl_plain_password": password(security, environ),
        }
    if security.protocol.endswith("SSL"):
        options["ssl_check_hostname"] = security.ssl_check_hostname
        if security.ssl_cafile is not None:
            options["ssl_cafile"] = str(security.ssl_cafile)
    return options
