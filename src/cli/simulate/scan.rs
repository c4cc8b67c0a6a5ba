//! The fast path of a `simulate --requests` line: finds each policy document and the request
//! without parsing the documents. Where the cache knows a document that the line continues
//! with, it is recognized by comparing bytes; otherwise its extent is found by matching braces,
//! and the cache parses (and so validates) it. The request, a few hundred bytes, is parsed by
//! serde. Anything unusual (an unknown or repeated key, SCP levels, `null`, a value of another
//! type) returns `None` and the line takes the serde path, which gives the precise error.

use super::BatchRequest;
use super::cache::{Cache, Doc, DocRef};
use crate::policy::PolicyKind;

/// A line's documents and its parsed `request`.
pub(super) struct Scanned<'a> {
    pub docs: Vec<Doc<'a>>,
    pub request: BatchRequest<'a>,
}

/// `Err` when the line has the fast path's shape but its request does not parse.
pub(super) fn scan<'a>(line: &'a [u8], cache: &Cache) -> Option<Result<Scanned<'a>, String>> {
    let mut p = Parser { s: line, i: 0 };
    let mut docs = Vec::with_capacity(4);
    let mut request = None;
    let mut seen = [false; 6];
    p.ws();
    p.eat(b'{')?;
    loop {
        p.ws();
        let key = p.key()?;
        p.ws();
        p.eat(b':')?;
        p.ws();
        let (slot, kind) = match key {
            b"identityPolicies" => (0, PolicyKind::Identity),
            b"permissionBoundaries" => (1, PolicyKind::PermissionsBoundary),
            b"serviceControlPolicies" => (2, PolicyKind::ServiceControlPolicy),
            b"sessionPolicies" => (3, PolicyKind::SessionPolicy),
            b"resourcePolicy" => (4, PolicyKind::ResourcePolicy),
            b"request" => (5, PolicyKind::Identity),
            _ => return None,
        };
        if std::mem::replace(&mut seen[slot], true) {
            return None;
        }
        match slot {
            4 => docs.push((kind, 0, p.document(cache)?)),
            5 => {
                // serde reads the request in place and says where it ended.
                let mut stream =
                    serde_json::Deserializer::from_slice(&line[p.i..]).into_iter::<BatchRequest>();
                match stream.next()? {
                    Ok(r) => request = Some(r),
                    Err(e) => return Some(Err(format!("request: {e}"))),
                }
                p.i += stream.byte_offset();
            }
            _ => {
                p.eat(b'[')?;
                p.ws();
                if p.peek()? == b']' {
                    p.i += 1;
                } else {
                    loop {
                        p.ws();
                        let doc = p.document(cache)?;
                        // An SCP entry with `policies` is a level: the serde path reads those.
                        if let DocRef::New(bytes) = doc
                            && kind == PolicyKind::ServiceControlPolicy
                            && memchr::memmem::find(bytes, b"\"policies\"").is_some()
                        {
                            return None;
                        }
                        docs.push((kind, 0, doc));
                        p.ws();
                        match p.next()? {
                            b',' => continue,
                            b']' => break,
                            _ => return None,
                        }
                    }
                }
            }
        }
        p.ws();
        match p.next()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    p.ws();
    if p.i != line.len() || !seen[0] {
        return None;
    }
    // Documents in the order the serde path builds them, so both share cache entries.
    docs.sort_by_key(|(kind, _, _)| order(*kind));
    Some(Ok(Scanned {
        docs,
        request: request?,
    }))
}

