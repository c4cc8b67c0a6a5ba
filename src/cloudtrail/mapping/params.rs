//! Lazy, borrowed access to a record's `requestParameters`.
//!
//! Mapping runs for every record, and it needs a handful of keys out of parameters that can
//! hold whole policies or user data. So the object is split into (key, raw value) pairs only
//! when a resource ARN has to be built, and values are decoded only along the paths asked for,
//! borrowing from the record's bytes unless they contain escapes.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// An object's members, keys borrowed when they have no escapes.
type Members<'a> = Vec<(Cow<'a, str>, &'a RawValue)>;

pub(super) struct Params<'a> {
    raw: Option<&'a RawValue>,
    top: OnceCell<Members<'a>>,
}

impl<'a> Params<'a> {
    pub(super) fn new(raw: Option<&'a RawValue>) -> Self {
        Params {
            raw,
            top: OnceCell::new(),
        }
    }

    fn top(&self) -> &Members<'a> {
        self.top
            .get_or_init(|| self.raw.map(members).unwrap_or_default())
    }

    /// The string (or strings, for a list) under a top-level key, matched case-insensitively.
    pub(super) fn strings(&self, key: &str) -> Vec<Cow<'a, str>> {
        let mut out = Vec::new();
        for (k, v) in self.top() {
            if k.eq_ignore_ascii_case(key) {
                collect(v, &[], &mut out);
            }
        }
        out
    }

    /// The values at the first dotted path that has any. Lists are walked through, keys match
    /// case-insensitively, and a `*` step takes an object's keys (`requestItems.*`).
    pub(super) fn first_of(&self, paths: &[&str]) -> Vec<Cow<'a, str>> {
        for path in paths {
            let steps: Vec<&str> = path.split('.').collect();
            let mut out = Vec::new();
            for (k, v) in self.top() {
                if k.eq_ignore_ascii_case(steps[0]) {
                    collect(v, &steps[1..], &mut out);
                }
            }
            if !out.is_empty() {
                return out;
            }
        }
        Vec::new()
    }

    /// Is there a value at the dotted path that says something: not `null`, `""`, `{}`, `[]`
    /// or `false` (a request's `tags`, an `x-amz-acl` header)?
    pub(super) fn present(&self, path: &str) -> bool {
        let steps: Vec<&str> = path.split('.').collect();
        (self.top().iter())
            .filter(|(k, _)| k.eq_ignore_ascii_case(steps[0]))
            .any(|(_, v)| says_something(v, &steps[1..]))
    }

    /// Top-level parameters that already are ARNs, plus the ARN of an SQS `queueUrl`.
    pub(super) fn arns(&self, partition: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (k, v) in self.top() {
            let Some(value) = string(v) else { continue };
            if value.starts_with("arn:") {
                out.push(value.into_owned());
            } else if k.eq_ignore_ascii_case("queueUrl")
                && let Some(arn) = queue_arn(&value, partition)
            {
                out.push(arn);
            }
        }
        out
    }
}

/// `https://sqs.REGION.amazonaws.com/ACCOUNT/NAME` → `arn:PARTITION:sqs:REGION:ACCOUNT:NAME`.
fn queue_arn(url: &str, partition: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let mut parts = rest.split('/');
    let host = parts.next()?;
    let (account, name) = (parts.next()?, parts.next()?);
    let region = host.strip_prefix("sqs.")?.split('.').next()?;
    let valid = |s: &str| !s.is_empty() && !s.contains(':');
    (valid(region) && valid(account) && valid(name) && parts.next().is_none())
        .then(|| format!("arn:{partition}:sqs:{region}:{account}:{name}"))
}

/// Appends the strings found at `path` below `raw`.
fn collect<'a>(raw: &'a RawValue, path: &[&str], out: &mut Vec<Cow<'a, str>>) {
    match raw.get().as_bytes().first() {
        Some(b'[') => {
            for item in serde_json::from_str::<Vec<&RawValue>>(raw.get()).unwrap_or_default() {
                collect(item, path, out);
            }
        }
        Some(b'{') => match path.split_first() {
            Some((&"*", [])) => out.extend(members(raw).into_iter().map(|(k, _)| k)),
            Some((step, rest)) => {
                for (k, v) in members(raw) {
                    if k.eq_ignore_ascii_case(step) {
                        collect(v, rest, out);
                    }
                }
            }
            None => {}
        },
        Some(b'"') if path.is_empty() => out.extend(string(raw)),
        _ => {}
    }
}

/// Whether a value at `path` below `raw` is more than `null`, `""`, `{}`, `[]` or `false`.
fn says_something(raw: &RawValue, path: &[&str]) -> bool {
    match raw.get().as_bytes().first() {
        Some(b'[') => (serde_json::from_str::<Vec<&RawValue>>(raw.get()).unwrap_or_default())
            .into_iter()
            .any(|item| says_something(item, path)),
        Some(b'{') => match path.split_first() {
            Some((step, rest)) => (members(raw).into_iter())
                .any(|(k, v)| k.eq_ignore_ascii_case(step) && says_something(v, rest)),
            None => !members(raw).is_empty(),
        },
        _ if !path.is_empty() => false,
        _ => !matches!(raw.get(), "null" | "\"\"" | "false"),
    }
}

/// A JSON string's value, borrowed when it has no escapes; None for other values.
fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// An object's members; empty for anything else (CloudTrail logs `null` or `""` at times).
fn members(raw: &RawValue) -> Members<'_> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    de.deserialize_map(MembersVisitor).unwrap_or_default()
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        #[derive(Deserialize)]
        struct Key<'a>(#[serde(borrow)] Cow<'a, str>);
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some((key, value)) = map.next_entry::<Key, &RawValue>()? {
            out.push((key.0, value));
        }
        Ok(out)
    }
}
