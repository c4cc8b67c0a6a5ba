//! `--granularity prefix`: many ARNs under one resource become one wildcard, never wider than
//! the resource itself.
//!
//! Each ARN has a protected root: its header (partition, service, region, account), the fixed
//! text of its resource type and the resource's own name, up to the separator after it
//! (`arn:aws:s3:::bucket/`, `…:table/orders/`, `…:log-group:/aws/x:`). Only the path after the
//! root may become `*`, so a collapse can reach a bucket's objects but never `arn:aws:s3:::b*`.
//! The catalog's ARN template of the ARN's resource type says where the root ends.
//!
//! [`generalize`] first widens the parts of a path that change with time or instance
//! ([`super::volatile`]), so the pattern still fits next month's names.

use crate::catalog::catalog;
use crate::catalog::volatile::{Volatile, first_volatile, is_ec2_id};
use std::collections::{BTreeMap, BTreeSet};

/// Where an ARN's protected root ends, by one ARN template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Root {
    /// The template does not describe this ARN.
    NoMatch,
    /// The ARN names the resource itself (`table/${TableName}`): nothing may be collapsed.
    Whole,
    /// The first `n` bytes are the root; what follows is a path inside the resource.
    Prefix(usize),
}

/// Byte offset just after the fifth `:`, where an ARN's resource part starts.
fn resource_part_start(s: &str) -> Option<usize> {
    s.match_indices(':').nth(4).map(|(i, _)| i + 1)
}

fn root_by_template(template: &str, arn: &str) -> Root {
    let (Some(t), Some(a)) = (resource_part_start(template), resource_part_start(arn)) else {
        return Root::NoMatch;
    };
    let (template_rest, arn_rest) = (&template[t..], &arn[a..]);
    let Some(var) = template_rest.find("${") else {
        return Root::Whole;
    };
    let fixed = &template_rest[..var];
    if !arn_rest.starts_with(fixed) {
        return Root::NoMatch;
    }
    let Some(close) = template_rest[var..].find('}') else {
        return Root::NoMatch;
    };
    // The byte that ends the resource's name in the template: `/` in `${BucketName}/…`.
    let stop = match template_rest.as_bytes().get(var + close + 1) {
        None | Some(b'$') => return Root::Whole,
        Some(&b) => b,
    };
    let name_start = a + fixed.len();
    match arn.as_bytes()[name_start..].iter().position(|&b| b == stop) {
        Some(len) if len > 0 => Root::Prefix(name_start + len + 1),
        _ => Root::NoMatch,
    }
}

/// The protected root of `arn` as a resource of `action`; `None` when nothing may be collapsed
/// (the ARN is a resource itself, or its type is unknown). When several templates match, any
/// that says "whole resource" wins, then the longest root: the narrower collapse.
fn protected_root<'a>(action: &str, arn: &'a str) -> Option<&'a str> {
    let cat = catalog();
    let mut types: Vec<_> = cat
        .resource_types_for_action_arn(action, arn)
        .into_iter()
        .map(|t| t.resource_type)
        .collect();
    if types.is_empty() {
        types.extend(cat.resource_type_of_arn(arn));
    }
    let roots: Vec<Root> = types
        .iter()
        .flat_map(|t| t.arn_templates.iter())
        .map(|template| root_by_template(template, arn))
        .collect();
    if roots.contains(&Root::Whole) {
        return None;
    }
    roots
        .into_iter()
        .filter_map(|r| match r {
            Root::Prefix(n) => Some(n),
            _ => None,
        })
        .max()
        .map(|n| &arn[..n])
}

