SET 'pipeline.name' = 'modelmon';

SET 'parallelism.default' = '1';

SET 'table.local-time-zone' = 'UTC';

SET 'execution.checkpointing.interval' = '10000 ms';

SET 'execution.checkpointing.mode' = 'EXACTLY_ONCE';

SET 'execution.checkpointing.dir' = 'file:///var/lib/modelmon/checkpoints/modelmon/streaming';

SET 'execution.checkpointing.externalized-checkpoint-retention' = 'RETAIN_ON_CANCELLATION';

SET 'state.backend.type' = 'hashmap';

SET 'table.exec.sink.require-on-conflict' = 'false';

SET 'table.exec.sink.upsert-materialize' = 'NONE';

SET 'execution.checkpointing.checkpoints-after-tasks-finish' = 'true';

-- Predictions as Kafka delivers them, one JSON object per record value, read as text so that a malformed
-- record becomes a dead letter with its reason (views/predictions_checked) instead of failing the job.
-- Grain: one row per Kafka record of the predictions topic.
CREATE TABLE predictions_raw (
  payload STRING,                                          -- the record value, untouched
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
  kafka_time TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  -- Row time: the prediction's event_time; the Kafka timestamp only for records too broken to have one
  -- (those never reach a window, they only must not stall the watermark).
  event_time AS COALESCE(CASE WHEN REGEXP(JSON_VALUE(payload, '$.event_time'), '^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(\.\d{1,9})?)(Z|[+]00:?00)?$')
    THEN TRY_CAST(REGEXP_EXTRACT(JSON_VALUE(payload, '$.event_time'), '^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(\.\d{1,9})?)(Z|[+]00:?00)?$', 1) || ' ' || REGEXP_EXTRACT(JSON_VALUE(payload, '$.event_time'), '^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(\.\d{1,9})?)(Z|[+]00:?00)?$', 2)
                  AS TIMESTAMP(3)) END, CAST(kafka_time AS TIMESTAMP(3))),
  WATERMARK FOR event_time AS event_time - INTERVAL '0 00:00:05.000' DAY TO SECOND(3)
) WITH (
'connector' = 'kafka',
  'topic' = 'predictions',
  'properties.bootstrap.servers' = '127.0.0.1:9092',
  'properties.group.id' = 'modelmon',
  'properties.isolation.level' = 'read_committed',
  'scan.startup.mode' = 'group-offsets',
  'properties.auto.offset.reset' = 'earliest',
  'scan.watermark.idle-timeout' = '30000 ms',
  'format' = 'raw'
);

-- Labels (was the transaction really fraud?) as Kafka delivers them, read as text like predictions_raw.
-- Grain: one row per Kafka record of the labels topic.
CREATE TABLE labels_raw (
  payload STRING,                                          -- the record value, untouched
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
  kafka_time TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  -- Row time: when the label became known; the Kafka timestamp only for records without a valid one.
  label_time AS COALESCE(CASE WHEN REGEXP(JSON_VALUE(payload, '$.label_time'), '^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(\.\d{1,9})?)(Z|[+]00:?00)?$')
    THEN TRY_CAST(REGEXP_EXTRACT(JSON_VALUE(payload, '$.label_time'), '^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(\.\d{1,9})?)(Z|[+]00:?00)?$', 1) || ' ' || REGEXP_EXTRACT(JSON_VALUE(payload, '$.label_time'), '^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(\.\d{1,9})?)(Z|[+]00:?00)?$', 2)
                  AS TIMESTAMP(3)) END, CAST(kafka_time AS TIMESTAMP(3))),
  WATERMARK FOR label_time AS label_time - INTERVAL '0 00:00:05.000' DAY TO SECOND(3)
) WITH (
'connector' = 'kafka',
  'topic' = 'labels',
  'properties.bootstrap.servers' = '127.0.0.1:9092',
  'properties.group.id' = 'modelmon',
  'properties.isolation.level' = 'read_committed',
  'scan.startup.mode' = 'group-offsets',
  'properties.auto.offset.reset' = 'earliest',
  'scan.watermark.idle-timeout' = '30000 ms',
  'format' = 'raw'
);

