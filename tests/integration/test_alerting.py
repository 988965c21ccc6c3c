"""Alerting end to end against real components: a bounded job run over simulated traffic that degrades
mid-stream, the metrics topic fed row by row to the AlertEngine, real HTTP receivers standing in for Slack,
PagerDuty and a webhook, a real SMTP server (aiosmtpd, STARTTLS and AUTH), and the real broker for the
alerts and control topics. Then the simulator obeying a rollback published on the control topic."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from modelmon.alerting.engine import AlertEngine
from sklearn.metrics import roc_auc_score

from modelmon.config import Config
from modelmon.kafka_local import LocalKafka
from modelmon.topics import read_topic
from tests.kafka_helpers import fresh_config, produce, run_cli, write_config

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
RATE = 5  # transactions per second: about 300 labels per model version and live window
MINUTES = 11
DEGRADED_FROM, DEGRADED_UNTIL = START + timedelta(minutes=4), START + timedelta(minutes=7)
SECRETS = {
    "TEST_SLACK_URL": "",  # set per test: the receiver's URL with a secret path
    "TEST_HOOK_SECRET": "hook-secret-123",
    "TEST_SMTP_USER": "alerts",
    "TEST_SMTP_PASSWORD": "smtp-password-456",
}
PAGERDUTY_KEY = "pd-routing-key-789"


# -- receivers --------------------------------------------------------------------------------------------


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 recording every POST; answers `failures` 503s first, then `status`."""

    status: int = 200
    failures: int = 0
    requests: list[Request] = field(default_factory=list)
    answered: int = 0
    url: str = ""

    def handle(self, request: Request) -> int:
        self.answered += 1
        if self.answered <= self.failures:
            return 503
        self.requests.append(request)
        return self.status


def serve(receiver: Receiver) -> tuple[ThreadingHTTPServer, threading.Thread]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status = receiver.handle(Request(self.path, dict(self.headers.items()), body))
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    found = {"slack": Receiver(), "pagerduty": Receiver(status=202), "webhook": Receiver(failures=2)}
    servers = [serve(receiver) for receiver in found.values()]
    try:
        yield found
    finally:
        for server, thread in servers:
            server.shutdown()
            server.server_close()
            thread.join(5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Mailbox:
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SECRETS["TEST_SMTP_USER"].encode(),
            SECRETS["TEST_SMTP_PASSWORD"].encode(),
        )
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    subprocess.run(
        [*request, "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[tuple[Mailbox, int, Path]]:
    """aiosmtpd on 127.0.0.1 that insists on STARTTLS and AUTH, with a certificate made for the test."""
    cert, key = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mailbox, port = Mailbox(), free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        authenticator=mailbox.authenticate,
    )
    controller.start()
    try:
        yield mailbox, port, cert
    finally:
        controller.stop()


# -- the alerting run -------------------------------------------------------------------------------------


def alerting_config(data_dir: Path, receivers: dict[str, Receiver], smtp_port: int, ca: Path, key_file: Path) -> Config:
    accuracy = {"metric": "accuracy", "op": "<", "min_samples": 100, "cooldown": "0s"}
    return fresh_config(
        data_dir,
        {
            "join": {"label_horizon": "2min"},
            "simulator": {
                "rate": RATE,
                "model_quality": 4,
                "label_delay_min": "1s",
                "label_delay_max": "10s",
                "seed": 11,
                "degradation": {"model_version": "v2", "start": "4min", "duration": "3min", "quality": 0.3},
            },
            "alerts": {
                "rules": [
                    {"name": "accuracy-low", "threshold": 0.9, "severity": "critical", **accuracy},
                    {
                        "name": "v2-accuracy-drop",
                        "relative_drop": 0.2,
                        "baseline_windows": 3,
                        "severity": "warning",
                        "models": ["v2"],
                        "action": {"rollback_to": "v1"},
                        **accuracy,
                    },
                ],
                "channels": [
                    {"type": "slack", "webhook_url": {"env": "TEST_SLACK_URL"}},
                    {
                        "type": "pagerduty",
                        "routing_key": {"file": str(key_file)},
                        "url": receivers["pagerduty"].url + "/v2/enqueue",
                        "severities": ["critical"],
                    },
                    {
                        "type": "webhook",
                        "url": receivers["webhook"].url + "/hook",
                        "secret": {"env": "TEST_HOOK_SECRET"},
                    },
                    {
                        "type": "email",
                        "host": "127.0.0.1",
                        "port": smtp_port,
                        "starttls": True,
                        "ca_file": str(ca),
                        "sender": "modelmon@example.org",
                        "recipients": ["oncall@example.org", "ml@example.org"],
                        "username": {"env": "TEST_SMTP_USER"},
                        "password": {"env": "TEST_SMTP_PASSWORD"},
                    },
                ],
                "retry": {"attempts": 4, "initial_backoff": "50ms"},
                # The metrics topic has two partitions, read one batch at a time: hold every row until the
                # end of the read (flush), then evaluate in window order.
                "lateness": "1h",
                # The simulated windows lie in the past; send their alerts all the same.
                "max_event_age": None,
            },
        },
    )


def keyed_records(cfg: Config, topic: str) -> list[tuple[str, dict[str, Any]]]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=cfg.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )
    try:
        return [(message.key.decode(), json.loads(message.value)) for message in consumer]
    finally:
        consumer.close()


