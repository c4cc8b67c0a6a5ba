-- The operator's fact store as an Athena table: what iam-tailor has read of a trail, per
-- reading identity, account and day (a ClusterTrail's `store.location`). Replace
-- s3://FACT-STORE/PREFIX/ with that location; one table per store prefix.
--
-- Each row is one fact; `kind` says which columns it uses (src/usage/store.rs, COLUMNS):
--   principal  count = records of the principal that day that were used or denied
--   action     action, count, last_seen          (an IAM action it used)
--   resource   action, resource, count, last_seen
--   denied     event_source, event_name, error_code, count, last_seen
--   denied-grant  action, resource, detail (event id), source_ip, count, last_seen
--   unmapped   event_source, event_name, count, last_seen
--   note       detail
--   stat       detail (filesScanned, recordsScanned), count
--   skipped    detail (a reason such as too-many-distinct-calls), count
-- Partitions are Hive-style: reader=operator (or role-<digest of the access role's ARN>),
-- account=<12 digits, or "other">, day=YYYY-MM-DD (the UTC day of the events).
CREATE EXTERNAL TABLE iam_tailor_facts (
  principal string,
  kind string,
  action string,
  resource string,
  event_source string,
  event_name string,
  error_code string,
  detail string,
  count bigint,
  last_seen string,
  source_ip string
)
PARTITIONED BY (reader string, account string, day string)
STORED AS PARQUET
LOCATION 's3://FACT-STORE/PREFIX/'
TBLPROPERTIES (
  -- The checkpoint (reader=…/checkpoint.json) is not Parquet: name the partitions' file only.
  'projection.enabled' = 'true',
  'projection.reader.type' = 'injected',
  'projection.account.type' = 'injected',
  'projection.day.type' = 'date',
  'projection.day.format' = 'yyyy-MM-dd',
  'projection.day.range' = '2020-01-01,NOW',
  'storage.location.template' = 's3://FACT-STORE/PREFIX/reader=${reader}/account=${account}/day=${day}/'
);
-- For example, every action a role used in the last 30 days, with its last use:
--   SELECT action, sum(count) AS calls, max(last_seen) AS last_seen
--   FROM iam_tailor_facts
--   WHERE reader = 'operator' AND account = '111122223333'
--     AND day >= date_format(current_date - interval '30' day, '%Y-%m-%d')
--     AND kind = 'action' AND principal = 'arn:aws:iam::111122223333:role/app'
--   GROUP BY action ORDER BY action;
