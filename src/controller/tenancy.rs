//! Who may point iam-tailor at which role. The role's owner decides, in AWS, not the cluster
//! tenant: iam-tailor acts only on roles tagged `iam-tailor.dev/managed-role=true`, and a
//! resource in namespace N only on a role tagged `iam-tailor.dev/namespace=N`. A role that
//! fails this is not read further (no documents, no activity) and never written.
//!
//! On top of the tags, the cluster's operators may say more in [`TenancyConfig`] (the
//! ConfigMap [`CONFIG_MAP`] in the operator's namespace, rendered from the chart's `tenancy`
//! values): which namespaces may target which role ARNs, which access roles (`assumeRoleArn`)
//! they may use and with which ExternalId (from the Secret [`EXTERNAL_IDS_SECRET`] beside it),
//! which buckets and ClusterTrails they may read, and whether they may Enforce; or, explicitly,
//! `tagsOnly: true`. Without it, the tags alone decide — unless the operator runs with
//! `--require-tenancy` (as the chart starts it): then a missing ConfigMap permits nothing, so
//! configuration drift (an upgrade without the values, a changed namespace) fails closed.

use crate::wildcard::matches;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The tag a role's owner sets to let iam-tailor manage it (value `true`); the operator's
/// IAM policy allows writes only to roles carrying it.
pub const MANAGED_ROLE_TAG: &str = "iam-tailor.dev/managed-role";
/// The tag naming the one namespace whose resources may manage the role.
pub const NAMESPACE_TAG: &str = "iam-tailor.dev/namespace";

/// Whether a resource in `namespace` may act on a role with `tags`; `Err` says why not.
pub fn permits(namespace: &str, tags: &BTreeMap<String, String>) -> Result<(), String> {
    if tags.get(MANAGED_ROLE_TAG).map(String::as_str) != Some("true") {
        return Err(format!(
            "the role is not tagged {MANAGED_ROLE_TAG}=true, so iam-tailor neither reads nor \
             changes it; its owner tags it to let iam-tailor in"
        ));
    }
    match tags.get(NAMESPACE_TAG) {
        Some(allowed) if allowed == namespace => Ok(()),
        Some(allowed) => Err(format!(
            "the role's tag {NAMESPACE_TAG}={allowed} gives it to namespace {allowed}, not \
             {namespace}"
        )),
        None => Err(format!(
            "the role has no tag {NAMESPACE_TAG}: its owner names the namespace whose \
             resources may manage it"
        )),
    }
}

/// The ConfigMap holding the tenancy configuration, in the operator's namespace.
pub const CONFIG_MAP: &str = "iam-tailor-tenancy";
/// Its key.
pub const CONFIG_KEY: &str = "tenancy.yaml";
/// The Secret (operator's namespace) holding each access role's ExternalId, by key.
pub const EXTERNAL_IDS_SECRET: &str = "iam-tailor-external-ids";

/// The cluster operators' word on tenancy; see the module docs.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenancyConfig {
    /// The owner's tags alone decide: any namespace may target the roles tagged for it, with
    /// any access role and trail (the chart's default when it is given no rules).
    #[serde(default)]
    pub tags_only: bool,
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Accounts (12 digits) any role's trust policy may name besides its own: trust to
    /// others is a finding (`status.trust`), unless a resource gives its own
    /// `spec.trust.allowedAccounts`.
    #[serde(default)]
    pub trusted_accounts: Vec<String>,
}

/// What the namespaces of one rule may do.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// Namespace names, `*` and `?` allowed (`payments-*`).
    pub namespaces: Vec<String>,
    /// Role ARN patterns they may target (`arn:aws:iam::111122223333:role/payments-*`).
    pub role_arns: Vec<String>,
    /// The access roles they may name in `assumeRoleArn`.
    #[serde(default)]
    pub access_roles: Vec<AccessRole>,
    /// Whether their resources may use mode Enforce (else Observe and Recommend only).
    #[serde(default)]
    pub enforce: bool,
    /// The buckets (`*` patterns) their specs may name in `cloudTrail.s3`, read with the
    /// operator's identity (or their access role's). Absent: any; empty: none (ClusterTrails
    /// only, which the cluster's operators admit).
    #[serde(default)]
    pub trail_buckets: Option<Vec<String>>,
    /// The ClusterTrails (`*` patterns) they may name, besides each ClusterTrail's own
    /// admission. Absent: any that admits them.
    #[serde(default)]
    pub cluster_trails: Option<Vec<String>>,
}