def minutes_after_start(iso: str) -> float:
    return (datetime.fromisoformat(iso.replace("Z", "+00:00")) - START) / timedelta(minutes=1)


def test_a_degrading_model_fires_notifies_every_channel_once_resolves_and_asks_for_a_rollback(
    kafka_broker: LocalKafka,
    data_dir: Path,
    tmp_path: Path,
    receivers: dict[str, Receiver],
    smtp_server: tuple[Mailbox, int, Path],
) -> None:
    mailbox, smtp_port, ca = smtp_server
    key_file = tmp_path / "pagerduty-key"
    key_file.write_text(PAGERDUTY_KEY + "\n")
    cfg = alerting_config(data_dir, receivers, smtp_port, ca, key_file)
    config_file = write_config(cfg, tmp_path / "modelmon.yaml")

    start = START.strftime("%Y-%m-%dT%H:%M:%SZ")
    simulated = run_cli(config_file, "simulate", "--transactions", str(RATE * 60 * MINUTES), "--start", start)
    assert simulated.returncode == 0, simulated.stderr[-3000:]
    result = run_cli(config_file, "run", "--bounded")
    assert result.returncode == 0, result.stderr[-3000:]

    environ = {**SECRETS, "TEST_SLACK_URL": receivers["slack"].url + "/services/T0/B0/slack-secret"}
    engine = AlertEngine(cfg, environ=environ)
    rows = list(read_topic(cfg, cfg.topics.metrics))
    for row in rows:
        engine(row)
    engine.flush()
    engine.drain()
    engine.close()

    # The rules: v2 (and all versions together) fire within two windows of the degradation and resolve after.
    events = [alert for _, alert in keyed_records(cfg, cfg.topics.alerts)]
    assert engine.rules.stats.late == 0 and engine.rules.stats.evaluated > 0
    by_series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for alert in events:
        by_series.setdefault((alert["rule"], alert["model_version"]), []).append(alert)
    assert set(by_series) == {("accuracy-low", "v2"), ("accuracy-low", "*"), ("v2-accuracy-drop", "v2")}
    degraded_at = minutes_after_start(DEGRADED_FROM.isoformat())
    recovered_at = minutes_after_start(DEGRADED_UNTIL.isoformat())
    for series, series_events in by_series.items():
        assert [e["state"] for e in series_events] == ["firing", "resolved"], series
        firing, resolved = series_events
        assert degraded_at <= minutes_after_start(firing["window_start"]) < degraded_at + 2, series
        assert recovered_at <= minutes_after_start(resolved["window_start"]) <= recovered_at + 3, series
        assert firing["value"] < firing["threshold"] and resolved["value"] >= resolved["threshold"]
        assert firing["alert_id"] == resolved["alert_id"]
    critical = by_series[("accuracy-low", "v2")]
    assert critical[0]["severity"] == "critical" and critical[0]["threshold"] == 0.9
    assert critical[0]["samples"] >= 100 and critical[0]["view"] == "live"
    drop = by_series[("v2-accuracy-drop", "v2")][0]
    assert drop["baseline"] > 0.95 and drop["threshold"] == pytest.approx(drop["baseline"] * 0.8)

    # The alerts topic: every event once, keyed by its alert_id.
    keyed = keyed_records(cfg, cfg.topics.alerts)
    assert len(keyed) == 6 and all(key == alert["alert_id"] for key, alert in keyed)
    assert len({alert["event_id"] for _, alert in keyed}) == 6

    # Slack: every event once, as text and blocks, at the secret URL.
    slack = receivers["slack"].requests
    assert [r.path for r in slack] == ["/services/T0/B0/slack-secret"] * 6
    assert sorted(r.json()["text"] for r in slack) == sorted(e["message"] for e in events)
    assert all(r.json()["blocks"][0]["type"] == "section" for r in slack)

    # PagerDuty: only the critical rule, trigger then resolve per series with one dedup_key each.
    pagerduty = [r.json() for r in receivers["pagerduty"].requests]
    assert all(r.path == "/v2/enqueue" for r in receivers["pagerduty"].requests)
    assert all(body["routing_key"] == PAGERDUTY_KEY for body in pagerduty)
    for model in ("v2", "*"):
        dedup_key = f"modelmon/accuracy-low/live/{model}/*=*"
        actions = [body["event_action"] for body in pagerduty if body["dedup_key"] == dedup_key]
        assert actions == ["trigger", "resolve"], model
    assert len(pagerduty) == 4
    trigger = next(body for body in pagerduty if body["event_action"] == "trigger")
    assert trigger["payload"]["severity"] == "critical" and trigger["payload"]["source"] == "modelmon"

    # Webhook: two 503s retried, then every event once, signed.
    webhook = receivers["webhook"]
    assert webhook.answered == 6 + 2 and len(webhook.requests) == 6
    for request in webhook.requests:
        digest = hmac.new(SECRETS["TEST_HOOK_SECRET"].encode(), request.body, hashlib.sha256).hexdigest()
        assert request.headers["X-Modelmon-Signature"] == f"sha256={digest}"
    assert sorted(r.json()["event_id"] for r in webhook.requests) == sorted(e["event_id"] for e in events)

    # E-mail: over STARTTLS with AUTH, one message per event to both recipients.
    assert len(mailbox.messages) == 6 and set(mailbox.logins) == {SECRETS["TEST_SMTP_USER"]}
    subjects = sorted(str(message_from_bytes(content)["Subject"]) for _, _, content in mailbox.messages)
    assert subjects.count("[modelmon critical] accuracy-low firing: v2") == 1
    assert all(rcpt == ["oncall@example.org", "ml@example.org"] for _, rcpt, _ in mailbox.messages)

    stats = engine.dispatcher.stats
    assert {name: (s.sent, s.failed) for name, s in stats.items()} == {
        "slack": (6, 0),
        "pagerduty": (4, 0),
        "webhook": (6, 0),
        "email": (6, 0),
    }

    # The rollback rule asked, once, for v2's traffic to go to v1.
    control = keyed_records(cfg, cfg.topics.control)
    assert len(control) == 1
    key, request = control[0]
    assert key == "v2"
    assert {k: request[k] for k in ("action", "model_version", "to", "rule")} == {
        "action": "rollback",
        "model_version": "v2",
        "to": "v1",
        "rule": "v2-accuracy-drop",
    }
    assert request["alert_id"] == drop["alert_id"]


