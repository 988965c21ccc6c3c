SET 'table.exec.uid.generation' = 'ALWAYS';

SET 'table.optimizer.reuse-optimize-block-with-digest-enabled' = 'true';

SET 'pipeline.name' = 'modelmon';

SET 'pipeline.object-reuse' = 'true';

SET 'parallelism.default' = '1';

SET 'table.local-time-zone' = 'UTC';

SET 'execution.checkpointing.interval' = '10000 ms';

SET 'execution.checkpointing.mode' = 'EXACTLY_ONCE';

SET 'execution.checkpointing.dir' = 'file:///var/lib/modelmon/checkpoints/modelmon/streaming/d3cd02384eee';

SET 'execution.checkpointing.externalized-checkpoint-retention' = 'RETAIN_ON_CANCELLATION';

SET 'state.backend.type' = 'rocksdb';

SET 'execution.checkpointing.incremental' = 'true';

SET 'state.backend.rocksdb.log.dir' = '/var/lib/modelmon/rocksdb-logs';

SET 'taskmanager.memory.managed.size' = '1g';

SET 'table.exec.state.ttl' = '21610000 ms';

SET 'table.exec.sink.require-on-conflict' = 'false';

SET 'table.exec.sink.upsert-materialize' = 'NONE';

SET 'execution.checkpointing.checkpoints-after-tasks-finish' = 'true';

SET 'python.executable' = '/usr/bin/python3';

SET 'python.client.executable' = '/usr/bin/python3';

SET 'metrics.reporter.prom.factory.class' = 'org.apache.flink.metrics.prometheus.PrometheusReporterFactory';

SET 'metrics.reporter.prom.port' = '9249-9259';

-- modelmon's parsing functions (jvm/src/main/java, in the modelmon-functions jar that every job loads), with which
-- the sources' row times and the checking views read each record once (Flink's JSON_VALUE parses the whole record
-- for every field; a regular expression and a cast cost many times more than one pass over a time's text):
-- JSON_FIELDS(payload, 'a', 'b', ...): the named top-level fields of a JSON record value as a ROW of texts, NULL if
-- the value is not one JSON object.
CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS JSON_FIELDS AS 'io.modelmon.functions.JsonFields' LANGUAGE JAVA;

-- UTC_TIMESTAMP(text): ISO-8601 UTC text as TIMESTAMP(3); NULL for anything else, or a date or time that does
-- not exist.
CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS UTC_TIMESTAMP AS 'io.modelmon.functions.UtcTimestamp' LANGUAGE JAVA;

-- Predictions as Kafka delivers them, one JSON object per record value, read as text so that a malformed
-- record becomes a dead letter with its reason (views/predictions_checked) instead of failing the job.
-- Grain: one row per Kafka record of the predictions topic.
CREATE TABLE predictions_raw (
  payload STRING,                                          -- the record value, untouched
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
  kafka_time TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  proc_time AS PROCTIME(),                                 -- arrival order, for telling copies apart
  -- Row time: the prediction's event_time; the Kafka timestamp only for records too broken to have one
  -- (those never reach a window, they only must not stall the watermark).
  event_time AS COALESCE(UTC_TIMESTAMP(JSON_FIELDS(payload, 'event_time').event_time), CAST(kafka_time AS TIMESTAMP(3))),
  WATERMARK FOR event_time AS LEAST(event_time, CAST(kafka_time AS TIMESTAMP(3)) + INTERVAL '0 00:10:00.000' DAY TO SECOND(3)) - INTERVAL '0 00:00:05.000' DAY TO SECOND(3)
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
  proc_time AS PROCTIME(),                                 -- arrival order, for telling copies apart
  -- Row time: when the label became known; the Kafka timestamp only for records without a valid one.
  label_time AS COALESCE(UTC_TIMESTAMP(JSON_FIELDS(payload, 'label_time').label_time), CAST(kafka_time AS TIMESTAMP(3))),
  WATERMARK FOR label_time AS LEAST(label_time, CAST(kafka_time AS TIMESTAMP(3)) + INTERVAL '0 00:10:00.000' DAY TO SECOND(3)) - INTERVAL '0 00:00:05.000' DAY TO SECOND(3)
) WITH (
'connector' = 'kafka',
  'topic' = 'labels',
  'properties.bootstrap.servers' = '127.0.0.1:9092',
  'properties.group.id' = 'modelmon',
  'properties.isolation.level' = 'read_committed',
  'scan.startup.mode' = 'group-offsets',
  'properties.auto.offset.reset' = 'earliest',
  'scan.watermark.idle-timeout' = '21600000 ms',
  'format' = 'raw'
);

