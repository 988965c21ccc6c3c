"""A single-node KRaft Kafka broker (broker + controller in one JVM) run from the jars in jvm/target/kafka.

`start` formats the storage on first use, launches the broker detached from the caller, and waits until it
answers; it is idempotent. `stop` sends SIGTERM (a clean, controlled shutdown) and waits.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from modelmon.config import Config, KafkaConfig
from modelmon.errors import ModelmonError
from modelmon.kafka_security import client_options
from modelmon.paths import jars, kafka_dir
from modelmon.processes import alive

LOG4J2 = """\
Configuration:
  Appenders:
    File:
      name: file
      fileName: "{log}"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: file
"""


class KafkaError(ModelmonError):
    pass


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str
    data_dir: Path

    def describe(self) -> str:
        state = f"running (pid {self.pid})" if self.running else "stopped"
        return f"kafka {state} on {self.bootstrap}, data in {self.data_dir}"


class LocalKafka:
    """`listener_settings` replace the client listener's security (tests run a SASL_SSL broker this way): they
    are merged into server.properties, and the broker is reached with the config's `kafka.security`."""

    def __init__(self, cfg: Config, listener_settings: Mapping[str, str] | None = None) -> None:
        self.cfg = cfg
        self.listener_settings = dict(listener_settings or {})
        self.local = cfg.local_kafka
        self.root = kafka_dir(cfg)
        self.pid_file = self.root / "broker.pid"
        self.log_file = self.root / "broker.log"

    @property
    def bootstrap(self) -> str:
        return f"{self.local.host}:{self.local.port}"

    def status(self) -> BrokerStatus:
        pid = self._pid()
        return BrokerStatus(pid is not None, pid, self.bootstrap, self.root)

    def start(self) -> BrokerStatus:
        if self._pid() is not None:
            self._wait_until_answering()
            return self.status()
        if _port_open(self.local.host, self.local.port):
            raise KafkaError(f"port {self.bootstrap} is taken by another process; set local_kafka.port")
        self.root.mkdir(parents=True, exist_ok=True)
        properties = self._write_config()
        if not (self.root / "data" / "meta.properties").exists():
            self._format(properties)
        self._launch(properties)
        self._wait_until_answering()
        return self.status()

    def stop(self, timeout_s: float = 60) -> BrokerStatus:
        pid = self._pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return self.status()

    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None

    def _classpath(self) -> str:
        return os.pathsep.join(str(jar) for jar in jars(self.cfg, "kafka"))

    def _java(self, *args: str) -> list[str]:
        log4j = self.root / "log4j2.yaml"
        return ["java", f"-Dlog4j2.configurationFile={log4j}", "-cp", self._classpath(), *args]

    def _write_config(self) -> Path:
        (self.root / "log4j2.yaml").write_text(LOG4J2.format(log=self.log_file))
        host, port, controller = self.local.host, self.local.port, self.local.controller_port
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"{host}:{controller}",
            "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller}",
            "advertised.listeners": f"PLAINTEXT://{host}:{port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.root / "data"),
            "num.partitions": str(self.cfg.kafka.partitions),
            # A single node: every internal topic has one replica.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Records carry their event time as timestamp; replays and backfills are days old, and time-based
            # retention would delete them as soon as they land. Size bounds the disk instead.
            "log.retention.ms": "-1",
            "log.retention.bytes": str(1 << 30),
        }
        if self.listener_settings:
            # The client listener speaks the configured protocol; the controller stays on its own loopback port.
            protocol = self.cfg.kafka.security.protocol
            settings |= {
                "listeners": f"{protocol}://{host}:{port},CONTROLLER://{host}:{controller}",
                "advertised.listeners": f"{protocol}://{host}:{port}",
                "listener.security.protocol.map": f"{protocol}:{protocol},CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name": protocol,
                **self.listener_settings,
            }
        path = self.root / "server.properties"
        path.write_text("".join(f"{key}={_property_value(value)}\n" for key, value in settings.items()))
        return path

    def _format(self, properties: Path) -> None:
        command = self._java("kafka.tools.StorageTool", "format", "-t", new_cluster_id(), "-c", str(properties))
        result = subprocess.run([*command, "--standalone"], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise KafkaError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")

    def _launch(self, properties: Path) -> None:
        command = self._java(f"-Xmx{self.local.heap}", f"-Xms{self.local.heap}", "kafka.Kafka", str(properties))
        with open(self.root / "broker.out", "ab") as out:
            # A session of its own: the broker outlives `modelmon kafka start` and ignores its Ctrl-C.
            process = subprocess.Popen(command, stdout=out, stderr=out, start_new_session=True)
        self.pid_file.write_text(str(process.pid))

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + self.local.start_timeout.total_seconds()
        while time.monotonic() < deadline:
            if self._pid() is None:
                raise KafkaError(f"the Kafka broker exited during start-up; see {self.log_file}")
            if _broker_ready(self.bootstrap, self.cfg.kafka):
                return
            time.sleep(0.5)
        raise KafkaError(f"the Kafka broker did not answer on {self.bootstrap} in time; see {self.log_file}")


def new_cluster_id() -> str:
    """A random KRaft cluster id: a UUID in URL-safe base64, like Kafka's own `Uuid.randomUuid()`.

    One UUID in 64 encodes to a string that starts with "-", which the storage tool's argument parser takes
    for an option; Kafka draws again in that case, and so does this.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _property_value(value: str) -> str:
    """A value in Java properties syntax, where a backslash escapes: a literal one (JAAS lines) is doubled."""
    return value.replace("\\", "\\\\")


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _broker_ready(bootstrap: str, kafka: KafkaConfig) -> bool:
    """True once the broker serves metadata (a listening socket alone is not enough)."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError as ClientError

    host, port = bootstrap.rsplit(":", 1)
    if not _port_open(host, int(port)):
        return False
    try:
        admin = KafkaAdminClient(**(client_options(kafka) | {"bootstrap_servers": bootstrap}), request_timeout_ms=3000)
    except (ClientError, OSError):
        return False
    try:
        admin.list_topics()
        return True
    except (ClientError, OSError):
        return False
    finally:
        admin.close()
