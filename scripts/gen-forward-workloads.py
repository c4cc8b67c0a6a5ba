#!/usr/bin/env python3
"""Forward-replay workloads for scripts/bench-forward and tests/forward.rs.

Writes, for each workload W, CloudTrail files (S3 layout, gzipped) of role W's calls:
  OUT/W/train/   days 1-14: what the policy is generated from
  OUT/W/future/  days 15-28: the next fortnight, which the policy must still allow
  OUT/W/probes/  one call each to access the role never used (other buckets, prefixes,
                 tables, keys, functions, regions; writes where it only read), which the
                 policy must deny
Names churn as real workloads do: date partitions, UUID and epoch-millis object names, ECS
task ids, new instances daily, Lambda versions, ECS task-definition revisions. The windows
cross a month and a year boundary. Deterministic (seeded), so figures are comparable.
Usage: gen-forward-workloads.py OUT
"""
import datetime as dt
import gzip
import json
import os
import random
import sys
import uuid

ACCOUNT = "111122223333"
REGION = "us-east-1"


def record(role, when, source, name, params, resources=None, region=REGION):
    rec = {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:session",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/session",
            "accountId": ACCOUNT,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
                    "accountId": ACCOUNT,
                    "userName": role,
                }
            },
        },
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": f"{source}.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "10.0.0.1",
        "requestParameters": params,
        "responseElements": None,
        "eventID": str(uuid.UUID(int=random.getrandbits(128))),
        "recipientAccountId": ACCOUNT,
    }
    if resources:
        rec["resources"] = [{"ARN": arn} for arn in resources]
    return rec


def s3(role, when, name, bucket, key):
    return record(role, when, "s3", name, {"bucketName": bucket, "key": key},
                  [f"arn:aws:s3:::{bucket}/{key}", f"arn:aws:s3:::{bucket}"])


