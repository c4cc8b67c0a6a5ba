//! Instance profiles → the roles they hold: what turns a profile a call passed (RunInstances,
//! AssociateIamInstanceProfile) into `iam:PassRole` on its role, to EC2 only.

use crate::usage::{Conditions, ProfileRoles, Usage};
use std::collections::{BTreeMap, BTreeSet};

/// The service an instance profile's role is passed to.
pub const EC2_SERVICE: &str = "ec2.amazonaws.com";

/// (account, name) of a profile ARN, whatever its path; a bare name has no account.
fn account_and_name(profile: &str) -> (Option<&str>, &str) {
    let name = profile.rsplit('/').next().unwrap_or(profile);
    let account = profile
        .strip_prefix("arn:")
        .and_then(|rest| rest.split(':').nth(3));
    (account, name)
}

/// Do `a` and `b` (ARNs, or a bare name from a hint) name the same profile? A call may name a
/// profile by name and IAM answer with its ARN and path: the account and name decide.
fn same_profile(a: &str, b: &str) -> bool {
    let ((account_a, name_a), (account_b, name_b)) = (account_and_name(a), account_and_name(b));
    name_a == name_b && (account_a.is_none() || account_b.is_none() || account_a == account_b)
}

/// Grants `iam:PassRole` on the roles `known` (and the trail, `usage.profile_roles`) says each
/// passed profile holds, under `iam:PassedToService` = EC2, as often and as lately as the
/// profile was passed. The profiles left unknown stay in `usage.instance_profiles` for the
/// report; nothing is granted for them.
pub fn resolve_instance_profiles(usage: &mut Usage, known: &ProfileRoles) {
    let passed = std::mem::take(&mut usage.instance_profiles);
    let mut resolved = Usage::default();
    for (profile, seen) in passed {
        let roles: BTreeSet<&String> = (known.iter().chain(&usage.profile_roles))
            .filter(|(candidate, _)| same_profile(candidate, &profile))
            .flat_map(|(_, roles)| roles)
            .collect();
        if roles.is_empty() {
            usage.instance_profiles.insert(profile, seen);
            continue;
        }
        let pass = resolved
            .actions
            .entry("iam:PassRole".to_string())
            .or_default();
        pass.seen.merge(&seen);
        for role in roles {
            pass.resources.entry(role.clone()).or_default().merge(&seen);
            let ec2 = BTreeSet::from([EC2_SERVICE.to_string()]);
            let condition = Conditions::from([("iam:PassedToService".to_string(), ec2)]);
            pass.conditions.insert(role.clone(), condition);
        }
    }
    usage.merge(resolved);
}

/// Profiles asked of IAM per analysis; the rest stay unresolved (reported) until the next.
pub const MAX_PROFILES_ASKED: usize = 20;

/// The passed profiles in `account` the operator asks IAM about (GetInstanceProfile answers
/// for its own account only), at most [`MAX_PROFILES_ASKED`]: (ARN as passed, name).
pub fn profiles_to_ask(usage: &Usage, account: &str) -> Vec<(String, String)> {
    (usage.instance_profiles.keys())
        .filter(|profile| account_and_name(profile).0 == Some(account))
        .map(|profile| (profile.clone(), account_and_name(profile).1.to_string()))
        .take(MAX_PROFILES_ASKED)
        .collect()
}

/// Hints given at most, on the command line or in a spec.
pub const MAX_PROFILE_HINTS: usize = 20;

/// One hint: the profile by name or ARN, the role by ARN (a name would not say its account).
/// Nothing that could read as a pattern passes. The error says which side is wrong.
pub fn profile_hint(profile: &str, role: &str) -> Result<(String, String), String> {
    use crate::cloudtrail::mapping::iam_arn;
    // A name is checked as one of some account; only its text is kept.
    let profile_ok = match profile.starts_with("arn:") {
        true => iam_arn("aws", "", "instance-profile", profile),
        false => iam_arn("aws", "000000000000", "instance-profile", profile),
    };
    if profile_ok.is_none() {
        return Err(format!(
            "{profile:?} is not an instance profile name or ARN"
        ));
    }
    let role_ok = role.starts_with("arn:") && iam_arn("aws", "", "role", role).is_some();
    if !role_ok {
        return Err(format!("{role:?} is not a role ARN"));
    }
    Ok((profile.to_string(), role.to_string()))
}

