//! Per-thread caches of the batch path: documents by their exact bytes (each parsed once) and
//! compiled policy sets by the documents they hold (each compiled once).

use crate::policy::{ParseError, Policy, PolicyKind, PolicySet};
use rustc_hash::{FxHashMap, FxHasher};
use std::hash::Hasher;
use std::sync::Arc;

/// Bound on cached documents and on cached sets per thread; past either, both start over
/// (batches reuse few documents).
const LIMIT: usize = 4096;

/// Bytes of a document's start that index it: enough to tell most documents apart, few
/// enough to hash in nanoseconds. Shorter documents are found by their whole bytes once the
/// scan has found their end.
const PREFIX: usize = 256;

/// A document of a line: known to the cache, or bytes not seen before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DocRef<'a> {
    Known(u32),
    New(&'a [u8]),
}

/// A document's place in a line: its kind, its organization level (SCPs) and the document.
pub(super) type Doc<'a> = (PolicyKind, u8, DocRef<'a>);

#[derive(Default)]
pub(super) struct Cache {
    /// Ids of documents of at least [`PREFIX`] bytes by the hash of their first [`PREFIX`].
    by_prefix: FxHashMap<u64, Vec<u32>>,
    /// Ids of shorter documents by their bytes.
    short: FxHashMap<Box<[u8]>, u32>,
    texts: Vec<Box<[u8]>>,
    policies: Vec<Policy>,
    sets: FxHashMap<Vec<(PolicyKind, u8, u32)>, Arc<PolicySet>>,
    /// The key of the line at hand, reused so a hit allocates nothing.
    key: Vec<(PolicyKind, u8, u32)>,
}

/// The hash of the first [`PREFIX`] bytes; `None` for fewer.
fn prefix_hash(bytes: &[u8]) -> Option<u64> {
    let mut hasher = FxHasher::default();
    hasher.write(bytes.get(..PREFIX)?);
    Some(hasher.finish())
}

impl Cache {
    /// Starts over when full; call before scanning a line, whose ids stay valid until the next.
    pub(super) fn make_room(&mut self) {
        if self.texts.len() >= LIMIT || self.sets.len() >= LIMIT {
            *self = Cache::default();
        }
    }

    /// The known document of at least [`PREFIX`] bytes that `rest` starts with, and its
    /// length. A known document parsed as valid JSON, so it is one whole object: no other
    /// known document can match here.
    pub(super) fn known_at(&self, rest: &[u8]) -> Option<(u32, usize)> {
        let candidates = self.by_prefix.get(&prefix_hash(rest)?)?;
        candidates.iter().find_map(|&id| {
            let text = &self.texts[id as usize];
            rest.starts_with(text).then_some((id, text.len()))
        })
    }

    /// The id of a document given as its whole bytes, parsing it if it is new.
    fn id(&mut self, bytes: &[u8]) -> Result<u32, ParseError> {
        let known = match prefix_hash(bytes) {
            Some(_) => self
                .known_at(bytes)
                .filter(|(_, len)| *len == bytes.len())
                .map(|(id, _)| id),
            None => self.short.get(bytes).copied(),
        };
        if let Some(id) = known {
            return Ok(id);
        }
        let text = std::str::from_utf8(bytes).map_err(|e| ParseError {
            message: format!("not UTF-8: {e}"),
            path: String::new(),
        })?;
        let policy = Policy::parse(text)?;
        let id = self.texts.len() as u32;
        match prefix_hash(bytes) {
            Some(hash) => self.by_prefix.entry(hash).or_default().push(id),
            None => {
                self.short.insert(bytes.into(), id);
            }
        }
        self.texts.push(bytes.into());
        self.policies.push(policy);
        Ok(id)
    }

    /// The compiled set of a line's documents; an error names the document that did not parse.
    pub(super) fn set(&mut self, docs: &[Doc]) -> Result<Arc<PolicySet>, String> {
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        let result = self.set_for(docs, &mut key);
        self.key = key;
        result
    }

    fn set_for(
        &mut self,
        docs: &[Doc],
        key: &mut Vec<(PolicyKind, u8, u32)>,
    ) -> Result<Arc<PolicySet>, String> {
        let mut counters = [0usize; 5];
        for &(kind, level, doc) in docs {
            let i = &mut counters[kind as usize];
            let id = match doc {
                DocRef::Known(id) => id,
                DocRef::New(bytes) => self.id(bytes).map_err(|e| {
                    let field = field(kind);
                    if kind == PolicyKind::ResourcePolicy {
                        format!("{field}: {e}")
                    } else {
                        format!("{field}[{i}]: {e}")
                    }
                })?,
            };
            *i += 1;
            key.push((kind, level, id));
        }
        if let Some(set) = self.sets.get(key.as_slice()) {
            return Ok(set.clone());
        }
        let policies = key
            .iter()
            .map(|&(kind, level, id)| (kind, level as usize, &self.policies[id as usize], None));
        let set = Arc::new(PolicySet::compile(policies));
        self.sets.insert(key.clone(), set.clone());
        Ok(set)
    }
}

fn field(kind: PolicyKind) -> &'static str {
    match kind {
        PolicyKind::Identity => "identityPolicies",
        PolicyKind::PermissionsBoundary => "permissionBoundaries",
        PolicyKind::ServiceControlPolicy => "serviceControlPolicies",
        PolicyKind::SessionPolicy => "sessionPolicies",
        PolicyKind::ResourcePolicy => "resourcePolicy",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A document of more than [`PREFIX`] bytes (its Sid pads it), and one that starts the
    /// same way.
    fn long(tail: &str) -> Vec<u8> {
        let sid = "x".repeat(PREFIX);
        format!(r#"{{"Version":"2012-10-17","Statement":{{"Sid":"{sid}","Effect":"Allow","Action":"s3:*","Resource":"*"}}{tail}}}"#).into_bytes()
    }

    #[test]
    fn documents_are_parsed_once_and_found_by_their_bytes() {
        let (a, b) = (long(""), long(r#","Id":"b""#));
        let mut cache = Cache::default();
        fn doc(d: &[u8]) -> Doc<'_> {
            (PolicyKind::Identity, 0, DocRef::New(d))
        }
        let one = cache.set(&[doc(&a)]).unwrap();
        assert!(Arc::ptr_eq(&one, &cache.set(&[doc(&a)]).unwrap()));
        let line = [a.as_slice(), b","].concat();
        assert_eq!(cache.known_at(&line), Some((0, a.len())));
        // b starts like a but is not a.
        assert_eq!(cache.known_at(&b), None);
        cache.set(&[doc(&b)]).unwrap();
        assert_eq!(cache.known_at(&b), Some((1, b.len())));
        // A short document is found by its whole bytes, once.
        let short = br#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#;
        let first = cache.set(&[doc(short)]).unwrap();
        assert!(Arc::ptr_eq(&first, &cache.set(&[doc(short)]).unwrap()));
        assert_eq!(cache.texts.len(), 3);
        let err = cache
            .set(&[doc(&a), doc(br#"{"Statement":{"Effect":"Maybe"}}"#)])
            .unwrap_err();
        assert!(err.starts_with("identityPolicies[1]:"), "{err}");
        assert!(
            cache
                .set(&[doc(b"\xff")])
                .unwrap_err()
                .contains("not UTF-8")
        );
    }
}
