//! `iam-tailor simulate`: one request from flags, or a JSON Lines batch with `--requests`.
//!
//! The batch path is built for throughput: each line's policy documents are found without
//! parsing them ([`scan`]) and looked up by their bytes in a per-thread cache of compiled policy
//! sets, so the same managed policies are parsed and compiled once, not once per line; lines
//! are evaluated in parallel chunks and written in input order.

mod cache;
mod scan;

use cache::{Cache, Doc, DocRef};

use super::{Format, read_policy};
use crate::policy::{
    Context, Decision, Evaluation, MAX_SCP_LEVELS, PolicyKind, PolicySet, Request,
};
use anyhow::Context as _;
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::io::{Read, Write};
use std::path::PathBuf;

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

/// A context key's values: a string, boolean or number, or an array of them, as text.
/// Read by a visitor rather than untagged enums, which build an error for every miss.
struct ContextValue(Vec<String>);

/// One scalar as text.
struct Scalar(String);

struct ScalarVisitor;

impl serde::de::Visitor<'_> for ScalarVisitor {
    type Value = String;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string, boolean or number")
    }
    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_bool<E>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E>(self, v: f64) -> Result<String, E> {
        Ok(serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string()))
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor).map(Scalar)
    }
}

struct ValuesVisitor;

impl<'de> serde::de::Visitor<'de> for ValuesVisitor {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string, boolean or number, or an array of them")
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(vec![v.to_string()])
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
        ScalarVisitor.visit_bool(v).map(|s| vec![s])
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        ScalarVisitor.visit_i64(v).map(|s| vec![s])
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        ScalarVisitor.visit_u64(v).map(|s| vec![s])
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        ScalarVisitor.visit_f64(v).map(|s| vec![s])
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut values = Vec::new();
        while let Some(Scalar(v)) = seq.next_element()? {
            values.push(v);
        }
        Ok(values)
    }
}

impl<'de> Deserialize<'de> for ContextValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValuesVisitor).map(ContextValue)
    }
}

thread_local! {
    /// Per worker thread, so lookups never contend and survive from chunk to chunk.
    static CACHE: std::cell::RefCell<Cache> = std::cell::RefCell::new(Cache::default());
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
            docs.push((kind, 0, DocRef::New(raw.get().as_bytes())));
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
            let doc = named.policy.unwrap_or(p).get().as_bytes();
            docs.push((kind, levels as u8, DocRef::New(doc)));
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

/// One line three ways, for the evaluator's fuzz target, which checks they agree: the fast
/// path with documents new, then known to the cache, and the serde path (`None` where the
/// fast path declines the line).
#[allow(clippy::type_complexity)]
pub fn evaluate_json_line_each_way(
    line: &str,
) -> (
    Option<Result<Decision, String>>,
    Option<Result<Decision, String>>,
    Result<Decision, String>,
) {
    let mut cache = Cache::default();
    let cold = fast(line.as_bytes(), &mut cache);
    let warm = fast(line.as_bytes(), &mut cache);
    (cold, warm, slow(line.as_bytes(), &mut Cache::default()))
}

/// Evaluates one JSON line; the error text becomes `{"error": …}` for that line.
fn evaluate_line(line: &[u8], cache: &mut Cache) -> Result<Decision, String> {
    cache.make_room();
    fast(line, cache).unwrap_or_else(|| slow(line, cache))
}

/// The line by [`scan`]; `None` when it declines the line.
fn fast(line: &[u8], cache: &mut Cache) -> Option<Result<Decision, String>> {
    let scanned = match scan::scan(line, cache)? {
        Ok(scanned) => scanned,
        Err(e) => return Some(Err(e)),
    };
    Some(
        cache
            .set(&scanned.docs)
            .map(|set| decide(&set, scanned.request)),
    )
}

/// The line by serde, which names what is wrong with it.
fn slow(line: &[u8], cache: &mut Cache) -> Result<Decision, String> {
    let line = std::str::from_utf8(line).map_err(|e| format!("not UTF-8: {e}"))?;
    let parsed: BatchLine = serde_json::from_str(line).map_err(|e| e.to_string())?;
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
        docs.extend((group.iter()).map(|raw| (kind, 0, DocRef::New(raw.get().as_bytes()))));
    }
    scp_docs(&parsed.service_control_policies, &mut docs)?;
    if let Some(raw) = parsed.resource_policy {
        docs.push((
            PolicyKind::ResourcePolicy,
            0,
            DocRef::New(raw.get().as_bytes()),
        ));
    }
    let set = cache.set(&docs)?;
    Ok(decide(&set, parsed.request))
}

