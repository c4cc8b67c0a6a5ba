#!/usr/bin/env python3
"""Builds a CloudTrail corpus by perturbing the real records in ../shared/data/cloudtrail.

usage: gen-trail-corpus.py OUT_DIR [FILES=200] [RECORDS_PER_FILE=1000]

Writes OUT_DIR/AWSLogs/111122223333/CloudTrail/us-east-1/YYYY/MM/DD/<n>.json.gz in the S3 log
format. Records keep their real shapes (eventSource, eventName, requestParameters, resources)
but get new times over 90 days, new IDs, and varied bucket/object/table names; two thirds are
attributed to the role `bench-app` (as AssumedRole sessions), the rest to other principals,
so the principal filter has work to do. Deterministic (fixed seed).
"""
import copy, glob, gzip, json, os, random, sys, uuid
from datetime import datetime, timedelta, timezone

out = sys.argv[1]
files = int(sys.argv[2]) if len(sys.argv) > 2 else 200
per_file = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
here = os.path.dirname(os.path.abspath(__file__))
shared = os.path.join(here, "..", "..", "shared", "data", "cloudtrail")
rng = random.Random(42)

seed = []
for path in sorted(glob.glob(os.path.join(shared, "*", "*.json.gz"))):
    with gzip.open(path, "rt") as f:
        seed += json.load(f)["Records"]

ACCOUNT = "111122223333"
APP = f"arn:aws:iam::{ACCOUNT}:role/service/bench-app"
OTHERS = [f"arn:aws:iam::{ACCOUNT}:role/other-{i}" for i in range(5)]
start = datetime(2026, 8, 26, tzinfo=timezone.utc)

def vary(value, depth=0):
    """Perturbs identifiers inside request parameters, keeping their shapes."""
    if isinstance(value, dict):
        return {k: vary_named(k, v, depth) for k, v in value.items()}
    if isinstance(value, list):
        return [vary(v, depth + 1) for v in value]
    return value

def vary_named(key, value, depth):
    k = key.lower()
    if isinstance(value, str):
        if k == "bucketname":
            return f"bench-bucket-{rng.randrange(20)}"
        if k == "key":
            return f"data/{rng.randrange(30)}/part-{rng.randrange(100000)}.parquet"
        if k in ("tablename", "functionname", "queuename", "secretid", "rolename", "username"):
            return f"{value.split(':')[-1].split('/')[-1][:40]}-{rng.randrange(8)}"
    return vary(value, depth + 1)

def record(i):
    r = copy.deepcopy(seed[rng.randrange(len(seed))])
    t = start + timedelta(seconds=rng.randrange(90 * 86400))
    r["eventTime"] = t.strftime("%Y-%m-%dT%H:%M:%SZ")
    r["eventID"] = str(uuid.UUID(int=rng.getrandbits(128)))
    r["recipientAccountId"] = ACCOUNT
    r["awsRegion"] = "us-east-1"
    if isinstance(r.get("requestParameters"), dict):
        r["requestParameters"] = vary(r["requestParameters"])
    issuer = APP if rng.random() < 0.66 else rng.choice(OTHERS)
    name = issuer.rsplit("/", 1)[1]
    r["userIdentity"] = {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLE{rng.randrange(10**6)}:session",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/session-{rng.randrange(50)}",
        "accountId": ACCOUNT,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": issuer, "accountId": ACCOUNT, "userName": name}},
    }
    return r

n = 0
for f in range(files):
    records = [record(n + i) for i in range(per_file)]
    n += per_file
    day = start + timedelta(days=f * 90 // files)
    d = os.path.join(out, "AWSLogs", ACCOUNT, "CloudTrail", "us-east-1", day.strftime("%Y/%m/%d"))
    os.makedirs(d, exist_ok=True)
    name = f"{ACCOUNT}_CloudTrail_us-east-1_{day.strftime('%Y%m%dT%H%MZ')}_{f:05d}.json.gz"
    with gzip.open(os.path.join(d, name), "wt", compresslevel=6) as g:
        json.dump({"Records": records}, g, separators=(",", ":"))
print(f"{files} files, {n} records in {out}")