/// The resource patterns for `action`'s ARNs, each with the ARNs it stands for.
///
/// Below each root, paths form a tree split at `/` and `:`. Bottom up, a folder holding more
/// than `threshold` entries (ARNs, or sub-folders already collapsed) becomes `folder*`; so a
/// collapse lands on the longest common path prefix of the ARNs it covers.
pub fn collapse(
    action: &str,
    arns: &BTreeSet<String>,
    threshold: usize,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut by_root: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for arn in arns {
        match protected_root(action, arn) {
            Some(root) => by_root.entry(root).or_default().push(arn),
            None => {
                out.insert(arn.clone(), BTreeSet::from([arn.clone()]));
            }
        }
    }
    for (root, members) in by_root {
        for (pattern, sources) in collapse_folder(members, root.len(), threshold) {
            out.entry(pattern)
                .or_default()
                .extend(sources.into_iter().map(str::to_string));
        }
    }
    out
}

/// A resource pattern, the ARNs it stands for, and the changing parts it widened (empty when
/// it is only a collapse of many ARNs, or an ARN as seen).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pattern {
    pub sources: BTreeSet<String>,
    pub because: BTreeSet<Volatile>,
}

/// The patterns of one ARN that still fit the resources its changing parts will name: the
/// stable text up to the first changing part, then `*` (`orders/2026/11/20/a` →
/// `orders/*`); a qualified Lambda function → the function and all its qualifiers; an
/// instance-like EC2 id → every resource of that type in the account and region. `None` when
/// nothing in it changes. Never reaches above the protected root, so never across a bucket,
/// table, queue, key, function or account.
fn forward_safe(action: &str, arn: &str) -> Option<(Vec<String>, Volatile)> {
    let start = resource_part_start(arn)?;
    let (head, resource) = arn.split_at(start);
    if head.split(':').nth(2) == Some("lambda")
        && let Some(rest) = resource.strip_prefix("function:")
        && let Some((name, qualifier)) = rest.split_once(':')
        && !name.is_empty()
        && !qualifier.is_empty()
        && !qualifier.contains(['*', '?'])
    {
        let function = format!("{head}function:{name}");
        let qualifiers = format!("{function}:*");
        return Some((vec![function, qualifiers], Volatile::LambdaQualifier));
    }
    if head.split(':').nth(2) == Some("ec2")
        && let Some((kind, id)) = resource.split_once('/')
        && is_ec2_id(id)
    {
        return Some((vec![format!("{head}{kind}/*")], Volatile::Ec2Id));
    }
    let root = protected_root(action, arn)?;
    let path = &arn[root.len()..];
    if root.ends_with(':') && !path.is_empty() && path.bytes().all(|b| b.is_ascii_digit()) {
        return Some((vec![format!("{root}*")], Volatile::Revision));
    }
    let (at, why) = first_volatile(path)?;
    Some((vec![format!("{}*", &arn[..root.len() + at])], why))
}

/// Like [`collapse`], after widening each ARN's changing parts: the default generator's
/// resource patterns for `action`, each with the ARNs it stands for and why it is wider.
pub fn generalize(
    action: &str,
    arns: &BTreeSet<String>,
    threshold: usize,
) -> BTreeMap<String, Pattern> {
    // Each input to the collapse (an ARN as seen, or a widened pattern) with what it covers.
    let mut inputs: BTreeMap<String, Pattern> = BTreeMap::new();
    for arn in arns {
        let (forms, because) = match forward_safe(action, arn) {
            Some((forms, why)) => (forms, BTreeSet::from([why])),
            None => (vec![arn.clone()], BTreeSet::new()),
        };
        for form in forms {
            let entry = inputs.entry(form).or_default();
            entry.sources.insert(arn.clone());
            entry.because.extend(&because);
        }
    }
    let keys: BTreeSet<String> = inputs.keys().cloned().collect();
    let mut out: BTreeMap<String, Pattern> = BTreeMap::new();
    for (pattern, members) in collapse(action, &keys, threshold) {
        let entry = out.entry(pattern).or_default();
        for member in members {
            let input = &inputs[&member];
            entry.sources.extend(input.sources.iter().cloned());
            entry.because.extend(&input.because);
        }
    }
    out
}