def hexid(n, rng=random):
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def checkout(role, day, i, when):
    """An order API: date-partitioned objects with UUID names, one queue, one table, a
    key, a secret, and logs from ECS tasks replaced every day."""
    key = f"orders/{day:%Y/%m/%d}/{uuid.UUID(int=random.getrandbits(128))}.json"
    # A new generation of tasks every day.
    tasks = [hexid(32, random.Random(f"{role}/{day}/{t}")) for t in range(2)]
    out = [
        s3(role, when, "PutObject", "checkout-orders", key),
        s3(role, when, "GetObject", "checkout-orders", key),
        record(role, when, "sqs", "SendMessage",
               {"queueUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/checkout-events"}),
        record(role, when, "dynamodb", "PutItem", {"tableName": "orders"}),
        record(role, when, "kms", "GenerateDataKey", {"keyId": "alias/checkout"},
               [f"arn:aws:kms:{REGION}:{ACCOUNT}:key/3f2b8c1e-9d4a-4e6f-8a7b-1c2d3e4f5a6b"]),
        record(role, when, "logs", "PutLogEvents",
               {"logGroupName": "/ecs/checkout",
                "logStreamName": f"ecs/checkout/{random.choice(tasks)}"}),
    ]
    if i % 10 == 0:
        out.append(record(role, when, "secretsmanager", "GetSecretValue",
                          {"secretId": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:checkout/db-AbCdEf"}))
    return out


def checkout_probes(role, when):
    table = lambda region: f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/orders"
    return [
        s3(role, when, "GetObject", "checkout-archive", "orders/2027/01/02/x.json"),
        s3(role, when, "GetObject", "checkout-orders", "admin/keys.json"),
        s3(role, when, "DeleteObject", "checkout-orders", "orders/2027/01/02/x.json"),
        record(role, when, "dynamodb", "PutItem", {"tableName": "payments"}),
        record(role, when, "dynamodb", "DeleteTable", {"tableName": "orders"}),
        record(role, when, "dynamodb", "PutItem", {"tableName": "orders"}, [table("us-west-2")],
               region="us-west-2"),
        record(role, when, "sqs", "SendMessage",
               {"queueUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/payments-events"}),
        record(role, when, "kms", "Decrypt", {},
               [f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0a0a0a0a-1b1b-4c4c-8d8d-2e2e2e2e2e2e"]),
        record(role, when, "logs", "PutLogEvents",
               {"logGroupName": "/ecs/payments", "logStreamName": f"ecs/payments/{hexid(32)}"}),
        record(role, when, "secretsmanager", "GetSecretValue",
               {"secretId": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:payments/db-XyZabc"}),
    ]


def ingest(role, day, i, when):
    """A data pipeline: Hive partitions in, epoch-millis objects out, a Lambda enricher
    whose version moves every three days, called by version and by alias."""
    hour = when.hour
    millis = int(when.replace(tzinfo=dt.timezone.utc).timestamp() * 1000) + i
    version = 40 + (day - START["ingest"]).days // 3
    fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:enrich"
    return [
        s3(role, when, "GetObject", "lake-raw",
           f"raw/dt={day:%Y-%m-%d}/hour={hour:02d}/part-{i:05d}.json.gz"),
        s3(role, when, "PutObject", "lake-curated",
           f"curated/year={day:%Y}/month={day:%m}/day={day:%d}/{millis}.parquet"),
        record(role, when, "lambda", "Invoke20150331",
               {"functionName": f"{fn}:{version}" if i % 2 else "enrich:live"}),
        record(role, when, "kms", "Decrypt", {},
               [f"arn:aws:kms:{REGION}:{ACCOUNT}:key/9e8d7c6b-5a49-4382-9170-abcdefabcdef"]),
    ]


def ingest_probes(role, when):
    return [
        s3(role, when, "GetObject", "lake-raw", "secrets/creds.json"),
        s3(role, when, "PutObject", "lake-raw", "raw/dt=2026-12-01/hour=00/part-00001.json.gz"),
        s3(role, when, "GetObject", "lake-finance", "raw/dt=2026-12-01/x"),
        s3(role, when, "PutObject", "lake-curated", "published/report.parquet"),
        record(role, when, "lambda", "Invoke20150331",
               {"functionName": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:enrich-admin"}),
        record(role, when, "lambda", "Invoke20150331",
               {"functionName": f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:enrich:live"},
               region="eu-west-1"),
        record(role, when, "lambda", "UpdateFunctionCode20150331v2",
               {"functionName": "enrich"}),
        record(role, when, "kms", "Encrypt", {},
               [f"arn:aws:kms:{REGION}:{ACCOUNT}:key/9e8d7c6b-5a49-4382-9170-abcdefabcdef"]),
    ]


def fleet(role, day, i, when):
    """A fleet agent: new instances every day, each tagged and logging to its own stream
    and S3 prefix; ECS task-definition revisions registered and run."""
    instances = [f"i-{hexid(17, random.Random(f'{role}/{day}/{n}'))}" for n in range(3)]
    revision = 10 + (day - START["fleet"]).days // 2
    inst = random.choice(instances)
    return [
        record(role, when, "ec2", "CreateTags",
               {"resourcesSet": {"items": [{"resourceId": inst}]},
                "tagSet": {"items": [{"key": "agent", "value": "ok"}]}}),
        record(role, when, "ec2", "DescribeInstances", {"instancesSet": {}}),
        record(role, when, "logs", "PutLogEvents",
               {"logGroupName": "/fleet/agent", "logStreamName": inst}),
        s3(role, when, "PutObject", "fleet-telemetry",
           f"agent/{inst}/{int(when.replace(tzinfo=dt.timezone.utc).timestamp())}.json"),
        record(role, when, "ssm", "GetParameter", {"name": "/fleet/agent/config"}),
        record(role, when, "ecs", "RunTask",
               {"cluster": "fleet",
                "taskDefinition": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/agent-sidecar:{revision}"}),
    ]


def fleet_probes(role, when):
    return [
        record(role, when, "ec2", "CreateTags",
               {"resourcesSet": {"items": [{"resourceId": "sg-0123456789abcdef0"}]}}),
        record(role, when, "ec2", "TerminateInstances",
               {"instancesSet": {"items": [{"instanceId": "i-0123456789abcdef0"}]}}),
        record(role, when, "ec2", "CreateTags",
               {"resourcesSet": {"items": [{"resourceId": "i-0123456789abcdef0"}]}},
               region="us-west-2"),
        record(role, when, "ssm", "GetParameter", {"name": "/fleet/admin/token"}),
        s3(role, when, "PutObject", "fleet-billing", "agent/x.json"),
        s3(role, when, "GetObject", "fleet-telemetry", "agent/i-0123456789abcdef0/1.json"),
        record(role, when, "logs", "PutLogEvents",
               {"logGroupName": "/fleet/admin", "logStreamName": "i-0123456789abcdef0"}),
        record(role, when, "ecs", "RunTask",
               {"cluster": "fleet",
                "taskDefinition": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/admin-shell:1"}),
    ]


# Day 1 of each workload: the future fortnight crosses a year, a month (into a 31-day
# month), and February into March.
START = {
    "checkout": dt.date(2026, 12, 8),
    "ingest": dt.date(2026, 11, 10),
    "fleet": dt.date(2027, 2, 6),
}
WORKLOADS = {"checkout": (checkout, checkout_probes), "ingest": (ingest, ingest_probes),
             "fleet": (fleet, fleet_probes)}
CALLS_PER_DAY = 48


def write(path, records):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile("", "wb", fileobj=raw, mtime=0) as f:
        f.write(json.dumps({"Records": records}).encode())


def trail_path(root, day):
    return (f"{root}/AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{day:%Y/%m/%d}/"
            f"{ACCOUNT}_CloudTrail_{REGION}_{day:%Y%m%d}T0000Z_w.json.gz")


def main():
    out = sys.argv[1]
    for name, (calls, probes) in WORKLOADS.items():
        random.seed(name)
        start = START[name]
        for n in range(28):
            day = start + dt.timedelta(days=n)
            records = []
            for i in range(CALLS_PER_DAY):
                when = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=30 * i)
                records.extend(calls(name, day, i, when))
            part = "train" if n < 14 else "future"
            write(trail_path(f"{out}/{name}/{part}", day), records)
        last = start + dt.timedelta(days=27)
        when = dt.datetime.combine(last, dt.time(12))
        write(trail_path(f"{out}/{name}/probes", last), probes(name, when))
        print(f"{name}: days {start} .. {last}")


if __name__ == "__main__":
    main()
