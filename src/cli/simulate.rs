//! `iam-tailor simulate`: one request from flags, or a JSON Lines batch with `--requests`.
//!
//! The batch path is built for throughput: each line's policy documents are kept as raw JSON
//! text and looked up in a per-thread cache of compiled policy sets, so the same managed
//! policies are parsed and compiled once, not once per line; lines are evaluated in parallel
//! chunks and written in input order.

use super::{Format, read_policy};
use crate::policy::{
    Context, Decision, Evaluation, MAX_SCP_LEVELS, Policy, PolicyKind, PolicySet, Request,
};
use anyhow::Context as _;
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Identity policy documents (JSON) of the principal.
    #[arg(long = "policy", required_unless_present = "requests")]
    policies: Vec<PathBuf>,
    /// Permissions boundary of the principal.
    #[arg(long)]
    boundary: Option<PathBuf>,
    /// Service control policies that apply to the account (one level: any of them allows).
    #[arg(long = "scp", conflicts_with = "scp_levels")]
    scps: Vec<PathBuf>,
    /// The SCPs of one level of the organization, comma-separated; repeat per level, from the
    /// root to the account. Every level must allow.
    #[arg(long = "scp-level", value_name = "FILE[,FILE…]")]
    scp_levels: Vec<String>,
    /// Session policies passed when the role was assumed.
    #[arg(long = "session-policy")]
    session_policies: Vec<PathBuf>,
    /// Resource-based policy of the resource (bucket policy, key policy, …).
    #[arg(long)]
    resource_policy: Option<PathBuf>,
    /// The IAM action, e.g. s3:GetObject.
    #[arg(long, required_unless_present = "requests")]
    action: Option<String>,
    /// The resource ARN (default `*`).
    #[arg(long, default_value = "*")]
    resource: String,
    /// The calling principal's ARN.
    #[arg(long)]
    principal: Option<String>,
    /// Context keys, KEY=VALUE; repeat a key for a multi-valued key.
    #[arg(long = "context", value_parser = parse_context_pair)]
    context: Vec<(String, String)>,
    /// A JSON Lines file of requests (`-` for standard input); writes one decision per line.
    #[arg(long, conflicts_with_all = ["policies", "action"])]
    requests: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

fn parse_context_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, found {s:?}")),
    }
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    if let Some(path) = &args.requests {
        return run_batch(path);
    }
    let mut builder = PolicySet::builder();
    for path in &args.policies {
        builder = builder.identity_labeled(read_policy(path)?, path.display().to_string());
    }
    if let Some(path) = &args.boundary {
        builder = builder.boundary_labeled(read_policy(path)?, path.display().to_string());
    }
    for path in &args.scps {
        builder = builder.scp_labeled(read_policy(path)?, path.display().to_string());
    }
    if args.scp_levels.len() > MAX_SCP_LEVELS {
        anyhow::bail!(
            "--scp-level: {} levels; an organization has at most {MAX_SCP_LEVELS}",
            args.scp_levels.len()
        );
    }
    for (level, files) in args.scp_levels.iter().enumerate() {
        for file in files.split(',').filter(|f| !f.is_empty()) {
            let path = PathBuf::from(file);
            let policy = read_policy(&path)?;
            builder = builder.scp_at_level(level, policy, Some(format!("{file} (level {level})")));
        }
    }
    for path in &args.session_policies {
        builder = builder.session_labeled(read_policy(path)?, path.display().to_string());
    }
    if let Some(path) = &args.resource_policy {
        builder = builder.resource_policy_labeled(read_policy(path)?, path.display().to_string());
    }
    let set = builder.build();
    // A key given more than once is one multi-valued key.
    let mut grouped: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for (k, v) in &args.context {
        grouped.entry(k).or_default().push(v.clone());
    }
    let mut context = Context::new();
    for (k, vs) in grouped {
        context.insert_all(k, vs);
    }
    let action = args.action.as_deref().expect("clap requires --action");
    let evaluation = set.evaluate(&Request {
        action,
        resource: &args.resource,
        principal: args.principal.as_deref(),
        context: &context,
    });
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&evaluation)?),
        Format::Text => {
            let given: Vec<PolicyKind> = [
                (PolicyKind::Identity, !args.policies.is_empty()),
                (PolicyKind::PermissionsBoundary, args.boundary.is_some()),
                (
                    PolicyKind::ServiceControlPolicy,
                    !args.scps.is_empty() || !args.scp_levels.is_empty(),
                ),
                (PolicyKind::SessionPolicy, !args.session_policies.is_empty()),
                (PolicyKind::ResourcePolicy, args.resource_policy.is_some()),
            ]
            .into_iter()
            .filter_map(|(kind, present)| present.then_some(kind))
            .collect();
            print!("{}", describe(&evaluation, &given))
        }
    }
    Ok(0)
}