/// Where a resource reads its trail, as the tenancy rules see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrailRead<'a> {
    ClusterTrail(&'a str),
    /// An inline `cloudTrail.s3` bucket.
    Bucket(&'a str),
    /// No trail iam-tailor reads (Access Analyzer alone).
    Nothing,
}

/// An access role in another account, and where its ExternalId is.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessRole {
    pub arn: String,
    /// The key of [`EXTERNAL_IDS_SECRET`] holding the ExternalId the role's trust requires.
    #[serde(default)]
    pub external_id_key: Option<String>,
}

impl TenancyConfig {
    /// Parses `tenancy.yaml`; an error names the field.
    pub fn parse(text: &str) -> Result<TenancyConfig, String> {
        let config: TenancyConfig = serde_norway::from_str(text)
            .map_err(|e| format!("ConfigMap {CONFIG_MAP} key {CONFIG_KEY}: {e}"))?;
        for (i, account) in config.trusted_accounts.iter().enumerate() {
            if !crate::policy::context::is_account_id(account) {
                return Err(format!(
                    "ConfigMap {CONFIG_MAP} key {CONFIG_KEY}: trustedAccounts[{i}] {account:?} is not a 12-digit account id"
                ));
            }
        }
        if config.tags_only && !config.rules.is_empty() {
            return Err(format!(
                "ConfigMap {CONFIG_MAP} key {CONFIG_KEY}: tagsOnly: true and rules exclude each other"
            ));
        }
        for (i, rule) in config.rules.iter().enumerate() {
            if rule.namespaces.is_empty() || rule.role_arns.is_empty() {
                return Err(format!(
                    "ConfigMap {CONFIG_MAP} key {CONFIG_KEY}: rules[{i}] needs namespaces and roleArns"
                ));
            }
            for (j, access) in rule.access_roles.iter().enumerate() {
                if !access.arn.starts_with("arn:") || !access.arn.contains(":role/") {
                    return Err(format!(
                        "ConfigMap {CONFIG_MAP} key {CONFIG_KEY}: rules[{i}].accessRoles[{j}].arn {:?} is not a role ARN",
                        access.arn
                    ));
                }
            }
        }
        Ok(config)
    }

    fn rules_for(&self, namespace: &str) -> Vec<&Rule> {
        self.rules
            .iter()
            .filter(|r| r.namespaces.iter().any(|p| matches(p, namespace)))
            .collect()
    }

    /// May a resource in `namespace` use the access role `arn`? `Ok` gives the key of its
    /// ExternalId, if it has one.
    pub fn access_role(&self, namespace: &str, arn: &str) -> Result<Option<&str>, String> {
        if self.tags_only {
            return Ok(None);
        }
        self.rules_for(namespace)
            .into_iter()
            .flat_map(|r| &r.access_roles)
            .find(|a| a.arn == arn)
            .map(|a| a.external_id_key.as_deref())
            .ok_or_else(|| {
                format!(
                    "the tenancy configuration gives namespace {namespace} no access role {arn}"
                )
            })
    }

    /// May a resource in `namespace` target `role_arn`, and Enforce on it if `enforce`?
    pub fn target(&self, namespace: &str, role_arn: &str, enforce: bool) -> Result<(), String> {
        if self.tags_only {
            return Ok(());
        }
        let rules: Vec<&Rule> = self
            .rules_for(namespace)
            .into_iter()
            .filter(|r| r.role_arns.iter().any(|p| matches(p, role_arn)))
            .collect();
        if rules.is_empty() {
            return Err(format!(
                "the tenancy configuration lets namespace {namespace} target no role {role_arn}"
            ));
        }
        if enforce && !rules.iter().any(|r| r.enforce) {
            return Err(format!(
                "the tenancy configuration does not let namespace {namespace} Enforce on \
                 {role_arn}: use mode Observe or Recommend"
            ));
        }
        Ok(())
    }

