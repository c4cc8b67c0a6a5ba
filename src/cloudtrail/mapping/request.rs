//! The actions a call needs because of what it asked for (`request-actions.tsv`): the role it
//! passes to a service (`iam:PassRole`, which CloudTrail never logs), tags on create, a
//! version it names. Added only when the request says so, never because a call could have.

use std::sync::OnceLock;

use super::{Context, Grant, GrantCondition, Mapping, lower_key};
use crate::catalog::{ActionRef, catalog};
use crate::cloudtrail::Record;

/// The committed table; its format is described in its header.
pub(super) const REQUEST_ACTIONS: &str = include_str!("../request-actions.tsv");

/// Values one row takes from one request (a request can list many tag specifications): more
/// are left out with a note, so a crafted record cannot make one call cost without bound.
pub const MAX_VALUES_PER_ROW: usize = 16;

/// Where a row's grant points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Target {
    /// The value is an IAM role: its ARN, or a name in the call's account.
    Role,
    /// The value is an EC2 instance profile; its role is resolved elsewhere.
    Profile,
    /// The resources the action gets from the call's parameters.
    Call,
    /// An ARN template; `${value}` is the row's value.
    Template(&'static str),
}

/// One row of the table.
#[derive(Clone, Debug)]
pub(super) struct Row {
    /// `prefix<TAB>event`, lower-cased: what a call is looked up by.
    key: Vec<u8>,
    /// The parameter path that triggers the row; `None`: every call.
    pub when: Option<&'static str>,
    pub action: ActionRef<'static>,
    pub target: Target,
    pub condition: Option<GrantCondition>,
}

/// The rows, sorted case-insensitively by (prefix, event). A malformed line is a bug in the
/// committed table (a unit test reads every line); unknown actions are dropped here and caught
/// by that test.
pub(super) fn rows() -> &'static [Row] {
    static TABLE: OnceLock<Vec<Row>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table: Vec<Row> = (REQUEST_ACTIONS.lines())
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|line| {
                let fields: Vec<&'static str> = line.split('\t').collect();
                let [prefix, event, when, action, target, condition, _source] = fields[..] else {
                    panic!("request-actions.tsv: malformed line {line:?}");
                };
                let target = match target {
                    "role" => Target::Role,
                    "profile" => Target::Profile,
                    "call" => Target::Call,
                    template => Target::Template(template),
                };
                let condition = condition
                    .split_once('=')
                    .map(|(key, value)| GrantCondition { key, value });
                Some(Row {
                    key: lower_key(prefix, event).collect(),
                    when: (when != "-").then_some(when),
                    action: catalog().action(action)?,
                    target,
                    condition,
                })
            })
            .collect();
        table.sort_by(|a, b| a.key.cmp(&b.key));
        table
    })
}

/// The rows for one call: its lower-cased key built on the stack and compared as bytes, since
/// every mapped record asks.
fn rows_for(prefix: &str, event: &str) -> &'static [Row] {
    let mut buffer = [0u8; 128];
    let len = prefix.len() + 1 + event.len();
    let Some(key) = buffer.get_mut(..len) else {
        return &[];
    };
    let (head, tail) = key.split_at_mut(prefix.len());
    head.copy_from_slice(prefix.as_bytes());
    tail[0] = b'\t';
    tail[1..].copy_from_slice(event.as_bytes());
    key.make_ascii_lowercase();
    let key: &[u8] = key;
    let table = rows();
    let start = table.partition_point(|r| r.key.as_slice() < key);
    let end = start + table[start..].iter().take_while(|r| r.key == key).count();
    &table[start..end]
}

