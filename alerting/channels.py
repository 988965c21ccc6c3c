"""Where alert events go: Slack, PagerDuty, e-mail and any webhook, each behind one `send(event)`.

Payloads are built by pure functions (tested without a network). Secrets are resolved once, when the
channels are built, from the environment variable or file the config names; they live only inside the
channel objects, never in their repr, a log line or an error message (an HTTP library's exception text
holds the URL, and a Slack webhook URL is itself the secret, so only the exception's type is reported).

The `Dispatcher` gives every channel its own worker thread and queue: a slow or failing channel neither
delays the others nor the caller, and each attempt that fails is retried with exponential backoff.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

import requests
from modelmon.alerting.rules import AlertEvent

from modelmon.config import (
    AlertsConfig,
    ChannelBase,
    ConfigError,
    EmailChannelConfig,
    PagerDutyChannelConfig,
    RetryConfig,
    SecretRef,
    SlackChannelConfig,
    WebhookChannelConfig,
)

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Modelmon-Signature"
USER_AGENT = "modelmon-alerting"
# HTTP answers that a retry cannot fix (bad payload, bad key); 408 and 429 are worth another try.
PERMANENT_STATUS = frozenset(range(400, 500)) - {408, 429}
SLACK_EMOJI = {"firing": ":rotating_light:", "resolved": ":white_check_mark:"}


class ChannelError(Exception):
    """A failed delivery; the message never holds a secret. `permanent` ones are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Channel(Protocol):
    """A place alert events go. `send` raises ChannelError when the event was not delivered."""

    type: str
    name: str
    severities: tuple[str, ...]
    timeout_s: float

    def send(self, event: AlertEvent) -> None: ...


def accepts(channel: Channel, event: AlertEvent) -> bool:
    return event.severity in channel.severities


# -- payloads ---------------------------------------------------------------------------------------------


