//! One CloudTrail record → the IAM actions it exercised and the resources it used them on.
//!
//! The event source gives the IAM service prefix (through a table of the few renames), the
//! event name gives the action (API version suffix stripped, then a table of the calls whose
//! IAM action is named differently), and the resources come from the record's `resources`
//! list or are built from `requestParameters` through the catalog's ARN templates. Nothing is
//! invented: every action is a catalog action, and what cannot be built becomes `*` plus a note.

mod params;
mod request;
#[cfg(test)]
mod tests;

pub use request::{MAX_VALUES_PER_ROW, iam_arn, profile_role};

use std::borrow::Cow;
use std::sync::OnceLock;

use crate::catalog::{ActionRef, ActionResourceType, catalog};
use crate::cloudtrail::Record;
use crate::wildcard::escape_literal;
use params::Params;

/// One permission a record exercised.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Grant {
    /// A catalog action, never invented.
    pub action: ActionRef<'static>,
    /// An ARN, or `*`.
    pub resource: String,
    /// What the call needed only under this condition (a role passed to one service).
    pub condition: Option<GrantCondition>,
}

/// A grant's condition: `StringEquals` `key` `value`, both from the committed tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GrantCondition {
    pub key: &'static str,
    pub value: &'static str,
}

/// What a record exercised.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    /// Sorted, de-duplicated.
    pub grants: Vec<Grant>,
    /// EC2 instance profiles (ARNs) the call passed: `iam:PassRole` on their roles, to
    /// `ec2.amazonaws.com`, once the roles are known. Sorted, de-duplicated.
    pub instance_profiles: Vec<String>,
    /// Why a grant is broader than the call, e.g. an ARN that could not be built.
    pub notes: Vec<String>,
}

/// Why a record maps to nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unmapped {
    /// The eventSource has no catalog service prefix.
    UnknownService,
    /// No catalog action for the eventName.
    UnknownAction,
    /// No eventSource or eventName.
    MissingFields,
}

/// eventSource hosts (without `.amazonaws.com`) whose IAM prefix is spelled differently,
/// sorted. Mostly from iam-dataset's `cloudtrail_service_mappings` (MIT, commit cf9b6c5);
/// every other host is its own prefix.
const SERVICE_RENAMES: &[(&str, &str)] = &[
    ("agreement-marketplace", "aws-marketplace"),
    ("amazonmq", "mq"),
    ("api.sagemaker", "sagemaker"),
    ("application-insights", "applicationinsights"),
    ("bedrock-runtime", "bedrock"),
    ("billingconsole", "billing"),
    ("chime-sdk-identity", "chime"),
    ("chime-sdk-media-pipelines", "chime"),
    ("chime-sdk-meetings", "chime"),
    ("chime-sdk-messaging", "chime"),
    ("chime-sdk-voice", "chime"),
    ("cloudcontrolapi", "cloudformation"),
    ("contact-lens", "connect"),
    ("discovery-marketplace", "aws-marketplace"),
    ("email", "ses"),
    ("management-marketplace", "aws-marketplace-management"),
    ("marketplacecatalog", "aws-marketplace"),
    ("metering-marketplace", "aws-marketplace"),
    ("migrationhub", "mgh"),
    ("models.lex", "lex"),
    ("monitoring", "cloudwatch"),
    ("opensearchservice", "es"),
    ("participant-connect", "connect"),
    ("pinpoint", "mobiletargeting"),
    ("pricelist", "pricing"),
    ("qconnect", "wisdom"),
    ("rdsdata", "rds-data"),
    ("reporting-marketplace", "aws-marketplace"),
    ("runtime.lex", "lex"),
    ("runtime.sagemaker", "sagemaker"),
    ("servicecatalog-appregistry", "servicecatalog"),
    ("streams.dynamodb", "dynamodb"),
    ("tagging", "tag"),
    ("taxconsole", "tax"),
    ("transcribestreaming", "transcribe"),
];

