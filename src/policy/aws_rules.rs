//! What AWS decides whatever the policies say: calls that need no permission, resources only
//! AWS may change, and which resource policies must name the caller (trust and key policies).

use crate::policy::context::ArnParts;
use crate::policy::decision::Decision;

/// A decision no policy can change, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fixed {
    pub decision: Decision,
    pub reason: &'static str,
}

/// The fixed decision for a lowercased action on a resource, if AWS has one.
pub fn fixed(action: &str, resource: &str) -> Option<Fixed> {
    let (service, name) = action.split_once(':')?;
    match service {
        // STS API Reference, "GetCallerIdentity": "No permissions are required to perform this
        // operation", and an explicit Deny does not stop it.
        "sts" if name == "getcalleridentity" => Some(Fixed {
            decision: Decision::Allowed,
            reason: "sts:GetCallerIdentity needs no permission, whatever the policies say",
        }),
        // IAM User Guide, "AWS managed policies": AWS creates, updates and deletes them.
        "iam" if AWS_MANAGED_POLICY_WRITES.contains(&name) && is_aws_managed_policy(resource) => {
            Some(refused("AWS managed policies are changed only by AWS"))
        }
        // IAM User Guide, "Using service-linked roles": only the service changes its role.
        "iam" if SERVICE_LINKED_ROLE_WRITES.contains(&name) && is_service_linked_role(resource) => {
            Some(refused(
                "service-linked roles are changed only by their service",
            ))
        }
        // KMS Developer Guide, "Aliases in AWS KMS": `alias/aws/` is reserved for AWS managed keys.
        "kms" if ALIAS_WRITES.contains(&name) && is_reserved_alias(resource) => {
            Some(refused("KMS aliases under alias/aws/ are reserved for AWS"))
        }
        _ => None,
    }
}

fn refused(reason: &'static str) -> Fixed {
    Fixed {
        decision: Decision::ExplicitlyDenied,
        reason,
    }
}

const AWS_MANAGED_POLICY_WRITES: &[&str] = &[
    "createpolicy",
    "createpolicyversion",
    "deletepolicy",
    "deletepolicyversion",
    "setdefaultpolicyversion",
    "tagpolicy",
    "untagpolicy",
];

/// Writes to a role's permissions, trust and existence. Its description may be edited.
const SERVICE_LINKED_ROLE_WRITES: &[&str] = &[
    "attachrolepolicy",
    "createrole",
    "deleterole",
    "deleterolepermissionsboundary",
    "deleterolepolicy",
    "detachrolepolicy",
    "putrolepermissionsboundary",
    "putrolepolicy",
    "updateassumerolepolicy",
];

const ALIAS_WRITES: &[&str] = &["createalias", "deletealias", "updatealias"];

/// The ARN's (service, account, resource) parts.
fn arn_parts(arn: &str) -> Option<(&str, &str, &str)> {
    ArnParts::parse(arn).map(|p| (p.service, p.account, p.resource))
}

fn is_aws_managed_policy(arn: &str) -> bool {
    arn_parts(arn).is_some_and(|(s, a, r)| s == "iam" && a == "aws" && r.starts_with("policy/"))
}

fn is_service_linked_role(arn: &str) -> bool {
    arn_parts(arn).is_some_and(|(s, _, r)| s == "iam" && r.starts_with("role/aws-service-role/"))
}

fn is_reserved_alias(arn: &str) -> bool {
    arn_parts(arn).is_some_and(|(s, _, r)| s == "kms" && r.starts_with("alias/aws/"))
}

/// Whether the resource's own policy must allow, for a lowercased action: a role's trust
/// policy for STS calls on the role, a key policy for KMS calls on the key. IAM User Guide,
/// "Policy evaluation logic": "IAM role trust policies and KMS key policies are exceptions to
/// this logic, because they must explicitly allow access for principals." Naming the account
/// there lets the account's identity policies decide (KMS Developer Guide, "Default key
/// policy": without it "IAM policies that allow access to the key are ineffective").
pub fn resource_policy_required(action: &str, resource: &str) -> bool {
    let Some((service, _)) = action.split_once(':') else {
        return false;
    };
    match (service, arn_parts(resource)) {
        ("sts", Some(("iam", _, r))) => r.starts_with("role/"),
        ("kms", Some(("kms", _, r))) => r.starts_with("key/"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_caller_identity_is_always_allowed() {
        let f = fixed("sts:getcalleridentity", "*").unwrap();
        assert_eq!(f.decision, Decision::Allowed);
        assert_eq!(fixed("sts:getsessiontoken", "*"), None);
    }

    #[test]
    fn service_controlled_resources_refuse_writes() {
        let managed = "arn:aws:iam::aws:policy/AdministratorAccess";
        for write in [
            "iam:createpolicyversion",
            "iam:deletepolicy",
            "iam:tagpolicy",
        ] {
            assert_eq!(
                fixed(write, managed).unwrap().decision,
                Decision::ExplicitlyDenied
            );
        }
        assert_eq!(fixed("iam:getpolicy", managed), None);
        assert_eq!(fixed("iam:attachrolepolicy", managed), None);
        // A customer's policy of the same name is the customer's.
        let own = "arn:aws:iam::111122223333:policy/AdministratorAccess";
        assert_eq!(fixed("iam:createpolicyversion", own), None);
        let gov = "arn:aws-us-gov:iam::aws:policy/ReadOnlyAccess";
        assert!(fixed("iam:deletepolicyversion", gov).is_some());

        let slr = "arn:aws:iam::111122223333:role/aws-service-role/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing";
        assert!(fixed("iam:attachrolepolicy", slr).is_some());
        assert!(fixed("iam:updateassumerolepolicy", slr).is_some());
        assert_eq!(fixed("iam:updateroledescription", slr), None);
        assert_eq!(fixed("iam:deleteservicelinkedrole", slr), None);
        let role = "arn:aws:iam::111122223333:role/app";
        assert_eq!(fixed("iam:attachrolepolicy", role), None);

        let alias = "arn:aws:kms:us-east-1:111122223333:alias/aws/s3";
        for write in ["kms:createalias", "kms:updatealias", "kms:deletealias"] {
            assert!(fixed(write, alias).is_some());
        }
        assert_eq!(fixed("kms:listaliases", alias), None);
        let mine = "arn:aws:kms:us-east-1:111122223333:alias/awsome";
        assert_eq!(fixed("kms:createalias", mine), None);
    }

    #[test]
    fn trust_and_key_policies_must_allow() {
        let role = "arn:aws:iam::111122223333:role/app";
        let key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        assert!(resource_policy_required("sts:assumerole", role));
        assert!(resource_policy_required("kms:decrypt", key));
        assert!(!resource_policy_required(
            "s3:getobject",
            "arn:aws:s3:::b/k"
        ));
        assert!(!resource_policy_required(
            "kms:decrypt",
            "arn:aws:kms:us-east-1:111122223333:alias/app"
        ));
        assert!(!resource_policy_required("sts:assumerole", "*"));
    }
}