/// The serde path's order of kinds: identity, boundaries, session, SCPs, resource.
pub(super) fn order(kind: PolicyKind) -> u8 {
    match kind {
        PolicyKind::Identity => 0,
        PolicyKind::PermissionsBoundary => 1,
        PolicyKind::SessionPolicy => 2,
        PolicyKind::ServiceControlPolicy => 3,
        PolicyKind::ResourcePolicy => 4,
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.next()? == b).then_some(())
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// A key without escapes.
    fn key(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        let len = memchr::memchr2(b'"', b'\\', &self.s[start..])?;
        if self.s[start + len] != b'"' {
            return None;
        }
        self.i = start + len + 1;
        Some(&self.s[start..start + len])
    }

    /// A document: one the cache knows, or a new object's bytes.
    fn document(&mut self, cache: &Cache) -> Option<DocRef<'a>> {
        if self.peek()? != b'{' {
            return None;
        }
        if let Some((id, len)) = cache.known_at(&self.s[self.i..]) {
            self.i += len;
            return Some(DocRef::Known(id));
        }
        self.object().map(DocRef::New)
    }

    /// A JSON object's bytes, found by matching braces outside strings. Its contents are
    /// checked only when a document is parsed.
    fn object(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        self.eat(b'{')?;
        let mut depth = 1usize;
        while depth > 0 {
            let rest = self.s.get(self.i..)?;
            let at = memchr::memchr3(b'"', b'{', b'}', rest)?;
            self.i += at + 1;
            match rest[at] {
                b'{' => depth += 1,
                b'}' => depth -= 1,
                _ => self.skip_string()?,
            }
        }
        Some(&self.s[start..self.i])
    }

    /// Past the closing quote of a string whose opening quote was just read.
    fn skip_string(&mut self) -> Option<()> {
        loop {
            let rest = self.s.get(self.i..)?;
            let at = memchr::memchr2(b'"', b'\\', rest)?;
            self.i += at + 1;
            if rest[at] == b'"' {
                return Some(());
            }
            self.i += 1; // the escaped byte
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/\"}{*"}]}"#;

    #[test]
    fn finds_documents_and_the_request() {
        let line = format!(
            r#" {{ "request" : {{"action":"s3:GetObject"}}, "identityPolicies":[{DOC} , {DOC}],"resourcePolicy":{DOC},"permissionBoundaries":[] }} "#
        );
        let mut cache = Cache::default();
        let s = scan(line.as_bytes(), &cache).unwrap().unwrap();
        assert_eq!(s.request.action, "s3:GetObject");
        let kinds: Vec<PolicyKind> = s.docs.iter().map(|d| d.0).collect();
        assert_eq!(
            kinds,
            [
                PolicyKind::Identity,
                PolicyKind::Identity,
                PolicyKind::ResourcePolicy
            ]
        );
        assert!(s.docs.iter().all(|d| d.2 == DocRef::New(DOC.as_bytes())));
        // Once parsed, a long document is recognized by its bytes.
        let long = DOC.replace(
            r#""Effect""#,
            &format!(r#""Sid":"{}","Effect""#, "x".repeat(300)),
        );
        let line = format!(r#"{{"identityPolicies":[{long},{long}],"request":{{"action":"a"}}}}"#);
        let first = scan(line.as_bytes(), &cache).unwrap().unwrap();
        cache.set(&first.docs).unwrap();
        let again = scan(line.as_bytes(), &cache).unwrap().unwrap();
        assert!(
            again.docs.iter().all(|d| d.2 == DocRef::Known(0)),
            "{:?}",
            again.docs
        );
    }

    #[test]
    fn a_bad_request_is_an_error_of_the_request() {
        let line = format!(r#"{{"identityPolicies":[{DOC}],"request":{{"action":1}}}}"#);
        let err = scan(line.as_bytes(), &Cache::default())
            .unwrap()
            .err()
            .unwrap();
        assert!(err.starts_with("request: "), "{err}");
    }

    #[test]
    fn anything_unusual_takes_the_serde_path() {
        let r = r#""request":{"action":"a"}"#;
        for line in [
            format!(r#"{{"identityPolicies":[{DOC}]}}"#),
            format!(r#"{{{r}}}"#),
            format!(r#"{{"identityPolicies":[{DOC}],{r},{r}}}"#),
            format!(r#"{{"identityPolicies":[{DOC}],{r},"extra":1}}"#),
            format!(r#"{{"identityPolicies":[{DOC}],{r}}} trailing"#),
            format!(r#"{{"identityPolicies":[{DOC}],{r},"resourcePolicy":null}}"#),
            format!(r#"{{"identityPolicies":["text"],{r}}}"#),
            format!(
                r#"{{"identityPolicies":[{DOC}],{r},"serviceControlPolicies":[{{"orgIdentifier":"r","policies":[{DOC}]}}]}}"#
            ),
            format!(r#"{{"identityPolicies":[{{"unclosed":"}}"],{r}}}"#),
            format!(r#"{{"ident\u0069tyPolicies":[{DOC}],{r}}}"#),
            r#"{"identityPolicies":[{"#.to_string(),
            format!(r#"{{"identityPolicies":[{DOC}],"request":{{"action":"a"}}"#),
            // A backslash at the very end (found by fuzzing).
            r#"{"identityPolicies":[{"V": "s\"#.to_string(),
        ] {
            assert!(scan(line.as_bytes(), &Cache::default()).is_none(), "{line}");
        }
    }
}
