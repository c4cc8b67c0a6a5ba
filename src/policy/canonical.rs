//! The canonical form of a policy and its revision hash.
//!
//! GitOps diffs and the operator's drift check must not change when a document is merely
//! reordered or re-spelled, so every policy iam-tailor prints goes through [`Policy::canonical`]:
//! statements, actions, resources, principals and condition values sorted and de-duplicated;
//! one-element arrays and single strings both printed as arrays; actions case-folded (to the
//! catalog's spelling when the action is known, lower case otherwise). The revision is
//! `sha256:` of the compact canonical JSON.

use super::document::{
    ActionBlock, Condition, Policy, PrincipalBlock, Principals, ResourceBlock, Statement,
};
use serde::ser::{Serialize, SerializeMap, Serializer};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

impl Policy {
    /// The same policy, normalized so that equivalent spellings compare and hash equal.
    pub fn canonical(&self) -> Policy {
        let mut statements: Vec<Statement> =
            self.statements.iter().map(canonical_statement).collect();
        // Sort by the statement's own canonical JSON: a total, human-predictable order.
        let mut keyed: Vec<(String, Statement)> = statements
            .drain(..)
            .map(|s| (serde_json::to_string(&s).expect("statements serialize"), s))
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        keyed.dedup_by(|a, b| a.0 == b.0);
        Policy {
            version: self.version,
            id: self.id.clone(),
            statements: keyed.into_iter().map(|(_, s)| s).collect(),
        }
    }

    /// Compact canonical JSON: what the revision hash covers.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(&self.canonical()).expect("policies serialize")
    }

    /// Indented canonical JSON: what the CLI and the operator print.
    pub fn canonical_json_pretty(&self) -> String {
        serde_json::to_string_pretty(&self.canonical()).expect("policies serialize")
    }

    /// `sha256:<hex>` of the compact canonical JSON.
    pub fn revision(&self) -> String {
        sha256_revision(&self.canonical_json())
    }
}

/// `sha256:<hex>` of `text`: the form every iam-tailor revision takes.
pub fn sha256_revision(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in digest.iter() {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

fn sorted(items: &[String]) -> Vec<String> {
    let mut v = items.to_vec();
    v.sort();
    v.dedup();
    v
}

/// The catalog's spelling of a known action; lower case for patterns and unknown actions.
fn canonical_action(action: &str) -> String {
    match crate::catalog::catalog().action(action) {
        Some(known) => known.full_name(),
        None => action.to_ascii_lowercase(),
    }
}

fn canonical_actions(items: &[String]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|a| canonical_action(a)).collect();
    v.sort();
    v.dedup();
    v
}

fn canonical_principals(p: &Principals) -> Principals {
    match p {
        Principals::Any => Principals::Any,
        Principals::Specific(map) => {
            Principals::Specific(map.iter().map(|(k, v)| (*k, sorted(v))).collect())
        }
    }
}

fn canonical_statement(s: &Statement) -> Statement {
    let mut conditions: Vec<Condition> = s
        .conditions
        .iter()
        .map(|c| Condition {
            operator: c.operator,
            key: c.key.clone(),
            values: sorted(&c.values),
        })
        .collect();
    conditions
        .sort_by(|a, b| (a.operator.to_string(), &a.key).cmp(&(b.operator.to_string(), &b.key)));
    conditions.dedup();
    Statement {
        // An empty Sid means no Sid.
        sid: s.sid.clone().filter(|sid| !sid.is_empty()),
        effect: s.effect,
        principal: s.principal.as_ref().map(|p| match p {
            PrincipalBlock::Principal(p) => PrincipalBlock::Principal(canonical_principals(p)),
            PrincipalBlock::NotPrincipal(p) => {
                PrincipalBlock::NotPrincipal(canonical_principals(p))
            }
        }),
        action: s.action.as_ref().map(|a| match a {
            ActionBlock::Action(v) => ActionBlock::Action(canonical_actions(v)),
            ActionBlock::NotAction(v) => ActionBlock::NotAction(canonical_actions(v)),
        }),
        resource: s.resource.as_ref().map(|r| match r {
            ResourceBlock::Resource(v) => ResourceBlock::Resource(sorted(v)),
            ResourceBlock::NotResource(v) => ResourceBlock::NotResource(sorted(v)),
        }),
        conditions,
    }
}

/// Serializes in IAM's conventional element order (Version, Id, Statement; Sid, Effect, …),
/// with every list as an array.
impl Serialize for Policy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(v) = self.version {
            map.serialize_entry("Version", v.as_str())?;
        }
        if let Some(id) = &self.id {
            map.serialize_entry("Id", id)?;
        }
        map.serialize_entry("Statement", &self.statements)?;
        map.end()
    }
}