-- The job's own labelled-predictions topic, read back with a watermark on label_time. The interval join
-- holds its output watermark back by the whole label horizon; reading its committed output from Kafka
-- restores the label watermark, so the live view fires a minute after the labels arrive, not hours.
-- Streaming runs only: a bounded run windows the join directly (every window fires at end of input).
-- Grain: one row per (prediction, label) pair the join produced.
CREATE TABLE labelled_predictions_replay (
  transaction_id STRING,
  model_version STRING,
  predicted_fraud_score DOUBLE,
  predicted_fraud INT,
  actual_fraud INT,
  event_time STRING,                                       -- ISO-8601 UTC
  label_time STRING,                                       -- ISO-8601 UTC
  label_latency_s BIGINT,
  label_ts AS CASE WHEN REGEXP(label_time, '^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(\.\d{1,9})?)(Z|[+]00:?00)?$')
    THEN TRY_CAST(REGEXP_EXTRACT(label_time, '^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(\.\d{1,9})?)(Z|[+]00:?00)?$', 1) || ' ' || REGEXP_EXTRACT(label_time, '^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(\.\d{1,9})?)(Z|[+]00:?00)?$', 2)
                  AS TIMESTAMP(3)) END,
  -- A label that came before its prediction (up to max_label_skew) leaves the join only once the prediction
  -- arrives, that much behind the others: the watermark waits for it.
  WATERMARK FOR label_ts AS label_ts - INTERVAL '0 00:00:05.000' DAY TO SECOND(3) - INTERVAL '0 00:00:10.000' DAY TO SECOND(3)
) WITH (
'connector' = 'kafka',
  'topic' = 'labelled-predictions',
  'properties.bootstrap.servers' = '127.0.0.1:9092',
  'properties.group.id' = 'modelmon',
  'properties.isolation.level' = 'read_committed',
  'scan.startup.mode' = 'group-offsets',
  'properties.auto.offset.reset' = 'earliest',
  'scan.watermark.idle-timeout' = '30000 ms',
  'format' = 'json',
  'json.fail-on-missing-field' = 'false'
);

-- The metrics topic: one JSON object per view x window x model_version x segment, upserted by that key
-- (provisional revisions of a window overwrite each other; consumers keep the latest per key).
CREATE TABLE metrics_sink (
  `view` STRING,                 -- 'live': grouped by label arrival time
  window_start STRING,           -- ISO-8601 UTC, inclusive
  window_end STRING,             -- ISO-8601 UTC, exclusive
  model_version STRING,          -- '*' = all versions
  segment_key STRING,            -- '*' = all segments
  segment_value STRING,          -- '*' = all values
  revision INT,                  -- increases with each provisional update of the same key
  is_final BOOLEAN,              -- no further revision will follow
  n_predictions BIGINT,          -- live view: the predictions the window's labels matched
  n_labelled BIGINT,
  tp BIGINT,
  fp BIGINT,
  tn BIGINT,
  fn BIGINT,
  accuracy DOUBLE,               -- NULL when undefined, never NaN
  `precision` DOUBLE,
  recall DOUBLE,
  f1 DOUBLE,
  PRIMARY KEY (`view`, window_start, model_version, segment_key, segment_value) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
'topic' = 'model-metrics',
  'properties.bootstrap.servers' = '127.0.0.1:9092',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = 'modelmon-model-metrics',
  'properties.transaction.timeout.ms' = '600000',
  'key.format' = 'json',
  'value.format' = 'json',
  'value.fields-include' = 'ALL'
);

-- The labelled-predictions topic: every prediction joined to its label, keyed by transaction_id.
-- Users retrain on it; the streaming live view reads it back (sources/labelled_predictions_replay).
CREATE TABLE labelled_predictions_sink (
  transaction_id STRING,
  model_version STRING,
  predicted_fraud_score DOUBLE,
  predicted_fraud INT,
  actual_fraud INT,
  event_time STRING,             -- ISO-8601 UTC, when the prediction was made
  label_time STRING,             -- ISO-8601 UTC, when the label became known
  label_latency_s BIGINT         -- label_time - event_time, whole seconds
) WITH (
  'connector' = 'kafka',
'topic' = 'labelled-predictions',
  'properties.bootstrap.servers' = '127.0.0.1:9092',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = 'modelmon-labelled-predictions',
  'properties.transaction.timeout.ms' = '600000',
  'key.format' = 'raw',
  'key.fields' = 'transaction_id',
  'value.format' = 'json',
  'value.fields-include' = 'ALL'
);

-- The dead-letter topic: every input record the job could not use, with the reason and where it came from.
CREATE TABLE dead_letter_sink (
  source_topic STRING,
  reason STRING,                 -- human-readable, e.g. 'predicted_fraud_score outside [0, 1]'
  payload STRING,                -- the record value, untouched
  kafka_partition INT,
  kafka_offset BIGINT,
  kafka_timestamp STRING         -- ISO-8601 UTC
) WITH (
  'connector' = 'kafka',
'topic' = 'modelmon-dead-letter',
  'properties.bootstrap.servers' = '127.0.0.1:9092',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = 'modelmon-modelmon-dead-letter',
  'properties.transaction.timeout.ms' = '600000',
  'format' = 'json'
);

