//! The names of iam-tailor's managed policies for a role. Ownership is never read from a name
//! (only from the policy's tags for the role's RoleId); a name only has to be free, stable and
//! recognizable as iam-tailor's (`iam-tailor-*`, `iam-tailor.*`: what the operator's IAM
//! policy lets it create).

use super::{AttachedPolicy, LiveRole};

/// Which of the two name forms a role's policies take.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PolicyNames {
    /// `iam-tailor-<role>`, `iam-tailor.<n>.<role>`, `iam-tailor.boundary.<role>`.
    #[default]
    ByRoleName,
    /// The same, each followed by `@<RoleId>`: the role-name form is held by a policy not made
    /// for this role (an earlier role of this name, deleted since), so this one takes its own.
    ByRoleId,
}

/// Who holds the role-name form's first name (`iam-tailor-<role>`), as read from IAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FirstNameHolder {
    /// No policy has it.
    Nobody,
    /// A policy carrying iam-tailor's tags for this very role.
    ThisRole,
    /// A policy iam-tailor did not make for this role: an earlier role's, or anyone's.
    Other,
}

impl PolicyNames {
    /// The form the role's iam-tailor policies (`held`: attached, and its boundary) already
    /// have: a role keeps its names. `None` when it holds none.
    pub fn of_held<'a>(
        role_id: &str,
        held: impl IntoIterator<Item = &'a AttachedPolicy>,
    ) -> Option<PolicyNames> {
        let suffix = format!("@{role_id}");
        let ours: Vec<&AttachedPolicy> = (held.into_iter())
            .filter(|a| a.managed_by_iam_tailor && a.name.starts_with("iam-tailor"))
            .collect();
        if ours.is_empty() {
            return None;
        }
        Some(if ours.iter().any(|a| a.name.ends_with(&suffix)) {
            PolicyNames::ByRoleId
        } else {
            PolicyNames::ByRoleName
        })
    }

    /// The form for a role that holds none of its iam-tailor policies yet: the role-name
    /// form unless another's policy holds its first name.
    pub fn given(holder: &FirstNameHolder) -> PolicyNames {
        match holder {
            FirstNameHolder::Other => PolicyNames::ByRoleId,
            FirstNameHolder::Nobody | FirstNameHolder::ThisRole => PolicyNames::ByRoleName,
        }
    }

    fn suffix(self, role_id: &str) -> String {
        match self {
            PolicyNames::ByRoleName => String::new(),
            PolicyNames::ByRoleId => format!("@{role_id}"),
        }
    }
}

/// The name of document `index` (from 0) of a proposal for `role`, in the role-name form:
/// `iam-tailor-<role>`, then `iam-tailor.<n>.<role>` for n = 2, 3, …. No two (role, index)
/// pairs share a name: the first form has `-` where the second has `.`, and a role name
/// cannot make up the second's number (it ends at the first `.`). IAM compares both role and
/// policy names without case, so this holds there too. (The RoleId form appends `@<RoleId>`;
/// a role named to end in another's `@<RoleId>` can meet that name, and then finds it not
/// its own by the tags.)
pub fn first_form_name(role: &str, index: usize) -> String {
    match index {
        0 => format!("iam-tailor-{role}"),
        i => format!("iam-tailor.{}.{role}", i + 1),
    }
}

/// The ARN of the managed policy `name` at path `/` in the account of `role_arn`.
pub fn policy_arn(role_arn: &str, name: &str) -> String {
    let account_prefix: Vec<&str> = role_arn.split(':').take(5).collect();
    format!("{}:policy/{name}", account_prefix.join(":"))
}

impl LiveRole {
    /// The name of iam-tailor's managed policy for document `index` of the role's proposal.
    pub fn policy_name(&self, index: usize) -> String {
        first_form_name(&self.name, index) + &self.names.suffix(&self.role_id)
    }

    /// The name of iam-tailor's managed policy holding the role's declared boundary document.
    /// No proposal policy has it: theirs are `iam-tailor-<role>` and `iam-tailor.<n>.<role>`
    /// with a number `n`.
    pub fn boundary_policy_name(&self) -> String {
        format!("iam-tailor.boundary.{}", self.name) + &self.names.suffix(&self.role_id)
    }

    /// The ARN of [`LiveRole::policy_name`].
    pub fn policy_arn(&self, index: usize) -> String {
        policy_arn(&self.arn, &self.policy_name(index))
    }

    /// The ARN of [`LiveRole::boundary_policy_name`].
    pub fn boundary_policy_arn(&self) -> String {
        policy_arn(&self.arn, &self.boundary_policy_name())
    }
}

/// The roles whose iam-tailor policy `name` may be (`iam-tailor-<role>`,
/// `iam-tailor.<n>.<role>`, `iam-tailor.boundary.<role>`, each maybe with `@<RoleId>`): the
/// role as written, and without what may be a RoleId suffix.
pub fn roles_of_policy(name: &str) -> Vec<String> {
    let role = if let Some(role) = name.strip_prefix("iam-tailor-") {
        role
    } else if let Some(role) = name.strip_prefix("iam-tailor.boundary.") {
        role
    } else {
        let numbered = name
            .strip_prefix("iam-tailor.")
            .and_then(|r| r.split_once('.'));
        match numbered {
            // As `first_form_name` writes it: from 2, no leading zeros.
            Some((n, role))
                if n.parse::<usize>()
                    .is_ok_and(|i| i >= 2 && i.to_string() == n) =>
            {
                role
            }
            _ => return Vec::new(),
        }
    };
    let mut roles = vec![role.to_string()];
    if let Some((base, id)) = role.rsplit_once('@')
        && !base.is_empty()
        && id.len() >= 16
        && id.chars().all(|c| c.is_ascii_alphanumeric())
    {
        roles.push(base.to_string());
    }
    roles
}
