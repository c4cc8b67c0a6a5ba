//! IAM wildcard matching: `*` matches any run of characters (also none), `?` exactly one.
//!
//! Actions compare ASCII-case-insensitively, resources and condition values case-sensitively,
//! so the caller chooses. Greedy two-pointer matching with one backtrack point: linear in
//! practice and allocation-free, which the evaluator's hot path needs.

/// Does `text` match `pattern` (`*`, `?`), comparing characters exactly?
pub fn matches(pattern: &str, text: &str) -> bool {
    match_bytes(pattern.as_bytes(), text.as_bytes(), |a, b| a == b)
}

/// Does `text` match `pattern` (`*`, `?`), ignoring ASCII case (action names)?
pub fn matches_ignore_case(pattern: &str, text: &str) -> bool {
    match_bytes(pattern.as_bytes(), text.as_bytes(), |a, b| {
        a.eq_ignore_ascii_case(&b)
    })
}

/// True when the pattern has no wildcard, so equality is enough.
pub fn is_literal(pattern: &str) -> bool {
    !pattern.bytes().any(|b| b == b'*' || b == b'?')
}

/// Stands for a literal `*` in an encoded pattern (from the `${*}` policy variable); never
/// occurs in UTF-8, so it cannot collide with text.
pub const LITERAL_STAR: u8 = 0xFE;
/// Stands for a literal `?` in an encoded pattern (from `${?}`).
pub const LITERAL_QUESTION: u8 = 0xFF;

/// Like [`matches`], for a pattern that may contain [`LITERAL_STAR`] / [`LITERAL_QUESTION`]:
/// the evaluator encodes `${*}` that way so it is not taken for a wildcard.
pub fn matches_encoded(pattern: &[u8], text: &[u8]) -> bool {
    match_bytes(pattern, text, literal_eq)
}

/// Byte equality where the escape bytes equal the characters they stand for.
fn literal_eq(p: u8, t: u8) -> bool {
    p == t || (p == LITERAL_STAR && t == b'*') || (p == LITERAL_QUESTION && t == b'?')
}

/// Is every string matched by `inner` also matched by `outer`? Exact in the sense that it never
/// answers `true` wrongly; used to prove one policy grants no more than another.
pub fn subsumes(outer: &str, inner: &str) -> bool {
    // A literal is one string: inclusion is plain matching, without the DP's allocation.
    if is_literal(inner) {
        return matches(outer, inner);
    }
    subsumes_with(outer, inner, |a, b| a == b)
}

/// [`subsumes`] comparing characters ASCII-case-insensitively (action patterns).
pub fn subsumes_ignore_case(outer: &str, inner: &str) -> bool {
    if is_literal(inner) {
        return matches_ignore_case(outer, inner);
    }
    subsumes_with(outer, inner, |a, b| a.eq_ignore_ascii_case(&b))
}

/// Could some string be matched by both patterns? Compares ignoring ASCII case, so it may answer
/// `true` for case-sensitive patterns that do not overlap, but never `false` when they do.
pub fn may_overlap(a: &str, b: &str) -> bool {
    match (is_literal(a), is_literal(b)) {
        (true, true) => return a.eq_ignore_ascii_case(b),
        (false, true) => return matches_ignore_case(a, b),
        (true, false) => return matches_ignore_case(b, a),
        (false, false) => {}
    }
    let (a, b) = (tokens(a), tokens(b));
    // can[i][j]: a[i..] and b[j..] match a common string; filled from the ends backwards.
    let w = b.len() + 1;
    let mut can = vec![false; (a.len() + 1) * w];
    for i in (0..=a.len()).rev() {
        for j in (0..=b.len()).rev() {
            can[i * w + j] = match (a.get(i), b.get(j)) {
                (None, None) => true,
                (Some(Tok::Star), _) => can[(i + 1) * w + j] || (j < b.len() && can[i * w + j + 1]),
                (_, Some(Tok::Star)) => can[i * w + j + 1] || (i < a.len() && can[(i + 1) * w + j]),
                (None, _) | (_, None) => false,
                (Some(Tok::Char(x)), Some(Tok::Char(y))) => {
                    x.eq_ignore_ascii_case(y) && can[(i + 1) * w + j + 1]
                }
                _ => can[(i + 1) * w + j + 1],
            };
        }
    }
    can[0]
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tok {
    Char(char),
    One,
    Star,
}

/// Splits a pattern into tokens, normalising every run of wildcards to its `?`s followed by one
/// `*` (`*?` ≡ `?*`), so inclusion can be decided token by token.
fn tokens(pattern: &str) -> Vec<Tok> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut star = false;
    for c in pattern.chars() {
        match c {
            '*' => star = true,
            '?' => out.push(Tok::One),
            c => {
                if std::mem::take(&mut star) {
                    out.push(Tok::Star);
                }
                out.push(Tok::Char(c));
            }
        }
    }
    if star {
        out.push(Tok::Star);
    }
    out
}

