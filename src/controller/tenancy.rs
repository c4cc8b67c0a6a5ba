//! Who may point iam-tailor at which role. The role's owner decides, in AWS, not the cluster
//! tenant: iam-tailor acts only on roles tagged `iam-tailor.dev/managed-role=true`, and a
//! resource in namespace N only on a role tagged `iam-tailor.dev/namespace=N`. A role that
//! fails this is not read further (no documents, no activity) and never written.

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

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
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
