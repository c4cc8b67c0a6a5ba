//! A permissions boundary proposed from usage: a looser, longer-lived envelope than the
//! policy. Where the policy names actions and resources, the boundary allows every action of
//! each used service at the access levels the role used there (List, Read, Write, …), on any
//! resource, or the whole service; forbidden patterns become a Deny. Actions are written as
//! the fewest name prefixes (`s3:Get*`) that match no action of a level the role did not use,
//! so actions AWS adds later under those prefixes are inside the envelope too.

use super::Keep;
use crate::catalog::{AccessLevel, catalog};
use crate::policy::Policy;
use crate::usage::Usage;
use std::collections::{BTreeMap, BTreeSet};

/// How coarse the envelope is.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BoundaryGrain {
    /// Each used service's actions at the access levels used there.
    #[default]
    AccessLevel,
    /// Every action of each used service (`s3:*`).
    Service,
}

/// A proposed boundary and what was made coarser to fit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Boundary {
    pub policy: Policy,
    /// Per used service, the access levels the role used there.
    pub levels: BTreeMap<String, BTreeSet<AccessLevel>>,
    /// Services widened to `service:*` so the document fits `max_size`, largest first.
    pub coarsened: Vec<String>,
}

/// The boundary for `usage` (and `keep`, which may name action patterns), at `grain`, within
/// `max_size` characters without white space. `Err` when even one `service:*` per service does
/// not fit, or nothing was used.
pub fn boundary(
    usage: &Usage,
    keep: &[Keep],
    forbid: &[String],
    grain: BoundaryGrain,
    max_size: usize,
) -> Result<Boundary, String> {
    let cat = catalog();
    let used = (usage.actions.keys())
        .filter_map(|name| cat.action(name))
        .chain(keep.iter().flat_map(|k| cat.expand(&k.action)));
    let mut levels: BTreeMap<String, BTreeSet<AccessLevel>> = BTreeMap::new();
    for action in used {
        (levels.entry(action.service().to_string()).or_default()).insert(action.access_level());
    }
    if levels.is_empty() {
        return Err("no catalog action was used or kept: nothing to bound".to_string());
    }
    let mut patterns: BTreeMap<&str, Vec<String>> = (levels.iter())
        .map(|(service, used)| {
            let patterns = match grain {
                BoundaryGrain::Service => vec![format!("{service}:*")],
                BoundaryGrain::AccessLevel => service_patterns(service, used),
            };
            (service.as_str(), patterns)
        })
        .collect();
    let mut coarsened = Vec::new();
    loop {
        let policy = document(&patterns, forbid);
        if crate::policy::lint::policy_size(&policy.canonical_json()) <= max_size {
            return Ok(Boundary {
                policy,
                levels,
                coarsened,
            });
        }
        // The service with the most patterns becomes `service:*`.
        let Some((service, _)) = (patterns.iter())
            .filter(|(_, p)| p.len() > 1 || !p[0].ends_with(":*"))
            .max_by_key(|(s, p)| (p.len(), std::cmp::Reverse(**s)))
        else {
            return Err(format!(
                "even one service:* per used service ({}) is over {max_size} characters",
                patterns.len()
            ));
        };
        let service = *service;
        patterns.insert(service, vec![format!("{service}:*")]);
        coarsened.push(service.to_string());
    }
}

/// The fewest name prefixes of `service`'s actions that cover those at `used` levels and no
/// other; `service:*` when every action is at a used level.
fn service_patterns(service: &str, used: &BTreeSet<AccessLevel>) -> Vec<String> {
    let (inside, outside): (Vec<_>, Vec<_>) = (catalog().service_actions(service))
        .map(|a| {
            (
                a.name().to_ascii_lowercase(),
                a.name(),
                used.contains(&a.access_level()),
            )
        })
        .partition(|(_, _, inside)| *inside);
    if outside.is_empty() {
        return vec![format!("{service}:*")];
    }
    let mut prefixes: BTreeSet<String> = BTreeSet::new();
    for (lower, name, _) in &inside {
        // The shortest prefix no action outside starts with; the name itself when every
        // prefix is shared (GetObject beside GetObjectAcl).
        let shortest = (1..=name.len())
            .filter(|&n| name.is_char_boundary(n))
            .find(|&n| !outside.iter().any(|(o, _, _)| o.starts_with(&lower[..n])));
        prefixes.insert(match shortest {
            Some(n) if n < name.len() => format!("{}*", &name[..n]),
            _ => name.to_string(),
        });
    }
    // A prefix under a shorter one adds nothing.
    let wild: Vec<String> = (prefixes.iter())
        .filter_map(|p| p.strip_suffix('*').map(str::to_ascii_lowercase))
        .collect();
    (prefixes.iter())
        .filter(|p| {
            let bare = p.trim_end_matches('*').to_ascii_lowercase();
            !wild
                .iter()
                .any(|w| bare.starts_with(w.as_str()) && bare != *w)
        })
        .map(|p| format!("{service}:{p}"))
        .collect()
}