/// Adds to `mapping` what the call's request asked for beyond the call itself.
pub(super) fn add(context: &Context, prefix: &str, mapping: &mut Mapping) {
    for row in rows_for(prefix, context.event_name) {
        // Only notes name the action: most calls of a hot event (GetObject) add nothing.
        let name = || row.action.full_name();
        let values: Vec<String> = match (row.when, row.target) {
            (None, _) => vec![String::new()],
            (Some(path), Target::Call) => match context.params.present(path) {
                true => vec![String::new()],
                false => Vec::new(),
            },
            (Some(path), Target::Template(t)) if !t.contains("${value}") => {
                match context.params.present(path) {
                    true => vec![String::new()],
                    false => Vec::new(),
                }
            }
            (Some(path), _) => {
                let mut values: Vec<String> = (context.params.first_of(&[path]).into_iter())
                    .filter(|v| !v.is_empty())
                    .map(|v| v.into_owned())
                    .collect();
                values.sort();
                values.dedup();
                if values.len() > MAX_VALUES_PER_ROW {
                    mapping.notes.push(format!(
                        "{}: {} values of {path}; only the first {MAX_VALUES_PER_ROW} were \
                         read",
                        name(),
                        values.len()
                    ));
                    values.truncate(MAX_VALUES_PER_ROW);
                }
                values
            }
        };
        for value in values {
            let grant = |resource: String| Grant {
                action: row.action,
                resource,
                condition: row.condition,
            };
            match row.target {
                Target::Role => match iam_arn(context.partition, context.account, "role", &value) {
                    Some(arn) => mapping.grants.push(grant(arn)),
                    None => mapping.notes.push(format!(
                        "{}: {} is not a role ARN or name; not granted",
                        name(),
                        shown(&value)
                    )),
                },
                Target::Profile => match iam_arn(
                    context.partition,
                    context.account,
                    "instance-profile",
                    &value,
                ) {
                    Some(arn) => mapping.instance_profiles.push(arn),
                    None => mapping.notes.push(format!(
                        "{}: {} is not an instance profile ARN or name; not granted",
                        name(),
                        shown(&value)
                    )),
                },
                Target::Call => {
                    let resources = context.resources(row.action, &mut mapping.notes);
                    mapping.grants.extend(resources.into_iter().map(grant));
                }
                Target::Template(template) => {
                    if template.contains("${value}") && !is_name_segment(&value) {
                        mapping.notes.push(format!(
                            "{}: {} cannot name a resource type; not granted",
                            name(),
                            shown(&value)
                        ));
                        continue;
                    }
                    let template = template.replace("${value}", &value);
                    let (arns, missing) = match context.fill(&template, false) {
                        Ok((arns, _)) => (arns, None),
                        Err(m) => {
                            let wide = context.fill(&template, true).map(|(a, _)| a);
                            (wide.unwrap_or_default(), Some(m.variable))
                        }
                    };
                    if let Some(variable) = missing {
                        mapping.notes.push(format!(
                            "{}: no {variable} in requestParameters; used {}",
                            name(),
                            arns.join(", ")
                        ));
                    }
                    mapping.grants.extend(arns.into_iter().map(grant));
                }
            }
        }
    }
}

/// What a successful `iam:AddRoleToInstanceProfile` shows: (profile ARN, role ARN), both in
/// the call's account (names carry no path: a role with one is matched by its hint or by
/// IAM's answer instead).
pub fn profile_role(record: &Record) -> Option<(String, String)> {
    let added = record.event_name.as_deref() == Some("AddRoleToInstanceProfile")
        && record.event_source.as_deref() == Some("iam.amazonaws.com")
        && record.error_code.is_none();
    if !added {
        return None;
    }
    let context = Context::new(record, "AddRoleToInstanceProfile");
    let name = |key| context.params.strings(key).into_iter().next();
    let arn = |kind, value: &str| iam_arn(context.partition, context.account, kind, value);
    let profile = arn("instance-profile", &name("instanceProfileName")?)?;
    let role = arn("role", &name("roleName")?)?;
    Some((profile, role))
}

/// The ARN of an IAM role or instance profile (`kind`) named by ARN or by name. A name is in
/// `account` of `partition`; an ARN must be an IAM ARN of that kind. Nothing that could read
/// as a pattern (`*`, `?`, `${…}`) or that IAM would not accept as a name passes: the grant is
/// on exactly the one named.
pub fn iam_arn(partition: &str, account: &str, kind: &str, value: &str) -> Option<String> {
    const MAX_ARN: usize = 2048;
    let valid_path_and_name = |s: &str| {
        let name = s.rsplit('/').next().unwrap_or_default();
        !name.is_empty()
            && name.len() <= 128
            && s.len() <= 512 + 128
            && s.bytes().all(|b| b == b'/' || is_name_byte(b))
    };
    if let Some(rest) = value.strip_prefix("arn:") {
        let mut parts = rest.splitn(5, ':');
        let (arn_partition, service, region, arn_account, resource) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        let path_and_name = resource.strip_prefix(kind)?.strip_prefix('/')?;
        let ok = value.len() <= MAX_ARN
            && arn_partition.starts_with("aws")
            && (arn_partition.bytes()).all(|b| b.is_ascii_lowercase() || b == b'-')
            && service == "iam"
            && region.is_empty()
            && is_account(arn_account)
            && valid_path_and_name(path_and_name);
        return ok.then(|| value.to_string());
    }
    let ok = is_account(account)
        && value.len() <= 128
        && !value.is_empty()
        && value.bytes().all(is_name_byte);
    ok.then(|| format!("arn:{partition}:iam::{account}:{kind}/{value}"))
}

/// A character IAM allows in a role or instance profile name: `[\w+=,.@-]`.
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b)
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A value fit to stand for one ARN segment such as EC2's `instance` or `network-interface`.
fn is_name_segment(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A request value as a note shows it: quoted, and cut short.
fn shown(value: &str) -> String {
    const SHOWN: usize = 80;
    let cut: String = value.chars().take(SHOWN).collect();
    if cut.len() < value.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

#[cfg(test)]
mod tests;