-- Predictions parsed from JSON and checked; `reason` is NULL for a valid row and says what is wrong
-- otherwise (invalid rows go to the dead-letter topic, valid ones to the join).
-- Grain: one row per Kafka record of the predictions topic.
CREATE TEMPORARY VIEW predictions_checked AS
SELECT
  *,
  CASE
    WHEN payload IS NULL OR NOT (payload IS JSON OBJECT) THEN 'not a JSON object'
    WHEN transaction_id IS NULL OR CHAR_LENGTH(TRIM(transaction_id)) = 0 THEN 'missing transaction_id'
    WHEN CHAR_LENGTH(transaction_id) > 256 THEN 'transaction_id longer than 256 characters'
    WHEN model_version IS NULL OR CHAR_LENGTH(TRIM(model_version)) = 0 THEN 'missing model_version'
    WHEN CHAR_LENGTH(model_version) > 256 THEN 'model_version longer than 256 characters'
    WHEN predicted_fraud_score IS NULL THEN 'predicted_fraud_score missing or not a number'
    WHEN NOT (predicted_fraud_score BETWEEN 0 AND 1) THEN 'predicted_fraud_score outside [0, 1]'
    WHEN predicted_fraud IS NULL OR predicted_fraud NOT IN (0, 1) THEN 'predicted_fraud missing or not 0|1'
    WHEN event_time_parsed IS NULL THEN 'event_time missing or not ISO-8601 UTC'
  END AS reason
FROM (
  SELECT
    payload,
    kafka_partition,
    kafka_offset,
    kafka_time,
    event_time,                                                         -- row time
    JSON_VALUE(payload, '$.transaction_id') AS transaction_id,
    JSON_VALUE(payload, '$.model_version') AS model_version,
    TRY_CAST(JSON_VALUE(payload, '$.predicted_fraud_score') AS DOUBLE) AS predicted_fraud_score,
    TRY_CAST(JSON_VALUE(payload, '$.predicted_fraud') AS INT) AS predicted_fraud,
    CASE WHEN REGEXP(JSON_VALUE(payload, '$.event_time'), '^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(\.\d{1,9})?)(Z|[+]00:?00)?$')
    THEN TRY_CAST(REGEXP_EXTRACT(JSON_VALUE(payload, '$.event_time'), '^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(\.\d{1,9})?)(Z|[+]00:?00)?$', 1) || ' ' || REGEXP_EXTRACT(JSON_VALUE(payload, '$.event_time'), '^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(\.\d{1,9})?)(Z|[+]00:?00)?$', 2)
                  AS TIMESTAMP(3)) END AS event_time_parsed
  FROM predictions_raw
);

-- Labels parsed from JSON and checked; `reason` is NULL for a valid row and says what is wrong otherwise.
-- Grain: one row per Kafka record of the labels topic.
CREATE TEMPORARY VIEW labels_checked AS
SELECT
  *,
  CASE
    WHEN payload IS NULL OR NOT (payload IS JSON OBJECT) THEN 'not a JSON object'
    WHEN transaction_id IS NULL OR CHAR_LENGTH(TRIM(transaction_id)) = 0 THEN 'missing transaction_id'
    WHEN CHAR_LENGTH(transaction_id) > 256 THEN 'transaction_id longer than 256 characters'
    WHEN actual_fraud IS NULL OR actual_fraud NOT IN (0, 1) THEN 'actual_fraud missing or not 0|1'
    WHEN label_time_parsed IS NULL THEN 'label_time missing or not ISO-8601 UTC'
  END AS reason
FROM (
  SELECT
    payload,
    kafka_partition,
    kafka_offset,
    kafka_time,
    label_time,                                                         -- row time
    JSON_VALUE(payload, '$.transaction_id') AS transaction_id,
    TRY_CAST(JSON_VALUE(payload, '$.actual_fraud') AS INT) AS actual_fraud,
    CASE WHEN REGEXP(JSON_VALUE(payload, '$.label_time'), '^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(\.\d{1,9})?)(Z|[+]00:?00)?$')
    THEN TRY_CAST(REGEXP_EXTRACT(JSON_VALUE(payload, '$.label_time'), '^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(\.\d{1,9})?)(Z|[+]00:?00)?$', 1) || ' ' || REGEXP_EXTRACT(JSON_VALUE(payload, '$.label_time'), '^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(\.\d{1,9})?)(Z|[+]00:?00)?$', 2)
                  AS TIMESTAMP(3)) END AS label_time_parsed
  FROM labels_raw
);

