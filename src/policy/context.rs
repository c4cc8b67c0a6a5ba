//! The request context: condition keys and their values, plus the keys IAM derives from the
//! calling principal.

use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::cell::OnceCell;

/// A multi-valued request context; keys are case-insensitive as in AWS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// Keyed by the ASCII-lowercased key so compiled conditions (already lowercased) look up
    /// without allocating.
    entries: FxHashMap<Box<str>, Vec<String>>,
}

impl Context {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to the single `value`, replacing any previous values.
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.insert_all(key, vec![value.into()]);
    }

    /// Sets `key` to `values` (a multi-valued key such as `aws:TagKeys`); an empty list counts
    /// as a missing key, as in AWS.
    pub fn insert_all(&mut self, key: &str, values: Vec<String>) {
        self.entries
            .insert(key.to_ascii_lowercase().into_boxed_str(), values);
    }

    pub fn get(&self, key: &str) -> Option<&[String]> {
        let key: Cow<str> = if key.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(key.to_ascii_lowercase())
        } else {
            Cow::Borrowed(key)
        };
        self.get_lower(&key)
    }

    /// Lookup by an already-lowercased key.
    pub(crate) fn get_lower(&self, key: &str) -> Option<&[String]> {
        self.entries.get(key).map(Vec::as_slice)
    }
}

/// The values of one context key as seen by a condition: from the context, or derived.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Values<'a> {
    Many(&'a [String]),
    One(&'a str),
}

impl<'a> Values<'a> {
    pub(crate) fn iter(self) -> impl Iterator<Item = &'a str> {
        let (many, one) = match self {
            Values::Many(v) => (v, None),
            Values::One(s) => (&[][..], Some(s)),
        };
        many.iter().map(String::as_str).chain(one)
    }

    /// The value when there is exactly one (policy variables need a single value).
    pub(crate) fn single(self) -> Option<&'a str> {
        match self {
            Values::Many([v]) => Some(v),
            Values::Many(_) => None,
            Values::One(s) => Some(s),
        }
    }
}

/// What conditions and policy variables see for one request: the context, then the keys
/// derived from the caller where the context does not give them.
pub(crate) struct Env<'a> {
    context: &'a Context,
    caller: Caller<'a>,
    /// Values for [`DERIVED_KEYS`], in that order, computed on first use: deriving a
    /// session's `aws:PrincipalArn` allocates, and most requests never ask.
    derived: [OnceCell<Option<Cow<'a, str>>>; 4],
}

impl<'a> Env<'a> {
    pub(crate) fn new(context: &'a Context, caller: Caller<'a>) -> Self {
        Env {
            context,
            caller,
            derived: Default::default(),
        }
    }

    /// Values of a lowercased key; `None` when missing or empty.
    pub(crate) fn lookup(&self, key: &str) -> Option<Values<'_>> {
        match self.context.get_lower(key) {
            Some([]) => None,
            Some(values) => Some(Values::Many(values)),
            None => {
                let i = DERIVED_KEYS.iter().position(|k| *k == key)?;
                self.derived[i]
                    .get_or_init(|| self.caller.derived(key))
                    .as_deref()
                    .map(Values::One)
            }
        }
    }
}

/// The caller, split into the parts IAM derives condition keys from.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Caller<'a> {
    pub arn: Option<&'a str>,
    pub partition: &'a str,
    pub account: Option<&'a str>,
    /// `(role name, session)` for `arn:aws:sts::ACCT:assumed-role/NAME/SESSION`.
    pub assumed_role: Option<(&'a str, &'a str)>,
    /// The user name (last path segment) for `arn:aws:iam::ACCT:user/path/NAME`.
    pub user_name: Option<&'a str>,
    pub is_root: bool,
}