/// The decision, the deciding statements and, for an implicit deny, which of the given
/// policies had no matching Allow (a request needs one from each gate).
fn describe(evaluation: &Evaluation, given: &[PolicyKind]) -> String {
    let mut out = format!("{}\n", evaluation.decision);
    if let Some(reason) = evaluation.reason {
        out.push_str(&format!("  {reason}\n"));
    }
    if evaluation.decision == Decision::ImplicitlyDenied {
        let missing: Vec<&str> = given
            .iter()
            .filter(|kind| !evaluation.matched.iter().any(|m| m.kind == **kind))
            .map(|kind| kind.as_str())
            .collect();
        if !missing.is_empty() {
            out.push_str(&format!("  no Allow in: {}\n", missing.join(", ")));
        }
    }
    for m in &evaluation.matched {
        let policy = match &m.label {
            Some(label) => format!("{} policy {label}", m.kind.as_str()),
            None => format!("{} policy #{}", m.kind.as_str(), m.policy_index),
        };
        let sid = m
            .sid
            .as_deref()
            .map(|s| format!(" (Sid {s})"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {} by {policy} Statement[{}]{sid}\n",
            m.effect.as_str(),
            m.statement_index
        ));
    }
    out
}

/// One line of `--requests`; policy documents stay raw so the cache can key on their text.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BatchLine<'a> {
    #[serde(borrow)]
    identity_policies: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    permission_boundaries: Vec<&'a RawValue>,
    /// Policy documents (one level), or levels from the root to the account, each
    /// `{"orgIdentifier": …, "policies": [document or {"name", "policy"}, …]}`.
    #[serde(default, borrow)]
    service_control_policies: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    session_policies: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    resource_policy: Option<&'a RawValue>,
    #[serde(borrow)]
    request: BatchRequest<'a>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest<'a> {
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(default, borrow)]
    resource: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    principal: Option<Cow<'a, str>>,
    #[serde(default)]
    context: FxHashMap<String, ContextValue>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ContextValue {
    One(Scalar),
    Many(Vec<Scalar>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Str(String),
    Bool(bool),
    Num(serde_json::Number),
}

impl Scalar {
    fn into_text(self) -> String {
        match self {
            Scalar::Str(s) => s,
            Scalar::Bool(b) => b.to_string(),
            Scalar::Num(n) => n.to_string(),
        }
    }
}

/// Compiled policy sets by the raw text of their documents, one cache per worker thread.
/// The documents a set was compiled from, compared in full on a hash hit.
type SetKey = Vec<(PolicyKind, u8, Box<str>)>;

/// A policy document of a line: its kind, its organization level (SCPs) and its text.
type Doc<'a> = (PolicyKind, u8, &'a str);

#[derive(Default)]
struct SetCache {
    entries: FxHashMap<u64, Vec<(SetKey, Arc<PolicySet>)>>,
    len: usize,
}

thread_local! {
    /// Per worker thread, so lookups never contend and survive from chunk to chunk.
    static CACHE: std::cell::RefCell<SetCache> = std::cell::RefCell::new(SetCache::default());
}

/// Bound on cached sets per thread; past it the cache starts over (batches reuse few sets).
const CACHE_LIMIT: usize = 4096;