-- Each valid prediction joined to its label: an interval join, so state is kept only within the horizon.
-- A label may precede its prediction by at most max_label_skew and follow it by at most label_horizon.
-- Grain: one row per (prediction, label) pair; several model versions scoring one transaction give several.
CREATE TEMPORARY VIEW labelled_predictions AS
SELECT
  p.transaction_id,
  p.model_version,
  p.predicted_fraud_score,
  p.predicted_fraud,
  l.actual_fraud,
  p.event_time,                                                       -- when the prediction was made
  l.label_time,                                                       -- when its label became known
  CAST(TIMESTAMPDIFF(SECOND, p.event_time, l.label_time) AS BIGINT) AS label_latency_s
FROM predictions_checked AS p
JOIN labels_checked AS l
  ON p.transaction_id = l.transaction_id
 AND l.label_time BETWEEN p.event_time - INTERVAL '0 00:00:10.000' DAY TO SECOND(3)
                      AND p.event_time + INTERVAL '0 06:00:00.000' DAY TO SECOND(3)
WHERE p.reason IS NULL AND l.reason IS NULL;

-- The rows the live view windows, with label_time as row time. Streaming: read back from the
-- labelled-predictions topic, which carries the label watermark (see sources/labelled_predictions_replay);
-- bounded: the join itself, whose windows all fire at the end of the input.
-- Grain: one row per (prediction, label) pair.
CREATE TEMPORARY VIEW live_input AS
SELECT model_version, predicted_fraud, actual_fraud, label_ts AS label_time
FROM labelled_predictions_replay;

-- The live view: of the labels that arrived in each window of label_time, how right were the predictions?
-- Per model_version and for all versions ('*'). Final when the window closes; never waits for the horizon.
-- Grain: one row per window x model_version (incl. '*'), columns as in sinks/metrics.
CREATE TEMPORARY VIEW live_metrics AS
SELECT
  'live' AS `view`,
  DATE_FORMAT(window_start, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''') AS window_start,
  DATE_FORMAT(window_end, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''') AS window_end,
  model_version,
  '*' AS segment_key,
  '*' AS segment_value,
  0 AS revision,
  TRUE AS is_final,
  n_labelled AS n_predictions,
  n_labelled,
  tp,
  fp,
  tn,
  fn,
  CASE WHEN n_labelled > 0 THEN CAST(tp + tn AS DOUBLE) / (n_labelled) END AS accuracy,
  CASE WHEN tp + fp > 0 THEN CAST(tp AS DOUBLE) / (tp + fp) END AS `precision`,
  CASE WHEN tp + fn > 0 THEN CAST(tp AS DOUBLE) / (tp + fn) END AS recall,
  CASE WHEN 2 * tp + fp + fn > 0 THEN CAST(2 * tp AS DOUBLE) / (2 * tp + fp + fn) END AS f1
FROM (
  SELECT
    window_start,
    window_end,
    CASE WHEN GROUPING(model_version) = 1 THEN '*' ELSE model_version END AS model_version,
    COUNT(*) AS n_labelled,
    COUNT(*) FILTER (WHERE predicted_fraud = 1 AND actual_fraud = 1) AS tp,
    COUNT(*) FILTER (WHERE predicted_fraud = 1 AND actual_fraud = 0) AS fp,
    COUNT(*) FILTER (WHERE predicted_fraud = 0 AND actual_fraud = 0) AS tn,
    COUNT(*) FILTER (WHERE predicted_fraud = 0 AND actual_fraud = 1) AS fn
  FROM TABLE(TUMBLE(TABLE live_input, DESCRIPTOR(label_time), INTERVAL '0 00:01:00.000' DAY TO SECOND(3)))
  GROUP BY window_start, window_end, GROUPING SETS ((model_version), ())
);

EXECUTE STATEMENT SET
BEGIN

-- Every invalid input record, predictions and labels alike, to the dead-letter topic with its reason.
INSERT INTO dead_letter_sink
SELECT 'predictions', reason, payload, kafka_partition, kafka_offset, DATE_FORMAT(CAST(kafka_time AS TIMESTAMP(3)), 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''')
FROM predictions_checked
WHERE reason IS NOT NULL
UNION ALL
SELECT 'labels', reason, payload, kafka_partition, kafka_offset, DATE_FORMAT(CAST(kafka_time AS TIMESTAMP(3)), 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''')
FROM labels_checked
WHERE reason IS NOT NULL;

-- Joined rows to the labelled-predictions topic, times as ISO-8601 UTC text.
INSERT INTO labelled_predictions_sink
SELECT
  transaction_id,
  model_version,
  predicted_fraud_score,
  predicted_fraud,
  actual_fraud,
  DATE_FORMAT(event_time, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z'''),
  DATE_FORMAT(label_time, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z'''),
  label_latency_s
FROM labelled_predictions;

-- Every view's rows to the metrics topic.
INSERT INTO metrics_sink
SELECT * FROM live_metrics;

END;
