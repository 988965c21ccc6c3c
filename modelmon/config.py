"""The one typed config object: YAML file, then MODELMON__SECTION__KEY environment overrides.

Every value that reaches SQL (topic names, column names, intervals, servers) is validated here, so a
template can never be turned into SQL injection by a config value, and a bad value fails at start-up
with a message naming the field.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from modelmon.errors import ModelmonError

ENV_PREFIX = "MODELMON__"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


class ConfigError(ModelmonError, ValueError):
    """Invalid configuration; the message names every offending field."""


def parse_duration(value: Any) -> timedelta:
    """Accept '6h', '30s', '10min', '500ms', a number of seconds, or a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '30s', '10min' or '6h'")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        try:  # ISO 8601 ('PT6H') as well
            return TypeAdapter(timedelta).validate_python(value)
        except ValidationError:
            raise ValueError(f"expected a duration such as '30s', '10min' or '6h', got {value!r}") from None
    number, unit = match.groups()
    return timedelta(seconds=float(number) * _UNIT_SECONDS[unit or "s"])


def format_duration(value: timedelta) -> str:
    """The largest whole unit: timedelta(hours=6) -> '6h'; parse_duration reads it back."""
    millis = int(value / timedelta(milliseconds=1))
    for unit in ("d", "h", "min", "s"):
        unit_millis = int(_UNIT_SECONDS[unit] * 1000)
        if millis % unit_millis == 0 and millis:
            return f"{millis // unit_millis}{unit}"
    return f"{millis}ms"


def _positive_millis(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be greater than zero")
    if value % timedelta(milliseconds=1):
        raise ValueError("must be a whole number of milliseconds")
    return value


def _non_negative_millis(value: timedelta) -> timedelta:
    return value if value == timedelta(0) else _positive_millis(value)


def _whole_seconds(value: timedelta) -> timedelta:
    # Window bounds are computed in whole seconds in SQL (cohort windows from event_time arithmetic).
    if value % timedelta(seconds=1):
        raise ValueError(f"must be a whole number of seconds, got {format_duration(value)}")
    return value


def _pattern(regex: str, what: str) -> AfterValidator:
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid {what} ({regex})")
        return value

    return AfterValidator(check)


_AS_TEXT = PlainSerializer(format_duration, return_type=str, when_used="json")
Duration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_positive_millis), _AS_TEXT]
DurationOrZero = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_non_negative_millis), _AS_TEXT]
# Kafka's own rule for topic names; no quotes, spaces or semicolons, so safe inside SQL string literals.
TopicName = Annotated[str, _pattern(r"[A-Za-z0-9._-]{1,249}", "Kafka topic name")]
Identifier = Annotated[str, _pattern(r"[A-Za-z_][A-Za-z0-9_]{0,63}", "identifier")]
ServerList = Annotated[str, _pattern(r"[A-Za-z0-9.\-]+:\d{1,5}(,[A-Za-z0-9.\-]+:\d{1,5})*", "host:port list")]
Label = Annotated[str, _pattern(r"[A-Za-z0-9._-]{1,64}", "label")]


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


JvmMemory = Annotated[str, _pattern(r"\d+[mg]", "memory size such as 512m or 2g")]
EnvVarName = Annotated[str, _pattern(r"[A-Za-z_][A-Za-z0-9_]{0,127}", "environment variable name")]