impl SetCache {
    fn get(&mut self, docs: &[Doc]) -> Result<Arc<PolicySet>, String> {
        let mut hasher = rustc_hash::FxHasher::default();
        for (kind, level, text) in docs {
            (*kind as u8).hash(&mut hasher);
            level.hash(&mut hasher);
            text.hash(&mut hasher);
        }
        let key = hasher.finish();
        if let Some(bucket) = self.entries.get(&key) {
            for (texts, set) in bucket {
                if texts.len() == docs.len()
                    && texts
                        .iter()
                        .zip(docs)
                        .all(|((k1, l1, t1), (k2, l2, t2))| k1 == k2 && l1 == l2 && &**t1 == *t2)
                {
                    return Ok(set.clone());
                }
            }
        }
        let mut builder = PolicySet::builder();
        let mut counters = [0usize; 5];
        for (kind, level, text) in docs {
            let i = &mut counters[*kind as usize];
            let field = match kind {
                PolicyKind::Identity => "identityPolicies",
                PolicyKind::PermissionsBoundary => "permissionBoundaries",
                PolicyKind::ServiceControlPolicy => "serviceControlPolicies",
                PolicyKind::SessionPolicy => "sessionPolicies",
                PolicyKind::ResourcePolicy => "resourcePolicy",
            };
            let policy = Policy::parse(text).map_err(|e| {
                if *kind == PolicyKind::ResourcePolicy {
                    format!("{field}: {e}")
                } else {
                    format!("{field}[{i}]: {e}")
                }
            })?;
            *i += 1;
            builder = match kind {
                PolicyKind::Identity => builder.identity(policy),
                PolicyKind::PermissionsBoundary => builder.boundary(policy),
                PolicyKind::ServiceControlPolicy => {
                    builder.scp_at_level(*level as usize, policy, None)
                }
                PolicyKind::SessionPolicy => builder.session(policy),
                PolicyKind::ResourcePolicy => builder.resource_policy(policy),
            };
        }
        let set = Arc::new(builder.build());
        if self.len >= CACHE_LIMIT {
            self.entries.clear();
            self.len = 0;
        }
        self.entries.entry(key).or_default().push((
            docs.iter()
                .map(|(k, l, t)| (*k, *l, Box::from(*t)))
                .collect(),
            set.clone(),
        ));
        self.len += 1;
        Ok(set)
    }
}

/// An entry of `serviceControlPolicies`, looked at for `policies`: a level of the organization
/// has them, a policy document does not.
#[derive(Deserialize)]
struct ScpEntry<'a> {
    #[serde(borrow, default)]
    policies: Option<Vec<&'a RawValue>>,
}

/// A policy of a level, as a document or as `{"name": …, "policy": document}`.
#[derive(Deserialize)]
struct NamedPolicy<'a> {
    #[serde(borrow, default)]
    policy: Option<&'a RawValue>,
}

/// The SCPs of a line, by organization level: bare documents are one level.
fn scp_docs<'a>(entries: &[&'a RawValue], docs: &mut Vec<Doc<'a>>) -> Result<(), String> {
    let field = "serviceControlPolicies";
    let kind = PolicyKind::ServiceControlPolicy;
    let (mut levels, mut bare) = (0usize, false);
    for (i, raw) in entries.iter().enumerate() {
        let entry: ScpEntry =
            serde_json::from_str(raw.get()).map_err(|e| format!("{field}[{i}]: {e}"))?;
        let Some(policies) = entry.policies else {
            bare = true;
            docs.push((kind, 0, raw.get()));
            continue;
        };
        if policies.is_empty() {
            return Err(format!(
                "{field}[{i}].policies is empty: every level of an organization has an SCP"
            ));
        }
        if levels == MAX_SCP_LEVELS {
            return Err(format!("{field}: more than {MAX_SCP_LEVELS} levels"));
        }
        for (j, p) in policies.iter().enumerate() {
            let named: NamedPolicy = serde_json::from_str(p.get())
                .map_err(|e| format!("{field}[{i}].policies[{j}]: {e}"))?;
            docs.push((kind, levels as u8, named.policy.unwrap_or(p).get()));
        }
        levels += 1;
    }
    if bare && levels > 0 {
        return Err(format!(
            "{field}: give policy documents (one level) or levels ({{\"orgIdentifier\", \"policies\"}}), not both"
        ));
    }
    Ok(())
}

/// Evaluates one line of `simulate --batch` input on its own (no cache kept): the entry
/// point for the evaluator's fuzz target.
pub fn evaluate_json_line(line: &str) -> Result<Decision, String> {
    evaluate_line(line, &mut SetCache::default())
}