def event_json(event: AlertEvent) -> bytes:
    """The event as compact JSON with sorted keys: the body the webhook signs and the alerts topic holds."""
    return json.dumps(event.to_dict(), sort_keys=True, separators=(",", ":")).encode()


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the body>`, as GitHub signs its webhooks; receivers recompute it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def slack_payload(event: AlertEvent) -> dict[str, Any]:
    """An incoming-webhook message: `text` for notifications, `blocks` for the message itself."""
    title = f"{SLACK_EMOJI[event.state]} *{event.rule}* {event.state} ({event.severity})"
    fields = [
        ("View", event.view),
        ("Model", event.model_version),
        ("Segment", f"{event.segment_key}={event.segment_value}"),
        ("Metric", f"{event.metric} = {event.value:.4g} (bound {event.op} {event.threshold:.4g})"),
        ("Window", f"{event.window_start} to {event.window_end}"),
        ("Samples", str(event.samples)),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": title}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": event.message}]},
    ]
    if event.action is not None and event.state == "firing":
        text = f"Requested: roll {event.model_version} back to {event.action['rollback_to']}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    return {"text": event.message, "blocks": blocks}


def pagerduty_payload(event: AlertEvent, routing_key: str) -> dict[str, Any]:
    """Events API v2: a trigger carries the details; a resolve needs only the dedup_key."""
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger" if event.state == "firing" else "resolve",
        "dedup_key": event.alert_id,
    }
    if event.state == "firing":
        body["payload"] = {
            "summary": event.message[:1024],
            "source": "modelmon",
            "severity": event.severity,
            "timestamp": event.window_end,
            "component": event.model_version,
            "group": event.view,
            "class": event.metric,
            "custom_details": event.to_dict(),
        }
    return body


def email_message(event: AlertEvent, sender: str, recipients: Sequence[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"[modelmon {event.severity}] {event.rule} {event.state}: {event.model_version}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    details = "\n".join(f"{key}: {value}" for key, value in event.to_dict().items() if key != "message")
    message.set_content(f"{event.message}\n\n{details}\n")
    return message


# -- channels ---------------------------------------------------------------------------------------------


def post_json(url: str, body: bytes, timeout_s: float, headers: Mapping[str, str] | None = None) -> None:
    """POST and raise ChannelError unless the answer is 2xx; the URL never appears in the error."""
    try:
        response = requests.post(
            url,
            data=body,
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})},
            timeout=timeout_s,
        )
    except requests.RequestException as exc:
        raise ChannelError(f"request failed ({type(exc).__name__})") from None
    if not 200 <= response.status_code < 300:
        raise ChannelError(f"HTTP {response.status_code}", permanent=response.status_code in PERMANENT_STATUS)


@dataclass(repr=False)
class SlackChannel:
    name: str
    webhook_url: str
    severities: tuple[str, ...]
    timeout_s: float
    type: str = "slack"

    def send(self, event: AlertEvent) -> None:
        post_json(self.webhook_url, json.dumps(slack_payload(event)).encode(), self.timeout_s)

    def __repr__(self) -> str:
        return f"SlackChannel({self.name!r})"


@dataclass(repr=False)
class PagerDutyChannel:
    name: str
    routing_key: str
    url: str
    severities: tuple[str, ...]
    timeout_s: float
    type: str = "pagerduty"

    def send(self, event: AlertEvent) -> None:
        post_json(self.url, json.dumps(pagerduty_payload(event, self.routing_key)).encode(), self.timeout_s)

    def __repr__(self) -> str:
        return f"PagerDutyChannel({self.name!r}, {self.url!r})"


@dataclass(repr=False)
class WebhookChannel:
    name: str
    url: str
    secret: str | None
    severities: tuple[str, ...]
    timeout_s: float
    type: str = "webhook"

    def send(self, event: AlertEvent) -> None:
        body = event_json(event)
        headers = {} if self.secret is None else {SIGNATURE_HEADER: signature(self.secret, body)}
        post_json(self.url, body, self.timeout_s, headers)

    def __repr__(self) -> str:
        return f"WebhookChannel({self.name!r}, {self.url!r})"


@dataclass(repr=False)
class EmailChannel:
    name: str
    host: str
    port: int
    starttls: bool
    ca_file: Path | None
    sender: str
    recipients: tuple[str, ...]
    credentials: tuple[str, str] | None
    severities: tuple[str, ...]
    timeout_s: float
    type: str = "email"

    def send(self, event: AlertEvent) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=self.ca_file))
                if self.credentials is not None:
                    smtp.login(*self.credentials)
                smtp.send_message(email_message(event, self.sender, self.recipients))
        except smtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.smtp_code < 600
            raise ChannelError(f"SMTP {exc.smtp_code} ({type(exc).__name__})", permanent=permanent) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ChannelError(f"SMTP failed ({type(exc).__name__})") from None

    def __repr__(self) -> str:
        return f"EmailChannel({self.name!r}, {self.host}:{self.port})"


def _secret(ref: SecretRef, where: str, environ: Mapping[str, str] | None) -> str:
    try:
        return ref.resolve(environ)
    except ConfigError as exc:
        raise ConfigError(f"config field {where}: {exc}") from None


def build_channel(config: ChannelBase, where: str, environ: Mapping[str, str] | None = None) -> Channel:
    """A channel from its config, its secrets read now; a missing secret fails naming the field."""
    common: dict[str, Any] = {"severities": config.severities, "timeout_s": config.timeout.total_seconds()}
    match config:
        case SlackChannelConfig():
            url = _secret(config.webhook_url, f"{where}.webhook_url", environ)
            return SlackChannel(config.name or "slack", url, **common)
        case PagerDutyChannelConfig():
            key = _secret(config.routing_key, f"{where}.routing_key", environ)
            return PagerDutyChannel(config.name or "pagerduty", key, config.url, **common)
        case WebhookChannelConfig():
            secret = None if config.secret is None else _secret(config.secret, f"{where}.secret", environ)
            return WebhookChannel(config.name or "webhook", config.url, secret, **common)
        case EmailChannelConfig():
            credentials = None
            if config.username is not None and config.password is not None:
                credentials = (
                    _secret(config.username, f"{where}.username", environ),
                    _secret(config.password, f"{where}.password", environ),
                )
            return EmailChannel(
                config.name or "email",
                config.host,
                config.port,
                config.starttls,
                config.ca_file,
                config.sender,
                config.recipients,
                credentials,
                **common,
            )
    raise ConfigError(f"config field {where}: unknown channel type")


def build_channels(alerts: AlertsConfig, environ: Mapping[str, str] | None = None) -> list[Channel]:
    return [build_channel(config, f"alerts.channels.{i}", environ) for i, config in enumerate(alerts.channels)]


# -- dispatch ---------------------------------------------------------------------------------------------


def backoff_delays(retry: RetryConfig) -> list[float]:
    """Seconds to wait before attempts 2, 3, ...: initial, initial * multiplier, ... capped at max_backoff."""
    initial, cap = retry.initial_backoff.total_seconds(), retry.max_backoff.total_seconds()
    return [min(cap, initial * retry.multiplier**n) for n in range(retry.attempts - 1)]


@dataclass
class ChannelStats:
    sent: int = 0
    failed: int = 0
    attempts: int = 0
    last_error: str | None = None


_STOP = object()


@dataclass
class _Worker:
    channel: Channel
    inbox: queue.Queue[Any] = field(default_factory=queue.Queue)
    stats: ChannelStats = field(default_factory=ChannelStats)
    thread: threading.Thread | None = None


class Dispatcher:
    """Sends each submitted event to every channel that takes its severity, one worker thread per channel.

    `submit` only queues, so the caller (the exporter's consumer loop) never waits for a network. A send
    that fails is retried after each of `backoff_delays(retry)`; one that still fails is logged and counted
    and the channel goes on with the next event.
    """

    def __init__(
        self, channels: Sequence[Channel], retry: RetryConfig, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._delays = backoff_delays(retry)
        self._sleep = sleep
        self._workers = [_Worker(channel) for channel in channels]
        for worker in self._workers:
            worker.thread = threading.Thread(
                target=self._run, args=(worker,), name=f"modelmon-alert-{worker.channel.name}", daemon=True
            )
            worker.thread.start()

    @property
    def stats(self) -> dict[str, ChannelStats]:
        return {worker.channel.name: worker.stats for worker in self._workers}

    def submit(self, event: AlertEvent) -> None:
        for worker in self._workers:
            if accepts(worker.channel, event):
                worker.inbox.put(event)

    def drain(self) -> None:
        """Block until every event submitted so far has been delivered or given up on."""
        for worker in self._workers:
            worker.inbox.join()

    def close(self, timeout_s: float = 30.0) -> None:
        """Deliver what is queued (within the timeout), then stop the workers."""
        deadline = time.monotonic() + timeout_s
        for worker in self._workers:
            worker.inbox.put(_STOP)
        for worker in self._workers:
            if worker.thread is not None:
                worker.thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self, worker: _Worker) -> None:
        while True:
            event = worker.inbox.get()
            try:
                if event is _STOP:
                    return
                self._deliver(worker, event)
            finally:
                worker.inbox.task_done()

    def _deliver(self, worker: _Worker, event: AlertEvent) -> None:
        channel, stats = worker.channel, worker.stats
        for attempt, delay in enumerate([0.0, *self._delays], start=1):
            if delay:
                self._sleep(delay)
            stats.attempts += 1
            try:
                channel.send(event)
            except Exception as exc:  # a broken channel must never stop the others or the caller
                stats.last_error = str(exc) if isinstance(exc, ChannelError) else type(exc).__name__
                log.warning("alert channel %s: attempt %d failed: %s", channel.name, attempt, stats.last_error)
                if isinstance(exc, ChannelError) and exc.permanent:
                    break
            else:
                stats.sent += 1
                log.info("alert channel %s: sent %s %s", channel.name, event.state, event.alert_id)
                return
        stats.failed += 1
        log.error("alert channel %s: gave up on %s %s", channel.name, event.state, event.alert_id)