/// The text before the first wildcard.
fn literal_prefix(pattern: &str) -> &str {
    &pattern[..pattern.find(['*', '?']).unwrap_or(pattern.len())]
}

fn subsumes_with(outer: &str, inner: &str, eq: impl Fn(char, char) -> bool) -> bool {
    // Quick reject, which spares most pairs the DP: outer's literal prefix must start inner's,
    // and cannot reach past inner's own first wildcard (a literal never covers a wildcard).
    let (op, ip) = (literal_prefix(outer), literal_prefix(inner));
    if op.len() > ip.len() || !op.chars().zip(ip.chars()).all(|(a, b)| eq(a, b)) {
        return false;
    }
    let (o, n) = (tokens(outer), tokens(inner));
    // sub[j][i]: inner[i..] ⊆ outer[j..]. An outer `*` may absorb any inner token; an outer `?`
    // only a single character (`?` or a literal); a literal only the same literal.
    let w = n.len() + 1;
    let mut sub = vec![false; (o.len() + 1) * w];
    for j in (0..=o.len()).rev() {
        for i in (0..=n.len()).rev() {
            sub[j * w + i] = match (o.get(j), n.get(i)) {
                (None, inner) => inner.is_none(),
                (Some(Tok::Star), inner) => {
                    sub[(j + 1) * w + i] || (inner.is_some() && sub[j * w + i + 1])
                }
                (Some(Tok::One), Some(Tok::One | Tok::Char(_))) => sub[(j + 1) * w + i + 1],
                (Some(Tok::Char(a)), Some(Tok::Char(b))) => eq(*a, *b) && sub[(j + 1) * w + i + 1],
                _ => false,
            };
        }
    }
    sub[0]
}

/// `text` as a resource pattern naming exactly it: IAM's escapes `${*}`, `${?}` and `${$}` for
/// the characters a pattern would read as wildcards or a policy variable (IAM User Guide,
/// "IAM policy elements: Variables and tags", special characters). A value from a trail record
/// (an object key `reports/a*`) must not become a pattern matching more than it.
pub fn escape_literal(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['*', '?', '$']) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '*' => out.push_str("${*}"),
            '?' => out.push_str("${?}"),
            '$' => out.push_str("${$}"),
            c => out.push(c),
        }
    }
    out.into()
}

/// The text a pattern written by [`escape_literal`] stands for, for a request naming it: the
/// three escapes become their characters, everything else stays (a `*` the pattern has as a
/// wildcard is then a plain character of the request's resource).
pub fn unescape_literal(pattern: &str) -> std::borrow::Cow<'_, str> {
    match rewrite_escapes(pattern, ['*', '?', '$']) {
        Some((text, _)) => text.into(),
        None => pattern.into(),
    }
}

/// `pattern` with each escape `${*}`, `${?}`, `${$}` written as `to`'s character in one pass
/// (so the text it yields is never read again), and whether it holds another `${` too; `None`
/// when it holds no `${`.
fn rewrite_escapes(pattern: &str, to: [char; 3]) -> Option<(String, bool)> {
    if !pattern.contains("${") {
        return None;
    }
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    let mut other = false;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let escaped = match rest.as_bytes().get(at + 2..at + 4) {
            Some(b"*}") => Some(to[0]),
            Some(b"?}") => Some(to[1]),
            Some(b"$}") => Some(to[2]),
            _ => None,
        };
        match escaped {
            Some(c) => {
                out.push(c);
                rest = &rest[at + 4..];
            }
            None => {
                other = true;
                out.push_str("${");
                rest = &rest[at + 2..];
            }
        }
    }
    out.push_str(rest);
    Some((out, other))
}

/// Literal `*` and `?` of a decoded pattern ([`decode_escapes`]): characters no pattern or ARN
/// is expected to hold (a pattern holding them is not decoded).
const DECODED_STAR: char = '\u{E000}';
const DECODED_QUESTION: char = '\u{E001}';

/// `pattern` with IAM's escapes `${*}`, `${?}`, `${$}` turned into characters that compare
/// only with themselves, so [`subsumes`] and [`may_overlap`] treat them as the literal text
/// they are; `None` when it holds any other `${…}` (a policy variable), or the stand-in
/// characters themselves.
pub fn decode_escapes(pattern: &str) -> Option<std::borrow::Cow<'_, str>> {
    if pattern.contains([DECODED_STAR, DECODED_QUESTION]) {
        return None;
    }
    match rewrite_escapes(pattern, [DECODED_STAR, DECODED_QUESTION, '$']) {
        None => Some(pattern.into()),
        Some((decoded, other)) => (!other).then_some(decoded.into()),
    }
}