/// Evaluates one JSON line; the error text becomes `{"error": …}` for that line.
fn evaluate_line(line: &str, cache: &mut SetCache) -> Result<Decision, String> {
    let mut parsed: BatchLine = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let mut docs: Vec<Doc> = Vec::with_capacity(
        parsed.identity_policies.len()
            + parsed.permission_boundaries.len()
            + parsed.service_control_policies.len()
            + parsed.session_policies.len()
            + 1,
    );
    let groups = [
        (PolicyKind::Identity, &parsed.identity_policies),
        (
            PolicyKind::PermissionsBoundary,
            &parsed.permission_boundaries,
        ),
        (PolicyKind::SessionPolicy, &parsed.session_policies),
    ];
    for (kind, group) in groups {
        docs.extend(group.iter().map(|raw| (kind, 0, raw.get())));
    }
    scp_docs(&parsed.service_control_policies, &mut docs)?;
    if let Some(raw) = parsed.resource_policy {
        docs.push((PolicyKind::ResourcePolicy, 0, raw.get()));
    }
    let set = cache.get(&docs)?;
    let mut context = Context::new();
    for (key, value) in std::mem::take(&mut parsed.request.context) {
        match value {
            ContextValue::One(v) => context.insert(&key, v.into_text()),
            ContextValue::Many(vs) => {
                context.insert_all(&key, vs.into_iter().map(Scalar::into_text).collect())
            }
        }
    }
    let request = &parsed.request;
    Ok(set
        .evaluate(&Request {
            action: &request.action,
            resource: request.resource.as_deref().unwrap_or("*"),
            principal: request.principal.as_deref(),
            context: &context,
        })
        .decision)
}

/// Bytes per block handed from the reader thread to the workers: large enough to amortize
/// scheduling, small enough that memory stays flat however long the input is.
const BLOCK_BYTES: usize = 8 << 20;

/// A block of whole lines and the number of the first one.
struct Block {
    bytes: Vec<u8>,
    first_line: usize,
}

/// Reads `input` into blocks that end at a newline, on its own thread, so reading overlaps
/// evaluation; at most two blocks wait at a time.
fn spawn_reader(
    mut input: Box<dyn Read + Send>,
) -> (
    std::sync::mpsc::Receiver<std::io::Result<Block>>,
    std::thread::JoinHandle<()>,
) {
    let (tx, rx) = std::sync::mpsc::sync_channel(2);
    let handle = std::thread::spawn(move || {
        let mut carry: Vec<u8> = Vec::new();
        let mut first_line = 0usize;
        loop {
            let mut bytes = std::mem::take(&mut carry);
            let start = bytes.len();
            bytes.resize(start + BLOCK_BYTES, 0);
            let n = match read_full(&mut input, &mut bytes[start..]) {
                Ok(n) => n,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            bytes.truncate(start + n);
            let eof = n == 0;
            if !eof {
                // Keep the partial last line for the next block.
                match memchr::memrchr(b'\n', &bytes) {
                    Some(pos) => carry = bytes.split_off(pos + 1),
                    None => {
                        carry = bytes;
                        continue;
                    }
                }
            }
            if bytes.is_empty() {
                return;
            }
            let lines = memchr::memchr_iter(b'\n', &bytes).count()
                + usize::from(eof && !bytes.ends_with(b"\n"));
            if tx.send(Ok(Block { bytes, first_line })).is_err() || eof {
                return;
            }
            first_line += lines;
        }
    });
    (rx, handle)
}

/// Fills `buf` as far as the input allows; 0 only at end of input.
fn read_full(input: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The output line for one input line (empty for a blank line).
fn answer(line: &[u8], line_no: usize) -> String {
    let result = std::str::from_utf8(line)
        .map_err(|e| format!("not UTF-8: {e}"))
        .and_then(|text| {
            let text = text.trim();
            if text.is_empty() {
                return Ok(None);
            }
            CACHE
                .with(|cache| evaluate_line(text, &mut cache.borrow_mut()))
                .map(Some)
        });
    match result {
        Ok(None) => String::new(),
        Ok(Some(decision)) => format!("{{\"decision\":\"{decision}\"}}\n"),
        Err(e) => format!(
            "{}\n",
            serde_json::json!({"error": format!("line {line_no}: {e}")})
        ),
    }
}

fn run_batch(path: &std::path::Path) -> anyhow::Result<i32> {
    let input: Box<dyn Read + Send> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("{}", path.display()))?)
    };
    let (blocks, reader) = spawn_reader(input);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    for block in blocks {
        let block = block.with_context(|| format!("reading {}", path.display()))?;
        let mut ranges = Vec::new();
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', &block.bytes) {
            ranges.push(start..end);
            start = end + 1;
        }
        if start < block.bytes.len() {
            ranges.push(start..block.bytes.len());
        }
        let outputs: Vec<String> = ranges
            .into_par_iter()
            .enumerate()
            .map(|(i, range)| answer(&block.bytes[range], block.first_line + i + 1))
            .collect();
        for o in &outputs {
            out.write_all(o.as_bytes())?;
        }
    }
    out.flush()?;
    reader.join().expect("the reader thread does not panic");
    Ok(0)
}