-- The job's own labelled-predictions topic, read back with a watermark on label_time. The interval join
-- holds its output watermark back by the whole label horizon; reading its committed output from Kafka
-- restores the label watermark, so the live view fires a minute after the labels arrive, not hours.
-- The watermark comes from the join's progress that each row carries (join_watermark), never from the order
-- of the rows: a backlog read in bursts, one topic ahead of the other, makes the join emit its rows far out
-- of label_time order, and none of them is late by this watermark (see inserts/labelled_predictions).
-- Streaming runs only: a bounded run windows the join directly (every window fires at end of input).
-- Grain: one row per (prediction, label) pair the join produced.
CREATE TABLE labelled_predictions_replay (
  transaction_id STRING,
  model_version STRING,
  `country` STRING,
  `merchant_category` STRING,
  predicted_fraud_score DOUBLE,
  predicted_fraud INT,
  actual_fraud INT,
  event_time STRING,                                       -- ISO-8601 UTC
  label_time STRING,                                       -- ISO-8601 UTC
  label_latency_s BIGINT,
  join_watermark STRING,                                   -- ISO-8601 UTC, the join's progress
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
  kafka_time TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  event_ts AS UTC_TIMESTAMP(event_time),
  label_ts AS UTC_TIMESTAMP(label_time),
  -- A label that came before its prediction (up to max_label_skew) leaves the join only once the prediction
  -- arrives: the watermark waits for it. A row without join_watermark (the join had none yet) leaves the
  -- watermark where it was.
  WATERMARK FOR label_ts AS UTC_TIMESTAMP(join_watermark) - INTERVAL '0 00:00:10.000' DAY TO SECOND(3)
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

-- The metrics topic: one JSON object per view x window x model_version x segment, upserted by that key.
-- A cohort window is written several times, with growing `revision`, and last with is_final = true;
-- consumers keep the row with the highest revision per key. Undefined values are null, never NaN.
CREATE TABLE metrics_sink (
  `view` STRING,                 -- 'live' (by label time), 'cohort' (by prediction time), 'unlabelled'
  `window_start` STRING,         -- ISO-8601 UTC, inclusive
  `window_end` STRING,           -- ISO-8601 UTC, exclusive
  `model_version` STRING,        -- '*' = all versions
  `segment_key` STRING,          -- '*' = all segments, else a configured segment column
  `segment_value` STRING,        -- '*' = all values; a configured top value or 'other'
  `revision` INT,                -- grows with each update of the same key
  `is_final` BOOLEAN,            -- no further revision will follow
  `n_predictions` BIGINT,        -- live: the predictions the window's labels matched
  `n_labelled` BIGINT,
  `label_coverage` DOUBLE,       -- n_labelled / n_predictions
  `throughput_per_s` DOUBLE,     -- n_predictions / window length
  `mean_score` DOUBLE,
  `predicted_positive_rate` DOUBLE,
  `tp` BIGINT,
  `fp` BIGINT,
  `tn` BIGINT,
  `fn` BIGINT,
  `accuracy` DOUBLE,
  `precision` DOUBLE,
  `recall` DOUBLE,
  `specificity` DOUBLE,
  `f1` DOUBLE,
  `accuracy_ci_low` DOUBLE,      -- Wilson 95% intervals
  `accuracy_ci_high` DOUBLE,
  `precision_ci_low` DOUBLE,
  `precision_ci_high` DOUBLE,
  `recall_ci_low` DOUBLE,
  `recall_ci_high` DOUBLE,
  `roc_auc` DOUBLE,              -- from score histograms; the exact AUC is within roc_auc_error_bound
  `roc_auc_error_bound` DOUBLE,
  `pr_auc` DOUBLE,               -- average precision
  `brier` DOUBLE,
  `log_loss` DOUBLE,
  `ece` DOUBLE,
  `mce` DOUBLE,
  `reliability` ARRAY<ROW<`bin` INT, n BIGINT, mean_score DOUBLE, observed_rate DOUBLE>>,-- non-empty bins
  `label_latency_p50_s` DOUBLE,
  `label_latency_p95_s` DOUBLE,
  `psi` DOUBLE,                  -- drift of the scores against drift.reference_file
  `ks_statistic` DOUBLE,
  `ks_pvalue` DOUBLE,
  `estimated_accuracy` DOUBLE,   -- CBPE: expected from the scores alone, before labels
  `estimated_precision` DOUBLE,
  `estimated_recall` DOUBLE,
  -- view 'comparison' only: the challenger (model_version) against the champion on the transactions both
  -- scored, by label arrival as in the live view; the rates above are the challenger's on those pairs.
  `compared_to` STRING,          -- the champion's model_version
  `mcnemar_b` BIGINT,            -- pairs only the champion got right
  `mcnemar_c` BIGINT,            -- pairs only the challenger got right
  `mcnemar_pvalue` DOUBLE,       -- exact two-sided McNemar test
  `significant` BOOLEAN,         -- mcnemar_pvalue < 0.05
  `accuracy_diff` DOUBLE,        -- challenger - champion
  `precision_diff` DOUBLE,
  `recall_diff` DOUBLE,
  `specificity_diff` DOUBLE,
  `f1_diff` DOUBLE,
  `brier_diff` DOUBLE,
  `log_loss_diff` DOUBLE,
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
-- Users retrain on it; the streaming live view reads it back (sources/labelled_predictions_replay), with a
-- watermark taken from join_watermark. That watermark holds only if each partition has one writer, so each
-- writing task keeps to a partition of its own ('fixed': task i writes partition i; the topic has at least as
-- many partitions as the job has tasks, see modelmon.topics).
CREATE TABLE labelled_predictions_sink (
  transaction_id STRING,
  model_version STRING,
  `country` STRING,         -- segment: a configured top value or 'other'
  `merchant_category` STRING,         -- segment: a configured top value or 'other'
  predicted_fraud_score DOUBLE,
  predicted_fraud INT,
  actual_fraud INT,
  event_time STRING,             -- ISO-8601 UTC, when the prediction was made
  label_time STRING,             -- ISO-8601 UTC, when the label became known
  label_latency_s BIGINT,        -- label_time - event_time, whole seconds
  join_watermark STRING          -- ISO-8601 UTC: every label and every prediction before it had reached the join
) WITH (
  'connector' = 'kafka',
'topic' = 'labelled-predictions',
  'properties.bootstrap.servers' = '127.0.0.1:9092',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = 'modelmon-labelled-predictions',
  'properties.transaction.timeout.ms' = '600000',
  'key.format' = 'raw',
  'key.fields' = 'transaction_id',
  'sink.partitioner' = 'fixed',
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

-- The history table: every final metrics row, as Parquet files under date=YYYY-MM-DD/view=NAME/. Files become
-- visible when the checkpoint that covers them completes (until then they are hidden .part-* files), so a job
-- restored from a checkpoint neither loses nor repeats a row. modelmon adds the committed files to a Delta
-- Lake log in the same folder (modelmon.history.sync).
CREATE TABLE history_sink (
  `view` STRING,                 -- 'live' (by label time), 'cohort' (by prediction time), 'unlabelled'
  `window_start` TIMESTAMP(3),   -- ISO-8601 UTC, inclusive
  `window_end` TIMESTAMP(3),     -- ISO-8601 UTC, exclusive
  `model_version` STRING,        -- '*' = all versions
  `segment_key` STRING,          -- '*' = all segments, else a configured segment column
  `segment_value` STRING,        -- '*' = all values; a configured top value or 'other'
  `revision` INT,                -- grows with each update of the same key
  `is_final` BOOLEAN,            -- no further revision will follow
  `n_predictions` BIGINT,        -- live: the predictions the window's labels matched
  `n_labelled` BIGINT,
  `label_coverage` DOUBLE,       -- n_labelled / n_predictions
  `throughput_per_s` DOUBLE,     -- n_predictions / window length
  `mean_score` DOUBLE,
  `predicted_positive_rate` DOUBLE,
  `tp` BIGINT,
  `fp` BIGINT,
  `tn` BIGINT,
  `fn` BIGINT,
  `accuracy` DOUBLE,
  `precision` DOUBLE,
  `recall` DOUBLE,
  `specificity` DOUBLE,
  `f1` DOUBLE,
  `accuracy_ci_low` DOUBLE,      -- Wilson 95% intervals
  `accuracy_ci_high` DOUBLE,
  `precision_ci_low` DOUBLE,
  `precision_ci_high` DOUBLE,
  `recall_ci_low` DOUBLE,
  `recall_ci_high` DOUBLE,
  `roc_auc` DOUBLE,              -- from score histograms; the exact AUC is within roc_auc_error_bound
  `roc_auc_error_bound` DOUBLE,
  `pr_auc` DOUBLE,               -- average precision
  `brier` DOUBLE,
  `log_loss` DOUBLE,
  `ece` DOUBLE,
  `mce` DOUBLE,
  `reliability` ARRAY<ROW<`bin` INT, n BIGINT, mean_score DOUBLE, observed_rate DOUBLE>>,-- non-empty bins
  `label_latency_p50_s` DOUBLE,
  `label_latency_p95_s` DOUBLE,
  `psi` DOUBLE,                  -- drift of the scores against drift.reference_file
  `ks_statistic` DOUBLE,
  `ks_pvalue` DOUBLE,
  `estimated_accuracy` DOUBLE,   -- CBPE: expected from the scores alone, before labels
  `estimated_precision` DOUBLE,
  `estimated_recall` DOUBLE,
  -- view 'comparison' only: the challenger (model_version) against the champion on the transactions both
  -- scored, by label arrival as in the live view; the rates above are the challenger's on those pairs.
  `compared_to` STRING,          -- the champion's model_version
  `mcnemar_b` BIGINT,            -- pairs only the champion got right
  `mcnemar_c` BIGINT,            -- pairs only the challenger got right
  `mcnemar_pvalue` DOUBLE,       -- exact two-sided McNemar test
  `significant` BOOLEAN,         -- mcnemar_pvalue < 0.05
  `accuracy_diff` DOUBLE,        -- challenger - champion
  `precision_diff` DOUBLE,
  `recall_diff` DOUBLE,
  `specificity_diff` DOUBLE,
  `f1_diff` DOUBLE,
  `brier_diff` DOUBLE,
  `log_loss_diff` DOUBLE,
  `date` STRING                  -- the UTC date of window_start
) PARTITIONED BY (`date`, `view`) WITH (
  'connector' = 'filesystem',
  'path' = 'file:///var/lib/modelmon/history',
  'format' = 'parquet',
  -- Window bounds are UTC wall-clock values (table.local-time-zone): written as UTC, whatever the JVM's zone.
  'parquet.utc-timezone' = 'true'
);

-- The Python UDF that turns one aggregated window row into its histogram metrics (udfs/functions.py).
-- It runs in Python workers started with `python.executable`, which must import modelmon.
CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS window_metrics AS 'modelmon.udfs.functions.window_metrics' LANGUAGE PYTHON;

CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS mcnemar_pvalue AS 'modelmon.udfs.functions.mcnemar_pvalue' LANGUAGE PYTHON;

-- BIN_STATS(score, is_prediction, actual_fraud, score_bins, calibration_bins): a group's records as one score
-- histogram in text (the `bins` of aggregates.sql.j2's fine_stats); MERGE_BINS(bins): such histograms added up into
-- one, with one entry per bin, retractable for the cohort revisions' OVER window. Java aggregates (jvm/src).
-- LABELLED_BINS(bins): a histogram's labels only, each bin's prediction count 0 (a Java scalar function).
CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS BIN_STATS AS 'io.modelmon.functions.BinStats' LANGUAGE JAVA;

CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS MERGE_BINS AS 'io.modelmon.functions.MergeBins' LANGUAGE JAVA;

CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS LABELLED_BINS AS 'io.modelmon.functions.LabelledBins' LANGUAGE JAVA;

-- Predictions parsed from JSON and checked; `reason` is NULL for a valid row and says what is wrong
-- otherwise (invalid rows go to the dead-letter topic, valid ones to the join).
-- In steps that each compute a value once per record (see the macro `once`): the JSON fields as text (one parse,
-- macro json_fields), their values, the verdict, then whether a valid record repeats an earlier one. Every query
-- that reads the view shares one copy of it (see render.STATE_SETTINGS).
-- Grain: one row per Kafka record of the predictions topic.
CREATE TEMPORARY VIEW predictions_fields AS
SELECT
  payload,
  kafka_partition,
  kafka_offset,
  kafka_time,
  event_time,                                                         -- row time
  proc_time,
  fields IS NOT NULL AS is_object,
  fields.transaction_id AS transaction_id,
  fields.model_version AS model_version,
  fields.predicted_fraud_score AS score_text,
  fields.predicted_fraud AS flag_text,
  fields.event_time AS event_time_text,
  fields.`country` AS `country_text`,
  fields.`merchant_category` AS `merchant_category_text`
FROM (
  SELECT *, CASE WHEN RAND() < 2 THEN JSON_FIELDS(payload, 'transaction_id', 'model_version', 'predicted_fraud_score', 'predicted_fraud', 'event_time', 'country', 'merchant_category') END AS fields
  FROM predictions_raw
);

CREATE TEMPORARY VIEW predictions_verdicts AS
SELECT
  payload, kafka_partition, kafka_offset, kafka_time, event_time, proc_time,
  transaction_id, model_version, predicted_fraud_score, predicted_fraud, event_time_parsed, `country`, `merchant_category`,
  CASE WHEN RAND() < 2 THEN CASE
    WHEN payload IS NULL OR NOT is_object THEN 'not a JSON object'
    WHEN transaction_id IS NULL OR CHAR_LENGTH(TRIM(transaction_id)) = 0 THEN 'missing transaction_id'
    WHEN CHAR_LENGTH(transaction_id) > 256 THEN 'transaction_id longer than 256 characters'
    WHEN model_version IS NULL OR CHAR_LENGTH(TRIM(model_version)) = 0 THEN 'missing model_version'
    WHEN CHAR_LENGTH(model_version) > 256 THEN 'model_version longer than 256 characters'
    WHEN predicted_fraud_score IS NULL OR NOT REGEXP(score_text, '^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$')
      THEN 'predicted_fraud_score missing or not a number'
    WHEN NOT (predicted_fraud_score BETWEEN 0 AND 1) THEN 'predicted_fraud_score outside [0, 1]'
    WHEN predicted_fraud IS NULL THEN 'predicted_fraud missing or not 0|1'
    WHEN event_time_parsed IS NULL
      THEN 'event_time missing or not ISO-8601 UTC'
    WHEN event_time_parsed NOT BETWEEN CAST(kafka_time AS TIMESTAMP(3)) - INTERVAL '0 00:10:00.000' DAY TO SECOND(3)
                          AND CAST(kafka_time AS TIMESTAMP(3)) + INTERVAL '0 00:10:00.000' DAY TO SECOND(3)
      THEN 'event_time more than 10min from the record''s Kafka timestamp'
  END END AS reason
FROM (
  SELECT
    *,
    CASE WHEN RAND() < 2 THEN TRY_CAST(score_text AS DOUBLE) END AS predicted_fraud_score,
    CASE flag_text WHEN '0' THEN 0 WHEN '1' THEN 1 END AS predicted_fraud,  -- not 1.0, true or '01'
    CASE WHEN RAND() < 2 THEN UTC_TIMESTAMP(event_time_text) END AS event_time_parsed,
    CASE WHEN country_text IN ('US', 'GB', 'DE', 'FR', 'BR')
     THEN country_text ELSE 'other' END AS `country`,
    CASE WHEN merchant_category_text IN ('grocery', 'travel', 'electronics', 'gaming')
     THEN merchant_category_text ELSE 'other' END AS `merchant_category`
  FROM predictions_fields
);

CREATE TEMPORARY VIEW predictions_checked AS
SELECT
  payload, kafka_partition, kafka_offset, kafka_time, event_time,
  transaction_id, model_version, predicted_fraud_score, predicted_fraud, event_time_parsed, `country`, `merchant_category`,
  COALESCE(reason, CASE WHEN valid_copies > 1
                      THEN 'repeats an earlier prediction (same transaction_id, model_version, event_time)'
                      WHEN TIMESTAMPADD(SECOND, CAST(FLOOR(TIMESTAMPDIFF(SECOND, TIMESTAMP '1970-01-01 00:00:00', event_time) / 60.0E0) AS INT) * 60, TIMESTAMP '1970-01-01 00:00:00') + INTERVAL '0 00:01:00.000' DAY TO SECOND(3) - INTERVAL '0.001' SECOND <= CURRENT_WATERMARK(event_time)
                      THEN 'late: event_time in a window the watermark had closed (the newest event_time read less windows.out_of_orderness, 5s)' END) AS reason
FROM (
  SELECT
    *,
    -- Invalid records share one key (NULL), so the state holds valid identities only.
    COUNT(CASE WHEN reason IS NULL THEN 1 END) OVER (
      PARTITION BY CASE WHEN reason IS NULL THEN transaction_id END, CASE WHEN reason IS NULL THEN model_version END, CASE WHEN reason IS NULL THEN event_time_parsed END
      ORDER BY proc_time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS valid_copies
  FROM predictions_verdicts
);

-- Labels parsed from JSON and checked; `reason` is NULL for a valid row and says what is wrong otherwise.
-- In steps, as views/predictions_checked.
-- Grain: one row per Kafka record of the labels topic.
CREATE TEMPORARY VIEW labels_fields AS
SELECT
  payload,
  kafka_partition,
  kafka_offset,
  kafka_time,
  label_time,                                                         -- row time
  proc_time,
  fields IS NOT NULL AS is_object,
  fields.transaction_id AS transaction_id,
  fields.actual_fraud AS flag_text,
  fields.label_time AS label_time_text
FROM (
  SELECT *, CASE WHEN RAND() < 2 THEN JSON_FIELDS(payload, 'transaction_id', 'actual_fraud', 'label_time') END AS fields
  FROM labels_raw
);

CREATE TEMPORARY VIEW labels_verdicts AS
SELECT
  payload, kafka_partition, kafka_offset, kafka_time, label_time, proc_time,
  transaction_id, actual_fraud, label_time_parsed,
  CASE WHEN RAND() < 2 THEN CASE
    WHEN payload IS NULL OR NOT is_object THEN 'not a JSON object'
    WHEN transaction_id IS NULL OR CHAR_LENGTH(TRIM(transaction_id)) = 0 THEN 'missing transaction_id'
    WHEN CHAR_LENGTH(transaction_id) > 256 THEN 'transaction_id longer than 256 characters'
    WHEN actual_fraud IS NULL THEN 'actual_fraud missing or not 0|1'
    WHEN label_time_parsed IS NULL
      THEN 'label_time missing or not ISO-8601 UTC'
    WHEN label_time_parsed NOT BETWEEN CAST(kafka_time AS TIMESTAMP(3)) - INTERVAL '0 00:10:00.000' DAY TO SECOND(3)
                          AND CAST(kafka_time AS TIMESTAMP(3)) + INTERVAL '0 00:10:00.000' DAY TO SECOND(3)
      THEN 'label_time more than 10min from the record''s Kafka timestamp'
  END END AS reason
FROM (
  SELECT
    *,
    CASE flag_text WHEN '0' THEN 0 WHEN '1' THEN 1 END AS actual_fraud,  -- not 1.0, true or '01'
    CASE WHEN RAND() < 2 THEN UTC_TIMESTAMP(label_time_text) END AS label_time_parsed
  FROM labels_fields
);

CREATE TEMPORARY VIEW labels_checked AS
SELECT
  payload, kafka_partition, kafka_offset, kafka_time, label_time,
  transaction_id, actual_fraud, label_time_parsed,
  COALESCE(reason, CASE WHEN valid_copies > 1
                      THEN 'repeats an earlier label (same transaction_id, label_time)' END) AS reason
FROM (
  SELECT
    *,
    -- Invalid records share one key (NULL), so the state holds valid identities only.
    COUNT(CASE WHEN reason IS NULL THEN 1 END) OVER (
      PARTITION BY CASE WHEN reason IS NULL THEN transaction_id END, CASE WHEN reason IS NULL THEN label_time_parsed END
      ORDER BY proc_time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS valid_copies
  FROM labels_verdicts
);

-- Each valid label joined to the valid predictions of its transaction: an interval join, so state is kept only
-- within the horizon. A label may precede its prediction by at most max_label_skew and follow it by at most
-- label_horizon. Outer on the label's side: a label no prediction matches (an unknown transaction id, or one
-- whose prediction is more than the horizon before it or the skew after it) comes out once with NULL
-- prediction columns, when the watermark has passed the last moment its prediction could still arrive.
-- Grain: one row per (prediction, label) pair, and one per label without a pair.
CREATE TEMPORARY VIEW labels_joined AS
SELECT
  l.transaction_id,
  p.model_version, p.`country`, p.`merchant_category`,
  p.predicted_fraud_score,
  p.predicted_fraud,
  l.actual_fraud,
  p.event_time,                                                       -- when the prediction was made
  l.label_time,                                                       -- when its label became known
  CAST(TIMESTAMPDIFF(SECOND, p.event_time, l.label_time) AS BIGINT) AS label_latency_s,
  p.transaction_id IS NOT NULL AS matched,
  l.payload,
  l.kafka_partition,
  l.kafka_offset,
  l.kafka_time
FROM (SELECT * FROM labels_checked WHERE reason IS NULL) AS l
LEFT JOIN (SELECT * FROM predictions_checked WHERE reason IS NULL) AS p
  ON p.transaction_id = l.transaction_id
 AND l.label_time BETWEEN p.event_time - INTERVAL '0 00:00:10.000' DAY TO SECOND(3)
                      AND p.event_time + INTERVAL '0 06:00:00.000' DAY TO SECOND(3);

-- Grain: one row per (prediction, label) pair; several model versions scoring one transaction give several.
CREATE TEMPORARY VIEW labelled_predictions AS
SELECT
  transaction_id,
  model_version, `country`, `merchant_category`,
  predicted_fraud_score,
  predicted_fraud,
  actual_fraud,
  event_time,
  label_time,
  label_latency_s
FROM labels_joined
WHERE matched;

-- The live view: of the labels that arrived in each window of label_time, how right were the predictions?
-- Final when the window closes; never waits for the horizon.
--
-- Its input: streaming, the labelled-predictions topic read back (it carries the label watermark, see
-- sources/labelled_predictions_replay); bounded, the join itself, whose windows all fire at end of input.
-- Grain: one row per (prediction, label) pair, label_time as row time.
-- A row is late if its label_time is not after the replay's watermark. None is while every input keeps
-- sending: an input silent for its idle timeout stops holding the join's watermark back, and its records that
-- come after that may be late. A late row is counted as a dead letter (inserts/dead_letter), not dropped by the
-- windows without a trace.
CREATE TEMPORARY VIEW live_replay AS
SELECT *, label_ts <= CURRENT_WATERMARK(label_ts) AS late
FROM labelled_predictions_replay;

CREATE TEMPORARY VIEW live_input AS
SELECT transaction_id, model_version, `country`, `merchant_category`, predicted_fraud_score, predicted_fraud, actual_fraud, label_latency_s,
       event_ts AS event_time, label_ts AS label_time
FROM live_replay
WHERE late IS NOT TRUE;

-- Each matched prediction counts once, as a prediction and as a label. cohort_start: the window of its event_time.
CREATE TEMPORARY VIEW live_observations AS
SELECT
  model_version, `country`, `merchant_category`, predicted_fraud_score, predicted_fraud, actual_fraud, label_latency_s,
  TRUE AS is_prediction,
  TIMESTAMPADD(SECOND, CAST(FLOOR(TIMESTAMPDIFF(SECOND, TIMESTAMP '1970-01-01 00:00:00', event_time) / 60.0E0) AS INT) * 60, TIMESTAMP '1970-01-01 00:00:00') AS cohort_start,
  label_time
FROM live_input;

-- Per revision interval of label_time and cohort: the cohort view's provisional revisions read these rows too
-- (views/cohort), so each joined row is aggregated once for both; the live window adds them up.
CREATE TEMPORARY VIEW live_fine AS
SELECT
  window_time AS fine_time,
  cohort_start,
  model_version, `country`, `merchant_category`,
  COUNT(*) FILTER (WHERE is_prediction) AS n_predictions,
  COUNT(*) FILTER (WHERE is_prediction AND predicted_fraud = 1) AS predicted_positive,
  COALESCE(SUM(predicted_fraud_score) FILTER (WHERE is_prediction), 0E0) AS score_sum,
  -- CBPE: the confusion matrix expected if the scores are calibrated, with the model's own decisions.
  COALESCE(SUM(predicted_fraud_score) FILTER (WHERE is_prediction AND predicted_fraud = 1), 0E0) AS expected_tp,
  COALESCE(SUM(1.0E0 - predicted_fraud_score) FILTER (WHERE is_prediction AND predicted_fraud = 1), 0E0) AS expected_fp,
  COALESCE(SUM(predicted_fraud_score) FILTER (WHERE is_prediction AND predicted_fraud = 0), 0E0) AS expected_fn,
  COALESCE(SUM(1.0E0 - predicted_fraud_score) FILTER (WHERE is_prediction AND predicted_fraud = 0), 0E0) AS expected_tn,
  COUNT(actual_fraud) AS n_labelled,
  COUNT(*) FILTER (WHERE predicted_fraud = 1 AND actual_fraud = 1) AS tp,
  COUNT(*) FILTER (WHERE predicted_fraud = 1 AND actual_fraud = 0) AS fp,
  COUNT(*) FILTER (WHERE predicted_fraud = 0 AND actual_fraud = 0) AS tn,
  COUNT(*) FILTER (WHERE predicted_fraud = 0 AND actual_fraud = 1) AS fn,
  COALESCE(SUM((predicted_fraud_score - actual_fraud) * (predicted_fraud_score - actual_fraud)), 0E0) AS sq_err_sum,
  -- The probability given to the observed label, clipped to [1e-15, 1 - 1e-15] as scikit-learn does.
  COALESCE(SUM(-LN(GREATEST(LEAST(CASE WHEN actual_fraud = 1 THEN predicted_fraud_score ELSE 1.0E0 - predicted_fraud_score END,
                                  1.0E0 - 1.0E-15), 1.0E-15))) FILTER (WHERE actual_fraud IS NOT NULL), 0E0) AS log_loss_sum,
  -- Label latency buckets, closed above: (edge[i-1], edge[i]]; a label before its prediction counts as 0 s.
  COUNT(*) FILTER (WHERE label_latency_s <= 1) AS latency_0,
  COUNT(*) FILTER (WHERE label_latency_s <= 2 AND label_latency_s > 1) AS latency_1,
  COUNT(*) FILTER (WHERE label_latency_s <= 5 AND label_latency_s > 2) AS latency_2,
  COUNT(*) FILTER (WHERE label_latency_s <= 10 AND label_latency_s > 5) AS latency_3,
  COUNT(*) FILTER (WHERE label_latency_s <= 20 AND label_latency_s > 10) AS latency_4,
  COUNT(*) FILTER (WHERE label_latency_s <= 30 AND label_latency_s > 20) AS latency_5,
  COUNT(*) FILTER (WHERE label_latency_s <= 45 AND label_latency_s > 30) AS latency_6,
  COUNT(*) FILTER (WHERE label_latency_s <= 60 AND label_latency_s > 45) AS latency_7,
  COUNT(*) FILTER (WHERE label_latency_s <= 90 AND label_latency_s > 60) AS latency_8,
  COUNT(*) FILTER (WHERE label_latency_s <= 120 AND label_latency_s > 90) AS latency_9,
  COUNT(*) FILTER (WHERE label_latency_s <= 180 AND label_latency_s > 120) AS latency_10,
  COUNT(*) FILTER (WHERE label_latency_s <= 240 AND label_latency_s > 180) AS latency_11,
  COUNT(*) FILTER (WHERE label_latency_s <= 300 AND label_latency_s > 240) AS latency_12,
  COUNT(*) FILTER (WHERE label_latency_s <= 450 AND label_latency_s > 300) AS latency_13,
  COUNT(*) FILTER (WHERE label_latency_s <= 600 AND label_latency_s > 450) AS latency_14,
  COUNT(*) FILTER (WHERE label_latency_s <= 900 AND label_latency_s > 600) AS latency_15,
  COUNT(*) FILTER (WHERE label_latency_s <= 1200 AND label_latency_s > 900) AS latency_16,
  COUNT(*) FILTER (WHERE label_latency_s <= 1800 AND label_latency_s > 1200) AS latency_17,
  COUNT(*) FILTER (WHERE label_latency_s <= 2700 AND label_latency_s > 1800) AS latency_18,
  COUNT(*) FILTER (WHERE label_latency_s <= 3600 AND label_latency_s > 2700) AS latency_19,
  COUNT(*) FILTER (WHERE label_latency_s <= 5400 AND label_latency_s > 3600) AS latency_20,
  COUNT(*) FILTER (WHERE label_latency_s <= 7200 AND label_latency_s > 5400) AS latency_21,
  COUNT(*) FILTER (WHERE label_latency_s <= 10800 AND label_latency_s > 7200) AS latency_22,
  COUNT(*) FILTER (WHERE label_latency_s <= 14400 AND label_latency_s > 10800) AS latency_23,
  COUNT(*) FILTER (WHERE label_latency_s <= 21600 AND label_latency_s > 14400) AS latency_24,
  COUNT(*) FILTER (WHERE label_latency_s <= 43200 AND label_latency_s > 21600) AS latency_25,
  COUNT(*) FILTER (WHERE label_latency_s <= 86400 AND label_latency_s > 43200) AS latency_26,
  COUNT(*) FILTER (WHERE label_latency_s > 86400) AS latency_27,
  BIN_STATS(predicted_fraud_score, is_prediction, actual_fraud, 100, 10) AS bins
FROM TABLE(TUMBLE(TABLE live_observations, DESCRIPTOR(label_time), INTERVAL '0 00:01:00.000' DAY TO SECOND(3)))
GROUP BY window_start, window_end, window_time, cohort_start, model_version, `country`, `merchant_category`;

CREATE TEMPORARY VIEW live_windows AS
SELECT
  window_start,
  window_end,
  window_time,
  CASE WHEN GROUPING(model_version) = 1 THEN '*' ELSE model_version END AS model_version,
  CASE WHEN GROUPING(`country`) = 0 THEN 'country' WHEN GROUPING(`merchant_category`) = 0 THEN 'merchant_category' ELSE '*' END AS segment_key,
  CASE WHEN GROUPING(`country`) = 0 THEN `country` WHEN GROUPING(`merchant_category`) = 0 THEN `merchant_category` ELSE '*' END AS segment_value,
  SUM(n_predictions) AS n_predictions,
  SUM(predicted_positive) AS predicted_positive,
  SUM(score_sum) AS score_sum,
  SUM(expected_tp) AS expected_tp,
  SUM(expected_fp) AS expected_fp,
  SUM(expected_fn) AS expected_fn,
  SUM(expected_tn) AS expected_tn,
  SUM(n_labelled) AS n_labelled,
  SUM(tp) AS tp,
  SUM(fp) AS fp,
  SUM(tn) AS tn,
  SUM(fn) AS fn,
  SUM(sq_err_sum) AS sq_err_sum,
  SUM(log_loss_sum) AS log_loss_sum,
  SUM(latency_0) AS latency_0,
  SUM(latency_1) AS latency_1,
  SUM(latency_2) AS latency_2,
  SUM(latency_3) AS latency_3,
  SUM(latency_4) AS latency_4,
  SUM(latency_5) AS latency_5,
  SUM(latency_6) AS latency_6,
  SUM(latency_7) AS latency_7,
  SUM(latency_8) AS latency_8,
  SUM(latency_9) AS latency_9,
  SUM(latency_10) AS latency_10,
  SUM(latency_11) AS latency_11,
  SUM(latency_12) AS latency_12,
  SUM(latency_13) AS latency_13,
  SUM(latency_14) AS latency_14,
  SUM(latency_15) AS latency_15,
  SUM(latency_16) AS latency_16,
  SUM(latency_17) AS latency_17,
  SUM(latency_18) AS latency_18,
  SUM(latency_19) AS latency_19,
  SUM(latency_20) AS latency_20,
  SUM(latency_21) AS latency_21,
  SUM(latency_22) AS latency_22,
  SUM(latency_23) AS latency_23,
  SUM(latency_24) AS latency_24,
  SUM(latency_25) AS latency_25,
  SUM(latency_26) AS latency_26,
  SUM(latency_27) AS latency_27,
  MERGE_BINS(bins) AS bins
FROM TABLE(TUMBLE(TABLE live_fine, DESCRIPTOR(fine_time), INTERVAL '0 00:01:00.000' DAY TO SECOND(3)))
GROUP BY window_start, window_end, window_time, GROUPING SETS ((model_version), (), (model_version, `country`), (`country`), (model_version, `merchant_category`), (`merchant_category`));

-- Grain: one row per window x model_version (incl. '*') x segment (incl. '*'), columns as in sinks/metrics.
CREATE TEMPORARY VIEW live_metrics AS
SELECT
  'live' AS `view`,
  DATE_FORMAT(window_start, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''') AS window_start,
  DATE_FORMAT(window_end, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''') AS window_end,
  model_version,
  segment_key,
  segment_value,
  0 AS revision,
  TRUE AS is_final,
  n_predictions,
  n_labelled,
  CASE WHEN n_predictions > 0 THEN CAST(n_labelled AS DOUBLE) / (n_predictions) END AS label_coverage,
  CAST(n_predictions AS DOUBLE) / 60 AS throughput_per_s,
  CASE WHEN n_predictions > 0 THEN CAST(score_sum AS DOUBLE) / (n_predictions) END AS mean_score,
  CASE WHEN n_predictions > 0 THEN CAST(predicted_positive AS DOUBLE) / (n_predictions) END AS predicted_positive_rate,
  tp,
  fp,
  tn,
  fn,
  CASE WHEN n_labelled > 0 THEN CAST(tp + tn AS DOUBLE) / (n_labelled) END AS accuracy,
  CASE WHEN tp + fp > 0 THEN CAST(tp AS DOUBLE) / (tp + fp) END AS `precision`,
  CASE WHEN tp + fn > 0 THEN CAST(tp AS DOUBLE) / (tp + fn) END AS recall,
  CASE WHEN tn + fp > 0 THEN CAST(tn AS DOUBLE) / (tn + fp) END AS specificity,
  CASE WHEN 2 * tp + fp + fn > 0 THEN CAST(2 * tp AS DOUBLE) / (2 * tp + fp + fn) END AS f1,
  h.accuracy_ci_low,
  h.accuracy_ci_high,
  h.precision_ci_low,
  h.precision_ci_high,
  h.recall_ci_low,
  h.recall_ci_high,
  h.roc_auc,
  h.roc_auc_error_bound,
  h.pr_auc,
  CASE WHEN n_labelled > 0 THEN CAST(sq_err_sum AS DOUBLE) / (n_labelled) END AS brier,
  CASE WHEN n_labelled > 0 THEN CAST(log_loss_sum AS DOUBLE) / (n_labelled) END AS log_loss,
  h.ece,
  h.mce,
  h.reliability,
  h.label_latency_p50_s,
  h.label_latency_p95_s,
  h.psi,
  h.ks_statistic,
  h.ks_pvalue,
  CASE WHEN expected_tp + expected_fp + expected_fn + expected_tn > 0 THEN CAST(expected_tp + expected_tn AS DOUBLE) / (expected_tp + expected_fp + expected_fn + expected_tn) END AS estimated_accuracy,
  CASE WHEN expected_tp + expected_fp > 0 THEN CAST(expected_tp AS DOUBLE) / (expected_tp + expected_fp) END AS estimated_precision,
  CASE WHEN expected_tp + expected_fn > 0 THEN CAST(expected_tp AS DOUBLE) / (expected_tp + expected_fn) END AS estimated_recall,
  CAST(NULL AS STRING) AS compared_to,
  CAST(NULL AS BIGINT) AS mcnemar_b,
  CAST(NULL AS BIGINT) AS mcnemar_c,
  CAST(NULL AS DOUBLE) AS mcnemar_pvalue,
  CAST(NULL AS BOOLEAN) AS significant,
  CAST(NULL AS DOUBLE) AS accuracy_diff,
  CAST(NULL AS DOUBLE) AS precision_diff,
  CAST(NULL AS DOUBLE) AS recall_diff,
  CAST(NULL AS DOUBLE) AS specificity_diff,
  CAST(NULL AS DOUBLE) AS f1_diff,
  CAST(NULL AS DOUBLE) AS brier_diff,
  CAST(NULL AS DOUBLE) AS log_loss_diff
FROM (
  SELECT
    *,
    window_metrics(
      bins,
      CONCAT_WS(',', CAST(latency_0 AS STRING), CAST(latency_1 AS STRING), CAST(latency_2 AS STRING), CAST(latency_3 AS STRING), CAST(latency_4 AS STRING), CAST(latency_5 AS STRING), CAST(latency_6 AS STRING), CAST(latency_7 AS STRING), CAST(latency_8 AS STRING), CAST(latency_9 AS STRING), CAST(latency_10 AS STRING), CAST(latency_11 AS STRING), CAST(latency_12 AS STRING), CAST(latency_13 AS STRING), CAST(latency_14 AS STRING), CAST(latency_15 AS STRING), CAST(latency_16 AS STRING), CAST(latency_17 AS STRING), CAST(latency_18 AS STRING), CAST(latency_19 AS STRING), CAST(latency_20 AS STRING), CAST(latency_21 AS STRING), CAST(latency_22 AS STRING), CAST(latency_23 AS STRING), CAST(latency_24 AS STRING), CAST(latency_25 AS STRING), CAST(latency_26 AS STRING), CAST(latency_27 AS STRING)),
      tp, fp, tn, fn,
      100, 10, '1,2,5,10,20,30,45,60,90,120,180,240,300,450,600,900,1200,1800,2700,3600,5400,7200,10800,14400,21600,43200,86400',
      CAST(NULL AS STRING)
    ) AS h
  FROM live_windows
);

-- The unlabelled view: every valid prediction by window of event_time, labels or not. Throughput, score
-- distribution, drift against the reference scores and the CBPE estimate of performance; final when the
-- window closes.
CREATE TEMPORARY VIEW unlabelled_observations AS
SELECT
  model_version, `country`, `merchant_category`, predicted_fraud_score, predicted_fraud,
  CAST(NULL AS INT) AS actual_fraud,
  CAST(NULL AS BIGINT) AS label_latency_s,
  TRUE AS is_prediction,
  event_time
FROM predictions_checked
WHERE reason IS NULL;

-- Per revision interval of event_time (it divides the window): the cohort view's revisions and final rows read
-- these rows too (views/cohort), so each prediction is aggregated once for all three; the window adds them up.
CREATE TEMPORARY VIEW unlabelled_fine AS
SELECT
  window_time AS fine_time,
  model_version, `country`, `merchant_category`,
  COUNT(*) FILTER (WHERE is_prediction) AS n_predictions,
  COUNT(*) FILTER (WHERE is_prediction AND predicted_fraud = 1) AS predicted_positive,
  COALESCE(SUM(predicted_fraud_score) FILTER (WHERE is_prediction), 0E0) AS score_sum,
  -- CBPE: the confusion matrix expected if the scores are calibrated, with the model's own decisions.
  COALESCE(SUM(predicted_fraud_score) FILTER (WHERE is_prediction AND predicted_fraud = 1), 0E0) AS expected_tp,
  COALESCE(SUM(1.0E0 - predicted_fraud_score) FILTER (WHERE is_prediction AND predicted_fraud = 1), 0E0) AS expected_fp,
  COALESCE(SUM(predicted_fraud_score) FILTER (WHERE is_prediction AND predicted_fraud = 0), 0E0) AS expected_fn,
  COALESCE(SUM(1.0E0 - predicted_fraud_score) FILTER (WHERE is_prediction AND predicted_fraud = 0), 0E0) AS expected_tn,
  COUNT(actual_fraud) AS n_labelled,
  COUNT(*) FILTER (WHERE predicted_fraud = 1 AND actual_fraud = 1) AS tp,
  COUNT(*) FILTER (WHERE predicted_fraud = 1 AND actual_fraud = 0) AS fp,
  COUNT(*) FILTER (WHERE predicted_fraud = 0 AND actual_fraud = 0) AS tn,
  COUNT(*) FILTER (WHERE predicted_fraud = 0 AND actual_fraud = 1) AS fn,
  COALESCE(SUM((predicted_fraud_score - actual_fraud) * (predicted_fraud_score - actual_fraud)), 0E0) AS sq_err_sum,
  -- The probability given to the observed label, clipped to [1e-15, 1 - 1e-15] as scikit-learn does.
  COALESCE(SUM(-LN(GREATEST(LEAST(CASE WHEN actual_fraud = 1 THEN predicted_fraud_score ELSE 1.0E0 - predicted_fraud_score END,
                                  1.0E0 - 1.0E-15), 1.0E-15))) FILTER (WHERE actual_fraud IS NOT NULL), 0E0) AS log_loss_sum,
  -- Label latency buckets, closed above: (edge[i-1], edge[i]]; a label before its prediction counts as 0 s.
  COUNT(*) FILTER (WHERE label_latency_s <= 1) AS latency_0,
  COUNT(*) FILTER (WHERE label_latency_s <= 2 AND label_latency_s > 1) AS latency_1,
  COUNT(*) FILTER (WHERE label_latency_s <= 5 AND label_latency_s > 2) AS latency_2,
  COUNT(*) FILTER (WHERE label_latency_s <= 10 AND label_latency_s > 5) AS latency_3,
  COUNT(*) FILTER (WHERE label_latency_s <= 20 AND label_latency_s > 10) AS latency_4,
  COUNT(*) FILTER (WHERE label_latency_s <= 30 AND label_latency_s > 20) AS latency_5,
  COUNT(*) FILTER (WHERE label_latency_s <= 45 AND label_latency_s > 30) AS latency_6,
  COUNT(*) FILTER (WHERE label_latency_s <= 60 AND label_latency_s > 45) AS latency_7,
  COUNT(*) FILTER (WHERE label_latency_s <= 90 AND label_latency_s > 60) AS latency_8,
  COUNT(*) FILTER (WHERE label_latency_s <= 120 AND label_latency_s > 90) AS latency_9,
  COUNT(*) FILTER (WHERE label_latency_s <= 180 AND label_latency_s > 120) AS latency_10,
  COUNT(*) FILTER (WHERE label_latency_s <= 240 AND label_latency_s > 180) AS latency_11,
  COUNT(*) FILTER (WHERE label_latency_s <= 300 AND label_latency_s > 240) AS latency_12,
  COUNT(*) FILTER (WHERE label_latency_s <= 450 AND label_latency_s > 300) AS latency_13,
  COUNT(*) FILTER (WHERE label_latency_s <= 600 AND label_latency_s > 450) AS latency_14,
  COUNT(*) FILTER (WHERE label_latency_s <= 900 AND label_latency_s > 600) AS latency_15,
  COUNT(*) FILTER (WHERE label_latency_s <= 1200 AND label_latency_s > 900) AS latency_16,
  COUNT(*) FILTER (WHERE label_latency_s <= 1800 AND label_latency_s > 1200) AS latency_17,
  COUNT(*) FILTER (WHERE label_latency_s <= 2700 AND label_latency_s > 1800) AS latency_18,
  COUNT(*) FILTER (WHERE label_latency_s <= 3600 AND label_latency_s > 2700) AS latency_19,
  COUNT(*) FILTER (WHERE label_latency_s <= 5400 AND label_latency_s > 3600) AS latency_20,
  COUNT(*) FILTER (WHERE label_latency_s <= 7200 AND label_latency_s > 5400) AS latency_21,
  COUNT(*) FILTER (WHERE label_latency_s <= 10800 AND label_latency_s > 7200) AS latency_22,
  COUNT(*) FILTER (WHERE label_latency_s <= 14400 AND label_latency_s > 10800) AS latency_23,
  COUNT(*) FILTER (WHERE label_latency_s <= 21600 AND label_latency_s > 14400) AS latency_24,
  COUNT(*) FILTER (WHERE label_latency_s <= 43200 AND label_latency_s > 21600) AS latency_25,
  COUNT(*) FILTER (WHERE label_latency_s <= 86400 AND label_latency_s > 43200) AS latency_26,
  COUNT(*) FILTER (WHERE label_latency_s > 86400) AS latency_27,
  BIN_STATS(predicted_fraud_score, is_prediction, actual_fraud, 100, 10) AS bins
FROM TABLE(TUMBLE(TABLE unlabelled_observations, DESCRIPTOR(event_time), INTERVAL '0 00:01:00.000' DAY TO SECOND(3)))
GROUP BY window_start, window_end, window_time, model_version, `country`, `merchant_category`;

CREATE TEMPORARY VIEW unlabelled_windows AS
SELECT
  window_start,
  window_end,
  window_time,
  CASE WHEN GROUPING(model_version) = 1 THEN '*' ELSE model_version END AS model_version,
  CASE WHEN GROUPING(`country`) = 0 THEN 'country' WHEN GROUPING(`merchant_category`) = 0 THEN 'merchant_category' ELSE '*' END AS segment_key,
  CASE WHEN GROUPING(`country`) = 0 THEN `country` WHEN GROUPING(`merchant_category`) = 0 THEN `merchant_category` ELSE '*' END AS segment_value,
  SUM(n_predictions) AS n_predictions,
  SUM(predicted_positive) AS predicted_positive,
  SUM(score_sum) AS score_sum,
  SUM(expected_tp) AS expected_tp,
  SUM(expected_fp) AS expected_fp,
  SUM(expected_fn) AS expected_fn,
  SUM(expected_tn) AS expected_tn,
  SUM(n_labelled) AS n_labelled,
  SUM(tp) AS tp,
  SUM(fp) AS fp,
  SUM(tn) AS tn,
  SUM(fn) AS fn,
  SUM(sq_err_sum) AS sq_err_sum,
  SUM(log_loss_sum) AS log_loss_sum,
  SUM(latency_0) AS latency_0,
  SUM(latency_1) AS latency_1,
  SUM(latency_2) AS latency_2,
  SUM(latency_3) AS latency_3,
  SUM(latency_4) AS latency_4,
  SUM(latency_5) AS latency_5,
  SUM(latency_6) AS latency_6,
  SUM(latency_7) AS latency_7,
  SUM(latency_8) AS latency_8,
  SUM(latency_9) AS latency_9,
  SUM(latency_10) AS latency_10,
  SUM(latency_11) AS latency_11,
  SUM(latency_12) AS latency_12,
  SUM(latency_13) AS latency_13,
  SUM(latency_14) AS latency_14,
  SUM(latency_15) AS latency_15,
  SUM(latency_16) AS latency_16,
  SUM(latency_17) AS latency_17,
  SUM(latency_18) AS latency_18,
  SUM(latency_19) AS latency_19,
  SUM(latency_20) AS latency_20,
  SUM(latency_21) AS latency_21,
  SUM(latency_22) AS latency_22,
  SUM(latency_23) AS latency_23,
  SUM(latency_24) AS latency_24,
  SUM(latency_25) AS latency_25,
  SUM(latency_26) AS latency_26,
  SUM(latency_27) AS latency_27,
  MERGE_BINS(bins) AS bins
FROM TABLE(TUMBLE(TABLE unlabelled_fine, DESCRIPTOR(fine_time), INTERVAL '0 00:01:00.000' DAY TO SECOND(3)))
GROUP BY window_start, window_end, window_time, GROUPING SETS ((model_version), (), (model_version, `country`), (`country`), (model_version, `merchant_category`), (`merchant_category`));

-- Grain: one row per window x model_version (incl. '*') x segment (incl. '*').
CREATE TEMPORARY VIEW unlabelled_metrics AS
SELECT
  'unlabelled' AS `view`,
  DATE_FORMAT(window_start, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''') AS window_start,
  DATE_FORMAT(window_end, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''') AS window_end,
  model_version,
  segment_key,
  segment_value,
  0 AS revision,
  TRUE AS is_final,
  n_predictions,
  n_labelled,
  CASE WHEN n_predictions > 0 THEN CAST(n_labelled AS DOUBLE) / (n_predictions) END AS label_coverage,
  CAST(n_predictions AS DOUBLE) / 60 AS throughput_per_s,
  CASE WHEN n_predictions > 0 THEN CAST(score_sum AS DOUBLE) / (n_predictions) END AS mean_score,
  CASE WHEN n_predictions > 0 THEN CAST(predicted_positive AS DOUBLE) / (n_predictions) END AS predicted_positive_rate,
  tp,
  fp,
  tn,
  fn,
  CASE WHEN n_labelled > 0 THEN CAST(tp + tn AS DOUBLE) / (n_labelled) END AS accuracy,
  CASE WHEN tp + fp > 0 THEN CAST(tp AS DOUBLE) / (tp + fp) END AS `precision`,
  CASE WHEN tp + fn > 0 THEN CAST(tp AS DOUBLE) / (tp + fn) END AS recall,
  CASE WHEN tn + fp > 0 THEN CAST(tn AS DOUBLE) / (tn + fp) END AS specificity,
  CASE WHEN 2 * tp + fp + fn > 0 THEN CAST(2 * tp AS DOUBLE) / (2 * tp + fp + fn) END AS f1,
  h.accuracy_ci_low,
  h.accuracy_ci_high,
  h.precision_ci_low,
  h.precision_ci_high,
  h.recall_ci_low,
  h.recall_ci_high,
  h.roc_auc,
  h.roc_auc_error_bound,
  h.pr_auc,
  CASE WHEN n_labelled > 0 THEN CAST(sq_err_sum AS DOUBLE) / (n_labelled) END AS brier,
  CASE WHEN n_labelled > 0 THEN CAST(log_loss_sum AS DOUBLE) / (n_labelled) END AS log_loss,
  h.ece,
  h.mce,
  h.reliability,
  h.label_latency_p50_s,
  h.label_latency_p95_s,
  h.psi,
  h.ks_statistic,
  h.ks_pvalue,
  CASE WHEN expected_tp + expected_fp + expected_fn + expected_tn > 0 THEN CAST(expected_tp + expected_tn AS DOUBLE) / (expected_tp + expected_fp + expected_fn + expected_tn) END AS estimated_accuracy,
  CASE WHEN expected_tp + expected_fp > 0 THEN CAST(expected_tp AS DOUBLE) / (expected_tp + expected_fp) END AS estimated_precision,
  CASE WHEN expected_tp + expected_fn > 0 THEN CAST(expected_tp AS DOUBLE) / (expected_tp + expected_fn) END AS estimated_recall,
  CAST(NULL AS STRING) AS compared_to,
  CAST(NULL AS BIGINT) AS mcnemar_b,
  CAST(NULL AS BIGINT) AS mcnemar_c,
  CAST(NULL AS DOUBLE) AS mcnemar_pvalue,
  CAST(NULL AS BOOLEAN) AS significant,
  CAST(NULL AS DOUBLE) AS accuracy_diff,
  CAST(NULL AS DOUBLE) AS precision_diff,
  CAST(NULL AS DOUBLE) AS recall_diff,
  CAST(NULL AS DOUBLE) AS specificity_diff,
  CAST(NULL AS DOUBLE) AS f1_diff,
  CAST(NULL AS DOUBLE) AS brier_diff,
  CAST(NULL AS DOUBLE) AS log_loss_diff
FROM (
  SELECT
    *,
    window_metrics(
      bins,
      CONCAT_WS(',', CAST(latency_0 AS STRING), CAST(latency_1 AS STRING), CAST(latency_2 AS STRING), CAST(latency_3 AS STRING), CAST(latency_4 AS STRING), CAST(latency_5 AS STRING), CAST(latency_6 AS STRING), CAST(latency_7 AS STRING), CAST(latency_8 AS STRING), CAST(latency_9 AS STRING), CAST(latency_10 AS STRING), CAST(latency_11 AS STRING), CAST(latency_12 AS STRING), CAST(latency_13 AS STRING), CAST(latency_14 AS STRING), CAST(latency_15 AS STRING), CAST(latency_16 AS STRING), CAST(latency_17 AS STRING), CAST(latency_18 AS STRING), CAST(latency_19 AS STRING), CAST(latency_20 AS STRING), CAST(latency_21 AS STRING), CAST(latency_22 AS STRING), CAST(latency_23 AS STRING), CAST(latency_24 AS STRING), CAST(latency_25 AS STRING), CAST(latency_26 AS STRING), CAST(latency_27 AS STRING)),
      tp, fp, tn, fn,
      100, 10, '1,2,5,10,20,30,45,60,90,120,180,240,300,450,600,900,1200,1800,2700,3600,5400,7200,10800,14400,21600,43200,86400',
      CAST(NULL AS STRING)
    ) AS h
  FROM unlabelled_windows
);

-- The cohort view: the predictions made in each window of event_time, and how right they were as far as
-- their labels are known. A prediction whose label never came within the horizon is unlabelled, never a
-- negative (label_coverage = n_labelled / n_predictions).
--
-- Provisional revisions: the labels of a cohort are counted per revision_interval of label arrival (plus
-- its predictions, arriving at their event time), and an OVER window adds up everything the cohort has
-- received so far. One row per cohort and interval that received anything; `revision` numbers the intervals
-- since the cohort's start, so it grows with every update.
--
-- The counts per interval are the other views' fine rows: the predictions' from the unlabelled view (per interval
-- of event_time, within their cohort's window), the labels' from the live view (per interval of label_time and
-- cohort), there counted as predictions too, here as labels only (a cohort counted the prediction on its arrival).
CREATE TEMPORARY VIEW revision_fine AS
SELECT
  fine_time,
  TIMESTAMPADD(SECOND, CAST(FLOOR(TIMESTAMPDIFF(SECOND, TIMESTAMP '1970-01-01 00:00:00', fine_time) / 60.0E0) AS INT) * 60, TIMESTAMP '1970-01-01 00:00:00') AS cohort_start,
  model_version, `country`, `merchant_category`,
  n_predictions,
  predicted_positive,
  score_sum,
  expected_tp,
  expected_fp,
  expected_fn,
  expected_tn,
  n_labelled,
  tp,
  fp,
  tn,
  fn,
  sq_err_sum,
  log_loss_sum,
  latency_0,
  latency_1,
  latency_2,
  latency_3,
  latency_4,
  latency_5,
  latency_6,
  latency_7,
  latency_8,
  latency_9,
  latency_10,
  latency_11,
  latency_12,
  latency_13,
  latency_14,
  latency_15,
  latency_16,
  latency_17,
  latency_18,
  latency_19,
  latency_20,
  latency_21,
  latency_22,
  latency_23,
  latency_24,
  latency_25,
  latency_26,
  latency_27,
  bins
FROM unlabelled_fine
UNION ALL
SELECT
  fine_time,
  cohort_start,
  model_version, `country`, `merchant_category`,
  CAST(0 AS BIGINT) AS n_predictions,
  CAST(0 AS BIGINT) AS predicted_positive,
  0E0 AS score_sum,
  0E0 AS expected_tp,
  0E0 AS expected_fp,
  0E0 AS expected_fn,
  0E0 AS expected_tn,
  n_labelled AS n_labelled,
  tp AS tp,
  fp AS fp,
  tn AS tn,
  fn AS fn,
  sq_err_sum AS sq_err_sum,
  log_loss_sum AS log_loss_sum,
  latency_0 AS latency_0,
  latency_1 AS latency_1,
  latency_2 AS latency_2,
  latency_3 AS latency_3,
  latency_4 AS latency_4,
  latency_5 AS latency_5,
  latency_6 AS latency_6,
  latency_7 AS latency_7,
  latency_8 AS latency_8,
  latency_9 AS latency_9,
  latency_10 AS latency_10,
  latency_11 AS latency_11,
  latency_12 AS latency_12,
  latency_13 AS latency_13,
  latency_14 AS latency_14,
  latency_15 AS latency_15,
  latency_16 AS latency_16,
  latency_17 AS latency_17,
  latency_18 AS latency_18,
  latency_19 AS latency_19,
  latency_20 AS latency_20,
  latency_21 AS latency_21,
  latency_22 AS latency_22,
  latency_23 AS latency_23,
  latency_24 AS latency_24,
  latency_25 AS latency_25,
  latency_26 AS latency_26,
  latency_27 AS latency_27,
  LABELLED_BINS(bins) AS bins
FROM live_fine;

CREATE TEMPORARY VIEW revision_windows AS
SELECT
  window_start,
  window_end,
  window_time,
  cohort_start,
  CASE WHEN GROUPING(model_version) = 1 THEN '*' ELSE model_version END AS model_version,
  CASE WHEN GROUPING(`country`) = 0 THEN 'country' WHEN GROUPING(`merchant_category`) = 0 THEN 'merchant_category' ELSE '*' END AS segment_key,
  CASE WHEN GROUPING(`country`) = 0 THEN `country` WHEN GROUPING(`merchant_category`) = 0 THEN `merchant_category` ELSE '*' END AS segment_value,
  SUM(n_predictions) AS n_predictions,
  SUM(predicted_positive) AS predicted_positive,
  SUM(score_sum) AS score_sum,
  SUM(expected_tp) AS expected_tp,
  SUM(expected_fp) AS expected_fp,
  SUM(expected_fn) AS expected_fn,
  SUM(expected_tn) AS expected_tn,
  SUM(n_labelled) AS n_labelled,
  SUM(tp) AS tp,
  SUM(fp) AS fp,
  SUM(tn) AS tn,
  SUM(fn) AS fn,
  SUM(sq_err_sum) AS sq_err_sum,
  SUM(log_loss_sum) AS log_loss_sum,
  SUM(latency_0) AS latency_0,
  SUM(latency_1) AS latency_1,
  SUM(latency_2) AS latency_2,
  SUM(latency_3) AS latency_3,
  SUM(latency_4) AS latency_4,
  SUM(latency_5) AS latency_5,
  SUM(latency_6) AS latency_6,
  SUM(latency_7) AS latency_7,
  SUM(latency_8) AS latency_8,
  SUM(latency_9) AS latency_9,
  SUM(latency_10) AS latency_10,
  SUM(latency_11) AS latency_11,
  SUM(latency_12) AS latency_12,
  SUM(latency_13) AS latency_13,
  SUM(latency_14) AS latency_14,
  SUM(latency_15) AS latency_15,
  SUM(latency_16) AS latency_16,
  SUM(latency_17) AS latency_17,
  SUM(latency_18) AS latency_18,
  SUM(latency_19) AS latency_19,
  SUM(latency_20) AS latency_20,
  SUM(latency_21) AS latency_21,
  SUM(latency_22) AS latency_22,
  SUM(latency_23) AS latency_23,
  SUM(latency_24) AS latency_24,
  SUM(latency_25) AS latency_25,
  SUM(latency_26) AS latency_26,
  SUM(latency_27) AS latency_27,
  MERGE_BINS(bins) AS bins
FROM TABLE(TUMBLE(TABLE revision_fine, DESCRIPTOR(fine_time), INTERVAL '0 00:01:00.000' DAY TO SECOND(3)))
GROUP BY window_start, window_end, window_time, cohort_start, GROUPING SETS ((model_version), (), (model_version, `country`), (`country`), (model_version, `merchant_category`), (`merchant_category`));

-- Running totals per cohort; the range covers a cohort's whole life (skew before it, horizon after it).
CREATE TEMPORARY VIEW cohort_revisions AS
SELECT
  cohort_start AS window_start,
  cohort_start + INTERVAL '0 00:01:00.000' DAY TO SECOND(3) AS window_end,
  model_version,
  segment_key,
  segment_value,
  CAST(CEIL(TIMESTAMPDIFF(SECOND, cohort_start, window_end) / 60.0E0) AS INT) AS revision,
  SUM(n_predictions) OVER cohort AS n_predictions,
  SUM(predicted_positive) OVER cohort AS predicted_positive,
  SUM(score_sum) OVER cohort AS score_sum,
  SUM(expected_tp) OVER cohort AS expected_tp,
  SUM(expected_fp) OVER cohort AS expected_fp,
  SUM(expected_fn) OVER cohort AS expected_fn,
  SUM(expected_tn) OVER cohort AS expected_tn,
  SUM(n_labelled) OVER cohort AS n_labelled,
  SUM(tp) OVER cohort AS tp,
  SUM(fp) OVER cohort AS fp,
  SUM(tn) OVER cohort AS tn,
  SUM(fn) OVER cohort AS fn,
  SUM(sq_err_sum) OVER cohort AS sq_err_sum,
  SUM(log_loss_sum) OVER cohort AS log_loss_sum,
  SUM(latency_0) OVER cohort AS latency_0,
  SUM(latency_1) OVER cohort AS latency_1,
  SUM(latency_2) OVER cohort AS latency_2,
  SUM(latency_3) OVER cohort AS latency_3,
  SUM(latency_4) OVER cohort AS latency_4,
  SUM(latency_5) OVER cohort AS latency_5,
  SUM(latency_6) OVER cohort AS latency_6,
  SUM(latency_7) OVER cohort AS latency_7,
  SUM(latency_8) OVER cohort AS latency_8,
  SUM(latency_9) OVER cohort AS latency_9,
  SUM(latency_10) OVER cohort AS latency_10,
  SUM(latency_11) OVER cohort AS latency_11,
  SUM(latency_12) OVER cohort AS latency_12,
  SUM(latency_13) OVER cohort AS latency_13,
  SUM(latency_14) OVER cohort AS latency_14,
  SUM(latency_15) OVER cohort AS latency_15,
  SUM(latency_16) OVER cohort AS latency_16,
  SUM(latency_17) OVER cohort AS latency_17,
  SUM(latency_18) OVER cohort AS latency_18,
  SUM(latency_19) OVER cohort AS latency_19,
  SUM(latency_20) OVER cohort AS latency_20,
  SUM(latency_21) OVER cohort AS latency_21,
  SUM(latency_22) OVER cohort AS latency_22,
  SUM(latency_23) OVER cohort AS latency_23,
  SUM(latency_24) OVER cohort AS latency_24,
  SUM(latency_25) OVER cohort AS latency_25,
  SUM(latency_26) OVER cohort AS latency_26,
  SUM(latency_27) OVER cohort AS latency_27,
  MERGE_BINS(bins) OVER cohort AS bins  -- one entry per bin, however many intervals (functions/metrics)
FROM revision_windows
WINDOW cohort AS (
  PARTITION BY cohort_start, model_version, segment_key, segment_value
  ORDER BY window_time
  RANGE BETWEEN INTERVAL '0 06:03:10.000' DAY TO SECOND(3) PRECEDING AND CURRENT ROW
);

CREATE TEMPORARY VIEW cohort_revision_metrics AS
SELECT
  'cohort' AS `view`,
  DATE_FORMAT(window_start, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''') AS window_start,
  DATE_FORMAT(window_end, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''') AS window_end,
  model_version,
  segment_key,
  segment_value,
  revision AS revision,
  FALSE AS is_final,
  n_predictions,
  n_labelled,
  CASE WHEN n_predictions > 0 THEN CAST(n_labelled AS DOUBLE) / (n_predictions) END AS label_coverage,
  CAST(n_predictions AS DOUBLE) / 60 AS throughput_per_s,
  CASE WHEN n_predictions > 0 THEN CAST(score_sum AS DOUBLE) / (n_predictions) END AS mean_score,
  CASE WHEN n_predictions > 0 THEN CAST(predicted_positive AS DOUBLE) / (n_predictions) END AS predicted_positive_rate,
  tp,
  fp,
  tn,
  fn,
  CASE WHEN n_labelled > 0 THEN CAST(tp + tn AS DOUBLE) / (n_labelled) END AS accuracy,
  CASE WHEN tp + fp > 0 THEN CAST(tp AS DOUBLE) / (tp + fp) END AS `precision`,
  CASE WHEN tp + fn > 0 THEN CAST(tp AS DOUBLE) / (tp + fn) END AS recall,
  CASE WHEN tn + fp > 0 THEN CAST(tn AS DOUBLE) / (tn + fp) END AS specificity,
  CASE WHEN 2 * tp + fp + fn > 0 THEN CAST(2 * tp AS DOUBLE) / (2 * tp + fp + fn) END AS f1,
  h.accuracy_ci_low,
  h.accuracy_ci_high,
  h.precision_ci_low,
  h.precision_ci_high,
  h.recall_ci_low,
  h.recall_ci_high,
  h.roc_auc,
  h.roc_auc_error_bound,
  h.pr_auc,
  CASE WHEN n_labelled > 0 THEN CAST(sq_err_sum AS DOUBLE) / (n_labelled) END AS brier,
  CASE WHEN n_labelled > 0 THEN CAST(log_loss_sum AS DOUBLE) / (n_labelled) END AS log_loss,
  h.ece,
  h.mce,
  h.reliability,
  h.label_latency_p50_s,
  h.label_latency_p95_s,
  h.psi,
  h.ks_statistic,
  h.ks_pvalue,
  CASE WHEN expected_tp + expected_fp + expected_fn + expected_tn > 0 THEN CAST(expected_tp + expected_tn AS DOUBLE) / (expected_tp + expected_fp + expected_fn + expected_tn) END AS estimated_accuracy,
  CASE WHEN expected_tp + expected_fp > 0 THEN CAST(expected_tp AS DOUBLE) / (expected_tp + expected_fp) END AS estimated_precision,
  CASE WHEN expected_tp + expected_fn > 0 THEN CAST(expected_tp AS DOUBLE) / (expected_tp + expected_fn) END AS estimated_recall,
  CAST(NULL AS STRING) AS compared_to,
  CAST(NULL AS BIGINT) AS mcnemar_b,
  CAST(NULL AS BIGINT) AS mcnemar_c,
  CAST(NULL AS DOUBLE) AS mcnemar_pvalue,
  CAST(NULL AS BOOLEAN) AS significant,
  CAST(NULL AS DOUBLE) AS accuracy_diff,
  CAST(NULL AS DOUBLE) AS precision_diff,
  CAST(NULL AS DOUBLE) AS recall_diff,
  CAST(NULL AS DOUBLE) AS specificity_diff,
  CAST(NULL AS DOUBLE) AS f1_diff,
  CAST(NULL AS DOUBLE) AS brier_diff,
  CAST(NULL AS DOUBLE) AS log_loss_diff
FROM (
  SELECT
    *,
    window_metrics(
      bins,
      CONCAT_WS(',', CAST(latency_0 AS STRING), CAST(latency_1 AS STRING), CAST(latency_2 AS STRING), CAST(latency_3 AS STRING), CAST(latency_4 AS STRING), CAST(latency_5 AS STRING), CAST(latency_6 AS STRING), CAST(latency_7 AS STRING), CAST(latency_8 AS STRING), CAST(latency_9 AS STRING), CAST(latency_10 AS STRING), CAST(latency_11 AS STRING), CAST(latency_12 AS STRING), CAST(latency_13 AS STRING), CAST(latency_14 AS STRING), CAST(latency_15 AS STRING), CAST(latency_16 AS STRING), CAST(latency_17 AS STRING), CAST(latency_18 AS STRING), CAST(latency_19 AS STRING), CAST(latency_20 AS STRING), CAST(latency_21 AS STRING), CAST(latency_22 AS STRING), CAST(latency_23 AS STRING), CAST(latency_24 AS STRING), CAST(latency_25 AS STRING), CAST(latency_26 AS STRING), CAST(latency_27 AS STRING)),
      tp, fp, tn, fn,
      100, 10, '1,2,5,10,20,30,45,60,90,120,180,240,300,450,600,900,1200,1800,2700,3600,5400,7200,10800,14400,21600,43200,86400',
      CAST(NULL AS STRING)
    ) AS h
  FROM cohort_revisions
);

-- The final revision: every prediction of the window with the labels the join found within the horizon,
-- windowed by event_time behind the join's watermark, so it fires once the horizon has passed. Its
-- revision number is above any provisional one.
CREATE TEMPORARY VIEW cohort_labelled_observations AS
SELECT
  model_version, `country`, `merchant_category`, predicted_fraud_score, predicted_fraud, actual_fraud, label_latency_s,
  FALSE AS is_prediction,
  event_time
FROM labelled_predictions;

-- A cohort window's predictions are the unlabelled view's (same window on event_time, same grain): their fine rows
-- are shared, and only the labelled rows are aggregated here.
CREATE TEMPORARY VIEW cohort_fine AS
SELECT * FROM unlabelled_fine
UNION ALL
SELECT
  window_time AS fine_time,
  model_version, `country`, `merchant_category`,
  COUNT(*) FILTER (WHERE is_prediction) AS n_predictions,
  COUNT(*) FILTER (WHERE is_prediction AND predicted_fraud = 1) AS predicted_positive,
  COALESCE(SUM(predicted_fraud_score) FILTER (WHERE is_prediction), 0E0) AS score_sum,
  -- CBPE: the confusion matrix expected if the scores are calibrated, with the model's own decisions.
  COALESCE(SUM(predicted_fraud_score) FILTER (WHERE is_prediction AND predicted_fraud = 1), 0E0) AS expected_tp,
  COALESCE(SUM(1.0E0 - predicted_fraud_score) FILTER (WHERE is_prediction AND predicted_fraud = 1), 0E0) AS expected_fp,
  COALESCE(SUM(predicted_fraud_score) FILTER (WHERE is_prediction AND predicted_fraud = 0), 0E0) AS expected_fn,
  COALESCE(SUM(1.0E0 - predicted_fraud_score) FILTER (WHERE is_prediction AND predicted_fraud = 0), 0E0) AS expected_tn,
  COUNT(actual_fraud) AS n_labelled,
  COUNT(*) FILTER (WHERE predicted_fraud = 1 AND actual_fraud = 1) AS tp,
  COUNT(*) FILTER (WHERE predicted_fraud = 1 AND actual_fraud = 0) AS fp,
  COUNT(*) FILTER (WHERE predicted_fraud = 0 AND actual_fraud = 0) AS tn,
  COUNT(*) FILTER (WHERE predicted_fraud = 0 AND actual_fraud = 1) AS fn,
  COALESCE(SUM((predicted_fraud_score - actual_fraud) * (predicted_fraud_score - actual_fraud)), 0E0) AS sq_err_sum,
  -- The probability given to the observed label, clipped to [1e-15, 1 - 1e-15] as scikit-learn does.
  COALESCE(SUM(-LN(GREATEST(LEAST(CASE WHEN actual_fraud = 1 THEN predicted_fraud_score ELSE 1.0E0 - predicted_fraud_score END,
                                  1.0E0 - 1.0E-15), 1.0E-15))) FILTER (WHERE actual_fraud IS NOT NULL), 0E0) AS log_loss_sum,
  -- Label latency buckets, closed above: (edge[i-1], edge[i]]; a label before its prediction counts as 0 s.
  COUNT(*) FILTER (WHERE label_latency_s <= 1) AS latency_0,
  COUNT(*) FILTER (WHERE label_latency_s <= 2 AND label_latency_s > 1) AS latency_1,
  COUNT(*) FILTER (WHERE label_latency_s <= 5 AND label_latency_s > 2) AS latency_2,
  COUNT(*) FILTER (WHERE label_latency_s <= 10 AND label_latency_s > 5) AS latency_3,
  COUNT(*) FILTER (WHERE label_latency_s <= 20 AND label_latency_s > 10) AS latency_4,
  COUNT(*) FILTER (WHERE label_latency_s <= 30 AND label_latency_s > 20) AS latency_5,
  COUNT(*) FILTER (WHERE label_latency_s <= 45 AND label_latency_s > 30) AS latency_6,
  COUNT(*) FILTER (WHERE label_latency_s <= 60 AND label_latency_s > 45) AS latency_7,
  COUNT(*) FILTER (WHERE label_latency_s <= 90 AND label_latency_s > 60) AS latency_8,
  COUNT(*) FILTER (WHERE label_latency_s <= 120 AND label_latency_s > 90) AS latency_9,
  COUNT(*) FILTER (WHERE label_latency_s <= 180 AND label_latency_s > 120) AS latency_10,
  COUNT(*) FILTER (WHERE label_latency_s <= 240 AND label_latency_s > 180) AS latency_11,
  COUNT(*) FILTER (WHERE label_latency_s <= 300 AND label_latency_s > 240) AS latency_12,
  COUNT(*) FILTER (WHERE label_latency_s <= 450 AND label_latency_s > 300) AS latency_13,
  COUNT(*) FILTER (WHERE label_latency_s <= 600 AND label_latency_s > 450) AS latency_14,
  COUNT(*) FILTER (WHERE label_latency_s <= 900 AND label_latency_s > 600) AS latency_15,
  COUNT(*) FILTER (WHERE label_latency_s <= 1200 AND label_latency_s > 900) AS latency_16,
  COUNT(*) FILTER (WHERE label_latency_s <= 1800 AND label_latency_s > 1200) AS latency_17,
  COUNT(*) FILTER (WHERE label_latency_s <= 2700 AND label_latency_s > 1800) AS latency_18,
  COUNT(*) FILTER (WHERE label_latency_s <= 3600 AND label_latency_s > 2700) AS latency_19,
  COUNT(*) FILTER (WHERE label_latency_s <= 5400 AND label_latency_s > 3600) AS latency_20,
  COUNT(*) FILTER (WHERE label_latency_s <= 7200 AND label_latency_s > 5400) AS latency_21,
  COUNT(*) FILTER (WHERE label_latency_s <= 10800 AND label_latency_s > 7200) AS latency_22,
  COUNT(*) FILTER (WHERE label_latency_s <= 14400 AND label_latency_s > 10800) AS latency_23,
  COUNT(*) FILTER (WHERE label_latency_s <= 21600 AND label_latency_s > 14400) AS latency_24,
  COUNT(*) FILTER (WHERE label_latency_s <= 43200 AND label_latency_s > 21600) AS latency_25,
  COUNT(*) FILTER (WHERE label_latency_s <= 86400 AND label_latency_s > 43200) AS latency_26,
  COUNT(*) FILTER (WHERE label_latency_s > 86400) AS latency_27,
  BIN_STATS(predicted_fraud_score, is_prediction, actual_fraud, 100, 10) AS bins
FROM TABLE(TUMBLE(TABLE cohort_labelled_observations, DESCRIPTOR(event_time), INTERVAL '0 00:01:00.000' DAY TO SECOND(3)))
GROUP BY window_start, window_end, window_time, model_version, `country`, `merchant_category`;

CREATE TEMPORARY VIEW cohort_windows AS
SELECT
  window_start,
  window_end,
  window_time,
  CASE WHEN GROUPING(model_version) = 1 THEN '*' ELSE model_version END AS model_version,
  CASE WHEN GROUPING(`country`) = 0 THEN 'country' WHEN GROUPING(`merchant_category`) = 0 THEN 'merchant_category' ELSE '*' END AS segment_key,
  CASE WHEN GROUPING(`country`) = 0 THEN `country` WHEN GROUPING(`merchant_category`) = 0 THEN `merchant_category` ELSE '*' END AS segment_value,
  SUM(n_predictions) AS n_predictions,
  SUM(predicted_positive) AS predicted_positive,
  SUM(score_sum) AS score_sum,
  SUM(expected_tp) AS expected_tp,
  SUM(expected_fp) AS expected_fp,
  SUM(expected_fn) AS expected_fn,
  SUM(expected_tn) AS expected_tn,
  SUM(n_labelled) AS n_labelled,
  SUM(tp) AS tp,
  SUM(fp) AS fp,
  SUM(tn) AS tn,
  SUM(fn) AS fn,
  SUM(sq_err_sum) AS sq_err_sum,
  SUM(log_loss_sum) AS log_loss_sum,
  SUM(latency_0) AS latency_0,
  SUM(latency_1) AS latency_1,
  SUM(latency_2) AS latency_2,
  SUM(latency_3) AS latency_3,
  SUM(latency_4) AS latency_4,
  SUM(latency_5) AS latency_5,
  SUM(latency_6) AS latency_6,
  SUM(latency_7) AS latency_7,
  SUM(latency_8) AS latency_8,
  SUM(latency_9) AS latency_9,
  SUM(latency_10) AS latency_10,
  SUM(latency_11) AS latency_11,
  SUM(latency_12) AS latency_12,
  SUM(latency_13) AS latency_13,
  SUM(latency_14) AS latency_14,
  SUM(latency_15) AS latency_15,
  SUM(latency_16) AS latency_16,
  SUM(latency_17) AS latency_17,
  SUM(latency_18) AS latency_18,
  SUM(latency_19) AS latency_19,
  SUM(latency_20) AS latency_20,
  SUM(latency_21) AS latency_21,
  SUM(latency_22) AS latency_22,
  SUM(latency_23) AS latency_23,
  SUM(latency_24) AS latency_24,
  SUM(latency_25) AS latency_25,
  SUM(latency_26) AS latency_26,
  SUM(latency_27) AS latency_27,
  MERGE_BINS(bins) AS bins
FROM TABLE(TUMBLE(TABLE cohort_fine, DESCRIPTOR(fine_time), INTERVAL '0 00:01:00.000' DAY TO SECOND(3)))
GROUP BY window_start, window_end, window_time, GROUPING SETS ((model_version), (), (model_version, `country`), (`country`), (model_version, `merchant_category`), (`merchant_category`));

-- Grain: one row per window x model_version (incl. '*') x segment (incl. '*') and revision.
CREATE TEMPORARY VIEW cohort_final_metrics AS
SELECT
  'cohort' AS `view`,
  DATE_FORMAT(window_start, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''') AS window_start,
  DATE_FORMAT(window_end, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''') AS window_end,
  model_version,
  segment_key,
  segment_value,
  365 AS revision,
  TRUE AS is_final,
  n_predictions,
  n_labelled,
  CASE WHEN n_predictions > 0 THEN CAST(n_labelled AS DOUBLE) / (n_predictions) END AS label_coverage,
  CAST(n_predictions AS DOUBLE) / 60 AS throughput_per_s,
  CASE WHEN n_predictions > 0 THEN CAST(score_sum AS DOUBLE) / (n_predictions) END AS mean_score,
  CASE WHEN n_predictions > 0 THEN CAST(predicted_positive AS DOUBLE) / (n_predictions) END AS predicted_positive_rate,
  tp,
  fp,
  tn,
  fn,
  CASE WHEN n_labelled > 0 THEN CAST(tp + tn AS DOUBLE) / (n_labelled) END AS accuracy,
  CASE WHEN tp + fp > 0 THEN CAST(tp AS DOUBLE) / (tp + fp) END AS `precision`,
  CASE WHEN tp + fn > 0 THEN CAST(tp AS DOUBLE) / (tp + fn) END AS recall,
  CASE WHEN tn + fp > 0 THEN CAST(tn AS DOUBLE) / (tn + fp) END AS specificity,
  CASE WHEN 2 * tp + fp + fn > 0 THEN CAST(2 * tp AS DOUBLE) / (2 * tp + fp + fn) END AS f1,
  h.accuracy_ci_low,
  h.accuracy_ci_high,
  h.precision_ci_low,
  h.precision_ci_high,
  h.recall_ci_low,
  h.recall_ci_high,
  h.roc_auc,
  h.roc_auc_error_bound,
  h.pr_auc,
  CASE WHEN n_labelled > 0 THEN CAST(sq_err_sum AS DOUBLE) / (n_labelled) END AS brier,
  CASE WHEN n_labelled > 0 THEN CAST(log_loss_sum AS DOUBLE) / (n_labelled) END AS log_loss,
  h.ece,
  h.mce,
  h.reliability,
  h.label_latency_p50_s,
  h.label_latency_p95_s,
  h.psi,
  h.ks_statistic,
  h.ks_pvalue,
  CASE WHEN expected_tp + expected_fp + expected_fn + expected_tn > 0 THEN CAST(expected_tp + expected_tn AS DOUBLE) / (expected_tp + expected_fp + expected_fn + expected_tn) END AS estimated_accuracy,
  CASE WHEN expected_tp + expected_fp > 0 THEN CAST(expected_tp AS DOUBLE) / (expected_tp + expected_fp) END AS estimated_precision,
  CASE WHEN expected_tp + expected_fn > 0 THEN CAST(expected_tp AS DOUBLE) / (expected_tp + expected_fn) END AS estimated_recall,
  CAST(NULL AS STRING) AS compared_to,
  CAST(NULL AS BIGINT) AS mcnemar_b,
  CAST(NULL AS BIGINT) AS mcnemar_c,
  CAST(NULL AS DOUBLE) AS mcnemar_pvalue,
  CAST(NULL AS BOOLEAN) AS significant,
  CAST(NULL AS DOUBLE) AS accuracy_diff,
  CAST(NULL AS DOUBLE) AS precision_diff,
  CAST(NULL AS DOUBLE) AS recall_diff,
  CAST(NULL AS DOUBLE) AS specificity_diff,
  CAST(NULL AS DOUBLE) AS f1_diff,
  CAST(NULL AS DOUBLE) AS brier_diff,
  CAST(NULL AS DOUBLE) AS log_loss_diff
FROM (
  SELECT
    *,
    window_metrics(
      bins,
      CONCAT_WS(',', CAST(latency_0 AS STRING), CAST(latency_1 AS STRING), CAST(latency_2 AS STRING), CAST(latency_3 AS STRING), CAST(latency_4 AS STRING), CAST(latency_5 AS STRING), CAST(latency_6 AS STRING), CAST(latency_7 AS STRING), CAST(latency_8 AS STRING), CAST(latency_9 AS STRING), CAST(latency_10 AS STRING), CAST(latency_11 AS STRING), CAST(latency_12 AS STRING), CAST(latency_13 AS STRING), CAST(latency_14 AS STRING), CAST(latency_15 AS STRING), CAST(latency_16 AS STRING), CAST(latency_17 AS STRING), CAST(latency_18 AS STRING), CAST(latency_19 AS STRING), CAST(latency_20 AS STRING), CAST(latency_21 AS STRING), CAST(latency_22 AS STRING), CAST(latency_23 AS STRING), CAST(latency_24 AS STRING), CAST(latency_25 AS STRING), CAST(latency_26 AS STRING), CAST(latency_27 AS STRING)),
      tp, fp, tn, fn,
      100, 10, '1,2,5,10,20,30,45,60,90,120,180,240,300,450,600,900,1200,1800,2700,3600,5400,7200,10800,14400,21600,43200,86400',
      CAST(NULL AS STRING)
    ) AS h
  FROM cohort_windows
);

-- Champion vs challenger: both versions' predictions of the same transaction, paired through their shared
-- label, per configured comparison: the two joined rows of one transaction and label_time (one per version, as
-- repeats are dead letters) grouped in the window of that label_time. A window aggregation keeps one partial
-- pair per transaction until the window closes, where a self-join kept every joined row, and found its partner, in
-- state of its own.
CREATE TEMPORARY VIEW paired_labels AS
SELECT *
FROM (
  SELECT
    window_time AS label_time,
    'v2' AS model_version,
    'v1' AS compared_to,
    MAX(`country`) FILTER (WHERE model_version = 'v1') AS `country`,
    MAX(`merchant_category`) FILTER (WHERE model_version = 'v1') AS `merchant_category`,
    MAX(actual_fraud) AS actual_fraud,
    MAX(predicted_fraud) FILTER (WHERE model_version = 'v1') AS champion_predicted,
    MAX(predicted_fraud) FILTER (WHERE model_version = 'v2') AS challenger_predicted,
    MAX(predicted_fraud_score) FILTER (WHERE model_version = 'v1') AS champion_score,
    MAX(predicted_fraud_score) FILTER (WHERE model_version = 'v2') AS challenger_score
  FROM TABLE(TUMBLE(TABLE live_input, DESCRIPTOR(label_time), INTERVAL '0 00:01:00.000' DAY TO SECOND(3)))
  WHERE model_version IN ('v1', 'v2')
  GROUP BY window_start, window_end, window_time, transaction_id, label_time
)
WHERE champion_predicted IS NOT NULL AND challenger_predicted IS NOT NULL;

CREATE TEMPORARY VIEW comparison_windows AS
SELECT
  window_start,
  window_end,
  model_version,
  compared_to,
  CASE WHEN GROUPING(`country`) = 0 THEN 'country' WHEN GROUPING(`merchant_category`) = 0 THEN 'merchant_category' ELSE '*' END AS segment_key,
  CASE WHEN GROUPING(`country`) = 0 THEN `country` WHEN GROUPING(`merchant_category`) = 0 THEN `merchant_category` ELSE '*' END AS segment_value,
  COUNT(*) AS n_paired,
  COUNT(*) FILTER (WHERE champion_predicted = 1 AND actual_fraud = 1) AS champion_tp,
  COUNT(*) FILTER (WHERE champion_predicted = 1 AND actual_fraud = 0) AS champion_fp,
  COUNT(*) FILTER (WHERE champion_predicted = 0 AND actual_fraud = 0) AS champion_tn,
  COUNT(*) FILTER (WHERE champion_predicted = 0 AND actual_fraud = 1) AS champion_fn,
  SUM((champion_score - actual_fraud) * (champion_score - actual_fraud)) AS champion_sq_err_sum,
  SUM(-LN(GREATEST(LEAST(CASE WHEN actual_fraud = 1 THEN champion_score ELSE 1.0E0 - champion_score END,
                         1.0E0 - 1.0E-15), 1.0E-15))) AS champion_log_loss_sum,
  COUNT(*) FILTER (WHERE challenger_predicted = 1 AND actual_fraud = 1) AS challenger_tp,
  COUNT(*) FILTER (WHERE challenger_predicted = 1 AND actual_fraud = 0) AS challenger_fp,
  COUNT(*) FILTER (WHERE challenger_predicted = 0 AND actual_fraud = 0) AS challenger_tn,
  COUNT(*) FILTER (WHERE challenger_predicted = 0 AND actual_fraud = 1) AS challenger_fn,
  SUM((challenger_score - actual_fraud) * (challenger_score - actual_fraud)) AS challenger_sq_err_sum,
  SUM(-LN(GREATEST(LEAST(CASE WHEN actual_fraud = 1 THEN challenger_score ELSE 1.0E0 - challenger_score END,
                         1.0E0 - 1.0E-15), 1.0E-15))) AS challenger_log_loss_sum,
  COUNT(*) FILTER (WHERE champion_predicted = actual_fraud AND challenger_predicted <> actual_fraud) AS mcnemar_b,
  COUNT(*) FILTER (WHERE champion_predicted <> actual_fraud AND challenger_predicted = actual_fraud) AS mcnemar_c
FROM TABLE(TUMBLE(TABLE paired_labels, DESCRIPTOR(label_time), INTERVAL '0 00:01:00.000' DAY TO SECOND(3)))
GROUP BY window_start, window_end, model_version, compared_to, GROUPING SETS ((), (`country`), (`merchant_category`));

-- Grain: one row per window x comparison x segment (incl. '*'), columns as in sinks/metrics.
CREATE TEMPORARY VIEW comparison_metrics AS
SELECT
  'comparison' AS `view`,
  DATE_FORMAT(window_start, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''') AS window_start,
  DATE_FORMAT(window_end, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''') AS window_end,
  model_version,
  segment_key,
  segment_value,
  0 AS revision,
  TRUE AS is_final,
  n_paired AS n_predictions,
  n_paired AS n_labelled,
  CAST(NULL AS DOUBLE) AS label_coverage,
  CAST(NULL AS DOUBLE) AS throughput_per_s,
  CAST(NULL AS DOUBLE) AS mean_score,
  CAST(NULL AS DOUBLE) AS predicted_positive_rate,
  challenger_tp AS tp,
  challenger_fp AS fp,
  challenger_tn AS tn,
  challenger_fn AS fn,
  CASE WHEN n_paired > 0 THEN CAST(challenger_tp + challenger_tn AS DOUBLE) / (n_paired) END AS `accuracy`,
  CASE WHEN challenger_tp + challenger_fp > 0 THEN CAST(challenger_tp AS DOUBLE) / (challenger_tp + challenger_fp) END AS `precision`,
  CASE WHEN challenger_tp + challenger_fn > 0 THEN CAST(challenger_tp AS DOUBLE) / (challenger_tp + challenger_fn) END AS `recall`,
  CASE WHEN challenger_tn + challenger_fp > 0 THEN CAST(challenger_tn AS DOUBLE) / (challenger_tn + challenger_fp) END AS `specificity`,
  CASE WHEN 2 * challenger_tp + challenger_fp + challenger_fn > 0 THEN CAST(2 * challenger_tp AS DOUBLE) / (2 * challenger_tp + challenger_fp + challenger_fn) END AS `f1`,
  CAST(NULL AS DOUBLE) AS accuracy_ci_low,
  CAST(NULL AS DOUBLE) AS accuracy_ci_high,
  CAST(NULL AS DOUBLE) AS precision_ci_low,
  CAST(NULL AS DOUBLE) AS precision_ci_high,
  CAST(NULL AS DOUBLE) AS recall_ci_low,
  CAST(NULL AS DOUBLE) AS recall_ci_high,
  CAST(NULL AS DOUBLE) AS roc_auc,
  CAST(NULL AS DOUBLE) AS roc_auc_error_bound,
  CAST(NULL AS DOUBLE) AS pr_auc,
  CASE WHEN n_paired > 0 THEN CAST(challenger_sq_err_sum AS DOUBLE) / (n_paired) END AS brier,
  CASE WHEN n_paired > 0 THEN CAST(challenger_log_loss_sum AS DOUBLE) / (n_paired) END AS log_loss,
  CAST(NULL AS DOUBLE) AS ece,
  CAST(NULL AS DOUBLE) AS mce,
  CAST(NULL AS ARRAY<ROW<`bin` INT, n BIGINT, mean_score DOUBLE, observed_rate DOUBLE>>) AS reliability,
  CAST(NULL AS DOUBLE) AS label_latency_p50_s,
  CAST(NULL AS DOUBLE) AS label_latency_p95_s,
  CAST(NULL AS DOUBLE) AS psi,
  CAST(NULL AS DOUBLE) AS ks_statistic,
  CAST(NULL AS DOUBLE) AS ks_pvalue,
  CAST(NULL AS DOUBLE) AS estimated_accuracy,
  CAST(NULL AS DOUBLE) AS estimated_precision,
  CAST(NULL AS DOUBLE) AS estimated_recall,
  compared_to,
  mcnemar_b,
  mcnemar_c,
  mcnemar_pvalue(mcnemar_b, mcnemar_c) AS mcnemar_pvalue,
  COALESCE(mcnemar_pvalue(mcnemar_b, mcnemar_c) < 0.05, FALSE) AS significant,
  CASE WHEN n_paired > 0 THEN CAST(challenger_tp + challenger_tn AS DOUBLE) / (n_paired) END - CASE WHEN n_paired > 0 THEN CAST(champion_tp + champion_tn AS DOUBLE) / (n_paired) END AS accuracy_diff,
  CASE WHEN challenger_tp + challenger_fp > 0 THEN CAST(challenger_tp AS DOUBLE) / (challenger_tp + challenger_fp) END - CASE WHEN champion_tp + champion_fp > 0 THEN CAST(champion_tp AS DOUBLE) / (champion_tp + champion_fp) END AS precision_diff,
  CASE WHEN challenger_tp + challenger_fn > 0 THEN CAST(challenger_tp AS DOUBLE) / (challenger_tp + challenger_fn) END - CASE WHEN champion_tp + champion_fn > 0 THEN CAST(champion_tp AS DOUBLE) / (champion_tp + champion_fn) END AS recall_diff,
  CASE WHEN challenger_tn + challenger_fp > 0 THEN CAST(challenger_tn AS DOUBLE) / (challenger_tn + challenger_fp) END - CASE WHEN champion_tn + champion_fp > 0 THEN CAST(champion_tn AS DOUBLE) / (champion_tn + champion_fp) END AS specificity_diff,
  CASE WHEN 2 * challenger_tp + challenger_fp + challenger_fn > 0 THEN CAST(2 * challenger_tp AS DOUBLE) / (2 * challenger_tp + challenger_fp + challenger_fn) END - CASE WHEN 2 * champion_tp + champion_fp + champion_fn > 0 THEN CAST(2 * champion_tp AS DOUBLE) / (2 * champion_tp + champion_fp + champion_fn) END AS f1_diff,
  CASE WHEN n_paired > 0 THEN CAST(challenger_sq_err_sum AS DOUBLE) / (n_paired) END - CASE WHEN n_paired > 0 THEN CAST(champion_sq_err_sum AS DOUBLE) / (n_paired) END AS brier_diff,
  CASE WHEN n_paired > 0 THEN CAST(challenger_log_loss_sum AS DOUBLE) / (n_paired) END - CASE WHEN n_paired > 0 THEN CAST(champion_log_loss_sum AS DOUBLE) / (n_paired) END AS log_loss_diff
FROM comparison_windows;

-- Every view's rows, as the metrics topic receives them; the history table keeps the final ones.
CREATE TEMPORARY VIEW metrics_rows AS
SELECT * FROM live_metrics
UNION ALL
SELECT * FROM unlabelled_metrics
UNION ALL
SELECT * FROM cohort_revision_metrics
UNION ALL
SELECT * FROM cohort_final_metrics
UNION ALL
SELECT * FROM comparison_metrics;

EXECUTE STATEMENT SET
BEGIN

-- Every invalid input record, predictions and labels alike, to the dead-letter topic with its reason; every
-- valid label that no prediction matched within [event_time - max_label_skew, event_time + label_horizon]; and,
-- streaming, every joined row too late for the live view (views/live), as JSON of its columns.
INSERT INTO dead_letter_sink
SELECT 'predictions', reason, payload, kafka_partition, kafka_offset, DATE_FORMAT(CAST(kafka_time AS TIMESTAMP(3)), 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''')
FROM predictions_checked
WHERE reason IS NOT NULL
UNION ALL
SELECT 'labels', reason, payload, kafka_partition, kafka_offset, DATE_FORMAT(CAST(kafka_time AS TIMESTAMP(3)), 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''')
FROM labels_checked
WHERE reason IS NOT NULL
UNION ALL
SELECT 'labels', 'no prediction of this transaction_id made between 6h before and 10s after label_time',
  payload, kafka_partition, kafka_offset, DATE_FORMAT(CAST(kafka_time AS TIMESTAMP(3)), 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''')
FROM labels_joined
WHERE NOT matched
UNION ALL
SELECT 'labelled-predictions',
  'late: label_time not after the live view''s watermark (the lower watermark of the joined inputs less join.max_label_skew, 10s; a silent input stops holding it back after its idle timeout)',
  JSON_OBJECT('transaction_id' VALUE transaction_id, 'model_version' VALUE model_version, 'predicted_fraud_score' VALUE predicted_fraud_score,
              'predicted_fraud' VALUE predicted_fraud, 'actual_fraud' VALUE actual_fraud, 'event_time' VALUE event_time,
              'label_time' VALUE label_time, 'join_watermark' VALUE join_watermark),
  kafka_partition, kafka_offset, DATE_FORMAT(CAST(kafka_time AS TIMESTAMP(3)), 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''')
FROM live_replay
WHERE late;

-- Joined rows to the labelled-predictions topic, times as ISO-8601 UTC text.
-- join_watermark: the join's progress when it emitted the row, min(predictions' watermark, labels' watermark).
-- The join sends on its watermark held back by its widest bound (max of label_horizon and max_label_skew), so
-- that is added back. Every later row has a label_time of at least join_watermark - max_label_skew: its label
-- arrives later (so is not before the labels' watermark) or its prediction does (and the label is at most
-- max_label_skew before it). The live view's replay declares its watermark on that.
INSERT INTO labelled_predictions_sink
SELECT
  transaction_id,
  model_version, `country`, `merchant_category`,
  predicted_fraud_score,
  predicted_fraud,
  actual_fraud,
  DATE_FORMAT(event_time, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z'''),
  DATE_FORMAT(label_time, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z'''),
  label_latency_s,
  DATE_FORMAT(CURRENT_WATERMARK(label_time) + INTERVAL '0 06:00:00.000' DAY TO SECOND(3), 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''')
FROM labelled_predictions;

-- Every view's rows to the metrics topic: one sink, so one set of Kafka transactions.
INSERT INTO metrics_sink
SELECT * FROM metrics_rows;

-- The final rows (a cohort window's last revision; every other view's only one) to the history table.
INSERT INTO history_sink
SELECT `view`, TO_TIMESTAMP(`window_start`, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''') AS `window_start`, TO_TIMESTAMP(`window_end`, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''') AS `window_end`, `model_version`, `segment_key`, `segment_value`, `revision`, `is_final`, `n_predictions`, `n_labelled`, `label_coverage`, `throughput_per_s`, `mean_score`, `predicted_positive_rate`, `tp`, `fp`, `tn`, `fn`, `accuracy`, `precision`, `recall`, `specificity`, `f1`, `accuracy_ci_low`, `accuracy_ci_high`, `precision_ci_low`, `precision_ci_high`, `recall_ci_low`, `recall_ci_high`, `roc_auc`, `roc_auc_error_bound`, `pr_auc`, `brier`, `log_loss`, `ece`, `mce`, `reliability`, `label_latency_p50_s`, `label_latency_p95_s`, `psi`, `ks_statistic`, `ks_pvalue`, `estimated_accuracy`, `estimated_precision`, `estimated_recall`, `compared_to`, `mcnemar_b`, `mcnemar_c`, `mcnemar_pvalue`, `significant`, `accuracy_diff`, `precision_diff`, `recall_diff`, `specificity_diff`, `f1_diff`, `brier_diff`, `log_loss_diff`,
  SUBSTRING(window_start FROM 1 FOR 10) AS `date`
FROM metrics_rows
WHERE is_final;

END;
