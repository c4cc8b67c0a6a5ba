//! Policy variables (`${aws:username}`, `${aws:PrincipalTag/team, 'default'}`, `${*}`) in
//! resource patterns and condition values, split once so evaluation only concatenates.

use crate::policy::context::{Env, Values};
use crate::wildcard::{LITERAL_QUESTION, LITERAL_STAR};

/// A pattern or value as bytes, fixed or with variables to fill in per request.
///
/// In wildcard contexts (`escape`), a literal `*`/`?` — from `${*}`, `${?}`, a substituted value
/// or a default — is encoded as [`LITERAL_STAR`]/[`LITERAL_QUESTION`], so that only the `*` and
/// `?` the author wrote act as wildcards.
#[derive(Clone, Debug)]
pub(crate) enum Template {
    Fixed(Box<[u8]>),
    Parts { parts: Box<[Part]>, escape: bool },
}

#[derive(Clone, Debug)]
pub(crate) enum Part {
    Text(Box<[u8]>),
    Var {
        /// ASCII-lowercased, as context keys are case-insensitive.
        key: Box<str>,
        default: Option<Box<[u8]>>,
    },
}

impl Template {
    /// Compiles `text`; `substitute` is false under policy version 2008-10-17, where `${…}` is
    /// plain text.
    pub(crate) fn compile(text: &str, substitute: bool, escape: bool) -> Template {
        if !substitute || !text.contains("${") {
            return Template::Fixed(text.as_bytes().into());
        }
        let mut parts = Vec::new();
        let mut literal = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            let Some(len) = rest[start..].find('}') else {
                break;
            };
            literal.extend_from_slice(&rest.as_bytes()[..start]);
            let inner = rest[start + 2..start + len].trim();
            rest = &rest[start + len + 1..];
            match inner {
                "*" | "?" | "$" => push_literal(&mut literal, inner, escape),
                _ => {
                    let (key, default) = match inner.split_once(',') {
                        Some((k, d)) => (k.trim(), Some(unquote(d.trim()))),
                        None => (inner, None),
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal).into()));
                    }
                    parts.push(Part::Var {
                        key: key.to_ascii_lowercase().into(),
                        default: default.map(|d| {
                            let mut v = Vec::new();
                            push_literal(&mut v, d, escape);
                            v.into()
                        }),
                    });
                }
            }
        }
        literal.extend_from_slice(rest.as_bytes());
        if parts.is_empty() {
            return Template::Fixed(literal.into());
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal.into()));
        }
        Template::Parts {
            parts: parts.into(),
            escape,
        }
    }

    /// The bytes for this request, built in `buf` when there are variables; `None` when a
    /// variable has no value and no default, so the pattern matches nothing.
    pub(crate) fn resolve<'s>(&'s self, env: &Env, buf: &'s mut Vec<u8>) -> Option<&'s [u8]> {
        let (parts, escape) = match self {
            Template::Fixed(bytes) => return Some(bytes),
            Template::Parts { parts, escape } => (parts, *escape),
        };
        buf.clear();
        for part in parts.iter() {
            match part {
                Part::Text(t) => buf.extend_from_slice(t),
                // A multi-valued key has no single value to substitute, so it counts as missing.
                Part::Var { key, default } => match env.lookup(key).and_then(Values::single) {
                    Some(v) => push_literal(buf, v, escape),
                    None => buf.extend_from_slice(default.as_deref()?),
                },
            }
        }
        Some(buf)
    }
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .unwrap_or(s)
}

/// Appends `text`, encoding `*` and `?` as literals when `escape` is set.
fn push_literal(out: &mut Vec<u8>, text: &str, escape: bool) {
    out.extend(text.bytes().map(|b| match b {
        b'*' if escape => LITERAL_STAR,
        b'?' if escape => LITERAL_QUESTION,
        b => b,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::context::{Caller, Context};

    fn resolve(text: &str, substitute: bool, escape: bool, ctx: &Context) -> Option<Vec<u8>> {
        let env = Env::new(ctx, Caller::default());
        let mut buf = Vec::new();
        Template::compile(text, substitute, escape)
            .resolve(&env, &mut buf)
            .map(<[u8]>::to_vec)
    }

    #[test]
    fn substitutes_and_defaults() {
        let mut ctx = Context::new();
        ctx.insert("aws:PrincipalTag/team", "blue");
        let r = resolve(
            "a/${aws:principaltag/Team}/${x, 'dflt'}/",
            true,
            false,
            &ctx,
        );
        assert_eq!(r.as_deref(), Some(&b"a/blue/dflt/"[..]));
        assert_eq!(resolve("a/${missing}", true, false, &ctx), None);
        assert_eq!(
            resolve("a/${missing}", false, false, &ctx).as_deref(),
            Some(&b"a/${missing}"[..])
        );
    }

    #[test]
    fn literal_characters() {
        let ctx = Context::new();
        let r = resolve("${*}${?}${$}*", true, true, &ctx).unwrap();
        assert_eq!(r, [LITERAL_STAR, LITERAL_QUESTION, b'$', b'*']);
        assert_eq!(resolve("${*}", true, false, &ctx).unwrap(), b"*");
        assert_eq!(
            resolve("${unclosed", true, true, &ctx).unwrap(),
            b"${unclosed"
        );
    }
}
