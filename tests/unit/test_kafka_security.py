"""kafka.security: one config, two dialects (the connector's Java properties, kafka-python's options), the
password read only when a client or job is built, redacted in printed SQL; and no config value, however
hostile, changes the rendered SQL outside its string literals."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelmon.config import Config, ConfigError, load_config
from modelmon.flink_dist import local_log4j_properties, prepare_flink_home
from modelmon.kafka_security import client_options, connector_properties, scrub
from modelmon.render import render_job

HOSTILE = "it's \"quoted\"; -- '); DROP TABLE metrics_sink; \\"
ENV = {"KAFKA_PW": HOSTILE}


def _secure(protocol: str = "SASL_SSL", **security: Any) -> Config:
    sasl = {"sasl_mechanism": "SCRAM-SHA-512", "username": "alice", "password": {"env": "KAFKA_PW"}}
    return Config.model_validate(
        {
            "paths": {"data_dir": "/var/lib/modelmon"},
            "kafka": {
                "bootstrap_servers": "kafka-1:9093,kafka-2:9093",
                "security": {"protocol": protocol, **(sasl if protocol.startswith("SASL") else {}), **security},
            },
        }
    )


def test_plaintext_adds_nothing() -> None:
    assert connector_properties(Config().kafka, reveal=True) == {}
    assert client_options(Config().kafka) == {"bootstrap_servers": ["127.0.0.1:9092"], "security_protocol": "PLAINTEXT"}


def test_sasl_ssl_in_both_dialects() -> None:
    kafka = _secure(ssl_cafile="/etc/kafka/ca.pem").kafka
    assert connector_properties(kafka, reveal=True, environ=ENV) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        # The login module as the connector jar relocates it; JAAS quoting: a backslash escapes.
        "sasl.jaas.config": "org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule"
        ' required username="alice" '
        'password="it\'s \\"quoted\\"; -- \'); DROP TABLE metrics_sink; \\\\";',
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": "/etc/kafka/ca.pem",
    }
    assert client_options(kafka, environ=ENV) == {
        "bootstrap_servers": ["kafka-1:9093", "kafka-2:9093"],
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "alice",
        "sasl_plain_password": HOSTILE,
        "ssl_check_hostname": True,
        "ssl_cafile": "/etc/kafka/ca.pem",
    }


def test_ssl_without_hostname_check() -> None:
    kafka = _secure("SSL", ssl_check_hostname=False).kafka
    assert connector_properties(kafka, reveal=False) == {
        "security.protocol": "SSL",
        "ssl.endpoint.identification.algorithm": "",
    }
    assert client_options(kafka)["ssl_check_hostname"] is False


def test_a_missing_password_fails_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"kafka\.security\.password: .*environment variable KAFKA_PW"):
        client_options(_secure().kafka, environ={})
    with pytest.raises(ConfigError, match=r"kafka\.security\.password"):
        render_job(_secure(), reveal_secrets=True)  # run with os.environ, where KAFKA_PW is not set


@pytest.mark.parametrize(
    ("security", "message"),
    [
        ({"protocol": "SASL_SSL"}, "needs sasl_mechanism, username and password"),
        ({"protocol": "PLAINTEXT", "username": "alice"}, "need a SASL_ protocol"),
        (
            {
                "protocol": "SASL_PLAINTEXT",
                "ssl_cafile": "/ca.pem",
                "sasl_mechanism": "PLAIN",
                "username": "a",
                "password": {"env": "X"},
            },
            "ssl_cafile needs protocol SSL or SASL_SSL",
        ),
        ({"protocol": "TLS"}, "protocol"),
        (
            {"protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "username": "a", "password": "inline"},
            "never as its value",
        ),
        (
            {"protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "username": 'a" b', "password": {"env": "X"}},
            "not a valid Kafka user name",
        ),
    ],
)
def test_bad_security_config_fails_at_start_naming_the_field(
    tmp_path: Path, security: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=r"config field kafka\.security") as error:
        _load(tmp_path, {"kafka": {"security": security}})
    assert message in str(error.value)


def _kafka_tables(sql: str) -> list[str]:
    return [s for s in sql.split(";\n") if re.search(r"'connector' = '(upsert-)?kafka'", s)]


def test_every_kafka_table_gets_the_settings_and_printed_sql_never_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_PW", HOSTILE)
    cfg = _secure()
    printed, running = render_job(cfg), render_job(cfg, reveal_secrets=True)
    tables = _kafka_tables(running.to_sql_script())
    assert len(tables) == 6  # predictions, labels, the labelled-predictions replay; three sinks (one upsert)
    for table in tables:
        assert "'properties.security.protocol' = 'SASL_SSL'" in table
        assert "'properties.sasl.mechanism' = 'SCRAM-SHA-512'" in table
    assert "DROP TABLE" not in printed.to_sql_script()
    assert "<redacted: environment variable KAFKA_PW>" in printed.to_sql_script()
    # The password as one SQL literal: its quotes doubled.
    assert "password=\"it''s \\\"quoted\\\"; -- ''); DROP TABLE metrics_sink; \\\\\";'" in running.to_sql_script()
    # A rotated password keeps the checkpoints: the fingerprint is of the printable SQL.
    assert printed.fingerprint == running.fingerprint


_LITERAL_OR_COMMENT = re.compile(r"'(?:[^']|'')*'|--[^\n]*")


def _skeleton(sql: str) -> str:
    """The SQL with every string literal emptied and every comment dropped: what a value could inject into."""
    return _LITERAL_OR_COMMENT.sub(lambda m: "''" if m.group().startswith("'") else "", sql)


def test_hostile_values_stay_inside_their_literals(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every config value that reaches SQL as free text (paths, the password, the CA file) is rendered
    hostile and benign: outside string literals and comments the two scripts are identical."""

    def script(value: str) -> str:
        monkeypatch.setenv("KAFKA_PW", value)
        cfg = Config.model_validate(
            {
                "paths": {"data_dir": str(tmp_path / f"data{value}")},
                "history": {"path": str(tmp_path / f"history{value}")},
                "kafka": {
                    "security": {
                        "protocol": "SASL_SSL",
                        "sasl_mechanism": "PLAIN",
                        "username": "alice",
                        "password": {"env": "KAFKA_PW"},
                        "ssl_cafile": str(tmp_path / f"ca{value}.pem"),
                    }
                },
            }
        )
        return render_job(cfg, bounded=False, reveal_secrets=True).to_sql_script()

    hostile, benign = script(HOSTILE), script("x")
    assert hostile != benign
    assert _skeleton(hostile) == _skeleton(benign)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (("topics", "predictions"), "predictions'; DROP TABLE x; --"),
        (("kafka", "group_id"), "g' OR '1'='1"),
        (("kafka", "bootstrap_servers"), "host:9092', 'x' = 'y"),
        (("job", "name"), "job'; --"),
        (("job", "python"), "/usr/bin/python3'; --"),
        (("segments",), [{"name": "country`; --", "values": ["US"]}]),
        (("segments",), [{"name": "country", "values": ["US') OR ('1"]}]),
    ],
)
def test_values_that_reach_sql_unquoted_are_validated(tmp_path: Path, field: tuple[str, ...], value: Any) -> None:
    data: dict[str, Any] = {field[0]: value} if len(field) == 1 else {field[0]: {field[1]: value}}
    with pytest.raises(ConfigError, match=rf"config field {re.escape('.'.join(field))}"):
        _load(tmp_path, data)