/// Collapses `items`, which all share their first `start` bytes (the folder), and returns
/// (pattern, ARNs covered) pairs.
fn collapse_folder(items: Vec<&str>, start: usize, threshold: usize) -> Vec<(String, Vec<&str>)> {
    let folder = &items[0][..start];
    let mut entries: Vec<(String, Vec<&str>)> = Vec::new();
    let mut subfolders: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for item in items {
        match item[start..].find(['/', ':']) {
            Some(i) => subfolders
                .entry(&item[start..=start + i])
                .or_default()
                .push(item),
            None => entries.push((item.to_string(), vec![item])),
        }
    }
    for (name, members) in subfolders {
        entries.extend(collapse_folder(members, start + name.len(), threshold));
    }
    if entries.len() > threshold {
        let covered = entries.into_iter().flat_map(|(_, s)| s).collect();
        vec![(format!("{folder}*"), covered)]
    } else {
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: impl IntoIterator<Item = String>) -> BTreeSet<String> {
        items.into_iter().collect()
    }

    fn patterns(action: &str, arns: &BTreeSet<String>, threshold: usize) -> Vec<String> {
        collapse(action, arns, threshold).into_keys().collect()
    }

    #[test]
    fn objects_collapse_to_their_common_folder() {
        let arns = set((0..11).map(|i| format!("arn:aws:s3:::b/logs/2024/{i}")));
        let out = collapse("s3:GetObject", &arns, 10);
        assert_eq!(
            out.keys().collect::<Vec<_>>(),
            vec!["arn:aws:s3:::b/logs/2024/*"]
        );
        assert_eq!(out["arn:aws:s3:::b/logs/2024/*"], arns);
        // At the threshold, nothing collapses.
        let ten = set((0..10).map(|i| format!("arn:aws:s3:::b/logs/2024/{i}")));
        assert_eq!(patterns("s3:GetObject", &ten, 10).len(), 10);
    }

    #[test]
    fn collapse_lands_on_the_longest_common_path() {
        // One object per day folder: the days' common folder collapses, not the bucket.
        let arns = set((10..21).map(|d| format!("arn:aws:s3:::b/logs/2024/{d}/x.gz")));
        assert_eq!(
            patterns("s3:GetObject", &arns, 10),
            vec!["arn:aws:s3:::b/logs/2024/*"]
        );
        // Two busy folders stay two patterns.
        let mut two = set((0..11).map(|i| format!("arn:aws:s3:::b/a/{i}")));
        two.extend((0..11).map(|i| format!("arn:aws:s3:::b/z/{i}")));
        assert_eq!(
            patterns("s3:GetObject", &two, 10),
            vec!["arn:aws:s3:::b/a/*", "arn:aws:s3:::b/z/*"]
        );
    }

    #[test]
    fn never_wider_than_the_resource() {
        // Objects in many buckets: each bucket is its own root, so nothing reaches `:::*`.
        let arns = set((0..30).map(|i| format!("arn:aws:s3:::bucket{i}/k")));
        let out = patterns("s3:GetObject", &arns, 2);
        assert_eq!(out.len(), 30);
        assert!(out.iter().all(|p| !p.contains('*')), "{out:?}");
        // Even with threshold 0, objects stop at the bucket.
        let one = set(["arn:aws:s3:::b/x/y".to_string()]);
        assert_eq!(patterns("s3:GetObject", &one, 0), vec!["arn:aws:s3:::b/*"]);
        // Buckets, tables, functions and queues are whole resources: never collapsed.
        for (action, arn) in [
            ("s3:ListBucket", "arn:aws:s3:::bucket{i}"),
            (
                "dynamodb:GetItem",
                "arn:aws:dynamodb:us-east-1:111122223333:table/t{i}",
            ),
            (
                "lambda:InvokeFunction",
                "arn:aws:lambda:us-east-1:111122223333:function:f{i}",
            ),
            (
                "sqs:SendMessage",
                "arn:aws:sqs:us-east-1:111122223333:queue{i}",
            ),
        ] {
            let arns = set((0..20).map(|i| arn.replace("{i}", &i.to_string())));
            assert_eq!(patterns(action, &arns, 1).len(), 20, "{action}");
        }
    }

    #[test]
    fn sub_resources_collapse_below_their_parent() {
        let arns = set((0..3).map(|i| {
            format!("arn:aws:logs:us-east-1:111122223333:log-group:/aws/lambda/f:log-stream:s{i}")
        }));
        assert_eq!(
            patterns("logs:PutLogEvents", &arns, 2),
            vec!["arn:aws:logs:us-east-1:111122223333:log-group:/aws/lambda/f:log-stream:*"]
        );
        let arns = set((0..3)
            .map(|i| format!("arn:aws:dynamodb:us-east-1:111122223333:table/orders/index/gsi{i}")));
        assert_eq!(
            patterns("dynamodb:Query", &arns, 2),
            vec!["arn:aws:dynamodb:us-east-1:111122223333:table/orders/index/*"]
        );
    }

    fn widened(action: &str, arns: &[&str]) -> Vec<(String, Vec<Volatile>)> {
        let arns = set(arns.iter().map(|a| a.to_string()));
        generalize(action, &arns, 10)
            .into_iter()
            .map(|(p, g)| (p, g.because.into_iter().collect()))
            .collect()
    }

    #[test]
    fn changing_parts_widen_to_the_stable_prefix() {
        let date = vec![Volatile::Date];
        for (action, seen, pattern) in [
            (
                "s3:PutObject",
                "arn:aws:s3:::orders-bucket/orders/2026/11/20/a.json",
                "arn:aws:s3:::orders-bucket/orders/*",
            ),
            (
                "s3:GetObject",
                "arn:aws:s3:::lake/ingest/dt=2026-12-31/part-0.parquet",
                "arn:aws:s3:::lake/ingest/dt=*",
            ),
            (
                "s3:GetObject",
                "arn:aws:s3:::lake/t/year=2026/month=11/f",
                "arn:aws:s3:::lake/t/year=*",
            ),
            (
                "logs:PutLogEvents",
                "arn:aws:logs:us-east-1:111122223333:log-group:/aws/lambda/f:log-stream:2026/11/20/[$LATEST]0a1b2c3d4e5f60718293a4b5c6d7e8f9",
                "arn:aws:logs:us-east-1:111122223333:log-group:/aws/lambda/f:log-stream:*",
            ),
        ] {
            assert_eq!(
                widened(action, &[seen]),
                vec![(pattern.to_string(), date.clone())],
                "{seen}"
            );
        }
        // An ECS task id in a log stream keeps the stream's stable prefix.
        assert_eq!(
            widened(
                "logs:PutLogEvents",
                &[
                    "arn:aws:logs:us-east-1:111122223333:log-group:/ecs/web:log-stream:ecs/web/0f1e2d3c4b5a69788796a5b4c3d2e1f0"
                ]
            ),
            vec![(
                "arn:aws:logs:us-east-1:111122223333:log-group:/ecs/web:log-stream:ecs/web/*"
                    .to_string(),
                vec![Volatile::HexId]
            )]
        );
    }

    #[test]
    fn qualifiers_and_instance_ids() {
        let f = "arn:aws:lambda:us-east-1:111122223333:function:enrich";
        let out = widened("lambda:InvokeFunction", &[&format!("{f}:42"), f]);
        assert_eq!(
            out,
            vec![
                (f.to_string(), vec![Volatile::LambdaQualifier]),
                (format!("{f}:*"), vec![Volatile::LambdaQualifier]),
            ]
        );
        let family = "arn:aws:ecs:us-east-1:111122223333:task-definition/app";
        assert_eq!(
            widened("ecs:RunTask", &[&format!("{family}:12")]),
            vec![(format!("{family}:*"), vec![Volatile::Revision])]
        );
        assert_eq!(
            widened(
                "ec2:CreateTags",
                &["arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0"]
            ),
            vec![(
                "arn:aws:ec2:us-east-1:111122223333:instance/*".to_string(),
                vec![Volatile::Ec2Id]
            )]
        );
    }

    #[test]
    fn every_seen_resource_stays_covered() {
        let seen = set([
            "arn:aws:s3:::b/orders/2026/11/20/a.json",
            "arn:aws:s3:::b/static/index.html",
            "arn:aws:lambda:us-east-1:111122223333:function:enrich:42",
            "arn:aws:lambda:us-east-1:111122223333:function:enrich",
            "arn:aws:logs:us-east-1:111122223333:log-group:/ecs/web:log-stream:ecs/web/0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            "arn:aws:ecs:us-east-1:111122223333:task-definition/app:12",
        ]
        .map(String::from));
        for action in [
            "s3:GetObject",
            "lambda:InvokeFunction",
            "logs:PutLogEvents",
            "ecs:RunTask",
        ] {
            let patterns = generalize(action, &seen, 0);
            for source in patterns.values().flat_map(|p| &p.sources) {
                assert!(
                    patterns.keys().any(|k| crate::wildcard::matches(k, source)),
                    "{action}: {source} not covered by {patterns:?}"
                );
            }
        }
    }

    #[test]
    fn widening_never_crosses_a_resource_or_account() {
        // Names of buckets, tables, queues, keys and functions hold dates and UUIDs too: they
        // are resources of their own, so they stay as seen.
        for (action, arn) in [
            ("s3:ListBucket", "arn:aws:s3:::logs-2026-11-20"),
            (
                "dynamodb:GetItem",
                "arn:aws:dynamodb:us-east-1:111122223333:table/events-2026-11",
            ),
            (
                "sqs:SendMessage",
                "arn:aws:sqs:us-east-1:111122223333:jobs-20261120",
            ),
            (
                "kms:Decrypt",
                "arn:aws:kms:us-east-1:111122223333:key/3f2b8c1e-9d4a-4e6f-8a7b-1c2d3e4f5a6b",
            ),
            (
                "lambda:InvokeFunction",
                "arn:aws:lambda:us-east-1:111122223333:function:job-1764633600",
            ),
            // An account id inside a key is an account boundary.
            (
                "s3:GetObject",
                "arn:aws:s3:::trail/AWSLogs/111122223333/CloudTrail/x.json",
            ),
            // Security groups and subnets are stable.
            (
                "ec2:AuthorizeSecurityGroupIngress",
                "arn:aws:ec2:us-east-1:111122223333:security-group/sg-0123456789abcdef0",
            ),
        ] {
            assert_eq!(
                widened(action, &[arn]),
                vec![(arn.to_string(), vec![])],
                "{arn}"
            );
        }
        // A date right below the bucket widens to the bucket's objects, never the bucket.
        assert_eq!(
            widened("s3:GetObject", &["arn:aws:s3:::b/2026/11/20/x"]),
            vec![("arn:aws:s3:::b/*".to_string(), vec![Volatile::Date])]
        );
    }

    #[test]
    fn roots_follow_the_template() {
        let t = "arn:${Partition}:s3:::${BucketName}/${ObjectName}";
        assert_eq!(
            root_by_template(t, "arn:aws:s3:::b/k"),
            Root::Prefix("arn:aws:s3:::b/".len())
        );
        assert_eq!(root_by_template(t, "arn:aws:s3:::b"), Root::NoMatch);
        let t = "arn:${Partition}:dynamodb:${Region}:${Account}:table/${TableName}";
        assert_eq!(
            root_by_template(t, "arn:aws:dynamodb:r:1:table/t"),
            Root::Whole
        );
        assert_eq!(
            root_by_template("arn:${Partition}:x::1:account", "arn:aws:x::1:account"),
            Root::Whole
        );
    }
}
