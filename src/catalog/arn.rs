//! Which resource type an ARN is: matching ARNs against the catalog's ARN templates.
//!
//! A template such as `arn:${Partition}:s3:::${BucketName}/${ObjectName}` is compiled to
//! tokens. Variables in the first five fields (partition, service, region, account) match a
//! non-empty run without `:`; the last variable matches any non-empty run (role paths, object
//! keys); other variables match a non-empty run without `:` or the literal byte that follows
//! them. A `*` in a template matches anything. A `*` or `?` in the ARN may stand for template
//! text too, so `arn:aws:s3:::b*` can be a bucket or an object.

use std::cmp::Reverse;

use rustc_hash::FxHashMap;

use super::{Catalog, ResourceType};

#[derive(Clone, Copy)]
enum Token {
    Byte(u8),
    /// `${Var}`: a non-empty run of bytes, none equal to `stop`, and no `:` if `no_colon`.
    Var {
        no_colon: bool,
        stop: Option<u8>,
    },
    /// A literal `*` in the template: any run, possibly empty.
    Star,
}

impl Token {
    fn allows(self, c: u8) -> bool {
        match self {
            Token::Var { no_colon, stop } => !(no_colon && c == b':') && stop != Some(c),
            _ => true,
        }
    }
}

struct Template {
    resource_type: u32,
    /// Literal start of the resource part (after the fifth `:`), for a cheap first check.
    resource_prefix: &'static [u8],
    /// Number of literal bytes: the more, the more specific the template.
    specificity: u32,
    /// Number of `${Var}`s: between equally literal templates, a concrete ARN is more likely
    /// `group/${GroupId}` than `group/*`.
    vars: u32,
    /// Number of literal `*`s: a wildcard ARN is more likely `group/*`.
    stars: u32,
    tokens: Vec<Token>,
}

/// How an ARN matched one resource type.
pub(super) struct Hit {
    pub resource_type: u32,
    /// Literal bytes of the best template that matched.
    pub specificity: u32,
    /// Matched with `*` and `?` in the ARN taken literally (so it surely is this type).
    pub concrete: bool,
    /// Preference among hits: specificity, then variables (concrete ARN) or literal `*`s
    /// (wildcard ARN), then a type of the ARN's own service, then catalog order.
    pub rank: (u32, u32, bool, Reverse<u32>),
}

/// The compiled templates, indexed by the service field written in the template (which is
/// not always the IAM prefix: ec2 has resource types in the `iam` ARN namespace).
pub(super) struct ArnIndex {
    templates: Vec<Template>,
    by_service: FxHashMap<&'static str, Vec<u32>>,
    /// Templates whose service field is itself a variable (`${Vendor}`).
    any_service: Vec<u32>,
}

impl ArnIndex {
    pub(super) fn new(resource_types: &[ResourceType]) -> Self {
        let mut index = ArnIndex {
            templates: Vec::new(),
            by_service: FxHashMap::default(),
            any_service: Vec::new(),
        };
        for (i, rt) in resource_types.iter().enumerate() {
            for template in rt.arn_templates.iter() {
                let Some(service) = template.split(':').nth(2) else {
                    continue;
                };
                let id = index.templates.len() as u32;
                index.templates.push(compile(i as u32, template));
                if service.contains("${") {
                    index.any_service.push(id);
                } else {
                    index.by_service.entry(service).or_default().push(id);
                }
            }
        }
        index
    }

    /// Every resource type the ARN can be, once each, with its best template.
    pub(super) fn hits(&self, catalog: &Catalog, arn: &str) -> Vec<Hit> {
        let mut hits: Vec<Hit> = Vec::new();
        let mut fields = arn.splitn(6, ':');
        let (Some(service), Some(resource)) = (fields.nth(2), fields.nth(2)) else {
            return hits;
        };
        let wild = |s: &str| s.bytes().any(|c| c == b'*' || c == b'?');
        let candidates: Vec<u32> = if wild(service) {
            (0..self.templates.len() as u32).collect()
        } else {
            let own = self.by_service.get(service).map_or(&[][..], Vec::as_slice);
            own.iter().chain(&self.any_service).copied().collect()
        };
        let has_wildcards = wild(arn);
        for id in candidates {
            let t = &self.templates[id as usize];
            let concrete = t.may_match(resource, false) && t.matches(arn, false);
            let wild_match =
                || has_wildcards && t.may_match(resource, true) && t.matches(arn, true);
            if !concrete && !wild_match() {
                continue;
            }
            let rt = &catalog.resource_types[t.resource_type as usize];
            let hit = Hit {
                resource_type: t.resource_type,
                specificity: t.specificity,
                concrete,
                rank: (
                    t.specificity,
                    if has_wildcards { t.stars } else { t.vars },
                    rt.service.eq_ignore_ascii_case(service),
                    Reverse(t.resource_type),
                ),
            };
            match hits.iter_mut().find(|h| h.resource_type == t.resource_type) {
                Some(old) if (old.concrete, old.rank) < (concrete, hit.rank) => *old = hit,
                Some(_) => {}
                None => hits.push(hit),
            }
        }
        hits
    }
}

