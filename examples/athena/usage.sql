-- iam-tailor's Athena usage query: what the given principals did in ONE account on ONE day, over
-- the table of cloudtrail-table.sql, reduced to what the CloudTrail-to-IAM mapper reads.
--
-- The same text runs on Athena (engine v3, Trino) and, for tests, on DuckDB
-- (scripts/athena-duckdb). The caller substitutes four placeholders (double braces around a name;
-- not spelled out here because substitution is plain text replacement, comments included):
--   table       the table, e.g. cloudtrail_logs or "mydb"."cloudtrail_logs";
--   account     a 12-digit account id (the account partition);
--   day         the timestamp partition value, yyyy/MM/dd, e.g. 2026/11/28;
--   principals  comma-separated single-quoted ARNs, e.g.
--               'arn:aws:iam::111122223333:role/app', 'arn:aws:iam::111122223333:role/worker'
-- The caller validates them (digits; yyyy/MM/dd; IAM ARN characters, no quote) before
-- substituting: they are SQL text.
--
-- Output columns, in this order: eventsource, eventname, eventtype, awsregion,
-- recipientaccountid, errorcode, identitytype, identityarn, identityaccountid, issuerarn,
-- requestparameters, resources, calls, firsttime, lasttime.
--
-- Every comment stays on a line of its own, so the statement is unchanged with them removed.
SELECT
    eventsource,
    eventname,
    eventtype,
    awsregion,
    recipientaccountid,
    errorcode,
    useridentity.type AS identitytype,
    useridentity.arn AS identityarn,
    useridentity.accountid AS identityaccountid,
    useridentity.sessioncontext.sessionissuer.arn AS issuerarn,
    requestparameters,
-- resources as JSON text (varchar). DuckDB: [{"arn":"...","accountid":null,"type":"AWS::S3::Bucket"}]
-- (keys in the DDL's field order); an empty array gives [], a missing one NULL. Trino (Athena
-- engine v3) casts a ROW with field names to a JSON object too (Trino documentation, "JSON
-- functions and operators", Cast to JSON); the older Presto of Athena engine v2 cast ROW to a
-- positional array ["...",null,"AWS::S3::Bucket"]. Not checked on a live Athena: the reader
-- accepts both shapes, in any key order. json_format (a Trino function) turns Trino's JSON type
-- into varchar, which can be sorted; DuckDB has no json_format, so scripts/athena-duckdb defines
-- it as a one-line macro (CAST(json AS VARCHAR), the same compact text).
    json_format(CAST(t.resources AS JSON)) AS resources,
-- identical calls collapse into one row: how many, and the first and last eventtime (the
-- ISO-8601 text orders as time does).
    count(*) AS calls,
    min(eventtime) AS firsttime,
    max(eventtime) AS lasttime
FROM {{table}} AS t
-- partition pruning: one account, one day, every region (no region filter).
WHERE account = '{{account}}'
    AND "timestamp" = '{{day}}'
-- the principal key (iam-tailor's cloudtrail::select::principal_key): an IAM user's own ARN;
-- otherwise the session issuer's ARN (the role behind an assumed-role session); otherwise the
-- identity's ARN when it is a role ARN (its 6th ':' field starts with role/). split_part gives ''
-- in DuckDB and NULL in Trino past the last field: neither is LIKE 'role/%'. The Rust side
-- re-applies the rule to every row anyway.
    AND (CASE
            WHEN useridentity.type = 'IAMUser' THEN useridentity.arn
            WHEN useridentity.sessioncontext.sessionissuer.arn IS NOT NULL
                THEN useridentity.sessioncontext.sessionissuer.arn
            WHEN split_part(useridentity.arn, ':', 6) LIKE 'role/%' THEN useridentity.arn
        END) IN ({{principals}})
-- every selected column but the aggregates. resources is grouped as the raw array (t.resources,
-- qualified because the output column of that name is its JSON text): grouping compares arrays
-- null-safely in both engines.
GROUP BY
    eventsource,
    eventname,
    eventtype,
    awsregion,
    recipientaccountid,
    errorcode,
    useridentity.type,
    useridentity.arn,
    useridentity.accountid,
    useridentity.sessioncontext.sessionissuer.arn,
    requestparameters,
    t.resources,
-- and the calls' UTC day (eventtime's first 10 characters): iam-tailor keeps usage by day, so
-- a group's lasttime stands for calls of its own day only.
    substr(eventtime, 1, 10)
-- a deterministic order: every output column, by output name (the grouped columns alone are
-- already unique per row). resources sorts by its JSON text, not by the raw array: Trino refuses
-- to compare ROWs with a NULL field ("ROW comparison not supported for fields with null
-- elements", Trino's RowType), and resources often lack accountId or ARN. Both engines sort
-- ascending with NULLS LAST by default and compare varchar by code point.
ORDER BY
    eventsource,
    eventname,
    eventtype,
    awsregion,
    recipientaccountid,
    errorcode,
    identitytype,
    identityarn,
    identityaccountid,
    issuerarn,
    requestparameters,
    resources,
    calls,
    firsttime,
    lasttime