/// eventSource ("monitoring.amazonaws.com") → IAM service prefix ("cloudwatch"), checked
/// against the catalog.
pub fn service_prefix(event_source: &str) -> Option<&'static str> {
    let host = event_source
        .strip_suffix(".amazonaws.com")
        .unwrap_or(event_source);
    let prefix = SERVICE_RENAMES
        .binary_search_by(|(h, _)| h.cmp(&host))
        .map_or(host, |i| SERVICE_RENAMES[i].1);
    // The catalog's own spelling, which lives as long as the catalog.
    catalog()
        .service_actions(prefix)
        .next()
        .map(|a| a.service())
}

/// The committed override table: `prefix<TAB>EventName<TAB>action[,action…]` lines.
const ACTION_OVERRIDES: &str = include_str!("action-overrides.tsv");

/// (prefix, event name, actions) from [`ACTION_OVERRIDES`], sorted case-insensitively.
type Override = (&'static str, &'static str, Vec<ActionRef<'static>>);

fn overrides() -> &'static [Override] {
    static TABLE: OnceLock<Vec<Override>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table: Vec<Override> = ACTION_OVERRIDES
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|line| {
                let mut fields = line.split('\t');
                let (Some(prefix), Some(name), Some(actions)) =
                    (fields.next(), fields.next(), fields.next())
                else {
                    panic!("action-overrides.tsv: malformed line {line:?}");
                };
                // Unknown actions are dropped here and caught by a unit test.
                let actions = actions
                    .split(',')
                    .filter_map(|a| catalog().action(a))
                    .collect();
                (prefix, name, actions)
            })
            .collect();
        table.sort_by(|a, b| lower_key(a.0, a.1).cmp(lower_key(b.0, b.1)));
        table
    })
}

/// Case-insensitive (prefix, name) key, compared without allocating.
fn lower_key<'a>(prefix: &'a str, name: &'a str) -> impl Iterator<Item = u8> + 'a {
    prefix
        .bytes()
        .chain([b'\t'])
        .chain(name.bytes())
        .map(|b| b.to_ascii_lowercase())
}

/// `Invoke20150331` → `Invoke`, `GetFunction20150331v2` → `GetFunction`: Lambda (and a few
/// others) log the API version after the operation name.
fn strip_api_version(event_name: &str) -> &str {
    let bytes = event_name.as_bytes();
    let mut end = bytes.len();
    // Optional `vN` after the date.
    let digits = bytes
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits > 0 && digits < end && bytes[end - digits - 1] == b'v' {
        end -= digits + 1;
    }
    let date = bytes[..end]
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let plausible = |d: &[u8]| d.starts_with(b"19") || d.starts_with(b"20");
    if date == 8 && end > 8 && plausible(&bytes[end - 8..end]) {
        &event_name[..end - 8]
    } else {
        event_name
    }
}

/// eventName → catalog actions for a service prefix (usually one; `CopyObject` gives two).
/// Empty when the catalog has no such action.
pub fn actions_for(prefix: &str, event_name: &str) -> Vec<ActionRef<'static>> {
    let name = strip_api_version(event_name);
    let table = overrides();
    if let Ok(i) = table.binary_search_by(|o| lower_key(o.0, o.1).cmp(lower_key(prefix, name))) {
        return table[i].2.clone();
    }
    let mut full = String::with_capacity(prefix.len() + 1 + name.len());
    full.push_str(prefix);
    full.push(':');
    full.push_str(name);
    catalog().action(&full).into_iter().collect()
}

/// What a user can do about an unmapped call (eventSource, eventName): which part the catalog
/// lacks, and the closest catalog action when one is close.
pub fn unmapped_hint(event_source: &str, event_name: &str) -> String {
    let Some(prefix) = service_prefix(event_source) else {
        return format!(
            "no IAM service in the catalog for {event_source}: a new service, or one iam-tailor \
             does not know the prefix of; grant what it needs with --keep"
        );
    };
    let name = strip_api_version(event_name);
    match catalog().suggest_action(&format!("{prefix}:{name}")) {
        Some(close) => format!(
            "{prefix} has no action {name}; the closest is {close}: if the call needs it, \
             --keep {close}"
        ),
        None => format!(
            "{prefix} has no action {name} in the catalog: the call may need no permission, \
             or be newer than the catalog; grant what it needs with --keep"
        ),
    }
}