fn compile(resource_type: u32, template: &'static str) -> Template {
    let bytes = template.as_bytes();
    let last_var = template.rfind("${");
    let mut tokens = Vec::with_capacity(bytes.len());
    let mut colons = 0;
    let mut resource_start = bytes.len();
    let mut resource_prefix_end = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'$' && bytes.get(i + 1) == Some(&b'{') {
            let end = template[i..].find('}').map_or(bytes.len(), |e| i + e + 1);
            resource_prefix_end.get_or_insert(i);
            tokens.push(if colons < 5 {
                Token::Var {
                    no_colon: true,
                    stop: None,
                }
            } else if Some(i) == last_var {
                Token::Var {
                    no_colon: false,
                    stop: None,
                }
            } else {
                Token::Var {
                    no_colon: true,
                    stop: bytes.get(end).copied().filter(|&b| b != b'$' && b != b'*'),
                }
            });
            i = end;
            continue;
        }
        if c == b'*' {
            resource_prefix_end.get_or_insert(i);
            tokens.push(Token::Star);
        } else {
            tokens.push(Token::Byte(c));
            if c == b':' {
                colons += 1;
                if colons == 5 {
                    resource_start = i + 1;
                    resource_prefix_end = None;
                }
            }
        }
        i += 1;
    }
    let prefix_end = resource_prefix_end
        .filter(|&e| e >= resource_start)
        .unwrap_or(bytes.len());
    let count = |f: fn(&Token) -> bool| tokens.iter().filter(|t| f(t)).count() as u32;
    Template {
        resource_type,
        resource_prefix: &bytes[resource_start.min(prefix_end)..prefix_end],
        specificity: count(|t| matches!(t, Token::Byte(_))),
        vars: count(|t| matches!(t, Token::Var { .. })),
        stars: count(|t| matches!(t, Token::Star)),
        tokens,
    }
}

impl Template {
    /// Cheap necessary condition: the ARN's resource part agrees with the template's literal
    /// start (up to the ARN's first wildcard when `wildcards`).
    fn may_match(&self, resource: &str, wildcards: bool) -> bool {
        let r = resource.as_bytes();
        let p = self.resource_prefix;
        let wild_at = if wildcards {
            r.iter()
                .position(|&c| c == b'*' || c == b'?')
                .unwrap_or(r.len())
        } else {
            r.len()
        };
        let n = p.len().min(wild_at);
        p[..n] == r[..n] && (n == p.len() || wild_at < r.len())
    }

    /// Full match of `arn` against the template; `wildcards` makes `*`/`?` in the ARN wild.
    fn matches(&self, arn: &str, wildcards: bool) -> bool {
        let arn = arn.as_bytes();
        let mut matcher = Matcher {
            tokens: &self.tokens,
            arn,
            wildcards,
            memo: vec![0; (arn.len() + 1) * (self.tokens.len() + 1)],
        };
        matcher.at(0, 0)
    }
}

/// Memoised two-sided matcher: arn[i..] against tokens[j..].
struct Matcher<'a> {
    tokens: &'a [Token],
    arn: &'a [u8],
    wildcards: bool,
    /// 0 unknown, 1 no, 2 yes; indexed by i * (tokens + 1) + j.
    memo: Vec<u8>,
}

impl Matcher<'_> {
    fn at(&mut self, i: usize, j: usize) -> bool {
        let (n, m) = (self.arn.len(), self.tokens.len());
        if j == m {
            return self.arn[i..].iter().all(|&c| self.wildcards && c == b'*');
        }
        if i == n {
            return self.tokens[j..].iter().all(|t| matches!(t, Token::Star));
        }
        let slot = i * (m + 1) + j;
        if self.memo[slot] != 0 {
            return self.memo[slot] == 2;
        }
        let c = self.arn[i];
        let token = self.tokens[j];
        let result = match token {
            Token::Star => self.at(i, j + 1) || self.at(i + 1, j),
            // An ARN `*` may swallow this token, end here, or (in a variable) be its content.
            _ if self.wildcards && c == b'*' => {
                self.at(i, j + 1)
                    || self.at(i + 1, j)
                    || (matches!(token, Token::Var { .. }) && self.at(i + 1, j + 1))
            }
            Token::Byte(b) => (b == c || (self.wildcards && c == b'?')) && self.at(i + 1, j + 1),
            Token::Var { .. } => {
                (token.allows(c) || (self.wildcards && c == b'?'))
                    && (self.at(i + 1, j) || self.at(i + 1, j + 1))
            }
        };
        self.memo[slot] = if result { 2 } else { 1 };
        result
    }
}