struct PrincipalsJson<'a>(&'a Principals);

impl Serialize for PrincipalsJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Principals::Any => serializer.serialize_str("*"),
            Principals::Specific(m) => {
                let mut map = serializer.serialize_map(Some(m.len()))?;
                for (kind, values) in m {
                    map.serialize_entry(kind.as_str(), values)?;
                }
                map.end()
            }
        }
    }
}

impl Serialize for Statement {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(sid) = &self.sid {
            map.serialize_entry("Sid", sid)?;
        }
        map.serialize_entry("Effect", self.effect.as_str())?;
        match &self.principal {
            Some(PrincipalBlock::Principal(p)) => {
                map.serialize_entry("Principal", &PrincipalsJson(p))?
            }
            Some(PrincipalBlock::NotPrincipal(p)) => {
                map.serialize_entry("NotPrincipal", &PrincipalsJson(p))?
            }
            None => {}
        }
        match &self.action {
            Some(ActionBlock::Action(v)) => map.serialize_entry("Action", v)?,
            Some(ActionBlock::NotAction(v)) => map.serialize_entry("NotAction", v)?,
            None => {}
        }
        match &self.resource {
            Some(ResourceBlock::Resource(v)) => map.serialize_entry("Resource", v)?,
            Some(ResourceBlock::NotResource(v)) => map.serialize_entry("NotResource", v)?,
            None => {}
        }
        if !self.conditions.is_empty() {
            let mut by_operator: BTreeMap<String, BTreeMap<&str, &Vec<String>>> = BTreeMap::new();
            for c in &self.conditions {
                by_operator
                    .entry(c.operator.to_string())
                    .or_default()
                    .insert(&c.key, &c.values);
            }
            map.serialize_entry("Condition", &by_operator)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(text: &str) -> String {
        Policy::parse(text).unwrap().revision()
    }

    #[test]
    fn equivalent_spellings_hash_equal() {
        let a = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":["s3:PutObject","S3:getobject","s3:GetObject"],"Resource":["arn:aws:s3:::b/*","arn:aws:s3:::a/*"]},
            {"Effect":"Deny","Action":"iam:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":false}}}]}"#;
        let b = r#"{"Statement":[
            {"Resource":"*","Condition":{"Bool":{"aws:SecureTransport":["false"]}},"Action":["IAM:*"],"Effect":"Deny"},
            {"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":["arn:aws:s3:::a/*","arn:aws:s3:::b/*","arn:aws:s3:::a/*"]},
            {"Effect":"Allow","Action":"s3:GetObject","Resource":["arn:aws:s3:::b/*","arn:aws:s3:::a/*"],"Sid":""}],
            "Version":"2012-10-17"}"#;
        // The third statement of `b` is covered by the second but is not identical: different policy.
        assert_ne!(rev(a), rev(b));
        let b_same = b.replace(
            r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":["arn:aws:s3:::b/*","arn:aws:s3:::a/*"],"Sid":""}"#,
            r#"{"Effect":"Allow","Action":["s3:PutObject","s3:getobject"],"Resource":["arn:aws:s3:::b/*","arn:aws:s3:::a/*"],"Sid":""}"#,
        );
        assert_eq!(rev(a), rev(&b_same));
    }

    #[test]
    fn meaningful_changes_change_the_hash() {
        let base = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#;
        let variants = [
            base.replace("Allow", "Deny"),
            base.replace("b/*", "B/*"),
            base.replace("GetObject", "PutObject"),
            base.replace("\"Action\"", "\"NotAction\""),
            base.replace("2012-10-17", "2008-10-17"),
            base.replace(
                r#""Resource""#,
                r#""Condition":{"StringEquals":{"aws:SourceVpc":"vpc-1"}},"Resource""#,
            ),
        ];
        let h = rev(base);
        for v in &variants {
            assert_ne!(h, rev(v), "{v}");
        }
    }

    #[test]
    fn canonical_json_is_ordered_and_uses_arrays() {
        let p = Policy::parse(
            r#"{"Statement":{"Resource":"*","Action":"s3:listbucket","Effect":"Allow","Sid":"A"},"Version":"2012-10-17"}"#,
        )
        .unwrap();
        assert_eq!(
            p.canonical_json(),
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":["s3:ListBucket"],"Resource":["*"]}]}"#
        );
        assert!(p.revision().starts_with("sha256:") && p.revision().len() == 71);
        // Canonical JSON parses back to the same canonical policy.
        let again = Policy::parse(&p.canonical_json()).unwrap();
        assert_eq!(again.canonical_json(), p.canonical_json());
    }
}