/// The IAM actions and resources one record exercised.
pub fn map_record(record: &Record<'_>) -> Result<Mapping, Unmapped> {
    let (Some(source), Some(event_name)) = (&record.event_source, &record.event_name) else {
        return Err(Unmapped::MissingFields);
    };
    let prefix = service_prefix(source).ok_or(Unmapped::UnknownService)?;
    let actions = actions_for(prefix, event_name);
    if actions.is_empty() {
        return Err(Unmapped::UnknownAction);
    }
    let context = Context::new(record, strip_api_version(event_name));
    let mut mapping = Mapping::default();
    for action in actions {
        for resource in context.resources(action, &mut mapping.notes) {
            let condition = None;
            mapping.grants.push(Grant {
                action,
                resource,
                condition,
            });
        }
    }
    request::add(&context, prefix, &mut mapping);
    mapping.grants.sort();
    mapping.grants.dedup();
    mapping.instance_profiles.sort();
    mapping.instance_profiles.dedup();
    mapping.notes.sort();
    mapping.notes.dedup();
    Ok(mapping)
}

/// What ARNs are built from: the record's place and its request parameters.
struct Context<'r, 'a> {
    record: &'r Record<'a>,
    event_name: &'r str,
    partition: &'static str,
    region: &'r str,
    account: &'r str,
    params: Params<'a>,
}

impl<'r, 'a> Context<'r, 'a> {
    fn new(record: &'r Record<'a>, event_name: &'r str) -> Self {
        let region = record.aws_region.as_deref().unwrap_or("");
        let account = record
            .recipient_account_id
            .as_deref()
            .or_else(|| record.user_identity.as_ref()?.account_id.as_deref())
            .unwrap_or("");
        Context {
            record,
            event_name,
            partition: partition_of(region),
            region,
            account,
            params: Params::new(record.request_parameters),
        }
    }

    /// The resources `action` was used on: ARNs, or `["*"]` (with a note when the action
    /// could have been scoped).
    fn resources(&self, action: ActionRef<'static>, notes: &mut Vec<String>) -> Vec<String> {
        let types: Vec<ActionResourceType> = action.resource_types().collect();
        if types.is_empty() {
            return vec!["*".to_string()];
        }
        let name = action.full_name();
        // A copy reads the source and writes the target; its `resources` list both objects
        // without saying which is which, so both sides come from the parameters.
        let copies = matches!(self.event_name, "CopyObject" | "UploadPartCopy");
        if copies && action.service() == "s3" && action.name() == "GetObject" {
            if let Some(source) = self.copy_source() {
                return vec![source];
            }
            notes.push(format!(
                "{name}: no copy source in requestParameters (x-amz-copy-source); used *"
            ));
            return vec!["*".to_string()];
        }
        // ARNs the record names itself, then ARNs passed as parameters (roleArn, topicArn,
        // a functionName or secretId given as an ARN, a queue URL).
        let fits = |arn: &str| {
            !catalog()
                .resource_types_for_action_arn(&name, arn)
                .is_empty()
                || qualified_function(action, arn)
        };
        let listed: Vec<String> = (self.record.resources.iter().flatten())
            .filter(|_| !copies)
            .filter_map(|r| r.arn.as_deref())
            .filter(|arn| fits(arn))
            .map(|arn| literal(arn).into_owned())
            .collect();
        let passed: Vec<String> = self
            .params
            .arns(self.partition)
            .into_iter()
            .filter(|arn| fits(arn))
            .map(|arn| literal(arn).into_owned())
            .collect();
        let required: Vec<&ActionResourceType> = types.iter().filter(|t| t.required).collect();
        if required.len() >= 2 && !required_types_are_alternatives(action) {
            let known: Vec<String> = listed.into_iter().chain(passed).collect();
            return self.every_required(&name, &required, &known, notes);
        }
        if !listed.is_empty() {
            return listed;
        }
        if !passed.is_empty() {
            return passed;
        }
        let tagged = self.ec2_resource_ids(&types);
        if !tagged.is_empty() {
            return tagged;
        }
        match self.build(&types) {
            Ok(arns) => arns,
            Err(missing) => {
                let narrowest = self.narrowest(&types);
                notes.push(format!(
                    "{name}: no ARN could be built from requestParameters (missing {missing}); used {}",
                    narrowest.join(", ")
                ));
                narrowest
            }
        }
    }