impl<'a> Caller<'a> {
    /// Parses a principal: an ARN, a bare account id, or anything else (a service name).
    pub(crate) fn parse(principal: Option<&'a str>) -> Self {
        let Some(p) = principal else {
            return Caller::default();
        };
        let mut caller = Caller {
            arn: Some(p),
            ..Caller::default()
        };
        if is_account_id(p) {
            caller.account = Some(p);
            caller.is_root = true;
            return caller;
        }
        let Some(ArnParts {
            partition,
            service,
            account,
            resource: res,
            ..
        }) = ArnParts::parse(p)
        else {
            return caller;
        };
        caller.partition = partition;
        caller.account = (!account.is_empty()).then_some(account);
        match service {
            "sts" => {
                if let Some(rest) = res.strip_prefix("assumed-role/") {
                    caller.assumed_role = rest.split_once('/');
                }
            }
            "iam" if res == "root" => caller.is_root = true,
            "iam" => {
                if let Some(path) = res.strip_prefix("user/") {
                    caller.user_name = path.rsplit('/').next();
                }
            }
            _ => {}
        }
        caller
    }

    /// The value IAM derives for `key` (lowercased), if the caller makes it obvious.
    pub(crate) fn derived(&self, key: &str) -> Option<Cow<'a, str>> {
        let account = self.account?;
        match key {
            "aws:principalaccount" => Some(Cow::Borrowed(account)),
            // A session's `aws:PrincipalArn` is its role's ARN; the role's path is not in the
            // session ARN, so this is only right for roles without a path.
            "aws:principalarn" => Some(match self.assumed_role {
                Some((role, _)) => {
                    Cow::Owned(format!("arn:{}:iam::{account}:role/{role}", self.partition))
                }
                None if self.arn == Some(account) => {
                    Cow::Owned(format!("arn:aws:iam::{account}:root"))
                }
                None => Cow::Borrowed(self.arn?),
            }),
            "aws:username" => self.user_name.map(Cow::Borrowed),
            // The root user's `aws:userid` is the account id; others are unique ids (AIDA…)
            // that the ARN does not reveal.
            "aws:userid" if self.is_root => Some(Cow::Borrowed(account)),
            _ => None,
        }
    }
}

/// The `:`-separated fields of an ARN that callers ask about (the region is not one; the
/// resource keeps its own colons).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ArnParts<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> ArnParts<'a> {
    pub(crate) fn parse(arn: &'a str) -> Option<Self> {
        let mut parts = arn.splitn(6, ':');
        if parts.next()? != "arn" {
            return None;
        }
        Some(ArnParts {
            partition: parts.next()?,
            service: parts.next()?,
            account: parts.nth(1)?,
            resource: parts.next()?,
        })
    }
}

pub(crate) fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The keys [`Caller::derived`] can supply.
const DERIVED_KEYS: &[&str] = &[
    "aws:principalaccount",
    "aws:principalarn",
    "aws:username",
    "aws:userid",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive() {
        let mut c = Context::new();
        c.insert("aws:SourceIp", "10.0.0.1");
        assert_eq!(c.get("AWS:sourceip"), Some(&["10.0.0.1".to_string()][..]));
        c.insert_all("aws:TagKeys", vec!["a".into(), "b".into()]);
        assert_eq!(c.get("aws:tagkeys").map(<[String]>::len), Some(2));
        assert_eq!(c.get("aws:other"), None);
    }

    #[test]
    fn derived_keys_from_principals() {
        let s = Caller::parse(Some("arn:aws:sts::111122223333:assumed-role/Dev/alice"));
        assert_eq!(
            s.derived("aws:principalarn").as_deref(),
            Some("arn:aws:iam::111122223333:role/Dev")
        );
        assert_eq!(
            s.derived("aws:principalaccount").as_deref(),
            Some("111122223333")
        );
        assert_eq!(s.derived("aws:username"), None);
        let u = Caller::parse(Some("arn:aws:iam::111122223333:user/ops/bob"));
        assert_eq!(u.derived("aws:username").as_deref(), Some("bob"));
        assert_eq!(u.derived("aws:userid"), None);
        let r = Caller::parse(Some("111122223333"));
        assert_eq!(
            r.derived("aws:principalarn").as_deref(),
            Some("arn:aws:iam::111122223333:root")
        );
        assert_eq!(r.derived("aws:userid").as_deref(), Some("111122223333"));
        assert!(Caller::parse(Some("ec2.amazonaws.com")).account.is_none());
    }
}