    /// May a resource in `namespace` read the trail `read`? Some rule for the namespace must
    /// allow it (a rule without the list allows any).
    pub fn trail(&self, namespace: &str, read: TrailRead) -> Result<(), String> {
        if self.tags_only {
            return Ok(());
        }
        let (allowed, what) = match read {
            TrailRead::Nothing => return Ok(()),
            TrailRead::ClusterTrail(name) => (
                self.rules_for(namespace).into_iter().any(|r| {
                    (r.cluster_trails.as_ref()).is_none_or(|l| l.iter().any(|p| matches(p, name)))
                }),
                format!("ClusterTrail {name}"),
            ),
            TrailRead::Bucket(bucket) => (
                self.rules_for(namespace).into_iter().any(|r| {
                    (r.trail_buckets.as_ref()).is_none_or(|l| l.iter().any(|p| matches(p, bucket)))
                }),
                format!("bucket {bucket} (cloudTrail.s3)"),
            ),
        };
        if allowed {
            Ok(())
        } else {
            Err(format!(
                "the tenancy configuration does not let namespace {namespace} read the trail in \
                 {what}"
            ))
        }
    }
}

/// The tenancy rules in force: the tags alone, a configuration, or one that does not parse
/// (then nothing is permitted: a broken configuration fails closed).
#[derive(Clone, Debug, PartialEq)]
pub enum Tenancy {
    TagsOnly,
    Config(TenancyConfig),
    Invalid(String),
}

impl Tenancy {
    /// What `text` (the ConfigMap's `tenancy.yaml`, if there is one) says; when `required`
    /// (`--require-tenancy`), its absence permits nothing.
    pub fn from_config_map(text: Option<&str>, required: bool) -> Tenancy {
        match text.map(TenancyConfig::parse) {
            None if required => Tenancy::Invalid(format!(
                "the ConfigMap {CONFIG_MAP} is missing from the operator's namespace and the \
                 operator runs with --require-tenancy: nothing is read or written until it is back"
            )),
            None => Tenancy::TagsOnly,
            Some(Ok(config)) => Tenancy::Config(config),
            Some(Err(e)) => Tenancy::Invalid(e),
        }
    }

    /// May a resource in `namespace` use `assume_role_arn` (none: the operator's own
    /// credentials)? `Ok` gives the key of the ExternalId to send, if any.
    pub fn access_role(
        &self,
        namespace: &str,
        assume_role_arn: Option<&str>,
    ) -> Result<Option<String>, String> {
        match (self, assume_role_arn) {
            (Tenancy::Invalid(e), _) => Err(e.clone()),
            (_, None) | (Tenancy::TagsOnly, Some(_)) => Ok(None),
            (Tenancy::Config(c), Some(arn)) => {
                c.access_role(namespace, arn).map(|k| k.map(str::to_string))
            }
        }
    }

    /// The accounts the configuration lets every role trust besides its own.
    pub fn trusted_accounts(&self) -> &[String] {
        match self {
            Tenancy::Config(c) => &c.trusted_accounts,
            Tenancy::TagsOnly | Tenancy::Invalid(_) => &[],
        }
    }

    /// May a resource in `namespace` read the trail `read`?
    pub fn trail(&self, namespace: &str, read: TrailRead) -> Result<(), String> {
        match self {
            Tenancy::TagsOnly => Ok(()),
            Tenancy::Config(c) => c.trail(namespace, read),
            Tenancy::Invalid(e) => Err(e.clone()),
        }
    }