    /// The narrowest ARNs the catalog's templates allow with what the record says (partition,
    /// region, account, the parameters it has) and `*` for the rest: among the candidate
    /// resource types (the required ones, else all), the templates that took the most request
    /// values; past [`MAX_FALLBACK_ARNS`] of them, one `header:*` per distinct ARN header;
    /// past that too, `*`.
    fn narrowest(&self, types: &[ActionResourceType]) -> Vec<String> {
        let required = types.iter().any(|t| t.required);
        let filled: Vec<(Vec<String>, usize)> = (types.iter())
            .filter(|t| t.required || !required)
            .flat_map(|t| t.resource_type.arn_templates.iter())
            .filter_map(|template| self.fill(template, true).ok())
            .collect();
        let most = filled.iter().map(|(_, n)| *n).max().unwrap_or(0);
        let mut arns: Vec<String> = (filled.into_iter())
            .filter(|(_, n)| *n == most)
            .flat_map(|(arns, _)| arns)
            .collect();
        arns.sort();
        arns.dedup();
        if arns.len() > MAX_FALLBACK_ARNS {
            arns = (arns.iter())
                .filter_map(|arn| Some(format!("{}*", &arn[..arn_header_len(arn)?])))
                .collect();
            arns.sort();
            arns.dedup();
        }
        if arns.is_empty() || arns.len() > MAX_FALLBACK_ARNS {
            return vec!["*".to_string()];
        }
        arns
    }

