//! Privilege-sensitive actions: what an automatic restore never gives back without a person
//! (`sensitive-actions.tsv`, each row with its public source, plus every action at the access
//! level Permissions management). A workload whose credentials are stolen is refused exactly
//! these calls first; giving them back on a refusal would hand the intruder the old privileges.

use super::{AccessLevel, catalog};
use std::sync::OnceLock;

const TABLE: &str = include_str!("sensitive-actions.tsv");

/// One row of the table: an action pattern and why it is sensitive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub pattern: &'static str,
    pub why: &'static str,
    pub source: &'static str,
}

/// The table's rows, in file order. Panics (a build-time fact, tested) on a malformed row.
pub fn rows() -> &'static [Row] {
    static ROWS: OnceLock<Vec<Row>> = OnceLock::new();
    ROWS.get_or_init(|| {
        (TABLE.lines().enumerate())
            .filter(|(_, line)| !line.trim().is_empty() && !line.starts_with('#'))
            .map(|(n, line)| match line.split('\t').collect::<Vec<_>>()[..] {
                [pattern, why, source] => Row {
                    pattern,
                    why,
                    source,
                },
                _ => panic!("sensitive-actions.tsv line {}: not 3 columns", n + 1),
            })
            .collect()
    })
}

/// Why `action` is privilege-sensitive, if it is: its row's reason, or its access level.
pub fn why(action: &str) -> Option<&'static str> {
    if let Some(row) = rows()
        .iter()
        .find(|row| crate::wildcard::matches_ignore_case(row.pattern, action))
    {
        return Some(row.why);
    }
    let level = catalog().action(action)?.access_level();
    (level == AccessLevel::PermissionsManagement)
        .then_some("changes who may do what (access level Permissions management)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_names_a_known_action_and_its_source() {
        let keys = ["sts", "iam", "rhino", "ssm", "ec2"];
        for row in rows() {
            let (service, _) = row.pattern.split_once(':').expect("service:action");
            assert!(
                !catalog().expand(row.pattern).is_empty(),
                "{} matches no action of {service} in the catalog",
                row.pattern
            );
            assert!(
                (row.source.split(", ")).all(|s| keys.contains(&s)),
                "{}: source {:?}",
                row.pattern,
                row.source
            );
            assert!(!row.why.is_empty());
        }
        assert!(rows().len() >= 30);
    }

    #[test]
    fn credentials_escalation_paths_and_permissions_management_are_sensitive() {
        for action in [
            "iam:CreateAccessKey",
            "IAM:createaccesskey",
            "sts:AssumeRole",
            "sts:AssumeRoleWithWebIdentity",
            "iam:PassRole",
            "ssm:SendCommand",
            "lambda:UpdateFunctionCode",
            // Permissions management, by the catalog.
            "iam:AttachRolePolicy",
            "iam:PutRolePolicy",
            "s3:PutBucketPolicy",
            "kms:CreateGrant",
        ] {
            assert!(why(action).is_some(), "{action}");
        }
        assert!(
            why("iam:PutRolePolicy")
                .unwrap()
                .contains("Permissions management")
        );
        for action in [
            "s3:GetObject",
            "s3:DeleteObject",
            "dynamodb:PutItem",
            "sqs:SendMessage",
            "iam:ListRoles",
            "nosuch:Thing",
        ] {
            assert_eq!(why(action), None, "{action}");
        }
    }
}