# -- the simulator obeys ----------------------------------------------------------------------------------


def test_the_simulator_obeys_a_rollback_on_the_control_topic(
    kafka_broker: LocalKafka, data_dir: Path, tmp_path: Path
) -> None:
    cfg = fresh_config(
        data_dir,
        {
            "simulator": {
                "rate": 50,
                "fraud_rate": 0.3,
                "model_quality": 4,
                "label_delay_min": "0s",
                "label_delay_max": "1s",
                "degradation": {"model_version": "v2", "start": "0s", "duration": "1h", "quality": 0},
            }
        },
    )
    config_file = write_config(cfg, tmp_path / "modelmon.yaml")
    command = [sys.executable, "-m", "modelmon.cli", "--config", str(config_file), "simulate", "--duration", "12"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    assert process.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stderr or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not any("control: obeying" in line for line in lines):
            assert time.monotonic() < deadline and process.poll() is None, lines
            time.sleep(0.1)
        time.sleep(4)
        request = {"action": "rollback", "model_version": "v2", "to": "v1", "alert_id": "test-alert"}
        produce(cfg, cfg.topics.control, [(b"v2", json.dumps(request).encode(), None)])
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(5)

    switched = [line for line in lines if "control: ROLLBACK v2 -> v1 (alert test-alert)" in line]
    assert len(switched) == 1, lines
    switched_at = switched[0].split("from event time ")[1].split(" ")[0]
    predictions = list(read_topic(cfg, cfg.topics.predictions))
    labels = {label["transaction_id"]: label["actual_fraud"] for label in read_topic(cfg, cfg.topics.labels)}
    v2 = [p for p in predictions if p["model_version"] == "v2" and p["transaction_id"] in labels]
    before = [p for p in v2 if p["event_time"] < switched_at]
    after = [p for p in v2 if p["event_time"] >= switched_at]

    def auc(rows: list[dict[str, Any]]) -> float:
        truth = [labels[p["transaction_id"]] for p in rows]
        return float(roc_auc_score(truth, [p["predicted_fraud_score"] for p in rows]))

    assert len(before) > 50 and len(after) > 50, (len(before), len(after))
    assert auc(before) < 0.7 and auc(after) > 0.95