    /// EC2's tagging calls name their resources by id (`resourcesSet.items[].resourceId`),
    /// whose prefix says the type (`i-` an instance): one ARN per id of a type `types` has.
    fn ec2_resource_ids(&self, types: &[ActionResourceType]) -> Vec<String> {
        if !types.iter().any(|t| t.resource_type.service == "ec2") {
            return Vec::new();
        }
        let mut out = Vec::new();
        for id in self.params.first_of(&["resourcesSet.items.resourceId"]) {
            let Some(type_name) = ec2_type_of_id(&id) else {
                continue;
            };
            let template = (types.iter())
                .filter(|t| t.resource_type.service == "ec2" && t.resource_type.name == type_name)
                .flat_map(|t| t.resource_type.arn_templates.iter())
                .next();
            let head = template.and_then(|t| Some(t.rsplit_once("${")?.0));
            if let Some((arns, _)) = head.and_then(|h| self.fill(h, true).ok()) {
                let id = escape_literal(&id);
                out.extend(arns.into_iter().map(|arn| format!("{arn}{id}")));
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// ARNs for every required resource type of an action that needs them all at once
    /// (`ec2:RunInstances` needs its image, instance, network interface, security group and
    /// subnet): a policy naming only some would deny the call. Each type gets the ARNs the
    /// record names, else one built from the request, else its template with `*` for what the
    /// record does not say (still within the account and region), with a note.
    fn every_required(
        &self,
        name: &str,
        required: &[&ActionResourceType],
        known: &[String],
        notes: &mut Vec<String>,
    ) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut widened: Vec<&str> = Vec::new();
        for t in required {
            let type_name = t.resource_type.name;
            let named: Vec<String> = (known.iter())
                .filter(|arn| {
                    catalog()
                        .resource_types_for_action_arn(name, arn)
                        .iter()
                        .any(|rt| rt.resource_type.name == type_name)
                })
                .cloned()
                .collect();
            if !named.is_empty() {
                out.extend(named);
                continue;
            }
            let templates = || t.resource_type.arn_templates.iter();
            if let Some(arns) = templates().find_map(|tpl| self.fill(tpl, false).ok()) {
                out.extend(arns.0);
                continue;
            }
            if let Some(arns) = templates().find_map(|tpl| self.fill(tpl, true).ok()) {
                out.extend(arns.0);
                widened.push(type_name);
            }
        }
        if !widened.is_empty() {
            notes.push(format!(
                "{name} needs all its resource types and the record does not name its {}; \
                 used a wildcard for them within the account and region",
                widened.join(", ")
            ));
        }
        out.sort();
        out.dedup();
        out
    }

    /// The object ARN of a copy's source: `bucket/key`, possibly URL-encoded, with a
    /// leading `/` or a trailing `?versionId=`.
    fn copy_source(&self) -> Option<String> {
        let source = (self.params)
            .strings("x-amz-copy-source")
            .into_iter()
            .chain(self.params.strings("copySource"))
            .next()?;
        let source = source.split_once("?versionId=").map_or(&*source, |s| s.0);
        let source = percent_encoding::percent_decode_str(source.trim_start_matches('/'))
            .decode_utf8_lossy();
        Some(format!(
            "arn:{}:s3:::{}",
            self.partition,
            escape_literal(&source)
        ))
    }

    /// Is the SSM document of the call one of AWS's own (`AWS-…`, `Amazon…`)?
    fn aws_owned_document(&self) -> bool {
        (self.params.strings("documentName").iter())
            .any(|d| d.starts_with("AWS-") || d.starts_with("Amazon"))
    }

    /// ARNs from the catalog templates: among the required resource types (else all), the
    /// first whose variables all have values from the request. A template without request
    /// variables (bedrock's `marketplace/model-endpoint/all-access`) says nothing about the
    /// call, so it is used only when it is the sole candidate. Err names the variable missing
    /// from the template that came closest (most request variables filled).
    fn build(&self, types: &[ActionResourceType]) -> Result<Vec<String>, String> {
        let required = types.iter().any(|t| t.required);
        let candidates: Vec<_> = types.iter().filter(|t| t.required || !required).collect();
        let mut closest: Option<Missing> = None;
        let mut fixed = None;
        for t in &candidates {
            for template in t.resource_type.arn_templates.iter() {
                match self.fill(template, false) {
                    Ok((arns, filled)) if filled > 0 => return Ok(arns),
                    Ok((arns, _)) => {
                        fixed.get_or_insert(arns);
                    }
                    Err(m) if closest.as_ref().is_none_or(|c| m.filled > c.filled) => {
                        closest = Some(m);
                    }
                    Err(_) => {}
                }
            }
        }
        match fixed {
            Some(arns) if candidates.len() == 1 => Ok(arns),
            _ => Err(closest.map_or_else(|| "a request value".to_string(), |m| m.variable)),
        }
    }

    /// Expands one ARN template, with the number of request variables it took; a variable
    /// with several values (a list of instance ids) gives one ARN per value.
    /// With `wildcard`, a variable without a value becomes `*` instead of an error.
    fn fill(&self, template: &str, wildcard: bool) -> Result<(Vec<String>, usize), Missing> {
        let mut arns = vec![String::new()];
        let mut filled = 0;
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            let Some(len) = rest[start..].find('}') else {
                break;
            };
            let var = &rest[start + 2..start + len];
            let literal = &rest[..start];
            let values: Vec<Cow<str>> = match var {
                "Partition" => vec![self.partition.into()],
                "Region" if !self.region.is_empty() => vec![escape_literal(self.region)],
                // AWS-owned SSM documents (AWS-RunShellScript) have no account in their ARN.
                "Account" if template.contains(":document/") && self.aws_owned_document() => {
                    vec!["".into()]
                }
                "Account" if !self.account.is_empty() => vec![escape_literal(self.account)],
                _ => self.variable(var, template),
            };
            let values = if values.is_empty() && wildcard {
                vec![Cow::Borrowed("*")]
            } else if values.is_empty() {
                let variable = format!("${{{var}}}");
                return Err(Missing { variable, filled });
            } else {
                if !matches!(var, "Partition" | "Region" | "Account") {
                    filled += 1;
                }
                values
            };
            arns = arns
                .iter()
                .flat_map(|arn| {
                    values.iter().map(move |v| {
                        let mut next = String::with_capacity(arn.len() + literal.len() + v.len());
                        next.push_str(arn);
                        next.push_str(literal);
                        next.push_str(v);
                        next
                    })
                })
                .collect();
            rest = &rest[start + len + 1..];
        }
        for arn in &mut arns {
            arn.push_str(rest);
        }
        Ok((arns, filled))
    }

    /// Values for one template variable from the request parameters: the parameter of the
    /// same name (case-insensitive), else the known aliases, reshaped where the ARN needs it;
    /// as patterns naming exactly those values ([`escape_literal`]: a key `a*` is not `a…`).
    fn variable(&self, var: &str, template: &str) -> Vec<Cow<'a, str>> {
        let p = &self.params;
        match var {
            "ObjectName" if self.event_name == "DeleteObjects" && self.object_keys().is_empty() => {
                // The keys are not always logged; the call covered some objects.
                return vec!["*".into()];
            }
            "SecretId" => {
                return (p.strings("secretId").into_iter())
                    .filter(|s| !s.starts_with("arn:"))
                    .map(|name| format!("{}-??????", escape_literal(&name)).into())
                    .collect();
            }
            _ => {}
        }
        let values = match var {
            // Bedrock's many `${ResourceId}` types: a modelId names a foundation model, or an
            // inference profile when it starts with a geography (`us.anthropic.…`).
            "ResourceId" if template.contains(":foundation-model/") => (p.strings("modelId"))
                .into_iter()
                .filter(|m| !m.starts_with("arn:") && !is_profile_id(m))
                .collect(),
            "ResourceId" if template.contains(":inference-profile/") => (p.strings("modelId"))
                .into_iter()
                .filter(|m| is_profile_id(m))
                .collect(),
            "ObjectName" => self.object_keys(),
            "RoleNameWithPath" => p.strings("roleName"),
            "UserNameWithPath" | "AwsUserName" => p.strings("userName"),
            "ParameterNameWithoutLeadingSlash" => (p.first_of(&["name", "names"]).into_iter())
                .map(|n| strip_leading_slash(n))
                .collect(),
            // `enrich:42` stays qualified: AWS authorizes the call on the qualified ARN.
            "FunctionName" => (p.strings("functionName").into_iter())
                .filter(|f| !f.starts_with("arn:"))
                .collect(),
            "KeyId" => (p.strings("keyId").into_iter())
                .filter(|k| !k.starts_with("arn:") && !k.starts_with("alias/"))
                .collect(),
            "TableName" => {
                p.first_of(&["tableName", "requestItems.*", "transactItems.get.tableName"])
            }
            "InstanceId" => p.first_of(&[
                "instanceId",
                "instanceIds",
                "instancesSet.items.instanceId",
                "target",
            ]),
            "ImageId" => p.first_of(&["imageId", "instancesSet.items.imageId"]),
            "SecurityGroupId" => p.first_of(&["groupId"]),
            "TrailName" => p.first_of(&["trailName", "name"]),
            "SnapshotName" => p.first_of(&["snapshotName", "dBSnapshotIdentifier"]),
            "FederatedUserName" => p.first_of(&["federatedUserName", "name"]),
            _ => p.strings(var),
        };
        values.into_iter().map(literal).collect()
    }