/// `--instance-profile NAME=ROLE_ARN` hints as [`ProfileRoles`]. Errors name the hint.
pub fn profile_hints(hints: &[String]) -> Result<ProfileRoles, String> {
    if hints.len() > MAX_PROFILE_HINTS {
        return Err(format!(
            "--instance-profile: {} hints, more than {MAX_PROFILE_HINTS}",
            hints.len()
        ));
    }
    let mut out: ProfileRoles = BTreeMap::new();
    for hint in hints {
        let error = |why: String| format!("--instance-profile {hint:?}: {why}");
        let (profile, role) = hint
            .split_once('=')
            .ok_or_else(|| error("expected NAME=ROLE_ARN".to_string()))?;
        let (profile, role) = profile_hint(profile, role).map_err(error)?;
        out.entry(profile).or_default().insert(role);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "2026-11-20T10:00:00Z";
    const PROFILE: &str = "arn:aws:iam::111122223333:instance-profile/web";
    const ROLE: &str = "arn:aws:iam::111122223333:role/web";

    #[test]
    fn a_known_profile_becomes_pass_role_to_ec2_on_its_role() {
        let mut usage = Usage::default();
        usage.record_instance_profile(PROFILE, T);
        usage.record_instance_profile(PROFILE, T);
        usage.record_instance_profile("arn:aws:iam::111122223333:instance-profile/other", T);
        // IAM's answer carries the profile's path; the call named it without.
        let known = ProfileRoles::from([(
            "arn:aws:iam::111122223333:instance-profile/fleet/web".to_string(),
            BTreeSet::from([ROLE.to_string()]),
        )]);
        resolve_instance_profiles(&mut usage, &known);
        let pass = &usage.actions["iam:PassRole"];
        assert_eq!(pass.resources[ROLE].count, 2);
        assert_eq!(
            pass.conditions[ROLE]["iam:PassedToService"],
            BTreeSet::from([EC2_SERVICE.to_string()])
        );
        // The other one stays unresolved, and nothing is granted for it.
        assert_eq!(usage.instance_profiles.len(), 1);
        assert_eq!(pass.resources.len(), 1);
    }

    #[test]
    fn another_account_s_profile_of_the_same_name_is_another_profile() {
        let mut usage = Usage::default();
        usage.record_instance_profile(PROFILE, T);
        let known = ProfileRoles::from([(
            "arn:aws:iam::444455556666:instance-profile/web".to_string(),
            BTreeSet::from(["arn:aws:iam::444455556666:role/web".to_string()]),
        )]);
        resolve_instance_profiles(&mut usage, &known);
        assert!(usage.actions.is_empty());
        assert_eq!(usage.instance_profiles.len(), 1);
    }

    #[test]
    fn the_trail_resolves_what_it_showed() {
        let mut usage = Usage::default();
        usage.record_instance_profile(PROFILE, T);
        (usage.profile_roles).insert(PROFILE.to_string(), BTreeSet::from([ROLE.to_string()]));
        resolve_instance_profiles(&mut usage, &ProfileRoles::new());
        assert!(usage.instance_profiles.is_empty());
        assert!(usage.actions["iam:PassRole"].resources.contains_key(ROLE));
    }

    #[test]
    fn only_the_account_s_own_profiles_are_asked_and_at_most_so_many() {
        let mut usage = Usage::default();
        usage.record_instance_profile("arn:aws:iam::444455556666:instance-profile/x", T);
        for i in 0..30 {
            let profile = format!("arn:aws:iam::111122223333:instance-profile/path/p{i:02}");
            usage.record_instance_profile(&profile, T);
        }
        let asked = profiles_to_ask(&usage, "111122223333");
        assert_eq!(asked.len(), MAX_PROFILES_ASKED);
        assert_eq!(asked[0].1, "p00");
        assert!(profiles_to_ask(&usage, "999999999999").is_empty());
    }

    #[test]
    fn hints_name_a_profile_and_a_role_arn() {
        let hints = profile_hints(&[format!("web={ROLE}"), format!("{PROFILE}={ROLE}")]).unwrap();
        assert_eq!(hints.len(), 2);
        for bad in [
            "web".to_string(),
            "web=web-role".to_string(),
            "web=arn:aws:iam::111122223333:role/*".to_string(),
            format!("we*={ROLE}"),
            format!("arn:aws:iam::111122223333:role/web={ROLE}"),
        ] {
            let error = profile_hints(std::slice::from_ref(&bad)).unwrap_err();
            assert!(error.contains("--instance-profile"), "{error}");
        }
    }
}
