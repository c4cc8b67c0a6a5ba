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
}