    /// The object keys a call names.
    fn object_keys(&self) -> Vec<Cow<'a, str>> {
        (self.params).first_of(&["key", "delete.objects.key", "delete.object.key"])
    }
}

/// A value from a record as a pattern naming exactly it ([`escape_literal`]), without a copy
/// when nothing needs escaping.
fn literal<'v, V: Into<Cow<'v, str>>>(value: V) -> Cow<'v, str> {
    match value.into() {
        v if v.contains(['*', '?', '$']) => escape_literal(&v).into_owned().into(),
        v => v,
    }
}

/// How many fallback ARNs a record may give before they are folded (see `narrowest`).
pub const MAX_FALLBACK_ARNS: usize = 8;

/// Bytes up to and including an ARN's fifth `:` (partition, service, region, account).
fn arn_header_len(arn: &str) -> Option<usize> {
    arn.match_indices(':').nth(4).map(|(i, _)| i + 1)
}

/// EC2 id prefixes and the resource type they name, longest prefix first where they overlap.
const EC2_ID_TYPES: &[(&str, &str)] = &[
    ("acl-", "network-acl"),
    ("ami-", "image"),
    ("cgw-", "customer-gateway"),
    ("cr-", "capacity-reservation"),
    ("dopt-", "dhcp-options"),
    ("eigw-", "egress-only-internet-gateway"),
    ("eipalloc-", "elastic-ip"),
    ("eni-", "network-interface"),
    ("fleet-", "fleet"),
    ("h-", "dedicated-host"),
    ("i-", "instance"),
    ("igw-", "internet-gateway"),
    ("lt-", "launch-template"),
    ("nat-", "natgateway"),
    ("pcx-", "vpc-peering-connection"),
    ("pl-", "prefix-list"),
    ("rtb-", "route-table"),
    ("sfr-", "spot-fleet-request"),
    ("sg-", "security-group"),
    ("sgr-", "security-group-rule"),
    ("sir-", "spot-instances-request"),
    ("snap-", "snapshot"),
    ("subnet-", "subnet"),
    ("tgw-attach-", "transit-gateway-attachment"),
    ("tgw-rtb-", "transit-gateway-route-table"),
    ("tgw-", "transit-gateway"),
    ("vgw-", "vpn-gateway"),
    ("vol-", "volume"),
    ("vpc-", "vpc"),
    ("vpce-", "vpc-endpoint"),
    ("vpn-", "vpn-connection"),
];