    /// May a resource in `namespace` target `role_arn` (and Enforce on it)?
    pub fn target(&self, namespace: &str, role_arn: &str, enforce: bool) -> Result<(), String> {
        match self {
            Tenancy::TagsOnly => Ok(()),
            Tenancy::Config(c) => c.target(namespace, role_arn, enforce),
            Tenancy::Invalid(e) => Err(e.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const CONFIG: &str = r#"
rules:
  - namespaces: [payments, "payments-*"]
    roleArns: ["arn:aws:iam::111122223333:role/payments-*"]
    accessRoles:
      - {arn: "arn:aws:iam::444455556666:role/iam-tailor-access", externalIdKey: payments-prod}
    enforce: true
  - namespaces: [sandbox]
    roleArns: ["arn:aws:iam::111122223333:role/*"]
"#;

    #[test]
    fn the_configuration_limits_roles_access_roles_and_enforce_per_namespace() {
        let config = TenancyConfig::parse(CONFIG).unwrap();
        let payments_role = "arn:aws:iam::111122223333:role/payments-api";
        assert_eq!(config.target("payments", payments_role, true), Ok(()));
        assert_eq!(config.target("payments-eu", payments_role, true), Ok(()));
        let other = "arn:aws:iam::111122223333:role/ledger";
        assert!(
            config
                .target("payments", other, false)
                .unwrap_err()
                .contains("no role")
        );
        // sandbox may look at any role of the account, never Enforce.
        assert_eq!(config.target("sandbox", other, false), Ok(()));
        assert!(
            config
                .target("sandbox", other, true)
                .unwrap_err()
                .contains("Enforce")
        );
        assert!(
            config.target("web", payments_role, false).is_err(),
            "no rule for web"
        );
        let access = "arn:aws:iam::444455556666:role/iam-tailor-access";
        assert_eq!(
            config.access_role("payments", access),
            Ok(Some("payments-prod"))
        );
        assert!(config.access_role("sandbox", access).is_err());
        assert!(
            config
                .access_role("payments", "arn:aws:iam::999999999999:role/x")
                .is_err()
        );
    }

    #[test]
    fn without_a_configuration_the_tags_decide_and_a_broken_one_permits_nothing() {
        let tags_only = Tenancy::from_config_map(None, false);
        assert_eq!(
            tags_only.target("any", "arn:aws:iam::1:role/x", true),
            Ok(())
        );
        assert_eq!(
            tags_only.access_role("any", Some("arn:aws:iam::1:role/a")),
            Ok(None)
        );
        let broken = Tenancy::from_config_map(Some("rules: 7"), false);
        assert!(
            broken
                .target("any", "arn:aws:iam::1:role/x", false)
                .is_err()
        );
        assert!(broken.access_role("any", None).is_err());
    }

    #[test]
    fn a_missing_configuration_permits_nothing_when_the_operator_requires_one() {
        let missing = Tenancy::from_config_map(None, true);
        let refused = missing
            .target("payments", "arn:aws:iam::111122223333:role/app", false)
            .unwrap_err();
        assert!(refused.contains("--require-tenancy"), "{refused}");
        assert!(missing.access_role("payments", None).is_err());
        assert!(missing.trail("payments", TrailRead::Nothing).is_err());
        // The chart's explicit default: the tags alone, with the trusted accounts kept.
        let tags_only = Tenancy::from_config_map(
            Some("tagsOnly: true\ntrustedAccounts: [\"444455556666\"]"),
            true,
        );
        assert_eq!(
            tags_only.target("any", "arn:aws:iam::111122223333:role/x", true),
            Ok(())
        );
        assert_eq!(
            tags_only.access_role("any", Some("arn:aws:iam::444455556666:role/a")),
            Ok(None)
        );
        assert_eq!(
            tags_only.trail("any", TrailRead::Bucket("any-bucket")),
            Ok(())
        );
        assert_eq!(tags_only.trusted_accounts(), ["444455556666"]);
        // An empty ConfigMap is not "tags only": it permits nothing.
        let empty = Tenancy::from_config_map(Some(""), true);
        assert!(
            empty
                .target("any", "arn:aws:iam::111122223333:role/x", false)
                .is_err()
        );
        let both =
            TenancyConfig::parse("tagsOnly: true\nrules: [{namespaces: [a], roleArns: [x]}]");
        assert!(both.unwrap_err().contains("exclude each other"));
    }

    #[test]
    fn rules_name_the_buckets_and_cluster_trails_a_namespace_may_read() {
        let config = TenancyConfig::parse(
            r#"
rules:
  - namespaces: [payments]
    roleArns: ["*"]
    trailBuckets: ["org-trail-*"]
    clusterTrails: [org]
  - namespaces: [web]
    roleArns: ["*"]
    trailBuckets: []
  - namespaces: [sandbox]
    roleArns: ["*"]
"#,
        )
        .unwrap();
        assert_eq!(
            config.trail("payments", TrailRead::Bucket("org-trail-eu")),
            Ok(())
        );
        let refused = config
            .trail("payments", TrailRead::Bucket("finance-secrets"))
            .unwrap_err();
        assert!(refused.contains("bucket finance-secrets"), "{refused}");
        assert_eq!(
            config.trail("payments", TrailRead::ClusterTrail("org")),
            Ok(())
        );
        assert!(
            config
                .trail("payments", TrailRead::ClusterTrail("audit"))
                .is_err()
        );
        // ClusterTrails only.
        assert!(
            config
                .trail("web", TrailRead::Bucket("org-trail-eu"))
                .is_err()
        );
        assert_eq!(
            config.trail("web", TrailRead::ClusterTrail("audit")),
            Ok(())
        );
        // No list: any.
        assert_eq!(
            config.trail("sandbox", TrailRead::Bucket("anything")),
            Ok(())
        );
        // No rule: nothing.
        assert!(
            config
                .trail("ledger", TrailRead::ClusterTrail("org"))
                .is_err()
        );
        assert_eq!(config.trail("ledger", TrailRead::Nothing), Ok(()));
    }

    #[test]
    fn trusted_accounts_come_from_a_configuration_only() {
        let text = "rules: []\ntrustedAccounts: [\"444455556666\"]";
        let config = Tenancy::from_config_map(Some(text), false);
        assert_eq!(config.trusted_accounts(), ["444455556666"]);
        assert!(
            Tenancy::from_config_map(None, false)
                .trusted_accounts()
                .is_empty()
        );
        let broken = Tenancy::from_config_map(Some("trustedAccounts: [1]\nrules: {}"), false);
        assert!(broken.trusted_accounts().is_empty());
    }

    #[test]
    fn a_bad_configuration_names_the_field() {
        for (text, needle) in [
            ("rules: [{namespaces: [a]}]", "roleArns"),
            (
                "rules: [{namespaces: [a], roleArns: [x], enforce: yes-please}]",
                "enforce",
            ),
            (
                "rules: [{namespaces: [a], roleArns: [x], accesRoles: []}]",
                "accesRoles",
            ),
            (
                "rules: [{namespaces: [a], roleArns: [x], accessRoles: [{arn: nope}]}]",
                "rules[0].accessRoles[0].arn",
            ),
            (
                "rules: []\ntrustedAccounts: [\"444455556666\", \"12345\"]",
                "trustedAccounts[1] \"12345\" is not a 12-digit account id",
            ),
        ] {
            let error = TenancyConfig::parse(text).unwrap_err();
            assert!(error.contains(needle), "{text}: {error}");
            assert!(error.contains(CONFIG_MAP), "{error}");
        }
    }

    #[test]
    fn only_roles_tagged_for_the_namespace() {
        let mine = tags(&[(MANAGED_ROLE_TAG, "true"), (NAMESPACE_TAG, "payments")]);
        assert_eq!(permits("payments", &mine), Ok(()));
        let refused = permits("web", &mine).unwrap_err();
        assert!(refused.contains("namespace payments, not web"), "{refused}");
        for other in [
            tags(&[]),
            tags(&[(NAMESPACE_TAG, "payments")]),
            tags(&[(MANAGED_ROLE_TAG, "True"), (NAMESPACE_TAG, "payments")]),
            tags(&[(MANAGED_ROLE_TAG, "true")]),
            tags(&[(MANAGED_ROLE_TAG, "true"), (NAMESPACE_TAG, "Payments")]),
            tags(&[(MANAGED_ROLE_TAG, "true"), (NAMESPACE_TAG, "payments ")]),
        ] {
            assert!(permits("payments", &other).is_err(), "{other:?}");
        }
    }
}
