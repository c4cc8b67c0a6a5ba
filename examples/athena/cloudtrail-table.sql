-- The Athena table iam-tailor's Athena usage source reads: an ORGANIZATION trail's CloudTrail
-- logs, one partition per (account, region, day), found by partition projection (no crawler, no
-- MSCK REPAIR, no ALTER TABLE ADD PARTITION).
--
-- Columns follow the AWS Athena documentation, "Creating the table for CloudTrail logs in Athena
-- using partition projection" (and "Understanding CloudTrail logs and Athena tables"). Athena
-- lower-cases every column and struct field name; the CloudTrail SerDe matches the log's JSON keys
-- (eventSource, userIdentity.sessionContext.sessionIssuer.arn, resources[].ARN ...) to them
-- case-insensitively. The STRING columns requestparameters, responseelements,
-- additionaleventdata, serviceeventdetails, edgedevicedetails hold the JSON text of the log's
-- object.
--
-- scripts/athena-duckdb derives its DuckDB table from THIS file (the column list and PARTITIONED
-- BY), so keep every comment on a line of its own, starting with "--".
--
-- Placeholders to replace before running it (e.g. with sed):
--   cloudtrail_logs  the table name; iam-tailor is told DATABASE.TABLE in its Athena source.
--   BUCKET           the trail's S3 bucket. If the trail has an S3 key prefix, write
--                    BUCKET/PREFIX in both LOCATION and storage.location.template.
--   o-ORGID          the organization id, e.g. o-a1b2c3d4e5, as in the trail's keys
--                    AWSLogs/o-a1b2c3d4e5/111122223333/CloudTrail/us-east-1/2026/11/28/...
--   REGIONS          comma-separated regions the trail logs, e.g. us-east-1,eu-west-1 (see below).
--   2020/01/01       the first day to query, in projection.timestamp.range.
--
-- Non-organization trail: its keys are AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/28/...
-- (no o-ORGID level). Then use LOCATION 's3://BUCKET/AWSLogs/' and
--   'storage.location.template'='s3://BUCKET/AWSLogs/${account}/CloudTrail/${region}/${timestamp}'
-- and keep the same columns, partitions and projection.
--
-- Partition projection choices (AWS Athena documentation, "Partition projection with Amazon
-- Athena" / "Supported types for partition projection"):
--   account  'injected': the value comes from the query's WHERE account = '...'. iam-tailor's
--            query (usage.sql) always names exactly one account, so nobody has to keep a list of
--            the organization's accounts up to date here; new accounts work at once. The price:
--            a query without an equality on account is rejected, which is what we want anyway.
--   region   'enum' with the regions the trail logs: usage.sql reads every region of the
--            account and day, without a region filter, and an injected column would require one.
--            Athena projects one partition per listed region; a listed region without logs is an
--            empty S3 prefix and costs one LIST request.
--   timestamp 'date' in the keys' own yyyy/MM/dd form, one partition per day, from the first
--            day to NOW. The partition value is the text '2026/11/28' (usage.sql compares text).
--
-- SerDe: the CloudTrail SerDe and input format named in the AWS Athena documentation ("Creating
-- the table for CloudTrail logs in Athena using manual partitioning" and older versions of the
-- partition projection page; newer versions of that page show
-- 'org.apache.hive.serde2.JsonSerDe' with the same CloudTrailInputFormat).
CREATE EXTERNAL TABLE cloudtrail_logs (
    eventversion STRING,
    useridentity STRUCT<
        type: STRING,
        principalid: STRING,
        arn: STRING,
        accountid: STRING,
        invokedby: STRING,
        accesskeyid: STRING,
        username: STRING,
        onbehalfof: STRUCT<
            userid: STRING,
            identitystorearn: STRING>,
        sessioncontext: STRUCT<
            attributes: STRUCT<
                mfaauthenticated: STRING,
                creationdate: STRING>,
            sessionissuer: STRUCT<
                type: STRING,
                principalid: STRING,
                arn: STRING,
                accountid: STRING,
                username: STRING>,
            ec2roledelivery: STRING,
            webidfederationdata: STRUCT<
                federatedprovider: STRING,
                attributes: MAP<STRING,STRING>>
        >
    >,
    eventtime STRING,
    eventsource STRING,
    eventname STRING,
    awsregion STRING,
    sourceipaddress STRING,
    useragent STRING,
    errorcode STRING,
    errormessage STRING,
    requestparameters STRING,
    responseelements STRING,
    additionaleventdata STRING,
    requestid STRING,
    eventid STRING,
    readonly STRING,
    resources ARRAY<STRUCT<
        arn: STRING,
        accountid: STRING,
        type: STRING>>,
    eventtype STRING,
    apiversion STRING,
    recipientaccountid STRING,
    serviceeventdetails STRING,
    sharedeventid STRING,
    vpcendpointid STRING,
    vpcendpointaccountid STRING,
    eventcategory STRING,
    addendum STRUCT<
        reason: STRING,
        updatedfields: STRING,
        originalrequestid: STRING,
        originaleventid: STRING>,
    sessioncredentialfromconsole STRING,
    edgedevicedetails STRING,
    tlsdetails STRUCT<
        tlsversion: STRING,
        ciphersuite: STRING,
        clientprovidedhostheader: STRING>
)
PARTITIONED BY (
    account STRING,
    region STRING,
    `timestamp` STRING
)
ROW FORMAT SERDE 'com.amazon.emr.hive.serde.CloudTrailSerde'
STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION 's3://BUCKET/AWSLogs/o-ORGID/'
TBLPROPERTIES (
    'projection.enabled'='true',
    'projection.account.type'='injected',
    'projection.region.type'='enum',
    'projection.region.values'='REGIONS',
    'projection.timestamp.type'='date',
    'projection.timestamp.format'='yyyy/MM/dd',
    'projection.timestamp.range'='2020/01/01,NOW',
    'projection.timestamp.interval'='1',
    'projection.timestamp.interval.unit'='DAYS',
    'storage.location.template'='s3://BUCKET/AWSLogs/o-ORGID/${account}/CloudTrail/${region}/${timestamp}'
)