fn match_bytes(pattern: &[u8], text: &[u8], eq: impl Fn(u8, u8) -> bool) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // Position after the last `*` seen, and the text position it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p + 1, t));
                    p += 1;
                    continue;
                }
                // `?` matches one character; text is UTF-8, so skip a whole code point.
                b'?' => {
                    p += 1;
                    t += utf8_len(text[t]);
                    continue;
                }
                c if eq(c, text[t]) => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                let next = st + utf8_len(text[st]);
                star = Some((sp, next));
                p = sp;
                t = next;
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_and_question_mark() {
        assert!(matches("arn:aws:s3:::b/*", "arn:aws:s3:::b/k/x"));
        assert!(matches("arn:aws:s3:::b/*", "arn:aws:s3:::b/"));
        assert!(!matches("arn:aws:s3:::b/*", "arn:aws:s3:::b"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("*", ""));
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(!matches("a*b*c", "aXbYbZ"));
        assert!(matches("é?", "éü"));
    }

    #[test]
    fn case_rules() {
        assert!(!matches("arn:aws:s3:::Bucket", "arn:aws:s3:::bucket"));
        assert!(matches_ignore_case("s3:get*", "S3:GetObject"));
        assert!(matches_ignore_case(
            "ec2:Describe?*",
            "ec2:DescribeInstances"
        ));
        assert!(!matches_ignore_case("ec2:Describe?*", "ec2:Describe"));
    }

    #[test]
    fn encoded_literals_are_not_wildcards() {
        let p = [b'a', LITERAL_STAR, b'b'];
        assert!(matches_encoded(&p, b"a*b"));
        assert!(!matches_encoded(&p, b"axb"));
        assert!(matches_encoded(&[LITERAL_QUESTION, b'*'], b"?x"));
        assert!(!matches_encoded(&[LITERAL_QUESTION, b'*'], b"xx"));
    }

    #[test]
    fn subsumption() {
        assert!(subsumes("s3:*", "s3:Get*"));
        assert!(subsumes("s3:Get*", "s3:GetObject"));
        assert!(!subsumes("s3:GetObject", "s3:Get*"));
        assert!(!subsumes("s3:Get*", "s3:*"));
        assert!(subsumes("a*", "a?"));
        assert!(!subsumes("a?", "a*"));
        assert!(subsumes("*", "*"));
        assert!(subsumes("?*", "*?"), "wildcard runs are normalised");
        assert!(subsumes("*a*", "*a*a*"));
        assert!(!subsumes("*a*a*", "*a*"));
        assert!(!subsumes("arn:aws:s3:::B/*", "arn:aws:s3:::b/x"));
        assert!(subsumes_ignore_case("S3:get*", "s3:GetObject"));
        assert!(!subsumes("", "?"));
        assert!(subsumes("", ""));
    }

    #[test]
    fn overlap() {
        assert!(may_overlap("s3:Get*", "s3:*Object"));
        assert!(may_overlap("*", ""));
        assert!(may_overlap("a?c", "*c"));
        assert!(may_overlap("S3:get*", "s3:GetObject"));
        assert!(!may_overlap("s3:Get*", "s3:Put*"));
        assert!(!may_overlap("a?", "abc"));
        assert!(!may_overlap("*x", "*y"));
    }

    #[test]
    fn literal_text_escapes_and_decodes_to_itself_only() {
        for text in [
            "plain.txt",
            "reports/a*",
            "b?.csv",
            "${aws:username}",
            "$5",
            "*",
        ] {
            let pattern = escape_literal(text);
            assert_eq!(unescape_literal(&pattern), text, "{pattern}");
            let decoded = decode_escapes(&pattern).unwrap();
            assert!(subsumes(&decoded, &decoded), "{pattern}");
            // It names exactly the text: no other string, however close.
            for other in [
                "plain.txt",
                "reports/abc",
                "b1.csv",
                "${aws:username}x",
                "$55",
                "x",
            ] {
                if other != text {
                    assert!(
                        !subsumes(&decoded, &escape_literal(other)),
                        "{pattern} ⊇ {other}"
                    );
                }
            }
        }
        // An escaped star is covered by a wildcard, and covers none.
        let literal = decode_escapes("a${*}").unwrap();
        assert!(subsumes("a*", &literal));
        assert!(!subsumes(&literal, "a*"));
        assert!(!subsumes(&literal, &decode_escapes("a${?}").unwrap()));
        // A policy variable, or the stand-ins themselves, are not decoded.
        assert!(decode_escapes("a/${aws:username}").is_none());
        assert!(decode_escapes("a\u{E000}").is_none());
        assert_eq!(unescape_literal("a/*/${*}"), "a/*/*");
        assert_eq!(unescape_literal("${*}/${x}"), "*/${x}");
    }
}