fn document(patterns: &BTreeMap<&str, Vec<String>>, forbid: &[String]) -> Policy {
    let actions: Vec<&String> = patterns.values().flatten().collect();
    let mut statements = vec![serde_json::json!({
        "Sid": "UsedServicesAtUsedAccessLevels",
        "Effect": "Allow",
        "Action": actions,
        "Resource": "*",
    })];
    if !forbid.is_empty() {
        statements.push(serde_json::json!({
            "Sid": "Forbidden",
            "Effect": "Deny",
            "Action": forbid,
            "Resource": "*",
        }));
    }
    let value = serde_json::json!({"Version": "2012-10-17", "Statement": statements});
    Policy::from_value(&value).expect("a boundary built from catalog names parses")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::analysis::allowed_actions;

    fn used(actions: &[&str]) -> Usage {
        let mut usage = Usage::default();
        for a in actions {
            usage.actions.insert(a.to_string(), Default::default());
        }
        usage
    }

    fn allowed(policy: &Policy) -> BTreeSet<String> {
        (allowed_actions(std::slice::from_ref(policy)).into_iter())
            .map(|a| a.action)
            .collect()
    }

    #[test]
    fn the_envelope_is_exactly_the_used_levels_of_the_used_services() {
        let usage = used(&["s3:GetObject", "s3:ListBucket", "dynamodb:PutItem"]);
        let b = boundary(&usage, &[], &[], BoundaryGrain::AccessLevel, 6144).unwrap();
        assert!(b.coarsened.is_empty());
        let allowed = allowed(&b.policy);
        let cat = catalog();
        for service in ["s3", "dynamodb"] {
            for action in cat.service_actions(service) {
                let inside = b.levels[service].contains(&action.access_level());
                assert_eq!(
                    allowed.contains(&action.full_name()),
                    inside,
                    "{} ({:?})",
                    action.full_name(),
                    action.access_level()
                );
            }
        }
        assert!(!allowed.iter().any(|a| a.starts_with("iam:")));
        assert_eq!(
            b.levels["s3"],
            BTreeSet::from([AccessLevel::List, AccessLevel::Read])
        );
        // Prefixes, not the hundreds of names.
        let text = b.policy.canonical_json();
        assert!(text.contains("\"s3:g*\""), "{text}");
        assert!(text.len() < 6144, "{}", text.len());
    }

    #[test]
    fn service_grain_forbid_and_keep() {
        let usage = used(&["s3:GetObject"]);
        let keep: Vec<Keep> = vec!["kms:Decrypt".parse().unwrap()];
        let forbid = vec!["s3:DeleteBucket".to_string()];
        let b = boundary(&usage, &keep, &forbid, BoundaryGrain::Service, 6144).unwrap();
        let text = b.policy.canonical_json();
        assert!(
            text.contains("\"kms:*\"") && text.contains("\"s3:*\""),
            "{text}"
        );
        assert!(
            !allowed(&b.policy).contains("s3:DeleteBucket"),
            "the Deny holds"
        );
    }

    #[test]
    fn too_big_becomes_coarser_and_nothing_used_is_an_error() {
        let usage = used(&[
            "ec2:DescribeInstances",
            "ec2:StartInstances",
            "s3:GetObject",
        ]);
        let fine = boundary(&usage, &[], &[], BoundaryGrain::AccessLevel, 6144).unwrap();
        let size = crate::policy::lint::policy_size(&fine.policy.canonical_json());
        let tight = boundary(&usage, &[], &[], BoundaryGrain::AccessLevel, size - 1).unwrap();
        assert_eq!(
            tight.coarsened[0], "ec2",
            "the service with the most patterns first"
        );
        assert!(allowed(&tight.policy).contains("ec2:TerminateInstances"));
        assert!(boundary(&usage, &[], &[], BoundaryGrain::AccessLevel, 10).is_err());
        assert!(boundary(&Usage::default(), &[], &[], BoundaryGrain::Service, 6144).is_err());
    }
}
