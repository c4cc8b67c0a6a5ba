//! Reading the catalog text (format in the parent module's docs) into index vectors whose
//! strings all borrow from the text.

use super::{
    AccessLevel, Action, Catalog, ConditionKey, NameList, ResourceType, Service, cmp_ignore_case,
};
use std::cmp::Ordering;
use std::sync::OnceLock;

/// Why catalog text could not be read; only a broken `iam-catalog.txt` produces this.
#[derive(Debug, thiserror::Error)]
#[error("IAM catalog line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

pub(super) fn parse(text: &'static str) -> Result<Catalog, ParseError> {
    let mut source = None;
    let mut updated_at = "";
    let mut license = "";
    let mut services: Vec<Service> = Vec::with_capacity(512);
    let mut actions: Vec<Action> = Vec::with_capacity(24_000);
    let mut action_resource_types = Vec::with_capacity(24_000);
    let mut resource_types: Vec<ResourceType> = Vec::with_capacity(2_500);
    let mut global_keys = Vec::with_capacity(64);
    let mut keys = Vec::with_capacity(3_000);

    for (index, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fail = |message: &str| ParseError {
            line: index + 1,
            message: message.to_owned(),
        };
        let mut fields = line.split('\t');
        let tag = fields.next().unwrap_or_default();
        let mut field = || fields.next().ok_or_else(|| fail("too few fields"));
        match tag {
            "source" => {
                let (package, version) = (field()?, field()?);
                updated_at = field()?;
                source = Some(format!("{package}@{version}"));
            }
            "license" => license = field()?,
            "G" => global_keys.push(ConditionKey {
                key: field()?,
                ty: field()?,
            }),
            "S" => {
                let (prefix, name) = (field()?, field()?);
                if services
                    .last()
                    .is_some_and(|s| cmp_ignore_case(s.prefix, prefix) != Ordering::Less)
                {
                    return Err(fail("services out of order"));
                }
                services.push(Service {
                    prefix,
                    name,
                    actions: actions.len() as u32..actions.len() as u32,
                    resource_types: resource_types.len() as u32..resource_types.len() as u32,
                });
            }
            "K" => {
                services.last().ok_or_else(|| fail("K before S"))?;
                keys.push(ConditionKey {
                    key: field()?,
                    ty: field()?,
                });
            }
            "R" => {
                let service = services.last_mut().ok_or_else(|| fail("R before S"))?;
                let (name, arns, condition_keys) = (field()?, field()?, field()?);
                if service.resource_types.end > service.resource_types.start
                    && cmp_ignore_case(resource_types[resource_types.len() - 1].name, name)
                        != Ordering::Less
                {
                    return Err(fail("resource types out of order"));
                }
                let arn_templates = NameList(arns);
                resource_types.push(ResourceType {
                    service: service.prefix,
                    name,
                    arn_template: arn_templates
                        .iter()
                        .next()
                        .ok_or_else(|| fail("no ARN template"))?,
                    arn_templates,
                    condition_keys: NameList(condition_keys),
                });
                service.resource_types.end = resource_types.len() as u32;
            }
            "A" => {
                let service_index = services.len().wrapping_sub(1) as u32;
                let service = services.last_mut().ok_or_else(|| fail("A before S"))?;
                let (name, access, types, condition_keys) =
                    (field()?, field()?, field()?, field()?);
                if service.actions.end > service.actions.start
                    && cmp_ignore_case(actions[actions.len() - 1].name, name) != Ordering::Less
                {
                    return Err(fail("actions out of order"));
                }
                if !access.bytes().all(|c| AccessLevel::from_code(c).is_some()) {
                    return Err(fail("bad access level"));
                }
                let level = access
                    .bytes()
                    .next()
                    .and_then(AccessLevel::from_code)
                    .ok_or_else(|| fail("bad access level"))?;
                let start = action_resource_types.len() as u32;
                let own =
                    service.resource_types.start as usize..service.resource_types.end as usize;
                for entry in NameList(types).iter() {
                    let (type_name, required) = match entry.strip_suffix('*') {
                        Some(n) => (n, true),
                        None => (entry, false),
                    };
                    let found = resource_types[own.clone()]
                        .binary_search_by(|rt| cmp_ignore_case(rt.name, type_name))
                        .map_err(|_| fail("unknown resource type"))?;
                    action_resource_types.push(((own.start + found) as u32, required));
                }
                actions.push(Action {
                    service: service_index,
                    name,
                    level,
                    resource_types: start..action_resource_types.len() as u32,
                    condition_keys: NameList(condition_keys),
                });
                service.actions.end = actions.len() as u32;
            }
            _ => return Err(fail("unknown record type")),
        }
        if fields.next().is_some() {
            return Err(fail("too many fields"));
        }
    }

    let source = source.ok_or(ParseError {
        line: 0,
        message: "no source record".to_owned(),
    })?;
    global_keys.sort_by(|a, b| cmp_ignore_case(a.key, b.key));
    // Global keys first, so a stable sort and dedup keep their type over a service's copy.
    keys.splice(0..0, global_keys.iter().copied());
    keys.sort_by(|a, b| cmp_ignore_case(a.key, b.key));
    keys.dedup_by(|later, earlier| later.key.eq_ignore_ascii_case(earlier.key));
    let templated_keys = (0..keys.len() as u32)
        .filter(|&i| {
            let key = keys[i as usize].key;
            key.contains("${") || key.contains('<')
        })
        .collect();

    Ok(Catalog {
        source,
        updated_at,
        license,
        services,
        actions,
        action_resource_types,
        resource_types,
        global_keys,
        keys,
        templated_keys,
        arn_index: OnceLock::new(),
    })
}