/// The EC2 resource type an id names, by its prefix.
fn ec2_type_of_id(id: &str) -> Option<&'static str> {
    let valid = |rest: &str| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric());
    EC2_ID_TYPES
        .iter()
        .filter(|(prefix, _)| id.strip_prefix(prefix).is_some_and(valid))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, name)| *name)
}

/// A Lambda function ARN with a version or alias (`function:enrich:42`), for an action on
/// functions: AWS authorizes a qualified call against the qualified ARN, which the catalog
/// types as a version or alias rather than a function.
fn qualified_function(action: ActionRef<'static>, arn: &str) -> bool {
    let on_functions = action.service() == "lambda"
        && action
            .resource_types()
            .any(|t| t.resource_type.name == "function");
    let qualified = arn
        .split(':')
        .collect::<Vec<_>>()
        .as_slice()
        .get(2..)
        .is_some_and(|f| {
            f.len() == 6
                && f[0] == "lambda"
                && f[3] == "function"
                && f[4..].iter().all(|p| !p.is_empty())
        });
    on_functions && qualified
}

/// A template variable without a value, and how many request-parameter variables before it
/// had one (to name the most telling gap in the note).
struct Missing {
    variable: String,
    filled: usize,
}

/// Bedrock lists its model types (foundation model, inference profile, provisioned model, …)
/// as required, but a call uses one of them: the others are alternatives, not companions.
fn required_types_are_alternatives(action: ActionRef<'static>) -> bool {
    action.service() == "bedrock"
        && action
            .resource_types()
            .any(|t| t.required && t.resource_type.name == "foundation-model")
}

/// Cross-region inference profile ids start with a geography: `us.anthropic.claude-…`.
fn is_profile_id(model_id: &str) -> bool {
    model_id.split_once('.').is_some_and(|(geo, _)| {
        matches!(
            geo,
            "us" | "eu" | "apac" | "jp" | "au" | "ca" | "us-gov" | "global"
        )
    })
}

/// The partition a region belongs to.
fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else {
        "aws"
    }
}

/// SSM parameter ARNs hold the name without its leading slash.
fn strip_leading_slash(name: Cow<'_, str>) -> Cow<'_, str> {
    match name {
        Cow::Borrowed(s) => Cow::Borrowed(s.strip_prefix('/').unwrap_or(s)),
        Cow::Owned(s) => match s.strip_prefix('/') {
            Some(stripped) => Cow::Owned(stripped.to_string()),
            None => Cow::Owned(s),
        },
    }
}