/// The decision on one parsed request.
fn decide(set: &PolicySet, request: BatchRequest) -> Decision {
    let mut context = Context::new();
    for (key, ContextValue(values)) in request.context {
        context.insert_all(&key, values);
    }
    set.decide(&Request {
        action: &request.action,
        resource: request.resource.as_deref().unwrap_or("*"),
        principal: request.principal.as_deref(),
        context: &context,
    })
}

/// Bytes per block handed from the reader thread to the workers: large enough to amortize
/// scheduling, small enough that memory stays flat however long the input is.
const BLOCK_BYTES: usize = 1 << 20;

/// Lines per task of the workers: each task writes its answers into one string.
const LINES_PER_TASK: usize = 256;

/// A buffer of whole lines: `bytes[..len]`; the rest is spare room kept for reuse.
struct Block {
    bytes: Vec<u8>,
    len: usize,
}

/// Reads `input` into blocks that end at a newline, on its own thread, so reading overlaps
/// evaluation; at most two blocks wait at a time, and spent blocks come back through
/// `spent` to be filled again (no fresh pages, no zeroing).
fn spawn_reader(
    mut input: Box<dyn Read + Send>,
    spent: std::sync::mpsc::Receiver<Vec<u8>>,
) -> (
    std::sync::mpsc::Receiver<std::io::Result<Block>>,
    std::thread::JoinHandle<()>,
) {
    let (tx, rx) = std::sync::mpsc::sync_channel(2);
    let handle = std::thread::spawn(move || {
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let mut bytes = spent.try_recv().unwrap_or_default();
            let room = carry.len() + BLOCK_BYTES;
            if bytes.len() < room {
                bytes.resize(room, 0);
            }
            bytes[..carry.len()].copy_from_slice(&carry);
            let start = carry.len();
            let n = match read_full(&mut input, &mut bytes[start..room]) {
                Ok(n) => n,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let mut len = start + n;
            let eof = n == 0;
            carry.clear();
            if !eof {
                // Keep the partial last line for the next block.
                match memchr::memrchr(b'\n', &bytes[..len]) {
                    Some(pos) => {
                        carry.extend_from_slice(&bytes[pos + 1..len]);
                        len = pos + 1;
                    }
                    None => {
                        carry.extend_from_slice(&bytes[..len]);
                        continue;
                    }
                }
            }
            if len == 0 {
                return;
            }
            if tx.send(Ok(Block { bytes, len })).is_err() || eof {
                return;
            }
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

/// Appends the output line for one input line (nothing for a blank line).
fn answer(line: &[u8], line_no: usize, out: &mut String) {
    let line = line.trim_ascii();
    if line.is_empty() {
        return;
    }
    match CACHE.with(|cache| evaluate_line(line, &mut cache.borrow_mut())) {
        Ok(decision) => out.push_str(match decision {
            Decision::Allowed => "{\"decision\":\"Allowed\"}\n",
            Decision::ExplicitlyDenied => "{\"decision\":\"ExplicitlyDenied\"}\n",
            Decision::ImplicitlyDenied => "{\"decision\":\"ImplicitlyDenied\"}\n",
        }),
        Err(e) => {
            let error = serde_json::json!({"error": format!("line {line_no}: {e}")});
            out.push_str(&format!("{error}\n"));
        }
    }
}

fn run_batch(path: &std::path::Path) -> anyhow::Result<i32> {
    let input: Box<dyn Read + Send> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("{}", path.display()))?)
    };
    let (give_back, spent) = std::sync::mpsc::channel();
    let (blocks, reader) = spawn_reader(input, spent);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut lines_before = 0;
    let mut ranges = Vec::new();
    for block in blocks {
        let block = block.with_context(|| format!("reading {}", path.display()))?;
        let bytes = &block.bytes[..block.len];
        ranges.clear();
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', bytes) {
            ranges.push(start..end);
            start = end + 1;
        }
        if start < bytes.len() {
            ranges.push(start..bytes.len());
        }
        let first_line = lines_before + 1;
        let outputs: Vec<String> = ranges
            .par_chunks(LINES_PER_TASK)
            .enumerate()
            .map(|(task, chunk)| {
                let mut text = String::new();
                for (i, range) in chunk.iter().enumerate() {
                    let line_no = first_line + task * LINES_PER_TASK + i;
                    answer(&bytes[range.clone()], line_no, &mut text);
                }
                text
            })
            .collect();
        for o in &outputs {
            out.write_all(o.as_bytes())?;
        }
        lines_before += ranges.len();
        // The reader may have finished; a block it will not reuse is simply dropped.
        let _ = give_back.send(block.bytes);
    }
    out.flush()?;
    reader.join().expect("the reader thread does not panic");
    Ok(0)
}
