//! Grants → statements → documents: grouping, Sids, and splitting to fit IAM's size limit.

use super::GenerateError;
use crate::catalog::{AccessLevel, catalog};
use crate::policy::lint::policy_size;
use crate::policy::{
    ActionBlock, BaseOperator, Condition, ConditionOperator, Effect, Policy, ResourceBlock,
    Statement, Version,
};
use crate::usage::Conditions;
use std::collections::BTreeMap;

/// `s3` → `S3`, `access-analyzer` → `AccessAnalyzer`; Permissions management → `PermissionsManagement`.
fn sid_base(service: &str, level: AccessLevel) -> String {
    let camel = |s: &str| -> String {
        s.split(|c: char| !c.is_ascii_alphanumeric())
            .map(|word| {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect()
    };
    camel(service) + &camel(level.as_str())
}

/// One statement's (actions, resources).
type Piece = (Vec<String>, Vec<String>);

/// A grant's conditions as `StringEquals` blocks, keys and values sorted.
pub(super) fn string_equals(conditions: Option<&Conditions>) -> Vec<Condition> {
    let operator = ConditionOperator {
        set: None,
        base: BaseOperator::StringEquals,
        if_exists: false,
    };
    (conditions.into_iter().flatten())
        .map(|(key, values)| Condition {
            operator,
            key: key.clone(),
            values: values.iter().cloned().collect(),
        })
        .collect()
}

fn statement(
    sid: String,
    actions: &[String],
    resources: &[String],
    conditions: &[Condition],
) -> Statement {
    Statement {
        sid: Some(sid),
        effect: Effect::Allow,
        principal: None,
        action: Some(ActionBlock::Action(actions.to_vec())),
        resource: Some(ResourceBlock::Resource(resources.to_vec())),
        conditions: conditions.to_vec(),
    }
}

fn document(statements: Vec<Statement>) -> Policy {
    Policy {
        version: Some(Version::V2012_10_17),
        id: None,
        statements,
    }
}

/// Characters without white space, as IAM counts them.
fn size_of<T: serde::Serialize>(value: &T) -> usize {
    policy_size(&serde_json::to_string(value).expect("policies serialize"))
}

/// Sizes in characters without white space: the compact canonical JSON is a document envelope
/// plus its statements joined by commas, so sizes add up exactly.
struct Budget {
    max_size: usize,
    /// `{"Version":"2012-10-17","Statement":[]}`.
    envelope: usize,
}

impl Budget {
    fn fits_alone(&self, statement_size: usize) -> bool {
        self.envelope + statement_size <= self.max_size
    }
}

/// Splits one statement's (actions, resources) into pieces that each fit a document alone:
/// resources first (they are what grows), then actions. `sid` is the longest Sid a piece can get.
fn split(
    budget: &Budget,
    sid: &str,
    actions: &[String],
    resources: &[String],
    conditions: &[Condition],
) -> Result<Vec<Piece>, GenerateError> {
    let size = size_of(&statement(sid.to_string(), actions, resources, conditions));
    if budget.fits_alone(size) {
        return Ok(vec![(actions.to_vec(), resources.to_vec())]);
    }
    let (list, by_resource) = match (actions.len(), resources.len()) {
        (_, r) if r > 1 => (resources, true),
        (a, _) if a > 1 => (actions, false),
        _ => {
            return Err(GenerateError::StatementTooLarge {
                action: actions[0].clone(),
                resource: resources[0].clone(),
                size: budget.envelope + size,
                max_size: budget.max_size,
            });
        }
    };
    let piece = |items: &[String]| {
        if by_resource {
            statement(sid.to_string(), actions, items, conditions)
        } else {
            statement(sid.to_string(), items, resources, conditions)
        }
    };
    // Greedy in sorted order; one more item adds its JSON string and a comma.
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < list.len() {
        let mut size = size_of(&piece(&list[start..=start]));
        let mut end = start + 1;
        while end < list.len() && budget.fits_alone(size + size_of(&list[end]) + 1) {
            size += size_of(&list[end]) + 1;
            end += 1;
        }
        let chunk = &list[start..end];
        pieces.extend(if by_resource {
            split(budget, sid, actions, chunk, conditions)?
        } else {
            split(budget, sid, chunk, resources, conditions)?
        });
        start = end;
    }
    Ok(pieces)
}

/// Lays out `grants` (action → resource patterns, each with the conditions it is granted
/// under) as canonical documents of at most `max_size` characters without white space.
///
/// Actions of one service and access level with identical resources and conditions share a
/// statement; its Sid is `S3Read`, then `S3Read2`, … when that service and level need several.
/// Statements are packed first-fit in canonical order, so the result depends only on the grants.
pub(super) fn layout(
    grants: &BTreeMap<String, BTreeMap<String, Option<Conditions>>>,
    max_size: usize,
) -> Result<Vec<Policy>, GenerateError> {
    let budget = Budget {
        max_size,
        envelope: size_of(&document(Vec::new())),
    };
    let cat = catalog();
    // (service, level) → (conditions, resources) → actions.
    type Group = BTreeMap<(Vec<Condition>, Vec<String>), Vec<String>>;
    let mut groups: BTreeMap<(String, AccessLevel), Group> = BTreeMap::new();
    for (action, resources) in grants {
        let level = cat
            .action(action)
            .expect("grants hold catalog actions")
            .access_level();
        let service = action.split(':').next().unwrap_or_default().to_string();
        let mut by_condition: BTreeMap<Vec<Condition>, Vec<String>> = BTreeMap::new();
        for (resource, conditions) in resources {
            let conditions = string_equals(conditions.as_ref());
            by_condition
                .entry(conditions)
                .or_default()
                .push(resource.clone());
        }
        let group = groups.entry((service, level)).or_default();
        for (conditions, resources) in by_condition {
            let actions = group.entry((conditions, resources)).or_default();
            actions.push(action.clone());
        }
    }
    let mut statements = Vec::new();
    for ((service, level), by_resources) in groups {
        let base = sid_base(&service, level);
        let longest_sid = format!("{base}{}", usize::MAX);
        let mut pieces = Vec::new();
        for ((conditions, resources), actions) in by_resources {
            let split = split(&budget, &longest_sid, &actions, &resources, &conditions)?;
            pieces.extend(split.into_iter().map(|piece| (piece, conditions.clone())));
        }
        for (i, ((actions, resources), conditions)) in pieces.iter().enumerate() {
            let sid = if i == 0 {
                base.clone()
            } else {
                format!("{base}{}", i + 1)
            };
            statements.push(statement(sid, actions, resources, conditions));
        }
    }
    let mut keyed: Vec<(String, Statement)> = statements
        .into_iter()
        .map(|s| (serde_json::to_string(&s).expect("statements serialize"), s))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut documents: Vec<(usize, Vec<Statement>)> = Vec::new();
    for (json, statement) in keyed {
        let size = policy_size(&json);
        match documents
            .iter_mut()
            .find(|(used, _)| used + 1 + size <= max_size)
        {
            Some((used, members)) => {
                *used += 1 + size;
                members.push(statement);
            }
            None => documents.push((budget.envelope + size, vec![statement])),
        }
    }
    Ok(documents
        .into_iter()
        .map(|(_, members)| document(members).canonical())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_name_service_and_level() {
        assert_eq!(sid_base("s3", AccessLevel::Read), "S3Read");
        assert_eq!(sid_base("dynamodb", AccessLevel::List), "DynamodbList");
        assert_eq!(
            sid_base("iam", AccessLevel::PermissionsManagement),
            "IamPermissionsManagement"
        );
        assert_eq!(
            sid_base("access-analyzer", AccessLevel::Write),
            "AccessAnalyzerWrite"
        );
    }
}
