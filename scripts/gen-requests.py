#!/usr/bin/env python3
"""Writes N `simulate --requests` lines built from AWS managed policies (deterministic seed).

Requests come from 300 synthetic roles, each with one to three managed policies and, for a third
of them, a permissions boundary; actions are drawn half from the role's own policies and half
from other policies, resources are plausible ARNs, and some requests carry context keys.
"""
import json, random, sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
path = sys.argv[2] if len(sys.argv) > 2 else "../shared/data/iam-reference/aws_managed_policies.jsonl"
rng = random.Random(20261124)

docs = [json.loads(line)["document"] for line in open(path)]
docs = [d for d in docs if len(json.dumps(d)) < 8000]

def actions_of(doc):
    out = []
    sts = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    for st in sts:
        a = st.get("Action", [])
        out += [a] if isinstance(a, str) else a
    return [a.replace("*", "Example") if a != "*" else "s3:GetObject" for a in out if ":" in a or a == "*"]

all_actions = sorted({a for d in docs for a in actions_of(d)})

def resource(action):
    svc = action.split(":")[0]
    k = rng.randrange(50)
    if svc == "s3":
        return f"arn:aws:s3:::bucket-{k}/path/obj-{rng.randrange(1000)}"
    return f"arn:aws:{svc}:us-east-1:111122223333:resource/r-{k}"

roles = []
for _ in range(300):
    policies = rng.sample(docs, rng.randint(1, 3))
    boundary = [rng.choice(docs)] if rng.random() < 0.33 else []
    own = [a for p in policies for a in actions_of(p)] or all_actions
    roles.append((policies, boundary, own))

out = sys.stdout
for i in range(n):
    policies, boundary, own = roles[rng.randrange(len(roles))]
    action = rng.choice(own) if rng.random() < 0.5 else rng.choice(all_actions)
    req = {"action": action, "resource": resource(action),
           "principal": "arn:aws:iam::111122223333:role/bench"}
    if rng.random() < 0.3:
        req["context"] = {"aws:SourceIp": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
                          "aws:SecureTransport": "true",
                          "aws:TagKeys": ["team", "env"]}
    line = {"identityPolicies": policies, "request": req}
    if boundary:
        line["permissionBoundaries"] = boundary
    out.write(json.dumps(line, separators=(",", ":")) + "\n")