def _load(tmp_path: Path, data: dict[str, Any]) -> Config:
    config_file = tmp_path / "modelmon.yaml"
    config_file.write_text(yaml.safe_dump(data))
    return load_config(config_file, environ={})


def test_scrub_removes_the_password_in_every_form_the_sql_holds_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_PW", HOSTILE)
    cfg = _secure()
    echoed = render_job(cfg, reveal_secrets=True).to_sql_script() + f"\npassword: {HOSTILE}\n"
    scrubbed = scrub(echoed, cfg.kafka)
    assert "DROP TABLE metrics_sink" not in scrubbed and "quoted" not in scrubbed
    assert scrubbed.count("<redacted: environment variable KAFKA_PW>") == 7  # six tables and the raw line
    assert scrub(echoed, Config().kafka) == echoed


def test_flink_log_files_quiet_the_logger_that_writes_worker_environments(tmp_path: Path) -> None:
    """Beam logs a Python worker's whole environment (a password variable too) at INFO; every log4j file a
    modelmon JVM uses (a cluster's and SQL client's home, a local run's gateway) turns that logger off."""
    gateway = tmp_path / "flink-sql-gateway.jar"
    gateway.write_bytes(b"")
    home = prepare_flink_home(tmp_path / "data", gateway)
    files = [*sorted((home / "conf").glob("log4j*.properties")), local_log4j_properties(tmp_path / "data")]
    assert len(files) == 5
    for path in files:
        assert not path.is_symlink()  # a generated copy; the bundle in site-packages is left alone
        text = path.read_text()
        assert "rootLogger" in text
        assert re.search(
            r"^logger\.(\w+)\.name = org\.apache\.beam\.runners\.fnexecution\.control\.DefaultJobBundleFactory\n"
            r"logger\.\1\.level = OFF$",
            text,
            re.M,
        ), path