class SecretRef(Section):
    """Where a secret (an alert channel's, the Kafka password) is read from when it is needed: an environment
    variable or a file, never the config.

    Only the variable's name or the file's path is kept here, so `modelmon config` and every dump of the
    configuration show where the secret comes from, never its value.
    """

    env: EnvVarName | None = None
    file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_inline_value(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValueError(
                "a secret is given as {env: VARIABLE} or {file: PATH}, never as its value in the configuration"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env (an environment variable name) or file (a path)")
        return self

    def describe(self) -> str:
        """Where the secret comes from, for messages; never the secret."""
        return f"environment variable {self.env}" if self.env is not None else f"file {self.file}"

    def resolve(self, environ: Mapping[str, str] | None = None) -> str:
        """The secret's value; surrounding whitespace (a file's last newline) is dropped."""
        if self.env is not None:
            value = (os.environ if environ is None else environ).get(self.env, "").strip()
        else:
            assert self.file is not None
            try:
                value = self.file.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"cannot read the secret from {self.describe()}: {exc.strerror}") from None
        if not value:
            raise ConfigError(f"the secret from {self.describe()} is empty or not set")
        return value


KafkaProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
# SASL user names go into a JAAS line in the connector's properties: no quotes, spaces or semicolons.
KafkaUser = Annotated[str, _pattern(r"[A-Za-z0-9._@+=-]{1,256}", "Kafka user name")]


class KafkaSecurityConfig(Section):
    """How modelmon's Python clients and Flink's Kafka connector authenticate and encrypt: the same
    settings reach both (Kafka's Java client properties for the connector, kafka-python's options for the rest).
    The password is read from an environment variable or a file when a client starts, never from here."""

    protocol: KafkaProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    username: KafkaUser | None = None
    password: SecretRef | None = None
    # PEM file of the CA(s) that signed the broker's certificate; None trusts the system's CAs.
    ssl_cafile: Path | None = None
    # Verify that the broker's certificate names the host connected to.
    ssl_check_hostname: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecurityConfig:
        sasl = self.protocol.startswith("SASL_")
        if sasl and (self.sasl_mechanism is None or self.username is None or self.password is None):
            raise ValueError(f"protocol {self.protocol} needs sasl_mechanism, username and password")
        if not sasl and (self.sasl_mechanism, self.username, self.password) != (None, None, None):
            raise ValueError(f"sasl_mechanism, username and password need a SASL_ protocol, not {self.protocol}")
        if not self.protocol.endswith("SSL") and self.ssl_cafile is not None:
            raise ValueError(f"ssl_cafile needs protocol SSL or SASL_SSL, not {self.protocol}")
        return self


class KafkaConfig(Section):
    """Where the broker is and how modelmon's clients and the Flink connector talk to it."""

    bootstrap_servers: ServerList = "127.0.0.1:9092"
    partitions: int = Field(2, ge=1, le=1024, description="Partitions of topics modelmon creates.")
    group_id: TopicName = "modelmon"
    # Must stay below the broker's transaction.max.timeout.ms (15 min by default).
    transaction_timeout: Duration = timedelta(minutes=10)
    security: KafkaSecurityConfig = KafkaSecurityConfig()


class LocalKafkaConfig(Section):
    """The single-node KRaft broker that `modelmon kafka start` runs from the jars in jvm/target/kafka."""

    host: Literal["127.0.0.1", "localhost"] = "127.0.0.1"
    port: int = Field(9092, ge=1, le=65535)
    controller_port: int = Field(9093, ge=1, le=65535)
    heap: JvmMemory = "512m"
    start_timeout: Duration = timedelta(seconds=60)


class TopicsConfig(Section):
    predictions: TopicName = "predictions"
    labels: TopicName = "labels"
    labelled_predictions: TopicName = "labelled-predictions"
    metrics: TopicName = "model-metrics"
    dead_letter: TopicName = "modelmon-dead-letter"
    # Every alert event (firing, resolved), as the alerting side of the exporter sends them.
    alerts: TopicName = "modelmon-alerts"
    # Control events such as "roll model_version X back to Y", for the model service (here: the simulator).
    control: TopicName = "modelmon-control"


class JoinConfig(Section):
    """The interval join: label_time BETWEEN event_time - max_label_skew AND event_time + label_horizon."""

    label_horizon: Duration = timedelta(hours=6)
    # Clock skew between the model service and the labelling system. The live view waits this long beyond
    # out_of_orderness before closing a window (an early label joins only when its prediction arrives).
    max_label_skew: DurationOrZero = timedelta(seconds=10)


class WindowsConfig(Section):
    size: Annotated[Duration, AfterValidator(_whole_seconds)] = timedelta(minutes=1)
    # How far behind the newest event time a record may arrive and still count (a later one is a late dead letter).
    out_of_orderness: DurationOrZero = timedelta(seconds=5)
    # A predictions partition silent this long stops holding the watermark back (backpressure is no silence);
    # a labels partition only after join.label_horizon (sql/sources/labels_raw.sql.j2 says why).
    idle_timeout: Duration = timedelta(seconds=30)
    # How far an event or label time may lie from its Kafka record's timestamp (the producer's clock): a record
    # further off is dead-lettered, and no record moves the watermark further ahead of its timestamp. A replay
    # of old records must then keep their times as Kafka timestamps (as `modelmon simulate` does). None: no check.
    max_clock_drift: Duration | None = timedelta(minutes=10)


class JobConfig(Section):
    name: Label = "modelmon"
    parallelism: int = Field(1, ge=1, le=1024)
    checkpoint_interval: Duration = timedelta(seconds=10)
    # Where the join and the windows keep their state. rocksdb: on local disk, its hot part in managed memory,
    # checkpointed incrementally (what changed since the last checkpoint), so the join may hold far more
    # predictions than the heap would (a long label horizon at a high rate), and a checkpoint of millions of them
    # takes a second, not the seconds a full copy takes. hashmap: on the heap, every checkpoint a full copy; about
    # twice as fast per record while the state is small. Unset: rocksdb for streaming runs, which run for months
    # and checkpoint all along; hashmap for bounded ones (backfills, benchmarks), whose state ends with them. A
    # backfill over a long horizon at a high rate sets rocksdb.
    state_backend: Literal["hashmap", "rocksdb"] | None = None
    # Memory of a local run (`modelmon run`, whose minicluster runs in the job's own JVM): the JVM's heap, and
    # the managed memory, off the heap, RocksDB takes its block cache and write buffers from. Without them the
    # JVM would take a quarter of the machine's memory, and RocksDB a minicluster's 128 MB default. A cluster's
    # TaskManagers are sized by the cluster's configuration (flink-conf/config.yaml).
    heap: JvmMemory = "3g"
    managed_memory: JvmMemory = "1g"
    # The Python that runs the job's UDFs (in every TaskManager); it must have modelmon installed.
    python: Annotated[str, _pattern(r"[A-Za-z0-9_./+-]{1,1024}", "interpreter path")] = Field(
        default_factory=lambda: sys.executable
    )

    def backend(self, *, bounded: bool) -> str:
        """The state backend a run uses: the configured one, or by default rocksdb when streaming."""
        return self.state_backend or ("hashmap" if bounded else "rocksdb")


class ClusterConfig(Section):
    """The standalone Flink cluster `modelmon cluster start` runs on this machine (a JobManager and one
    TaskManager, from the PyFlink distribution with flink-conf/), and `modelmon submit` submits to."""

    rest_port: int = Field(8081, ge=1, le=65535)
    # The TaskManager's slots; a job submitted to the cluster runs at this parallelism unless told otherwise.
    slots: int = Field(2, ge=1, le=64)


class DegradationConfig(Section):
    """A stretch of simulated time in which one model version scores worse, then recovers (demos, tests)."""

    model_version: Label
    # From the event time of the run's first transaction.
    start: DurationOrZero = timedelta(minutes=5)
    duration: Duration = timedelta(minutes=5)
    # The separation of fraud from non-fraud meanwhile (see model_quality); 0 is a coin flip.
    quality: float = Field(0.3, ge=0, le=10)


class SimulatorConfig(Section):
    rate: float = Field(50.0, gt=0, description="Transactions per second, each scored by every model version.")
    fraud_rate: float = Field(0.05, gt=0, lt=1)
    model_versions: tuple[Label, ...] = Field(("v1", "v2"), min_length=1)
    # Separation of the score distributions of fraud and non-fraud; 0 = coin flip, 3 = very good.
    model_quality: float = Field(2.0, ge=0, le=10)
    threshold: float = Field(0.5, gt=0, lt=1)
    label_delay_min: DurationOrZero = timedelta(seconds=30)
    label_delay_max: Duration = timedelta(minutes=10)
    label_rate: float = Field(1.0, ge=0, le=1, description="Share of predictions whose label ever arrives.")
    countries: tuple[Label, ...] = ("US", "GB", "DE", "FR", "BR")
    merchant_categories: tuple[Label, ...] = ("grocery", "travel", "electronics", "gaming")
    seed: int = 42
    degradation: DegradationConfig | None = None
    # How often a live run looks for control events (rollbacks) on topics.control.
    control_poll_interval: Duration = timedelta(seconds=1)

    @model_validator(mode="after")
    def _degraded_version_exists(self) -> SimulatorConfig:
        if self.degradation is not None and self.degradation.model_version not in self.model_versions:
            raise ValueError(
                f"degradation.model_version {self.degradation.model_version!r} is not one of model_versions "
                f"{list(self.model_versions)}"
            )
        return self


# Columns of the predictions that the job reads itself; a segment column may not reuse one of these names.
CORE_COLUMNS = frozenset(
    {
        "transaction_id",
        "model_version",
        "predicted_fraud_score",
        "predicted_fraud",
        "event_time",
        "actual_fraud",
        "label_time",
        "label_latency_s",
        "reason",
        "payload",
    }
)


class SegmentConfig(Section):
    """A prediction field to break metrics down by; only the listed values are reported on their own."""

    name: Identifier
    # The top values by volume, each reported as its own segment; every other value (and a missing one) is
    # reported as 'other', so the number of series downstream stays bounded.
    values: tuple[Label, ...] = Field(min_length=1, max_length=100)

    @field_validator("name")
    @classmethod
    def _not_core(cls, value: str) -> str:
        if value in CORE_COLUMNS:
            raise ValueError(f"{value!r} is a column modelmon reads itself; choose another segment name")
        return value


_DEFAULT_SEGMENTS = (
    SegmentConfig(name="country", values=("US", "GB", "DE", "FR", "BR")),
    SegmentConfig(name="merchant_category", values=("grocery", "travel", "electronics", "gaming")),
)


def _increasing(value: tuple[timedelta, ...]) -> tuple[timedelta, ...]:
    if any(a >= b for a, b in pairwise(value)):
        raise ValueError("latency bucket edges must be strictly increasing")
    if any(edge % timedelta(seconds=1) for edge in value):
        raise ValueError("latency bucket edges must be whole seconds")
    return value


class MetricsConfig(Section):
    """How finely the job bins scores and label latencies (the histograms behind AUC, calibration, drift)."""

    # Equal-width score bins for ROC/PR AUC, PSI and KS; the AUC's error bound shrinks as they grow.
    score_bins: int = Field(100, ge=10, le=1000)
    # Equal-width bins of the reliability diagram, ECE and MCE (scikit-learn's calibration_curve bins).
    calibration_bins: int = Field(10, ge=2, le=100)
    # Upper edges of the label-latency buckets behind p50/p95; a last bucket above the top edge is open.
    latency_buckets: Annotated[tuple[Duration, ...], AfterValidator(_increasing)] = Field(
        tuple(
            timedelta(seconds=s)
            for s in (
                1,
                2,
                5,
                10,
                20,
                30,
                45,
                60,
                90,
                120,
                180,
                240,
                300,
                450,
                600,
                900,
                1200,
                1800,
                2700,
                3600,
                5400,
                7200,
                10800,
                14400,
                21600,
                43200,
                86400,
            )
        ),
        min_length=1,
        max_length=64,
    )


class CohortConfig(Section):
    """The cohort view: per window of prediction time, revised as its labels arrive."""

    # At most one provisional revision per window and interval of label time; the final one follows once the
    # label horizon has passed. Unset, it is windows.size; set, it must divide windows.size. A shorter interval
    # refreshes provisional cohort rows more often (the live view has each window's labels at once) at a cost:
    # at 10 s the full job ran 25% slower than at 1 min.
    revision_interval: Annotated[Duration, AfterValidator(_whole_seconds)] = timedelta(minutes=1)


class DriftConfig(Section):
    """The reference score distribution that prediction drift (PSI, KS) is measured against."""

    # Scores of a reference period (e.g. the validation set): one number per line, or JSON lines with a
    # predicted_fraud_score. Without it, drift columns are null. `modelmon reference` writes one.
    reference_file: Path | None = None


class ComparisonConfig(Section):
    """Champion vs challenger: two model versions scoring the same transactions (shadow traffic)."""

    champion: Label
    challenger: Label

    @model_validator(mode="after")
    def _two_versions(self) -> ComparisonConfig:
        if self.champion == self.challenger:
            raise ValueError(f"champion and challenger must differ, both are {self.champion!r}")
        return self


class ExporterConfig(Section):
    """`modelmon exporter`: the metrics topic as Prometheus gauges (and the live web page) over HTTP."""

    # Local by default; set 0.0.0.0 deliberately to expose it.
    host: Annotated[str, _pattern(r"[A-Za-z0-9.:-]{1,253}", "host name or address")] = "127.0.0.1"
    port: int = Field(9108, ge=1, le=65535)
    # A series whose newest window ended this long before the newest window seen is dropped.
    staleness: Duration = timedelta(minutes=10)
    # At most this many series are exported; beyond it, new series are dropped and counted.
    max_series: int = Field(20000, ge=1, le=1_000_000)


# -- alerts ----------------------------------------------------------------------------------------------

# The numeric columns of the metrics topic (sinks/metrics.sql.j2) that an alert rule may watch.
METRIC_COLUMNS = (
    "n_predictions",
    "n_labelled",
    "label_coverage",
    "throughput_per_s",
    "mean_score",
    "predicted_positive_rate",
    "tp",
    "fp",
    "tn",
    "fn",
    "accuracy",
    "precision",
    "recall",
    "specificity",
    "f1",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "precision_ci_low",
    "precision_ci_high",
    "recall_ci_low",
    "recall_ci_high",
    "roc_auc",
    "roc_auc_error_bound",
    "pr_auc",
    "brier",
    "log_loss",
    "ece",
    "mce",
    "label_latency_p50_s",
    "label_latency_p95_s",
    "psi",
    "ks_statistic",
    "ks_pvalue",
    "estimated_accuracy",
    "estimated_precision",
    "estimated_recall",
    "mcnemar_b",
    "mcnemar_c",
    "mcnemar_pvalue",
    "accuracy_diff",
    "precision_diff",
    "recall_diff",
    "specificity_diff",
    "f1_diff",
    "brier_diff",
    "log_loss_diff",
)
# Columns that only rows of the comparison view have.
COMPARISON_ONLY_COLUMNS = frozenset(
    {"mcnemar_b", "mcnemar_c", "mcnemar_pvalue"} | {c for c in METRIC_COLUMNS if c.endswith("_diff")}
)
# Columns that need labels, and so are null in the unlabelled view.
LABELLED_COLUMNS = frozenset(
    {"n_labelled", "label_coverage", "tp", "fp", "tn", "fn", "accuracy", "precision", "recall", "specificity"}
    | {"f1", "brier", "log_loss", "ece", "mce", "label_latency_p50_s", "label_latency_p95_s", "pr_auc", "roc_auc"}
    | {c for c in METRIC_COLUMNS if c.endswith(("_ci_low", "_ci_high"))}
    | {"roc_auc_error_bound"}
)

AlertView = Literal["live", "cohort", "unlabelled", "comparison"]
Severity = Literal["warning", "critical"]
HttpUrl = Annotated[str, _pattern(r"https?://[^\s\"'<>]{1,2000}", "http(s) URL")]
HostName = Annotated[str, _pattern(r"[A-Za-z0-9.:-]{1,253}", "host name or address")]
ModelOrAll = Annotated[str, _pattern(r"\*|[A-Za-z0-9._-]{1,64}", "model version or '*'")]
EmailAddress = Annotated[str, _pattern(r"[^@\s,;<>\"]{1,64}@[A-Za-z0-9.-]{1,253}", "e-mail address")]


class RollbackAction(Section):
    """What a firing rule asks the model service to do: route a version's traffic back to another one."""

    rollback_to: Label


class AlertRuleConfig(Section):
    """One alert rule: a metric of one view, compared per window with a threshold or with its own baseline.

    A rule watches one series per model version (and per segment if `segments`); a window with fewer than
    `min_samples` samples or less than `min_label_coverage` label coverage, or whose metric is null, is not
    evaluated. The rule fires when `breaches` of the last `of_last` evaluated windows break it and resolves
    when fewer do.
    """

    name: Label
    metric: str
    view: AlertView = "live"
    op: Literal["<", "<=", ">", ">="]
    # Exactly one of: an absolute bound, or a fraction below (op < / <=) or above (op > / >=) the mean of the
    # series' last `baseline_windows` evaluated windows that did not break the rule.
    threshold: float | None = None
    relative_drop: float | None = Field(None, gt=0, lt=10)
    baseline_windows: int = Field(10, ge=1, le=1000)
    severity: Severity
    # n_labelled in the live, cohort and comparison views; n_predictions in the unlabelled view.
    min_samples: int = Field(100, ge=0)
    min_label_coverage: float = Field(0.0, ge=0, le=1)
    breaches: int = Field(2, ge=1, le=100)
    of_last: int = Field(3, ge=1, le=100)
    # After a resolve, the same series does not fire again until this much window time has passed.
    cooldown: DurationOrZero = timedelta(minutes=10)
    # False: only the rows over all segments (segment '*'); true: every segment's rows as well.
    segments: bool = False
    # Model versions watched ('*' = the rows over all versions); None = every version and '*'.
    models: tuple[ModelOrAll, ...] | None = Field(None, min_length=1)
    action: RollbackAction | None = None

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in METRIC_COLUMNS:
            known = ", ".join(METRIC_COLUMNS)
            raise ValueError(f"{value!r} is not a numeric column of the metrics topic; one of {known}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AlertRuleConfig:
        if (self.threshold is None) == (self.relative_drop is None):
            raise ValueError("give exactly one of threshold (absolute) or relative_drop (fraction of the baseline)")
        if self.breaches > self.of_last:
            raise ValueError(f"breaches ({self.breaches}) cannot exceed of_last ({self.of_last})")
        if self.metric in COMPARISON_ONLY_COLUMNS and self.view != "comparison":
            raise ValueError(f"{self.metric} exists only in the comparison view, not in view {self.view!r}")
        if self.metric in LABELLED_COLUMNS and self.view == "unlabelled":
            raise ValueError(f"{self.metric} needs labels and is always null in the unlabelled view")
        if self.action is not None and self.models is not None and self.action.rollback_to in self.models:
            raise ValueError(f"a rule that rolls back to {self.action.rollback_to} cannot also watch it")
        return self

    @property
    def sample_column(self) -> str:
        return "n_predictions" if self.view == "unlabelled" else "n_labelled"


_DEFAULT_RULES = (
    AlertRuleConfig(name="accuracy-low", metric="accuracy", op="<", threshold=0.90, severity="critical"),
    AlertRuleConfig(name="recall-low", metric="recall", op="<", threshold=0.70, severity="critical"),
    AlertRuleConfig(
        name="label-latency-high", metric="label_latency_p95_s", op=">", threshold=1800, severity="warning"
    ),
    AlertRuleConfig(
        name="score-drift", metric="ks_pvalue", view="unlabelled", op="<", threshold=0.01, severity="warning"
    ),
    # min_samples 0: a window with almost no predictions is exactly what this rule is for.
    AlertRuleConfig(
        name="throughput-low",
        metric="throughput_per_s",
        view="unlabelled",
        op="<",
        threshold=500,
        severity="warning",
        min_samples=0,
    ),
)


class ChannelBase(Section):
    # Shown in logs and counts; defaults to the channel's type.
    name: Label | None = None
    # The severities this channel is notified of.
    severities: tuple[Severity, ...] = Field(("warning", "critical"), min_length=1)
    # Per attempt; a failed attempt is retried as alerts.retry says.
    timeout: Duration = timedelta(seconds=10)


class SlackChannelConfig(ChannelBase):
    """A Slack incoming webhook; its URL is the secret."""

    type: Literal["slack"]
    webhook_url: SecretRef


class PagerDutyChannelConfig(ChannelBase):
    """PagerDuty Events API v2: trigger on firing, resolve on resolved, deduplicated by the alert id."""

    type: Literal["pagerduty"]
    routing_key: SecretRef
    url: HttpUrl = "https://events.pagerduty.com/v2/enqueue"


class EmailChannelConfig(ChannelBase):
    """E-mail over SMTP, with STARTTLS when the server offers it and `starttls` is true."""

    type: Literal["email"]
    host: HostName
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    # A CA bundle to verify the server's certificate with (a private CA); default: the system's.
    ca_file: Path | None = None
    sender: EmailAddress
    recipients: tuple[EmailAddress, ...] = Field(min_length=1)
    username: SecretRef | None = None
    password: SecretRef | None = None

    @model_validator(mode="after")
    def _credentials_in_pairs(self) -> EmailChannelConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        return self


class WebhookChannelConfig(ChannelBase):
    """Any HTTP endpoint: the event as JSON, signed with HMAC-SHA256 when a secret is given."""

    type: Literal["webhook"]
    url: HttpUrl
    secret: SecretRef | None = None


ChannelConfig = Annotated[
    SlackChannelConfig | PagerDutyChannelConfig | EmailChannelConfig | WebhookChannelConfig,
    Field(discriminator="type"),
]


class RetryConfig(Section):
    """Exponential backoff: attempt n waits initial_backoff * multiplier^(n-2), at most max_backoff."""

    attempts: int = Field(4, ge=1, le=20)
    initial_backoff: Duration = timedelta(seconds=1)
    multiplier: float = Field(2.0, ge=1, le=10)
    max_backoff: Duration = timedelta(seconds=60)


class AlertsConfig(Section):
    """Alert rules over the metrics rows, the channels they notify, and how hard to try."""

    rules: tuple[AlertRuleConfig, ...] = Field(_DEFAULT_RULES, max_length=200)
    channels: tuple[ChannelConfig, ...] = Field((), max_length=50)
    retry: RetryConfig = RetryConfig()
    # Rows of one view are held until a row this much later (window end) has arrived, then evaluated in
    # window order: set it when reading a backlog of a multi-partition metrics topic. 0 = at once.
    lateness: DurationOrZero = timedelta(0)
    # An event about a window that ended longer ago than this (wall clock) updates the rule's state but is
    # not sent, so replaying old rows after a restart does not page anyone again. None = always send.
    max_event_age: Duration | None = timedelta(hours=1)

    @field_validator("rules")
    @classmethod
    def _unique_rule_names(cls, value: tuple[AlertRuleConfig, ...]) -> tuple[AlertRuleConfig, ...]:
        names = [rule.name for rule in value]
        if len(set(names)) != len(names):
            raise ValueError(f"each rule name may appear once, got {names}")
        return value

    @field_validator("channels")
    @classmethod
    def _unique_channel_names(cls, value: tuple[ChannelBase, ...]) -> tuple[ChannelBase, ...]:
        names = [channel.name or getattr(channel, "type", "") for channel in value]
        if len(set(names)) != len(names):
            raise ValueError(f"each channel name may appear once (default: its type), got {names}")
        return value


class HistoryConfig(Section):
    """The history table: every final metrics row, kept as Parquet files with a Delta Lake log."""

    enabled: bool = True
    # A local folder (default: <paths.data_dir>/history); every Flink worker must see it, so a cluster on
    # several machines needs a shared mount.
    path: Path | None = None
    # How often `modelmon run` adds the files Flink committed to the Delta log (also once when it stops).
    sync_interval: Duration = timedelta(seconds=30)
    # How often `modelmon run` compacts and applies retention; `modelmon history compact` does it on demand.
    compact_interval: Duration = timedelta(hours=1)
    # Compaction rewrites a partition's files smaller than this into files of about this size.
    target_file_size_mb: int = Field(64, ge=1, le=4096)
    # Windows older than this are deleted from the table; None keeps them all.
    retention: Duration | None = None
    # Files that compaction or retention replaced stay on disk this long for readers of older table versions.
    vacuum_after: Duration = timedelta(hours=24)


class PathsConfig(Section):
    data_dir: Path = Path(".modelmon")
    # Default: jvm/target of the source checkout (filled by `make jars`).
    jars_dir: Path | None = None


class Config(Section):
    kafka: KafkaConfig = KafkaConfig()
    local_kafka: LocalKafkaConfig = LocalKafkaConfig()
    topics: TopicsConfig = TopicsConfig()
    join: JoinConfig = JoinConfig()
    windows: WindowsConfig = WindowsConfig()
    job: JobConfig = JobConfig()
    cluster: ClusterConfig = ClusterConfig()
    simulator: SimulatorConfig = SimulatorConfig()
    paths: PathsConfig = PathsConfig()
    segments: tuple[SegmentConfig, ...] = Field(_DEFAULT_SEGMENTS, max_length=8)
    metrics: MetricsConfig = MetricsConfig()
    cohort: CohortConfig = CohortConfig()
    drift: DriftConfig = DriftConfig()
    exporter: ExporterConfig = ExporterConfig()
    alerts: AlertsConfig = AlertsConfig()
    history: HistoryConfig = HistoryConfig()
    # The simulator's two versions by default; a pair whose versions never score the same transaction
    # produces no rows.
    comparisons: tuple[ComparisonConfig, ...] = Field((ComparisonConfig(champion="v1", challenger="v2"),), max_length=8)

    @field_validator("segments")
    @classmethod
    def _unique_names(cls, value: tuple[SegmentConfig, ...]) -> tuple[SegmentConfig, ...]:
        names = [segment.name for segment in value]
        if len(set(names)) != len(names):
            raise ValueError(f"each segment name may appear once, got {names}")
        return value

    @model_validator(mode="after")
    def _revisions_fit_the_window(self) -> Config:
        # A window's rows are added up from its revision intervals' (sql/views/unlabelled, live). Unset, the
        # interval is the window: one provisional revision per window of label time.
        interval, size = self.cohort.revision_interval, self.windows.size
        if "revision_interval" not in self.cohort.model_fields_set:
            object.__setattr__(self, "cohort", self.cohort.model_copy(update={"revision_interval": size}))
        elif interval > size or size % interval:
            raise ValueError(
                f"cohort.revision_interval ({format_duration(interval)}) must divide windows.size "
                f"({format_duration(size)}) evenly"
            )
        return self

    @field_validator("comparisons")
    @classmethod
    def _one_row_per_challenger(cls, value: tuple[ComparisonConfig, ...]) -> tuple[ComparisonConfig, ...]:
        # A comparison row is keyed by its challenger (model_version) on the metrics topic.
        challengers = [pair.challenger for pair in value]
        if len(set(challengers)) != len(challengers):
            raise ValueError(f"each challenger may appear in one comparison, got {challengers}")
        return value


def _set_nested(target: dict[str, Any], keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        child = target.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"config field {'.'.join(keys)}: {key} is not a section")
        target = child
    target[keys[-1]] = value


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """MODELMON__JOIN__LABEL_HORIZON=2h -> {'join': {'label_horizon': '2h'}}; values parsed as YAML."""
    overrides: dict[str, Any] = {}
    for name, raw in sorted(environ.items()):
        if name.startswith(ENV_PREFIX):
            keys = name[len(ENV_PREFIX) :].lower().split("__")
            _set_nested(overrides, keys, yaml.safe_load(raw) if raw else raw)
    return overrides


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(error: ValidationError) -> str:
    lines = [f"invalid configuration ({error.error_count()} problem(s)):"]
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"])
        # A rule over several fields has no location of its own; its message names them.
        lines.append(f"  config field {field}: {item['msg']}" if field else f"  config: {item['msg']}")
    return "\n".join(lines)


def load_config(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Built-in defaults, overlaid by the YAML file, overlaid by MODELMON__* environment variables."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of sections")
        data = loaded
    data = _merge(data, env_overrides(os.environ if environ is None else environ))
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
